-- 004_split_ranges.sql - one large object imported by many workers: a job
-- split into byte ranges has one child job per range (run_type 'import',
-- claimable by any worker), pointing at it through parent_run_id. Only adds;
-- the platform's code ignores the column.

ALTER TABLE dsa_jobs.analysis_runs ADD COLUMN IF NOT EXISTS parent_run_id uuid;

-- A range job looks up its siblings (counting, publishing, failing).
CREATE INDEX IF NOT EXISTS idx_analysis_runs_parent
    ON dsa_jobs.analysis_runs (parent_run_id)
    WHERE parent_run_id IS NOT NULL;
