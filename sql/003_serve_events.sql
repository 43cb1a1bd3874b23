-- 003_serve_events.sql - what `dsa-ingest serve` needs: a NOTIFY for every
-- change of an import job's progress or status (the Server-Sent Events stream
-- and the page listen for it instead of polling the row), and the record of
-- S3 event deliveries whose unique constraint makes a redelivered event queue
-- no second job. Only adds; the platform's code ignores both.

CREATE SCHEMA IF NOT EXISTS dsa_ingest;

-- One row per (bucket, key, version) ever delivered. `version` is "v:<version
-- id>" for versioned buckets, else "etag:<ETag>", else "seq:<sequencer>".
CREATE TABLE IF NOT EXISTS dsa_ingest.s3_events (
    id          bigserial PRIMARY KEY,
    bucket      text NOT NULL,
    object_key  text NOT NULL,
    version     text NOT NULL DEFAULT '',
    event_name  text,
    job_id      uuid,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT s3_events_object_version_key UNIQUE (bucket, object_key, version)
);

-- The payload is the job id; listeners fetch the row themselves (a NOTIFY
-- payload is capped at 8000 bytes, a job row is not).
CREATE OR REPLACE FUNCTION dsa_jobs.notify_job_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status
       AND OLD.run_parameters IS NOT DISTINCT FROM NEW.run_parameters THEN
        RETURN NULL; -- a lease renewal: nothing a watcher would see
    END IF;
    PERFORM pg_notify('dsa_job_events', NEW.id::text);
    RETURN NULL;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'analysis_runs_notify_job_event') THEN
        CREATE TRIGGER analysis_runs_notify_job_event
            AFTER INSERT OR UPDATE OF status, run_parameters ON dsa_jobs.analysis_runs
            FOR EACH ROW WHEN (NEW.run_type = 'import')
            EXECUTE FUNCTION dsa_jobs.notify_job_event();
    END IF;
END
$$;
