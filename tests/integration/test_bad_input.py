"""Bad input fails the job cleanly (DESIGN §5): exit 1, a message naming table, row, byte
and reason, the job marked failed with that message, no ref, and the partial commit —
which existed, since the bad record comes after the first batches (--batch-size 5) —
removed with its manifest. Usage errors (missing file, 404) exit 2.
"""
import gzip
import random
import re

import pytest

from harness import checks, gen, refreader

HEADER = b"id,name,v\n"
BAD_ROW = 14  # header is row 1; rows 2..13 are good, two batches of 5 are committed first


def _good_rows(first, last):
    return b"".join(b"%d,name %d,v%d\n" % (i, i, i) for i in range(first, last + 1))


def _with_bad_record(bad):
    """_with_bad_record is header + 12 good records + bad + 6 good; returns (data, bad range)."""
    head = HEADER + _good_rows(2, BAD_ROW - 1)
    data = head + bad + _good_rows(BAD_ROW + 1, BAD_ROW + 6)
    return data, (len(head), len(head) + len(bad))


CSV_CASES = {
    "unterminated_quote": b'14,"never closed,v\n',
    "too_many_fields": b"14,a,b,c\n",
    "too_few_fields": b"14,a\n",
    "invalid_utf8": b"14,caf\xc3\x28,v\n",
    "nul_byte": b"14,a\x00b,v\n",
}


def _gzip_source():
    rows = list(gen.people_rows(3000, seed=11))
    return gzip.compress(gen.csv_bytes(rows), compresslevel=6, mtime=0)


def _truncated_gzip():
    data = _gzip_source()
    return data[: int(len(data) * 0.6)]


def _corrupt_gzip():
    data = bytearray(_gzip_source())
    rnd = random.Random(5)
    mid = len(data) // 2
    for i in range(mid, mid + 256):
        data[i] = rnd.randrange(256)
    return bytes(data)


def _random_bytes():
    return random.Random(77).randbytes(64 * 1024)


def _png():
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(78).randbytes(4096)


BINARY_CASES = {
    "truncated_gzip": ("t.csv.gz", _truncated_gzip),
    "corrupt_gzip": ("c.csv.gz", _corrupt_gzip),
    "random_bytes": ("r.csv", _random_bytes),
    "png": ("image.csv", _png),
}


def _error_line(stderr):
    """_error_line is the error message: the last stderr line saying error (not progress)."""
    lines = [l for l in stderr.splitlines() if "error" in l.lower()]
    assert lines, "no error line on stderr: %s" % stderr[-2000:]
    return lines[-1]


def _run_bad(ingest, db, source, dataset="bad"):
    res = ingest.run("import", source, "--dataset", dataset, "--batch-size", "5", timeout=120)
    assert res.code == 1, "expected exit 1 (bad input): %r" % res
    assert res.job_id, "no `job <uuid>` on stderr: %r" % res
    job = checks.job(db, res.job_id)
    assert job is not None, "job %s not in analysis_runs" % res.job_id
    assert job["status"] == "failed", job
    assert job["error_message"], job
    checks.assert_no_trace_of_failed_job(db, dataset, job)
    return res, job


@pytest.mark.parametrize("kind", ["http", "local"])
@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_record_fails_job(migrated, db, store, case, kind):
    data, (start, end) = _with_bad_record(CSV_CASES[case])
    with pytest.raises(refreader.ReferenceError_) as ref:
        refreader.read_records(data)  # the oracle agrees the input is bad, at that row
    assert ref.value.row == BAD_ROW
    path = store.put("bad.csv", data)
    res, job = _run_bad(migrated, db, store.url("bad.csv") if kind == "http" else path)
    err = _error_line(res.stderr)
    assert re.search(r"\brow %d\b" % BAD_ROW, err), "stderr does not name row %d: %s" % (BAD_ROW, err)
    assert "primary" in err, "stderr does not name the table: %s" % err
    m = re.search(r"\bbyte (\d+)", err)
    assert m, "stderr does not name the byte offset: %s" % err
    hi = len(data) if case == "unterminated_quote" else end
    assert start <= int(m.group(1)) <= hi, "byte %s outside the bad record [%d, %d]: %s" % (
        m.group(1), start, hi, err)
    assert re.search(r"\brow %d\b" % BAD_ROW, job["error_message"]), job["error_message"]
    if case == "too_many_fields":
        assert "4" in err and "3" in err, err
    if case == "too_few_fields":
        assert "2" in err and "3" in err, err


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_bad_binary_fails_job(migrated, db, store, case):
    fname, make = BINARY_CASES[case]
    store.put(fname, make())
    res, job = _run_bad(migrated, db, store.url(fname))
    err = _error_line(res.stderr)
    assert re.search(r"\brow \d+", err) and re.search(r"\bbyte \d+", err) and "primary" in err, \
        "the message must name table, row and byte: %s" % err


def test_missing_file_is_usage_error(migrated, db, tmp_path):
    res = migrated.run("import", str(tmp_path / "nope.csv"), "--dataset", "x", timeout=60)
    assert res.code == 2, res
    assert "nope.csv" in res.stderr, res.stderr
    assert checks.ref_head(db, "x") is None


def test_http_404_is_usage_error(migrated, db, store):
    res = migrated.run("import", store.url("absent.csv"), "--dataset", "x", timeout=60)
    assert res.code == 2, res
    assert "404" in res.stderr or "not found" in res.stderr.lower(), res.stderr
    assert checks.ref_head(db, "x") is None
    assert len(store.requests("absent.csv")) <= 2, "a 404 must not be retried"


@pytest.mark.parametrize("args", [
    ["import"],                                           # no SOURCE
    ["import", "SRC"],                                    # no --dataset
    ["import", "SRC", "--dataset", "d", "--format", "pdf"],
    ["import", "SRC", "--dataset", "d", "--batch-size", "zero"],
    ["no-such-command"],
])
def test_usage_errors_exit_2(migrated, store, args):
    store.put("u.csv", b"a\n1\n")
    args = [store.url("u.csv") if a == "SRC" else a for a in args]
    res = migrated.run(*args, timeout=60)
    assert res.code == 2, res
