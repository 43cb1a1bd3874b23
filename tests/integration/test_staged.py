"""Staged loads (src/job/stage.h, docs/performance.md): an object of IMPORT_STAGE_MIN_BYTES or
more is COPYed batch by batch into the job's UNLOGGED staging tables (the checkpoint in each
batch's transaction), then merged into dsa_core.rows and the manifest in hash order, each
merge step committing with the parts it finished.

- A staged import gives exactly the commit a direct import gives (and the reference reader's).
- kill -9 while staging: the staging tables hold exactly the rows the checkpoint describes,
  the manifest nothing yet; the resumed job equals an uninterrupted one.
- kill -9 during the merge (one of its two connections held back by a table lock the test
  takes): the resumed job merges only the parts not merged yet (a part merged twice would
  break commit_rows' primary key) and equals an uninterrupted one.
- A server crash empties UNLOGGED tables: the resumed job says so and reads the object again
  from the beginning, with the same result.
- A server crash once every part is merged costs nothing: the resume publishes the same commit.
- A staged job that fails leaves nothing: no commit, no manifest, no staging tables.
- A row another job commits while a merge step inserts it (after the step's snapshot) costs
  that step a unique violation; the step is done again with ON CONFLICT and the job completes.
- `jobs cancel` while a job stages or merges neither deadlocks with its batches and merge
  steps (both take the staging tables first and the job row last) nor leaves anything.
"""
import threading
import time

import psycopg2
import pytest

from harness import checks, gen, refreader
from harness.runner import scale, timeout_factor

ROWS = max(12000, int(40000 * scale()))
BATCH = 500
STAGED = {"IMPORT_STAGE_MIN_BYTES": "1", "IMPORT_BATCH_SIZE": str(BATCH),
          "IMPORT_RETRY_BACKOFF_MS": "50", "IMPORT_PARALLEL_WORKERS": "2"}
DIRECT = dict(STAGED, IMPORT_STAGE_MIN_BYTES="0")
ALL_MERGED = {"parts": 16, "rows_merged": list(range(16)), "manifest_merged": list(range(16))}

_DATA = {}


def _data():
    """_data: people rows (quoted commas, quotes, newlines) where every 40th row repeats an
    earlier row's content, so contents repeat within and across batches."""
    if "csv" not in _DATA:
        rows = list(gen.people_rows(ROWS, seed=17))
        for i in range(40, ROWS, 40):
            rows[i] = list(rows[i - 37 if i % 80 else i - 1500 if i > 1500 else 0])
        plain = gen.csv_bytes(rows)
        _DATA["csv"] = (plain, refreader.read_records(plain))
    return _DATA["csv"]


def _import(ingest, url, dataset, env):
    res = ingest.run("import", url, "--dataset", dataset, "--json", env=env, timeout=600)
    assert res.code == 0, res
    return res.json()["commit_id"]


