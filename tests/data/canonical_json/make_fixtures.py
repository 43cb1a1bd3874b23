#!/usr/bin/python3
"""make_fixtures.py - writes the canonical-JSON and row-hash fixtures of tests/unit/test_row.c.

Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) is the
reference the C row stage must match byte for byte; xxhsum -H2 (Debian package
`xxhash`, 0.8.1) is the reference for XXH3-128, since the Python xxhash module is
not available here. Stdlib only. Run from anywhere: /usr/bin/python3 make_fixtures.py

cases.txt, one case per line (lines starting with '#' are comments):
    label TAB name_hex,value_hex;name_hex,value_hex;... TAB expected_json_hex
  hex is the UTF-8 bytes of each string (empty string -> empty hex); an empty
  column field means a row of 0 columns.
hashes.txt, one case per line:
    label TAB input_hex TAB expected_xxh3_128_hex
"""
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def canonical(names, values):
    """The reference: what the DSA platform's Python code stores for this row."""
    assert len(set(names)) == len(names), "column names must be unique"
    obj = dict(zip(names, values))
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hexs(s):
    return s.encode("utf-8").hex()


def fixed_cases():
    """Hand-picked cases: each escape, each UTF-8 width, each sort subtlety."""
    cases = [
        ("empty_object", [], []),
        ("one_column", ["id"], ["42"]),
        ("empty_value", ["a"], [""]),
        ("empty_key", [""], ["x"]),
        ("empty_key_and_value", [""], [""]),
        ("empty_key_sorts_first", ["b", "", "a"], ["2", "0", "1"]),
        ("quotes", ["q"], ['say "hi"']),
        ("only_quote", ['"'], ['"']),
        ("backslashes", ["path"], ["C:\\dir\\file", ]),
        ("backslash_quote_mix", ['k\\"'], ['\\"\\\\""']),
        ("named_escapes", ["c"], ["a\nb\rc\td\be\ff"]),
        ("all_controls_in_one", ["ctl"], ["".join(chr(c) for c in range(1, 0x20))]),
        ("del_kept", ["d"], ["a\x7fb"]),
        ("latin1_range", ["name"], ["é ß Ω"]),
        ("cjk", ["名前", "都市"], ["山田太郎", "東京"]),
        ("emoji_4byte", ["e"], ["😀🎉 ok 👍🏽"]),
        ("combining_marks", ["e\u0301"], ["e\u0301\u0327 n\u0303"]),
        ("line_separators", ["ls"], ["a\u2028b\u2029c"]),
        ("c1_controls_kept", ["c1"], ["\u0080\u0085\u009f"]),
        ("bom_and_nonchars", ["\ufeff"], ["\ufffd\uffff\ue000"]),
        ("sort_by_bytes", ["B", "a", "_", "ä", "Z", "aa"], ["1", "2", "3", "4", "5", "6"]),
        ("prefix_keys", ["abc", "a", "ab", "a\x01", "a b", "abcd"], ["3", "1", "2", "c", "s", "4"]),
        # Sort is by the raw bytes, not by their escaped form: "\n" < "\\" raw,
        # but the escaped \n ("\\n") would sort after "\\\\".
        ("sort_raw_not_escaped", ["\\", "\n", '"', "\t", "\x1f", " "], ["bs", "nl", "q", "tab", "us", "sp"]),
        ("sort_supplementary", ["\U0001F600", "\uffff", "\ue000", "\u07ff", "\x7f"], ["5", "4", "3", "2", "1"]),
        ("escape_at_edges", ["k"], ["\nmiddle\n"]),
        ("only_escapes", ["k"], ['\\\\""\n\n\x01\x01']),
        ("utf8_beside_escape", ["k"], ["é\n€\t😀\x1f"]),
        ("long_safe_run", ["long"], ["abcdefghijklmnopqrstuvwxyz0123456789" * 30]),
        ("long_run_then_escape", ["long"], ["x" * 257 + '"' + "y" * 31 + "\\"]),
        ("number_like_strings", ["n", "t", "z"], ["3.14", "true", "null"]),
        ("spaces_kept", [" k ", "k"], ["  v  ", "\u00a0"]),
    ]
    for c in range(1, 0x20):
        cases.append(("control_%02x" % c, ["c%02x" % c], ["<" + chr(c) + ">"]))
    cases.append(("control_in_key", ["\x01k\x1f"], ["v"]))
    wide = ["col_%02d" % i for i in range(40)]
    order = list(range(40))
    random.Random(7).shuffle(order)
    cases.append(("wide_40", [wide[i] for i in order], ["v%d\t%s" % (i, "é" * (i % 3)) for i in order]))
    cases.append(("wide_40_empty_values", ["c%d" % i for i in range(40)], [""] * 40))
    return cases


