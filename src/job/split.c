/* split.c - a job split into range jobs: creating them, chaining their
 * counts, completing and failing them (split.h). Every step that reads or
 * writes more than one of the jobs first locks the parent's row, so the
 * ranges of one job take these steps one at a time and always lock in the
 * same order (parent, then ranges). */
#include "job/split.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "job/queue.h"

/* The worker id a split parent waits under: no worker renews it, no claim
 * takes it (its lease never expires) and its ref stays busy. */
#define PARKED "split"

/* num reads a number member, def when absent. */
static int64_t num(const cJSON *o, const char *key, int64_t def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

/* str copies a string member into out ("" when absent). */
static void str(const cJSON *o, const char *key, char *out, size_t outsz) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(out, outsz, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* parse_names copies the range's column names. */
static int parse_names(di_range *rg, const cJSON *names) {
    int n = cJSON_GetArraySize(names);
    if (n <= 0)
        return 0;
    rg->names = calloc((size_t)n, sizeof *rg->names);
    if (!rg->names)
        return -1;
    const cJSON *v;
    cJSON_ArrayForEach(v, names) {
        if (!cJSON_IsString(v) || !(rg->names[rg->nnames] = strdup(v->valuestring)))
            return -1;
        rg->nnames++;
    }
    return 0;
}

/* parse_place reads phase one's outcome for this range, once known. */
static void parse_place(di_range *rg, const cJSON *place) {
    if (!cJSON_IsObject(place))
        return;
    rg->placed = 1;
    rg->start = num(place, "start", 0);
    rg->end = num(place, "end", 0);
    rg->first_row = num(place, "row", 1);
    rg->records = num(place, "records", 0);
}

int di_range_parse(di_range *rg, const char *run_parameters, di_error *err) {
    memset(rg, 0, sizeof *rg);
    cJSON *rp = cJSON_Parse(run_parameters);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(rp, "range");
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(rp);
        return 0;
    }
    rg->active = 1;
    str(o, "parent", rg->parent, sizeof rg->parent);
    str(o, "commit_id", rg->commit_id, sizeof rg->commit_id);
    str(o, "etag", rg->etag, sizeof rg->etag);
    char fmt[16], delim[8];
    str(o, "format", fmt, sizeof fmt);
    str(o, "delimiter", delim, sizeof delim);
    rg->index = (int)num(o, "index", 0);
    rg->count = (int)num(o, "count", 0);
    rg->from = num(o, "from", 0);
    rg->to = num(o, "to", 0);
    rg->size = num(o, "size", -1);
    rg->delimiter = delim[0];
    rg->header = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "header"));
    parse_place(rg, cJSON_GetObjectItemCaseSensitive(o, "place"));
    int rc = 0;
    if (di_format_parse(fmt, &rg->format) || !rg->parent[0] || !rg->commit_id[0])
        rc = di_error_set(err, DI_ERR_CONFIG, "run_parameters.range is incomplete");
    else if (parse_names(rg, cJSON_GetObjectItemCaseSensitive(o, "names")))
        rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    cJSON_Delete(rp);
    return rc;
}

void di_range_cleanup(di_range *rg) {
    for (size_t i = 0; i < rg->nnames; i++)
        free(rg->names[i]);
    free(rg->names);
    memset(rg, 0, sizeof *rg);
}

int di_split_ranges(const char *run_parameters) {
    cJSON *rp = cJSON_Parse(run_parameters);
    int n = (int)num(cJSON_GetObjectItemCaseSensitive(rp, "split"), "ranges", 0);
    cJSON_Delete(rp);
    return n;
}

int di_split_wanted(const di_settings *s, const di_job_row *j, int64_t size, di_format format,
                    di_compression comp, int64_t member) {
    int utf8 = !j->encoding[0] || strcasecmp(j->encoding, "utf-8") == 0 ||
               strcasecmp(j->encoding, "utf8") == 0;
    int text = format == DI_FMT_CSV || format == DI_FMT_TSV || format == DI_FMT_NDJSON;
    /* rejects are counted against --max-errors by one reader only */
    return s->split_min_bytes > 0 && size >= s->split_min_bytes && size > s->split_range_bytes &&
           text && comp == DI_COMP_NONE && member < 0 && utf8 && j->max_errors == 0;
}

/* base_params is the ranges' run_parameters without their range: the
 * parent's request with the dialect it resolved, so no range sniffs again. */
