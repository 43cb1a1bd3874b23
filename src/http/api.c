/* api.c - the job routes: POST /datasets/{id}/refs/{ref}/import with a JSON
 * body, GET /jobs/{id}/status and GET /jobs. A queued job is only a row: the
 * answer is 202 with its id at once, the workers do the import. */
#include "dsa_ingest/job.h"
#include "dsa_ingest/parse.h"
#include "dsa_ingest/source.h"
#include "http/jsonbody.h"
#include "http/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one_of tells whether v is one of the NULL-terminated names. */
static int one_of(const char *v, const char *const *names) {
    for (; *names; names++)
        if (strcmp(v, *names) == 0)
            return 1;
    return 0;
}

static const char *const modes[] = {"snapshot", "update", NULL};
static const char *const formats[] = {"auto", "csv", "tsv", "ndjson", "xlsx", NULL};
static const char *const compressions[] = {"auto", "none", "gzip", "zip",
                                           "bz2",  "xz",   "zstd", NULL};

/* check_choices refuses an unknown mode, format or compression. */
static int check_choices(const di_import_request *q, char *why, size_t whysz) {
    if (q->mode && !one_of(q->mode, modes))
        snprintf(why, whysz, "mode must be snapshot or update, not \"%.40s\"", q->mode);
    else if (q->format && !one_of(q->format, formats))
        snprintf(why, whysz, "format must be auto, csv, tsv, ndjson or xlsx, not \"%.40s\"",
                 q->format);
    else if (q->compression && !one_of(q->compression, compressions))
        snprintf(why, whysz,
                 "compression must be auto, none, gzip, zip, bz2, xz or zstd, not \"%.40s\"",
                 q->compression);
    else if (q->message && strlen(q->message) > 4096)
        snprintf(why, whysz, "commit_message is longer than 4096 bytes");
    else
        return 0;
    return -1;
}

/* valid_ref tells whether a ref or dataset name is printable (no control bytes). */
static int valid_ref(const char *ref) {
    for (const unsigned char *p = (const unsigned char *)ref; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return *ref && strcmp(ref, ".") != 0 && strcmp(ref, "..") != 0;
}

/* di_api_queue checks the request's choices and source, then queues it: 202 with the job id. */
enum MHD_Result di_api_queue(di_serve *s, di_request *r, struct MHD_Connection *c,
                             di_import_request *req, int check_source) {
    char why[256];
    di_error err;
    di_error_clear(&err);
    req->dataset = r->id;
    req->ref = r->ref;
    req->origin = "api"; /* the worker checks every address it dials for this job */
    if (!valid_ref(r->ref) || !valid_ref(r->id))
        return di_serve_error(s, r, c, 400, "dataset and ref names must be printable text");
    if (check_choices(req, why, sizeof why))
        return di_serve_error(s, r, c, 400, "%s", why);
    if (check_source && di_netcheck_url(&s->net, req->source, &err))
        return di_serve_error(s, r, c, err.cls == DI_ERR_TRANSIENT ? 503 : 400, "%s", err.message);
    char job_id[37];
    if (di_job_create(s->o.conninfo, req, NULL, 0, job_id, &err)) {
        int missing = strncmp(err.message, "no dataset with id", 18) == 0;
        return di_serve_error(s, r, c, missing ? 404 : di_serve_status_for(&err), "%s",
                              err.message);
    }
    r->queued = 1;
    char shown[1024], url[96];
    di_url_redact(req->source, shown, sizeof shown);
    di_serve_log(s, "job %s queued: dataset %s, ref %s, %s", job_id, r->id, r->ref, shown);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "job_id", job_id);
    cJSON_AddStringToObject(j, "status", "pending");
    cJSON_AddStringToObject(j, "dataset", r->id);
    cJSON_AddStringToObject(j, "ref", r->ref);
    snprintf(url, sizeof url, "/jobs/%s/status", job_id);
    cJSON_AddStringToObject(j, "status_url", url);
    snprintf(url, sizeof url, "/jobs/%s/events", job_id);
    cJSON_AddStringToObject(j, "events_url", url);
    return di_serve_json(s, r, c, 202, j);
}

/* text_field reads an optional string field; -1 (why filled) when it is
 * present with another type. */
static int text_field(const cJSON *o, const char *key, const char **out, char *why, size_t whysz) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        snprintf(why, whysz, "field \"%s\" must be a string", key);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

