/* queue.c - claiming, leasing and handing back jobs. PostgreSQL is the only
 * coordinator: SKIP LOCKED lets many workers claim without blocking each other,
 * an advisory lock per (dataset, ref) keeps one writer per ref, and the lease
 * (renewed by a heartbeat, checked by every batch) fences out a worker that
 * lost its job. */
#include "job/queue.h"
#include "dsa_ingest/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Claimable: pending and due, or running with an expired lease. */
#define CLAIMABLE                                                                                  \
    "run_type = 'import' AND ((status = 'pending' AND (next_attempt_at IS NULL "                   \
    "  OR next_attempt_at <= now())) OR (status = 'running' AND (lease_expires_at IS NULL "        \
    "  OR lease_expires_at < now()))) "

/* The oldest candidates, locked without waiting for rows other claimers hold
 * (the ranges of a split job in their order). */
static const char *const candidates_sql =
    "SELECT id, dataset_id, coalesce(run_parameters->>'target_ref', 'main'), "
    "parent_run_id IS NOT NULL FROM dsa_jobs.analysis_runs WHERE " CLAIMABLE
    "ORDER BY created_at, (run_parameters->'range'->>'index')::int "
    "LIMIT 8 FOR UPDATE SKIP LOCKED";

/* ref_busy_sql: another job holds a live lease on the same ref. Run after the
 * ref's advisory lock is held, so a claim committed just before is seen. */
static const char *const ref_busy_sql =
    "SELECT 1 FROM dsa_jobs.analysis_runs WHERE run_type = 'import' AND status = 'running' "
    "AND lease_expires_at >= now() AND dataset_id = $1 "
    "AND coalesce(run_parameters->>'target_ref', 'main') = $2 AND id <> $3";

static const char *const take_sql =
    "UPDATE dsa_jobs.analysis_runs SET status = 'running', worker_id = $2, "
    "lease_expires_at = now() + make_interval(secs => $3::int), attempts = attempts + 1, "
    "next_attempt_at = NULL WHERE id = $1";

/* ref_free locks the (dataset, ref) pair for this transaction and tells
 * whether no other job writes to it. */
static int ref_free(di_pg *pg, const char *id, const char *ds, const char *ref, int *free_,
                    di_error *err) {
    const char *p[] = {ds, ref, id};
    if (di_pg_cmd(pg,
                  "SELECT pg_advisory_xact_lock(hashtext('dsa-ingest:ref:' || $1 || ':' || $2))", 2,
                  p, err))
        return -1;
    PGresult *r = di_pg_exec(pg, ref_busy_sql, 3, p, err);
    if (!r)
        return -1;
    *free_ = PQntuples(r) == 0;
    PQclear(r);
    return 0;
}

/* take_first claims the first candidate whose ref is free; the range of a
 * split job writes for its parent, which holds the ref. */
static int take_first(di_pg *pg, PGresult *c, const char *owner, const char *lease, char job_id[37],
                      di_error *err) {
    for (int i = 0; i < PQntuples(c); i++) {
        int free_ = strcmp(PQgetvalue(c, i, 3), "t") == 0;
        const char *id = PQgetvalue(c, i, 0);
        if (!free_ && ref_free(pg, id, PQgetvalue(c, i, 1), PQgetvalue(c, i, 2), &free_, err))
            return -1;
        if (!free_)
            continue;
        const char *p[] = {id, owner, lease};
        if (di_pg_cmd(pg, take_sql, 3, p, err))
            return -1;
        snprintf(job_id, 37, "%s", id);
        return 1;
    }
    return 0;
}

/* claim runs one claim transaction: candidates_sql's rows (id, dataset,
 * ref, is a range), locked, and the first whose ref is free is taken. */
static int claim(di_pg *pg, const char *candidates, int nparams, const char *const *params,
                 const char *owner, long lease_s, char job_id[37], di_error *err) {
    char lease[24];
    snprintf(lease, sizeof lease, "%ld", lease_s);
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err))
        return -1;
    PGresult *c = di_pg_exec(pg, candidates, nparams, params, err);
    int rc = c ? take_first(pg, c, owner, lease, job_id, err) : -1;
    PQclear(c);
    if (rc < 0 || di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        return -1;
    }
    return rc;
}

int di_queue_claim(di_pg *pg, const char *owner, long lease_s, char job_id[37], di_error *err) {
    return claim(pg, candidates_sql, 0, NULL, owner, lease_s, job_id, err);
}

