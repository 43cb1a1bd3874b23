#!/usr/bin/env python3
"""The loader benchmark (issue 7): dsa-ingest's whole import against plain SQL, in one run.

Everything runs against ONE private PostgreSQL 15 cluster with the server's DEFAULT durability
settings (fsync, synchronous_commit and full_page_writes on, 128 MB shared_buffers), each
measurement in a fresh, migrated database, on a generated N-row gzipped CSV with quoted fields
(commas, quotes, newlines) served over HTTP on loopback:

  T_import      `dsa-ingest import http://…/data.csv.gz`: fetch, inflate, parse, hash, load,
                checkpoint with every batch; with IMPORT_PARALLEL_WORKERS = 4 (the default),
                2 and 1 loading connections. The object is over IMPORT_STAGE_MIN_BYTES, so
                these are staged loads (batches into UNLOGGED staging tables, then a merge in
                hash order); one more run loads it directly (IMPORT_STAGE_MIN_BYTES=0, every
                batch straight into the tables, 2 loaders), as imports below the threshold do.
  T_sql         the plain SQL path on the same schema and rows: the rows are prepared into a COPY
                file beforehand (untimed), then one psql session copies them into a temp table
                and runs `INSERT … ON CONFLICT DO NOTHING` into dsa_core.rows and `INSERT` into
                dsa_core.commit_rows.
  T_sql_sorted  the same SQL with the staging rows sorted by row_hash (the faster variant).
  T_sql_staged  the fastest SQL load known here (a model for a future load phase, not what
                dsa-ingest does): the prepared rows COPYed in 10k-row batches into 32 UNLOGGED
                staging tables by row_hash prefix, one transaction per batch; then two
                connections merge one staging table at a time, in row_hash order, into rows
                and commit_rows (one transaction per table) — each index leaf visited once.
  old Python    a re-creation of the platform's old import path: csv module, json.dumps,
                sha256, COPY of 10k-row batches into a temp table, the two INSERTs (psycopg2).
  T_zcat/T_scan `zcat data.csv.gz > /dev/null` against `dsa-ingest scan` of the same object over
                HTTP (no database), best of three each.
  peak RSS      of the import with IMPORT_PARALLEL_WORKERS=4, under /usr/bin/time -v.

Each import and SQL run also records the CPU seconds spent in it by the database (the
cluster's processes, from /proc) and by the client (the importer or psql). Their sum over the
machine's cores is the shortest that run could take here if every core worked for it all the
time: the "CPU floor", which shows whether a ratio is bound by this machine's cores.

Ratios, not seconds, are the result: these machines are shared and noisy.

Usage: /usr/bin/python3 tests/bench/bench_pipeline.py [--rows N] [--skip-python] [--skip-sql]
"""
import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

import bench_import as bi  # noqa: E402
import bench_scan  # noqa: E402
from harness import gen  # noqa: E402
from harness.httpserver import HttpServer  # noqa: E402
from harness.pg import Cluster  # noqa: E402
from harness.runner import default_binary  # noqa: E402

DEFAULT_DURABILITY = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
COMMIT_ID = hashlib.sha256(b"baseline").hexdigest()

SQL_PLAIN = r"""
\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE staging (logical_row_id text, row_hash text, data text) ON COMMIT DROP;
\copy staging FROM '{copy_file}'
INSERT INTO dsa_core.datasets (name) VALUES ('baseline') RETURNING id AS dataset_id \gset
INSERT INTO dsa_core.commits (commit_id, dataset_id, message)
    VALUES ('{commit_id}', :dataset_id, 'baseline');
INSERT INTO dsa_core.rows (row_hash, data)
    SELECT row_hash, data::jsonb FROM staging {order} ON CONFLICT DO NOTHING;
INSERT INTO dsa_core.commit_rows (commit_id, logical_row_id, row_hash)
    SELECT '{commit_id}', logical_row_id, row_hash FROM staging {order};
INSERT INTO dsa_core.refs (dataset_id, name, commit_id) VALUES (:dataset_id, 'main', '{commit_id}');
COMMIT;
"""