/* read_options reads the parsing options, at the top level or under
 * "options" (the shape of run_parameters). */
static int read_options(const cJSON *o, di_import_request *q, char *why, size_t whysz) {
    const char *delim = NULL;
    if (text_field(o, "delimiter", &delim, why, whysz))
        return -1;
    if (delim && !di_delimiter_ok(delim)) {
        snprintf(why, whysz, "delimiter must be one ASCII character");
        return -1;
    }
    if (delim)
        q->delimiter = delim[0];
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "header");
    if (h && !cJSON_IsBool(h)) {
        snprintf(why, whysz, "field \"header\" must be true or false");
        return -1;
    }
    if (h)
        q->header = cJSON_IsTrue(h);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "batch_size");
    if (b && (!cJSON_IsNumber(b) || b->valuedouble < 1 || b->valuedouble > 10000000 ||
              b->valuedouble != (double)(long)b->valuedouble)) {
        snprintf(why, whysz, "batch_size must be a whole number from 1 to 10000000");
        return -1;
    }
    if (b)
        q->batch_size = (long)b->valuedouble;
    return 0;
}

/* read_request fills q from the JSON body (strings borrowed from it). */
static int read_request(const cJSON *o, di_import_request *q, char *why, size_t whysz) {
    memset(q, 0, sizeof *q);
    q->header = 1;
    if (!cJSON_IsObject(o)) {
        snprintf(why, whysz, "body must be a JSON object such as {\"source\": \"s3://b/k\"}");
        return -1;
    }
    if (text_field(o, "source", &q->source, why, whysz) ||
        text_field(o, "commit_message", &q->message, why, whysz) ||
        text_field(o, "mode", &q->mode, why, whysz) ||
        text_field(o, "format", &q->format, why, whysz) ||
        text_field(o, "compression", &q->compression, why, whysz) || read_options(o, q, why, whysz))
        return -1;
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(o, "options");
    if (cJSON_IsObject(opts) && read_options(opts, q, why, whysz))
        return -1;
    if (!q->source || !*q->source) {
        snprintf(why, whysz, "field \"source\" is required (s3://bucket/key or https://…)");
        return -1;
    }
    return 0;
}

/* di_api_import_json answers a JSON import request once its body is complete. */
enum MHD_Result di_api_import_json(di_serve *s, di_request *r, struct MHD_Connection *c) {
    char why[256];
    cJSON *body = di_json_body(r->body.data, r->body.len, why, sizeof why);
    if (!body)
        return di_serve_error(s, r, c, 400, "%s", why);
    di_import_request q;
    enum MHD_Result ok = read_request(body, &q, why, sizeof why)
                             ? di_serve_error(s, r, c, 400, "%s", why)
                             : di_api_queue(s, r, c, &q, 1);
    cJSON_Delete(body);
    return ok;
}

/* answer_json_text answers a JSON text made by the library (taken). */
static enum MHD_Result answer_json_text(di_serve *s, di_request *r, struct MHD_Connection *c,
                                        char *text) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    return di_serve_send(s, r, c, 200, resp);
}

/* di_api_job_status answers the job row as `jobs show` prints it. */
enum MHD_Result di_api_job_status(di_serve *s, di_request *r, struct MHD_Connection *c) {
    di_error err;
    di_error_clear(&err);
    char *text = di_jobs_show(s->o.conninfo, r->id, &err);
    if (!text)
        return di_serve_error(s, r, c, err.cls == DI_ERR_CONFIG ? 404 : di_serve_status_for(&err),
                              "%s", err.message);
    return answer_json_text(s, r, c, text);
}

/* di_api_jobs answers the newest jobs (?limit=N, 1 to 500). */
enum MHD_Result di_api_jobs(di_serve *s, di_request *r, struct MHD_Connection *c) {
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    long limit = 50;
    if (v) {
        char *end;
        limit = strtol(v, &end, 10);
        if (end == v || *end || limit < 1 || limit > 500)
            return di_serve_error(s, r, c, 400, "limit must be a whole number from 1 to 500");
    }
    di_error err;
    di_error_clear(&err);
    char *text = di_jobs_list(s->o.conninfo, (int)limit, &err);
    if (!text)
        return di_serve_error(s, r, c, di_serve_status_for(&err), "%s", err.message);
    return answer_json_text(s, r, c, text);
}