static char *base_params(const di_job_row *j, const di_checkpoint *cp) {
    cJSON *rp = cJSON_Parse(j->run_parameters);
    if (!rp)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(rp, "progress");
    cJSON_DeleteItemFromObjectCaseSensitive(rp, "split");
    cJSON_DeleteItemFromObjectCaseSensitive(rp, "format");
    cJSON_DeleteItemFromObjectCaseSensitive(rp, "compression");
    cJSON_AddStringToObject(rp, "format", di_format_name(cp->pos.format));
    cJSON_AddStringToObject(rp, "compression", "none");
    char *out = cJSON_PrintUnformatted(rp);
    cJSON_Delete(rp);
    return out;
}

/* range_common is what every range's run_parameters.range holds. */
static char *range_common(const di_job_row *j, const di_checkpoint *cp, const di_split_plan *pl,
                          int n) {
    cJSON *o = cJSON_CreateObject();
    char delim[2] = {cp->pos.delimiter, '\0'};
    cJSON_AddStringToObject(o, "parent", j->id);
    cJSON_AddNumberToObject(o, "count", n);
    cJSON_AddStringToObject(o, "commit_id", cp->commit_id);
    cJSON_AddStringToObject(o, "etag", cp->etag);
    cJSON_AddNumberToObject(o, "size", (double)cp->size);
    cJSON_AddStringToObject(o, "format", di_format_name(cp->pos.format));
    cJSON_AddStringToObject(o, "delimiter", delim);
    cJSON_AddBoolToObject(o, "header", cp->pos.header > 0);
    cJSON_AddNumberToObject(o, "data_start", (double)pl->data_start);
    cJSON_AddNumberToObject(o, "first_row", (double)pl->first_row);
    cJSON *names = cJSON_AddArrayToObject(o, "names");
    for (size_t i = 0; i < pl->nnames; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(pl->names[i]));
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

/* park_and_queue writes the parent's progress and split, releases it, and
 * queues the ranges, in the caller's transaction. */
static int park_and_queue(di_pg *pg, const di_job_row *j, const char *progress, const char *split,
                          const char *base, const char *common, const di_split_plan *pl, int n,
                          int64_t size, di_error *err) {
    const char *pp[] = {j->id, progress, split, j->owner};
    if (di_catalog_fenced(pg,
                          "UPDATE dsa_jobs.analysis_runs SET worker_id = '" PARKED "', "
                          "lease_expires_at = 'infinity', run_parameters = jsonb_set(jsonb_set("
                          "run_parameters, '{progress}', $2::jsonb), '{split}', $3::jsonb) "
                          "WHERE id = $1 AND status = 'running' AND worker_id = $4",
                          4, pp, j->id, j->owner, err))
        return -1;
    char rb[24], sz[24], cnt[16];
    snprintf(rb, sizeof rb, "%lld", (long long)pl->range_bytes);
    snprintf(sz, sizeof sz, "%lld", (long long)size);
    snprintf(cnt, sizeof cnt, "%d", n);
    const char *p[] = {j->id, base, common, rb, sz, cnt};
    return di_pg_cmd(
        pg,
        "INSERT INTO dsa_jobs.analysis_runs (run_type, status, dataset_id, user_id, "
        "run_parameters, parent_run_id) "
        "SELECT 'import', 'pending', p.dataset_id, p.user_id, $2::jsonb || jsonb_build_object("
        "'range', $3::jsonb || jsonb_build_object('index', i, 'from', i * $4::bigint, "
        "'to', least((i + 1) * $4::bigint, $5::bigint))), p.id "
        "FROM dsa_jobs.analysis_runs p, generate_series(0, $6::int - 1) AS i WHERE p.id = $1 "
        "ORDER BY i",
        6, p, err);
}

int di_split_create(di_pg *pg, const di_job_row *j, const di_checkpoint *cp,
                    const di_split_plan *pl, int *nranges, di_error *err) {
    int n = (int)((cp->size + pl->range_bytes - 1) / pl->range_bytes);
    char split[160];
    snprintf(split, sizeof split, "{\"ranges\": %d, \"range_bytes\": %lld}", n,
             (long long)pl->range_bytes);
    char *progress = di_progress_json(cp, "running", j->source);
    char *base = base_params(j, cp);
    char *common = range_common(j, cp, pl, n);
    int rc;
    if (!progress || !base || !common)
        rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    else if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) ||
             park_and_queue(pg, j, progress, split, base, common, pl, n, cp->size, err) ||
             di_pg_cmd(pg, "COMMIT", 0, NULL, err))
        rc = -1;
    else
        rc = 0;
    if (rc)
        di_pg_rollback(pg);
    free(progress);
    free(base);
    free(common);
    *nranges = n;
    return rc;
}