def _stage_tables(db):
    return [r["relname"] for r in db.query(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'dsa_ingest' AND c.relname LIKE 'stage\\_%%' ORDER BY 1")]


def _staged_ids(db):
    """_staged_ids: the logical ids in every staging table (one job at a time here)."""
    ids = []
    for t in _stage_tables(db):
        if t.count("_") == 2:  # stage_<job>_<part>; stage_<job> is the marker
            ids += [r["logical_row_id"] for r in db.query(
                "SELECT logical_row_id FROM dsa_ingest.%s" % t)]
    return ids


def _wait(db, bg, job_id, pred, what, timeout=120):
    deadline = time.monotonic() + timeout * timeout_factor()
    while time.monotonic() < deadline:
        prog = checks.progress(db, job_id) or {}
        if pred(prog):
            return prog
        if not bg.running():
            pytest.fail("import ended before %s (progress %s): %s" % (what, prog, bg.stderr[-2000:]))
        time.sleep(0.02)
    pytest.fail("no %s within %ds (progress %s)" % (what, timeout, checks.progress(db, job_id)))


def _stage(prog):
    """_stage is the checkpoint's stage object with its part lists sorted (a running merge
    lists parts in the order they finished)."""
    st = dict((prog.get("checkpoint") or {}).get("stage") or {})
    for key in ("rows_merged", "manifest_merged"):
        if key in st:
            st[key] = sorted(st[key])
    return st


def _start_throttled(migrated, store, proxy, dataset):
    """_start_throttled starts a staged import of staged.csv through the throttling proxy
    (~6 s), so kills land while it stages; returns (process, job id, expected rows)."""
    data, expected = _data()
    store.put("staged.csv", data)
    proxy.configure(throttle=max(50000, len(data) / 6.0))
    bg = migrated.start("import", proxy.url(store.name("staged.csv")), "--dataset", dataset,
                        "--json", env=STAGED)
    return bg, bg.wait_job_id(), expected


def _clean_manifest(migrated, db, store):
    """_clean_manifest is an uninterrupted direct import's manifest of staged.csv, imported
    once per module (logical ids and hashes do not depend on the database)."""
    if "clean" not in _DATA:
        _DATA["clean"] = checks.manifest(
            db, _import(migrated, store.url("staged.csv"), "clean", DIRECT))
    return _DATA["clean"]


def _assert_finished_like(migrated, db, store, job_id, res, expected):
    assert res.code == 0, res
    commit_id = res.json()["commit_id"]
    stage = _stage(checks.progress(db, job_id))
    assert stage == ALL_MERGED, stage
    assert _stage_tables(db) == [], "staging tables left after the job completed"
    assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                     (commit_id,)) == ROWS, "duplicates or losses in the manifest"
    manifest = checks.manifest(db, commit_id)
    assert manifest == _clean_manifest(migrated, db, store), \
        "resumed staged import differs from an uninterrupted direct one"
    if refreader.have_xxh3():
        assert manifest == refreader.manifest(expected)


def test_staged_equals_direct_and_the_reference(migrated, db, store):
    data, expected = _data()
    store.put("staged.csv", data)
    res = migrated.run("import", store.url("staged.csv"), "--dataset", "staged", "--json",
                       env=STAGED, timeout=600)
    assert res.code == 0, res
    staged_commit = res.json()["commit_id"]
    job = checks.job(db, res.json()["job_id"])
    assert _stage(job["run_parameters"]["progress"]) == ALL_MERGED
    assert "merge_s" in job["output_summary"]["timings"], job["output_summary"]
    assert _stage_tables(db) == [], "staging tables left after the job completed"
    distinct = len({refreader.canonical_json(r) for r in expected.values()}) \
        if isinstance(expected, dict) else None
    checks.assert_matches_reference(db, staged_commit, expected)
    if distinct is not None:
        assert db.scalar("SELECT count(*) FROM dsa_core.rows") == distinct
    staged = checks.manifest(db, staged_commit)
    direct = checks.manifest(db, _import(migrated, store.url("staged.csv"), "direct", DIRECT))
    assert len(staged) == ROWS
    assert staged == direct, "a staged import gave a different manifest than a direct one"


def test_kill_while_staging_then_resume(migrated, db, store, proxy):
    bg, job_id, expected = _start_throttled(migrated, store, proxy, "ks")
    for k in (3, 9):
        prog = _wait(db, bg, job_id, lambda p, k=k: (p.get("batches") or 0) >= k, "batch %d" % k)
        bg.kill()
        checks.wait_client_sessions_gone(db)
        prog = checks.progress(db, job_id)
        assert _stage(prog) == {"parts": 16, "rows_merged": [], "manifest_merged": []}, prog
        want = checks.checkpoint_rows(prog)
        staged = _staged_ids(db)
        assert len(staged) == len(set(staged)), "a row was staged twice"
        assert set(staged) == want, "staging holds %d rows, the checkpoint describes %d" % (
            len(staged), len(want))
        commit_id = prog["checkpoint"]["commit_id"]
        assert checks.manifest(db, commit_id) == {}, "the manifest has rows before the merge"
        bg = migrated.start("import", "--resume", job_id, "--json", env=STAGED)
    proxy.configure(throttle=None)
    res = bg.wait(timeout=600)
    _assert_finished_like(migrated, db, store, job_id, res, expected)


@pytest.mark.parametrize("held", ["dsa_core.rows", "dsa_core.commit_rows"])
def test_kill_during_the_merge_then_resume(migrated, db, store, pg, held):
    """The test holds one target table locked: its connection waits at its first part, the
    other merges all 16 parts of the other target, then waits too (at the held target's last
    part, taken from the far end). The kill lands there: one target merged, the other not."""
    data, expected = _data()
    store.put("staged.csv", data)
    lock = psycopg2.connect(db.url)
    try:
        lock.cursor().execute("LOCK TABLE %s IN EXCLUSIVE MODE" % held)
        bg = migrated.start("import", store.url("staged.csv"), "--dataset", "km", "--json",
                            env=STAGED)
        job_id = bg.wait_job_id()
        other = "manifest_merged" if held == "dsa_core.rows" else "rows_merged"
        prog = _wait(db, bg, job_id, lambda p: len(_stage(p).get(other) or []) == 16,
                     "the other target's 16 parts")
        bg.kill()
    finally:
        lock.rollback()
        lock.close()
    checks.wait_client_sessions_gone(db)
    prog = checks.progress(db, job_id)
    mine = "rows_merged" if held == "dsa_core.rows" else "manifest_merged"
    assert _stage(prog)[mine] == [] and _stage(prog)[other] == list(range(16)), prog
    res = migrated.run("import", "--resume", job_id, "--json", env=STAGED, timeout=600)
    _assert_finished_like(migrated, db, store, job_id, res, expected)


def test_server_crash_empties_the_stage_and_the_job_starts_over(migrated, db, store, proxy, pg):
    bg, job_id, expected = _start_throttled(migrated, store, proxy, "crash")
    _wait(db, bg, job_id, lambda p: (p.get("batches") or 0) >= 5, "batch 5")
    bg.kill()
    proxy.configure(throttle=None)
    db.close()
    pg.restart(mode="immediate")  # crash recovery resets every UNLOGGED table
    old_commit = checks.progress(db, job_id)["checkpoint"]["commit_id"]
    assert _staged_ids(db) == [], "crash recovery left staged rows"
    res = migrated.run("import", "--resume", job_id, "--json", env=STAGED, timeout=600)
    assert "staged rows were lost" in res.stderr, res.stderr[-2000:]
    assert res.json()["commit_id"] != old_commit
    assert checks.commit(db, old_commit) is None, "the lost run's commit was left behind"
    _assert_finished_like(migrated, db, store, job_id, res, expected)


def test_server_crash_after_the_merge_keeps_the_merged_rows(migrated, db, store, pg):
    """A crash once every part is merged loses nothing the job still needs: the resume
    publishes what is there instead of reading the object again. The test holds a staging
    table open (ACCESS SHARE: loading and merging go on) so the publish, which drops the
    staging tables first, waits; the kill and the crash land there."""
    data, expected = _data()
    store.put("staged.csv", data)
    bg = migrated.start("import", store.url("staged.csv"), "--dataset", "late", "--json",
                        env=STAGED)
    job_id = bg.wait_job_id()
    table = "dsa_ingest.stage_%s_0" % job_id.replace("-", "")
    db.wait_for("SELECT to_regclass(%s) IS NOT NULL", (table,), timeout=60)
    hold = psycopg2.connect(db.url)
    try:
        hold.cursor().execute("SELECT count(*) FROM %s" % table)
        prog = _wait(db, bg, job_id, lambda p: _stage(p) == ALL_MERGED, "every part merged")
        bg.kill()
    finally:
        hold.rollback()
        hold.close()
    # The test cluster runs with synchronous_commit off: flush the WAL, or the crash may take
    # the last merge steps' commits with it (and the resume then rightly starts over).
    db.query("CHECKPOINT")
    db.close()
    pg.restart(mode="immediate")
    commit_id = prog["checkpoint"]["commit_id"]
    res = migrated.run("import", "--resume", job_id, "--json", env=STAGED, timeout=600)
    assert "staged rows were lost" not in res.stderr, res.stderr[-2000:]
    assert res.json()["commit_id"] == commit_id
    _assert_finished_like(migrated, db, store, job_id, res, expected)


def test_a_failed_staged_job_leaves_no_trace(migrated, db, store):
    data, _ = _data()
    bad = data + b'99999999,"unterminated\n'
    store.put("bad.csv", bad)
    res = migrated.run("import", store.url("bad.csv"), "--dataset", "bad", "--json",
                       env=STAGED, timeout=600)
    assert res.code != 0, res
    job = db.one("SELECT id::text AS id, status, error_message, run_parameters "
                 "FROM dsa_jobs.analysis_runs")
    assert job["status"] == "failed", job
    assert _stage(job["run_parameters"]["progress"]).get("parts") == 16, \
        "the job was not a staged load"
    checks.assert_no_trace_of_failed_job(db, "bad", job)
    assert _stage_tables(db) == [], "a failed job left its staging tables"


def _assert_cancelled(db, job_id, commit_id, bg, cancel):
    assert cancel.code == 0, cancel
    res = bg.wait(timeout=120)
    assert res.code != 0, "the import went on after its job was cancelled: %s" % res
    assert "no longer held" in res.stderr and "deadlock" not in res.stderr, res.stderr[-2000:]
    job = checks.job(db, job_id)
    assert job["status"] == "failed" and job["error_message"] == "cancelled by user", job
    assert checks.commit(db, commit_id) is None, "the cancelled job's commit remains"
    assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                     (commit_id,)) == 0, "the cancelled job's manifest remains"
    assert _stage_tables(db) == [], "the cancelled job's staging tables remain"


