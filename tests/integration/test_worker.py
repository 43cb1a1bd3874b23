"""The worker fleet (issue 4): a queue in PostgreSQL shared by worker processes, leases with
fencing, one writer per ref, signals, transient failures, and resume mid-stream — tested
with real processes, real signals (SIGKILL, SIGTERM, SIGSTOP/SIGCONT) and a real PostgreSQL
that is restarted under the workers.

Jobs are queued as a platform (or an operator) would: a row inserted with psql, nothing
else. Sources are served by the harness's HTTP server through the fault proxy, throttled
so a job lasts a few seconds and a signal lands mid-stream. What every test ends with is
the same strong check: each job completed exactly once, its ref points at its one commit,
and that commit's manifest equals the reference reader's (harness/refreader.py).

Who wrote what is read from an audit trigger on the job row (harness/jobqueue.py): every
batch transaction updates the row (checkpoint + fenced lease renewal), so the audit lists
exactly the batches that committed and the worker id that committed each.
"""
import json
import math
import random
import re
import signal
import time
import urllib.error
import urllib.request

import pytest

from harness import checks, gen, jobqueue, refreader
from harness.faultproxy import FaultProxy
from harness.runner import scale, timeout_factor

BATCH = max(100, int(1000 * scale()))  # ~30 batches per job at any scale
# A plain CSV is parsed in 1 MiB reads (the parser fills its whole buffer before it parses),
# so on a throttled link batches come in bursts per MiB: the sources stay above a few MiB at
# any DSA_TEST_SCALE, or a job would be downloaded whole before its first batch.
PEOPLE_ROWS = max(20000, int(30000 * scale()))  # the queued jobs' sources (1.8-2.7 MB each)
WIDE_ROWS = max(10000, int(20000 * scale()))    # the single-job tests' source (5-10 MB)
JOB_SECONDS = 3.0       # how long the proxy stretches one job's download in the fleet test
SLOW_SECONDS = 7.0      # … in the single-job tests (signals land mid-stream)
BASE_ENV = {"IMPORT_BATCH_SIZE": str(BATCH), "IMPORT_RETRY_BACKOFF_MS": "50",
            "IMPORT_POLL_INTERVAL": "1"}
MiB = 1 << 20


# -- data (built once per module: generation and the reference cost seconds) ----------

class Source:
    """Source is one generated CSV with its reference rows and (with libxxhash) manifest."""

    def __init__(self, plain):
        self.plain = plain
        self.expected = refreader.read_records(plain)
        self.rows = len(self.expected)
        self._manifest = None
        self._gz = None

    @property
    def gz(self):
        if self._gz is None:
            self._gz = gen.gzip_bytes(self.plain)
        return self._gz

    def manifest(self):
        if self._manifest is None and refreader.have_xxh3():
            self._manifest = refreader.manifest(self.expected)
        return self._manifest


_SOURCES = {}


def people(k):
    """people(k) is the k-th queued-job source (distinct seeds: a swapped commit shows)."""
    key = ("people", k)
    if key not in _SOURCES:
        rows = PEOPLE_ROWS - 1000 * k
        _SOURCES[key] = Source(gen.csv_bytes(list(gen.people_rows(rows, seed=100 + k))))
        assert _SOURCES[key].rows == rows
    return _SOURCES[key]


def wide():
    """wide() is the kill test's source: few rows, many MiB (gzip access points are ~1 MiB of
    output apart, so only a big decompressed stream shows that resume skips most of it)."""
    key = ("wide",)
    if key not in _SOURCES:
        _SOURCES[key] = Source(gen.csv_bytes(list(gen.wide_rows(WIDE_ROWS, seed=9)),
                                             header=gen.WIDE_COLUMNS))
        assert _SOURCES[key].rows == WIDE_ROWS
    return _SOURCES[key]


# -- helpers ----------------------------------------------------------------------------

def env(**extra):
    e = dict(BASE_ENV)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def assert_exact(db, commit_id, src):
    """assert_exact: the commit holds exactly the source's rows, each with the reference hash."""
    n = db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s", (commit_id,))
    assert n == src.rows, "commit %s has %d manifest rows, the source %d" % (commit_id, n, src.rows)
    if src.manifest() is not None:
        got = checks.manifest(db, commit_id)
        if got != src.manifest():
            diff = sorted(k for k in set(got) | set(src.manifest())
                          if got.get(k) != src.manifest().get(k))
            pytest.fail("commit %s differs from the reference at %d ids, e.g. %s"
                        % (commit_id, len(diff), diff[:5]))
    else:
        checks.assert_matches_reference(db, commit_id, src.expected)


def assert_completed_once(db, job_id, dataset, src, ref="main"):
    """assert_completed_once: completed, one commit in the dataset, the ref on it, exact rows."""
    job = jobqueue.row(db, job_id)
    assert job["status"] == "completed", job
    summary = job["output_summary"]
    commit_id = summary["commit_id"].strip()
    assert summary["rows"] == src.rows, summary
    assert checks.ref_head(db, dataset, ref) == commit_id, "ref %s is not on the job's commit" % ref
    assert_exact(db, commit_id, src)
    return job, commit_id


def commits_in(db, dataset):
    return db.scalar("SELECT count(*) FROM dsa_core.commits c JOIN dsa_core.datasets d"
                     " ON d.id = c.dataset_id WHERE d.name = %s", (dataset,))


