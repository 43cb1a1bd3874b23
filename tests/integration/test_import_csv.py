"""An import stores exactly what an independent reader sees (DESIGN §2).

Every case is a CSV/TSV that trips naive parsers; each is imported over HTTP and from a
local path, and the committed rows are compared key by key with harness.refreader:
logical ids, values (strings exactly as read), and row_hash = XXH3-128 of the canonical
JSON. The rest checks the `--json` summary, the job row, and commit parentage.
"""
import gzip
import os
import random
import re

import pytest

from harness import checks, gen, refreader

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _wide():
    """_wide is a 300-column table (header + 5 rows) with a few empty cells."""
    rnd = random.Random(300)
    header = ["c%03d" % i for i in range(300)]
    rows = [[("" if rnd.random() < 0.05 else "r%dc%d" % (r, c)) for c in range(300)] for r in range(5)]
    return gen.csv_bytes(rows, header)


def _multi_member_gzip():
    """_multi_member_gzip is `cat a.gz b.gz`: header + rows in one member, more rows in the next."""
    a = gen.csv_bytes(list(gen.people_rows(40, seed=1)))
    b = gen.csv_bytes(list(gen.people_rows(40, seed=2, start_id=41)), header=None)
    return gzip.compress(a, mtime=0) + gzip.compress(b, mtime=0)


# name → (served file name, bytes, extra CLI args, reference reader kwargs)
CASES = {
    "quoted": ("quoted.csv",
               b'id,text,other\n1,"line one\nline two",x\n2,"a,b,c",y\n3,"say ""hi""",z\n'
               b'4,"",""\n5,"""",","\n6,"multi\n\nblank inside",w\n', ["--batch-size", "2"], {}),
    "crlf_bom": ("crlf.csv",
                 b'\xef\xbb\xbfid,name\r\n1,alpha\r\n2,"be\r\nta"\r\n3,gamma\r\n', [], {}),
    "empty_and_dup_headers": ("hdr.csv",
                              b'a,,a,b,,a\n1,2,3,4,5,6\n,,,,,\n7,,9,,,\n', [], {}),
    "utf8_emoji": ("utf8.csv",
                   "id,name,note\n1,Zoë,🎉🚀\n2,日本語,naïve café\n3,Ελληνικά,\"👍, fine\"\n"
                   "4,𝔘𝔫𝔦𝔠𝔬𝔡𝔢,\u00e9\u0301\n".encode(), [], {}),
    "wide_300": ("wide.csv", _wide(), [], {}),
    "no_final_newline": ("nofinal.csv", b"id,v\n1,a\n2,b\n3,\"c\"", [], {}),
    "blank_lines": ("blank.csv", b"id,v\n1,a\n\n2,b\n\n\n3,c\n", ["--batch-size", "1"], {}),
    "duplicate_rows": ("dups.csv", b"k,v\nx,1\nx,1\ny,2\nx,1\n", [], {}),
    "tsv": ("table.txt", b"id\tname\tnote\n1\talpha\ta,b\n2\tbeta\t\n3\tgamma\tsemi;colon\n",
            ["--format", "tsv"], {"delimiter": "\t"}),
    "no_header": ("nohdr.csv", b"1,alpha,x\n2,beta,y\n3,gamma,z\n", ["--no-header"], {"header": False}),
    "semicolon_delimiter": ("semi.csv", b"id;name\n1;\"a;b\"\n2;c,d\n", ["--delimiter", ";"],
                            {"delimiter": ";"}),
    "multi_member_gzip": ("multi.csv.gz", _multi_member_gzip(), ["--batch-size", "7"], {}),
    "gzip_no_extension": ("blob", gzip.compress(gen.csv_bytes(list(gen.people_rows(25))), mtime=0),
                          [], {}),
    "people_batches": ("people.csv", gen.csv_bytes(list(gen.people_rows(2500, seed=9))),
                       ["--batch-size", "300"], {}),
}


def _source(store, kind, fname, data):
    """_source stores the case and returns its SOURCE argument for the given transport."""
    path = store.put(fname, data)
    return store.url(fname) if kind == "http" else path


def _import_ok(ingest, source, dataset, *args):
    res = ingest.run("import", source, "--dataset", dataset, "--json", *args, timeout=180)
    assert res.code == 0, res
    return res, res.json()


