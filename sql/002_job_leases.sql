-- 002_job_leases.sql - what the worker fleet needs on the job queue: who runs a
-- job and until when (the lease, renewed by a heartbeat and checked by every
-- batch: fencing), how often it was tried and when to try again, and a NOTIFY
-- for every job that becomes pending, so rows inserted by hand wake workers too.
-- Columns are only added, never changed; the platform's code ignores them.

ALTER TABLE dsa_jobs.analysis_runs ADD COLUMN IF NOT EXISTS worker_id text;
ALTER TABLE dsa_jobs.analysis_runs ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz;
ALTER TABLE dsa_jobs.analysis_runs ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
ALTER TABLE dsa_jobs.analysis_runs ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;

-- Running imports whose lease may have expired are looked up by every claim.
CREATE INDEX IF NOT EXISTS idx_analysis_runs_running_imports
    ON dsa_jobs.analysis_runs (lease_expires_at)
    WHERE status = 'running' AND run_type = 'import';

CREATE OR REPLACE FUNCTION dsa_jobs.notify_import_job() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dsa_import_jobs', NEW.id::text);
    RETURN NULL;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'analysis_runs_notify_import') THEN
        CREATE TRIGGER analysis_runs_notify_import
            AFTER INSERT OR UPDATE OF status ON dsa_jobs.analysis_runs
            FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.run_type = 'import')
            EXECUTE FUNCTION dsa_jobs.notify_import_job();
    END IF;
END
$$;