def held_by(db, bg, min_batches=0):
    """held_by lists the running jobs whose lease belongs to process bg with at least
    min_batches committed and part of the object still to download (far from done)."""
    return db.query("SELECT id::text AS id, (p->>'batches')::int AS batches"
                    " FROM (SELECT id, run_parameters->'progress' AS p, worker_id, status"
                    "       FROM dsa_jobs.analysis_runs) j"
                    " WHERE status = 'running' AND worker_id LIKE %s"
                    " AND coalesce((p->>'batches')::int, 0) >= %s"
                    " AND (p->>'bytes_read')::bigint < (p->>'bytes_total')::bigint"
                    " ORDER BY batches DESC", (jobqueue.owner_like(bg), min_batches))


def wait_until(what, fn, timeout, interval=0.05, bg=()):
    """wait_until polls fn() until it returns something truthy; fails with what and the logs."""
    deadline = time.monotonic() + timeout * timeout_factor()
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    logs = "\n".join("--- %s (exit %s)\n%s" % (" ".join(b.cmd[1:]), b.proc.poll(), b.stderr[-2500:])
                     for b in bg)
    pytest.fail("timed out after %ss waiting for %s\n%s" % (timeout, what, logs))


def gets_since(store, name, since, timeout=10):
    """gets_since: the GETs of an object that arrived after `since`, oldest first; waits until
    at least one is logged (the server logs a request when its body ends or breaks)."""
    def fetch():
        return sorted([g for g in store.requests(name, "GET") if g["time"] >= since],
                      key=lambda g: g["time"])
    return wait_until("a GET of %s" % name, fetch, timeout, interval=0.05)


def run_ok(ingest, *args, **kw):
    res = ingest.run(*args, **kw)
    assert res.code == 0, res
    return res


def wait_exit(bg, timeout):
    res = bg.wait(timeout=timeout)
    assert res.code == 0, "%s exited %s:\n%s" % (" ".join(bg.cmd[1:]), res.code, res.stderr[-3000:])
    return res


# -- 1. six queued jobs, two workers, one killed and replaced --------------------------

def test_six_jobs_two_workers_one_killed_and_replaced(migrated, db, store, proxy, http):
    """Every job completes exactly once with its exact rows although a worker holding jobs
    is SIGKILLed mid-way; its jobs are reclaimed when their lease expires and resume from
    the last committed batch (nothing lost, nothing twice, no batch redone that committed)."""
    jobqueue.install_audit(db)
    gz_proxy = FaultProxy(http.port).start()
    try:
        jobs = []  # (job_id, dataset, source, object name)
        plain_size = gz_size = 0
        for i in range(6):
            src = people(i % 3)
            compress = i % 2 == 1
            name = "fleet%d.csv%s" % (i, ".gz" if compress else "")
            data = src.gz if compress else src.plain
            store.put(name, data)
            via = gz_proxy if compress else proxy
            if compress:
                gz_size = max(gz_size, len(data))
            else:
                plain_size = max(plain_size, len(data))
            dataset = "fleet%d" % i
            ds = jobqueue.create_dataset(db, dataset)
            job_id = jobqueue.enqueue(db, ds, via.url(store.name(name)), batch_size=BATCH,
                                      message="fleet job %d" % i,
                                      created_at="now() - interval '%d seconds'" % (60 - i))
            jobs.append((job_id, dataset, src, name))
        proxy.configure(throttle=max(20000, plain_size / JOB_SECONDS))
        gz_proxy.configure(throttle=max(20000, gz_size / JOB_SECONDS))

        fleet_env = env(IMPORT_LEASE_SECONDS=4)
        a = migrated.start("worker", "--concurrency", "2", "--once", env=fleet_env)
        b = migrated.start("worker", "--concurrency", "1", "--once", env=fleet_env)
        held = wait_until("worker A to hold a job with ≥ 3 batches and more to download",
                          lambda: held_by(db, a, 3), 60, interval=0.01, bg=(a, b))
        victim = held[0]["id"]
        orphans = [j["id"] for j in db.query(
            "SELECT id::text AS id FROM dsa_jobs.analysis_runs WHERE status = 'running'"
            " AND worker_id LIKE %s", (jobqueue.owner_like(a),))]
        a.kill()
        killed_at = time.monotonic()
        assert victim in orphans
        c = migrated.start("worker", "--concurrency", "2", "--once", env=fleet_env)

        for job_id, _, _, _ in jobs:
            jobqueue.wait_status(db, job_id, ("completed", "failed"), timeout=120, bg=(b, c))
        wait_exit(b, 60)
        wait_exit(c, 60)
    finally:
        gz_proxy.stop()

    total_rows = 0
    for job_id, dataset, src, name in jobs:
        job, commit_id = assert_completed_once(db, job_id, dataset, src)
        assert commits_in(db, dataset) == 1, "dataset %s has %d commits" % (
            dataset, commits_in(db, dataset))
        trail = jobqueue.audit(db, job_id)
        completions = [t for t in trail if t["status"] == "completed"]
        assert len(completions) == 1, "job %s completed %d times" % (job_id, len(completions))
        total_rows += src.rows
        batches = [t["batches"] for t in trail if t["kind"] == "batch"]
        assert batches == sorted(batches) and len(set(batches)) == len(batches), \
            "job %s: committed batches are not one increasing sequence: %s" % (job_id, batches)
    assert db.scalar("SELECT count(*) FROM dsa_core.commits") == 6
    assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows") == total_rows, \
        "manifest rows outside the six commits (a duplicate or an orphaned partial commit)"

    # The victim: A committed batches 1..k, the new owner k+1.. — resumed, not restarted.
    _, _, victim_src, name = next(j for j in jobs if j[0] == victim)
    trail = jobqueue.audit(db, victim)
    batch_rows = [t for t in trail if t["kind"] == "batch"]
    mine = [t for t in batch_rows if ":%d:" % a.pid in t["worker_id"]]
    theirs = [t for t in batch_rows if t not in mine]
    last_a = max(t["batches"] for t in mine)
    assert last_a >= 3, trail
    assert max(t["seq"] for t in mine) < min(t["seq"] for t in theirs), trail
    first_new = min(t["batches"] for t in theirs)
    assert first_new == last_a + 1, \
        "the new owner's first batch is %d, A's last committed one %d" % (first_new, last_a)
    victim_job = jobqueue.row(db, victim)
    assert victim_job["attempts"] >= 2, victim_job
    assert last_a < math.ceil(victim_src.rows / BATCH), "A finished the victim before the kill"
    offset_a = [t for t in mine if t["batches"] == last_a][0]["cp_offset"]
    resumed = gets_since(store, name, killed_at)
    assert (resumed[0]["start"] or 0) == offset_a, \
        "the reclaimed job re-read from %s, its checkpoint says %s" % (resumed[0]["start"], offset_a)
    if not name.endswith(".gz"):  # (an early gzip checkpoint may sit at the member start, 0)
        assert offset_a > 0, "a plain checkpoint after %d batches at byte 0" % last_a
    checks.assert_matches_reference(db, victim_job["output_summary"]["commit_id"].strip(),
                                    victim_src.expected)


