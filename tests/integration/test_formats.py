"""Every format a data team drops into a bucket imports to what an independent reader sees.

bz2/xz/zstd are made by the standard command-line tools; zips by Info-ZIP `zip` writing to a
pipe (members with data descriptors) and by Python's zipfile; tar.gz by Python's tarfile;
NDJSON is compared with Python's json module. Sniffing (delimiter, header, NDJSON), the
inferred schema, --encoding, --max-errors with rejects, and `scan` are here too. Workbooks
are in test_xlsx.py.
"""
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from harness import checks, gen, refreader

PEOPLE = gen.csv_bytes(list(gen.people_rows(1500, seed=11)))


def _tool(cmd, data):
    """_tool pipes data through a compressor and returns its output."""
    if not shutil.which(cmd[0]):
        pytest.skip("%s is not installed" % cmd[0])
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def _serve(store, name, data):
    """_serve stores data and returns its http:// URL."""
    store.put(name, data)
    return store.url(name)


def _import(ingest, source, dataset, *args, ok=True):
    res = ingest.run("import", source, "--dataset", dataset, "--json", *args, timeout=180)
    if ok:
        assert res.code == 0, res
    return res


@pytest.mark.parametrize("tool,ext", [(["bzip2", "-c"], "bz2"), (["xz", "-c"], "xz"),
                                      (["zstd", "-q", "-c"], "zst")])
@pytest.mark.parametrize("kind", ["http", "local"])
def test_filters_equal_reference(migrated, db, store, tool, ext, kind):
    data = _tool(tool, PEOPLE)
    path = store.put("people.csv." + ext, data)
    src = store.url("people.csv." + ext) if kind == "http" else path
    out = _import(migrated, src, "f").json()
    checks.assert_matches_reference(db, out["commit_id"], refreader.read_records(PEOPLE))


def test_filter_detected_by_magic_without_extension(migrated, db, store):
    data = _tool(["xz", "-c"], PEOPLE)
    out = _import(migrated, _serve(store, "blob", data), "m").json()
    checks.assert_matches_reference(db, out["commit_id"], refreader.read_records(PEOPLE))


def _members():
    """_members: three data files of different dialects, as a zip's members."""
    sales = gen.csv_bytes([[str(i), "item %d" % i, "%d.50" % i] for i in range(1, 301)],
                          header=["id", "item", "price"])
    people_tsv = gen.csv_bytes(list(gen.people_rows(200, seed=4)), delimiter="\t")
    events = b"".join(json.dumps({"id": i, "tags": ["a", i], "n": {"x": i / 4}}).encode() + b"\n"
                      for i in range(1, 151))
    return {"sales.csv": sales, "people.tsv": people_tsv, "events.ndjson": events}


def _expected_members(members):
    """_expected_members: the reference rows of every member, keyed by logical id."""
    exp = {}
    exp.update(refreader.read_records(members["sales.csv"], table="sales"))
    exp.update(refreader.read_records(members["people.tsv"], delimiter="\t", table="people"))
    exp.update(ndjson_records(members["events.ndjson"], table="events"))
    return exp


def ndjson_records(data, table="primary"):
    """ndjson_records: line n (1-based, blank lines counted) → the object, as json.loads reads it."""
    out = {}
    for n, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if line.strip():
            out["%s:%d" % (table, n)] = json.loads(line)
    return out


def test_zip_from_infozip_pipe(migrated, db, store, tmp_path):
    """`zip - files | cat`: Info-ZIP writes to a pipe, so every member has a data descriptor."""
    if not shutil.which("zip"):
        pytest.skip("zip is not installed")
    members = _members()
    for name, data in members.items():
        (tmp_path / name).write_bytes(data)
    z = subprocess.run(["zip", "-q", "-", *members], cwd=tmp_path, stdout=subprocess.PIPE,
                       check=True).stdout
    assert zipfile.ZipFile(io.BytesIO(z)).infolist()[0].flag_bits & 0x08, "no data descriptor"
    out = _import(migrated, _serve(store, "piped.zip", z), "z").json()
    checks.assert_matches_reference(db, out["commit_id"], _expected_members(members))
    assert out["tables"] == 3, out


