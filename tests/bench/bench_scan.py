#!/usr/bin/env python3
"""Scan benchmark (issue 7): `dsa-ingest scan` of a gzipped CSV against `zcat` of the same file.

The file is the import benchmark's data: --rows generated rows (gen.write_people_csv, seed 1,
gzip level 6; some notes quoted, with commas, quotes and newlines). Timed, alternating, best of
--runs each:

  zcat         `zcat FILE > /dev/null`: inflating alone, the baseline (T_zcat)
  scan file    `dsa-ingest scan --json FILE`: read, inflate, parse, canonical JSON, XXH3-128,
               column profile (T_scan)
  scan http    the same over HTTP from the integration harness's server (httpserver.py)
  curl | zcat  the same object fetched and inflated by the tools, for the HTTP row's context

The issue's target is T_zcat / T_scan >= 0.8 for both scans. Each scan's JSON is checked
(rows, bytes), and both scans must print the same profile. All figures come from this one run,
so a noisy machine moves them together.

Usage: python3 tests/bench/bench_scan.py [--rows 2000000] [--runs 5] [--build build]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from harness import gen  # noqa: E402
from harness.httpserver import HttpServer  # noqa: E402

TARGET = 0.8


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2000000, help="generated rows (default 2M)")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each command")
    p.add_argument("--build", default=os.path.join(REPO, "build"), help="build dir")
    p.add_argument("--workdir", default=None, help="where to write the file (default: temp)")
    return p.parse_args()


def log(msg):
    print("[bench-scan] %s" % msg, file=sys.stderr, flush=True)


def timed(argv, shell=False, keep=False):
    """timed runs a command to the end; returns (seconds, its stdout if keep). Output not
    kept goes to /dev/null, as in the shell command the baseline stands for."""
    t0 = time.monotonic()
    proc = subprocess.run(argv, shell=shell, stdout=subprocess.PIPE if keep else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    secs = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError("%s failed: %s" % (argv if shell else argv[0],
                                              proc.stderr.decode(errors="replace")))
    return secs, proc.stdout


def scan(binary, source, rows):
    """scan runs `dsa-ingest scan --json`; returns (seconds, profile) after checking the rows."""
    secs, out = timed([binary, "scan", "--json", source], keep=True)
    res = json.loads(out)
    assert res["rows"] == rows, "scan of %s: %d rows, expected %d" % (source, res["rows"], rows)
    return secs, (res["tables"], res["bytes_decoded"])


def main():
    args = parse_args()
    binary = os.path.join(args.build, "dsa-ingest")
    if not os.access(binary, os.X_OK):
        log("no %s: build first (bash scripts/build.sh build)" % binary)
        return 2
    for tool in ("zcat", "curl"):
        if not shutil.which(tool):
            log("cannot run: %s is not installed" % tool)
            return 2
    work = tempfile.mkdtemp(prefix="dsa-bench-scan-", dir=args.workdir)
    server = HttpServer(root=work)
    try:
        path = os.path.join(work, "people.csv.gz")
        log("writing %d rows to %s" % (args.rows, path))
        size = gen.write_people_csv(path, args.rows, seed=1, compress=True)
        server.start()
        url = server.url("people.csv.gz")
        zcat = ["zcat", path]
        pipe = "curl -sS -f %s | zcat > /dev/null" % url
        timed(zcat)  # warm the page cache, untimed
        times = {"zcat": [], "file": [], "http": [], "pipe": []}
        profiles = set()
        for i in range(args.runs):
            times["zcat"].append(timed(zcat)[0])
            secs, prof = scan(binary, path, args.rows)
            times["file"].append(secs)
            profiles.add(json.dumps(prof, sort_keys=True))
            secs, prof = scan(binary, url, args.rows)
            times["http"].append(secs)
            profiles.add(json.dumps(prof, sort_keys=True))
            times["pipe"].append(timed(pipe, shell=True)[0])
            log("run %d: zcat %.2f s, scan file %.2f s, scan http %.2f s, curl|zcat %.2f s"
                % (i + 1, times["zcat"][-1], times["file"][-1], times["http"][-1],
                   times["pipe"][-1]))
        assert len(profiles) == 1, "the file and HTTP scans found different profiles"
        best = {k: min(v) for k, v in times.items()}
        decoded = json.loads(profiles.pop())[1]
        print("object            %d rows, %.1f MB gzip, %.1f MB CSV (gen.write_people_csv)"
              % (args.rows, size / 1e6, decoded / 1e6))
        print("%-24s %8s %10s %18s" % ("command (best of %d)" % args.runs, "seconds",
                                       "MB/s CSV", "T_zcat / T_scan"))
        rows = [("zcat FILE", best["zcat"], None),
                ("dsa-ingest scan FILE", best["file"], best["zcat"] / best["file"]),
                ("dsa-ingest scan http://", best["http"], best["zcat"] / best["http"]),
                ("curl http:// | zcat", best["pipe"], None)]
        for name, secs, ratio in rows:
            print("%-24s %8.2f %10.1f %18s" % (name, secs, decoded / 1e6 / secs,
                                               "%.2f" % ratio if ratio else ""))
        ok = all(r >= TARGET for _, _, r in rows if r)
        print("target T_zcat / T_scan >= %.1f: %s" % (TARGET, "PASS" if ok else "FAIL"))
        return 0
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
