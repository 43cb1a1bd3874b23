"""Parallel loading (issue 7): several connections load the batches of one job at once and
commit them in whatever order they finish.

- The manifest is the same whatever the number of loaders, and equals the reference reader's.
- Batches finish out of order: the checkpoint is a watermark plus the finished ranges beyond it.
  A kill -9 at such a moment leaves the manifest equal to exactly what the checkpoint
  describes, and the resumed job equals an uninterrupted import (no row twice, none lost).
- Many loaders of several jobs inserting the same contents at once never deadlock: rows go out
  sorted by hash, so every transaction takes its row locks in one order.

Out-of-order commits are provoked with data, not hooks: every fourth batch's rows are ~20x
larger than the others', so it takes longer to load than the batches after it.
"""
import random
import threading
import time

import pytest

from harness import checks, gen, refreader
from harness.runner import scale, timeout_factor

BATCH = 400
ROWS = max(12000, int(40000 * scale()))


def _uneven_csv(rows, seed=5):
    """_uneven_csv: people rows, with a long note in every row of every fourth batch; some
    notes hold quoted commas and newlines."""
    out = []
    for i, r in enumerate(gen.people_rows(rows, seed=seed)):
        if (i // BATCH) % 4 == 0:
            r[5] = ("heavy, \"quoted\"\nline %d " % i) * 60
        out.append(r)
    return gen.csv_bytes(out)


_DATA = {}


def _data():
    if "csv" not in _DATA:
        plain = _uneven_csv(ROWS)
        _DATA["csv"] = (plain, refreader.read_records(plain))
    return _DATA["csv"]


def _env(loaders, batch=BATCH):
    return {"IMPORT_BATCH_SIZE": str(batch), "IMPORT_PARALLEL_WORKERS": str(loaders),
            "IMPORT_RETRY_BACKOFF_MS": "50"}


def _import(ingest, url, dataset, loaders):
    res = ingest.run("import", url, "--dataset", dataset, "--json", env=_env(loaders), timeout=600)
    assert res.code == 0, res
    return res.json()["commit_id"]


def test_parallel_equals_single_connection(migrated, db, store):
    data, expected = _data()
    store.put("uneven.csv", data)
    one = checks.manifest(db, _import(migrated, store.url("uneven.csv"), "one", 1))
    four = checks.manifest(db, _import(migrated, store.url("uneven.csv"), "four", 4))
    assert len(one) == ROWS
    assert four == one, "4 loaders gave a different manifest than 1"
    if refreader.have_xxh3():
        assert four == refreader.manifest(expected)


def _wait_out_of_order(db, bg, job_id, timeout=120):
    """_wait_out_of_order polls the job until its checkpoint lists finished ranges beyond the
    watermark; returns that progress (None if the import ended first)."""
    deadline = time.monotonic() + timeout * timeout_factor()
    while time.monotonic() < deadline and bg.running():
        prog = checks.progress(db, job_id) or {}
        if (prog.get("checkpoint") or {}).get("finished"):
            return prog
        time.sleep(0.005)
    return None


def test_kill_while_batches_are_out_of_order_then_resume(migrated, db, store, proxy):
    data, expected = _data()
    store.put("uneven.csv", data)
    proxy.configure(throttle=max(50000, len(data) / 8.0))
    url = proxy.url(store.name("uneven.csv"))
    bg = migrated.start("import", url, "--dataset", "ooo", "--json", env=_env(4))
    job_id = bg.wait_job_id()
    seen_out_of_order = 0
    for attempt in range(3):
        if attempt:
            bg = migrated.start("import", "--resume", job_id, "--json", env=_env(4))
        prog = _wait_out_of_order(db, bg, job_id)
        if prog is None:
            break
        bg.kill()
        checks.wait_client_sessions_gone(db)
        after = checks.assert_checkpoint_consistent(db, job_id)
        seen_out_of_order += bool((after.get("checkpoint") or {}).get("finished"))
    assert seen_out_of_order >= 1, "no kill landed while batches were out of order"
    proxy.configure(throttle=None)
    res = migrated.run("import", "--resume", job_id, "--json", env=_env(4), timeout=600)
    assert res.code == 0, res
    commit_id = res.json()["commit_id"]
    prog = checks.progress(db, job_id)
    assert not (prog.get("checkpoint") or {}).get("finished"), prog
    assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                     (commit_id,)) == ROWS, "duplicates or losses in the manifest"
    manifest = checks.manifest(db, commit_id)
    clean = checks.manifest(db, _import(migrated, store.url("uneven.csv"), "clean", 1))
    assert manifest == clean, "resumed parallel import differs from an uninterrupted one"
    if refreader.have_xxh3():
        assert manifest == refreader.manifest(expected)


def test_many_concurrent_loaders_never_deadlock(migrated, db, store, pg):
    """Four jobs, four loaders each, small batches, the same contents in four orders: the
    loaders insert the same new row hashes at the same time, again and again."""
    rows = list(gen.people_rows(max(6000, int(20000 * scale())), seed=9))
    names = []
    for k in range(4):
        shuffled = rows[:]
        random.Random(k).shuffle(shuffled)
        store.put("shuffled%d.csv" % k, gen.csv_bytes(shuffled))
        names.append("shuffled%d.csv" % k)
    with open(pg.logfile, errors="replace") as f:
        log_before = len(f.read())
    results = {}

    def run(k):
        results[k] = migrated.run("import", store.url(names[k]), "--dataset", "dl%d" % k,
                                  "--json", env=_env(4, batch=150), timeout=600)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert results[k].code == 0, results[k]
        assert "deadlock" not in results[k].stderr.lower(), results[k].stderr[-2000:]
    with open(pg.logfile, errors="replace") as f:
        log = f.read()[log_before:]
    assert "deadlock detected" not in log, log[-3000:]
    stored = db.scalar("SELECT count(*) FROM dsa_core.rows")
    assert stored == len(rows), "content stored %d times for %d distinct rows" % (stored, len(rows))
    for k in range(4):
        commit_id = results[k].json()["commit_id"]
        assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                         (commit_id,)) == len(rows)
