/* create.c - a new import job: the dataset (created when missing) and the
 * queue row with the request in run_parameters (DESIGN §4), claimed at once by
 * the creating process. */
#include "job/create.h"
#include "dsa_ingest/job.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* is_number tells a dataset id (an integer column) from a dataset name. */
static int is_number(const char *s) {
    size_t n = strspn(s, "0123456789");
    return n > 0 && n < 10 && s[n] == '\0';
}

/* resolve_dataset finds the dataset by id or name, creating a named one that
 * does not exist yet (under a lock, so two imports make one dataset). */
static int resolve_dataset(di_pg *pg, const char *dataset, char out[24], di_error *err) {
    const char *p[] = {dataset};
    const char *sql = is_number(dataset)
                          ? "SELECT id FROM dsa_core.datasets WHERE id = $1::integer"
                          : "SELECT id FROM dsa_core.datasets WHERE name = $1 ORDER BY id LIMIT 1";
    if (!is_number(dataset) &&
        di_pg_cmd(pg, "SELECT pg_advisory_xact_lock(hashtext('dsa-ingest:dataset:' || $1))", 1, p,
                  err))
        return -1;
    PGresult *r = di_pg_exec(pg, sql, 1, p, err);
    if (!r)
        return -1;
    if (PQntuples(r) == 0 && is_number(dataset)) {
        PQclear(r);
        return di_error_set(err, DI_ERR_CONFIG, "no dataset with id %s", dataset);
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        r = di_pg_exec(pg, "INSERT INTO dsa_core.datasets (name) VALUES ($1) RETURNING id", 1, p,
                       err);
        if (!r)
            return -1;
    }
    snprintf(out, 24, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* basename_of gives the object's file name: the URL's last path segment. */
static void basename_of(const char *url, char *out, size_t outsz) {
    size_t end = strcspn(url, "?#");
    size_t start = end;
    while (start > 0 && url[start - 1] != '/')
        start--;
    snprintf(out, outsz, "%.*s", (int)(end - start), url + start);
}

/* request_json renders the request as run_parameters (caller frees). */
static char *request_json(const di_import_request *req) {
    char filename[512], msg[1024];
    basename_of(req->source, filename, sizeof filename);
    snprintf(msg, sizeof msg, "%s", req->message ? req->message : "");
    if (!req->message)
        snprintf(msg, sizeof msg, "Import %s", filename);
    cJSON *rp = cJSON_CreateObject();
    cJSON_AddStringToObject(rp, "source", req->source);
    cJSON_AddStringToObject(rp, "target_ref", req->ref ? req->ref : "main");
    cJSON_AddStringToObject(rp, "commit_message", msg);
    cJSON_AddStringToObject(rp, "mode", req->mode ? req->mode : "snapshot");
    cJSON_AddStringToObject(rp, "format", req->format ? req->format : "auto");
    cJSON_AddStringToObject(rp, "compression", req->compression ? req->compression : "auto");
    cJSON_AddStringToObject(rp, "filename", filename);
    if (req->origin)
        cJSON_AddStringToObject(rp, "origin", req->origin);
    cJSON *o = cJSON_AddObjectToObject(rp, "options");
    if (req->delimiter) {
        char d[2] = {req->delimiter, 0};
        cJSON_AddStringToObject(o, "delimiter", d);
    }
    if (req->header >= 0)
        cJSON_AddBoolToObject(o, "header", req->header);
    cJSON_AddNumberToObject(o, "max_errors", (double)req->max_errors);
    if (req->encoding)
        cJSON_AddStringToObject(o, "encoding", req->encoding);
    if (req->batch_size > 0)
        cJSON_AddNumberToObject(o, "batch_size", (double)req->batch_size);
    char *s = cJSON_PrintUnformatted(rp);
    cJSON_Delete(rp);
    return s;
}

/* insert_job writes the queue row: claimed by owner (running, with a lease)
 * or queued (pending; the table's trigger sends NOTIFY dsa_import_jobs). */
static int insert_job(di_pg *pg, const char *dataset_id, const char *params, const char *owner,
                      long lease_s, char job_id[37], di_error *err) {
    char lease[24];
    snprintf(lease, sizeof lease, "%ld", lease_s);
    const char *p[] = {dataset_id, params, owner, lease};
    PGresult *r = di_pg_exec(pg,
                             "INSERT INTO dsa_jobs.analysis_runs (run_type, status, dataset_id, "
                             "run_parameters, worker_id, lease_expires_at, attempts) "
                             "VALUES ('import', CASE WHEN $3::text IS NULL THEN 'pending' "
                             "ELSE 'running' END::dsa_jobs.analysis_run_status, $1, $2::jsonb, "
                             "$3, CASE WHEN $3::text IS NULL THEN NULL "
                             "ELSE now() + make_interval(secs => $4::int) END, "
                             "CASE WHEN $3::text IS NULL THEN 0 ELSE 1 END) RETURNING id",
                             4, p, err);
    if (!r)
        return -1;
    snprintf(job_id, 37, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int di_job_insert(di_pg *pg, const char *dataset, const char *params, const char *owner,
                  long lease_s, char job_id[37], di_error *err) {
    char dataset_id[24];
    return resolve_dataset(pg, dataset, dataset_id, err) ||
                   insert_job(pg, dataset_id, params, owner, lease_s, job_id, err)
               ? -1
               : 0;
}

int di_job_create(const char *conninfo, const di_import_request *req, const char *owner,
                  long lease_s, char job_id[37], di_error *err) {
    di_pg pg;
    char *params = request_json(req);
    if (!params)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    int rc = di_pg_connect(&pg, conninfo, err);
    if (rc == 0) {
        rc = di_pg_cmd(&pg, "BEGIN", 0, NULL, err) ||
             di_job_insert(&pg, req->dataset, params, owner, lease_s, job_id, err) ||
             di_pg_cmd(&pg, "COMMIT", 0, NULL, err);
        if (rc)
            di_pg_rollback(&pg);
        di_pg_close(&pg);
    }
    free(params);
    return rc ? -1 : 0;
}