int di_queue_claim_range(di_pg *pg, const char *parent, const char *owner, long lease_s,
                         char job_id[37], di_error *err) {
    const char *p[] = {parent};
    return claim(pg,
                 "SELECT id, dataset_id, '', true FROM dsa_jobs.analysis_runs "
                 "WHERE parent_run_id = $1 AND " CLAIMABLE
                 "ORDER BY (run_parameters->'range'->>'index')::int "
                 "LIMIT 1 FOR UPDATE SKIP LOCKED",
                 1, p, owner, lease_s, job_id, err);
}

int di_queue_pending(di_pg *pg, long *count, di_error *err) {
    return di_pg_long(pg,
                      "SELECT count(*) FROM dsa_jobs.analysis_runs WHERE run_type = "
                      "'import' AND status = 'pending'",
                      0, NULL, count, err);
}

int di_queue_renew(di_pg *pg, const char *job_id, const char *owner, long lease_s, int *held,
                   di_error *err) {
    char lease[24];
    long hit = 0;
    snprintf(lease, sizeof lease, "%ld", lease_s);
    const char *p[] = {job_id, owner, lease};
    if (di_pg_count(pg,
                    "UPDATE dsa_jobs.analysis_runs SET lease_expires_at = now() + "
                    "make_interval(secs => $3::int) WHERE id = $1 AND worker_id = $2 "
                    "AND status = 'running' AND lease_expires_at > now()",
                    3, p, &hit, err))
        return -1;
    *held = hit == 1;
    return 0;
}

int di_queue_hand_back(di_pg *pg, const char *job_id, const char *owner, double delay_s,
                       const char *message, di_error *err) {
    char delay[32];
    snprintf(delay, sizeof delay, "%.3f", delay_s);
    const char *p[] = {job_id, owner, delay, message};
    return di_pg_cmd(pg,
                     "UPDATE dsa_jobs.analysis_runs SET status = 'pending', worker_id = NULL, "
                     "lease_expires_at = NULL, error_message = coalesce($4, error_message), "
                     "next_attempt_at = now() + make_interval(secs => $3::float8) "
                     "WHERE id = $1 AND worker_id = $2 AND status = 'running'",
                     4, p, err);
}

void di_worker_id(char *out, size_t outsz, int slot) {
    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    if (slot >= 0)
        snprintf(out, outsz, "%s:%d:%d", host, (int)getpid(), slot);
    else
        snprintf(out, outsz, "%s:%d", host, (int)getpid());
}

/* takeover_status explains why a job could not be taken over. */
static int takeover_status(di_pg *pg, const char *job_id, int *done, di_error *err) {
    const char *p[] = {job_id};
    PGresult *r = di_pg_exec(pg,
                             "SELECT status, coalesce(error_message, '') FROM "
                             "dsa_jobs.analysis_runs WHERE id::text = $1 AND run_type = 'import'",
                             1, p, err);
    if (!r)
        return -1;
    int rc = 0;
    if (PQntuples(r) == 0)
        rc = di_error_set(err, DI_ERR_CONFIG, "no import job with id %s", job_id);
    else if (strcmp(PQgetvalue(r, 0, 0), "completed") == 0)
        *done = 1;
    else
        rc = di_error_set(err, DI_ERR_CONFIG, "job %s has failed: %s (use `dsa-ingest jobs retry`)",
                          job_id, PQgetvalue(r, 0, 1));
    PQclear(r);
    return rc;
}

int di_job_takeover(const char *conninfo, const char *job_id, const char *owner, long lease_s,
                    int *done, di_error *err) {
    di_pg pg;
    char lease[24];
    snprintf(lease, sizeof lease, "%ld", lease_s);
    const char *p[] = {job_id, owner, lease};
    *done = 0;
    if (di_pg_connect(&pg, conninfo, err))
        return -1;
    PGresult *r =
        di_pg_exec(&pg,
                   "UPDATE dsa_jobs.analysis_runs SET status = 'running', worker_id = $2, "
                   "lease_expires_at = now() + make_interval(secs => $3::int), "
                   "attempts = attempts + 1, next_attempt_at = NULL "
                   "WHERE id::text = $1 AND run_type = 'import' "
                   "AND status IN ('pending', 'running')",
                   3, p, err);
    int rc = r ? 0 : -1;
    if (r && strtol(PQcmdTuples(r), NULL, 10) == 0)
        rc = takeover_status(&pg, job_id, done, err);
    PQclear(r);
    di_pg_close(&pg);
    return rc;
}
