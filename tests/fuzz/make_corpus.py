#!/usr/bin/env python3
"""make_corpus.py - writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Small real inputs, each exercising something the target should reach quickly:
quoting and CRLF for CSV, escapes and errors for NDJSON, multi-member and
block-flushed gzip, stored/deflated/data-descriptor zips, the workbooks of
tests/data/xlsx/ and the XML parts inside them. Deterministic (fixed gzip
mtime and zip dates), so re-running it changes nothing unless this file does.
The fuzz runs of scripts/fuzz.sh work on a copy: the corpus here never grows.

    python3 tests/fuzz/make_corpus.py
"""
import gzip
import io
import os
import shutil
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
XLSX_DIR = os.path.join(HERE, "..", "data", "xlsx")
DATE = (2024, 1, 2, 3, 4, 6)


def write(target, name, data):
    """Writes one seed file under corpus/<target>/."""
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- CSV: three option bytes (delimiter, flags, limits), then the text ------------------
HEADER, TSV, SMALL_FIELD, RAW, SMALL_COLUMNS, RESUME = 1, 2, 4, 8, 16, 32


def csv_seeds():
    """CSV/TSV snippets: quotes, CRLF, BOM, UTF-8, and each kind of error."""
    def opt(delim=0, flags=HEADER, limit=0):
        return bytes([delim, flags, limit])

    seeds = {
        "quoted_crlf": opt() + b'id,name,note\r\n1,Ann,"say ""hi"""\r\n2,Bob,"multi\r\nline"\r\n',
        "tsv": opt(flags=HEADER | TSV) + b"a\tb\tc\n1\t\"x\ty\"\t3\n4\t5\t6\n",
        "semicolon": opt(ord(";")) + b"a;b\n1;2\n\n3;4",
        "bom_utf8": opt() + "\ufeffnom,valeur\nkanji \u6f22\u5b57,\u00e9t\u00e9\n".encode(),
        "bare_quote": opt(flags=0) + b'a"b,c\n"x",y\n"",""""',
        "errors": opt() + b"a,b\n1\n2,\xff\xfe\n3,x\x00y\n4,5\n6,7,8\n",
        "small_field": opt(flags=HEADER | SMALL_FIELD, limit=8) + b"abc,def\nabcdefghijk,1\n1,2\n",
        "resume": opt(flags=RESUME, limit=2) + b"1,2,3\n4,5,6\n7,8\n",
        "raw_latin1": opt(flags=HEADER | RAW) + b"a,b\n\xe9t\xe9,\xfc\n",
        "unterminated": opt() + b'a,b\n"open,x\ny,z\n',
        "small_columns": opt(flags=HEADER | SMALL_COLUMNS, limit=64) + b"a,b\n1,2\n1,2,3\n",
        "dup_header": opt() + b"a,a,,a_2,A\n1,2,3,4,5\n",
        "cr_only": opt(ord("|")) + b"a|b\r1|2\r\r3|4\r",
        "split_utf8": opt() + "x\n".encode() + ("\U0001F600" * 40 + "\n").encode() * 3,
        "quote_delim": opt(ord('"')) + b"a,b\n",
    }
    for name, data in seeds.items():
        write("fuzz_csv", name, data)


# ---- NDJSON: the text itself -------------------------------------------------------------
def ndjson_seeds():
    """NDJSON lines: nesting, escapes, numbers Python keeps apart, and errors."""
    seeds = {
        "objects": b'{"id":1,"name":"Ann","tags":["a","b"],"o":{"z":1,"a":[1.0,2.5e-3]}}\n'
                   b'{"name":"Bob","id":2,"extra":null}\n{}\n',
        "escapes": '{"s":"tab\\t nl\\n \\u00e9 \\ud83d\\ude00 \\"q\\"","\u00fc":"\u6f22"}\r\n'.encode(),
        "numbers": b'{"a":1,"b":1.0,"c":1e400,"d":-0,"e":12345678901234567890123,"f":0.1}\n'
                   b'{"a":1E+2,"b":-1.5e-7,"c":100000000000000000000.0}\n',
        "dup_keys": b'{"a":1,"a":2,"b":{"x":1,"x":[3]}}\n',
        "blank_lines": b'\n  \n{"a":1}\n\r\n{"a":2}',
        "bom": b'\xef\xbb\xbf{"a":"bom"}\n',
        "errors": b'{"a":1}\n{"a":\n[1,2]\n"str"\n{"a":"\\u0000"}\n{"a":"\\ud800"}\n'
                  b'{"a":01}\n{"a":1.}\n{"a":NaN}\n{"a":"\xff"}\n{"a":1} x\n{"b":2}\n',
        "deep": b'{"a":' + b"[" * 40 + b"1" + b"]" * 40 + b"}\n",
        "many_keys": ("{" + ",".join('"k%d":%d' % (i, i) for i in range(40)) + "}\n").encode(),
    }
    for name, data in seeds.items():
        write("fuzz_ndjson", name, data)


