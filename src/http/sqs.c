/* sqs.c - `worker --sqs-queue-url`: the same S3 event notifications as POST
 * /events/s3, consumed from an SQS queue. One thread long-polls
 * ReceiveMessage (AWS JSON 1.0 protocol, SigV4-signed by libcurl with the
 * credential chain of src/source/aws_credentials.c), routes every announced
 * object through enqueue.c, and deletes a message only after each of its
 * objects' job rows committed (or was found committed by an earlier
 * delivery). A message whose objects could not be written stays in the
 * queue and comes back after its visibility timeout. */
#include "dsa_ingest/buf.h"
#include "dsa_ingest/http.h"
#include "http/enqueue.h"
#include "http/sqs.h"
#include "source/aws_credentials.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SQS_MAX_RESPONSE (16L << 20) /* ten messages of 256 KiB, with room */

struct di_sqs {
    di_sqs_opts o;
    di_event_rules rules;
    di_netpolicy net;
    di_aws_provider *aws;
    char endpoint[512]; /* scheme://host[:port]/ */
    char sigv4[128];    /* "aws:amz:REGION:sqs" */
    pthread_t thread;
    int started;
    volatile int stop;
};

static void sqs_log(di_sqs *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sqs_log writes one line through the worker's log sink. */
static void sqs_log(di_sqs *q, const char *fmt, ...) {
    char line[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (q->o.log)
        q->o.log(q->o.log_ctx, line);
}

/* di_sqs_endpoint: JSON-protocol actions go to the queue host's root. */
int di_sqs_endpoint(const char *queue_url, char *endpoint, size_t esz, char *region, size_t rsz) {
    const char *sep = strstr(queue_url, "://");
    size_t slen = sep ? (size_t)(sep - queue_url) : 0;
    if (!((slen == 4 && strncmp(queue_url, "http", 4) == 0) ||
          (slen == 5 && strncmp(queue_url, "https", 5) == 0)))
        return -1;
    const char *host = sep + 3;
    size_t hlen = strcspn(host, "/?#");
    if (hlen == 0 || memchr(host, '@', hlen) ||
        snprintf(endpoint, esz, "%.*s/", (int)(host + hlen - queue_url), queue_url) >= (int)esz)
        return -1;
    region[0] = '\0';
    if (strncmp(host, "sqs.", 4) == 0) { /* sqs.REGION.amazonaws.com */
        size_t n = strcspn(host + 4, ".");
        if (n < rsz && host + 4 + n < host + hlen)
            snprintf(region, rsz, "%.*s", (int)n, host + 4);
    }
    return 0;
}

/* collect appends a response piece, refusing one past the cap. */
static size_t collect(char *data, size_t size, size_t n, void *ctx) {
    return di_buf_append(ctx, data, size * n) == 0 ? size * n : 0;
}

/* abort_on_stop ends a long poll at once when the worker stops. */
static int abort_on_stop(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    return ((di_sqs *)ctx)->stop ? 1 : 0;
}

/* sign sets SigV4 and the credentials' headers on one request. */
static int sign(di_sqs *q, CURL *e, struct curl_slist **h, di_error *err) {
    const di_aws_creds *cr = NULL;
    if (di_aws_provider_get(q->aws, time(NULL), &cr, err))
        return -1;
    if (!cr)
        return 0; /* anonymous: a local queue that checks nothing */
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, q->sigv4);
    curl_easy_setopt(e, CURLOPT_USERNAME, cr->access_key);
    curl_easy_setopt(e, CURLOPT_PASSWORD, cr->secret_key);
    if (cr->session_token) {
        char tok[4096];
        snprintf(tok, sizeof tok, "x-amz-security-token: %s", cr->session_token);
        struct curl_slist *n = curl_slist_append(*h, tok);
        memset(tok, 0, sizeof tok);
        if (!n)
            return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        *h = n;
    }
    return 0;
}

/* call sends one SQS action with a JSON body; *out gets the parsed answer. */
static int call(di_sqs *q, const char *action, cJSON *body, long timeout_s, cJSON **out,
                di_error *err) {
    char target[96], *text = cJSON_PrintUnformatted(body);
    struct curl_slist *h = NULL;
    di_buf resp;
    di_buf_init(&resp, SQS_MAX_RESPONSE);
    CURL *e = curl_easy_init();
    snprintf(target, sizeof target, "X-Amz-Target: AmazonSQS.%s", action);
    h = curl_slist_append(h, "Content-Type: application/x-amz-json-1.0");
    h = h ? curl_slist_append(h, target) : NULL;
    int rc = !text || !e || !h ? di_error_set(err, DI_ERR_INTERNAL, "out of memory")
                               : sign(q, e, &h, err);
    long status = 0;
    if (rc == 0) {
        curl_easy_setopt(e, CURLOPT_URL, q->endpoint);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, q);
        CURLcode cc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK)
            rc = di_error_set(err, DI_ERR_TRANSIENT, "SQS %s: %s", action, curl_easy_strerror(cc));
    }
    *out = rc == 0 && resp.len ? cJSON_ParseWithLength(resp.data, resp.len) : NULL;
    if (rc == 0 && (status < 200 || status > 299)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(*out, "message");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(*out, "__type");
        rc = di_error_set(err, status >= 500 || status == 429 ? DI_ERR_TRANSIENT : DI_ERR_CONFIG,
                          "SQS %s: HTTP %ld %s%s%s", action, status,
                          cJSON_IsString(t) ? t->valuestring : "", cJSON_IsString(m) ? ": " : "",
                          cJSON_IsString(m) ? m->valuestring : "");
        cJSON_Delete(*out);
        *out = NULL;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    di_buf_cleanup(&resp);
    free(text);
    return rc;
}

