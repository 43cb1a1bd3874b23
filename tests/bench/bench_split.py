#!/usr/bin/env python3
"""The split-import benchmark (issue 7): one large uncompressed CSV imported by 1 and by 2
workers, in one run.

One private PostgreSQL 15 cluster with the server's default durability settings, a fresh
migrated database per measurement, and a generated plain CSV of --size bytes (quoted fields,
every row distinct) served over HTTP on loopback:

  T_whole    `dsa-ingest import` with IMPORT_SPLIT_MIN_BYTES=0: one job, one reader.
  T_split_1  the same object split into ranges of --range bytes, every range run by the one
             `import` process (phase one counts every range, then phase two loads them).
  T_split_2  the same, with a `dsa-ingest worker --concurrency 1` taking ranges alongside the
             `import` (2 workers); timed until the import returns (the job is published).

Each run checks that the commit holds every row. Ratios, not seconds, are the result: these
machines are shared and noisy.

Usage: /usr/bin/python3 tests/bench/bench_split.py [--size BYTES] [--range BYTES]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

import bench_import as bi  # noqa: E402
from bench_pipeline import DEFAULT_DURABILITY, log  # noqa: E402
from harness import gen  # noqa: E402
from harness.httpserver import HttpServer  # noqa: E402
from harness.pg import Cluster  # noqa: E402
from harness.runner import default_binary  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=2 << 30, help="bytes of CSV (default 2 GiB)")
    p.add_argument("--range", type=int, default=64 << 20, help="bytes per range (64 MiB)")
    p.add_argument("--binary", default=default_binary())
    p.add_argument("--workdir", default=None)
    return p.parse_args()


def measure(cluster, binary, url, rows, split_env, helpers):
    """measure: one import (plus `helpers` worker processes) into a fresh database → (seconds,
    ranges)."""
    db = bi.fresh_migrated_db(cluster, binary, "split")
    env = dict(os.environ, DATABASE_URL=db.url, IMPORT_POLL_INTERVAL="1", **split_env)
    workers = [subprocess.Popen([binary, "worker", "--concurrency", "1"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(helpers)]
    try:
        t0 = time.monotonic()
        proc = subprocess.run([binary, "import", url, "--dataset", "bench", "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=7200)
        elapsed = time.monotonic() - t0
    finally:
        for w in workers:
            w.terminate()
            w.wait()
    if proc.returncode != 0:
        raise SystemExit("import failed: %s" % proc.stderr.decode(errors="replace")[-3000:])
    out = json.loads(proc.stdout.decode())
    stored = db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                       (out["commit_id"],))
    if stored != rows:
        raise SystemExit("import stored %d rows, expected %d" % (stored, rows))
    ranges = db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs WHERE parent_run_id IS "
                       "NOT NULL")
    db.close()
    bi.drop_database(cluster, db.name)
    return elapsed, ranges


def main():
    args = parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit("no dsa-ingest at %s (build it, or pass --binary)" % args.binary)
    workdir = tempfile.mkdtemp(prefix="dsa-bench-split-", dir=args.workdir)
    cluster = Cluster(port=54342, settings=DEFAULT_DURABILITY)
    server = HttpServer(root=workdir).start()
    try:
        cluster.start()
        path = os.path.join(workdir, "big.csv")
        size, rows = gen.write_big_csv(path, args.size)
        log("generated %s rows, %.0f MB" % (f"{rows:,}", size / 1e6))
        url = server.url("big.csv")
        whole = {"IMPORT_SPLIT_MIN_BYTES": "0"}
        split = {"IMPORT_SPLIT_MIN_BYTES": "1", "IMPORT_SPLIT_RANGE_BYTES": str(args.range)}
        t_whole, _ = measure(cluster, args.binary, url, rows, whole, 0)
        log("whole: %.1fs" % t_whole)
        t_one, n = measure(cluster, args.binary, url, rows, split, 0)
        log("split, 1 worker: %.1fs (%d ranges)" % (t_one, n))
        t_two, _ = measure(cluster, args.binary, url, rows, split, 1)
        log("split, 2 workers: %.1fs" % t_two)
        bi.print_table([
            ("object (MB, plain CSV)", "%.0f" % (size / 1e6)),
            ("rows", f"{rows:,}"),
            ("ranges (IMPORT_SPLIT_RANGE_BYTES=%d)" % args.range, str(n)),
            ("T_whole (s), one job", "%.1f" % t_whole),
            ("T_split_1 (s), split, 1 worker", "%.1f" % t_one),
            ("T_split_2 (s), split, 2 workers", "%.1f" % t_two),
            ("T_split_1 / T_split_2 (2 workers against 1)", "%.2f" % (t_one / t_two)),
            ("T_whole / T_split_2", "%.2f" % (t_whole / t_two)),
            ("T_whole / T_split_1 (the cost of splitting)", "%.2f" % (t_whole / t_one)),
        ])
    finally:
        server.stop()
        cluster.stop()
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
