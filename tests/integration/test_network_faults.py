"""Network faults (DESIGN §5): a cut or stalled connection is resumed from the current
offset with a ranged GET, and the result is the same as on a clean network. The fault
proxy's counters prove the faults happened; the server's log proves the resumption was
ranged and mid-object. A server that stays down ends the job with exit 3, quickly, and
the job can be resumed when the server is back.
"""
import time

import pytest

from harness import checks, gen, refreader
from harness.runner import scale, timeout_factor

FAST_RETRIES = {"IMPORT_MAX_RETRIES": "50", "IMPORT_RETRY_BACKOFF_MS": "50"}


def _people(store, name, n, compress=False, seed=21):
    """_people stores n generated rows as name and returns (bytes, expected rows)."""
    data = gen.csv_bytes(list(gen.people_rows(n, seed=seed)))
    expected = refreader.read_records(data)
    if compress:
        data = gen.gzip_bytes(data)
    store.put(name, data)
    return data, expected


def _ranged_resumes(store, name):
    """_ranged_resumes lists GETs that started past byte 0 (a resumption or a later chunk)."""
    return [s for s in store.range_starts(name) if s > 0]


def _import(ingest, url, dataset, env, timeout=240):
    res = ingest.run("import", url, "--dataset", dataset, "--json", env=env, timeout=timeout)
    assert res.code == 0, res
    return res.json()