# ---- gzip: the compressed object ---------------------------------------------------------
def flushed_gzip(data, step):
    """One gzip member with a full flush every `step` bytes: a deflate block
    boundary there, so the decoder keeps access points mid-member."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = b""
    for i in range(0, len(data), step):
        out += c.compress(data[i:i + step]) + c.flush(zlib.Z_FULL_FLUSH)
    return out + c.flush()


def gzip_seeds():
    """A gzip of a CSV, several members, padding, headers, a zlib stream, and a
    long flushed member (points past 1 MiB, so resume runs mid-member)."""
    text = b"id,name\n" + b"".join(b"%d,name %d\n" % (i, i * 7) for i in range(200))
    gz = gzip.compress(text, mtime=0)
    hdr = bytes([0x1F, 0x8B, 8, 0x1C, 0, 0, 0, 0, 0, 3])  # FEXTRA | FNAME | FCOMMENT
    body = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = body.compress(b"a,b\n1,2\n") + body.flush()
    trailer = zlib.crc32(b"a,b\n1,2\n").to_bytes(4, "little") + (8).to_bytes(4, "little")
    seeds = {
        "csv.gz": gz,
        "members.gz": gzip.compress(b"a,b\n1,2\n", mtime=0) + gzip.compress(b"3,4\n", mtime=0)
                      + gzip.compress(b"", mtime=0),
        "padded.gz": gzip.compress(b"x,y\n", mtime=0) + b"\0" * 32,
        "header_fields.gz": hdr + b"\x04\x00ab12" + b"name.csv\0" + b"comment\0" + raw + trailer,
        "zlib.z": zlib.compress(b"not gzip but zlib\n"),
        "truncated.gz": gz[: len(gz) // 2],
        "bad_crc.gz": gz[:-8] + b"\0\0\0\0" + gz[-4:],
        "garbage_after.gz": gzip.compress(b"1\n", mtime=0) + b"junk",
        "stored.gz": gzip.compress(b"stored block\n" * 4, compresslevel=0, mtime=0),
        "flushed_1m.gz": flushed_gzip(b"abcdefgh,12345678\n" * 70000, 65536),
    }
    for name, data in seeds.items():
        write("fuzz_gzip", name, data)


# ---- zip: the archive ----------------------------------------------------------------------
class Unseekable(io.RawIOBase):
    """A write-only stream zipfile cannot seek in: members get data descriptors."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def make_zip(members, compression=zipfile.ZIP_DEFLATED, stream=False, comment=b""):
    """A zip of (name, bytes[, compression]) members, dated DATE."""
    out = Unseekable() if stream else io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for m in members:
            info = zipfile.ZipInfo(m[0], DATE)
            info.compress_type = m[2] if len(m) > 2 else compression
            if stream:
                with z.open(info, "w") as f:
                    f.write(m[1])
            else:
                z.writestr(info, m[1])
        z.comment = comment
    return bytes(out.buf) if stream else out.getvalue()


