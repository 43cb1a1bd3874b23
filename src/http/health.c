/* health.c - /healthz, /readyz and /metrics for workers, on libmicrohttpd's
 * own polling thread. Answers are small and made per request; nothing here
 * touches the job runner's state beyond reading atomic counters and a copy of
 * the metrics registry (util/metrics.h: durations, retries, errors, S3). */
#include "dsa_ingest/http.h"
#include "dsa_ingest/sink.h"
#include "http/respond.h"
#include "util/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct di_health_server {
    struct MHD_Daemon *daemon;
    const char *conninfo;
    const di_worker_stats *stats;
};

/* di_http_answer queues one response with a copy of body (shared with serve). */
enum MHD_Result di_http_answer(struct MHD_Connection *c, unsigned status, const char *type,
                               const char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* load reads one counter. */
static long long load(const int64_t *v) {
    return (long long)__atomic_load_n(v, __ATOMIC_RELAXED);
}

#define METRICS_MAX (256 * 1024)

/* worker_counters renders the slots' own counters. */
static int worker_counters(const di_worker_stats *s, di_buf *b) {
    return di_buf_printf(
        b,
        "# HELP dsa_ingest_jobs_total Import jobs this worker finished, by outcome.\n"
        "# TYPE dsa_ingest_jobs_total counter\n"
        "dsa_ingest_jobs_total{outcome=\"completed\"} %lld\n"
        "dsa_ingest_jobs_total{outcome=\"failed\"} %lld\n"
        "dsa_ingest_jobs_total{outcome=\"handed_back\"} %lld\n"
        "dsa_ingest_jobs_total{outcome=\"lost\"} %lld\n"
        "# HELP dsa_ingest_jobs_active Import jobs running in this worker now.\n"
        "# TYPE dsa_ingest_jobs_active gauge\n"
        "dsa_ingest_jobs_active %lld\n"
        "# HELP dsa_ingest_rows_imported_total Rows committed by finished jobs.\n"
        "# TYPE dsa_ingest_rows_imported_total counter\n"
        "dsa_ingest_rows_imported_total %lld\n"
        "# HELP dsa_ingest_bytes_read_total Object bytes read by finished jobs.\n"
        "# TYPE dsa_ingest_bytes_read_total counter\n"
        "dsa_ingest_bytes_read_total %lld\n"
        "# HELP dsa_ingest_empty_claims_total Queue polls that found no claimable job.\n"
        "# TYPE dsa_ingest_empty_claims_total counter\n"
        "dsa_ingest_empty_claims_total %lld\n",
        load(&s->jobs_completed), load(&s->jobs_failed), load(&s->jobs_handed_back),
        load(&s->jobs_lost), load(&s->active), load(&s->rows), load(&s->bytes),
        load(&s->claims_empty));
}

/* answer_metrics renders the Prometheus text exposition: the slots' counters,
 * then the registry's histograms and counters. */
static enum MHD_Result answer_metrics(struct MHD_Connection *c, const di_worker_stats *s) {
    di_buf b;
    di_buf_init(&b, METRICS_MAX);
    enum MHD_Result ok;
    if (worker_counters(s, &b) || di_metrics_render(&b))
        ok = di_http_answer(c, 500, "text/plain", "metrics too large\n");
    else
        ok = di_http_answer(c, 200, "text/plain; version=0.0.4", b.data);
    di_buf_cleanup(&b);
    return ok;
}

/* route answers the three GET routes; anything else is 404 or 405. */
static enum MHD_Result route(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls) {
    di_health_server *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return di_http_answer(c, 405, "text/plain", "method not allowed\n");
    if (strcmp(url, "/healthz") == 0)
        return di_http_answer(c, 200, "text/plain", "ok\n");
    if (strcmp(url, "/readyz") == 0)
        return di_http_readyz(c, h->conninfo, NULL);
    if (strcmp(url, "/metrics") == 0)
        return answer_metrics(c, h->stats);
    return di_http_answer(c, 404, "text/plain", "not found\n");
}

/* di_http_readyz: ready when the database answers with a current schema. */
enum MHD_Result di_http_readyz(struct MHD_Connection *c, const char *conninfo, unsigned *status) {
    di_error err;
    di_error_clear(&err);
    unsigned code = di_migrate_check(conninfo, &err) == 0 ? 200 : 503;
    char body[1100];
    snprintf(body, sizeof body, "%s%s\n", code == 200 ? "ready" : "not ready: ", err.message);
    if (status)
        *status = code;
    return di_http_answer(c, code, "text/plain", body);
}

/* di_http_parse_listen reads "ADDR:PORT" or ":PORT" into an IPv4 socket address. */
int di_http_parse_listen(const char *listen, struct sockaddr_in *sa) {
    const char *colon = strrchr(listen, ':');
    char host[64] = "0.0.0.0";
    if (!colon)
        return -1;
    if (colon > listen)
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -1;
    return 0;
}

di_health_server *di_health_start(const char *listen, const char *conninfo,
                                  const di_worker_stats *stats, di_error *err) {
    struct sockaddr_in sa;
    if (di_http_parse_listen(listen, &sa)) {
        di_error_set(err, DI_ERR_CONFIG, "--listen %s: expected ADDR:PORT (IPv4)", listen);
        return NULL;
    }
    di_health_server *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->conninfo = conninfo;
    h->stats = stats;
    h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, ntohs(sa.sin_port), NULL, NULL,
                                 route, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!h->daemon) {
        di_error_set(err, DI_ERR_CONFIG, "cannot listen on %s", listen);
        free(h);
        return NULL;
    }
    return h;
}

void di_health_stop(di_health_server *h) {
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