int di_split_open(di_pg *pg, const char *parent, long *left, di_error *err) {
    const char *p[] = {parent};
    return di_pg_long(pg,
                      "SELECT count(*) FROM dsa_jobs.analysis_runs "
                      "WHERE parent_run_id = $1 AND status <> 'completed'",
                      1, p, left, err);
}

int di_split_park(di_pg *pg, const di_job_row *j, di_error *err) {
    const char *p[] = {j->id, j->owner};
    return di_catalog_fenced(pg,
                             "UPDATE dsa_jobs.analysis_runs SET worker_id = '" PARKED "', "
                             "lease_expires_at = 'infinity' "
                             "WHERE id = $1 AND status = 'running' AND worker_id = $2",
                             2, p, j->id, j->owner, err);
}

/* merge_one adds one range's checkpoint into cp. */
static int merge_one(di_checkpoint *cp, const char *run_parameters, di_error *err) {
    di_checkpoint part;
    di_checkpoint_init(&part);
    int rc = di_checkpoint_parse(&part, run_parameters, err);
    if (rc == 0 && di_profile_merge(&cp->profile, &part.profile))
        rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    cp->rows += part.rows;
    cp->batches += part.batches;
    di_checkpoint_cleanup(&part);
    return rc;
}

int di_split_merge(di_pg *pg, const char *parent, di_checkpoint *cp, di_error *err) {
    const char *p[] = {parent};
    PGresult *r = di_pg_exec(pg,
                             "SELECT run_parameters::text FROM dsa_jobs.analysis_runs "
                             "WHERE parent_run_id = $1 "
                             "ORDER BY (run_parameters->'range'->>'index')::int",
                             1, p, err);
    if (!r)
        return -1;
    di_profile_cleanup(&cp->profile);
    di_profile_init(&cp->profile);
    cp->rows = cp->batches = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = merge_one(cp, PQgetvalue(r, i, 0), err);
    PQclear(r);
    cp->bytes_read = cp->size;
    return rc;
}

/* lock_parent locks the parent's row; a parent no longer running (failed,
 * cancelled) stops the range like a lost lease. */
static int lock_parent(di_pg *pg, const di_job_row *j, const di_range *rg, di_error *err) {
    const char *p[] = {rg->parent};
    PGresult *r = di_pg_exec(pg,
                             "SELECT 1 FROM dsa_jobs.analysis_runs WHERE id = $1 "
                             "AND status = 'running' FOR UPDATE",
                             1, p, err);
    if (!r)
        return -1;
    int n = PQntuples(r);
    PQclear(r);
    if (n == 1)
        return 0;
    di_error_set(err, DI_ERR_TRANSIENT, "job %s: its split job %s is no longer running", j->id,
                 rg->parent);
    err->code = DI_CODE_LEASE_LOST;
    return -1;
}

/* framing_json renders phase one's outcome: per start state, [end state,
 * record starts, first boundary (-1: none)]. */
static char *framing_json(const di_frame *f) {
    cJSON *a = cJSON_CreateArray();
    for (int s = 0; s < di_frame_states(f->kind); s++) {
        di_frame_result fr;
        di_frame_get(f, s, &fr);
        cJSON *e = cJSON_CreateArray();
        cJSON_AddItemToArray(e, cJSON_CreateNumber(fr.end_state));
        cJSON_AddItemToArray(e, cJSON_CreateNumber((double)fr.starts));
        cJSON_AddItemToArray(e, cJSON_CreateNumber((double)fr.first));
        cJSON_AddItemToArray(a, e);
    }
    char *out = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return out;
}