def test_zip_from_python_with_junk(migrated, db, store):
    """Directories, __MACOSX/ forks and hidden files are passed over; a nested path keeps only
    its file name; a repeated name becomes name_2."""
    members = _members()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("export/", b"")
        zf.writestr("export/sales.csv", members["sales.csv"])
        zf.writestr("__MACOSX/export/._sales.csv", b"\x00\x05\x16\x07junk")
        zf.writestr("export/.DS_Store", b"\x00\x00\x00\x01Bud1")
        zf.writestr("people.tsv", members["people.tsv"])
        zf.writestr("events.ndjson", members["events.ndjson"], compress_type=zipfile.ZIP_STORED)
        zf.writestr("other/sales.csv", b"id,item,price\n9,x,1\n")
    path = store.put("bundle.zip", buf.getvalue())
    out = _import(migrated, path, "zp").json()
    exp = _expected_members(members)
    exp.update(refreader.read_records(b"id,item,price\n9,x,1\n", table="sales_2"))
    checks.assert_matches_reference(db, out["commit_id"], exp)


def test_tar_gz_of_csvs(migrated, db, store):
    members = _members()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo("data/" + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    out = _import(migrated, _serve(store, "d.tar.gz", buf.getvalue()),
                  "tg").json()
    checks.assert_matches_reference(db, out["commit_id"], _expected_members(members))


NDJSON = "\n".join([
    '{"id": 1, "name": "Zoë", "price": 1.0, "n": 10, "nested": {"b": [1, 2.5, {"z": null}], "a": true}}',
    '{"id": 2, "big": 123456789012345678901234567890, "tiny": 1e-7, "exp": 1E2, "neg0": -0}',
    '',
    '{"id": 3, "s": "tab\\tquote\\"slash\\\\ \\u00e9 \\ud83d\\ude00", "dup": 1, "dup": 2}',
    '{"id": 4, "empty": {}, "list": [], "f": 0.30000000000000004, "e": 12345678.9}',
]) + "\n"


@pytest.mark.parametrize("name,gz", [("events.ndjson", False), ("events.jsonl.gz", True)])
def test_ndjson_equal_json_module(migrated, db, store, name, gz):
    data = NDJSON.encode()
    out = _import(migrated, _serve(store, name, gen.gzip_bytes(data) if gz else data), "nd").json()
    checks.assert_matches_reference(db, out["commit_id"], ndjson_records(data))


def test_sniffing(migrated, db, store):
    """No --format, --delimiter or --header: semicolons, tabs, and a headerless numeric file."""
    semi = b"id;name;note\n1;a;x,y\n2;b;\"q;r\"\n3;c;z\n"
    tabs = b"id\tv\n1\ta\n2\tb\n"
    bare = b"1,2.5,2024-01-02\n2,3.5,2024-01-03\n3,4.5,2024-01-04\n"
    for name, data, kw in [("s.txt", semi, {"delimiter": ";"}), ("t.dat", tabs, {"delimiter": "\t"}),
                           ("b.csv", bare, {"header": False})]:
        out = _import(migrated, store.put(name, data), "sn_" + name).json()
        checks.assert_matches_reference(db, out["commit_id"], refreader.read_records(data, **kw))


def test_schema_types(migrated, db, store):
    data = (b"i,f,b,d,ts,t,z,e\n"
            b"1,1.5,true,2024-01-02,2024-01-02T03:04:05Z,x,007,\n"
            b"-2,2,false,2024-02-29,2024-01-02 03:04:05.123,y,010,\n"
            b"30,3e2,TRUE,2023-12-31,2024-01-02T03:04:05+01:00,1,020,\n")
    out = _import(migrated, store.put("types.csv", data), "sc").json()
    schema = db.scalar("SELECT schema_definition FROM dsa_core.commit_schemas WHERE commit_id = %s",
                       (out["commit_id"],))
    cols = {c["name"]: c for c in schema["tables"]["primary"]["columns"]}
    got = {k: v["type"] for k, v in cols.items()}
    assert got == {"i": "integer", "f": "float", "b": "boolean", "d": "date", "ts": "timestamp",
                   "t": "text", "z": "text", "e": "text"}, got
    assert cols["e"]["empties"] == 3 and schema["tables"]["primary"]["rows"] == 3, schema


@pytest.mark.parametrize("enc", ["latin-1", "windows-1252"])
def test_encoding(migrated, db, store, enc):
    text = "id,name,note\n1,Zoë,naïve café\n2,Müller,“quoted” – dash\n" if enc == "windows-1252" \
        else "id,name,note\n1,Zoë,naïve café\n2,Müller,£5 ±1\n"
    data = text.encode(enc)
    out = _import(migrated, store.put("enc.csv", data), "en", "--encoding", enc).json()
    checks.assert_matches_reference(db, out["commit_id"], refreader.read_records(text.encode()))
    bad = _import(migrated, store.put("enc2.csv", data), "en2", ok=False)
    assert bad.code == 1 and "invalid UTF-8" in bad.stderr, bad


RAGGED = b"id,v\n1,a\n2,b,extra\n3,c\n4\n5,\"e\"\n"


def test_ragged_without_max_errors_fails_cleanly(migrated, db, store):
    res = _import(migrated, store.put("r.csv", RAGGED), "rg", ok=False)
    assert res.code == 1, res
    assert "row 3" in res.stderr and "3 fields" in res.stderr, res.stderr
    checks.assert_no_trace_of_failed_job(db, "rg", checks.job(db, res.job_id))


def test_ragged_with_max_errors_lists_rejects(migrated, db, store):
    res = _import(migrated, store.put("r.csv", RAGGED), "rg", "--max-errors", "2", "--batch-size", "1")
    out = res.json()
    assert out["rows_imported"] == 3 and out["rejects"] == 2, out
    job = checks.job(db, out["job_id"])
    rejects = job["output_summary"]["rejects"]
    assert [(r["table"], r["row"]) for r in rejects] == [("primary", 3), ("primary", 5)], rejects
    assert rejects[0]["byte"] == RAGGED.index(b"2,b,extra") and rejects[0]["excerpt"] == "2,b,extra"
    assert "fields" in rejects[0]["reason"]
    exp = {"primary:2": {"id": "1", "v": "a"}, "primary:4": {"id": "3", "v": "c"},
           "primary:6": {"id": "5", "v": "e"}}
    checks.assert_matches_reference(db, out["commit_id"], exp)


def test_more_rejects_than_allowed_fails(migrated, db, store):
    res = _import(migrated, store.put("r.csv", RAGGED), "rg", "--max-errors", "1", ok=False)
    assert res.code == 1 and "row 5" in res.stderr, res
    checks.assert_no_trace_of_failed_job(db, "rg", checks.job(db, res.job_id))


def test_gzip_bomb_stopped(migrated, db, store):
    bomb = gen.gzip_bytes((b"0" * 16383 + b"\n") * (6 << 10), level=9)  # 96 MiB, 900:1
    res = _import(migrated, store.put("bomb.csv.gz", bomb), "bomb", ok=False)
    assert res.code == 1 and "IMPORT_MAX_COMPRESSION_RATIO" in res.stderr, res
    checks.assert_no_trace_of_failed_job(db, "bomb", checks.job(db, res.job_id))


def test_zip_bomb_stopped(migrated, db, store):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.csv", b"z\n" + (b"0" * 16383 + b"\n") * (6 << 10))
    res = _import(migrated, store.put("bomb.zip", buf.getvalue()), "zb", ok=False)
    assert res.code == 1 and "decompression bomb" in res.stderr, res
    checks.assert_no_trace_of_failed_job(db, "zb", checks.job(db, res.job_id))


def test_decompressed_size_limit(migrated, db, store):
    res = migrated.run("import", store.put("p.csv.gz", gen.gzip_bytes(PEOPLE)), "--dataset", "lim",
                       env={"IMPORT_MAX_DECOMPRESSED_BYTES": "50000"}, timeout=120)
    assert res.code == 1 and "IMPORT_MAX_DECOMPRESSED_BYTES" in res.stderr, res


@pytest.mark.parametrize("name,data,needle", [
    ("corrupt.zip", b"PK\x03\x04" + b"\x14\x00" + os.urandom(200), "zip"),
    ("cut.csv.bz2", None, "bz2"),
    ("garbage.csv.xz", b"\xfd7zXZ\x00" + b"\x00" * 64, "xz"),
])
def test_corrupt_archives(migrated, db, store, name, data, needle):
    if data is None:
        full = _tool(["bzip2", "-c"], PEOPLE)
        data = full[:len(full) // 2]
    res = _import(migrated, store.put(name, data), "bad", ok=False)
    assert res.code == 1 and needle in res.stderr.lower(), res
    checks.assert_no_trace_of_failed_job(db, "bad", checks.job(db, res.job_id))


def test_scan_reports_without_database(binary, store):
    """scan needs no database: it prints the tables, columns and types it found."""
    from harness.runner import Runner
    members = _members()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    runner = Runner(binary, env={"DATABASE_URL": "postgresql:///none?host=/nonexistent"})
    res = runner.run("scan", _serve(store, "b.zip", buf.getvalue()),
                     "--json", timeout=120)
    assert res.code == 0, res
    out = res.json()
    assert out["rows"] == 300 + 200 + 150 and out["rejects"] == 0, out
    t = out["tables"]
    assert set(t) == {"sales", "people", "events"}, t
    assert [(c["name"], c["type"]) for c in t["sales"]["columns"]] == [
        ("id", "integer"), ("item", "text"), ("price", "float")], t["sales"]
    text = runner.run("scan", store.put("p.csv", PEOPLE), timeout=60)
    assert text.code == 0 and "table primary: 1500 rows" in text.stdout, text
