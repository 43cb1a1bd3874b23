#!/usr/bin/python3
"""make_workbooks.py - the XLSX test workbooks and what the XLSX parse stage
must make of them (tests/unit/test_xlsx.c).

Writes, next to this script:
  *.xlsx       workbooks from XlsxWriter, openpyxl and by hand (zipfile)
  *.json       for each workbook, what openpyxl reads in it, put through the
               rules of DESIGN §2 (and of src/parse/xlsx_sheet.c):
               {"sheets": [{"name", "columns", "rows": [[n, canonical JSON]]}]}
  floats.txt   number literals and the JSON Python writes for what openpyxl
               reads from them (int or float, then json.dumps)

The rules applied on top of openpyxl's values:
  - the header is the first row with a value; rows without any value are no
    records; columns run from A to max(<dimension> last column, header width)
  - header names are the cells' JSON-ish text (numbers as JSON, true/false,
    ISO dates), empty -> column_N, repeats -> _2, _3
  - a number in a date style is ISO 8601 from the raw serial: date-only formats "YYYY-MM-DD", time-only "HH:MM:SS[.ffffff]",
    both "YYYY-MM-DDTHH:MM:SS[.ffffff]", the time rounded to the millisecond as
    openpyxl does; outside years 1..9999 it stays a number
  - t="d" cells keep their text as written; _xHHHH_ escapes in strings are
    decoded (not _x0000_ nor surrogates)

Run with Debian's python3-openpyxl and python3-xlsxwriter:
  /usr/bin/python3 tests/data/xlsx/make_workbooks.py
"""
import datetime as dt
import json
import math
import os
import random
import re
import struct
import zipfile

import openpyxl
import openpyxl.reader.excel as ox_excel
import openpyxl.worksheet._reader as ox_reader
import xlsxwriter
from openpyxl.cell.text import Text
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- reading: openpyxl, with the raw values kept -------------------------------

class Serial:
    """A number in a date style, before openpyxl turns it into a datetime."""

    def __init__(self, value):
        self.value = value


class IsoText(str):
    """The text of a t="d" cell, as written."""


def raw_string_table(src):
    """openpyxl's read_string_table without its replace('x005F_', '')."""
    out = []
    tag = '{%s}si' % SHEET_MAIN_NS
    for _, node in iterparse(src):
        if node.tag == tag:
            out.append(Text.from_tree(node).content)
            node.clear()
    return out


ox_reader.from_excel = lambda value, epoch=None, timedelta=False: Serial(value)
ox_reader.from_ISO8601 = IsoText
ox_excel.read_string_table = raw_string_table

DATE, TIME = 1, 2


def format_class(code):
    """Which parts of a date a number format shows (as xlsx_styles.c reads it)."""
    date = time = month = False
    i = 0
    code = code or ""
    while i < len(code) and code[i] != ';':
        c = code[i]
        if c == '"':
            j = code.find('"', i + 1)
            if j < 0:
                break
            i = j
        elif c in '\\_*':
            i += 1
        elif c == '[':
            j = code.find(']', i)
            if j < 0:
                break
            inner = code[i + 1:j].lower()
            if inner and inner[0] in 'hms' and inner == inner[0] * len(inner):
                time = True
            i = j
        elif code[i:i + 5].upper() == 'AM/PM':
            i += 4
        elif code[i:i + 3].upper() == 'A/P':
            i += 2
        else:
            lc = c.lower()
            date |= lc in 'dy'
            time |= lc in 'hs'
            month |= lc == 'm'
        i += 1
    if month and not date and not time:
        date = True
    return (DATE if date else 0) | (TIME if time else 0)


def serial_text(value, cls, date1904):
    """The ISO text of an Excel serial, or None when there is no such date.
    The time is rounded to the millisecond exactly as openpyxl's from_excel
    does it (divmod, then the same float operations)."""
    day, fraction = divmod(value, 1)
    ms = round(fraction * 86400 * 1000)
    if ms >= 86400 * 1000:
        ms -= 86400 * 1000
        day += 1
    if not date1904 and 0 < value < 60:
        day += 1
    try:
        base = dt.datetime(1899, 12, 30) + dt.timedelta(days=int(day) + (1462 if date1904 else 0))
        when = base + dt.timedelta(milliseconds=ms)
    except OverflowError:
        return None
    if cls == DATE:
        return when.date().isoformat()
    if cls == TIME:
        return when.time().isoformat()
    return when.isoformat()


