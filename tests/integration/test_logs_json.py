"""DSA_INGEST_LOG_FORMAT=json (issue 8): every line the binary writes to stderr is one JSON
object — ts (RFC 3339, UTC), level, msg, and when known job_id, dataset, stage and
elapsed_s — so a log pipeline (Fluent Bit, Vector, Loki) indexes it without a parser of
its own. Checked on a successful import, a rejected one (the error line carries its class
and location), a worker draining a queued job, and text mode staying as it was.
"""
import datetime
import json
import re

from harness import gen, jobqueue

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
STAGES = {"setup", "load", "done", "worker", "claim", "queue"}
JSON_ENV = {"DSA_INGEST_LOG_FORMAT": "json", "IMPORT_PROGRESS_UPDATE_INTERVAL": "1"}


def _lines(stderr):
    """_lines parses every stderr line as one JSON object with the required fields."""
    lines = [ln for ln in stderr.split("\n") if ln != ""]
    assert lines, "no log lines on stderr"
    out = []
    for ln in lines:
        try:
            obj = json.loads(ln)
        except ValueError as e:
            raise AssertionError("stderr line is not JSON (%s): %r\nall stderr:\n%s" % (e, ln, stderr))
        assert isinstance(obj, dict), ln
        for key in ("ts", "level", "msg"):
            assert key in obj, "line lacks %s: %r" % (key, ln)
        assert TS_RE.match(obj["ts"]), obj["ts"]
        stamp = datetime.datetime.strptime(obj["ts"][:19], "%Y-%m-%dT%H:%M:%S")
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        assert abs((now - stamp).total_seconds()) < 600, "ts is not UTC now: %s" % obj["ts"]
        assert obj["level"] in ("info", "error"), obj
        assert isinstance(obj["msg"], str) and obj["msg"], obj
        if "stage" in obj:
            assert obj["stage"] in STAGES, obj
        if "elapsed_s" in obj:
            assert isinstance(obj["elapsed_s"], (int, float)) and obj["elapsed_s"] >= 0, obj
        out.append(obj)
    return out


def test_import_logs_are_json_lines(migrated, db, store):
    """A successful import: every line JSON, the job's lines carry job_id, dataset, stage and
    elapsed_s, the progress lines appear (one per batch here), the last line is the outcome."""
    data = gen.csv_bytes(list(gen.people_rows(400, seed=5)))
    store.put("p.csv", data)
    res = migrated.run("import", store.url("p.csv"), "--dataset", "logs \"q\"", "--json",
                       "--batch-size", "100", env=JSON_ENV, timeout=120)
    assert res.code == 0, res
    out = res.json()
    lines = _lines(res.stderr)
    mine = [o for o in lines if o.get("job_id") == out["job_id"]]
    assert len(mine) == len(lines), "lines without the job id: %s" % [
        o for o in lines if o.get("job_id") != out["job_id"]]
    assert all(o.get("dataset") == 'logs "q"' for o in mine), mine
    assert mine[0]["stage"] == "load" and "importing" in mine[0]["msg"], mine[0]
    assert '"q"' in mine[0]["msg"], "the quoted dataset name must survive escaping"
    progress = [o for o in mine if o["stage"] == "load" and "rows" in o["msg"]]
    assert len(progress) >= 3, "expected a progress line per batch: %s" % mine
    assert all("elapsed_s" in o for o in progress), progress
    last = mine[-1]
    assert last["stage"] == "done" and last["level"] == "info", last
    assert "imported 400 rows" in last["msg"], last
    assert abs(last["elapsed_s"] - out["elapsed_s"]) < 0.01, (last, out)
    assert res.job_id == out["job_id"], "the harness still finds `job <uuid>` in the JSON lines"


def test_rejected_import_error_line(migrated, db, store):
    """Bad input: exit 1, and the error line is JSON with level error, the job's context,
    error_class input and where in the input (table, row, byte)."""
    data = b"id,name\n1,a\n2,b\n3,c,EXTRA\n4,d\n"
    store.put("bad.csv", data)
    res = migrated.run("import", store.url("bad.csv"), "--dataset", "bad", "--json",
                       env=JSON_ENV, timeout=120)
    assert res.code == 1, res
    lines = _lines(res.stderr)
    errors = [o for o in lines if o["level"] == "error"]
    assert len(errors) == 1, lines
    err = errors[0]
    assert err["job_id"] == res.json()["job_id"] and err["dataset"] == "bad", err
    assert err["stage"] == "done" and err["error_class"] == "input", err
    assert err["table"] == "primary" and err["row"] == 4, err
    assert err["byte"] == data.index(b"3,c"), err


def test_setup_error_is_json_too(migrated):
    """A configuration error before any job exists (a malformed setting) is one JSON line
    with stage setup and error_class config, and exit code 2."""
    res = migrated.run("import", "/nonexistent.csv", "--dataset", "x", timeout=60,
                       env=dict(JSON_ENV, IMPORT_BATCH_SIZE="ten\"thousand"))
    assert res.code == 2, res
    lines = _lines(res.stderr)
    assert [o["level"] for o in lines] == ["error"], lines
    assert lines[0]["stage"] == "setup" and lines[0]["error_class"] == "config", lines
    assert "job_id" not in lines[0], lines
    assert 'IMPORT_BATCH_SIZE=ten"thousand' in lines[0]["msg"], lines


def test_worker_logs_carry_the_job(migrated, db, store):
    """worker --once: the claim, the runner's progress lines and the outcome of a queued
    job all carry its job_id and the slot's id; the worker's own lines have stage worker."""
    data = gen.csv_bytes(list(gen.people_rows(300, seed=6)))
    store.put("w.csv", data)
    ds = jobqueue.create_dataset(db, "wlogs")
    job_id = jobqueue.enqueue(db, ds, store.url("w.csv"), batch_size=100)
    res = migrated.run("worker", "--concurrency", "1", "--once",
                       env=dict(JSON_ENV, IMPORT_POLL_INTERVAL="1"), timeout=120)
    assert res.code == 0, res
    lines = _lines(res.stderr)
    mine = [o for o in lines if o.get("job_id") == job_id]
    stages = [o["stage"] for o in mine]
    assert stages[0] == "claim" and stages[-1] == "done", mine
    assert "load" in stages, "the runner's lines must carry the claimed job's id: %s" % lines
    assert all(re.match(r"^.+:\d+:\d+$", o["worker"]) for o in mine), mine
    assert mine[-1]["elapsed_s"] >= mine[1]["elapsed_s"] >= 0, mine
    assert "completed" in mine[-1]["msg"], mine[-1]
    assert any(o.get("stage") == "worker" and "stopped" in o["msg"] for o in lines), lines


def test_text_format_is_unchanged(migrated, store):
    """Without DSA_INGEST_LOG_FORMAT the lines stay the plain "dsa-ingest: …" text."""
    store.put("t.csv", b"a,b\n1,2\n")
    res = migrated.run("import", store.url("t.csv"), "--dataset", "text", timeout=60)
    assert res.code == 0, res
    lines = [ln for ln in res.stderr.split("\n") if ln]
    assert lines and all(ln.startswith("dsa-ingest: ") for ln in lines), lines
