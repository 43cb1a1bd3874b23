"""Fixtures for dsa-ingest's integration tests.

Session-wide: one private PostgreSQL cluster (`pg`) and one HTTP object server (`http`).
Per test: a fresh database (`db`), a runner bound to it (`ingest`, background processes
killed at teardown), a fault proxy in front of the HTTP server (`proxy`), and a per-test
folder on the HTTP server (`store`). Everything is torn down even when a test fails.
"""
import itertools
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.faultproxy import FaultProxy  # noqa: E402
from harness.httpserver import HttpServer  # noqa: E402
from harness.pg import Cluster  # noqa: E402
from harness.runner import Runner, default_binary  # noqa: E402

# Settings a developer's shell might carry that would change what the tests see.
_SCRUBBED = ["DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
             "PGSERVICE", "IMPORT_BATCH_SIZE", "IMPORT_CHUNK_SIZE", "IMPORT_STALL_TIMEOUT",
             "IMPORT_MAX_RETRIES", "IMPORT_RETRY_BACKOFF_MS", "IMPORT_PARALLEL_WORKERS",
             "IMPORT_PROGRESS_UPDATE_INTERVAL", "IMPORT_RETRY_MAX_SECONDS", "IMPORT_DB_RETRIES",
             "IMPORT_LEASE_SECONDS", "IMPORT_POLL_INTERVAL", "IMPORT_JOB_MAX_ATTEMPTS",
             "IMPORT_MAX_FIELD_SIZE", "IMPORT_MAX_COLUMNS", "IMPORT_STAGE_MIN_BYTES",
             "DSA_INGEST_LOG_FORMAT",
             "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"]


@pytest.fixture(scope="session")
def binary():
    """binary is the dsa-ingest under test; a missing binary fails the tests that need it."""
    path = default_binary()
    if not os.access(path, os.X_OK):
        pytest.fail("dsa-ingest binary not found at %s (set DSA_INGEST_BIN)" % path)
    return path


@pytest.fixture(scope="session")
def pg():
    """pg is the session's private PostgreSQL cluster (Unix socket only, fsync off)."""
    # A port of our own (only the socket's name, no TCP): parallel ctest jobs each run a cluster.
    cluster = Cluster(port=40000 + os.getpid() % 20000)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def db(pg):
    """db is a fresh, empty database for one test."""
    database = pg.create_database("t")
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="session")
def http():
    """http is the session's HTTP/1.1 object server on 127.0.0.1."""
    server = HttpServer().start()
    try:
        yield server
    finally:
        server.stop()


_store_ids = itertools.count(1)


class Store:
    """Store puts a test's objects in its own folder of the HTTP server (no name clashes)."""

    def __init__(self, http, prefix):
        self.http = http
        self.prefix = prefix

    def name(self, name):
        return "%s/%s" % (self.prefix, name)

    def put(self, name, data):
        """put stores data and returns its local path (the same bytes the URL serves)."""
        return self.http.put(self.name(name), data)

    def url(self, name, port=None):
        return self.http.url(self.name(name), port)

    def path(self, name):
        return self.http.path(self.name(name))

    def requests(self, name, method=None):
        return self.http.log.entries(self.name(name), method)

    def range_starts(self, name):
        return self.http.log.range_starts(self.name(name))


@pytest.fixture
def store(http):
    return Store(http, "o%d" % next(_store_ids))


@pytest.fixture
def proxy(http):
    """proxy is a fault proxy in front of the HTTP server, stopped after the test."""
    p = FaultProxy(http.port).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def ingest(binary, db):
    """ingest runs the binary against this test's database; background runs are killed after."""
    env = {k: None for k in _SCRUBBED}
    env["DATABASE_URL"] = db.url
    env["NO_COLOR"] = "1"
    runner = Runner(binary, env)
    try:
        yield runner
    finally:
        runner.kill_all()


@pytest.fixture
def migrated(ingest, db):
    """migrated is `ingest` after a successful `dsa-ingest migrate` on the test database."""
    res = ingest.run("migrate", timeout=120)
    assert res.code == 0, "migrate failed: %r" % res
    return ingest
