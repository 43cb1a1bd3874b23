#!/usr/bin/env python3
"""Import benchmark for dsa-ingest: throughput against a plain-SQL baseline, and peak memory.

Why these three numbers, measured in one run on one private PostgreSQL:
  (a) T_import  `dsa-ingest import http://…/data.csv.gz` of N generated rows, default settings.
  (b) T_sql     the floor a hand-written loader reaches on the same schema: Python prepares
                the rows (canonical JSON, a 32-hex hash, logical ids) into a COPY file
                beforehand (not timed), then ONE psql session copies it into a temp table and
                fills dsa_core.rows (dedup) and dsa_core.commit_rows. The ratio T_sql/T_import
                says how close the streaming importer (which also downloads, inflates, parses
                and hashes) gets to bulk SQL.
  (c) peak RSS  `/usr/bin/time -v` on imports of a ~250 MB and a ~1 GB CSV from a local path:
                streaming must keep memory under 64 MiB and flat as the input grows.

Usage: python3 tests/bench/bench_import.py [--rows N] [--big-mb MB] [--mid-mb MB] [--skip-rss]
"""
import argparse
import csv
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import gen  # noqa: E402
from harness.httpserver import HttpServer  # noqa: E402
from harness.pg import Cluster  # noqa: E402
from harness.runner import Runner, default_binary  # noqa: E402

