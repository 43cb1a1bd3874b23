"""The job queue as the platform (or an operator with psql) sees it: queue rows inserted
by hand, an audit trail of every committed change to a job row, and waits on job state.

Why psql for enqueueing: DESIGN §4 says a row inserted by hand must be picked up, so the
tests insert jobs exactly that way — a plain INSERT from the psql client, no NOTIFY of our
own (the migration's trigger must send it).

Why an audit trigger: the job row is rewritten by every batch transaction (the checkpoint
and the fenced lease renewal), so an AFTER trigger that copies (status, worker_id, batches,
rows) into a side table records, for each batch that really committed, who committed it —
the proof that a fenced-out worker wrote nothing more, and that a job completed once.
"""
import json
import socket
import time

from .runner import timeout_factor

AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS public.job_audit (
    seq        bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    job_id     uuid NOT NULL,
    kind       text NOT NULL,
    status     text NOT NULL,
    worker_id  text,
    attempts   integer,
    batches    bigint,
    rows_done  bigint,
    cp_offset  bigint
);
CREATE OR REPLACE FUNCTION public.job_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        k := 'insert';
    ELSIF NEW.status = 'running' AND NEW.worker_id IS DISTINCT FROM OLD.worker_id THEN
        k := 'claim';
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        k := 'status';
    ELSIF NEW.run_parameters->'progress'->'batches'
          IS DISTINCT FROM OLD.run_parameters->'progress'->'batches' THEN
        k := 'batch';
    ELSIF NEW.run_parameters IS DISTINCT FROM OLD.run_parameters THEN
        k := 'progress';
    ELSE
        RETURN NULL;  -- a lease renewal (heartbeat): not a write of the job's data
    END IF;
    INSERT INTO public.job_audit (job_id, kind, status, worker_id, attempts, batches, rows_done,
                                  cp_offset)
    VALUES (NEW.id, k, NEW.status::text, NEW.worker_id, NEW.attempts,
            (NEW.run_parameters->'progress'->>'batches')::bigint,
            (NEW.run_parameters->'progress'->>'rows_processed')::bigint,
            (NEW.run_parameters->'progress'->'checkpoint'->>'offset')::bigint);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS job_audit_trg ON dsa_jobs.analysis_runs;
CREATE TRIGGER job_audit_trg AFTER INSERT OR UPDATE ON dsa_jobs.analysis_runs
    FOR EACH ROW EXECUTE FUNCTION public.job_audit_fn();
"""


def install_audit(db):
    """install_audit adds the audit trigger to a migrated test database."""
    db.query(AUDIT_SQL)


def audit(db, job_id):
    """audit lists the committed changes of one job row, oldest first. kind is 'insert',
    'claim' (a worker took it), 'status' (completed, failed, handed back …), 'batch' (a
    batch committed: progress.batches moved) or 'progress'; lease renewals are left out."""
    return db.query("SELECT seq, at, kind, status, worker_id, attempts, batches, rows_done,"
                    " cp_offset"
                    " FROM public.job_audit WHERE job_id = %s::uuid ORDER BY seq", (job_id,))


def create_dataset(db, name):
    """create_dataset inserts a dataset row (as the platform does) and returns its id."""
    return db.scalar("INSERT INTO dsa_core.datasets (name) VALUES (%s) RETURNING id", (name,))


def enqueue(db, dataset_id, source, ref=None, message=None, batch_size=None, extra=None,
            created_at=None):
    """enqueue inserts a pending import job with the psql client and returns its id.

    run_parameters follow DESIGN §4 (only "source" is required). created_at may be an SQL
    expression such as "now() - interval '1 second'" to order jobs explicitly."""
    params = {"source": source}
    if ref is not None:
        params["target_ref"] = ref
    if message is not None:
        params["commit_message"] = message
    options = {"header": True}
    if batch_size is not None:
        options["batch_size"] = batch_size
    params["options"] = options
    params.update(extra or {})
    text = json.dumps(params)
    assert "$j$" not in text
    cols = "run_type, status, dataset_id, run_parameters"
    vals = "'import', 'pending', %d, $j$%s$j$::jsonb" % (int(dataset_id), text)
    if created_at is not None:
        cols += ", created_at"
        vals += ", " + created_at
    sql = "INSERT INTO dsa_jobs.analysis_runs (%s) VALUES (%s) RETURNING id" % (cols, vals)
    proc = db.cluster.psql(db.name, "-At", "-c", sql, timeout=60)
    out = proc.stdout.decode().strip()
    assert proc.returncode == 0, "psql insert failed: %s" % proc.stderr.decode(errors="replace")
    return out.splitlines()[0].strip()


def row(db, job_id):
    """row is the job row with the lease columns (status as text)."""
    return db.one("SELECT id::text AS id, status::text AS status, worker_id, lease_expires_at,"
                  " attempts, next_attempt_at, error_message, source_commit_id, completed_at,"
                  " created_at, run_parameters, output_summary"
                  " FROM dsa_jobs.analysis_runs WHERE id = %s::uuid", (job_id,))


def wait_status(db, job_id, statuses, timeout=60, bg=()):
    """wait_status polls until the job's status is one of statuses; returns the row.

    bg: background processes whose stderr is shown if the wait times out."""
    if isinstance(statuses, str):
        statuses = (statuses,)
    deadline = time.monotonic() + timeout * timeout_factor()
    last = None
    while time.monotonic() < deadline:
        last = row(db, job_id)
        if last and last["status"] in statuses:
            return last
        time.sleep(0.05)
    logs = "\n".join("--- %s\n%s" % (" ".join(b.cmd[1:]), b.stderr[-2500:]) for b in bg)
    raise AssertionError("job %s not %s within %ss (last: status %s, worker %s, error %s)\n%s" % (
        job_id, "/".join(statuses), timeout, last and last["status"], last and last["worker_id"],
        last and last["error_message"], logs))


def wait_progress(db, job_id, predicate, timeout=60, bg=()):
    """wait_progress polls the job's run_parameters.progress until predicate(progress) holds."""
    deadline = time.monotonic() + timeout * timeout_factor()
    prog = None
    while time.monotonic() < deadline:
        prog = db.scalar("SELECT run_parameters->'progress' FROM dsa_jobs.analysis_runs"
                         " WHERE id = %s::uuid", (job_id,)) or {}
        if predicate(prog):
            return prog
        for b in bg:
            if not b.running():
                raise AssertionError("%s ended (exit %s) while waiting on job %s (progress %s): %s"
                                     % (" ".join(b.cmd[1:]), b.proc.returncode, job_id,
                                        {k: v for k, v in prog.items() if k != "checkpoint"},
                                        b.stderr[-2500:]))
        time.sleep(0.02)
    raise AssertionError("job %s: progress condition not met within %ss (last %s)" % (
        job_id, timeout, {k: v for k, v in (prog or {}).items() if k != "checkpoint"}))


def owner_like(bg):
    """owner_like is a LIKE pattern matching the worker ids of one process (host:pid:slot)."""
    return "%%:%d:%%" % bg.pid


def owner_prefix(bg):
    """owner_prefix is the host:pid: prefix of one worker process's ids."""
    return "%s:%d" % (socket.gethostname(), bg.pid)


def free_port():
    """free_port returns a loopback TCP port that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()
