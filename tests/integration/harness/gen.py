"""Deterministic data generators shared by the tests and the benchmark.

Why generated, not checked in: the interesting files are large (resume, benchmark) or
binary (gzip members), and a fixed seed makes every run see the same bytes.
"""
import csv
import gzip
import io
import os
import random

COLUMNS = ["id", "name", "email", "amount", "created_at", "note"]
_FIRST = ["Ada", "Linus", "Grace", "Ken", "Barbara", "Dennis", "Frances", "Edsger",
          "Zoë", "José", "Łukasz", "Søren", "Mårten", "Chloé", "Nadia", "Wei"]
_LAST = ["Lovelace", "Torvalds", "Hopper", "Thompson", "Liskov", "Ritchie", "Allen",
         "Dijkstra", "Müller", "O'Brien", "García", "Nakamura"]
_NOTES = ["", "ok", "call back, after 5pm", 'said "hello"', "multi\nline note",
          "tab\there", "emoji 🎉 party", "semi;colon", "trailing space ", "a,b,c"]


def people_rows(n, seed=42, start_id=1):
    """people_rows yields n rows of COLUMNS; some notes need quoting (commas, quotes, newlines)."""
    rnd = random.Random(seed)
    for i in range(start_id, start_id + n):
        first, last = rnd.choice(_FIRST), rnd.choice(_LAST)
        yield [str(i), "%s %s" % (first, last),
               "%s.%s%d@example.com" % (first.lower(), last.lower(), i % 997),
               "%d.%02d" % (rnd.randrange(0, 100000), rnd.randrange(100)),
               "2024-%02d-%02dT%02d:%02d:%02dZ" % (rnd.randrange(1, 13), rnd.randrange(1, 29),
                                                  rnd.randrange(24), rnd.randrange(60),
                                                  rnd.randrange(60)),
               rnd.choice(_NOTES)]


def csv_bytes(rows, header=COLUMNS, delimiter=",", lineterminator="\n"):
    """csv_bytes renders rows (and a header unless None) as CSV text in UTF-8."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator)
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def gzip_bytes(data, level=6):
    """gzip_bytes compresses data as one gzip member with a fixed mtime (reproducible bytes)."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def write_people_csv(path, n, seed=42, compress=False):
    """write_people_csv streams n generated rows to path (gzip if compress); returns bytes written."""
    opener = (lambda p: gzip.GzipFile(p, "wb", compresslevel=6, mtime=0)) if compress else \
        (lambda p: open(p, "wb"))
    with opener(path) as raw:
        f = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        batch = []
        for row in people_rows(n, seed):
            batch.append(row)
            if len(batch) == 10000:
                w.writerows(batch)
                batch.clear()
        w.writerows(batch)
        f.flush()
        f.detach()
    return os.path.getsize(path)


def write_big_csv(path, target_bytes, seed=7):
    """write_big_csv writes a plain CSV of about target_bytes quickly (for memory tests).

    Rows are formatted directly (no csv module) from a small pool of quoted notes, so a
    gigabyte takes seconds, not minutes; returns (bytes, data rows)."""
    rnd = random.Random(seed)
    notes = ['"call back, after 5pm"', '"said ""hi"""', "plain", "", '"x,y"']
    names = ["%s %s" % (rnd.choice(_FIRST), rnd.choice(_LAST)) for _ in range(64)]
    written = 0
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        while written < target_bytes:
            lines = []
            for k in range(rows, rows + 10000):
                lines.append("%d,%s,u%d@example.com,%d.%02d,2024-01-%02dT00:00:00Z,%s\n" % (
                    k + 1, names[k % 64], k, k % 99991, k % 100, k % 28 + 1, notes[k % 5]))
            block = "".join(lines)
            f.write(block)
            written += len(block.encode("utf-8"))
            rows += 10000
    return written, rows


WIDE_COLUMNS = COLUMNS + ["payload"]
_PAYLOAD_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789      .,;\"'-éü"


def wide_rows(n, seed=42, width=400):
    """wide_rows yields people_rows plus a `payload` column of about width random characters.

    Why: resume tests need many MiB of decompressed text (gzip access points are ~1 MiB of
    output apart) without millions of rows, and random text keeps gzip from shrinking it to
    nothing. Some payloads contain commas and quotes, so they are quoted in CSV."""
    rnd = random.Random(seed * 7919 + 1)
    for row in people_rows(n, seed):
        k = rnd.randrange(width // 2, width * 3 // 2 + 1)
        yield row + ["".join(rnd.choices(_PAYLOAD_CHARS, k=k))]


def gzip_members(data, parts, seed=42, level=6):
    """gzip_members cuts data at parts-1 seeded random byte positions (mid-record, even
    mid-character) and concatenates one gzip member per piece: a multi-member gzip file
    (what `cat a.gz b.gz` or pigz-style writers produce)."""
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(data)), parts - 1))
    bounds = [0] + cuts + [len(data)]
    return b"".join(gzip.compress(data[a:b], compresslevel=level, mtime=0)
                    for a, b in zip(bounds, bounds[1:]))
