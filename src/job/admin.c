/* admin.c - `dsa-ingest jobs`: list, show, cancel and retry import jobs. The
 * database renders the JSON, so what is shown is exactly what is stored. */
#include "dsa_ingest/job.h"
#include "job/catalog.h"
#include "sink/pg.h"

#include <stdlib.h>
#include <string.h>

/* The job as shown: the row, without the 44 KiB base64 window. */
#define JOB_JSON                                                                                   \
    "json_build_object('id', id, 'status', status, 'dataset_id', dataset_id, "                     \
    "'source_commit_id', source_commit_id, 'worker_id', worker_id, "                               \
    "'lease_expires_at', lease_expires_at, 'attempts', attempts, "                                 \
    "'next_attempt_at', next_attempt_at, 'created_at', created_at, "                               \
    "'completed_at', completed_at, 'error_message', error_message, "                               \
    "'run_parameters', run_parameters #- '{progress,checkpoint,decoder,window}', "                 \
    "'output_summary', output_summary)"

/* one_value runs a query returning one text value (NULL and err when none). */
static char *one_value(const char *conninfo, const char *sql, int n, const char *const *p,
                       const char *missing, di_error *err) {
    di_pg pg;
    if (di_pg_connect(&pg, conninfo, err))
        return NULL;
    PGresult *r = di_pg_exec(&pg, sql, n, p, err);
    char *out = NULL;
    if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        out = strdup(PQgetvalue(r, 0, 0));
    else if (r)
        di_error_set(err, DI_ERR_CONFIG, "%s", missing);
    PQclear(r);
    di_pg_close(&pg);
    return out;
}

char *di_jobs_list(const char *conninfo, int limit, di_error *err) {
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {lim};
    return one_value(conninfo,
                     "SELECT coalesce(json_agg(j ORDER BY created_at DESC), '[]')::text FROM "
                     "(SELECT " JOB_JSON " AS j, created_at FROM dsa_jobs.analysis_runs "
                     "WHERE run_type = 'import' ORDER BY created_at DESC LIMIT $1::int) x",
                     1, p, "no jobs", err);
}

char *di_jobs_show(const char *conninfo, const char *job_id, di_error *err) {
    const char *p[] = {job_id};
    char missing[128];
    snprintf(missing, sizeof missing, "no import job with id %s", job_id);
    return one_value(conninfo,
                     "SELECT " JOB_JSON "::text FROM dsa_jobs.analysis_runs "
                     "WHERE id::text = $1 AND run_type = 'import'",
                     1, p, missing, err);
}

int di_jobs_cancel(const char *conninfo, const char *job_id, di_error *err) {
    const char *p[] = {job_id};
    char missing[160];
    snprintf(missing, sizeof missing,
             "no pending or running import job with id %s (a range of a split job is "
             "cancelled with its split job)",
             job_id);
    char *commit = one_value(conninfo,
                             "SELECT coalesce(run_parameters->'progress'->'checkpoint'->>"
                             "'commit_id', '') FROM dsa_jobs.analysis_runs WHERE id::text = $1 "
                             "AND run_type = 'import' AND status IN ('pending', 'running') "
                             "AND parent_run_id IS NULL",
                             1, p, missing, err);
    if (!commit)
        return -1;
    di_pg pg;
    int rc = di_pg_connect(&pg, conninfo, err);
    if (rc == 0) /* a split job's ranges first: none commits after its commit is gone */
        rc = di_pg_cmd(&pg,
                       "UPDATE dsa_jobs.analysis_runs SET status = 'failed', completed_at = "
                       "now(), error_message = 'cancelled by user (its split job)', "
                       "worker_id = NULL, lease_expires_at = NULL "
                       "WHERE parent_run_id::text = $1 AND status IN ('pending', 'running')",
                       1, p, err);
    if (rc == 0) {
        rc = di_catalog_fail(&pg, job_id, NULL, commit, "cancelled by user", err);
        di_pg_close(&pg);
    }
    free(commit);
    return rc;
}

int di_jobs_retry(const char *conninfo, const char *job_id, di_error *err) {
    const char *p[] = {job_id};
    char missing[160];
    snprintf(missing, sizeof missing, "no failed import job with id %s", job_id);
    char *id = one_value(conninfo,
                         "WITH ranges AS (DELETE FROM dsa_jobs.analysis_runs WHERE "
                         "parent_run_id IN (SELECT id FROM dsa_jobs.analysis_runs WHERE "
                         "id::text = $1 AND status = 'failed')) " /* a split job splits anew */
                         "UPDATE dsa_jobs.analysis_runs SET status = 'pending', attempts = 0, "
                         "error_message = NULL, completed_at = NULL, next_attempt_at = NULL, "
                         "worker_id = NULL, lease_expires_at = NULL, source_commit_id = NULL, "
                         "run_parameters = run_parameters - 'progress' - 'split' "
                         "WHERE id::text = $1 AND run_type = 'import' AND status = 'failed' "
                         "AND parent_run_id IS NULL RETURNING id::text",
                         1, p, missing, err);
    free(id);
    return id ? 0 : -1;
}
