/* catalog.c - the job row, commits and refs (SQL in one place, parameterised).
 * Publishing and failing are each one transaction, so no half-published state
 * is ever visible: a ref moves only together with the job's completion. */
#include "job/catalog.h"

#include "dsa_ingest/parse.h"
#include "job/stage.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void di_job_row_cleanup(di_job_row *j) {
    free(j->run_parameters);
    free(j->output_summary);
    j->run_parameters = NULL;
    j->output_summary = NULL;
}

/* copy_str copies a string member of o into out, def when absent. */
static void copy_str(const cJSON *o, const char *key, const char *def, char *out, size_t outsz) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(out, outsz, "%s", cJSON_IsString(v) ? v->valuestring : def);
}

/* parse_params reads the request out of run_parameters (DESIGN §4). */
static int parse_params(di_job_row *j, di_error *err) {
    cJSON *rp = cJSON_Parse(j->run_parameters);
    if (!rp)
        return di_error_set(err, DI_ERR_CONFIG, "job %s: run_parameters are not JSON", j->id);
    copy_str(rp, "source", "", j->source, sizeof j->source);
    copy_str(rp, "target_ref", "main", j->ref, sizeof j->ref);
    copy_str(rp, "commit_message", "", j->message, sizeof j->message);
    copy_str(rp, "mode", "snapshot", j->mode, sizeof j->mode);
    copy_str(rp, "format", "auto", j->format, sizeof j->format);
    copy_str(rp, "compression", "auto", j->compression, sizeof j->compression);
    copy_str(rp, "origin", "", j->origin, sizeof j->origin);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(rp, "options");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "delimiter");
    if (cJSON_IsString(d) && d->valuestring[0] && !di_delimiter_ok(d->valuestring)) {
        size_t given = strlen(d->valuestring); /* d goes with rp */
        cJSON_Delete(rp);
        return di_error_set(
            err, DI_ERR_CONFIG,
            "job %s: options.delimiter must be one ASCII character (%zu bytes given)", j->id,
            given);
    }
    j->delimiter = cJSON_IsString(d) && d->valuestring[0] ? d->valuestring[0] : 0;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "header");
    j->header = cJSON_IsBool(h) ? cJSON_IsTrue(h) : -1;
    const cJSON *me = cJSON_GetObjectItemCaseSensitive(o, "max_errors");
    j->max_errors = cJSON_IsNumber(me) && me->valuedouble > 0 ? (long)me->valuedouble : 0;
    copy_str(o, "encoding", "", j->encoding, sizeof j->encoding);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "batch_size");
    j->batch_size = cJSON_IsNumber(b) && b->valuedouble >= 1 ? (long)b->valuedouble : 0;
    cJSON_Delete(rp);
    if (!j->source[0])
        return di_error_set(err, DI_ERR_CONFIG, "job %s has no run_parameters.source", j->id);
    return 0;
}

/* dup_value copies a result field, NULL for SQL NULL. */
static char *dup_value(PGresult *r, int col) {
    return PQgetisnull(r, 0, col) ? NULL : strdup(PQgetvalue(r, 0, col));
}

