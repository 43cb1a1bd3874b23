"""kill -9 at any moment, then `import --resume JOB_ID`, gives exactly the commit an
uninterrupted import gives (DESIGN §3): same logical ids, same hashes, nothing twice,
the ref on the job's commit. The checkpoint is in the same transaction as its batch, so
after every kill the committed manifest is exactly the rows the checkpoint counts. The
resumed run reads from the checkpoint's offset with a ranged GET, not from byte 0.

Timing is made deterministic by throttling the source through the fault proxy (the
import takes ~6 s) and killing when the job's own progress shows k batches.
"""
import math
import time

import pytest

from harness import checks, gen, refreader
from harness.runner import scale, timeout_factor

ROWS = max(20000, int(150000 * scale()))
BATCH = 1000
TOTAL_BATCHES = math.ceil(ROWS / BATCH)
THROTTLED_SECONDS = 6.0
ENV = {"IMPORT_BATCH_SIZE": str(BATCH), "IMPORT_RETRY_BACKOFF_MS": "50"}

_DATA = {}


def _dataset_file(compress):
    """_dataset_file is the generated CSV (or its gzip) and its reference, built once per module."""
    if compress not in _DATA:
        plain = gen.csv_bytes(list(gen.people_rows(ROWS, seed=31)))
        expected = refreader.read_records(plain)
        assert len(expected) == ROWS
        _DATA[compress] = (gen.gzip_bytes(plain) if compress else plain, expected)
    return _DATA[compress]


def _wait_batches(db, bg, job_id, k, timeout=120):
    """_wait_batches polls the job's progress until it shows ≥ k batches; returns the progress."""
    deadline = time.monotonic() + timeout * timeout_factor()
    while time.monotonic() < deadline:
        prog = checks.progress(db, job_id) or {}
        if (prog.get("batches") or 0) >= k:
            return prog
        if not bg.running():
            pytest.fail("import ended before batch %d (progress %s): %s" % (k, prog, bg.stderr[-2000:]))
        time.sleep(0.02)
    pytest.fail("no batch %d within %ds (progress %s)" % (k, timeout, checks.progress(db, job_id)))


