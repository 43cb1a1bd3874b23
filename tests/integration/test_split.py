"""One large object split into byte ranges that any worker takes (issue 7, docs/split.md).

- A split import gives exactly the manifest (logical_row_id -> row_hash) and the schema of an
  import of the whole object by one reader, for CSV whose range boundaries fall inside quoted
  fields that hold newlines (and CRLF line ends, blank lines), and for NDJSON with blank lines.
- Ranges are claimed by any worker: an `import` and two `worker` processes share them.
- kill -9 while ranges load, then `import --resume` of the split job: the same manifest, no
  row twice.
- A malformed record in a middle range fails the split job and every range, with the
  record's row and byte, and leaves nothing published.

Ranges are made small (IMPORT_SPLIT_RANGE_BYTES) so a few MB give dozens of them.
"""
import json
import random
import re
import signal
import time

from harness import checks, gen, jobqueue, refreader
from harness.runner import scale, timeout_factor

ROWS = max(3000, int(6000 * scale()))
RANGE = 65537  # odd, so boundaries fall anywhere
BASE = {"IMPORT_BATCH_SIZE": "500", "IMPORT_RETRY_BACKOFF_MS": "50", "IMPORT_POLL_INTERVAL": "1"}
SPLIT = dict(BASE, IMPORT_SPLIT_MIN_BYTES="1", IMPORT_SPLIT_RANGE_BYTES=str(RANGE))
WHOLE = dict(BASE, IMPORT_SPLIT_MIN_BYTES="0")


def _quoted_csv(rows, seed=3):
    """_quoted_csv: people rows, every third with a long note of quoted commas, quotes and
    newlines (LF and CRLF), CRLF line ends and a few blank lines between records."""
    rnd = random.Random(seed)
    out = []
    for i, r in enumerate(gen.people_rows(rows, seed=seed)):
        if i % 3 == 0:
            r[5] = ('multi, "line"\nnote %d\r\n' % i) * rnd.randint(1, 40)
        out.append(r)
    data = gen.csv_bytes(out, lineterminator="\r\n")
    lines = data.split(b"\r\n")
    for k in range(7, len(lines) - 1, 997):  # blank lines (outside quoted fields only)
        if lines[k].count(b'"') % 2 == 0 and not lines[k].startswith(b" "):
            lines[k] = lines[k] + b"\r\n"
    return b"\r\n".join(lines)


def _inside_quotes(data, offset):
    """_inside_quotes tells whether offset falls inside a quoted field (no bare quotes here)."""
    return data.count(b'"', 0, offset) % 2 == 1


def _import(ingest, url, dataset, env, *extra):
    res = ingest.run("import", url, "--dataset", dataset, "--json", *extra, env=env, timeout=600)
    assert res.code == 0, res
    return res.json()


def _ranges(db, job_id):
    return db.query("SELECT status::text AS status, worker_id, run_parameters->'range' AS range,"
                  " output_summary FROM dsa_jobs.analysis_runs WHERE parent_run_id = %s::uuid"
                  " ORDER BY (run_parameters->'range'->>'index')::int", (job_id,))


def _schema(db, commit_id):
    return db.scalar("SELECT schema_definition FROM dsa_core.commit_schemas WHERE commit_id = %s",
                     (commit_id,))


def _assert_same_import(db, split, whole, rows):
    a, b = checks.manifest(db, split["commit_id"]), checks.manifest(db, whole["commit_id"])
    assert len(b) == rows
    assert a == b, "the split import's manifest differs from the whole import's"
    assert _schema(db, split["commit_id"]) == _schema(db, whole["commit_id"])
    assert split["rows_imported"] == whole["rows_imported"] == rows


