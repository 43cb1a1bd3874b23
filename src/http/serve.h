/* serve.h - private to src/http/: the state `dsa-ingest serve` shares between
 * its route files. serve.c owns the daemon and routing; each route group
 * (api.c, upload.c, s3hook.c, sse.c, ui.c, serve_metrics.c) gets the request
 * and the server and queues exactly one answer.
 *
 * Threads: libmicrohttpd runs a thread per connection, so a handler may block
 * (an SSE stream waits on the hub); the LISTEN thread feeds the hub. The
 * server's fields are read-only after start, but for the atomic counters. */
#ifndef DI_HTTP_SERVE_H
#define DI_HTTP_SERVE_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#include "dsa_ingest/buf.h"
#include "dsa_ingest/http.h"
#include "http/auth.h"
#include "http/enqueue.h"
#include "http/events.h"
#include "http/netcheck.h"

/* Bytes of an over-limit body read and dropped before the connection is cut
 * (draining lets the client read its 413; past this it is not worth it). */
#define DI_DRAIN_MAX (64LL << 20)

/* The routes, for dispatch and the per-route request counters. */
typedef enum di_route {
    DI_ROUTE_NONE = 0, /* unknown path: 404 */
    DI_ROUTE_UI,
    DI_ROUTE_HEALTHZ,
    DI_ROUTE_READYZ,
    DI_ROUTE_METRICS,
    DI_ROUTE_IMPORT,
    DI_ROUTE_JOBS,
    DI_ROUTE_JOB_STATUS,
    DI_ROUTE_JOB_EVENTS,
    DI_ROUTE_S3_EVENTS,
    DI_ROUTE_COUNT
} di_route;

/* The statuses counted per route; anything else counts as "other". */
#define DI_STATUSES                                                                                \
    { 200, 202, 400, 401, 403, 404, 405, 413, 415, 500, 503 }
#define DI_NSTATUS 12

/* The hub: job ids that changed, in a ring, with a sequence number. A
 * subscriber remembers the last sequence it saw; when the ring has moved on
 * past it (or the LISTEN connection was re-made), it refetches anyway. */
#define DI_HUB_RING 1024
typedef struct di_hub {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint64_t seq;   /* sequence of the newest entry */
    uint64_t epoch; /* bumped when notifications may have been missed */
    char ids[DI_HUB_RING][37];
    int closing;
} di_hub;

typedef struct di_serve_stats {
    int64_t requests[DI_ROUTE_COUNT][DI_NSTATUS];
    int64_t events[DI_EV_COUNT];
    int64_t uploads_accepted, uploads_too_large, uploads_failed, upload_bytes;
    int64_t sse_clients, sse_events;
    int64_t notifications, listen_reconnects;
    int64_t sns_confirmed, sns_refused;
} di_serve_stats;

struct di_serve {
    struct MHD_Daemon *daemon;
    di_serve_opts o; /* strings borrowed */
    long chunk_size;
    di_auth auth;
    di_netpolicy net;
    di_event_rules rules;
    int have_rules;
    di_hub hub;
    pthread_t listener;
    int listener_started;
    pthread_t janitor;
    int janitor_started;
    volatile int stopping;
    di_serve_stats stats;
};

/* One request in flight (libmicrohttpd's per-connection pointer). */
typedef struct di_upload di_upload;
typedef struct di_request {
    di_route route;
    char id[256];      /* {id} of /datasets/{id}/… (an id or a name) and /jobs/{id}/… */
    char ref[256];     /* {ref} of /datasets/{id}/refs/{ref}/import */
    di_buf body;       /* a JSON body, capped at max_body */
    int too_large;     /* the body passed its cap: 413 once it is drained */
    long long drained; /* bytes dropped since (capped: then the connection is cut) */
    int answered;      /* a response was queued */
    int queued;        /* a job was created (an upload's spool file now belongs to it) */
    di_upload *upload;
} di_request;