ESCAPE = re.compile(r'_x([0-9A-Fa-f]{4})_')


def unescape(s):
    def one(m):
        cp = int(m.group(1), 16)
        return m.group(0) if cp == 0 or 0xD800 <= cp <= 0xDFFF else chr(cp)
    return ESCAPE.sub(one, s)


def cell_json(cell, date1904):
    """The JSON value of one cell (a Python value json.dumps writes)."""
    v = cell.value
    if isinstance(v, Serial):
        text = serial_text(v.value, format_class(cell.number_format), date1904)
        return v.value if text is None else text
    if isinstance(v, IsoText):
        return str(v)
    if isinstance(v, str):
        return unescape(v)
    return v


def header_text(v):
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return json.dumps(v)


def normalize(names):
    """DESIGN §2: empty -> column_N, repeats get _2, _3 (as columns.c does)."""
    names = [n if n else "column_%d" % (i + 1) for i, n in enumerate(names)]
    taken, seen, nxt, out = set(names), set(), {}, []
    for n in names:
        if n not in seen:
            seen.add(n)
            out.append(n)
            continue
        k = nxt.get(n, 2)
        while "%s_%d" % (n, k) in taken:
            k += 1
        nxt[n] = k + 1
        u = "%s_%d" % (n, k)
        taken.add(u)
        seen.add(u)
        out.append(u)
    return out


def col_number(letters):
    n = 0
    for c in letters.upper():
        n = n * 26 + ord(c) - 64
    return n


def dimension_cols(archive, part):
    m = re.search(rb'<(?:\w+:)?dimension ref="([^"]+)"', archive.read(part))
    if not m:
        return 0
    last = m.group(1).decode().split(':')[-1]
    return col_number(re.match(r'[A-Za-z]+', last).group(0))


def expected(path):
    wb = openpyxl.load_workbook(path, data_only=True)
    ro = openpyxl.load_workbook(path, read_only=True)
    date1904 = wb.epoch == openpyxl.utils.datetime.MAC_EPOCH
    sheets = []
    with zipfile.ZipFile(path) as z:
        for ws in wb.worksheets:
            dim = dimension_cols(z, ro[ws.title]._worksheet_path)
            sheets.append(sheet_expected(ws, dim, date1904))
    return {"sheets": sheets}


def sheet_expected(ws, dim, date1904):
    rows = {}
    for (r, c), cell in ws._cells.items():
        if cell.value is not None:
            rows.setdefault(r, {})[c] = cell_json(cell, date1904)
    columns, out = [], []
    for n in sorted(rows):
        cells = rows[n]
        if not columns:
            width = max(max(cells), dim)
            columns = normalize([header_text(cells.get(i + 1)) for i in range(width)])
            continue
        assert max(cells) <= len(columns), (ws.title, n)
        obj = {columns[i]: cells.get(i + 1) for i in range(len(columns))}
        out.append([n, json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)])
    return {"name": ws.title, "columns": columns, "rows": out}