def test_cancel_while_staging_leaves_nothing(migrated, db, store, proxy):
    bg, job_id, _ = _start_throttled(migrated, store, proxy, "cs")
    prog = _wait(db, bg, job_id, lambda p: (p.get("batches") or 0) >= 3, "batch 3")
    cancel = migrated.run("jobs", "cancel", job_id, timeout=60)
    proxy.configure(throttle=None)
    _assert_cancelled(db, job_id, prog["checkpoint"]["commit_id"], bg, cancel)


def test_cancel_while_merge_steps_wait_does_not_deadlock(migrated, db, store):
    """Merge steps in flight hold their staging tables and wait at their fenced checkpoint
    update while the test holds the job's row (FOR UPDATE; commit_rows is held locked until
    then, so the rows are merged and both connections are in manifest steps). The cancel's
    DROP of the staging tables waits behind those steps: when the row is let go they commit,
    the cancel goes through, and the import stops at its next step ("no longer held"): no
    deadlock, and nothing is left."""
    data, _ = _data()
    store.put("staged.csv", data)
    table, row = psycopg2.connect(db.url), psycopg2.connect(db.url)
    cancelled = []
    try:
        table.cursor().execute("LOCK TABLE dsa_core.commit_rows IN EXCLUSIVE MODE")
        bg = migrated.start("import", store.url("staged.csv"), "--dataset", "cm", "--json",
                            env=STAGED)
        job_id = bg.wait_job_id()
        prog = _wait(db, bg, job_id, lambda p: len(_stage(p).get("rows_merged") or []) == 16,
                     "the rows' 16 parts")
        row.cursor().execute("SELECT 1 FROM dsa_jobs.analysis_runs WHERE id = %s FOR UPDATE",
                             (job_id,))
        table.rollback()
        db.wait_for("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'UPDATE dsa_jobs.analysis_runs SET run_parameters%%'",
                    predicate=lambda n: n == 2, timeout=30)
        th = threading.Thread(target=lambda: cancelled.append(
            migrated.run("jobs", "cancel", job_id, timeout=120)))
        th.start()
        db.wait_for("SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'DROP TABLE%%'", timeout=30)
    finally:
        table.rollback()
        row.rollback()
        table.close()
        row.close()
    th.join(timeout=150)
    assert cancelled, "jobs cancel did not return"
    _assert_cancelled(db, job_id, prog["checkpoint"]["commit_id"], bg, cancelled[0])