int di_catalog_load_job(di_pg *pg, const char *id, di_job_row *j, di_error *err) {
    memset(j, 0, sizeof *j);
    const char *p[] = {id};
    PGresult *r = di_pg_exec(pg,
                             "SELECT id, status, coalesce(dataset_id, 0), "
                             "coalesce(source_commit_id, ''), run_parameters::text, "
                             "output_summary::text, coalesce(error_message, ''), "
                             "coalesce(worker_id, ''), attempts "
                             "FROM dsa_jobs.analysis_runs "
                             "WHERE id::text = $1 AND run_type = 'import'",
                             1, p, err);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return di_error_set(err, DI_ERR_CONFIG, "no import job with id %s", id);
    }
    snprintf(j->id, sizeof j->id, "%s", PQgetvalue(r, 0, 0));
    snprintf(j->status, sizeof j->status, "%s", PQgetvalue(r, 0, 1));
    j->dataset_id = strtol(PQgetvalue(r, 0, 2), NULL, 10);
    snprintf(j->parent, sizeof j->parent, "%s", PQgetvalue(r, 0, 3));
    j->run_parameters = dup_value(r, 4);
    j->output_summary = dup_value(r, 5);
    snprintf(j->error_message, sizeof j->error_message, "%s", PQgetvalue(r, 0, 6));
    snprintf(j->worker_id, sizeof j->worker_id, "%s", PQgetvalue(r, 0, 7));
    j->attempts = strtol(PQgetvalue(r, 0, 8), NULL, 10);
    PQclear(r);
    if (!j->run_parameters)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    return parse_params(j, err);
}

int di_catalog_fenced(di_pg *pg, const char *sql, int n, const char *const *params,
                      const char *job_id, const char *owner, di_error *err) {
    long hit = 0;
    if (di_pg_count(pg, sql, n, params, &hit, err))
        return -1;
    if (hit == 1)
        return 0;
    di_error_set(err, DI_ERR_TRANSIENT,
                 "job %s is no longer held by %s (lease lost or job cancelled): nothing more "
                 "is written",
                 job_id, owner ? owner : "anyone");
    err->code = DI_CODE_LEASE_LOST;
    return -1;
}