POOL = (
    ["a", "b", "Z", "_", " ", "0", "9", "~", '"', "\\", "/", "\x7f"]
    + [chr(c) for c in range(1, 0x20)]
    + ["é", "ß", "Ω", "ä", "\u0301", "\u2028", "\u2029", "名", "東", "\ufeff", "\uffff"]
    + ["😀", "👍", "\U0010FFFF", "\U00010000"]
)


def random_cases(count):
    """Seeded random rows: many shapes of names and values the fixed cases miss."""
    rng = random.Random(20240611)
    cases = []
    for k in range(count):
        ncol = rng.choice([1, 2, 3, 5, 8, 13, 40])
        names = []  # a list, not a set: set order would vary with PYTHONHASHSEED
        while len(names) < ncol:
            name = "".join(rng.choice(POOL) for _ in range(rng.randint(0, 6)))
            if name not in names:
                names.append(name)
        values = ["".join(rng.choice(POOL) for _ in range(rng.choice([0, 1, 3, 9, 17, 64])))
                  for _ in names]
        cases.append(("random_%03d" % k, names, values))
    return cases


def write_cases(path, cases):
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("# Generated by make_fixtures.py; do not edit. Expected JSON is Python %s's\n"
                "# json.dumps(row, sort_keys=True, separators=(\",\", \":\"), ensure_ascii=False).\n"
                "# label TAB name_hex,value_hex;... TAB expected_json_hex (hex of UTF-8 bytes)\n"
                % sys.version.split()[0])
        for label, names, values in cases:
            # Python sorts str by code point; that must equal UTF-8 byte order.
            assert sorted(names) == sorted(names, key=lambda s: s.encode("utf-8"))
            cols = ";".join("%s,%s" % (hexs(n), hexs(v)) for n, v in zip(names, values))
            f.write("%s\t%s\t%s\n" % (label, cols, hexs(canonical(names, values))))


def xxh3_128(data):
    """XXH3-128 via `xxhsum -H2`: prints the canonical (big-endian) hash, i.e. high64
    then low64 - the bytes of XXH128_canonicalFromHash and the same hex as Python's
    xxhash.xxh3_128_hexdigest."""
    out = subprocess.run(["xxhsum", "-H2"], input=data, stdout=subprocess.PIPE, check=True).stdout
    digest = out.split()[0].decode("ascii")
    assert len(digest) == 32 and all(c in "0123456789abcdef" for c in digest), out
    return digest


def write_hashes(path, cases):
    if not shutil.which("xxhsum"):
        sys.exit("make_fixtures.py: xxhsum not found (apt-get install -y xxhash)")
    version = subprocess.run(["xxhsum", "-V"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT).stdout.decode().splitlines()[0]
    picks = {"empty_object", "one_column", "cjk", "emoji_4byte", "all_controls_in_one",
             "sort_by_bytes", "long_safe_run", "wide_40", "random_007"}
    # Raw inputs sized for each of XXH3's code paths: 0, 1-3, 4-8, 9-16, 17-128,
    # 129-240 and >240 bytes.
    inputs = [("raw_len_0", ""), ("raw_len_1", "{"), ("raw_len_3", "abc"),
              ("raw_len_8", '{"a":""}'), ("raw_len_16", '{"id":"1234567"}'),
              ("raw_len_100", "x" * 100), ("raw_len_200", "é" * 100), ("raw_len_1000", "z" * 1000)]
    for label, names, values in cases:
        if label in picks:
            inputs.append(("row_" + label, canonical(names, values)))
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("# Generated by make_fixtures.py; do not edit. Expected hashes are the output of\n"
                "# `xxhsum -H2` (%s, Debian package xxhash 0.8.1): the\n"
                "# canonical big-endian XXH3-128, high64 then low64, as XXH128_canonicalFromHash\n"
                "# and Python's xxhash.xxh3_128_hexdigest give it.\n"
                "# label TAB input_hex (UTF-8 bytes) TAB expected_hex\n" % version.strip())
        for label, text in inputs:
            data = text.encode("utf-8")
            f.write("%s\t%s\t%s\n" % (label, data.hex(), xxh3_128(data)))


def main():
    cases = fixed_cases() + random_cases(120)
    write_cases(os.path.join(HERE, "cases.txt"), cases)
    write_hashes(os.path.join(HERE, "hashes.txt"), cases)


if __name__ == "__main__":
    main()