def zip_seeds():
    """Stored, deflated and streamed (data descriptor) zips; skipped members;
    bzip2 (not LZMA: the targets pass LZMA members over, see fuzz_common.h); zip64;
    an empty zip."""
    csv = b"id,name\n1,Ann\n2,Bob\n"
    z64 = io.BytesIO()
    with zipfile.ZipFile(z64, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(zipfile.ZipInfo("big.csv", DATE), "w", force_zip64=True) as f:
            f.write(csv)
    seeds = {
        "stored.zip": make_zip([("a.csv", csv), ("dir/", b""), ("dir/b.tsv", b"x\ty\n")],
                               zipfile.ZIP_STORED),
        "deflated.zip": make_zip([("data/sales 2024.csv", csv * 20), ("n.ndjson", b'{"a":1}\n')]),
        "descriptor.zip": make_zip([("s1.csv", csv), ("s2.csv", csv * 3)], stream=True),
        "skipped.zip": make_zip([("__MACOSX/._a.csv", b"fork"), (".DS_Store", b"x"),
                                 ("in/._b.csv", b"y"), ("real.csv", csv)]),
        "methods.zip": make_zip([("bz.csv", csv, zipfile.ZIP_BZIP2),
                                 ("st.csv", csv, zipfile.ZIP_STORED)]),
        "zip64.zip": z64.getvalue(),
        "comment.zip": make_zip([("c.csv", csv)], comment=b"a comment"),
        "empty.zip": make_zip([]),
    }
    for name, data in seeds.items():
        write("fuzz_zip", name, data)


# ---- XLSX: the workbooks, and their XML parts behind a mode byte ------------------------------
P_SHEET, P_SST, P_STYLES, P_WORKBOOK, P_RELS = 0, 1, 2, 3, 4
M_HEADER, M_SMALL, M_RESUME, M_1904, M_BARE = 8, 16, 32, 64, 128
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RNS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def xlsx_seeds():
    """The workbooks of tests/data/xlsx/ as they are, one rewritten with data
    descriptors; their sheets, shared strings and styles as XML seeds."""
    books = sorted(f for f in os.listdir(XLSX_DIR) if f.endswith(".xlsx"))
    for b in books:
        shutil.copyfile(os.path.join(XLSX_DIR, b), os.path.join(OUT, "fuzz_xlsx", b))
    with zipfile.ZipFile(os.path.join(XLSX_DIR, "handmade.xlsx")) as z:
        parts = [(i.filename, z.read(i)) for i in z.infolist()]
    write("fuzz_xlsx", "handmade_descriptor.xlsx", make_zip(parts, stream=True))

    n = 0
    for b in books:
        with zipfile.ZipFile(os.path.join(XLSX_DIR, b)) as z:
            for name in z.namelist():
                data = z.read(name)
                if name.startswith("xl/worksheets/") and len(data) < 4000:
                    mode = [M_HEADER, 0, M_HEADER | M_RESUME, M_HEADER | M_1904][n % 4]
                    write("fuzz_xlsx_xml", "sheet_%s_%s" % (b[:-5], os.path.basename(name)),
                          bytes([P_SHEET | mode]) + data)
                    n += 1
                elif name in ("xl/sharedStrings.xml", "xl/styles.xml") and len(data) < 4000:
                    part = P_SST if "shared" in name else P_STYLES
                    write("fuzz_xlsx_xml", "%s_%s" % (b[:-5], os.path.basename(name)),
                          bytes([part | M_HEADER]) + data)
    small = ('<worksheet xmlns="%s"><sheetData><row r="1"><c t="inlineStr"><is><t>a</t></is></c>'
             '<c t="inlineStr"><is><t>b</t></is></c></row><row r="2"><c t="s"><v>1</v></c>'
             '<c s="1"><v>45000.5</v></c></row></sheetData></worksheet>' % NS).encode()
    write("fuzz_xlsx_xml", "sheet_small_limits", bytes([P_SHEET | M_HEADER | M_SMALL]) + small)
    write("fuzz_xlsx_xml", "sheet_bare", bytes([P_SHEET | M_HEADER | M_BARE]) + small)
    workbook = ('<workbook xmlns="%s" xmlns:r="%s"><workbookPr date1904="true"/><sheets>'
                '<sheet name="One" sheetId="1" r:id="rId1"/><sheet name="one" sheetId="2" '
                'r:id="rId1"/></sheets></workbook>' % (NS, RNS)).encode()
    write("fuzz_xlsx_xml", "workbook", bytes([P_WORKBOOK | M_HEADER]) + workbook)
    rels = ('<Relationships xmlns="%s"><Relationship Id="rId1" Type="%s/worksheet" '
            'Target="/xl/worksheets/../worksheets/sheet1.xml"/><Relationship Id="rId9" '
            'Type="%s/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
            % (PKG, RNS, RNS)).encode()
    write("fuzz_xlsx_xml", "rels", bytes([P_RELS | M_HEADER]) + rels)


def main():
    """Rewrites every corpus directory from scratch."""
    for t in ("fuzz_csv", "fuzz_ndjson", "fuzz_gzip", "fuzz_zip", "fuzz_xlsx", "fuzz_xlsx_xml"):
        shutil.rmtree(os.path.join(OUT, t), ignore_errors=True)
        os.makedirs(os.path.join(OUT, t))
    csv_seeds()
    ndjson_seeds()
    gzip_seeds()
    zip_seeds()
    xlsx_seeds()


if __name__ == "__main__":
    main()