# -- 2. kill -9 at ten seeded moments, then import --resume -----------------------------

KILLS = {"plain": 3, "gzip": 4, "multigzip": 3}  # ten moments in all


def _kill_plan(kind, size):
    """_kill_plan: seeded kill moments (fractions of the rows committed) with sub-batch
    jitter; the last one late (past 70% at DSA_TEST_SCALE=1) so the final resume shows how
    little it re-reads. The pipeline reads ahead of the committed rows (the parser fills a
    1 MiB buffer, the gzip decoder pulls 256 KiB, the source buffers a chunk): the last
    moment leaves more than that still to download, or a small object would be downloaded
    whole and finish within the jitter."""
    rnd = random.Random("kill9-%s" % kind)
    n = KILLS[kind]
    ahead = 2.1 * MiB if kind == "plain" else 1.1 * MiB
    top = min(0.9, 0.92 - ahead / size)
    last = rnd.uniform(min(0.72, top - 0.05), top)
    fractions = sorted(rnd.uniform(0.05, min(0.65, last - 0.05)) for _ in range(n - 1)) + [last]
    if kind == "plain":
        fractions[0] = 0.0  # once before the first batch commits
    return [(f, rnd.uniform(0.0, 0.3)) for f in fractions]


def _object(kind, src):
    if kind == "plain":
        return "kill.csv", src.plain
    if kind == "gzip":
        return "kill.csv.gz", src.gz
    return "kill-members.csv.gz", gen.gzip_members(src.plain, 6, seed=5)


@pytest.mark.parametrize("kind", ["plain", "gzip", "multigzip"])
def test_kill9_at_random_moments_then_resume(migrated, db, store, proxy, kind):
    """kill -9 of `import` at seeded moments, each followed by `import --resume`: every
    checkpoint is consistent with the committed manifest, every resume opens the object
    exactly at the checkpoint's offset, the final manifest equals an uninterrupted import's
    and the reference's, and a gzip resume after a late kill fetches only the tail. (zip:
    test_resume_kill.py's test_kill_and_resume_zip.)"""
    src = wide()
    name, data = _object(kind, src)
    size = len(data)
    store.put(name, data)
    kenv = env()
    proxy.configure(throttle=max(20000, size / SLOW_SECONDS))
    dataset = "kill-%s" % kind
    bg = migrated.start("import", proxy.url(store.name(name)), "--dataset", dataset, "--json",
                        env=kenv)
    job_id = bg.wait_job_id()
    prev = None  # the checkpoint the current run resumed from
    since = None
    plan = _kill_plan(kind, size)
    for i, (fraction, jitter) in enumerate(plan):
        if i > 0:
            since = time.monotonic()
            bg = migrated.start("import", "--resume", job_id, "--json", env=kenv)
        if fraction > 0:
            # Past the fraction, and (for a resume) with a batch of its own committed, so every
            # resume really opened the object.
            done = (prev or {}).get("batches") or 0
            jobqueue.wait_progress(db, job_id, lambda p: (p.get("rows_processed") or 0)
                                   >= fraction * src.rows and (p.get("batches") or 0) > done,
                                   timeout=60, bg=(bg,))
        time.sleep(jitter)
        assert bg.running(), "the import ended before its kill: %s" % bg.stderr[-2000:]
        bg.kill()
        checks.wait_client_sessions_gone(db)
        prog = checks.assert_checkpoint_consistent(db, job_id)
        assert checks.ref_head(db, dataset) is None, "the ref moved before the job completed"
        if prev is not None:
            assert (prog.get("rows_processed") or 0) >= (prev.get("rows_processed") or 0), \
                "progress went back after a resume"
            first = gets_since(store, name, since)[0]
            want = (prev.get("checkpoint") or {}).get("offset") or 0
            assert (first["start"] or 0) == want, \
                "resume %d opened the object at %s, its checkpoint says %s" % (i, first["start"], want)
        prev = prog

    proxy.configure(throttle=None)
    time.sleep(0.5)  # the killed run's transfer ends (its socket is gone) before counting
    proxy.reset_counters()
    since = time.monotonic()
    res = run_ok(migrated, "import", "--resume", job_id, "--json", env=kenv, timeout=300)
    out = res.json()
    assert out["job_id"] == job_id and out["status"] == "completed", out
    cp = prev.get("checkpoint") or {}
    offset = cp.get("offset") or 0
    gets = gets_since(store, name, since)
    assert (gets[0]["start"] or 0) == offset, \
        "the final resume opened the object at %s, the checkpoint says %s" % (gets[0]["start"], offset)
    fetched = proxy.counters()["bytes_forwarded"]
    assert fetched <= size - offset + 2048 * len(gets), \
        "the resume fetched %d bytes, the object's tail from %d is %d" % (fetched, offset, size - offset)
    if kind != "plain":
        assert cp.get("decoder", {}).get("kind") == "gzip", cp
        assert offset > 0, "a gzip checkpoint past 70%% restarts from byte 0: %s" % cp
        killed_at = prev.get("bytes_read") or 0
        ratio = fetched / size
        print("%s: killed at %.0f%% of %d bytes, resume fetched %d bytes (%.1f%%) from %d"
              % (kind, 100.0 * killed_at / size, size, fetched, 100 * ratio, offset))
        if len(src.plain) >= 8 * MiB and killed_at >= 0.6 * size:
            assert ratio < 0.40, "resume after a kill at %.0f%% fetched %.0f%% of the object" % (
                100.0 * killed_at / size, 100 * ratio)
    commit_id = out["commit_id"]
    job, _ = assert_completed_once(db, job_id, dataset, src)
    assert job["output_summary"]["commit_id"].strip() == commit_id
    assert commits_in(db, dataset) == 1, "resumes left %d commits" % commits_in(db, dataset)
    clean = run_ok(migrated, "import", store.url(name), "--dataset", "clean-" + kind, "--json",
                   env=kenv, timeout=300)
    assert checks.manifest(db, commit_id) == checks.manifest(db, clean.json()["commit_id"]), \
        "the resumed manifest differs from an uninterrupted import's"