/* new_commit_id makes a 64-hex commit id from fresh randomness and the job id. */
static int new_commit_id(di_pg *pg, const char *job_id, char out[65], di_error *err) {
    const char *p[] = {job_id};
    PGresult *r = di_pg_exec(pg,
                             "SELECT encode(sha256(convert_to($1 || gen_random_uuid()::text "
                             "|| clock_timestamp()::text, 'UTF8')), 'hex')",
                             1, p, err);
    if (!r)
        return -1;
    snprintf(out, 65, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* read_parent reads the ref's head into j->parent ("" when the ref is new). */
static int read_parent(di_pg *pg, di_job_row *j, di_error *err) {
    char ds[24];
    snprintf(ds, sizeof ds, "%ld", j->dataset_id);
    const char *p[] = {ds, j->ref};
    PGresult *r = di_pg_exec(pg,
                             "SELECT coalesce(commit_id, '') FROM dsa_core.refs "
                             "WHERE dataset_id = $1 AND name = $2",
                             2, p, err);
    if (!r)
        return -1;
    snprintf(j->parent, sizeof j->parent, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return 0;
}

/* insert_commit records the job's commit, unreachable from any ref until finish. */
static int insert_commit(di_pg *pg, const di_job_row *j, const char *commit_id, di_error *err) {
    char ds[24];
    snprintf(ds, sizeof ds, "%ld", j->dataset_id);
    const char *p[] = {commit_id, ds, j->parent[0] ? j->parent : NULL, j->message};
    return di_pg_cmd(pg,
                     "INSERT INTO dsa_core.commits (commit_id, dataset_id, parent_commit_id, "
                     "message) VALUES ($1, $2, $3, $4)",
                     4, p, err);
}

int di_catalog_start(di_pg *pg, di_job_row *j, di_checkpoint *cp, di_error *err) {
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) || read_parent(pg, j, err) ||
        new_commit_id(pg, j->id, cp->commit_id, err) || insert_commit(pg, j, cp->commit_id, err))
        goto fail;
    char *progress = di_progress_json(cp, "running", j->source);
    if (!progress) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    const char *p[] = {j->id, j->parent[0] ? j->parent : NULL, progress, j->owner};
    int rc =
        di_catalog_fenced(pg,
                          "UPDATE dsa_jobs.analysis_runs SET source_commit_id = $2, "
                          "run_parameters = jsonb_set(run_parameters, '{progress}', $3::jsonb) "
                          "WHERE id = $1 AND status = 'running' AND worker_id = $4",
                          4, p, j->id, j->owner, err);
    free(progress);
    if (rc || di_pg_cmd(pg, "COMMIT", 0, NULL, err))
        goto fail;
    return 0;
fail:
    di_pg_rollback(pg);
    cp->commit_id[0] = '\0';
    return -1;
}

/* carry_parent_tables: in update mode, the parent's tables not imported now
 * are carried into the new commit unchanged. */
static int carry_parent_tables(di_pg *pg, const di_job_row *j, const di_checkpoint *cp,
                               di_error *err) {
    if (strcmp(j->mode, "update") != 0 || !j->parent[0])
        return 0;
    cJSON *keys = cJSON_CreateArray();
    for (size_t i = 0; i < cp->profile.ntables; i++)
        cJSON_AddItemToArray(keys, cJSON_CreateString(cp->profile.tables[i].key));
    char *imported = cJSON_PrintUnformatted(keys);
    cJSON_Delete(keys);
    if (!imported)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    const char *p[] = {cp->commit_id, j->parent, imported};
    int rc = di_pg_cmd(pg,
                       "INSERT INTO dsa_core.commit_rows (commit_id, logical_row_id, row_hash) "
                       "SELECT $1, logical_row_id, row_hash FROM dsa_core.commit_rows "
                       "WHERE commit_id = $2 "
                       "AND regexp_replace(logical_row_id, ':[0-9]+$', '') NOT IN "
                       "(SELECT jsonb_array_elements_text($3::jsonb))",
                       3, p, err);
    free(imported);
    return rc;
}

/* move_ref moves the ref from the parent to the new commit, or creates it when
 * the job started on a new ref; anything else means another writer won. */
static int move_ref(di_pg *pg, const di_job_row *j, const char *commit_id, di_error *err) {
    char ds[24];
    snprintf(ds, sizeof ds, "%ld", j->dataset_id);
    const char *p[] = {ds, j->ref, commit_id, j->parent[0] ? j->parent : NULL};
    long n = 0;
    if (di_pg_long(pg,
                   "WITH moved AS (UPDATE dsa_core.refs SET commit_id = $3 "
                   "  WHERE dataset_id = $1 AND name = $2 "
                   "  AND commit_id IS NOT DISTINCT FROM $4 RETURNING 1), "
                   "created AS (INSERT INTO dsa_core.refs (dataset_id, name, commit_id) "
                   "  SELECT $1, $2, $3 WHERE $4::text IS NULL "
                   "  AND NOT EXISTS (SELECT 1 FROM moved) "
                   "  ON CONFLICT (dataset_id, name) DO NOTHING RETURNING 1) "
                   "SELECT (SELECT count(*) FROM moved) + (SELECT count(*) FROM created)",
                   4, p, &n, err))
        return -1;
    if (n != 1)
        return di_error_set(err, DI_ERR_CONFIG,
                            "ref %s moved while the import ran (it no longer points at %s): "
                            "nothing was published",
                            j->ref, j->parent[0] ? j->parent : "nothing");
    return 0;
}

/* complete_job stores the schema and completes the job; the summary gets the
 * row differences against the parent, counted in the same transaction. */
static int complete_job(di_pg *pg, const di_job_row *j, const char *commit_id, const char *progress,
                        const char *summary, const char *schema, di_error *err) {
    const char *ps[] = {commit_id, schema};
    if (di_pg_cmd(pg,
                  "INSERT INTO dsa_core.commit_schemas (commit_id, schema_definition) "
                  "VALUES ($1, $2::jsonb) ON CONFLICT (commit_id) DO UPDATE "
                  "SET schema_definition = EXCLUDED.schema_definition",
                  2, ps, err) ||
        di_pg_cmd(pg, "UPDATE dsa_core.commits SET committed_at = now() WHERE commit_id = $1", 1,
                  ps, err))
        return -1;
    const char *p[] = {j->id,   progress, summary, commit_id, j->parent[0] ? j->parent : NULL,
                       j->owner};
    return di_catalog_fenced(
        pg,
        "WITH n AS (SELECT logical_row_id, row_hash FROM dsa_core.commit_rows WHERE commit_id = "
        "$4),"
        " o AS (SELECT logical_row_id, row_hash FROM dsa_core.commit_rows WHERE commit_id = $5),"
        " d AS (SELECT count(*) FILTER (WHERE o.logical_row_id IS NULL) AS added,"
        "   count(*) FILTER (WHERE n.logical_row_id IS NULL) AS removed,"
        "   count(*) FILTER (WHERE n.row_hash <> o.row_hash) AS changed"
        "   FROM n FULL JOIN o USING (logical_row_id)) "
        "UPDATE dsa_jobs.analysis_runs SET status = 'completed', completed_at = now(), "
        " error_message = NULL, "
        " run_parameters = jsonb_set(run_parameters, '{progress}', $2::jsonb), "
        " output_summary = $3::jsonb || jsonb_build_object('rows_added', d.added, "
        "   'rows_removed', d.removed, 'rows_changed', d.changed) "
        "FROM d WHERE id = $1 AND status = 'running' AND worker_id = $6",
        6, p, j->id, j->owner, err);
}

int di_catalog_finish(di_pg *pg, di_job_row *j, const di_checkpoint *cp, const char *progress_json,
                      const char *summary_json, const char *schema_json, di_error *err) {
    /* A staged load's tables go first: DROP waits for their locks, and every
     * transaction that takes them takes the job row's after them. */
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) ||
        (cp->stage.parts && di_stage_drop(pg, j->id, err)) || carry_parent_tables(pg, j, cp, err) ||
        move_ref(pg, j, cp->commit_id, err) ||
        complete_job(pg, j, cp->commit_id, progress_json, summary_json, schema_json, err) ||
        di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        return -1;
    }
    return 0;
}