/* read_framing fills a range's per-state results from its framing JSON. */
static int read_framing(di_frame_range *fr, int64_t from, const cJSON *framing) {
    int n = cJSON_GetArraySize(framing);
    if (n <= 0 || n > DI_FRAME_MAX_STATES)
        return -1;
    fr->offset = from;
    for (int s = 0; s < n; s++) {
        const cJSON *e = cJSON_GetArrayItem(framing, s);
        if (cJSON_GetArraySize(e) != 3)
            return -1;
        fr->out[s].end_state = (int)cJSON_GetArrayItem(e, 0)->valuedouble;
        fr->out[s].starts = (int64_t)cJSON_GetArrayItem(e, 1)->valuedouble;
        fr->out[s].first = (int64_t)cJSON_GetArrayItem(e, 2)->valuedouble;
        if (fr->out[s].end_state < 0 || fr->out[s].end_state >= n)
            return -1;
    }
    return 0;
}

/* places_json chains the ranges (di_frame_chain: each starts in the state
 * the one before it ended in) and renders each one's place, in index order:
 * its records run from its first boundary to where the next range with a
 * boundary starts, or the end of the object. The first range loads from the
 * first data record, after the header that its counts include. */
static char *places_json(di_frame_range *fr, int n, int64_t size, int64_t data_start,
                         int64_t first_row) {
    di_frame_chain(fr, (size_t)n, DI_FRAME_R, 1);
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < n; k++)
        cJSON_AddItemToArray(a, cJSON_CreateObject());
    int64_t next = size;
    for (int k = n - 1; k >= 0; k--) {
        int64_t start = fr[k].boundary >= 0 ? fr[k].boundary : next;
        int64_t row = fr[k].first_row, records = fr[k].records;
        if (k == 0) {
            records -= first_row - row;
            start = data_start;
            row = first_row;
        }
        cJSON *o = cJSON_GetArrayItem(a, k);
        cJSON_AddNumberToObject(o, "start", (double)start);
        cJSON_AddNumberToObject(o, "end", (double)next);
        cJSON_AddNumberToObject(o, "row", (double)row);
        cJSON_AddNumberToObject(o, "records", (double)records);
        next = start;
    }
    char *out = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return out;
}

/* place_all runs when every range is counted (res: their range objects in
 * index order): it places them and makes them due for phase two. */
static int place_all(di_pg *pg, const di_range *rg, PGresult *res, di_error *err) {
    int n = PQntuples(res);
    di_frame_range *fr = calloc((size_t)n, sizeof *fr);
    int rc = fr ? 0 : di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    int64_t data_start = 0, first_row = 1;
    for (int k = 0; rc == 0 && k < n; k++) {
        cJSON *o = cJSON_Parse(PQgetvalue(res, k, 0));
        if (read_framing(&fr[k], num(o, "from", 0), cJSON_GetObjectItemCaseSensitive(o, "framing")))
            rc = di_error_set(err, DI_ERR_INTERNAL, "job %s: range %d's framing is malformed",
                              rg->parent, k + 1);
        if (k == 0) {
            data_start = num(o, "data_start", 0);
            first_row = num(o, "first_row", 1);
        }
        cJSON_Delete(o);
    }
    char *places = rc == 0 ? places_json(fr, n, rg->size, data_start, first_row) : NULL;
    const char *p[] = {rg->parent, places};
    if (rc == 0 && !places)
        rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    if (rc == 0)
        rc = di_pg_cmd(pg,
                       "UPDATE dsa_jobs.analysis_runs c SET next_attempt_at = now(), "
                       "run_parameters = jsonb_set(c.run_parameters, '{range,place}', x.place) "
                       "FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(place, n) "
                       "WHERE c.parent_run_id = $1 AND c.status = 'pending' "
                       "AND (c.run_parameters->'range'->>'index')::int = x.n - 1",
                       2, p, err);
    free(places);
    free(fr);
    return rc;
}

/* place_if_all_counted places the ranges once none lacks its framing. */
static int place_if_all_counted(di_pg *pg, const di_range *rg, di_error *err) {
    const char *p[] = {rg->parent};
    PGresult *r = di_pg_exec(pg,
                             "SELECT run_parameters->'range', run_parameters->'range' ? 'framing' "
                             "FROM dsa_jobs.analysis_runs WHERE parent_run_id = $1 "
                             "ORDER BY (run_parameters->'range'->>'index')::int",
                             1, p, err);
    if (!r)
        return -1;
    int all = PQntuples(r) == rg->count;
    for (int k = 0; all && k < PQntuples(r); k++)
        all = strcmp(PQgetvalue(r, k, 1), "t") == 0;
    int rc = all ? place_all(pg, rg, r, err) : 0;
    PQclear(r);
    return rc;
}

