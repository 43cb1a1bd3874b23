"""Workbooks import to what openpyxl reads back, sheet by sheet, type by type.

The workbooks in tests/data/xlsx/ were written by real producers (openpyxl, XlsxWriter, a
hand-made one with inline and rich strings) by make_workbooks.py, which also wrote, next to
each, what openpyxl reads in it under DESIGN §2's rules (numbers as JSON numbers, dates as ISO
8601, empty cells null, rows without values skipped). A fresh workbook is also written here by
openpyxl and by XlsxWriter and read back with openpyxl. Bad workbooks fail with a clear error
and leave nothing published.
"""
import datetime as dt
import io
import json
import os
import zipfile

import pytest

from harness import checks

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "xlsx")
BOOKS = sorted(f[:-5] for f in os.listdir(DATA) if f.endswith(".xlsx"))


def _expected(book):
    """_expected: logical id → row object, from make_workbooks.py's openpyxl reading."""
    with open(os.path.join(DATA, book + ".json"), encoding="utf-8") as f:
        sheets = json.load(f)["sheets"]
    return {"%s:%d" % (s["name"], n): json.loads(text) for s in sheets for n, text in s["rows"]}


def _import(ingest, source, dataset, *args, ok=True):
    res = ingest.run("import", source, "--dataset", dataset, "--json", *args, timeout=180)
    if ok:
        assert res.code == 0, res
    return res


@pytest.mark.parametrize("kind", ["http", "local"])
@pytest.mark.parametrize("book", BOOKS)
def test_workbook_equals_openpyxl(migrated, db, store, book, kind):
    with open(os.path.join(DATA, book + ".xlsx"), "rb") as f:
        data = f.read()
    path = store.put(book + ".xlsx", data)
    out = _import(migrated, store.url(book + ".xlsx") if kind == "http" else path, "x").json()
    expected = _expected(book)
    checks.assert_matches_reference(db, out["commit_id"], expected)
    assert out["tables"] == len({k.rsplit(":", 1)[0] for k in expected}) or not expected


def _fresh_rows():
    return [["id", "name", "price", "when", "day", "ok", "note"]] + [
        [i, "item %d" % i, i * 1.25, dt.datetime(2024, 1, 1 + i % 28, i % 24, 30, 15),
         dt.date(2023, 12, 1 + i % 28), i % 3 == 0, None if i % 5 else "five"]
        for i in range(1, 400)]


def _openpyxl_book():
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sales 2024"
    for r in _fresh_rows():
        ws.append(r)
    for row in ws.iter_rows(min_row=2, min_col=5, max_col=5):
        row[0].number_format = "yyyy-mm-dd"
    other = wb.create_sheet("Ünïcode")
    other.append(["k", "v"])
    other.append(["a", 1])
    other.append([None, None])
    other.append(["b", 2.5])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _xlsxwriter_book():
    import xlsxwriter
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet("Sales 2024")
    dtf = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    df = wb.add_format({"num_format": "yyyy-mm-dd"})
    for r, row in enumerate(_fresh_rows()):
        for c, v in enumerate(row):
            if isinstance(v, dt.datetime):
                ws.write_datetime(r, c, v, dtf)
            elif isinstance(v, dt.date):
                ws.write_datetime(r, c, dt.datetime(v.year, v.month, v.day), df)
            elif v is not None:
                ws.write(r, c, v)
    other = wb.add_worksheet("Ünïcode")
    other.write_row(0, 0, ["k", "v"])
    other.write_row(1, 0, ["a", 1])
    other.write_row(3, 0, ["b", 2.5])
    wb.close()
    return buf.getvalue()


def _openpyxl_reference(data):
    """_openpyxl_reference reads a workbook back with openpyxl (read-only, values only)."""
    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    out = {}
    for ws in wb.worksheets:
        header = None
        for n, row in enumerate(ws.iter_rows(values_only=True), 1):
            if all(v is None for v in row):
                continue
            if header is None:
                header = [str(v) for v in row]
                continue
            obj = {}
            for name, v in zip(header, row):
                if isinstance(v, dt.datetime):
                    v = v.date().isoformat() if (v.hour, v.minute, v.second) == (0, 0, 0) \
                        and name == "day" else v.isoformat()
                obj[name] = v
            out["%s:%d" % (ws.title, n)] = obj
    return out


@pytest.mark.parametrize("producer", ["openpyxl", "xlsxwriter"])
def test_fresh_workbook(migrated, db, store, producer):
    pytest.importorskip(producer)
    data = _openpyxl_book() if producer == "openpyxl" else _xlsxwriter_book()
    out = _import(migrated, store.put("fresh.xlsx", data), "fresh").json()
    checks.assert_matches_reference(db, out["commit_id"], _openpyxl_reference(data))
    schema = db.scalar("SELECT schema_definition FROM dsa_core.commit_schemas WHERE commit_id = %s",
                       (out["commit_id"],))
    types = {c["name"]: c["type"] for c in schema["tables"]["Sales 2024"]["columns"]}
    assert types["id"] == "integer" and types["price"] == "float" and types["ok"] == "boolean", types
    assert types["when"] == "timestamp" and types["day"] == "date", types


def _zip(parts):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            zf.writestr(name, text)
    return buf.getvalue()


_WB = ('<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
       '<sheets>%s</sheets></workbook>')
_RELS = ('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
_SHEET = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
          '<sheetData>%s</sheetData></worksheet>')
_SHEETS1 = '<sheet name="S" sheetId="1" r:id="rId1"/>'


def _book(sheet_xml, sheets=_SHEETS1):
    return _zip({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": _WB % sheets,
                 "xl/_rels/workbook.xml.rels": _RELS, "xl/worksheets/sheet1.xml": sheet_xml})


GOOD_ROWS = '<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row>' \
            '<row r="2"><c r="A2"><v>1</v></c></row>'


@pytest.mark.parametrize("name,data,needle", [
    ("sheetless.xlsx", _book(_SHEET % GOOD_ROWS, sheets=""), "no sheets"),
    ("malformed.xlsx", _book(_SHEET % (GOOD_ROWS + "<row r='3'><c></row>")), "xml"),
    ("truncated.xlsx", None, ""),
    ("laughs.xlsx", _book('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                          '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                          + _SHEET % GOOD_ROWS.replace(">1<", ">&lol2;<")), "entit"),
    ("deep.xlsx", _book(_SHEET % ("<x>" * 400 + "</x>" * 400)), "deeper"),
])
def test_bad_workbooks(migrated, db, store, name, data, needle):
    if data is None:
        with open(os.path.join(DATA, BOOKS[0] + ".xlsx"), "rb") as f:
            full = f.read()
        data = full[:len(full) * 2 // 3]
    res = _import(migrated, store.put(name, data), "bad", "--format", "xlsx", ok=False)
    assert res.code == 1, res
    assert needle in res.stderr.lower(), res.stderr
    checks.assert_no_trace_of_failed_job(db, "bad", checks.job(db, res.job_id))
