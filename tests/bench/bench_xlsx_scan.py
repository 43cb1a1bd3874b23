#!/usr/bin/python3
"""XLSX benchmark (issue 5): `dsa-ingest scan` of a ~50 MB workbook and of the same data as
CSV, and openpyxl in read-only mode on the same workbook (the DSA platform's old path: load,
iterate values, build each row's dict and its canonical JSON), measured in one run.

The workbook is written by XlsxWriter in constant-memory mode (shared strings off, as large
exports usually are; one run with shared strings on is also measured, since that is what
Excel writes). Rates are rows per second; the table's ratios compare the runs of this one
invocation, so a noisy machine moves all of them together.

Usage: python3 tests/bench/bench_xlsx_scan.py [--rows 700000] [--build build]
"""
import argparse
import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def log(msg):
    print("[bench-xlsx] %s" % msg, file=sys.stderr, flush=True)


def rows(n):
    """rows yields the benchmark's records: ints, floats, text, dates, booleans."""
    base = dt.datetime(2024, 1, 1)
    for i in range(n):
        yield [i, "customer %d" % (i % 5000), (i * 7919) % 100000 / 100.0,
               base + dt.timedelta(minutes=i), i % 3 == 0, "note %d" % (i % 97)]


HEADER = ["id", "customer", "amount", "when", "flag", "note"]


def write_xlsx(path, n, shared):
    import xlsxwriter
    wb = xlsxwriter.Workbook(path, {"constant_memory": not shared, "strings_to_numbers": False})
    ws = wb.add_worksheet("data")
    when = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    ws.write_row(0, 0, HEADER)
    for r, row in enumerate(rows(n), 1):
        ws.write_number(r, 0, row[0])
        ws.write_string(r, 1, row[1])
        ws.write_number(r, 2, row[2])
        ws.write_datetime(r, 3, row[3], when)
        ws.write_boolean(r, 4, row[4])
        ws.write_string(r, 5, row[5])
    wb.close()


def write_csv(path, n):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for row in rows(n):
            w.writerow([row[0], row[1], row[2], row[3].isoformat(), str(row[4]).lower(), row[5]])


def scan(binary, path):
    """scan runs `dsa-ingest scan --json`; returns (rows, seconds)."""
    t0 = time.monotonic()
    proc = subprocess.run([binary, "scan", path, "--json"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    secs = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError("scan failed: %s" % proc.stderr.decode(errors="replace"))
    return json.loads(proc.stdout)["rows"], secs


def openpyxl_read(path):
    """openpyxl_read is the old path: read-only iteration, a dict and canonical JSON per row."""
    code = r"""
import json, sys, time, datetime as dt
import openpyxl
t0 = time.monotonic()
wb = openpyxl.load_workbook(sys.argv[1], read_only=True, data_only=True)
n = 0
for ws in wb.worksheets:
    header = None
    for row in ws.iter_rows(values_only=True):
        if header is None:
            header = [str(v) for v in row]
            continue
        obj = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in zip(header, row)}
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        n += 1
print(json.dumps({"rows": n, "seconds": time.monotonic() - t0}))
"""
    proc = subprocess.run(["/usr/bin/python3", "-c", code, path], stdout=subprocess.PIPE,
                          check=True)
    out = json.loads(proc.stdout)
    return out["rows"], out["seconds"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=700000, help="rows (700k ≈ 50 MB of sheet XML)")
    p.add_argument("--build", default=os.path.join(REPO, "build"))
    args = p.parse_args()
    binary = os.path.join(args.build, "dsa-ingest")
    work = tempfile.mkdtemp(prefix="dsa-bench-xlsx-")
    try:
        x_inline = os.path.join(work, "data.xlsx")
        x_shared = os.path.join(work, "shared.xlsx")
        c_path = os.path.join(work, "data.csv")
        log("writing %d rows as xlsx (inline strings), xlsx (shared strings) and csv" % args.rows)
        write_xlsx(x_inline, args.rows, shared=False)
        write_xlsx(x_shared, args.rows, shared=True)
        write_csv(c_path, args.rows)
        scan(binary, c_path)  # warm the page cache
        res = {}
        res["csv"] = scan(binary, c_path)
        res["xlsx"] = scan(binary, x_inline)
        res["xlsx_shared"] = scan(binary, x_shared)
        log("openpyxl read-only on the same workbook (slow)")
        res["openpyxl"] = openpyxl_read(x_inline)
        for k, (n, _) in res.items():
            assert n == args.rows, "%s read %d rows, expected %d" % (k, n, args.rows)
        rate = {k: n / s for k, (n, s) in res.items()}
        print("rows %d; xlsx %.1f MB (zip), csv %.1f MB" % (
            args.rows, os.path.getsize(x_inline) / 1e6, os.path.getsize(c_path) / 1e6))
        print("%-34s %12s %10s" % ("run", "rows/s", "seconds"))
        names = {"csv": "dsa-ingest scan, CSV", "xlsx": "dsa-ingest scan, XLSX (inline strings)",
                 "xlsx_shared": "dsa-ingest scan, XLSX (shared strings)",
                 "openpyxl": "openpyxl read-only + json.dumps"}
        for k in ("csv", "xlsx", "xlsx_shared", "openpyxl"):
            print("%-34s %12.0f %10.2f" % (names[k], rate[k], res[k][1]))
        print("XLSX / CSV (scan)                  %8.2f" % (rate["xlsx"] / rate["csv"]))
        print("XLSX scan / openpyxl               %8.1f x" % (rate["xlsx"] / rate["openpyxl"]))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