def test_a_row_committed_by_another_job_during_the_merge(migrated, db, store):
    """The rows step inserts what dsa_core.rows lacks (NOT EXISTS). The test inserts one of the
    job's rows itself and keeps it uncommitted, so the step does not see it, inserts it too
    and waits at the primary key; the test then commits, the step fails with a unique
    violation and is done again with ON CONFLICT DO NOTHING. The job completes with the
    reference's rows, that row once."""
    rows = list(gen.people_rows(3000, seed=23))  # rows no other test has put in the database
    plain = gen.csv_bytes(rows)
    expected = refreader.read_records(plain)
    store.put("race.csv", plain)
    first = expected[min(expected)]
    h = refreader.row_hash(first)
    other = psycopg2.connect(db.url)
    try:
        other.cursor().execute("INSERT INTO dsa_core.rows (row_hash, data) VALUES (%s, %s)",
                               (h, refreader.canonical_json(first)))
        bg = migrated.start("import", store.url("race.csv"), "--dataset", "race", "--json",
                            env=STAGED)
        db.wait_for("SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND wait_event = 'transactionid' AND query LIKE '%%INSERT INTO dsa_core.rows%%'",
                    timeout=60)
        other.commit()
    finally:
        other.rollback()
        other.close()
    res = bg.wait(timeout=120)
    assert res.code == 0, res
    checks.assert_matches_reference(db, res.json()["commit_id"], expected)
    assert db.scalar("SELECT count(*) FROM dsa_core.rows WHERE row_hash = %s", (h,)) == 1
