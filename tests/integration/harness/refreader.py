"""The reference reader: what the database must hold after an import, computed without
any of the C code.

Python's csv module does the framing (RFC 4180 quoting, quoted newlines, CRLF) and this
module applies DESIGN section 2 on top: header normalisation (empty name → column_N,
repeated name → name_2, name_3 …), values as strings exactly as read, blank lines skipped
and not counted, the header record numbered 1 (`primary:2` is the first data record), and
the canonical JSON text. The row hash is XXH3-128 computed by the system's libxxhash
through ctypes (the reference implementation, not the project's code); when that library
is missing, xxh3_128_hex returns None and callers fall back to structural checks.
"""
import csv
import ctypes
import ctypes.util
import gzip
import io
import json
import sys

csv.field_size_limit(min(sys.maxsize, 2 ** 31 - 1))

BOM = b"\xef\xbb\xbf"


class ReferenceError_(ValueError):
    """ReferenceError_ is raised for input the reference reader itself rejects (bad data)."""

    def __init__(self, row, reason):
        super().__init__("row %d: %s" % (row, reason))
        self.row = row
        self.reason = reason


def canonical_json(obj):
    """canonical_json is DESIGN's canonical text: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalise_header(names):
    """normalise_header applies DESIGN §2: empty → column_N (1-based), repeats → _2, _3 …"""
    named = [n if n != "" else "column_%d" % (i + 1) for i, n in enumerate(names)]
    seen = {}
    out = []
    for n in named:
        count = seen.get(n, 0) + 1
        seen[n] = count
        out.append(n if count == 1 else "%s_%d" % (n, count))
    return out


def maybe_gunzip(data):
    """maybe_gunzip decompresses (multi-member) gzip by magic bytes, like --compression auto."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    return data


def read_records(data, delimiter=",", header=True, table="primary"):
    """read_records maps logical_row_id → row dict for CSV/TSV bytes (gzip is unwrapped).

    Raises ReferenceError_ for what the import must reject: invalid UTF-8, NUL bytes,
    bad quoting, a record whose field count differs from the header's."""
    text = _decode(maybe_gunzip(data))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows = {}
    columns = None
    number = 0
    try:
        for record in reader:
            if record == []:
                continue  # blank line: skipped, not counted
            number += 1
            if columns is None:
                if header:
                    columns = normalise_header(record)
                    continue
                columns = ["column_%d" % (i + 1) for i in range(len(record))]
            if len(record) != len(columns):
                raise ReferenceError_(number, "record has %d fields, expected %d"
                                      % (len(record), len(columns)))
            rows["%s:%d" % (table, number)] = dict(zip(columns, record))
    except csv.Error as e:
        raise ReferenceError_(number + 1, "csv: %s" % e)
    return rows


def _decode(raw):
    """_decode strips one UTF-8 BOM and decodes strictly; NUL bytes are bad input."""
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    if b"\x00" in raw:
        row = raw[:raw.index(b"\x00")].count(b"\n") + 1
        raise ReferenceError_(row, "NUL byte")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        row = raw[:e.start].count(b"\n") + 1
        raise ReferenceError_(row, "invalid UTF-8")


# -- XXH3-128 through the system libxxhash --------------------------------------------

class _XXH128(ctypes.Structure):
    _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]


def _load_xxhash():
    """_load_xxhash finds libxxhash (Debian's libxxhash0) or returns None."""
    for name in ("libxxhash.so.0", ctypes.util.find_library("xxhash") or ""):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.XXH3_128bits.restype = _XXH128
            lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
            return lib
        except (OSError, AttributeError):
            continue
    return None


_XXHASH = _load_xxhash()


def have_xxh3():
    return _XXHASH is not None


def xxh3_128_hex(text):
    """xxh3_128_hex is the lowercase hex of XXH3-128 (canonical big-endian: high then low)."""
    if _XXHASH is None:
        return None
    data = text.encode("utf-8")
    h = _XXHASH.XXH3_128bits(data, len(data))
    return "%016x%016x" % (h.high64, h.low64)


def row_hash(row):
    """row_hash is the expected dsa_core.rows.row_hash of a row dict (None without libxxhash)."""
    return xxh3_128_hex(canonical_json(row))


def manifest(rows):
    """manifest maps logical_row_id → expected row_hash for a read_records() result."""
    return {lid: row_hash(row) for lid, row in rows.items()}
