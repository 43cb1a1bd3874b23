/* sse.c - live job progress without polling the row: one thread LISTENs on
 * dsa_job_events (migration 003 NOTIFYs the job id whenever an import job's
 * status or run_parameters change) and posts the ids to the hub; each
 * GET /jobs/{id}/events stream waits on the hub and, when its job changed,
 * reads the row once and sends it as a Server-Sent Event. A stream ends with
 * the job's `completed` or `failed` event. */
#include "dsa_ingest/job.h"
#include "http/serve.h"
#include "sink/pg.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEPALIVE_MS 15000 /* a comment line this often keeps proxies from closing */
#define MIN_FETCH_MS 200   /* at most five reads of a row per second per stream */

/* ---- the hub ---- */

/* hub_publish posts one changed job id. */
static void hub_publish(di_hub *h, const char *id) {
    pthread_mutex_lock(&h->lock);
    h->seq++;
    snprintf(h->ids[h->seq % DI_HUB_RING], sizeof h->ids[0], "%s", id);
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
}

/* hub_missed tells every stream to read its row again (LISTEN was re-made:
 * notifications may have been lost meanwhile). */
static void hub_missed(di_hub *h) {
    pthread_mutex_lock(&h->lock);
    h->epoch++;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
}

/* hub_changed_locked tells whether job id changed since *seq and *epoch, and
 * moves them on. */
static int hub_changed_locked(di_hub *h, const char *id, uint64_t *seq, uint64_t *epoch) {
    int changed = *epoch != h->epoch || h->seq - *seq > DI_HUB_RING;
    for (uint64_t i = *seq + 1; !changed && i <= h->seq; i++)
        changed = strcmp(h->ids[i % DI_HUB_RING], id) == 0;
    *seq = h->seq;
    *epoch = h->epoch;
    return changed;
}

/* hub_wait waits up to ms for job id to change: 1 changed, 0 timed out, -1
 * the server is stopping. */
static int hub_wait(di_hub *h, const char *id, uint64_t *seq, uint64_t *epoch, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&h->lock);
    while (!h->closing && !(rc = hub_changed_locked(h, id, seq, epoch)))
        if (pthread_cond_timedwait(&h->changed, &h->lock, &until) != 0)
            break;
    if (h->closing)
        rc = -1;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* hub_position gives a new stream its starting point. */
static void hub_position(di_hub *h, uint64_t *seq, uint64_t *epoch) {
    pthread_mutex_lock(&h->lock);
    *seq = h->seq;
    *epoch = h->epoch;
    pthread_mutex_unlock(&h->lock);
}

/* ---- the LISTEN thread ---- */

/* listen_once holds one LISTEN connection until it breaks or the server stops. */
static void listen_once(di_serve *s) {
    di_pg pg;
    di_error err;
    di_error_clear(&err);
    if (di_pg_connect(&pg, s->o.conninfo, &err) != 0)
        return;
    if (di_pg_cmd(&pg, "LISTEN dsa_job_events", 0, NULL, &err) == 0) {
        hub_missed(&s->hub);
        struct pollfd p = {.fd = PQsocket(pg.conn), .events = POLLIN};
        while (!s->stopping && PQstatus(pg.conn) == CONNECTION_OK) {
            if (poll(&p, 1, 250) <= 0)
                continue;
            if (!PQconsumeInput(pg.conn))
                break;
            PGnotify *n;
            while ((n = PQnotifies(pg.conn)) != NULL) {
                di_serve_count(&s->stats.notifications, 1);
                hub_publish(&s->hub, n->extra);
                PQfreemem(n);
            }
        }
    }
    di_pg_close(&pg);
}

/* listener keeps a LISTEN connection up, re-made after a second when lost. */
static void *listener(void *arg) {
    di_serve *s = arg;
    int first = 1;
    while (!s->stopping) {
        if (!first) {
            di_serve_count(&s->stats.listen_reconnects, 1);
            for (int i = 0; i < 4 && !s->stopping; i++)
                nanosleep(&(struct timespec){0, 250000000L}, NULL);
        }
        first = 0;
        listen_once(s);
    }
    return NULL;
}

/* di_hub_start sets up the hub (monotonic waits) and the LISTEN thread. */
int di_hub_start(di_serve *s, di_error *err) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->hub.lock, NULL);
    pthread_cond_init(&s->hub.changed, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&s->listener, NULL, listener, s) != 0)
        return di_error_set(err, DI_ERR_INTERNAL, "cannot start the LISTEN thread");
    s->listener_started = 1;
    return 0;
}

/* di_hub_stop joins the LISTEN thread and frees the hub. */
void di_hub_stop(di_serve *s) {
    s->stopping = 1;
    if (s->listener_started)
        pthread_join(s->listener, NULL);
    s->listener_started = 0;
    pthread_cond_destroy(&s->hub.changed);
    pthread_mutex_destroy(&s->hub.lock);
}

/* ---- one stream ---- */

typedef struct sse_stream {
    di_serve *s;
    char job_id[37];
    uint64_t seq, epoch, events;
    int done;
    char *out; /* the event being sent */
    size_t len, pos;
    char *last; /* the last row sent: an unchanged row is not sent again */
    struct timespec fetched;
} sse_stream;

/* ms_since tells the milliseconds since t. */
static long ms_since(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000L + (now.tv_nsec - t->tv_nsec) / 1000000L;
}