# -- 3. SIGTERM during a batch ----------------------------------------------------------

def test_sigterm_hands_the_job_back_and_another_worker_finishes(migrated, db, store, proxy):
    """SIGTERM mid-job: the batch in flight commits, the job goes back to pending with its
    checkpoint and no owner, the worker exits 0 quickly; another worker finishes it exactly,
    re-opening the object at the checkpoint."""
    src = wide()
    store.put("term.csv", src.plain)
    ds = jobqueue.create_dataset(db, "term")
    job_id = jobqueue.enqueue(db, ds, proxy.url(store.name("term.csv")), batch_size=BATCH)
    proxy.configure(throttle=max(20000, len(src.plain) / SLOW_SECONDS))
    w = migrated.start("worker", "--concurrency", "1", env=env(IMPORT_LEASE_SECONDS=20))
    prog = jobqueue.wait_progress(db, job_id, lambda p: (p.get("batches") or 0) >= 3,
                                  timeout=60, bg=(w,))
    at_signal = prog["rows_processed"]
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    res = w.wait(timeout=30)
    took = time.monotonic() - t0
    assert res.code == 0, res
    assert took <= 15.0, "the worker took %.1fs to exit after SIGTERM" % took
    assert re.search(r"job %s pending: interrupted" % job_id, res.stderr), res.stderr[-2000:]
    job = jobqueue.row(db, job_id)
    assert job["status"] == "pending" and job["worker_id"] is None \
        and job["lease_expires_at"] is None, job
    prog = job["run_parameters"]["progress"]
    assert prog["rows_processed"] > at_signal, \
        "the batch in flight at SIGTERM was not committed (%d rows, %d at the signal)" % (
            prog["rows_processed"], at_signal)
    assert prog["rows_processed"] < src.rows and prog["rows_processed"] % BATCH == 0, prog
    assert prog["checkpoint"]["offset"] > 0 and prog["checkpoint"]["commit_id"], prog
    checks.assert_checkpoint_consistent(db, job_id)
    assert checks.ref_head(db, "term") is None

    proxy.configure(throttle=None)
    since = time.monotonic()
    w2 = migrated.start("worker", "--concurrency", "1", "--once", env=env())
    wait_exit(w2, 120)
    assert_completed_once(db, job_id, "term", src)
    assert commits_in(db, "term") == 1
    first = gets_since(store, "term.csv", since)[0]
    assert first["start"] == prog["checkpoint"]["offset"], (first, prog["checkpoint"]["offset"])


# -- 4. PostgreSQL restarted mid-import -------------------------------------------------

def test_postgres_restart_mid_import(migrated, db, store, proxy, pg):
    """`pg_ctl restart -m fast` under a running job: the worker reconnects, resumes from the
    last checkpoint (a ranged GET past it) and completes the job exactly once."""
    src = wide()
    store.put("restart.csv", src.plain)
    ds = jobqueue.create_dataset(db, "restart")
    job_id = jobqueue.enqueue(db, ds, proxy.url(store.name("restart.csv")), batch_size=BATCH)
    proxy.configure(throttle=max(20000, len(src.plain) / SLOW_SECONDS))
    w = migrated.start("worker", "--concurrency", "1", "--once",
                       env=env(IMPORT_LEASE_SECONDS=15, IMPORT_DB_RETRIES=10,
                               IMPORT_RETRY_BACKOFF_MS=300))
    prog = jobqueue.wait_progress(db, job_id, lambda p: (p.get("batches") or 0) >= 4,
                                  timeout=60, bg=(w,))
    db.close()
    since = time.monotonic()
    pg.restart("fast")
    db.close()
    jobqueue.wait_status(db, job_id, ("completed", "failed"), timeout=120, bg=(w,))
    res = wait_exit(w, 60)
    assert re.search(r"transient failure|resuming at row", res.stderr), \
        "no sign the worker noticed the restart:\n%s" % res.stderr[-3000:]
    assert_completed_once(db, job_id, "restart", src)
    assert commits_in(db, "restart") == 1
    later = gets_since(store, "restart.csv", since)
    assert later[0]["start"] and later[0]["start"] >= prog["checkpoint"]["offset"], \
        "after the restart the object was re-read from %s (checkpoint before it: %s)" % (
            later[0]["start"], prog["checkpoint"]["offset"])


