/* enqueue.c - an S3 object announced by an event becomes at most one job,
 * however often the event is delivered: the delivery's row in
 * dsa_ingest.s3_events (unique per bucket, key and version or ETag) and the
 * job row are written in ONE transaction, so a crash between them leaves
 * neither, and a concurrent redelivery waits on the unique index and then
 * finds the first one's row. The job is queued pending; the 002 trigger sends
 * NOTIFY dsa_import_jobs. */
#include "http/enqueue.h"
#include "job/create.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* run_parameters renders the job request (DESIGN §4) plus where it came
 * from; the caller frees the text. */
static char *run_parameters(const di_s3_object *o, const di_event_rule *rule, const char *source) {
    const char *slash = strrchr(o->key, '/');
    char msg[1400];
    snprintf(msg, sizeof msg, "Import %s (S3 event %s)", source, o->name);
    cJSON *rp = cJSON_CreateObject();
    cJSON_AddStringToObject(rp, "source", source);
    cJSON_AddStringToObject(rp, "target_ref", rule->ref);
    cJSON_AddStringToObject(rp, "commit_message", msg);
    cJSON_AddStringToObject(rp, "mode", rule->mode);
    cJSON_AddStringToObject(rp, "format", rule->format ? rule->format : "auto");
    cJSON_AddStringToObject(rp, "compression", rule->compression ? rule->compression : "auto");
    cJSON_AddStringToObject(rp, "filename", slash ? slash + 1 : o->key);
    cJSON_AddStringToObject(rp, "origin", "event"); /* the worker checks every address */
    cJSON *opts = cJSON_AddObjectToObject(rp, "options");
    cJSON_AddBoolToObject(opts, "header", 1);
    cJSON_AddNumberToObject(opts, "max_errors", 0);
    cJSON *t = cJSON_AddObjectToObject(rp, "trigger");
    cJSON_AddStringToObject(t, "type", "s3_event");
    cJSON_AddStringToObject(t, "bucket", o->bucket);
    cJSON_AddStringToObject(t, "key", o->key);
    cJSON_AddStringToObject(t, "version", o->version);
    cJSON_AddStringToObject(t, "event", o->name);
    char *text = cJSON_PrintUnformatted(rp);
    cJSON_Delete(rp);
    return text;
}

/* claim_delivery records the delivery; *fresh = 0 when it was seen before
 * (then job_id gets the job it queued). */
static int claim_delivery(di_pg *pg, const di_s3_object *o, char ev_id[24], int *fresh,
                          char job_id[37], di_error *err) {
    const char *p[] = {o->bucket, o->key, o->version, o->name};
    PGresult *r = di_pg_exec(pg,
                             "INSERT INTO dsa_ingest.s3_events (bucket, object_key, version, "
                             "event_name) VALUES ($1, $2, $3, $4) ON CONFLICT ON CONSTRAINT "
                             "s3_events_object_version_key DO NOTHING RETURNING id",
                             4, p, err);
    if (!r)
        return -1;
    *fresh = PQntuples(r) == 1;
    if (*fresh)
        snprintf(ev_id, 24, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (*fresh)
        return 0;
    r = di_pg_exec(pg,
                   "SELECT coalesce(job_id::text, '') FROM dsa_ingest.s3_events "
                   "WHERE bucket = $1 AND object_key = $2 AND version = $3",
                   3, p, err);
    if (!r)
        return -1;
    snprintf(job_id, 37, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return 0;
}

/* insert_job queues the job (pending) and links the delivery to it. */
static int insert_job(di_pg *pg, const char *dataset, const char *params, const char *ev_id,
                      char job_id[37], di_error *err) {
    if (di_job_insert(pg, dataset, params, NULL, 0, job_id, err))
        return -1;
    const char *q[] = {job_id, ev_id};
    return di_pg_cmd(pg, "UPDATE dsa_ingest.s3_events SET job_id = $1::uuid WHERE id = $2::bigint",
                     2, q, err);
}

/* di_enqueue_s3_object: the delivery's row and the job's, in one transaction. */
int di_enqueue_s3_object(const char *conninfo, const di_s3_object *o, const di_event_rule *rule,
                         di_enqueue_result *res, char job_id[37], di_error *err) {
    char source[DI_S3_EVENT_KEY_MAX + 300], ev_id[24];
    snprintf(source, sizeof source, "s3://%s/%s", o->bucket, o->key);
    char *params = run_parameters(o, rule, source);
    if (!params)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    di_pg pg;
    int fresh = 0;
    int rc = di_pg_connect(&pg, conninfo, err);
    if (rc == 0) {
        rc = di_pg_cmd(&pg, "BEGIN", 0, NULL, err) ||
             claim_delivery(&pg, o, ev_id, &fresh, job_id, err) ||
             (fresh && insert_job(&pg, rule->dataset, params, ev_id, job_id, err)) ||
             di_pg_cmd(&pg, "COMMIT", 0, NULL, err);
        if (rc)
            di_pg_rollback(&pg);
        di_pg_close(&pg);
    }
    free(params);
    *res = fresh ? DI_ENQ_QUEUED : DI_ENQ_DUPLICATE;
    return rc ? -1 : 0;
}

/* di_event_route: rule, source check, then the one-transaction enqueue. */
di_event_outcome di_event_route(const di_event_router *r, const di_s3_object *o, char job_id[37],
                                char *detail, size_t detailsz) {
    job_id[0] = detail[0] = '\0';
    if (!o->created) {
        snprintf(detail, detailsz, "not an object creation");
        return DI_EV_IGNORED;
    }
    const di_event_rule *rule = di_event_rules_match(r->rules, o->bucket, o->key);
    if (!rule)
        return DI_EV_UNMATCHED;
    char source[DI_S3_EVENT_KEY_MAX + 300];
    snprintf(source, sizeof source, "s3://%s/%s", o->bucket, o->key);
    di_error err;
    di_error_clear(&err);
    di_enqueue_result res;
    if (di_netcheck_url(r->net, source, &err) == 0 &&
        di_enqueue_s3_object(r->conninfo, o, rule, &res, job_id, &err) == 0)
        return res == DI_ENQ_QUEUED ? DI_EV_QUEUED : DI_EV_DUPLICATE;
    snprintf(detail, detailsz, "%s", err.message);
    return err.cls == DI_ERR_TRANSIENT || err.cls == DI_ERR_INTERNAL ? DI_EV_FAILED : DI_EV_REFUSED;
}