/* di_serve_count adds 1 to an atomic counter. */
static inline void di_serve_count(int64_t *v, int64_t n) {
    __atomic_add_fetch(v, n, __ATOMIC_RELAXED);
}

/* Answers: each counts the request for /metrics under its route and status. */
enum MHD_Result di_serve_send(di_serve *s, di_request *r, struct MHD_Connection *c, unsigned status,
                              struct MHD_Response *resp);
enum MHD_Result di_serve_text(di_serve *s, di_request *r, struct MHD_Connection *c, unsigned status,
                              const char *type, const char *body, size_t len);
/* di_serve_json answers with j printed (j is taken and deleted). */
enum MHD_Result di_serve_json(di_serve *s, di_request *r, struct MHD_Connection *c, unsigned status,
                              cJSON *j);
/* di_serve_error answers {"error": message} with status. */
enum MHD_Result di_serve_error(di_serve *s, di_request *r, struct MHD_Connection *c,
                               unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* di_serve_status_for maps an error class to an HTTP status. */
unsigned di_serve_status_for(const di_error *err);
/* di_serve_log writes one log line through the configured sink. */
void di_serve_log(di_serve *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* api.c */
enum MHD_Result di_api_import_json(di_serve *s, di_request *r, struct MHD_Connection *c);
enum MHD_Result di_api_job_status(di_serve *s, di_request *r, struct MHD_Connection *c);
enum MHD_Result di_api_jobs(di_serve *s, di_request *r, struct MHD_Connection *c);
/* di_api_queue validates an import request's options, checks its source and
 * queues it (shared by the JSON body and the upload). */
enum MHD_Result di_api_queue(di_serve *s, di_request *r, struct MHD_Connection *c,
                             di_import_request *req, int check_source);

/* upload.c: multipart bodies streamed to the spool directory, IMPORT_CHUNK_SIZE
 * bytes per write, the size limit enforced as the bytes arrive. */
enum MHD_Result di_upload_begin(di_serve *s, di_request *r, struct MHD_Connection *c);
/* di_upload_feed takes one piece of body; MHD_NO cuts the connection (an
 * over-limit upload that goes on far past the limit). */
enum MHD_Result di_upload_feed(di_serve *s, di_request *r, const char *data, size_t size);
enum MHD_Result di_upload_finish(di_serve *s, di_request *r, struct MHD_Connection *c);
void di_upload_free(di_upload *u); /* removes the spool file unless a job took it */
/* di_spool_name makes a safe file name from an uploaded file's name: its last
 * path segment, bytes outside [A-Za-z0-9._-] replaced by '_', no leading dot,
 * at most outsz - 1 bytes (the extension kept); "upload" when nothing is left. */
void di_spool_name(const char *filename, char *out, size_t outsz);

/* s3hook.c: POST /events/s3. */
enum MHD_Result di_s3hook_handle(di_serve *s, di_request *r, struct MHD_Connection *c);

/* sse.c: the hub, its LISTEN thread and GET /jobs/{id}/events. */
DI_MUSTCHECK int di_hub_start(di_serve *s, di_error *err);
void di_hub_stop(di_serve *s);
enum MHD_Result di_sse_job_events(di_serve *s, di_request *r, struct MHD_Connection *c);

/* janitor.c: removes the spooled uploads of finished jobs. */
DI_MUSTCHECK int di_janitor_start(di_serve *s, di_error *err);
void di_janitor_stop(di_serve *s);
/* di_spool_owned tells whether path has the spool's layout SPOOL/<32 hex>/<name>
 * (then dir gets SPOOL/<32 hex>): nothing else is ever removed. */
int di_spool_owned(const char *spool_dir, const char *path, char *dir, size_t dirsz);

/* ui.c: GET / */
enum MHD_Result di_ui_page(di_serve *s, di_request *r, struct MHD_Connection *c);

/* serve_metrics.c: GET /metrics */
enum MHD_Result di_serve_metrics(di_serve *s, di_request *r, struct MHD_Connection *c);

#endif