/* event_name maps the job's status to the event's name; *final for the end. */
static const char *event_name(const char *row, int *final) {
    cJSON *j = cJSON_Parse(row);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const char *name = "progress";
    if (cJSON_IsString(st) && strcmp(st->valuestring, "completed") == 0)
        name = "completed";
    else if (cJSON_IsString(st) && strcmp(st->valuestring, "failed") == 0)
        name = "failed";
    cJSON_Delete(j);
    *final = strcmp(name, "progress") != 0;
    return name;
}

/* set_out makes text the next bytes to send (taken). */
static void set_out(sse_stream *st, char *text) {
    free(st->out);
    st->out = text;
    st->len = text ? strlen(text) : 0;
    st->pos = 0;
}

/* format_event renders "id/event/data" for one row (newlines cannot occur
 * in the row's JSON text but whitespace; they are made spaces regardless). */
static char *format_event(sse_stream *st, const char *name, const char *row) {
    size_t n = strlen(row) + 96;
    char *text = malloc(n);
    if (!text)
        return NULL;
    snprintf(text, n, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)++st->events, name,
             row);
    for (char *p = strstr(text, "data: ") + 6; *p && !(p[0] == '\n' && p[1] == '\n'); p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return text;
}

/* take_row queues the event for a row just read (taken; nothing is sent
 * when it equals the last one). */
static void take_row(sse_stream *st, char *row) {
    if (st->last && strcmp(st->last, row) == 0) {
        free(row);
        return;
    }
    int final = 0;
    const char *name = event_name(row, &final);
    set_out(st, format_event(st, name, row));
    di_serve_count(&st->s->stats.sse_events, 1);
    st->done = final;
    free(st->last);
    st->last = row;
}

/* fetch reads the job's row and queues its event. */
static void fetch(sse_stream *st) {
    di_error err;
    di_error_clear(&err);
    clock_gettime(CLOCK_MONOTONIC, &st->fetched);
    char *row = di_jobs_show(st->s->o.conninfo, st->job_id, &err);
    if (!row) {
        char text[1300];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "error", err.message);
        char *msg = cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
        snprintf(text, sizeof text, "event: error\ndata: %s\n\n", msg ? msg : "{}");
        free(msg);
        st->done = err.cls == DI_ERR_CONFIG; /* the job is gone; a database hiccup is not final */
        set_out(st, strdup(text));
        return;
    }
    take_row(st, row);
}

/* next_event waits for the next thing to send: a changed row, a keep-alive,
 * or the end (-1). */
static int next_event(sse_stream *st) {
    int w = hub_wait(&st->s->hub, st->job_id, &st->seq, &st->epoch, KEEPALIVE_MS);
    if (w < 0)
        return -1;
    if (w == 0) {
        set_out(st, strdup(": keep-alive\n\n"));
        return 0;
    }
    long wait = MIN_FETCH_MS - ms_since(&st->fetched);
    if (wait > 0) /* coalesce a burst of batches into one read */
        nanosleep(&(struct timespec){0, wait * 1000000L}, NULL);
    fetch(st);
    return 0;
}

/* reader is libmicrohttpd's content callback: it blocks (a thread per
 * connection) until there is something to send. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max) {
    sse_stream *st = cls;
    while (st->pos >= st->len) {
        if (st->done || st->s->stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (next_event(st) < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = st->len - st->pos < max ? st->len - st->pos : max;
    memcpy(buf, st->out + st->pos, n);
    st->pos += n;
    return (ssize_t)n;
}

/* free_stream ends a stream (its client left, or the job ended). */
static void free_stream(void *cls) {
    sse_stream *st = cls;
    di_serve_count(&st->s->stats.sse_clients, -1);
    free(st->out);
    free(st->last);
    free(st);
}

/* di_sse_job_events answers 404 for an unknown job, else opens the stream. */
enum MHD_Result di_sse_job_events(di_serve *s, di_request *r, struct MHD_Connection *c) {
    if (__atomic_load_n(&s->stats.sse_clients, __ATOMIC_RELAXED) >= s->o.max_connections / 2)
        return di_serve_error(s, r, c, 503, "too many open event streams; retry later");
    sse_stream *st = calloc(1, sizeof *st);
    if (!st)
        return di_serve_error(s, r, c, 500, "out of memory");
    st->s = s;
    snprintf(st->job_id, sizeof st->job_id, "%s", r->id);
    hub_position(&s->hub, &st->seq, &st->epoch); /* before the first read: nothing is missed */
    di_error err;
    di_error_clear(&err);
    clock_gettime(CLOCK_MONOTONIC, &st->fetched);
    char *row = di_jobs_show(s->o.conninfo, r->id, &err);
    if (!row) {
        free(st);
        return di_serve_error(s, r, c, err.cls == DI_ERR_CONFIG ? 404 : di_serve_status_for(&err),
                              "%s", err.message);
    }
    di_serve_count(&s->stats.sse_clients, 1);
    take_row(st, row); /* the first event: the job as it is now */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, st, free_stream);
    if (!resp) {
        free_stream(st);
        return MHD_NO;
    }
    /* a stream is quiet between events: the idle timeout is for requests, and a
     * client that left is found by the next keep-alive write */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return di_serve_send(s, r, c, 200, resp);
}
