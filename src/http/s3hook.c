/* s3hook.c - POST /events/s3: S3 event notifications in any of the four
 * envelopes, each announced object routed by the rules file to a dataset and
 * ref and queued once (enqueue.c). The answer lists what became of each
 * object. It is 200 unless the database failed (503: the sender retries, and
 * what was already queued is found as a duplicate then). */
#include "http/jsonbody.h"
#include "http/serve.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static const char *const outcome_names[DI_EV_COUNT] = {
    "received", "queued", "duplicate", "unmatched", "ignored", "refused", "failed"};

/* What one body's walk has found so far. */
typedef struct hook_ctx {
    di_serve *s;
    cJSON *results;
    int counts[DI_EV_COUNT];
    char failure[512]; /* the first database failure */
} hook_ctx;

/* record adds one object's outcome to the answer and the metrics. */
static void record(hook_ctx *h, const di_s3_object *o, di_event_outcome what, const char *job_id,
                   const char *detail) {
    h->counts[what]++;
    di_serve_count(&h->s->stats.events[what], 1);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "bucket", o->bucket);
    cJSON_AddStringToObject(e, "key", o->key);
    cJSON_AddStringToObject(e, "version", o->version);
    cJSON_AddStringToObject(e, "outcome", outcome_names[what]);
    if (job_id && *job_id)
        cJSON_AddStringToObject(e, "job_id", job_id);
    if (detail)
        cJSON_AddStringToObject(e, "detail", detail);
    cJSON_AddItemToArray(h->results, e);
}

/* on_object routes and queues one announced object. */
static int on_object(void *ctx, const di_s3_object *o) {
    hook_ctx *h = ctx;
    di_serve *s = h->s;
    di_event_router router = {s->o.conninfo, &s->rules, &s->net};
    char job_id[37], detail[1024];
    h->counts[DI_EV_RECEIVED]++;
    di_serve_count(&s->stats.events[DI_EV_RECEIVED], 1);
    di_event_outcome what = di_event_route(&router, o, job_id, detail, sizeof detail);
    record(h, o, what, job_id, detail[0] ? detail : NULL);
    if (what == DI_EV_FAILED && !h->failure[0])
        snprintf(h->failure, sizeof h->failure, "%s", detail);
    if (what == DI_EV_QUEUED)
        di_serve_log(s, "job %s queued by S3 event: s3://%s/%s (%s)", job_id, o->bucket, o->key,
                     o->version);
    return 0;
}

/* discard drops a response body nobody reads. */
static size_t discard(char *data, size_t size, size_t n, void *ctx) {
    (void)data;
    (void)ctx;
    return size * n;
}

/* confirm fetches an SNS SubscribeURL (no redirects, 10 s); 0 on a 2xx. */
static int confirm(const char *url, long *status) {
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(e);
    *status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    return rc == CURLE_OK && *status >= 200 && *status < 300 ? 0 : -1;
}

/* answer_confirmation handles an SNS SubscriptionConfirmation. */
static enum MHD_Result answer_confirmation(di_serve *s, di_request *r, struct MHD_Connection *c,
                                           const char *url) {
    char scheme[16], host[256] = "?", port[8];
    di_url_split(url, scheme, sizeof scheme, host, sizeof host, port, sizeof port);
    if (!di_sns_confirm_allowed(url, s->o.sns_hosts)) {
        di_serve_count(&s->stats.sns_refused, 1);
        return di_serve_error(s, r, c, 400,
                              "SubscribeURL host %s is not an SNS host (https://sns.REGION."
                              "amazonaws.com); allow it with DSA_INGEST_SNS_ALLOWED_HOSTS",
                              host);
    }
    long status = 0;
    if (confirm(url, &status) != 0)
        return di_serve_error(
            s, r, c, 502, "confirming the SNS subscription at %s failed (HTTP %ld)", host, status);
    di_serve_count(&s->stats.sns_confirmed, 1);
    di_serve_log(s, "serve: SNS subscription confirmed at %s", host);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "envelope", "sns");
    cJSON_AddBoolToObject(j, "confirmed", 1);
    return di_serve_json(s, r, c, 200, j);
}

/* envelope_name names an envelope for the answer. */
static const char *envelope_name(const di_s3_parsed *p) {
    switch (p->envelope) {
    case DI_S3_ENV_EVENTBRIDGE:
        return p->sns ? "sns+eventbridge" : "eventbridge";
    case DI_S3_ENV_TEST:
        return p->sns ? "sns+test" : "test";
    default:
        return p->sns ? "sns+records" : "records";
    }
}

/* di_s3hook_handle answers POST /events/s3 once its body is complete. */
enum MHD_Result di_s3hook_handle(di_serve *s, di_request *r, struct MHD_Connection *c) {
    char why[256];
    cJSON *body = di_json_body(r->body.data, r->body.len, why, sizeof why);
    if (!body)
        return di_serve_error(s, r, c, 400, "%s", why);
    hook_ctx h = {.s = s, .results = cJSON_CreateArray()};
    di_s3_parsed parsed;
    cJSON *inner = NULL;
    di_error err;
    di_error_clear(&err);
    enum MHD_Result ok;
    if (di_s3_events_walk(body, &parsed, &inner, on_object, &h, &err) != 0) {
        ok = di_serve_error(s, r, c, 400, "%s", err.message);
    } else if (parsed.envelope == DI_S3_ENV_SNS_CONFIRM) {
        ok = answer_confirmation(s, r, c, parsed.subscribe_url);
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "envelope", envelope_name(&parsed));
        for (int i = 0; i < DI_EV_COUNT; i++)
            cJSON_AddNumberToObject(j, outcome_names[i], h.counts[i]);
        if (h.failure[0])
            cJSON_AddStringToObject(j, "error", h.failure);
        cJSON_AddItemToObject(j, "results", h.results);
        h.results = NULL;
        ok = di_serve_json(s, r, c, h.failure[0] ? 503 : 200, j);
    }
    cJSON_Delete(h.results);
    cJSON_Delete(inner);
    cJSON_Delete(body);
    return ok;
}