@pytest.mark.parametrize("compress", [False, True], ids=["csv", "gzip"])
def test_connection_cut_every_256k(migrated, db, store, proxy, compress):
    n = int(60000 * scale()) if not compress else int(120000 * scale())
    name = "cut.csv.gz" if compress else "cut.csv"
    data, expected = _people(store, name, n, compress)
    proxy.configure(cut_every=256 * 1024)
    out = _import(migrated, proxy.url(store.name(name)), "cuts", FAST_RETRIES)
    checks.assert_matches_reference(db, out["commit_id"], expected)
    c = proxy.counters()
    want_cuts = max(1, len(data) // (256 * 1024) - 1)
    assert c["cuts"] >= want_cuts, "only %d cuts for %d bytes: %s" % (c["cuts"], len(data), c)
    gets = store.requests(name, "GET")
    assert len(gets) >= c["cuts"] + 1, "each cut must be followed by a new GET: %s" % gets
    assert all(g["range"] for g in gets[1:]), "a resumption re-fetched without Range"
    assert len(_ranged_resumes(store, name)) >= c["cuts"], store.range_starts(name)
    assert checks.ref_head(db, "cuts") == out["commit_id"]


def test_stall_longer_than_stall_timeout(migrated, db, store, proxy):
    n = int(40000 * scale())
    data, expected = _people(store, "stall.csv", n)
    stall = 30.0
    proxy.configure(stall_after=len(data) // 3, stall_seconds=stall)
    env = dict(FAST_RETRIES, IMPORT_STALL_TIMEOUT="2", IMPORT_CHUNK_SIZE=str(1 << 20))
    t0 = time.monotonic()
    out = _import(migrated, proxy.url(store.name("stall.csv")), "stall", env)
    elapsed = time.monotonic() - t0
    checks.assert_matches_reference(db, out["commit_id"], expected)
    c = proxy.counters()
    assert c["stalls"] == 1, c
    assert elapsed < stall - 5, "import took %.1fs: it waited out the %ds stall instead of " \
        "giving up after IMPORT_STALL_TIMEOUT=2" % (elapsed, stall)
    after = [g for g in store.requests("stall.csv", "GET") if g["time"] > proxy.stall_started_at]
    assert after and all((g["start"] or 0) > 0 for g in after), \
        "no ranged GET resumed after the stall: %s" % after
    assert c["connections"] >= 2, c


def test_stall_detected_within_stall_timeout(migrated, db, store, proxy):
    """IMPORT_STALL_TIMEOUT is the silence after which the transfer is abandoned: the ranged
    retry must start about that long after the stall began (plus backoff), not much later."""
    stall_timeout = 2
    data, expected = _people(store, "stall2.csv", int(20000 * scale()), seed=24)
    proxy.configure(stall_after=len(data) // 3, stall_seconds=30.0)
    env = dict(FAST_RETRIES, IMPORT_STALL_TIMEOUT=str(stall_timeout))
    out = _import(migrated, proxy.url(store.name("stall2.csv")), "stall2", env)
    checks.assert_matches_reference(db, out["commit_id"], expected)
    after = [g["time"] for g in store.requests("stall2.csv", "GET") if g["time"] > proxy.stall_started_at]
    assert after, "no GET after the stall"
    gap = after[0] - proxy.stall_started_at
    assert gap <= (stall_timeout + 3) * timeout_factor(), \
        "the stalled transfer was abandoned %.1fs after data stopped; IMPORT_STALL_TIMEOUT=%d" % (
            gap, stall_timeout)


def test_cuts_and_stall_together(migrated, db, store, proxy):
    n = int(120000 * scale())
    data, expected = _people(store, "both.csv.gz", n, compress=True, seed=22)
    proxy.configure(cut_every=256 * 1024, stall_after=len(data) // 2, stall_seconds=30.0)
    env = dict(FAST_RETRIES, IMPORT_STALL_TIMEOUT="2")
    out = _import(migrated, proxy.url(store.name("both.csv.gz")), "both", env)
    checks.assert_matches_reference(db, out["commit_id"], expected)
    c = proxy.counters()
    assert c["stalls"] == 1 and c["cuts"] >= max(1, len(data) // (256 * 1024) - 1), c
    assert len(_ranged_resumes(store, "both.csv.gz")) >= c["cuts"]


def test_server_down_from_start_exits_3(migrated, db, store, proxy):
    store.put("down.csv", b"a,b\n1,2\n")
    proxy.configure(down=True)
    env = {"IMPORT_MAX_RETRIES": "2", "IMPORT_RETRY_BACKOFF_MS": "100", "IMPORT_STALL_TIMEOUT": "2"}
    res = migrated.run("import", proxy.url(store.name("down.csv")), "--dataset", "down",
                       env=env, timeout=60)
    assert res.code == 3, res
    assert res.elapsed < 30, "took %.1fs to give up with 2 retries" % res.elapsed
    assert proxy.counters()["refused"] >= 2, proxy.counters()
    assert checks.ref_head(db, "down") is None


def test_server_goes_down_midway_then_resume(migrated, db, store, proxy):
    """Exit 3 is resumable: once the server is back, --resume completes the same job."""
    n = int(80000 * scale())
    data, expected = _people(store, "mid.csv", n, seed=23)
    proxy.configure(cut_at_total=len(data) // 3, down_after_cuts=1)
    env = {"IMPORT_MAX_RETRIES": "2", "IMPORT_RETRY_BACKOFF_MS": "100", "IMPORT_STALL_TIMEOUT": "2",
           "IMPORT_BATCH_SIZE": "1000"}
    # After the first cut every new connection is refused: the server "stays down".
    bg = migrated.start("import", proxy.url(store.name("mid.csv")), "--dataset", "mid",
                        "--json", env=env)
    job_id = bg.wait_job_id()
    res = bg.wait(timeout=120)
    if proxy.counters()["cuts"] < 1:
        pytest.fail("the proxy never cut the connection: %r" % res)
    assert res.code == 3, res
    assert checks.ref_head(db, "mid") is None
    assert checks.job(db, job_id)["status"] != "completed"
    proxy.configure(down=False, down_after_cuts=None)
    again = migrated.run("import", "--resume", job_id, "--json", env=env, timeout=180)
    assert again.code == 0, again
    out = again.json()
    assert out["job_id"] == job_id and out["status"] == "completed", out
    checks.assert_matches_reference(db, out["commit_id"], expected)
    assert checks.ref_head(db, "mid") == out["commit_id"]