int di_split_counted(di_pg *pg, const di_job_row *j, const di_range *rg, const di_frame *f,
                     di_error *err) {
    char *framing = framing_json(f);
    if (!framing)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    const char *p[] = {j->id, framing, j->owner};
    int rc = di_pg_cmd(pg, "BEGIN", 0, NULL, err) || lock_parent(pg, j, rg, err) ||
             di_catalog_fenced(pg,
                               "UPDATE dsa_jobs.analysis_runs SET status = 'pending', "
                               "worker_id = NULL, lease_expires_at = NULL, attempts = 0, "
                               "next_attempt_at = 'infinity', run_parameters = jsonb_set("
                               "run_parameters, '{range,framing}', $2::jsonb) "
                               "WHERE id = $1 AND status = 'running' AND worker_id = $3",
                               3, p, j->id, j->owner, err) ||
             place_if_all_counted(pg, rg, err) || di_pg_cmd(pg, "COMMIT", 0, NULL, err);
    if (rc)
        di_pg_rollback(pg);
    free(framing);
    return rc ? -1 : 0;
}

/* parent_progress_sql brings the split job's progress up to the ranges
 * completed so far (rows, bytes of the object they cover), so the job's
 * status, its event stream and the platform's monitoring queries see a big
 * import advance while its ranges run. */
static const char *const parent_progress_sql =
    "UPDATE dsa_jobs.analysis_runs p SET run_parameters = jsonb_set(p.run_parameters, "
    "'{progress}', coalesce(p.run_parameters->'progress', '{}') || jsonb_build_object("
    "'rows_processed', d.rows, 'bytes_read', d.bytes, 'ranges_completed', d.n, "
    "'updated_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "'percentage', round(100.0 * d.bytes / greatest(coalesce((p.run_parameters->'progress'->>"
    "'bytes_total')::numeric, 0), 1), 1))) "
    "FROM (SELECT count(*) AS n, coalesce(sum((output_summary->>'rows')::bigint), 0) AS rows, "
    "  coalesce(sum((output_summary->>'end')::bigint - (output_summary->>'start')::bigint), 0) "
    "  AS bytes FROM dsa_jobs.analysis_runs WHERE parent_run_id = $1 AND status = 'completed') d "
    "WHERE p.id = $1";

int di_split_range_done(di_pg *pg, const di_job_row *j, const di_range *rg, const char *progress,
                        const char *summary, int *publish, di_error *err) {
    char lease[24];
    snprintf(lease, sizeof lease, "%ld", j->lease_s);
    const char *p[] = {j->id, progress, summary, j->owner};
    const char *pp[] = {rg->parent, j->owner, lease};
    long took = 0;
    *publish = 0;
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) || lock_parent(pg, j, rg, err) ||
        di_catalog_fenced(pg,
                          "UPDATE dsa_jobs.analysis_runs SET status = 'completed', "
                          "completed_at = now(), error_message = NULL, "
                          "output_summary = $3::jsonb, "
                          "run_parameters = jsonb_set(run_parameters, '{progress}', $2::jsonb) "
                          "WHERE id = $1 AND status = 'running' AND worker_id = $4",
                          4, p, j->id, j->owner, err) ||
        di_pg_cmd(pg, parent_progress_sql, 1, pp, err) ||
        di_pg_count(pg,
                    "UPDATE dsa_jobs.analysis_runs p SET worker_id = $2, "
                    "lease_expires_at = now() + make_interval(secs => $3::int) "
                    "WHERE id = $1 AND worker_id = '" PARKED "' AND NOT EXISTS (SELECT 1 "
                    "FROM dsa_jobs.analysis_runs c WHERE c.parent_run_id = $1 "
                    "AND c.status <> 'completed')",
                    3, pp, &took, err) ||
        di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        return -1;
    }
    *publish = took == 1;
    return 0;
}

int di_split_fail(di_pg *pg, const di_job_row *j, const di_range *rg, const char *message,
                  di_error *err) {
    char parent_msg[1600];
    snprintf(parent_msg, sizeof parent_msg, "range %d of %d (job %s) failed: %s", rg->index + 1,
             rg->count, j->id, message);
    const char *p[] = {j->id, message, j->owner};
    const char *pp[] = {rg->parent, j->id, parent_msg};
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) || lock_parent(pg, j, rg, err) ||
        di_catalog_fenced(pg,
                          "UPDATE dsa_jobs.analysis_runs SET status = 'failed', "
                          "completed_at = now(), error_message = $2, worker_id = NULL, "
                          "lease_expires_at = NULL WHERE id = $1 AND status = 'running' "
                          "AND worker_id = $3",
                          3, p, j->id, j->owner, err) ||
        di_pg_cmd(pg,
                  "UPDATE dsa_jobs.analysis_runs SET status = 'failed', completed_at = now(), "
                  "worker_id = NULL, lease_expires_at = NULL, "
                  "error_message = CASE WHEN id = $1 THEN $3 "
                  "  ELSE 'not run: range job ' || $2 || ' of the same import failed' END, "
                  "run_parameters = CASE WHEN id = $1 THEN jsonb_set(run_parameters, "
                  "  '{progress,status}', '\"failed\"', true) ELSE run_parameters END "
                  "WHERE (id = $1 OR (parent_run_id = $1 AND id <> $2)) "
                  "AND status IN ('pending', 'running')",
                  3, pp, err) ||
        di_catalog_remove_commit(pg, rg->commit_id, err) || di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        return -1;
    }
    return 0;
}