def log(msg):
    print("[bench] %s" % msg, file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--binary", default=default_binary())
    p.add_argument("--workdir", default=None)
    p.add_argument("--skip-python", action="store_true", help="skip the old Python path")
    p.add_argument("--skip-sql", action="store_true", help="skip the two plain-SQL baselines")
    return p.parse_args()


def timed(cmd, env=None, stdout=subprocess.DEVNULL):
    """timed runs cmd → (seconds, CompletedProcess); raises when it fails."""
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=7200)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), proc.returncode,
                                                 proc.stderr.decode(errors="replace")[-3000:]))
    return elapsed, proc


def _cpu_fields(pid):
    """_cpu_fields are /proc/PID/stat's fields from the state on (the name may hold spaces)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cluster_cpu(cluster):
    """cluster_cpu is the CPU seconds the cluster's processes have used: the postmaster's own
    and its reaped children's (utime, stime, cutime, cstime), plus its running children's."""
    with open(os.path.join(cluster.datadir, "postmaster.pid")) as f:
        pm = int(f.readline())
    ticks = sum(int(x) for x in _cpu_fields(pm)[11:15])
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != pm:
            try:
                f = _cpu_fields(int(name))
            except OSError:  # ended since the listing
                continue
            if int(f[1]) == pm:
                ticks += int(f[11]) + int(f[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def child_cpu():
    """child_cpu is the CPU seconds of the client side: this script's finished child processes
    (the importer, psql) and the script itself (the staged SQL's psycopg2 client, the HTTP
    server's thread)."""
    total = 0.0
    for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


class CpuMeter:
    """CpuMeter measures the database's and the client processes' CPU seconds over a block."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.db = self.client = 0.0

    def __enter__(self):
        self._db, self._client = cluster_cpu(self.cluster), child_cpu()
        return self

    def __exit__(self, *exc):
        self.db = cluster_cpu(self.cluster) - self._db
        self.client = child_cpu() - self._client

    def floor(self):
        """floor is the shortest the block could take with every core busy for it."""
        return (self.db + self.client) / os.cpu_count()


CPU = {}  # run name → CpuMeter
MERGE = {}  # run name → seconds of a staged load's merge phase (None: a direct load)


def measure_import(cluster, binary, url, rows, extra_env=None, rss=False, name=None):
    """measure_import: one `dsa-ingest import` into a fresh database → (seconds, peak RSS MiB);
    its CPU figures go into CPU[name]."""
    db = bi.fresh_migrated_db(cluster, binary, "pipe_import")
    env = dict(os.environ, DATABASE_URL=db.url, **(extra_env or {}))
    cmd = [binary, "import", url, "--dataset", "bench", "--json"]
    if rss:
        cmd = ["/usr/bin/time", "-v"] + cmd
    with CpuMeter(cluster) as meter:
        elapsed, proc = timed(cmd, env=env, stdout=subprocess.PIPE)
    CPU[name] = meter
    out = json.loads(proc.stdout.decode())
    MERGE[name] = db.scalar("SELECT (output_summary->'timings'->>'merge_s')::float8 "
                            "FROM dsa_jobs.analysis_runs WHERE id = %s", (out["job_id"],))
    peak = None
    if rss:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr.decode())
        peak = int(m.group(1)) / 1024.0 if m else None
    check_and_drop(cluster, db, rows, "import", out["commit_id"])
    return elapsed, peak


def check_and_drop(cluster, db, rows, who, commit_id=None):
    """check_and_drop fails unless the manifest (of commit_id, or all of it) holds `rows`
    rows, then drops the run's database to free its disk for the next run."""
    if commit_id:
        stored = db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                           (commit_id,))
    else:
        stored = db.scalar("SELECT count(*) FROM dsa_core.commit_rows")
    if stored != rows:
        raise SystemExit("%s stored %d rows, expected %d" % (who, stored, rows))
    db.close()
    bi.drop_database(cluster, db.name)


