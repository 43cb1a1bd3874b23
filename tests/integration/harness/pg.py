"""A private PostgreSQL cluster for tests and benchmarks.

Why a private cluster: the tests must not depend on (or damage) whatever server the
machine runs, and they need a socket no other process can reach. The cluster listens
only on a Unix socket in its own temp dir (listen_addresses=''), runs with fsync off
for speed, and is torn down at the end. initdb refuses to run as root, so when we are
root every server command goes through `runuser -u postgres --`.
"""
import itertools
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import psycopg2
import psycopg2.extras

PG_BIN = os.environ.get("DSA_PG_BIN", "/usr/lib/postgresql/15/bin")


def _as_server_user(cmd):
    """_as_server_user prefixes cmd with runuser when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


class Cluster:
    """Cluster owns one initdb'd data directory and the postgres server running on it."""

    def __init__(self, port=54329, settings=None):
        self.port = port
        self.settings = {
            "listen_addresses": "''",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        self.settings.update(settings or {})
        self.base = tempfile.mkdtemp(prefix="dsa-pg-")
        self.datadir = os.path.join(self.base, "data")
        self.sockdir = os.path.join(self.base, "sock")
        self.logfile = os.path.join(self.base, "server.log")
        self._db_counter = itertools.count(1)
        self.running = False

    def start(self):
        """start runs initdb and pg_ctl start; it waits until the server accepts connections."""
        os.makedirs(self.sockdir)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockdir, "postgres", "postgres")
        self._run([os.path.join(PG_BIN, "initdb"), "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--locale=C", "--no-sync", "-D", self.datadir])
        opts = " ".join("-c %s=%s" % (k, v) for k, v in self.settings.items())
        opts += " -c unix_socket_directories=%s -c port=%d" % (self.sockdir, self.port)
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.datadir, "-l", self.logfile,
                   "-o", opts, "-w", "-t", "60", "start"])
        self.running = True
        return self

    def stop(self):
        """stop shuts the server down (immediate mode: the data is thrown away) and removes it."""
        if self.running:
            try:
                self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.datadir,
                           "-m", "immediate", "-w", "-t", "60", "stop"])
            finally:
                self.running = False
        shutil.rmtree(self.base, ignore_errors=True)

    def restart(self, mode="fast"):
        """restart stops the server (`pg_ctl restart -m mode`: fast ends every session at once)
        and starts it again with the same options; it returns when connections are accepted.

        Every client connection dies, the tests' own included (Database.close() them)."""
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.datadir, "-l", self.logfile,
                   "-m", mode, "-w", "-t", "60", "restart"])
        return self

    def _run(self, cmd):
        """_run executes a server command as the server user and raises with its output on failure."""
        proc = subprocess.run(_as_server_user(cmd), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120)
        if proc.returncode != 0:
            log = ""
            if os.path.exists(self.logfile):
                with open(self.logfile, errors="replace") as f:
                    log = f.read()[-4000:]
            raise RuntimeError("%s failed (%d):\n%s\n%s" % (
                " ".join(cmd), proc.returncode, proc.stdout.decode(errors="replace"), log))

    def url(self, dbname):
        """url is the libpq URI the binary gets: a socket-only connection to dbname."""
        return "postgresql://postgres@/%s?host=%s&port=%d" % (
            dbname, urllib.parse.quote(self.sockdir, safe="/"), self.port)

    def connect(self, dbname="postgres"):
        """connect opens an autocommit psycopg2 connection to dbname."""
        conn = psycopg2.connect(self.url(dbname))
        conn.autocommit = True
        return conn

    def create_database(self, prefix="t"):
        """create_database makes a fresh, empty database and returns a Database handle."""
        name = "%s_%d" % (prefix, next(self._db_counter))
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute('DROP DATABASE IF EXISTS "%s"' % name)
                cur.execute('CREATE DATABASE "%s"' % name)
        finally:
            conn.close()
        return Database(self, name)

    def psql(self, dbname, *args, timeout=3600):
        """psql runs the psql client against dbname; returns the CompletedProcess."""
        cmd = [os.path.join(PG_BIN, "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-q",
               "-d", self.url(dbname)] + list(args)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)


class Database:
    """Database is one test's database: its URL for the binary and a small query helper."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.url = cluster.url(name)
        self._conn = None

    @property
    def conn(self):
        """conn is a lazily opened autocommit connection, reopened if it was closed."""
        if self._conn is None or self._conn.closed:
            self._conn = self.cluster.connect(self.name)
        return self._conn

    def query(self, sql, params=None):
        """query runs sql and returns all rows as dicts (empty list for statements)."""
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            if cur.description is None:
                return []
            return [dict(r) for r in cur.fetchall()]

    def one(self, sql, params=None):
        """one returns the single row of sql (or None); it fails on more than one row."""
        rows = self.query(sql, params)
        assert len(rows) <= 1, "expected at most one row from %r, got %d" % (sql, len(rows))
        return rows[0] if rows else None

    def scalar(self, sql, params=None):
        """scalar returns the first column of the single row of sql (or None)."""
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def table_exists(self, qualified):
        """table_exists tells whether schema.table exists (used to skip checks before migrate)."""
        return self.scalar("SELECT to_regclass(%s) IS NOT NULL AS e", (qualified,))

    def close(self):
        """close closes the helper connection so the database can be dropped."""
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def wait_for(self, sql, params=None, predicate=bool, timeout=60.0, interval=0.05):
        """wait_for polls scalar(sql) until predicate(value) holds; returns the value or raises."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(sql, params)
            if predicate(value):
                return value
            time.sleep(interval)
        raise TimeoutError("timed out waiting on %r (last value %r)" % (sql, value))
