-- 001_dsa_schema.sql - the DSA platform's tables, as dsa-ingest needs them.
-- Every statement creates only what is missing (IF NOT EXISTS, guarded DO
-- blocks), so this runs unchanged against a database that already has the DSA
-- tables; nothing is ever dropped or altered.

CREATE SCHEMA IF NOT EXISTS dsa_core;
CREATE SCHEMA IF NOT EXISTS dsa_jobs;

CREATE TABLE IF NOT EXISTS dsa_core.datasets (
    id          serial PRIMARY KEY,
    name        text NOT NULL,
    description text,
    created_by  integer,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- commit_id and row_hash are varchar(64): the platform's char(64) would
-- blank-pad the 32-hex XXH3-128 hashes; varchar(64) holds both those and the
-- platform's 64-hex ids. An existing char(64) column keeps working unchanged.
CREATE TABLE IF NOT EXISTS dsa_core.commits (
    commit_id        varchar(64) PRIMARY KEY,
    dataset_id       integer NOT NULL REFERENCES dsa_core.datasets (id),
    parent_commit_id varchar(64),
    message          text,
    author_id        integer,
    authored_at      timestamptz NOT NULL DEFAULT now(),
    committed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS dsa_core.rows (
    row_hash   varchar(64) PRIMARY KEY,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The manifest. No foreign keys: they would be checked for every one of
-- millions of rows per import, and dsa-ingest writes rows before manifests.
CREATE TABLE IF NOT EXISTS dsa_core.commit_rows (
    commit_id      varchar(64) NOT NULL,
    logical_row_id text NOT NULL,
    row_hash       varchar(64) NOT NULL,
    PRIMARY KEY (commit_id, logical_row_id)
);

CREATE TABLE IF NOT EXISTS dsa_core.refs (
    id         serial PRIMARY KEY,
    dataset_id integer NOT NULL REFERENCES dsa_core.datasets (id),
    name       text NOT NULL,
    commit_id  varchar(64),
    UNIQUE (dataset_id, name)
);

CREATE TABLE IF NOT EXISTS dsa_core.commit_schemas (
    commit_id         varchar(64) NOT NULL UNIQUE,
    schema_definition jsonb NOT NULL
);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = 'dsa_jobs' AND t.typname = 'analysis_run_type') THEN
        CREATE TYPE dsa_jobs.analysis_run_type AS ENUM ('import', 'sql_transform', 'profile', 'export');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = 'dsa_jobs' AND t.typname = 'analysis_run_status') THEN
        CREATE TYPE dsa_jobs.analysis_run_status AS ENUM ('pending', 'running', 'completed', 'failed');
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS dsa_jobs.analysis_runs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_type         dsa_jobs.analysis_run_type NOT NULL,
    status           dsa_jobs.analysis_run_status NOT NULL DEFAULT 'pending',
    dataset_id       integer REFERENCES dsa_core.datasets (id),
    source_commit_id varchar(64),
    user_id          integer,
    run_parameters   jsonb NOT NULL DEFAULT '{}',
    output_summary   jsonb,
    error_message    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);

-- The import indexes of the platform's import_performance_indexes.sql.
-- idx_rows_row_hash is not created: it would only duplicate rows' primary key.
-- idx_commit_rows_logical_id (commit_id, logical_row_id) likewise duplicates
-- commit_rows' primary key, so it is not created either.
CREATE INDEX IF NOT EXISTS idx_rows_created_at ON dsa_core.rows (created_at);
CREATE INDEX IF NOT EXISTS idx_commit_rows_commit_hash ON dsa_core.commit_rows (commit_id, row_hash);
CREATE INDEX IF NOT EXISTS idx_commit_rows_row_hash ON dsa_core.commit_rows (row_hash);
CREATE INDEX IF NOT EXISTS idx_analysis_runs_pending_imports ON dsa_jobs.analysis_runs (created_at)
    WHERE status = 'pending' AND run_type = 'import';