def _wait_killed_sessions_gone(db, timeout=30):
    """_wait_killed_sessions_gone waits until the killed client's backends have exited, so a
    COMMIT it sent just before dying is either visible now or never."""
    db.wait_for("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                predicate=lambda n: n == 0, timeout=timeout)


def _assert_checkpoint_consistent(db, dataset, job_id):
    """After a kill: the manifest holds exactly the checkpoint's rows, in order; no ref yet."""
    _wait_killed_sessions_gone(db)
    job = checks.job(db, job_id)
    assert job["status"] != "completed", job
    assert checks.ref_head(db, dataset) is None, "ref exists before the job completed"
    prog = job["run_parameters"].get("progress") or {}
    done = prog.get("rows_processed") or 0
    commit_id = (prog.get("checkpoint") or {}).get("commit_id")
    if done == 0:
        return prog
    assert commit_id, "progress has rows but no checkpoint.commit_id: %s" % prog
    have = set(checks.manifest(db, commit_id))
    want = checks.checkpoint_rows(prog)
    assert len(want) == done, "checkpoint counts %d rows but describes %d: %s" % (
        done, len(want), prog["checkpoint"])
    assert have == want, "manifest (%d rows) is not the checkpoint's %d rows: %d extra, %d missing" % (
        len(have), done, len(have - want), len(want - have))
    return prog


def _assert_ranged_resume(store, name, prog, size, since):
    """_assert_ranged_resume: the resumed run's GETs start past 0, at or before the checkpoint."""
    gets = [g for g in store.requests(name, "GET") if g["time"] >= since]
    assert gets, "the resumed run made no GET"
    starts = [g["start"] or 0 for g in gets]
    assert min(starts) > 0, "the resumed run read the object from byte 0: %s" % starts
    cp = prog.get("checkpoint") or {}
    limit = max([cp.get("offset") or 0, (cp.get("decoder") or {}).get("in_offset") or 0])
    assert starts[0] <= limit, "resumed at %d, past the checkpoint %s" % (starts[0], cp)
    assert starts[0] >= size // 10, "resumed at %d of %d after ≥25%% of batches" % (starts[0], size)


def _clean_manifest(ingest, db, store, name):
    """_clean_manifest is the manifest of an uninterrupted import of the same object, made
    once per object for the module (a manifest is values, not references into a database)."""
    key = ("clean", name)
    if key not in _DATA:
        res = ingest.run("import", store.url(name), "--dataset", "clean", "--json", env=ENV,
                         timeout=300)
        assert res.code == 0, res
        _DATA[key] = checks.manifest(db, res.json()["commit_id"])
    return _DATA[key]


SCHEDULES = {"early": [2], "several": [0, 0.3, 0.6, 0.85]}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("compress", [False, True], ids=["csv", "gzip"])
def test_kill_and_resume(migrated, db, store, proxy, compress, schedule):
    data, expected = _dataset_file(compress)
    name = "big.csv.gz" if compress else "big.csv"
    store.put(name, data)
    proxy.configure(throttle=max(20000, len(data) / THROTTLED_SECONDS))
    bg = migrated.start("import", proxy.url(store.name(name)), "--dataset", "resumed",
                        "--json", env=ENV)
    job_id = bg.wait_job_id()
    resumed_from = []
    for i, point in enumerate(SCHEDULES[schedule]):
        k = point if isinstance(point, int) else max(1, int(TOTAL_BATCHES * point))
        if i > 0:
            bg = migrated.start("import", "--resume", job_id, "--json", env=ENV)
        _wait_batches(db, bg, job_id, k)
        bg.kill()
        prog = _assert_checkpoint_consistent(db, "resumed", job_id)
        if resumed_from:
            assert (prog.get("rows_processed") or 0) >= resumed_from[-1], "progress went back"
        resumed_from.append(prog.get("rows_processed") or 0)
    proxy.configure(throttle=None)
    since = time.monotonic()
    res = migrated.run("import", "--resume", job_id, "--json", env=ENV, timeout=300)
    assert res.code == 0, res
    out = res.json()
    assert out["job_id"] == job_id and out["status"] == "completed", out
    if isinstance(point, float) and point >= 0.25:
        _assert_ranged_resume(store, name, prog, len(data), since)
    commit_id = out["commit_id"]
    assert checks.ref_head(db, "resumed") == commit_id
    job = checks.job(db, job_id)
    assert job["status"] == "completed" and job["output_summary"]["rows"] == ROWS, job
    assert job["output_summary"]["commit_id"].strip() == commit_id
    assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                     (commit_id,)) == ROWS, "duplicates or losses in the manifest"
    manifest = checks.manifest(db, commit_id)
    if refreader.have_xxh3():
        assert manifest == refreader.manifest(expected), "manifest differs from the reference"
    assert manifest == _clean_manifest(migrated, db, store, name), \
        "resumed manifest differs from an uninterrupted import's"
    n_commits = db.scalar("SELECT count(*) FROM dsa_core.commits c JOIN dsa_core.datasets d"
                          " ON d.id = c.dataset_id WHERE d.name = 'resumed'")
    assert n_commits == 1, "resumes left %d commits" % n_commits