# -- 5. a worker paused past its lease (SIGSTOP) ---------------------------------------

def _sessions(db):
    """_sessions: the other client sessions of the test database (the workers')."""
    return db.query("SELECT pid, state, backend_xid::text AS xid, xact_start IS NOT NULL AS in_tx,"
                    " EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                    "   WHERE l.pid = a.pid AND c.relname IN ('commit_rows', 'rows')"
                    "   AND l.mode = 'RowExclusiveLock') AS wrote"
                    " FROM pg_stat_activity a WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'")


def _pause_when(db, bg, job_id, wanted, tries=150):
    """_pause_when SIGSTOPs bg and keeps it stopped once its sessions satisfy wanted(sessions)
    (read while it is stopped, so the state cannot change under the check); otherwise it
    SIGCONTs and tries again a little later. Returns the sessions seen."""
    rnd = random.Random("pause-%s" % wanted.__name__)
    for _ in range(tries):
        bg.signal(signal.SIGSTOP)
        time.sleep(0.08)  # a statement the server was running finishes; the client cannot send
        seen = _sessions(db)
        if wanted(seen):
            return seen
        bg.signal(signal.SIGCONT)
        if (jobqueue.row(db, job_id) or {}).get("status") != "running":
            break
        time.sleep(rnd.uniform(0.0, 0.06))
    pytest.fail("could not pause the worker in the wanted state (%s)" % wanted.__name__)


def outside_a_transaction(sessions):
    return sessions and not any(s["in_tx"] for s in sessions)


def inside_a_batch_that_wrote(sessions):
    return any(s["state"] == "idle in transaction" and s["wrote"] for s in sessions)


def _paused_worker(migrated, db, store, proxy, name, dataset, src):
    jobqueue.install_audit(db)
    store.put(name, src.plain)
    ds = jobqueue.create_dataset(db, dataset)
    job_id = jobqueue.enqueue(db, ds, proxy.url(store.name(name)), batch_size=BATCH)
    proxy.configure(throttle=max(20000, len(src.plain) / SLOW_SECONDS))
    penv = env(IMPORT_LEASE_SECONDS=3)
    a = migrated.start("worker", "--concurrency", "1", "--once", env=penv)
    prog = jobqueue.wait_progress(db, job_id, lambda p: (p.get("batches") or 0) >= 3,
                                  timeout=60, bg=(a,))
    # Just after a commit: the next batch is all still to read.
    jobqueue.wait_progress(db, job_id, lambda p: p["batches"] > prog["batches"], timeout=30,
                           bg=(a,))
    return job_id, a, penv


def _assert_fenced(db, job_id, a, b, src, dataset):
    """After SIGCONT: A commits nothing after B's claim, the job completes once, by B, from
    A's last checkpoint, with the exact rows; and A reports the job as lost to another
    worker (not as handed back or failed: it was neither)."""
    outcome = a.wait_for_stderr(r"job %s (lost|pending|failed|completed)" % job_id, timeout=30)
    jobqueue.wait_status(db, job_id, ("completed", "failed"), timeout=120, bg=(a, b))
    res_a = wait_exit(a, 60)
    wait_exit(b, 60)
    assert_completed_once(db, job_id, dataset, src)
    assert commits_in(db, dataset) == 1
    trail = jobqueue.audit(db, job_id)
    by_a = [t for t in trail if t["worker_id"] and ":%d:" % a.pid in t["worker_id"]]
    by_b = [t for t in trail if t["worker_id"] and ":%d:" % b.pid in t["worker_id"]]
    assert by_a and by_b, trail
    first_b = min(t["seq"] for t in by_b)
    late = [t for t in by_a if t["seq"] > first_b]
    assert not late, "the paused worker committed after the takeover: %s" % late
    last_a = max(t["batches"] for t in by_a if t["kind"] == "batch")
    b_batches = [t["batches"] for t in by_b if t["kind"] == "batch"]
    assert min(b_batches) == last_a + 1, (last_a, b_batches)
    done = [t for t in trail if t["status"] == "completed"]
    assert len(done) == 1 and ":%d:" % b.pid in (done[0]["worker_id"] or ""), done
    # Last, the report: the data above is safe either way.
    line = outcome.group(0)
    assert outcome.group(1) == "lost" and re.search(
        r"lease (was )?lost|no longer held|is held by", res_a.stderr), \
        "the paused worker reported %r for a job another worker had taken over " \
        "(expected 'lost'):\n%s" % (line, res_a.stderr[-2000:])
    assert re.search(r"\b0 handed back\)", res_a.stderr), \
        "the paused worker counted the lost job as handed back:\n%s" % res_a.stderr[-800:]