/* What one message's objects came to. */
typedef struct msg_ctx {
    di_sqs *q;
    int counts[DI_EV_COUNT];
    char failure[512];
} msg_ctx;

/* on_object routes one object of a message. */
static int on_object(void *ctx, const di_s3_object *o) {
    msg_ctx *m = ctx;
    di_event_router r = {m->q->o.conninfo, &m->q->rules, &m->q->net};
    char job_id[37], detail[1024];
    di_event_outcome what = di_event_route(&r, o, job_id, detail, sizeof detail);
    m->counts[what]++;
    if (what == DI_EV_FAILED && !m->failure[0])
        snprintf(m->failure, sizeof m->failure, "%s", detail);
    if (what == DI_EV_QUEUED)
        sqs_log(m->q, "sqs: job %s queued by S3 event: s3://%s/%s (%s)", job_id, o->bucket, o->key,
                o->version);
    if (what == DI_EV_REFUSED)
        sqs_log(m->q, "sqs: s3://%s/%s refused: %s", o->bucket, o->key, detail);
    return 0;
}

/* handle routes one message's body; 0 when it may be deleted. */
static int handle(di_sqs *q, const char *id, const char *body) {
    msg_ctx m = {.q = q};
    di_s3_parsed parsed;
    di_error err;
    di_error_clear(&err);
    cJSON *root = body ? cJSON_Parse(body) : NULL, *inner = NULL;
    int rc = di_s3_events_walk(root, &parsed, &inner, on_object, &m, &err);
    cJSON_Delete(inner);
    cJSON_Delete(root);
    if (rc) { /* it can never succeed: delete it rather than loop on it */
        sqs_log(q, "sqs: message %s is not an S3 event (%s); deleted", id, err.message);
        return 0;
    }
    if (m.failure[0]) {
        sqs_log(q, "sqs: message %s kept for redelivery: %s", id, m.failure);
        return -1;
    }
    return 0;
}

/* delete_message removes a handled message. */
static void delete_message(di_sqs *q, const char *id, const char *receipt) {
    cJSON *b = cJSON_CreateObject(), *out = NULL;
    cJSON_AddStringToObject(b, "QueueUrl", q->o.queue_url);
    cJSON_AddStringToObject(b, "ReceiptHandle", receipt);
    di_error err;
    di_error_clear(&err);
    if (call(q, "DeleteMessage", b, 30, &out, &err))
        sqs_log(q,
                "sqs: message %s handled but not deleted (it will come back, and be found a "
                "duplicate): %s",
                id, err.message);
    cJSON_Delete(out);
    cJSON_Delete(b);
}

