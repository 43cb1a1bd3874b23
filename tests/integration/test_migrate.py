"""`dsa-ingest migrate`: creates the DSA schema, is idempotent, and is safe to run from
several processes at once (DESIGN §2: advisory lock, each migration applied once)."""


TABLES = ["dsa_core.datasets", "dsa_core.commits", "dsa_core.rows", "dsa_core.commit_rows",
          "dsa_core.refs", "dsa_core.commit_schemas", "dsa_jobs.analysis_runs"]
INDEXES = ["idx_rows_created_at", "idx_commit_rows_commit_hash", "idx_commit_rows_row_hash",
           "idx_analysis_runs_pending_imports"]
# docs/DESIGN.md records that idx_commit_rows_logical_id (commit_id, logical_row_id) is
# not created because commit_rows' primary key is that very index: either one will do.
LOGICAL_ID_COLUMNS = "(commit_id, logical_row_id)"


def _schema_snapshot(db):
    """_schema_snapshot lists tables, columns and indexes, to prove a re-run changes nothing."""
    cols = db.query("SELECT table_schema, table_name, column_name, data_type FROM"
                    " information_schema.columns WHERE table_schema IN ('dsa_core','dsa_jobs')"
                    " ORDER BY 1,2,3")
    idx = db.query("SELECT schemaname, indexname, indexdef FROM pg_indexes"
                   " WHERE schemaname IN ('dsa_core','dsa_jobs') ORDER BY 1,2")
    return cols, idx


def _assert_schema(db):
    for t in TABLES:
        assert db.table_exists(t), "missing table %s" % t
    names = {r["indexname"]: r["indexdef"] for r in db.query(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname IN ('dsa_core','dsa_jobs')")}
    for i in INDEXES:
        assert i in names, "missing index %s (have %s)" % (i, sorted(names))
    assert "(commit_id, row_hash)" in names["idx_commit_rows_commit_hash"]
    assert "idx_commit_rows_logical_id" in names or any(
        "dsa_core.commit_rows" in d and LOGICAL_ID_COLUMNS in d for d in names.values()), \
        "no index on commit_rows %s" % LOGICAL_ID_COLUMNS
    pending = names["idx_analysis_runs_pending_imports"]
    assert "created_at" in pending and "WHERE" in pending and "pending" in pending \
        and "import" in pending, pending


def test_migrate_creates_schema_and_is_idempotent(ingest, db):
    first = ingest.run("migrate", timeout=120)
    assert first.code == 0, first
    _assert_schema(db)
    before = _schema_snapshot(db)
    db.query("INSERT INTO dsa_core.datasets (name) VALUES ('keep-me')")
    second = ingest.run("migrate", timeout=120)
    assert second.code == 0, second
    assert _schema_snapshot(db) == before, "a second migrate changed the schema"
    assert db.scalar("SELECT count(*) FROM dsa_core.datasets WHERE name='keep-me'") == 1, \
        "a second migrate lost data"


def test_migrate_with_database_flag(binary, db):
    """--database URL works without DATABASE_URL in the environment."""
    from harness.runner import Runner
    env = {"DATABASE_URL": None, "PGHOST": None, "PGDATABASE": None, "PGPORT": None}
    res = Runner(binary, env).run("migrate", "--database", db.url, timeout=120)
    assert res.code == 0, res
    _assert_schema(db)


def test_concurrent_migrates(ingest, db):
    procs = [ingest.start("migrate") for _ in range(3)]
    results = [p.wait(timeout=120) for p in procs]
    for r in results:
        assert r.code == 0, r
    _assert_schema(db)
    again = ingest.run("migrate", timeout=120)
    assert again.code == 0, again


def test_migrate_bad_database_is_config_error(ingest, db):
    """An unreachable database is a configuration error (exit 2), not a crash."""
    res = ingest.run("migrate", env={"DATABASE_URL": db.url.replace(db.name, "no_such_db")},
                     timeout=60)
    assert res.code in (2, 3), res
    assert res.stderr.strip(), "no error message on stderr"