@pytest.mark.parametrize("heartbeat", ["alive", "cut"])
def test_paused_worker_is_fenced_out(migrated, db, store, proxy, heartbeat):
    """A worker SIGSTOPped between batches past its 3 s lease; B reclaims the job and commits
    batches; A, continued with a batch to read and a heartbeat due, writes nothing more.

    heartbeat=cut: while A is stopped its heartbeat's session is terminated too, so after
    SIGCONT the heartbeat cannot notice the loss first (a race it usually wins): the batch
    transaction itself must find the job gone, and A must still report it lost."""
    src = people(0) if heartbeat == "cut" else wide()
    job_id, a, penv = _paused_worker(migrated, db, store, proxy, "pause.csv", "pause", src)
    try:
        _pause_when(db, a, job_id, outside_a_transaction)
        if heartbeat == "cut":
            cut = db.query("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity"
                           " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                           " AND query LIKE 'UPDATE dsa_jobs.analysis_runs SET lease_expires_at%%'")
            assert len(cut) == 1 and cut[0]["ok"], "no heartbeat session to cut: %s" % _sessions(db)
        b = migrated.start("worker", "--concurrency", "1", "--once", env=penv)
        wait_until("worker B to reclaim the job once A's lease expired",
                   lambda: db.scalar("SELECT worker_id LIKE %s FROM dsa_jobs.analysis_runs"
                                     " WHERE id = %s::uuid", (jobqueue.owner_like(b), job_id)),
                   30, bg=(b,))
        taken = jobqueue.row(db, job_id)["run_parameters"]["progress"]["batches"]
        jobqueue.wait_progress(db, job_id, lambda p: (p.get("batches") or 0) >= taken + 2,
                               timeout=60, bg=(b,))
    finally:
        a.signal(signal.SIGCONT)
    _assert_fenced(db, job_id, a, b, src, "pause")


def test_worker_paused_inside_a_batch_does_not_block_the_job(migrated, db, store, proxy):
    """A worker frozen in the middle of a batch transaction (rows inserted, not committed:
    a GC pause, a frozen VM, SIGSTOP) holds row locks. Once its lease is over, the job must
    go on without it: another worker reclaims it and commits batches while the frozen one
    is still stopped; continued, the frozen one commits nothing."""
    src = wide()
    job_id, a, penv = _paused_worker(migrated, db, store, proxy, "frozen.csv", "frozen", src)
    b = None
    try:
        seen = _pause_when(db, a, job_id, inside_a_batch_that_wrote)
        b = migrated.start("worker", "--concurrency", "1", "--once", env=penv)
        last = jobqueue.row(db, job_id)["run_parameters"]["progress"]["batches"]
        deadline = time.monotonic() + 20 * min(2.0, timeout_factor())
        while time.monotonic() < deadline:
            prog = jobqueue.row(db, job_id)["run_parameters"]["progress"]
            if (prog.get("batches") or 0) >= last + 2:
                break
            time.sleep(0.1)
        else:
            blocked = db.query(
                "SELECT pid, state, wait_event_type, wait_event, left(query, 80) AS query"
                " FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                " AND state <> 'idle'")
            job = jobqueue.row(db, job_id)
            pytest.fail("the job made no progress for 20 s while a worker frozen inside its "
                        "batch transaction (sessions %s) is stopped: job held by %s, %s batches;"
                        " sessions not idle: %s\nB's log:\n%s" % (
                            seen, job["worker_id"], job["run_parameters"]["progress"]["batches"],
                            blocked, b.stderr[-1500:]))
    finally:
        a.signal(signal.SIGCONT)
    _assert_fenced(db, job_id, a, b, src, "frozen")


# -- 6. NOTIFY wakes a worker; /healthz /readyz /metrics ---------------------------------

def _http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None, ""


def _metric(text, name):
    m = re.search(r"^%s (\d+(?:\.\d+)?)$" % re.escape(name), text, re.M)
    assert m, "metric %s missing:\n%s" % (name, text)
    return float(m.group(1))


def test_hand_inserted_row_is_picked_up_by_notify_and_health_routes(migrated, db, store):
    """A worker polling only every 60 s claims a row inserted by hand within seconds (the
    migration's NOTIFY trigger); --listen answers /healthz, /readyz (503 on an old schema)
    and /metrics with the job counted."""
    rows = list(gen.people_rows(max(1000, int(5000 * scale())), seed=61))
    src = Source(gen.csv_bytes(rows))
    store.put("notify.csv", src.plain)
    ds = jobqueue.create_dataset(db, "notify")
    port = jobqueue.free_port()
    base = "http://127.0.0.1:%d" % port
    w = migrated.start("worker", "--concurrency", "1", "--listen", "127.0.0.1:%d" % port,
                       env=env(IMPORT_POLL_INTERVAL=60))
    wait_until("/healthz", lambda: _http_get(base + "/healthz")[0] == 200, 20, bg=(w,))
    wait_until("the first (empty) claim", lambda: "dsa_ingest_empty_claims_total 1" in
               _http_get(base + "/metrics")[1], 20, bg=(w,))
    time.sleep(0.5)  # the slot now sleeps on LISTEN; its next poll is a minute away
    t0 = time.monotonic()
    job_id = jobqueue.enqueue(db, ds, store.url("notify.csv"), batch_size=BATCH)
    jobqueue.wait_status(db, job_id, ("running", "completed", "failed"), timeout=10, bg=(w,))
    woke = time.monotonic() - t0
    assert woke < 3.0, "the hand-inserted job was claimed after %.1fs (poll is 60s)" % woke
    job = jobqueue.wait_status(db, job_id, ("completed", "failed"), timeout=60, bg=(w,))
    assert_completed_once(db, job_id, "notify", src)

    assert _http_get(base + "/healthz") == (200, "ok\n")
    status, body = _http_get(base + "/readyz")
    assert status == 200, body
    metrics = wait_until("the completed job in /metrics", lambda: (lambda t: t if re.search(
        r'^dsa_ingest_jobs_total\{outcome="completed"\} 1$', t, re.M) else None)(
        _http_get(base + "/metrics")[1]), 10, bg=(w,))
    assert _metric(metrics, 'dsa_ingest_jobs_total{outcome="failed"}') == 0
    assert _metric(metrics, 'dsa_ingest_jobs_total{outcome="handed_back"}') == 0
    assert _metric(metrics, 'dsa_ingest_jobs_total{outcome="lost"}') == 0
    assert _metric(metrics, "dsa_ingest_jobs_active") == 0
    assert _metric(metrics, "dsa_ingest_rows_imported_total") == src.rows
    assert _metric(metrics, "dsa_ingest_bytes_read_total") == job["output_summary"]["bytes"] \
        == len(src.plain)
    assert _metric(metrics, "dsa_ingest_empty_claims_total") >= 1
    assert "# TYPE dsa_ingest_jobs_total counter" in metrics
    # the registry's series: one batch transaction per batch, one run, nothing retried or failed
    batches = job["output_summary"]["batches"]
    assert _metric(metrics, "dsa_ingest_batch_duration_seconds_count") == batches >= 1
    assert _metric(metrics, 'dsa_ingest_batch_duration_seconds_bucket{le="+Inf"}') == batches
    assert _metric(metrics, "dsa_ingest_batch_duration_seconds_sum") > 0
    assert _metric(metrics, "dsa_ingest_job_run_duration_seconds_count") == 1
    assert _metric(metrics, 'dsa_ingest_job_run_duration_seconds_bucket{le="+Inf"}') == 1
    buckets = [float(v) for v in re.findall(
        r'^dsa_ingest_batch_duration_seconds_bucket\{le="[^"]+"\} (\d+)$', metrics, re.M)]
    assert len(buckets) > 2 and buckets == sorted(buckets), "not cumulative: %r" % buckets
    for stage in ("source", "job"):
        assert _metric(metrics, 'dsa_ingest_retries_total{stage="%s"}' % stage) == 0
    for cls in ("input", "config", "transient", "internal"):
        assert _metric(metrics, 'dsa_ingest_errors_total{class="%s"}' % cls) == 0
    for family, kind in (("dsa_ingest_batch_duration_seconds", "histogram"),
                         ("dsa_ingest_job_run_duration_seconds", "histogram"),
                         ("dsa_ingest_retries_total", "counter"),
                         ("dsa_ingest_errors_total", "counter"),
                         ("dsa_ingest_s3_requests_total", "counter")):
        assert "# TYPE %s %s\n" % (family, kind) in metrics and "# HELP %s " % family in metrics
    assert _http_get(base + "/nope")[0] == 404

    # /readyz follows the schema: an unmigrated database is not ready, and says why.
    saved = db.one("SELECT * FROM dsa_ingest.schema_migrations ORDER BY version DESC LIMIT 1")
    db.query("DELETE FROM dsa_ingest.schema_migrations WHERE version = %s", (saved["version"],))
    try:
        status, body = _http_get(base + "/readyz")
        assert status == 503 and "migrate" in body, (status, body)
    finally:
        cols = sorted(saved)
        db.query("INSERT INTO dsa_ingest.schema_migrations (%s) VALUES (%s)" % (
            ", ".join(cols), ", ".join(["%s"] * len(cols))), [saved[c] for c in cols])
    assert _http_get(base + "/readyz")[0] == 200

    # a job whose object is missing fails at once: one config error, one more run
    missing = jobqueue.enqueue(db, ds, store.url("absent.csv"), batch_size=BATCH)
    failed = jobqueue.wait_status(db, missing, ("completed", "failed"), timeout=30, bg=(w,))
    assert failed["status"] == "failed" and "HTTP 404" in failed["error_message"], failed
    metrics = wait_until("the failed job in /metrics", lambda: (lambda t: t if re.search(
        r'^dsa_ingest_errors_total\{class="config"\} 1$', t, re.M) else None)(
        _http_get(base + "/metrics")[1]), 10, bg=(w,))
    assert _metric(metrics, "dsa_ingest_job_run_duration_seconds_count") == 2
    assert _metric(metrics, 'dsa_ingest_errors_total{class="input"}') == 0
    assert _metric(metrics, 'dsa_ingest_retries_total{stage="source"}') == 0
    w.signal(signal.SIGTERM)
    wait_exit(w, 15)


# -- 7. jobs list / show / cancel / retry ------------------------------------------------

def test_jobs_cli_cancel_stops_the_worker_and_retry_completes(migrated, db, store, proxy):
    """jobs list/show describe a running job; cancel fails it ("cancelled by user"), removes
    its partial commit and fences the worker out (nothing more written); retry queues it
    again and the same worker completes it; misuse answers exit code 2."""
    jobqueue.install_audit(db)
    src = wide()
    store.put("cancel.csv", src.plain)
    ds = jobqueue.create_dataset(db, "cancel")
    job_id = jobqueue.enqueue(db, ds, proxy.url(store.name("cancel.csv")), batch_size=BATCH)
    proxy.configure(throttle=max(20000, len(src.plain) / (2 * SLOW_SECONDS)))
    w = migrated.start("worker", "--concurrency", "1", env=env(IMPORT_LEASE_SECONDS=20))
    jobqueue.wait_progress(db, job_id, lambda p: (p.get("batches") or 0) >= 3, timeout=60, bg=(w,))

    listed = json.loads(run_ok(migrated, "jobs", "list", "--json").stdout)
    mine = [j for j in listed if j["id"] == job_id]
    assert len(mine) == 1 and mine[0]["status"] == "running", listed
    assert ":%d:" % w.pid in mine[0]["worker_id"], mine[0]
    shown = json.loads(run_ok(migrated, "jobs", "show", job_id).stdout)
    assert shown["id"] == job_id and shown["status"] == "running" and shown["attempts"] == 1
    assert shown["run_parameters"]["progress"]["rows_processed"] >= 3 * BATCH
    assert "window" not in json.dumps(shown), "jobs show prints the 32 KiB inflate window"
    commit_id = shown["run_parameters"]["progress"]["checkpoint"]["commit_id"]

    run_ok(migrated, "jobs", "cancel", job_id)
    job = jobqueue.row(db, job_id)
    assert job["status"] == "failed" and job["error_message"] == "cancelled by user", job
    # The worker notices at its next batch (fencing) and writes nothing more.
    w.wait_for_stderr(r"job %s lost" % job_id, timeout=30)
    time.sleep(1.0)
    assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                     (commit_id,)) == 0, "rows of the cancelled job's commit remain or were added"
    assert checks.commit(db, commit_id) is None, "the cancelled job's commit remains"
    assert checks.ref_head(db, "cancel") is None
    trail = jobqueue.audit(db, job_id)
    cancelled = [t["seq"] for t in trail if t["status"] == "failed"]
    assert len(cancelled) == 1 and trail[-1]["status"] == "failed", \
        "the job row changed after the cancel: %s" % trail[-3:]
    assert w.running(), "the worker died on a cancelled job: %s" % w.stderr[-2000:]
    table = run_ok(migrated, "jobs", "list").stdout
    assert re.search(r"%s\s+failed\b.*cancelled by user" % job_id, table), table

    for args in (("cancel", job_id), ("retry", "00000000-0000-4000-8000-000000000000"),
                 ("show", "00000000-0000-4000-8000-000000000000")):
        res = migrated.run("jobs", *args)
        assert res.code == 2, res

    proxy.configure(throttle=None)
    run_ok(migrated, "jobs", "retry", job_id)
    job = jobqueue.wait_status(db, job_id, ("completed", "failed"), timeout=60, bg=(w,))
    job, new_commit = assert_completed_once(db, job_id, "cancel", src)
    assert new_commit != commit_id
    assert job["attempts"] == 1, "retry should start the count again: %s" % job["attempts"]
    assert commits_in(db, "cancel") == 1
    res = migrated.run("jobs", "retry", job_id)
    assert res.code == 2, "retrying a completed job must be refused: %r" % res
    w.signal(signal.SIGTERM)
    wait_exit(w, 15)


# -- 8. one writer per ref --------------------------------------------------------------

def test_queued_job_with_a_non_ascii_delimiter_fails_clearly(migrated, db, store):
    """A platform-inserted job whose options.delimiter is not one ASCII character fails with
    a config error that says so (its first byte would cut UTF-8 characters in two), and
    leaves nothing behind."""
    store.put("delim.csv", "a§b\n1§2\n".encode())
    ds = jobqueue.create_dataset(db, "delim")
    job_id = jobqueue.enqueue(db, ds, store.url("delim.csv"),
                              extra={"options": {"header": True, "delimiter": "§"}})
    res = migrated.run("worker", "--once", timeout=120)
    assert res.code == 0, res
    job = checks.job(db, job_id)
    assert job["status"] == "failed", job
    assert ("job %s: options.delimiter must be one ASCII character (" % job_id
            in job["error_message"]), job
    checks.assert_no_trace_of_failed_job(db, "delim", job)


def test_one_writer_per_ref(migrated, db, store, proxy):
    """Two jobs on (dataset, main) with two free slots run one after the other (the second's
    parent is the first's commit) while a job on another ref of the dataset runs alongside."""
    jobqueue.install_audit(db)
    a, b = people(0), people(1)
    store.put("ref1.csv", a.plain)
    store.put("ref2.csv", b.plain)
    store.put("ref3.csv", a.plain)
    ds = jobqueue.create_dataset(db, "serial")
    url = lambda n: proxy.url(store.name(n))  # noqa: E731
    j1 = jobqueue.enqueue(db, ds, url("ref1.csv"), ref="main", batch_size=BATCH,
                          created_at="now() - interval '3 seconds'")
    j2 = jobqueue.enqueue(db, ds, url("ref2.csv"), ref="main", batch_size=BATCH,
                          created_at="now() - interval '2 seconds'")
    j3 = jobqueue.enqueue(db, ds, url("ref3.csv"), ref="other", batch_size=BATCH,
                          created_at="now() - interval '1 seconds'")
    proxy.configure(throttle=max(20000, len(a.plain) / JOB_SECONDS))
    w = migrated.start("worker", "--concurrency", "2", "--once", env=env(IMPORT_LEASE_SECONDS=10))
    for j in (j1, j2, j3):
        jobqueue.wait_status(db, j, ("completed", "failed"), timeout=120, bg=(w,))
    wait_exit(w, 60)

    def interval(j):
        trail = jobqueue.audit(db, j)
        start = min(t["at"] for t in trail if t["status"] == "running")
        return start, jobqueue.row(db, j)["completed_at"]

    (s1, e1), (s2, e2), (s3, e3) = interval(j1), interval(j2), interval(j3)
    assert s2 >= e1, "two writers on main: job 2 started at %s, job 1 completed at %s" % (s2, e1)
    assert s3 < e1 and s1 < e3, "the job on another ref did not run alongside: %s" % (
        [(s1, e1), (s3, e3)])
    job1 = jobqueue.row(db, j1)
    c1 = job1["output_summary"]["commit_id"].strip()
    job2, c2 = assert_completed_once(db, j2, "serial", b, ref="main")
    job3, c3 = assert_completed_once(db, j3, "serial", a, ref="other")
    assert_exact(db, c1, a)
    assert (job2["source_commit_id"] or "").strip() == c1, \
        "job 2's parent is %r, job 1 committed %s" % (job2["source_commit_id"], c1)
    assert checks.commit(db, c2)["parent_commit_id"] == c1
    assert job1["source_commit_id"] is None and job3["source_commit_id"] is None
    assert commits_in(db, "serial") == 3