/* mark_failed fails the job first, fenced: only while owner (or, with NULL,
 * anyone) holds it, so a worker that lost its job never removes rows another
 * worker now writes. */
static int mark_failed(di_pg *pg, const char *job_id, const char *owner, const char *message,
                       di_error *err) {
    const char *p[] = {job_id, message, owner};
    return di_catalog_fenced(pg,
                             "UPDATE dsa_jobs.analysis_runs SET status = 'failed', "
                             "completed_at = now(), error_message = $2, worker_id = NULL, "
                             "lease_expires_at = NULL, run_parameters = jsonb_set(run_parameters, "
                             "'{progress,status}', '\"failed\"', true) WHERE id = $1 "
                             "AND status <> 'completed' AND ($3::text IS NULL OR worker_id = $3)",
                             3, p, job_id, owner, err);
}

int di_catalog_remove_commit(di_pg *pg, const char *commit_id, di_error *err) {
    const char *p[] = {commit_id};
    if (!commit_id || !commit_id[0])
        return 0;
    return di_pg_cmd(pg, "DELETE FROM dsa_core.commit_rows WHERE commit_id = $1", 1, p, err) ||
           di_pg_cmd(pg, "DELETE FROM dsa_core.commit_schemas WHERE commit_id = $1", 1, p, err) ||
           di_pg_cmd(pg,
                     "DELETE FROM dsa_core.commits c WHERE commit_id = $1 AND NOT EXISTS "
                     "(SELECT 1 FROM dsa_core.refs r WHERE r.commit_id = c.commit_id)",
                     1, p, err);
}

int di_catalog_fail(di_pg *pg, const char *job_id, const char *owner, const char *commit_id,
                    const char *message, di_error *err) {
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) || di_stage_drop(pg, job_id, err) ||
        mark_failed(pg, job_id, owner, message, err) ||
        di_catalog_remove_commit(pg, commit_id, err) || di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        return -1;
    }
    return 0;
}