RSS_LIMIT_MIB = 64.0
RSS_FLAT_MIB = 8.0  # the 1 GB run may use at most this much more than the 250 MB run


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows in the throughput test")
    p.add_argument("--big-mb", type=int, default=1024, help="size of the large RSS test CSV")
    p.add_argument("--mid-mb", type=int, default=250, help="size of the smaller RSS test CSV")
    p.add_argument("--skip-rss", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--binary", default=default_binary(), help="dsa-ingest to measure")
    p.add_argument("--workdir", default=None, help="where to put generated files (default: temp)")
    return p.parse_args()


def log(msg):
    print("[bench] %s" % msg, file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------

def make_dataset(workdir, rows):
    """make_dataset writes data.csv.gz with the generator shared with the tests."""
    path = os.path.join(workdir, "data.csv.gz")
    t0 = time.monotonic()
    gen.write_people_csv(path, rows, seed=1, compress=True)
    log("generated %s rows (%.1f MB gz) in %.1fs" % (
        f"{rows:,}", os.path.getsize(path) / 1e6, time.monotonic() - t0))
    return path


def copy_escape(text):
    """copy_escape escapes a value for COPY's text format (JSON text has no raw tabs/newlines)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def prepare_copy_file(gz_path, out_path):
    """prepare_copy_file turns the CSV into `logical_row_id, row_hash, json` COPY lines.

    This is the work dsa-ingest does per row (framing, canonical JSON, hashing); the
    baseline does it beforehand and untimed, so T_sql measures the database side only."""
    t0 = time.monotonic()
    n = 0
    with gzip.open(gz_path, "rt", encoding="utf-8", newline="") as f, \
            open(out_path, "w", encoding="utf-8") as out:
        reader = csv.reader(f)
        header = next(reader)
        buf = []
        for number, record in enumerate(reader, start=2):
            text = json.dumps(dict(zip(header, record)), sort_keys=True,
                              separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
            buf.append("primary:%d\t%s\t%s\n" % (number, digest, copy_escape(text)))
            n += 1
            if len(buf) >= 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    log("prepared COPY file (%d rows, %.1f MB) in %.1fs" % (
        n, os.path.getsize(out_path) / 1e6, time.monotonic() - t0))
    return n


# -- measurements ------------------------------------------------------------------------

def fresh_migrated_db(cluster, binary, prefix):
    """fresh_migrated_db is a new database with the schema `dsa-ingest migrate` creates."""
    db = cluster.create_database(prefix)
    res = Runner(binary, {"DATABASE_URL": db.url}).run("migrate", timeout=300)
    if res.code != 0:
        raise SystemExit("migrate failed: %r" % res)
    return db


def measure_import(cluster, binary, url, rows):
    """measure_import times one `dsa-ingest import` of url (default settings) → (seconds, json)."""
    db = fresh_migrated_db(cluster, binary, "bench_import")
    runner = Runner(binary, {"DATABASE_URL": db.url})
    res = runner.run("import", url, "--dataset", "bench", "--json", timeout=7200)
    if res.code != 0:
        raise SystemExit("import failed: %r" % res)
    out = res.json()
    stored = db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                       (out["commit_id"],))
    if stored != rows:
        raise SystemExit("import stored %d rows, expected %d" % (stored, rows))
    db.close()
    return res.elapsed, out


BASELINE_SQL = r"""
\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE staging (logical_row_id text, row_hash text, data text) ON COMMIT DROP;
\copy staging FROM '{copy_file}'
INSERT INTO dsa_core.datasets (name) VALUES ('baseline') RETURNING id AS dataset_id \gset
INSERT INTO dsa_core.commits (commit_id, dataset_id, message)
    VALUES ('{commit_id}', :dataset_id, 'baseline');
INSERT INTO dsa_core.rows (row_hash, data)
    SELECT DISTINCT ON (row_hash) row_hash, data::jsonb FROM staging ORDER BY row_hash
    ON CONFLICT DO NOTHING;
INSERT INTO dsa_core.commit_rows (commit_id, logical_row_id, row_hash)
    SELECT '{commit_id}', logical_row_id, row_hash FROM staging;
INSERT INTO dsa_core.refs (dataset_id, name, commit_id) VALUES (:dataset_id, 'main', '{commit_id}');
COMMIT;
"""


def measure_sql_baseline(cluster, binary, copy_file, rows, workdir):
    """measure_sql_baseline times one psql session loading the prepared COPY file."""
    db = fresh_migrated_db(cluster, binary, "bench_sql")
    commit_id = hashlib.sha256(b"baseline").hexdigest()
    script = os.path.join(workdir, "baseline.sql")
    with open(script, "w") as f:
        f.write(BASELINE_SQL.format(copy_file=copy_file.replace("'", "''"), commit_id=commit_id))
    t0 = time.monotonic()
    proc = cluster.psql(db.name, "-f", script, timeout=7200)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit("baseline failed: %s" % proc.stderr.decode(errors="replace"))
    stored = db.scalar("SELECT count(*) FROM dsa_core.commit_rows")
    if stored != rows:
        raise SystemExit("baseline stored %d rows, expected %d" % (stored, rows))
    db.close()
    return elapsed


def measure_rss(cluster, binary, csv_path):
    """measure_rss imports csv_path under /usr/bin/time -v → (max RSS MiB, seconds, rows)."""
    db = fresh_migrated_db(cluster, binary, "bench_rss")
    env = dict(os.environ, DATABASE_URL=db.url)
    cmd = ["/usr/bin/time", "-v", binary, "import", csv_path, "--dataset", "rss", "--json"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          timeout=7200)
    elapsed = time.monotonic() - t0
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit("import of %s failed (%d): %s" % (csv_path, proc.returncode, err[-3000:]))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    if not m:
        raise SystemExit("no RSS in /usr/bin/time output: %s" % err[-2000:])
    rows = json.loads(proc.stdout.decode())["rows_imported"]
    db.close()
    drop_database(cluster, db.name)
    return int(m.group(1)) / 1024.0, elapsed, rows


def drop_database(cluster, name):
    """drop_database frees the disk a large import used before the next one."""
    conn = cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    finally:
        conn.close()


# -- report ------------------------------------------------------------------------------

def print_table(rows):
    """print_table prints (metric, value) pairs as an aligned two-column table."""
    width = max(len(k) for k, _ in rows)
    print()
    print("%-*s  %s" % (width, "metric", "value"))
    print("%s  %s" % ("-" * width, "-" * 16))
    for k, v in rows:
        print("%-*s  %s" % (width, k, v))


def run_throughput(args, cluster, workdir, table):
    """run_throughput does (a) and (b) and appends their lines to table."""
    server = HttpServer(root=workdir).start()
    try:
        gz = make_dataset(workdir, args.rows)
        t_import, out = measure_import(cluster, args.binary, server.url("data.csv.gz"), args.rows)
        log("import: %.2fs" % t_import)
    finally:
        server.stop()
    copy_file = os.path.join(workdir, "baseline.copy")
    prepare_copy_file(gz, copy_file)
    t_sql = measure_sql_baseline(cluster, args.binary, copy_file, args.rows, workdir)
    log("sql baseline: %.2fs" % t_sql)
    table += [("rows", f"{args.rows:,}"),
              ("input (gzip MB)", "%.1f" % (os.path.getsize(gz) / 1e6)),
              ("T_import (s)", "%.2f" % t_import),
              ("import rows/s", f"{args.rows / t_import:,.0f}"),
              ("T_sql (s)", "%.2f" % t_sql),
              ("sql rows/s", f"{args.rows / t_sql:,.0f}"),
              ("T_sql / T_import", "%.2f" % (t_sql / t_import))]


def run_rss(args, cluster, workdir, table):
    """run_rss does (c): two local CSV sizes; returns False if memory is over budget or grows."""
    results = {}
    for label, mb in (("mid", args.mid_mb), ("big", args.big_mb)):
        path = os.path.join(workdir, "rss_%s.csv" % label)
        t0 = time.monotonic()
        size, _ = gen.write_big_csv(path, mb * 1024 * 1024)
        log("generated %s (%.0f MB) in %.1fs" % (path, size / 1e6, time.monotonic() - t0))
        rss, secs, rows = measure_rss(cluster, args.binary, path)
        os.unlink(path)
        log("%s: peak RSS %.1f MiB, %.1fs, %d rows" % (label, rss, secs, rows))
        results[label] = rss
        table += [("peak RSS, %d MB CSV (MiB)" % mb, "%.1f" % rss),
                  ("rows/s, %d MB CSV local" % mb, f"{rows / secs:,.0f}")]
    ok = max(results.values()) < RSS_LIMIT_MIB and results["big"] - results["mid"] < RSS_FLAT_MIB
    table.append(("RSS < %d MiB and flat" % RSS_LIMIT_MIB, "PASS" if ok else "FAIL"))
    return ok


def main():
    args = parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit("no dsa-ingest at %s (build it, or pass --binary)" % args.binary)
    if not args.skip_rss and not os.access("/usr/bin/time", os.X_OK):
        raise SystemExit("/usr/bin/time is missing: apt-get install time (or --skip-rss)")
    workdir = tempfile.mkdtemp(prefix="dsa-bench-", dir=args.workdir)
    cluster = Cluster(port=54339)
    table = []
    ok = True
    try:
        cluster.start()
        run_throughput(args, cluster, workdir, table)
        if not args.skip_rss:
            ok = run_rss(args, cluster, workdir, table)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
