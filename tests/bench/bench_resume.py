#!/usr/bin/env python3
"""Resume benchmark for dsa-ingest: what a kill -9 at 70% of a gzip import costs.

In one run, against its own private PostgreSQL cluster and its own HTTP server:
  (1) T_full      `dsa-ingest import http://…/data.csv.gz` of N generated rows (default 2M),
                  uninterrupted, default settings; S is the object's size.
  (2) killed run  the same import into a fresh database, killed with SIGKILL once the job's
                  own progress shows 70% of the object read (plus half a batch's time, so the
                  kill lands mid-batch as it would on average).
  (3) resume      `dsa-ingest import --resume JOB`: the checkpoint's inflate access point is
                  re-opened with a ranged GET.
Measured from the HTTP server's request log (body bytes actually sent per request):
  re-fetched      bytes the resume downloaded that the killed run had already downloaded:
                  (the furthest byte sent to the killed run) − (the resume's first Range start);
                  and everything the resume downloaded.
  seconds lost    T_killed_run + T_resume − T_full.
Both are reported against the whole (S, T_full). The resumed commit's manifest is checked
against the uninterrupted one (same logical ids, same hashes).

Usage: python3 tests/bench/bench_resume.py [--rows N] [--kill-at 0.7] [--binary PATH]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import gen  # noqa: E402
from harness.httpserver import HttpServer  # noqa: E402
from harness.pg import Cluster  # noqa: E402
from harness.runner import Runner, default_binary  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="rows in the gzip CSV")
    p.add_argument("--kill-at", type=float, default=0.70,
                   help="kill when progress.bytes_read / bytes_total reaches this")
    p.add_argument("--binary", default=default_binary(), help="dsa-ingest to measure")
    p.add_argument("--workdir", default=None, help="where to put generated files (default: temp)")
    return p.parse_args()


def log(msg):
    print("[bench] %s" % msg, file=sys.stderr, flush=True)


def fresh_runner(cluster, binary, prefix):
    """fresh_runner is a Runner on a new, migrated database (no rows shared between runs)."""
    db = cluster.create_database(prefix)
    runner = Runner(binary, {"DATABASE_URL": db.url, "NO_COLOR": "1"})
    res = runner.run("migrate", timeout=300)
    if res.code != 0:
        raise SystemExit("migrate failed: %r" % res)
    return db, runner


def manifest_digest(db, commit_id):
    """manifest_digest is (rows, md5 of the sorted manifest): equal digests, equal commits."""
    row = db.one("SELECT count(*) AS n, md5(string_agg(logical_row_id || '=' || row_hash, ','"
                 " ORDER BY logical_row_id)) AS digest FROM dsa_core.commit_rows"
                 " WHERE commit_id = %s", (commit_id,))
    return row["n"], row["digest"]


def gets_between(server, path, t0, t1=None, wait=15.0):
    """gets_between: GETs of path that arrived in [t0, t1), oldest first. The server logs a
    request when its body ends (or the client vanished), so wait until one shows up."""
    deadline = time.monotonic() + wait
    while True:
        out = sorted([e for e in server.log.entries(path, "GET")
                      if e["time"] >= t0 and (t1 is None or e["time"] < t1)],
                     key=lambda e: e["time"])
        if out or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def drop_database(cluster, db):
    """drop_database frees the disk an import used before the next one."""
    db.close()
    conn = cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db.name)
    finally:
        conn.close()


def uninterrupted(cluster, args, url, prefix):
    """uninterrupted imports url into a fresh database and records when each batch committed
    → (seconds, [(t, rows)], manifest digest, batches)."""
    db, runner = fresh_runner(cluster, args.binary, prefix)
    bg = runner.start("import", url, "--dataset", "bench", "--json")
    job = bg.wait_job_id(timeout=120)
    timeline = [(0.0, 0)]
    while bg.running():
        rows_now = progress(db, job).get("rows_processed") or 0
        if rows_now != timeline[-1][1]:
            timeline.append((time.monotonic() - bg.start_time, rows_now))
        time.sleep(0.05)
    res = bg.wait(timeout=60)
    if res.code != 0:
        raise SystemExit("import failed: %r" % res)
    out = res.json()
    batches = progress(db, job).get("batches") or 1
    digest = manifest_digest(db, out["commit_id"])
    if digest[0] != args.rows:
        raise SystemExit("the import stored %d rows, expected %d" % (digest[0], args.rows))
    drop_database(cluster, db)
    return res.elapsed, timeline, digest, batches


def progress(db, job_id):
    return db.scalar("SELECT run_parameters->'progress' FROM dsa_jobs.analysis_runs"
                     " WHERE id = %s::uuid", (job_id,)) or {}


def main():
    args = parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit("no dsa-ingest at %s (build it, or pass --binary)" % args.binary)
    workdir = tempfile.mkdtemp(prefix="dsa-bench-resume-", dir=args.workdir)
    # New WAL files are not zero-filled, so the first run pays no more than later ones.
    cluster = Cluster(port=54349, settings={"wal_init_zero": "off", "max_wal_size": "4GB"})
    server = None
    bg = None
    try:
        cluster.start()
        server = HttpServer(root=workdir).start()
        path = os.path.join(workdir, "data.csv.gz")
        t0 = time.monotonic()
        gen.write_people_csv(path, args.rows, seed=1, compress=True)
        size = os.path.getsize(path)
        log("generated %s rows (%.1f MB gz) in %.1fs" % (f"{args.rows:,}", size / 1e6,
                                                         time.monotonic() - t0))
        url = server.url("data.csv.gz")

        # (1) uninterrupted, twice: before and after (2)-(3), so a drift of the machine
        # (or of the cluster's WAL, whose first files are created during the first run)
        # shows instead of being booked as time lost or won.
        t_first, timeline, want, batches = uninterrupted(cluster, args, url, "bench_full1")
        log("uninterrupted: %.2fs, %d batches" % (t_first, batches))

        # (2) killed at --kill-at, half a batch into the next one
        db_kill, runner = fresh_runner(cluster, args.binary, "bench_kill")
        half_batch = 0.5 * t_first / batches
        start = time.monotonic()
        bg = runner.start("import", url, "--dataset", "bench", "--json")
        job_id = bg.wait_job_id(timeout=120)
        while True:
            prog = progress(db_kill, job_id)
            total = prog.get("bytes_total") or 0  # -1 until the source is open
            if total > 0 and (prog.get("bytes_read") or 0) >= args.kill_at * total:
                break
            if not bg.running():
                raise SystemExit("the import ended before the kill: %s" % bg.stderr[-2000:])
            time.sleep(0.02)
        time.sleep(half_batch)
        bg.kill()
        killed = time.monotonic()
        t_killed_run = killed - start
        db_kill.wait_for("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                         " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                         predicate=lambda n: n == 0, timeout=60)
        prog = progress(db_kill, job_id)
        cp = prog.get("checkpoint") or {}
        offset = cp.get("offset") or 0
        killed_gets = gets_between(server, "/data.csv.gz", start, killed + 0.001)
        killed_end = max(((e["start"] or 0) + e["sent"]) for e in killed_gets)
        log("killed after %.2fs: checkpoint at row %s, %.1f%% of the object read, offset %d; "
            "%d bytes had been sent to it" % (t_killed_run, cp.get("row_number"),
                                              100.0 * prog.get("bytes_read", 0) / size, offset,
                                              killed_end))

        # (3) resume
        resumed_at = time.monotonic()
        res = runner.run("import", "--resume", job_id, "--json", timeout=7200)
        if res.code != 0:
            raise SystemExit("resume failed: %r" % res)
        t_resume = res.elapsed
        got = manifest_digest(db_kill, res.json()["commit_id"])
        if got != want:
            raise SystemExit("the resumed commit differs from the uninterrupted one: %s vs %s"
                             % (got, want))
        resume_gets = gets_between(server, "/data.csv.gz", resumed_at)
        drop_database(cluster, db_kill)
        t_second, timeline2, want2, _ = uninterrupted(cluster, args, url, "bench_full2")
        log("uninterrupted again: %.2fs" % t_second)
        if want2 != want:
            raise SystemExit("two uninterrupted imports differ: %s vs %s" % (want, want2))
        t_full = (t_first + t_second) / 2.0
        first_start = resume_gets[0]["start"] or 0
        if first_start != offset:
            raise SystemExit("the resume opened the object at %d, its checkpoint says %d"
                             % (first_start, offset))
        resume_sent = sum(e["sent"] for e in resume_gets)
        refetched = max(0, killed_end - first_start)
        # What the resume must read again to get back to the last checkpoint: from the
        # access point to where the decoder stood when that batch committed. The rest of
        # `refetched` is what the killed run had downloaded past its last checkpoint
        # (the unfinished batch, and bytes still in socket buffers when it died).
        reread = max(0, (prog.get("bytes_read") or 0) - first_start)
        lost = t_killed_run + t_resume - t_full
        # Where the seconds went: the uninterrupted run reached the killed run's checkpoint
        # at t_cp; the killed run spent (t_killed_run − t_cp) on work the kill threw away
        # (plus any difference in pace), the resume (t_resume − (t_full − t_cp)) more than
        # the uninterrupted run needed for the same rows (start-up, re-reading to the
        # checkpoint, its own pace).
        cp_rows = prog.get("rows_processed") or 0
        t_cp = sum(next(t for t, n in tl if n >= cp_rows) if cp_rows else 0.0
                   for tl in (timeline, timeline2)) / 2.0
        log("resume: %.2fs, %d request(s), %d bytes" % (t_resume, len(resume_gets), resume_sent))
    finally:
        if bg is not None:
            bg.kill()
        if server is not None:
            server.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        ("rows", f"{args.rows:,}"),
        ("object size S (bytes)", f"{size:,}"),
        ("T_full (s), mean of 2 runs", "%.2f  (%.2f before, %.2f after)" % (t_full, t_first, t_second)),
        ("killed at (bytes_read / S)", "%.1f%%" % (100.0 * prog.get("bytes_read", 0) / size)),
        ("T_killed_run (s)", "%.2f" % t_killed_run),
        ("checkpoint offset (first Range)", "%s (%.1f%% of S)" % (f"{offset:,}", 100.0 * offset / size)),
        ("bytes sent to the killed run", f"{killed_end:,}"),
        ("T_resume (s)", "%.2f" % t_resume),
        ("bytes fetched by the resume", "%s (%.1f%% of S)" % (f"{resume_sent:,}",
                                                             100.0 * resume_sent / size)),
        ("bytes re-fetched (already sent once)", f"{refetched:,}"),
        ("  of which behind the checkpoint", "%s (bytes_read at the checkpoint − offset)"
         % f"{reread:,}"),
        ("seconds lost", "%.2f" % lost),
        ("  T_full up to the checkpoint's rows", "%.2f" % t_cp),
        ("  killed run past that (thrown away)", "%.2f" % (t_killed_run - t_cp)),
        ("  resume beyond the same rows in T_full", "%.2f" % (t_resume - (t_full - t_cp))),
        ("RATIO re-fetched / S", "%.2f%%" % (100.0 * refetched / size)),
        ("RATIO behind-checkpoint / S", "%.2f%%" % (100.0 * reread / size)),
        ("RATIO seconds lost / T_full", "%.1f%%" % (100.0 * lost / t_full)),
        ("resumed manifest == uninterrupted", "yes (%d rows)" % got[0]),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    print("%-*s  %s" % (width, "metric", "value"))
    print("%s  %s" % ("-" * width, "-" * 24))
    for k, v in rows:
        print("%-*s  %s" % (width, k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