def test_resume_fails_if_object_changed(migrated, db, store, proxy):
    """The object is pinned by ETag: a resume after it changed fails instead of mixing versions."""
    data, _ = _dataset_file(False)
    store.put("pinned.csv", data)
    proxy.configure(throttle=max(20000, len(data) / THROTTLED_SECONDS))
    bg = migrated.start("import", proxy.url(store.name("pinned.csv")), "--dataset", "pinned",
                        "--json", env=ENV)
    job_id = bg.wait_job_id()
    _wait_batches(db, bg, job_id, 5)
    bg.kill()
    killed_at = time.monotonic()
    time.sleep(0.01)
    store.put("pinned.csv", data.replace(b"example.com", b"example.org"))
    proxy.configure(throttle=None)
    res = migrated.run("import", "--resume", job_id, "--json", env=ENV, timeout=120)
    assert res.code in (1, 2), "expected a clear failure, got %r" % res
    assert "etag" in res.stderr.lower() or "changed" in res.stderr.lower() \
        or "412" in res.stderr, res.stderr
    job = checks.job(db, job_id)
    assert job["status"] == "failed" and job["error_message"], job
    checks.assert_no_trace_of_failed_job(db, "pinned", job)
    after = [g for g in store.requests("pinned.csv") if g["time"] > killed_at]
    assert any(g["if_match"] for g in after), \
        "the resumed run did not pin the object with If-Match: %s" % after


def test_resume_unknown_job_is_usage_error(migrated):
    res = migrated.run("import", "--resume", "00000000-0000-4000-8000-000000000000", timeout=60)
    assert res.code == 2, res


def _zip_file():
    """_zip_file: the dataset split over three members (stored: offsets are easy to reason
    about), the reference rows keyed by member table, and each member's start offset."""
    if "zip" not in _DATA:
        import io
        import zipfile
        rows = list(gen.people_rows(ROWS, seed=31))
        third = len(rows) // 3
        parts = {"a.csv": rows[:third], "b.csv": rows[third:2 * third], "c.csv": rows[2 * third:]}
        buf = io.BytesIO()
        expected = {}
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for name, part in parts.items():
                data = gen.csv_bytes(part)
                zf.writestr(name, data)
                expected.update(refreader.read_records(data, table=name[0]))
        zf = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
        starts = {i.filename[0]: i.header_offset for i in zf.infolist()}
        _DATA["zip"] = (buf.getvalue(), expected, starts)
    return _DATA["zip"]


def test_kill_and_resume_zip(migrated, db, store, proxy):
    """Kill -9 at several moments of a three-member zip; each resume restarts at the member
    being read (the members before it are skipped through the central directory), and the
    result equals an uninterrupted import."""
    data, expected, starts = _zip_file()
    store.put("big.zip", data)
    proxy.configure(throttle=max(20000, len(data) / THROTTLED_SECONDS))
    bg = migrated.start("import", proxy.url(store.name("big.zip")), "--dataset", "rz", "--json",
                        env=ENV)
    job_id = bg.wait_job_id()
    for i, point in enumerate([0.2, 0.5, 0.8]):
        if i > 0:
            bg = migrated.start("import", "--resume", job_id, "--json", env=ENV)
        _wait_batches(db, bg, job_id, max(1, int(TOTAL_BATCHES * point)))
        bg.kill()
        _wait_killed_sessions_gone(db)
        prog = checks.progress(db, job_id)
        commit_id = prog["checkpoint"]["commit_id"]
        assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                         (commit_id,)) == prog["rows_processed"], prog
    member = prog["checkpoint"]["member"]
    assert member["name"] == "c.csv", "the last kill should fall in the third member: %s" % member
    proxy.configure(throttle=None)
    since = time.monotonic()
    res = migrated.run("import", "--resume", job_id, "--json", env=ENV, timeout=300)
    assert res.code == 0, res
    # The resumed run reads the central directory, the local headers, and member c from its
    # start; it never streams through a or b (a GET that starts in a member's data).
    starts_seen = sorted((g["start"] or 0) for g in store.requests("big.zip", "GET")
                         if g["time"] >= since)
    assert starts["c"] in starts_seen, "no GET at member c's header: %s" % starts_seen
    data_of_ab = [o for o in starts_seen if starts["a"] + 64 < o < starts["c"] and o != starts["b"]]
    assert not data_of_ab, "the resume read inside members a/b: %s" % starts_seen
    out = res.json()
    checks.assert_matches_reference(db, out["commit_id"], expected)
    assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                     (out["commit_id"],)) == ROWS