def test_split_csv_equals_whole_import(migrated, db, store):
    data = _quoted_csv(ROWS)
    expected = refreader.read_records(data)
    cuts = [k * RANGE for k in range(1, len(data) // RANGE + 1)]
    assert sum(_inside_quotes(data, c) for c in cuts) >= 3, "no range boundary inside quotes"
    store.put("quoted.csv", data)
    split = _import(migrated, store.url("quoted.csv"), "split", SPLIT)
    ranges = _ranges(db, split["job_id"])
    assert len(ranges) == len(cuts) + (len(data) % RANGE > 0) and len(ranges) > 10
    assert all(r["status"] == "completed" for r in ranges), ranges
    assert sum(r["output_summary"]["rows"] for r in ranges) == len(expected)
    whole = _import(migrated, store.url("quoted.csv"), "whole", WHOLE)
    assert not _ranges(db, whole["job_id"])
    _assert_same_import(db, split, whole, len(expected))
    if refreader.have_xxh3():
        assert checks.manifest(db, split["commit_id"]) == refreader.manifest(expected)


def test_split_ndjson_with_blank_lines(migrated, db, store):
    rnd = random.Random(4)
    lines = []
    for i in range(ROWS):
        obj = {"id": i, "name": "n%d" % i, "tags": ["a"] * rnd.randint(0, 30)}
        if i % 5 == 0:
            obj["extra"] = {"text": "x\ny" * rnd.randint(1, 50)}  # escaped newlines
        lines.append(json.dumps(obj))
        if i % 101 == 0:
            lines.append("   ")
    data = ("\n".join(lines) + "\n").encode()
    store.put("rows.ndjson", data)
    split = _import(migrated, store.url("rows.ndjson"), "nsplit", SPLIT)
    assert len(_ranges(db, split["job_id"])) > 5
    whole = _import(migrated, store.url("rows.ndjson"), "nwhole", WHOLE)
    _assert_same_import(db, split, whole, ROWS)


def test_ranges_shared_by_workers_and_resumed_after_kill(migrated, db, store, proxy):
    data = _quoted_csv(ROWS, seed=8)
    store.put("shared.csv", data)
    whole = _import(migrated, store.url("shared.csv"), "swhole", WHOLE)
    proxy.configure(throttle=max(200000, len(data) / 6.0))
    url = proxy.url(store.name("shared.csv"))
    bg = migrated.start("import", url, "--dataset", "shared", "--json", env=SPLIT)
    job_id = bg.wait_job_id()
    workers = [migrated.start("worker", "--concurrency", "1", env=SPLIT) for _ in range(2)]
    try:
        # kill the import once some ranges are in and others load
        deadline = time.monotonic() + 120 * timeout_factor()
        while time.monotonic() < deadline:
            done = [r for r in _ranges(db, job_id) if r["status"] == "completed"]
            if len(done) >= 3:
                break
            time.sleep(0.05)
        assert len(done) >= 3, "no range completed"
        bg.kill()
        for w in workers:
            w.proc.send_signal(signal.SIGKILL)
            w.proc.wait()
        checks.wait_client_sessions_gone(db)
        ranges = _ranges(db, job_id)
        left = [r for r in ranges if r["status"] != "completed"]
        assert left, "every range was in before the kill"
        # the split job's progress advances with its ranges (status API, monitoring)
        done = [r for r in ranges if r["status"] == "completed"]
        prog = checks.progress(db, job_id)
        assert prog["ranges_completed"] == len(done)
        assert prog["rows_processed"] == sum(r["output_summary"]["rows"] for r in done)
        assert 0 < prog["percentage"] < 100
        proxy.configure(throttle=None)
        res = migrated.run("import", "--resume", job_id, "--json", env=SPLIT, timeout=600)
        assert res.code == 0, res
    finally:
        for w in workers:
            if w.running():
                w.kill()
    split = res.json()
    ranges = _ranges(db, job_id)
    owners = {":".join(r["worker_id"].split(":")[:2]) for r in ranges}  # host:pid
    assert len(owners) >= 2, "the ranges were not shared: %s" % owners
    assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                     (split["commit_id"],)) == whole["rows_imported"]
    _assert_same_import(db, split, whole, whole["rows_imported"])


def _where(stderr):
    """_where is the error's "table primary, row N (byte B): reason" part."""
    m = re.search(r"table primary, row \d+ \(byte \d+\): [^\n]*", stderr)
    assert m, stderr[-2000:]
    return m.group(0)


def test_bad_record_in_a_middle_range_fails_the_split_job(migrated, db, store):
    rows = list(gen.people_rows(ROWS, seed=11))
    data = bytearray(gen.csv_bytes(rows))
    at = data.index(b"\n", len(data) // 2) + 1
    data[at:at] = b'"bad"x,1,2,3,4,5\n'  # a character after a closing quote
    store.put("bad.csv", bytes(data))
    whole = migrated.run("import", store.url("bad.csv"), "--dataset", "bad", "--json", env=WHOLE,
                         timeout=600)
    assert whole.code == 1, whole
    res = migrated.run("import", store.url("bad.csv"), "--dataset", "bad", "--json", env=SPLIT,
                       timeout=600)
    assert res.code == 1, res
    assert "split into" in res.stderr
    assert _where(res.stderr) == _where(whole.stderr)  # the same row, byte and reason
    assert "range %d of" % (at // RANGE + 1) in res.stderr  # a middle range read it
    job_id = db.scalar("SELECT id::text FROM dsa_jobs.analysis_runs WHERE parent_run_id IS NULL"
                       " AND run_parameters ? 'split'")
    job = jobqueue.row(db, job_id)
    assert job["status"] == "failed" and "range" in job["error_message"], job["error_message"]
    ranges = _ranges(db, job_id)
    assert ranges and all(r["status"] in ("failed", "completed") for r in ranges)
    checks.assert_no_trace_of_failed_job(db, "bad", job)