@pytest.mark.parametrize("kind", ["http", "local"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_import_equals_reference(migrated, db, store, case, kind):
    fname, data, args, reader_kwargs = CASES[case]
    expected = refreader.read_records(data, **reader_kwargs)
    assert expected, "case %s has no rows" % case
    res, out = _import_ok(migrated, _source(store, kind, fname, data), "ds", *args)
    head = checks.ref_head(db, "ds")
    assert head and head == out["commit_id"], (head, out)
    checks.assert_matches_reference(db, head, expected)
    assert out["rows_imported"] == len(expected)
    distinct = len({refreader.canonical_json(r) for r in expected.values()})
    assert db.scalar("SELECT count(*) FROM dsa_core.rows") == distinct, \
        "rows is not content-addressed: identical rows must share one entry"


def test_json_summary_and_job_row(migrated, db, store):
    data = gen.csv_bytes(list(gen.people_rows(120, seed=3)))
    res, out = _import_ok(migrated, _source(store, "http", "p.csv", data), "summary",
                          "--message", "first load", "--batch-size", "50")
    for key in ("job_id", "status", "commit_id", "dataset_id", "ref", "rows_imported",
                "bytes_read", "tables", "rejects", "elapsed_s"):
        assert key in out, "--json lacks %s: %s" % (key, out)
    assert out["status"] == "completed" and out["ref"] == "main"
    assert UUID_RE.match(out["job_id"]) and res.job_id == out["job_id"], (res.job_id, out)
    assert out["dataset_id"] == checks.dataset_id(db, "summary")
    assert out["rows_imported"] == 120 and out["bytes_read"] == len(data)
    assert isinstance(out["elapsed_s"], (int, float)) and out["elapsed_s"] >= 0
    assert not out["rejects"], out["rejects"]
    tables = out["tables"]
    assert tables == 1 or (hasattr(tables, "__len__") and len(tables) == 1), tables
    assert "primary" in str(tables) or tables == 1
    job = checks.job(db, out["job_id"])
    assert job["run_type"] == "import" and job["status"] == "completed", job
    assert job["error_message"] in (None, ""), job
    summary = job["output_summary"]
    assert summary["commit_id"].strip() == out["commit_id"] and summary["rows"] == 120, summary
    prog = job["run_parameters"]["progress"]
    assert prog["rows_processed"] == 120 and prog["batches"] >= 3, prog
    for key in ("status", "percentage", "bytes_read", "bytes_total", "updated_at"):
        assert key in prog, "progress lacks %s: %s" % (key, prog)
    assert checks.commit(db, out["commit_id"])["message"] == "first load"


def test_second_import_is_child_commit(migrated, db, store):
    """Changed data gives a new commit whose parent is the first; the first stays intact."""
    v1 = list(gen.people_rows(200, seed=5))
    v2 = [list(r) for r in v1[:150]] + list(gen.people_rows(80, seed=6, start_id=1000))
    v2[10][5] = "changed"
    d1, d2 = gen.csv_bytes(v1), gen.csv_bytes(v2)
    _, out1 = _import_ok(migrated, _source(store, "http", "v1.csv", d1), "hist")
    _, out2 = _import_ok(migrated, _source(store, "http", "v2.csv", d2), "hist")
    assert out2["commit_id"] != out1["commit_id"]
    assert checks.ref_head(db, "hist") == out2["commit_id"]
    assert checks.commit(db, out2["commit_id"])["parent_commit_id"] == out1["commit_id"]
    checks.assert_matches_reference(db, out1["commit_id"], refreader.read_records(d1))
    checks.assert_matches_reference(db, out2["commit_id"], refreader.read_records(d2))
    assert out2["dataset_id"] == out1["dataset_id"]


def test_reimport_same_file_same_manifest(migrated, db, store):
    """Re-importing identical bytes yields the identical manifest and adds no rows."""
    data = gzip.compress(gen.csv_bytes(list(gen.people_rows(500, seed=8))), mtime=0)
    src = _source(store, "http", "same.csv.gz", data)
    _, out1 = _import_ok(migrated, src, "again", "--batch-size", "64")
    rows_before = db.scalar("SELECT count(*) FROM dsa_core.rows")
    _, out2 = _import_ok(migrated, src, "again", "--batch-size", "100")
    _, out3 = _import_ok(migrated, src, "other")
    m1 = checks.manifest(db, out1["commit_id"])
    assert checks.manifest(db, out2["commit_id"]) == m1
    assert checks.manifest(db, out3["commit_id"]) == m1
    assert db.scalar("SELECT count(*) FROM dsa_core.rows") == rows_before
    if out2["commit_id"] != out1["commit_id"]:
        assert checks.commit(db, out2["commit_id"])["parent_commit_id"] == out1["commit_id"]
    assert checks.ref_head(db, "again") == out2["commit_id"]
    assert out3["dataset_id"] != out1["dataset_id"]


def test_file_url_source(migrated, db, store):
    """A file:// URL is read like a path."""
    data = b"id,v\n1,a\n2,b\n"
    path = store.put("f.csv", data)
    _, out = _import_ok(migrated, "file://" + os.path.abspath(path), "fileurl")
    checks.assert_matches_reference(db, out["commit_id"], refreader.read_records(data))