def write_expected(name):
    path = os.path.join(HERE, name + ".xlsx")
    with open(os.path.join(HERE, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(expected(path), f, ensure_ascii=False, indent=1)
        f.write("\n")


# ---- XlsxWriter: shared strings, formats, formulas, sparse rows ------------------

def xlsxwriter_book(name, date_1904=False, constant_memory=False):
    wb = xlsxwriter.Workbook(os.path.join(HERE, name + ".xlsx"),
                             {'date_1904': date_1904, 'constant_memory': constant_memory})
    fmt = {k: wb.add_format({'num_format': v}) for k, v in {
        'date': 'yyyy-mm-dd', 'dt': 'yyyy-mm-dd hh:mm:ss.000', 'time': 'hh:mm:ss',
        'custom': 'dd/mm/yyyy hh:mm', 'elapsed': '[h]:mm:ss', 'b14': 14, 'b22': 22,
        'money': '#,##0.00 "EUR"', 'red': '[Red]0.00', 'pct': '0.00%'}.items()}
    data = wb.add_worksheet("Data")
    head = ["id", "name", "amount", "flag", "when", "note", "", "id"]
    data.write_row(0, 0, head)
    rows = [
        [1, "alpha", 0.1, True, dt.date(2024, 1, 2), "plain"],
        [2, "beta", 1 / 3, False, dt.datetime(2024, 2, 29, 13, 45, 30, 123456), None],
        [3, "γάμμα", -2.5, None, dt.datetime(1900, 1, 1), "ünïcödé ✓"],
        [4, "", 1e-7, True, dt.datetime(1900, 2, 28, 6), " lead and trail "],
        [5, "big", 1.5e16, False, dt.datetime(1900, 3, 1), "tab\there"],
        [6, "ints", 9007199254740993, True, dt.datetime(9999, 12, 31, 23, 59, 59), "x"],
        [7, "neg", -123456789, None, None, "multi\nline"],
        [8, "tiny", 5e-324, False, dt.datetime(1970, 1, 1, 0, 0, 0, 1), "ctl\x01\x1f"],
        [9, "huge", 1.7976931348623157e308, True, dt.datetime(2000, 1, 1, 12), "cr\r\nlf"],
        [10, "esc", 12345678901234567890, False, dt.date(1904, 1, 1), "_x000D_ literal"],
    ]
    for i, row in enumerate(rows, start=1):
        for c, v in enumerate(row):
            if v is None:
                continue
            if c == 4:
                data.write_datetime(i, c, v, fmt['dt'] if isinstance(v, dt.datetime) else fmt['date'])
            elif c == 2 and isinstance(v, float) and abs(v) > 1e300:
                data.write_formula(i, c, "=1.7976931348623157E+308", None, v)
            else:
                data.write(i, c, v)
    # a gap of 10 rows, then a row with formats and formulas
    r = len(rows) + 11
    data.write_number(r, 0, 20)
    data.write_datetime(r, 4, dt.datetime(2023, 7, 4, 8, 30), fmt['custom'])
    data.write_formula(r, 2, "=A22*2", None, 40)
    data.write_formula(r, 5, '="x"&"y"', None, "xy")
    data.write_formula(r, 3, "=TRUE()", None, True)
    data.write_formula(r, 1, "=1/0", None, "#DIV/0!")
    data.write_number(r, 7, 0.25, fmt['elapsed'])
    r += 1
    data.write_number(r, 0, 21)
    data.write_number(r, 2, 45000.5, fmt['b22'])
    data.write_number(r, 4, 45000, fmt['b14'])
    data.write_number(r, 5, 0.75, fmt['time'])
    data.write_number(r, 7, 3000000, fmt['date'])  # no such date: stays a number
    r += 1
    data.write_number(r, 0, 22)
    data.write_number(r, 2, 1234.5, fmt['money'])
    data.write_number(r, 4, 59, fmt['date'])
    data.write_number(r, 5, 60, fmt['date'])
    data.write_number(r, 7, -0.125, fmt['red'])
    r += 1
    data.write_blank(r, 2, None, fmt['pct'])  # a styled blank row: not a record
    r += 1
    data.write_number(r, 0, 23)
    data.write_number(r, 1, 61, fmt['date'])
    data.write_number(r, 4, 0.5, fmt['dt'])

    uni = wb.add_worksheet("Ünïcödé シート")
    uni.write_row(0, 0, ["名前", "値", "ε"])
    uni.write_row(1, 0, ["日本語のテキスト", 42, "😀 emoji"])
    uni.write_row(2, 0, ["Ελληνικά", -0.0, "עברית"])
    uni.write_rich_string(3, 0, "rich ", wb.add_format({'bold': True}), "bold", " tail")
    uni.write(3, 1, 7)

    wide = wb.add_worksheet("Wide")
    wide.write_row(2, 2, ["c", "d", "e"])   # the table starts at C3
    wide.write_row(3, 2, [1, 2, 3])
    wide.write_row(4, 2, [4, None, 6])
    wide.write_blank(5, 9, None, fmt['pct'])  # widens the dimension to J

    wb.add_worksheet("Empty")
    only = wb.add_worksheet("Header only")
    only.write_row(0, 0, [1, 2.5, True, "x"])
    wb.close()
    write_expected(name)


def date1904_book(name):
    wb = xlsxwriter.Workbook(os.path.join(HERE, name + ".xlsx"), {'date_1904': True})
    f_date = wb.add_format({'num_format': 'yyyy-mm-dd'})
    f_dt = wb.add_format({'num_format': 'yyyy-mm-dd hh:mm:ss'})
    ws = wb.add_worksheet("Mac")
    ws.write_row(0, 0, ["when", "stamp", "n"])
    for i, d in enumerate([dt.date(1904, 1, 1), dt.date(1904, 1, 2), dt.date(2024, 6, 30)]):
        ws.write_datetime(i + 1, 0, d, f_date)
        ws.write_datetime(i + 1, 1, dt.datetime(2001, 2, 3, 4, 5, 6) + dt.timedelta(days=i), f_dt)
        ws.write_number(i + 1, 2, i)
    ws.write_number(4, 0, 10, f_date)
    ws.write_number(4, 2, 0)
    wb.close()
    write_expected(name)


# ---- openpyxl: inline strings, ISO dates ----------------------------------------

def openpyxl_book(name, iso_dates=False):
    wb = openpyxl.Workbook()
    wb.iso_dates = iso_dates
    ws = wb.active
    ws.title = "Inline"
    ws.append(["k", "text", "num", "when", "ok"])
    ws.append([1, "inline string", 3.25, dt.datetime(2021, 5, 6, 7, 8, 9), True])
    ws.append([2, "  spaced  ", -7, dt.date(2020, 2, 29), False])
    ws.append([3, None, 1e100, dt.time(12, 30, 15), None])
    ws.append([4, "x" * 300, 2 ** 70, dt.datetime(2021, 5, 6, 7, 8, 9, 500000), True])
    ws["D3"].number_format = "yyyy-mm-dd"
    ws["D4"].number_format = "hh:mm:ss"
    second = wb.create_sheet("Sparse")
    second["A1"] = "a"
    second["B1"] = "b"
    second["A3"] = 1
    second["B15"] = "far"
    wb.save(os.path.join(HERE, name + ".xlsx"))
    write_expected(name)


# ---- by hand: what the writers above never produce -------------------------------

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
RNS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
PKG = "http://schemas.openxmlformats.org/package/2006"
OFF = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
CT_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml"

HAND_STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet {NS}>
<numFmts count="9">
<numFmt numFmtId="164" formatCode="dd/mm/yyyy\\ hh:mm"/>
<numFmt numFmtId="165" formatCode="[h]:mm:ss"/>
<numFmt numFmtId="166" formatCode="0.00&quot; days&quot;"/>
<numFmt numFmtId="167" formatCode="[Red]0.00"/>
<numFmt numFmtId="168" formatCode="\\d0"/>
<numFmt numFmtId="169" formatCode="yyyy-mm-dd;@"/>
<numFmt numFmtId="170" formatCode="[$-409]mmm-yy"/>
<numFmt numFmtId="171" formatCode="mm:ss.0"/>
<numFmt numFmtId="172" formatCode="h:mm AM/PM"/>
</numFmts>
<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>
<fills count="1"><fill><patternFill patternType="none"/></fill></fills>
<borders count="1"><border/></borders>
<cellStyleXfs count="1"><xf numFmtId="14"/></cellStyleXfs>
<cellXfs count="13">
<xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="166"/>
<xf numFmtId="167"/><xf numFmtId="168"/><xf numFmtId="169"/><xf numFmtId="170"/>
<xf numFmtId="171"/><xf numFmtId="172"/><xf numFmtId="14"/><xf numFmtId="22"/>
<xf numFmtId="20"/>
</cellXfs>
<dxfs count="1"><dxf><numFmt numFmtId="173" formatCode="yyyy"/></dxf></dxfs>
</styleSheet>"""

HAND_SST = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst {NS} count="9" uniqueCount="9">
<si><t>id</t></si>
<si><r><t>ri</t></r><r><rPr><b/></rPr><t xml:space="preserve">ch </t></r><r><t>text</t></r></si>
<si><t>漢字</t><rPh sb="0" eb="2"><t>かんじ</t></rPh><phoneticPr fontId="1"/></si>
<si><t>line_x000D_
break</t></si>
<si><t>_x005F_x000D_ stays</t></si>
<si><t/></si>
<si><t xml:space="preserve">  padded  </t></si>
<si><t>a &amp; b &lt;c&gt; &#x263A;</t></si>
<si><t>value</t></si>
</sst>"""

HAND_SHEET1 = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet {NS} {RNS}>
<dimension ref="A1:F12"/>
<sheetViews><sheetView workbookViewId="0"/></sheetViews>
<sheetData>
<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>8</v></c><c r="C1" t="inlineStr"><is><r><t>in</t></r><r><t>line</t></r></is></c><c r="E1" t="str"><v>id</v></c></row>
<row><c t="s"><v>1</v></c><c t="s"><v>2</v></c><c t="inlineStr"><is><t>inline _x0009_ tab</t><rPh sb="0" eb="1"><t>skip</t></rPh></is></c><c/><c t="n"><v>+5</v></c><c><v>007</v></c></row>
<row r="4"><c r="A4" t="s"><v>3</v></c><c r="B4" t="s"><v>4</v></c><c r="C4" t="s"><v>5</v></c><c r="D4" t="s"><v>6</v></c><c r="E4" t="s"><v>7</v></c></row>
<row r="5"><c r="A5"><v>0.30000000000000004</v></c><c r="B5"><v>3.3333333333333335</v></c><c r="C5"><v>1.7976931348623157E+308</v></c><c r="D5"><v>4.9406564584124654E-324</v></c><c r="E5"><v>-0</v></c><c r="F5"><v>-0.0</v></c></row>
<row r="6"><c r="A6"><v>1e22</v></c><c r="B6"><v>1E16</v></c><c r="C6"><v>123456789012345678901234567890</v></c><c r="D6"><v> 12 </v></c><c r="E6"><v>0.000123</v></c><c r="F6"><v>1.0E-5</v></c></row>
<row r="7"><c r="A7" s="1"><v>45000.75</v></c><c r="B7" s="2"><v>0.5208333333333334</v></c><c r="C7" s="3"><v>2.5</v></c><c r="D7" s="4"><v>-3</v></c><c r="E7" s="5"><v>9</v></c><c r="F7" s="6"><v>45000</v></c></row>
<row r="8"><c r="A8" s="7"><v>45000</v></c><c r="B8" s="8"><v>0.0006944444444444445</v></c><c r="C8" s="9"><v>0.75</v></c><c r="D8" s="10"><v>1</v></c><c r="E8" s="11"><v>0.999999999</v></c><c r="F8" s="12"><v>0.3333333333333333</v></c></row>
<row r="9"><c r="A9" s="1"/><c r="B9" s="2"><v></v></c><c r="C9" t="s"/></row>
<row r="10" spans="1:6"><c r="A10" t="e"><v>#N/A</v></c><c r="B10" t="d"><v>2024-02-29T12:34:56</v></c><c r="C10" t="b"><v>0</v></c><c r="D10" t="b"><v>1</v></c><c r="E10"><f>SUM(A1:A2)</f><v>3</v></c><c r="F10" t="str"><f>"a"</f><v></v></c></row>
<row r="12"><c r="F12" t="inlineStr"><is><t></t></is></c></row>
</sheetData>
<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>
</worksheet>"""

HAND_SHEET2 = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<x:dimension ref="A1:E3"/>
<x:sheetData>
<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>p</x:t></x:is></x:c><x:c r="B1" t="inlineStr"><x:is><x:t>q</x:t></x:is></x:c><x:c r="C1" t="inlineStr"><x:is><x:t>p</x:t></x:is></x:c></x:row>
<x:row r="2"><x:c r="A2"><x:v>1</x:v></x:c><x:c r="E2"><x:v>2</x:v></x:c></x:row>
<x:row r="3"><x:c r="B3" t="b"><x:v>1</x:v></x:c></x:row>
</x:sheetData>
</x:worksheet>"""


def hand_book(name):
    files = {
        "[Content_Types].xml": f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="{PKG}/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="{CT_MAIN}.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT_MAIN}.worksheet+xml"/>
<Override PartName="/xl/worksheets/other.xml" ContentType="{CT_MAIN}.worksheet+xml"/>
<Override PartName="/xl/styles.xml" ContentType="{CT_MAIN}.styles+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="{CT_MAIN}.sharedStrings+xml"/>
</Types>""",
        "_rels/.rels": f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{PKG}/relationships">
<Relationship Id="rId1" Type="{OFF}/officeDocument" Target="xl/workbook.xml"/>
</Relationships>""",
        "xl/workbook.xml": f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook {NS} {RNS}>
<workbookPr/>
<sheets>
<sheet name="Hand made" sheetId="1" r:id="rId7"/>
<sheet name="Prefixed" sheetId="2" r:id="rId2"/>
</sheets>
</workbook>""",
        "xl/_rels/workbook.xml.rels": f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{PKG}/relationships">
<Relationship Id="rId7" Type="{OFF}/worksheet" Target="/xl/worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="{OFF}/worksheet" Target="./worksheets/../worksheets/other.xml"/>
<Relationship Id="rId3" Type="{OFF}/styles" Target="styles.xml"/>
<Relationship Id="rId4" Type="{OFF}/sharedStrings" Target="sharedStrings.xml"/>
<Relationship Id="rId5" Type="{OFF}/hyperlink" Target="https://example.com/" TargetMode="External"/>
</Relationships>""",
        "xl/styles.xml": HAND_STYLES,
        "xl/sharedStrings.xml": HAND_SST,
        "xl/worksheets/sheet1.xml": HAND_SHEET1,
        "xl/worksheets/other.xml": HAND_SHEET2,
    }
    path = os.path.join(HERE, name + ".xlsx")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in files.items():
            z.writestr(k, v)
    write_expected(name)


# ---- number literals --------------------------------------------------------------

def literal_json(lit):
    """What openpyxl reads from <v>lit</v>, as json.dumps writes it."""
    v = float(lit) if any(c in lit for c in ".eE") else int(lit)
    return json.dumps(v)


def float_literals():
    rnd = random.Random(1729)
    out = ["0", "-0", "+7", "007", "0.0", "-0.0", "1.0", "2.50", ".5", "5.", "1e5", "1E+05",
           "1e-05", "1.5e16", "1e16", "9999999999999998", "1234567890123456.0", "0.0001",
           "0.00001", "123456789012345678901234567890", "1e308", "1e-320", "5e-324",
           "2.2250738585072014e-308", "2.225073858507201e-308", "0.1", "0.30000000000000004",
           "1e-400", "-1e-400", "1.7976931348623157e308", "4.35", "100", "1e0", "  3.5 ",
           "1.00000000000000000000000001", "0.000000000000000000000000000000000012345"]
    for n in range(-1074, 1024):  # powers of two: the rounding interval is lopsided
        out.append(repr(2.0 ** n))
    for _ in range(250):
        kind = rnd.randrange(4)
        if kind == 0:
            d = struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0]
        elif kind == 1:
            d = rnd.uniform(-1e6, 1e6)
        elif kind == 2:
            d = rnd.random() * 10 ** rnd.randrange(-30, 30)
        else:
            d = round(rnd.uniform(-1000, 1000), rnd.randrange(0, 8))
        if not math.isfinite(d):
            continue
        for f in ("%.17g", "%.16G", "%.15g", "%r", "%.12e"):
            lit = repr(d) if f == "%r" else f % d
            out.append(lit)
    with open(os.path.join(HERE, "floats.txt"), "w") as f:
        f.write("# literal<TAB>json.dumps of what openpyxl reads; made by make_workbooks.py\n")
        for lit in out:
            f.write("%s\t%s\n" % (lit, literal_json(lit.strip())))


def main():
    xlsxwriter_book("mixed")
    xlsxwriter_book("inline_xw", constant_memory=True)
    date1904_book("date1904")
    openpyxl_book("openpyxl")
    openpyxl_book("isodates", iso_dates=True)
    hand_book("handmade")
    float_literals()


if __name__ == "__main__":
    main()