/* receive_once long-polls once and handles what came. */
static int receive_once(di_sqs *q, di_error *err) {
    cJSON *b = cJSON_CreateObject(), *out = NULL;
    cJSON_AddStringToObject(b, "QueueUrl", q->o.queue_url);
    cJSON_AddNumberToObject(b, "MaxNumberOfMessages", 10);
    cJSON_AddNumberToObject(b, "WaitTimeSeconds", q->o.wait_s);
    int rc = call(q, "ReceiveMessage", b, q->o.wait_s + 15, &out, err);
    cJSON_Delete(b);
    const cJSON *msg;
    cJSON_ArrayForEach(msg, cJSON_GetObjectItemCaseSensitive(out, "Messages")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "MessageId");
        const cJSON *rh = cJSON_GetObjectItemCaseSensitive(msg, "ReceiptHandle");
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(msg, "Body");
        const char *mid = cJSON_IsString(id) ? id->valuestring : "?";
        if (!q->stop && cJSON_IsString(rh) &&
            handle(q, mid, cJSON_IsString(body) ? body->valuestring : NULL) == 0)
            delete_message(q, mid, rh->valuestring);
    }
    cJSON_Delete(out);
    return rc;
}

/* consumer polls until stopped; failures back off 5 s (logged once each). */
static void *consumer(void *arg) {
    di_sqs *q = arg;
    char last[1024] = "";
    while (!q->stop) {
        di_error err;
        di_error_clear(&err);
        if (receive_once(q, &err) == 0 || q->stop) {
            last[0] = '\0';
            continue;
        }
        if (strcmp(last, err.message) != 0)
            sqs_log(q, "sqs: %s (retrying every 5 s)", err.message);
        snprintf(last, sizeof last, "%s", err.message);
        for (int i = 0; i < 20 && !q->stop; i++)
            nanosleep(&(struct timespec){0, 250000000L}, NULL);
    }
    return NULL;
}

/* sqs_free releases everything but the thread. */
static void sqs_free(di_sqs *q) {
    di_event_rules_free(&q->rules);
    di_aws_provider_free(q->aws);
    free(q);
}

/* di_sqs_start checks the URL and rules, loads credentials, starts the thread. */
di_sqs *di_sqs_start(const di_sqs_opts *o, di_error *err) {
    char region[64];
    di_sqs *q = calloc(1, sizeof *q);
    if (!q) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    q->o = *o;
    if (q->o.wait_s < 1 || q->o.wait_s > 20)
        q->o.wait_s = 20;
    if (di_sqs_endpoint(o->queue_url, q->endpoint, sizeof q->endpoint, region, sizeof region)) {
        di_error_set(err, DI_ERR_CONFIG,
                     "--sqs-queue-url: expected https://sqs.REGION."
                     "amazonaws.com/ACCOUNT/QUEUE");
        sqs_free(q);
        return NULL;
    }
    if (!o->event_rules || !*o->event_rules) {
        di_error_set(err, DI_ERR_CONFIG,
                     "--sqs-queue-url needs routing rules: --event-rules FILE or "
                     "DSA_INGEST_EVENT_RULES");
        sqs_free(q);
        return NULL;
    }
    if (di_event_rules_load(&q->rules, o->event_rules, err) ||
        di_netpolicy_init(&q->net, NULL, o->allowed_buckets, NULL, NULL, err) ||
        !(q->aws = di_aws_provider_new(err))) {
        sqs_free(q);
        return NULL;
    }
    snprintf(q->sigv4, sizeof q->sigv4, "aws:amz:%s:sqs",
             region[0] ? region : di_aws_provider_region(q->aws));
    if (pthread_create(&q->thread, NULL, consumer, q) != 0) {
        di_error_set(err, DI_ERR_INTERNAL, "cannot start the SQS thread");
        sqs_free(q);
        return NULL;
    }
    q->started = 1;
    return q;
}

/* di_sqs_stop aborts a long poll in flight and waits for the thread. */
void di_sqs_stop(di_sqs *q) {
    if (!q)
        return;
    q->stop = 1;
    if (q->started)
        pthread_join(q->thread, NULL);
    sqs_free(q);
}