/* parent_status reads the split job's status and error message. */
static int parent_status(di_pg *pg, const char *id, char *status, size_t ssz, char *msg, size_t msz,
                         di_error *err) {
    const char *p[] = {id};
    PGresult *r = di_pg_exec(pg,
                             "SELECT status, coalesce(error_message, '') "
                             "FROM dsa_jobs.analysis_runs WHERE id::text = $1",
                             1, p, err);
    if (!r)
        return -1;
    snprintf(status, ssz, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "failed");
    snprintf(msg, msz, "%s", PQntuples(r) ? PQgetvalue(r, 0, 1) : "the job is gone");
    PQclear(r);
    return 0;
}

/* run_one_range claims and runs one range of the split job: 1 ran one (or
 * it was handed back: it is claimed again when due), 0 none is claimable now,
 * -1 on a queue error or when the range failed the job (err says why). */
static int run_one_range(di_pg *pg, const char *conninfo, const char *job_id, const di_settings *s,
                         const di_job_hooks *hooks, di_job_result *res, di_error *err) {
    char range_id[37];
    int got = di_queue_claim_range(pg, job_id, hooks->owner, s->lease_s, range_id, err);
    if (got <= 0)
        return got;
    int rc = di_job_run(conninfo, range_id, s, hooks, res, err);
    if (rc < 0 && strcmp(res->status, "failed") == 0)
        return -1;
    di_error_clear(err);
    return 1;
}

int di_job_run_split(const char *conninfo, const char *job_id, const di_settings *s,
                     const di_job_hooks *hooks, di_job_result *res, di_error *err) {
    di_pg pg;
    char status[16], msg[1024];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (di_pg_connect(&pg, conninfo, err))
        return -1;
    int rc = 0;
    for (;;) {
        if (hooks->stop && *hooks->stop) {
            di_error_set(err, DI_ERR_TRANSIENT,
                         "interrupted: the ranges of job %s not yet done stay queued", job_id);
            err->code = DI_CODE_INTERRUPTED;
            rc = 1;
            break;
        }
        int ran = run_one_range(&pg, conninfo, job_id, s, hooks, res, err);
        if (ran != 0) {
            if (ran < 0) {
                rc = -1;
                break;
            }
            continue;
        }
        if (parent_status(&pg, job_id, status, sizeof status, msg, sizeof msg, err)) {
            rc = -1;
            break;
        }
        if (strcmp(status, "completed") == 0)
            break;
        if (strcmp(status, "failed") == 0) {
            snprintf(res->status, sizeof res->status, "failed");
            rc = di_error_set(err, DI_ERR_INPUT, "job %s failed: %s", job_id, msg);
            break;
        }
        usleep(200 * 1000); /* ranges held by other workers, or a publish under way */
    }
    di_pg_close(&pg);
    if (rc != 0) {
        snprintf(res->job_id, sizeof res->job_id, "%s", job_id);
        if (rc > 0)
            snprintf(res->status, sizeof res->status, "pending");
        return rc;
    }
    rc = di_job_run(conninfo, job_id, s, hooks, res, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->elapsed_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return rc;
}
