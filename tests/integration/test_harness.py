"""Self-tests of the harness: the oracles and servers must be right before the binary's
results can be judged by them. None of these need the dsa-ingest binary."""
import gzip
import http.client
import socket
import time

import pytest

from harness import gen, refreader
from harness.httpserver import parse_range


def _get(port, path, headers=None, method="GET", conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    return r, r.read(), c


# -- reference reader --------------------------------------------------------------

def test_header_normalisation():
    assert refreader.normalise_header(["a", "", "a", "b", "a", ""]) == \
        ["a", "column_2", "a_2", "b", "a_3", "column_6"]


def test_reference_reader_rules():
    data = b'\xef\xbb\xbfid,,id\r\n1,"x,\r\ny",""""\r\n\r\n2,,\xf0\x9f\x8e\x89'
    rows = refreader.read_records(data)
    assert rows == {"primary:2": {"id": "1", "column_2": "x,\r\ny", "id_2": '"'},
                    "primary:3": {"id": "2", "column_2": "", "id_2": "🎉"}}
    assert refreader.read_records(b"a\tb\n1\t2\n", delimiter="\t", header=False) == \
        {"primary:1": {"column_1": "a", "column_2": "b"}, "primary:2": {"column_1": "1", "column_2": "2"}}
    multi = gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"3,4\n")
    assert refreader.read_records(multi) == {"primary:2": {"a": "1", "b": "2"},
                                             "primary:3": {"a": "3", "b": "4"}}


@pytest.mark.parametrize("data,row", [
    (b"a,b\n1,2\n3,4,5\n", 3), (b"a,b\n1,2\n3\n", 3), (b'a,b\n1,2\n"3,4\n', 3),
    (b"a,b\n1,2\n\xff,4\n", 3), (b"a,b\n1,2\n3,\x004\n", 3)])
def test_reference_reader_rejects(data, row):
    with pytest.raises(refreader.ReferenceError_) as e:
        refreader.read_records(data)
    assert e.value.row == row


def test_canonical_json_and_hash():
    assert refreader.canonical_json({"b": "é", "a": "1"}) == '{"a":"1","b":"é"}'
    if not refreader.have_xxh3():
        pytest.skip("libxxhash not available")
    # Known XXH3-128 vectors (as printed by xxh128sum).
    assert refreader.xxh3_128_hex("") == "99aa06d3014798d86001c324468d497f"
    assert refreader.xxh3_128_hex("abc") == "06b05ab6733a618578af5f94892f3950"


def test_generator_round_trips():
    rows = list(gen.people_rows(50))
    parsed = refreader.read_records(gen.csv_bytes(rows))
    assert len(parsed) == 50
    assert parsed["primary:2"] == dict(zip(gen.COLUMNS, rows[0]))


# -- HTTP server ---------------------------------------------------------------------

def test_http_ranges_etag_and_log(http, store):
    store.put("f.bin", bytes(range(256)) * 4)
    path = "/" + store.name("f.bin")
    r, body, c = _get(http.port, path, method="HEAD")
    assert r.status == 200 and r.getheader("Content-Length") == "1024" and body == b""
    etag = r.getheader("ETag")
    assert etag.startswith('"') and etag.endswith('"')
    r, body, c = _get(http.port, path, {"Range": "bytes=1000-"}, conn=c)  # keep-alive reuse
    assert r.status == 206 and body == (bytes(range(256)) * 4)[1000:]
    assert r.getheader("Content-Range") == "bytes 1000-1023/1024"
    r, body, c = _get(http.port, path, {"Range": "bytes=10-19", "If-Match": etag}, conn=c)
    assert r.status == 206 and body == bytes(range(10, 20))
    r, body, c = _get(http.port, path, {"If-Match": '"nope"'}, conn=c)
    assert r.status == 412
    r, body, c = _get(http.port, path, {"Range": "bytes=5000-"}, conn=c)
    assert r.status == 416 and r.getheader("Content-Range") == "bytes */1024"
    r, body, c = _get(http.port, "/" + store.name("missing"), conn=c)
    assert r.status == 404
    assert store.range_starts("f.bin") == [1000, 10, 0, 5000]
    assert parse_range("bytes=-10", 100) == (90, 99)


def test_http_forced_status(http, store):
    store.put("g", b"x")
    http.force_status(store.name("g"), [503])
    assert _get(http.port, "/" + store.name("g"))[0].status == 503
    assert _get(http.port, "/" + store.name("g"))[0].status == 200


# -- fault proxy -------------------------------------------------------------------

def _fetch_through(proxy, path):
    """_fetch_through reads a whole response through the proxy; returns (bytes, complete)."""
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    try:
        body = r.read()
        return body, True
    except http.client.IncompleteRead as e:
        return e.partial, False


def test_proxy_cut_every(proxy, store):
    data = b"z" * 300000
    store.put("big", data)
    proxy.configure(cut_every=100000)
    body, complete = _fetch_through(proxy, "/" + store.name("big"))
    assert not complete and 0 < len(body) < 100000
    c = proxy.counters()
    assert c["cuts"] == 1 and c["connections"] == 1 and c["bytes_forwarded"] == 100000


def test_proxy_stall_and_throttle(proxy, store):
    store.put("s", b"y" * 40000)
    proxy.configure(stall_after=10000, stall_seconds=1.0)
    t0 = time.monotonic()
    body, complete = _fetch_through(proxy, "/" + store.name("s"))
    assert complete and len(body) == 40000 and time.monotonic() - t0 >= 0.9
    assert proxy.counters()["stalls"] == 1
    proxy.configure(stall_after=None, throttle=100000)
    t0 = time.monotonic()
    body, complete = _fetch_through(proxy, "/" + store.name("s"))
    assert complete and time.monotonic() - t0 >= 0.35


def test_proxy_down(proxy, store):
    store.put("d", b"q")
    proxy.configure(down=True)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, socket.error)):
        _fetch_through(proxy, "/" + store.name("d"))
    assert proxy.counters()["refused"] >= 1
    proxy.configure(down=False)
    assert _fetch_through(proxy, "/" + store.name("d")) == (b"q", True)


# -- PostgreSQL --------------------------------------------------------------------

def test_pg_fresh_databases(pg, db):
    assert db.scalar("SELECT 1") == 1
    assert db.scalar("SELECT current_database()") == db.name
    other = pg.create_database("t")
    try:
        assert other.name != db.name and other.scalar("SELECT 2") == 2
    finally:
        other.close()
    proc = pg.psql(db.name, "-tAc", "SELECT 40+2")
    assert proc.returncode == 0 and proc.stdout.strip() == b"42"


def test_proxy_cut_at_total_then_down(proxy, store):
    store.put("t", b"w" * 50000)
    proxy.configure(cut_at_total=70000, down_after_cuts=1)
    assert _fetch_through(proxy, "/" + store.name("t")) == (b"w" * 50000, True)
    body, complete = _fetch_through(proxy, "/" + store.name("t"))
    assert not complete and proxy.counters()["cuts"] == 1 and proxy.down
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, socket.error)):
        _fetch_through(proxy, "/" + store.name("t"))