def measure_sql(cluster, binary, copy_file, rows, workdir, sorted_rows):
    """measure_sql: the plain SQL path (optionally sorted by row_hash) in one psql session."""
    db = bi.fresh_migrated_db(cluster, binary, "pipe_sql")
    script = os.path.join(workdir, "plain.sql")
    with open(script, "w") as f:
        f.write(SQL_PLAIN.format(copy_file=copy_file.replace("'", "''"), commit_id=COMMIT_ID,
                                 order="ORDER BY row_hash" if sorted_rows else ""))
    with CpuMeter(cluster) as meter:
        t0 = time.monotonic()
        proc = cluster.psql(db.name, "-f", script, timeout=7200)
        elapsed = time.monotonic() - t0
    CPU["sql_sorted" if sorted_rows else "sql"] = meter
    if proc.returncode != 0:
        raise SystemExit("plain SQL failed: %s" % proc.stderr.decode(errors="replace"))
    check_and_drop(cluster, db, rows, "plain SQL")
    return elapsed


STAGED_TABLES = 32
STAGED_CONNS = 2


def measure_sql_staged(cluster, binary, copy_file, rows, batch=10000):
    """measure_sql_staged: T_sql_staged (see the module's doc), with psycopg2."""
    import threading

    import psycopg2
    db = bi.fresh_migrated_db(cluster, binary, "pipe_staged")
    conn = psycopg2.connect(db.url)
    cur = conn.cursor()
    for p in range(STAGED_TABLES):
        cur.execute("CREATE UNLOGGED TABLE stage_%d (logical_row_id text, row_hash text, "
                    "data text)" % p)
    conn.commit()
    errors = []
    with CpuMeter(cluster) as meter:
        t0 = time.monotonic()
        cur.execute("INSERT INTO dsa_core.datasets (name) VALUES ('staged') RETURNING id")
        dataset_id = cur.fetchone()[0]
        cur.execute("INSERT INTO dsa_core.commits (commit_id, dataset_id, message) "
                    "VALUES (%s, %s, 'staged')", (COMMIT_ID, dataset_id))
        conn.commit()
        with open(copy_file) as f:
            while True:
                lines = [ln for ln in (f.readline() for _ in range(batch)) if ln]
                if not lines:
                    break
                parts = [[] for _ in range(STAGED_TABLES)]
                for ln in lines:  # the hash is the line's second column: 32 hex digits
                    h = ln.split("\t", 2)[1]
                    parts[int(h[:2], 16) * STAGED_TABLES // 256].append(ln)
                for p, part in enumerate(parts):
                    if part:
                        cur.copy_expert("COPY stage_%d FROM STDIN" % p, io.StringIO("".join(part)))
                conn.commit()
        todo = list(range(STAGED_TABLES))
        lock = threading.Lock()

        def merge():
            try:
                c = psycopg2.connect(db.url)
                k = c.cursor()
                while True:
                    with lock:
                        if not todo:
                            break
                        p = todo.pop(0)
                    k.execute("INSERT INTO dsa_core.rows (row_hash, data) SELECT row_hash, "
                              "data::jsonb FROM stage_%d ORDER BY row_hash ON CONFLICT DO NOTHING"
                              % p)
                    k.execute("INSERT INTO dsa_core.commit_rows (commit_id, logical_row_id, "
                              "row_hash) SELECT %%s, logical_row_id, row_hash FROM stage_%d "
                              "ORDER BY row_hash" % p, (COMMIT_ID,))
                    c.commit()
                c.close()
            except Exception as e:  # noqa: BLE001 - reported after the join
                errors.append(e)

        threads = [threading.Thread(target=merge) for _ in range(STAGED_CONNS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cur.execute("INSERT INTO dsa_core.refs (dataset_id, name, commit_id) "
                    "VALUES (%s, 'main', %s)", (dataset_id, COMMIT_ID))
        conn.commit()
        elapsed = time.monotonic() - t0
    CPU["sql_staged"] = meter
    conn.close()
    if errors:
        raise SystemExit("staged SQL failed: %s" % errors[0])
    check_and_drop(cluster, db, rows, "staged SQL")
    return elapsed


def old_python_path(db_url, url, batch=10000):
    """old_python_path re-creates the platform's import: csv, json.dumps, sha256, COPY of each
    10k-row batch into a temp table, then the two INSERTs, one transaction per batch."""
    import psycopg2
    conn = psycopg2.connect(db_url)
    cur = conn.cursor()
    cur.execute("INSERT INTO dsa_core.datasets (name) VALUES ('old') RETURNING id")
    dataset_id = cur.fetchone()[0]
    cur.execute("INSERT INTO dsa_core.commits (commit_id, dataset_id, message) VALUES (%s, %s, 'old')",
                (COMMIT_ID, dataset_id))
    cur.execute("CREATE TEMP TABLE staging (row_hash text, logical_row_id text, data text)")
    conn.commit()

    def flush(buf):
        cur.execute("TRUNCATE staging")
        cur.copy_expert("COPY staging FROM STDIN", io.StringIO("".join(buf)))
        cur.execute("INSERT INTO dsa_core.rows (row_hash, data) SELECT row_hash, data::jsonb "
                    "FROM staging ON CONFLICT (row_hash) DO NOTHING")
        cur.execute("INSERT INTO dsa_core.commit_rows (commit_id, logical_row_id, row_hash) "
                    "SELECT %s, logical_row_id, row_hash FROM staging", (COMMIT_ID,))
        conn.commit()

    n = 0
    with urllib.request.urlopen(url) as resp, gzip.GzipFile(fileobj=resp) as gz:
        reader = csv.reader(io.TextIOWrapper(gz, encoding="utf-8", newline=""))
        header = next(reader)
        buf = []
        for number, record in enumerate(reader, start=2):
            text = json.dumps(dict(zip(header, record)), sort_keys=True, ensure_ascii=False)
            digest = hashlib.sha256(text.encode()).hexdigest()
            buf.append("%s\tprimary:%d\t%s\n" % (digest, number, bi.copy_escape(text)))
            n += 1
            if len(buf) >= batch:
                flush(buf)
                buf = []
        if buf:
            flush(buf)
    cur.execute("INSERT INTO dsa_core.refs (dataset_id, name, commit_id) VALUES (%s, 'main', %s)",
                (dataset_id, COMMIT_ID))
    conn.commit()
    conn.close()
    return n


def measure_old_python(cluster, binary, url, rows):
    db = bi.fresh_migrated_db(cluster, binary, "pipe_old")
    t0 = time.monotonic()
    n = old_python_path(db.url, url)
    elapsed = time.monotonic() - t0
    if n != rows:
        raise SystemExit("old path read %d rows, expected %d" % (n, rows))
    db.close()
    bi.drop_database(cluster, db.name)
    return elapsed


def measure_scan(binary, gz_path, url, rows):
    """measure_scan: best of three of zcat and of `dsa-ingest scan URL` (bench_scan.py's
    runners: the scan's rows are checked), alternating."""
    zc, sc = [], []
    for _ in range(3):
        zc.append(bench_scan.timed(["zcat", gz_path])[0])
        sc.append(bench_scan.scan(binary, url, rows)[0])
    return min(zc), min(sc)


def main():
    args = parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit("no dsa-ingest at %s (build it, or pass --binary)" % args.binary)
    workdir = tempfile.mkdtemp(prefix="dsa-bench-pipe-", dir=args.workdir)
    cluster = Cluster(port=54341, settings=DEFAULT_DURABILITY)
    server = HttpServer(root=workdir).start()
    table = []
    try:
        cluster.start()
        gz = os.path.join(workdir, "data.csv.gz")
        t0 = time.monotonic()
        gen.write_people_csv(gz, args.rows, seed=1, compress=True)
        log("generated %s rows (%.1f MB gz) in %.1fs" % (
            f"{args.rows:,}", os.path.getsize(gz) / 1e6, time.monotonic() - t0))
        url = server.url("data.csv.gz")
        # The scan first: no database is busy yet (after the loads, the cluster's background
        # writes take CPU from the scan's threads, not from zcat's one).
        t_zcat, t_scan = measure_scan(args.binary, gz, url, args.rows)
        table += [("rows", f"{args.rows:,}"),
                  ("input (gzip MB)", "%.1f" % (os.path.getsize(gz) / 1e6))]

        # Loading connections: the default (4, IMPORT_PARALLEL_WORKERS), then 2 (this
        # machine's cores, which the database shares with the importer) and 1. The default
        # run is also the peak-memory run.
        times = {}
        for loaders in (4, 2, 1):
            t, rss = measure_import(cluster, args.binary, url, args.rows,
                                    {"IMPORT_PARALLEL_WORKERS": str(loaders)}, rss=loaders == 4,
                                    name=loaders)
            times[loaders] = t
            log("import with %d loader(s): %.2fs (merge phase %s)%s" % (
                loaders, t, "%.2fs" % MERGE[loaders] if MERGE[loaders] is not None else "none",
                ", peak RSS %.1f MiB" % rss if rss else ""))
            table.append(("T_import (s), IMPORT_PARALLEL_WORKERS=%d%s" % (
                loaders, " (default)" if loaders == 4 else ""), "%.2f" % t))
            if rss:
                table.append(("peak RSS (MiB), IMPORT_PARALLEL_WORKERS=4 (target < 64)",
                              "%.1f" % rss))
        t, _ = measure_import(cluster, args.binary, url, args.rows,
                              {"IMPORT_PARALLEL_WORKERS": "2", "IMPORT_STAGE_MIN_BYTES": "0"},
                              name="direct")
        times["direct"] = t
        log("direct import (no staging), 2 loaders: %.2fs" % t)
        table.append(("T_import (s), direct load (IMPORT_STAGE_MIN_BYTES=0), 2 loaders",
                      "%.2f" % t))
        best = min((k for k in times if k != "direct"), key=times.get)
        table.append(("import rows/s, best (%d loaders)" % best,
                      f"{args.rows / times[best]:,.0f}"))

        if not args.skip_sql:
            copy_file = os.path.join(workdir, "plain.copy")
            bi.prepare_copy_file(gz, copy_file)
            t_sql = measure_sql(cluster, args.binary, copy_file, args.rows, workdir, False)
            log("plain SQL: %.2fs" % t_sql)
            t_sorted = measure_sql(cluster, args.binary, copy_file, args.rows, workdir, True)
            log("plain SQL, sorted: %.2fs" % t_sorted)
            t_staged = measure_sql_staged(cluster, args.binary, copy_file, args.rows)
            log("staged SQL: %.2fs" % t_staged)
            os.unlink(copy_file)
            table += [("T_sql (s), plain SQL", "%.2f" % t_sql),
                      ("T_sql_sorted (s), staging sorted by row_hash", "%.2f" % t_sorted),
                      ("T_sql_staged (s), %d unlogged hash-prefix tables, %d merging"
                       % (STAGED_TABLES, STAGED_CONNS), "%.2f" % t_staged),
                      ("T_sql / T_sql_staged: what the staged load gains", "%.2f"
                       % (t_sql / t_staged))]
            for loaders in (4, 2, 1):
                table.append(("T_sql / T_import, %d loader(s) (target >= 2.0)" % loaders,
                              "%.2f" % (t_sql / times[loaders])))
            table.append(("T_sql / T_import, direct load, 2 loaders",
                          "%.2f" % (t_sql / times["direct"])))
            table.append(("T_sql_sorted / T_import, %d loaders" % best,
                          "%.2f" % (t_sorted / times[best])))

        table.append(("CPU seconds, database + client (CPU floor on %d cores, s)"
                      % os.cpu_count(), ""))
        for key, label in [(4, "T_import, 4 loaders"), (2, "T_import, 2 loaders"),
                           (1, "T_import, 1 loader"), ("direct", "T_import, direct, 2 loaders"),
                           ("sql", "T_sql"),
                           ("sql_sorted", "T_sql_sorted"), ("sql_staged", "T_sql_staged")]:
            if key in CPU:
                m = CPU[key]
                table.append(("  " + label, "%.1f + %.1f (%.1f)" % (m.db, m.client, m.floor())))
        if "sql" in CPU:
            floor = min(CPU[k].floor() for k in (4, 2, 1))
            table.append(("T_sql / the import's CPU floor: the best ratio these cores allow",
                          "%.2f" % (t_sql / floor)))

        if not args.skip_python:
            t_old = measure_old_python(cluster, args.binary, url, args.rows)
            log("old Python path: %.2fs" % t_old)
            table += [("old Python path rows/s", f"{args.rows / t_old:,.0f}"),
                      ("import (%d loaders) / old Python path, rows/s" % best,
                       "%.1fx" % (t_old / times[best]))]

        table += [("T_zcat (s)", "%.2f" % t_zcat), ("T_scan (s), over HTTP", "%.2f" % t_scan),
                  ("T_zcat / T_scan (target >= 0.8)", "%.2f" % (t_zcat / t_scan))]
    finally:
        server.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    bi.print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
