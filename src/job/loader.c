/* loader.c - loader threads and the watermark they commit (see loader.h).
 *
 * Locks: `mu` guards the pool, the queue and the commit bookkeeping; `order`
 * is held by one loader at a time from composing its progress to the end of
 * its COMMIT, so the progress it writes is computed from exactly the batches
 * committed before it. A loader never waits for `order` while holding `mu`. */
#include "job/loader.h"
#include "job/tune.h"
#include "util/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A batch committed beyond the watermark. */
typedef struct ahead {
    int64_t seq;
    di_segment seg;
    int64_t end_rows;
    char *end_progress; /* owned */
} ahead;

typedef struct conn {
    di_loader *l;
    di_pg pg;
    di_buf scratch; /* COPY text in pieces */
    pthread_t thread;
    int started;
} conn;

struct di_loader {
    pthread_mutex_t mu, order;
    pthread_cond_t cv;
    di_batch_job job;
    conn *conns;
    int nconns;
    /* batches: the pool, the free ones, the queue of filled ones */
    di_batch *pool;
    size_t npool;
    di_batch **free_list;
    size_t nfree;
    di_batch **queue;
    size_t qhead, qlen;
    int64_t inflight; /* submitted, not yet committed */
    int active;       /* batches being loaded now: at most tune.limit */
    di_tune tune;
    int64_t next_seq;
    int closing, failed;
    di_error err;
    /* the watermark and what is committed beyond it */
    int64_t wm_seq, wm_rows;
    char *wm_progress;
    ahead *ahead;
    size_t nahead, cap_ahead;
    di_segment *inherited; /* from the checkpoint the run started at */
    size_t ninherited;
    int64_t batches, bytes_read;
};

/* now_s is a monotonic clock in seconds. */
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* find_ahead gives the index of the committed batch seq, or -1. */
static long find_ahead(const di_loader *l, int64_t seq) {
    for (size_t i = 0; i < l->nahead; i++)
        if (l->ahead[i].seq == seq)
            return (long)i;
    return -1;
}

/* covers tells whether batch b's range holds inherited segment g. */
static int covers(const di_batch *b, const di_segment *g) {
    return strcmp(b->table, g->table) == 0 && g->from >= b->row_from && g->to <= b->row_to;
}

/* segment_of describes batch b as a finished segment. */
static di_segment segment_of(const di_batch *b) {
    di_segment g;
    memset(&g, 0, sizeof g);
    memcpy(g.table, b->table, sizeof g.table);
    g.from = b->row_from;
    g.to = b->row_to;
    g.rows = b->rows_covered;
    return g;
}

/* compose renders the progress to commit with batch b: the watermark as it
 * would stand with b in, and every committed range beyond it. Under mu. */
static char *compose(const di_loader *l, const di_batch *b) {
    int64_t w = l->wm_seq, rows = l->wm_rows;
    const char *progress = l->wm_progress;
    for (;;) {
        if (b->seq == w + 1) {
            rows = b->end_rows;
            progress = b->end_progress;
        } else {
            long i = find_ahead(l, w + 1);
            if (i < 0)
                break;
            rows = l->ahead[i].end_rows;
            progress = l->ahead[i].end_progress;
        }
        w++;
    }
    di_segment *segs = malloc((l->nahead + l->ninherited + 1) * sizeof *segs);
    if (!segs)
        return NULL;
    size_t n = 0;
    int64_t total = rows;
    for (size_t i = 0; i < l->nahead; i++)
        if (l->ahead[i].seq > w)
            segs[n++] = l->ahead[i].seg;
    if (b->seq > w)
        segs[n++] = segment_of(b);
    for (size_t i = 0; i < l->ninherited; i++)
        if (!covers(b, &l->inherited[i]))
            segs[n++] = l->inherited[i];
    for (size_t i = 0; i < n; i++)
        total += segs[i].rows;
    int64_t bytes = b->bytes_read > l->bytes_read ? b->bytes_read : l->bytes_read;
    char *out = di_progress_patch(progress, total, bytes, l->batches + 1, segs, n);
    free(segs);
    return out;
}

/* apply records batch b as committed: it joins the batches ahead, the
 * watermark absorbs every batch that now follows it without a gap, and the
 * inherited ranges b covered are dropped (its count includes them). Under mu.
 * -1: out of memory (the caller fails the loader: the commit stands, and the
 * next run starts from it). */
static int apply(di_loader *l, di_batch *b) {
    if (l->nahead == l->cap_ahead) {
        size_t cap = l->cap_ahead ? 2 * l->cap_ahead : 16;
        ahead *a = realloc(l->ahead, cap * sizeof *a);
        if (!a)
            return -1;
        l->ahead = a;
        l->cap_ahead = cap;
    }
    l->ahead[l->nahead++] = (ahead){b->seq, segment_of(b), b->end_rows, b->end_progress};
    b->end_progress = NULL;
    size_t keep = 0;
    for (size_t i = 0; i < l->ninherited; i++)
        if (!covers(b, &l->inherited[i]))
            l->inherited[keep++] = l->inherited[i];
    l->ninherited = keep;
    long i;
    while ((i = find_ahead(l, l->wm_seq + 1)) >= 0) {
        free(l->wm_progress);
        l->wm_progress = l->ahead[i].end_progress;
        l->wm_rows = l->ahead[i].end_rows;
        l->wm_seq++;
        l->ahead[i] = l->ahead[--l->nahead];
    }
    l->batches++;
    if (b->bytes_read > l->bytes_read)
        l->bytes_read = b->bytes_read;
    return 0;
}

/* fail records the first failure and wakes everyone. Under mu. */
static void fail(di_loader *l, const di_error *err) {
    if (!l->failed) {
        l->failed = 1;
        l->err = *err;
    }
    pthread_cond_broadcast(&l->cv);
}

/* commit_batch publishes batch b (loaded, its transaction open) in commit
 * order with the progress that counts it. */
static int commit_batch(conn *c, di_batch *b, di_error *err) {
    di_loader *l = c->l;
    pthread_mutex_lock(&l->order);
    pthread_mutex_lock(&l->mu);
    int failed = l->failed;
    char *progress = failed ? NULL : compose(l, b);
    pthread_mutex_unlock(&l->mu);
    int rc;
    if (failed) {
        di_pg_rollback(&c->pg);
        rc = di_error_set(err, DI_ERR_TRANSIENT, "another loader failed");
    } else if (!progress) {
        di_pg_rollback(&c->pg);
        rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    } else {
        rc = di_batch_publish(&c->pg, &l->job, progress, err);
    }
    free(progress);
    if (rc == 0) {
        pthread_mutex_lock(&l->mu);
        if (apply(l, b))
            rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        pthread_mutex_unlock(&l->mu);
    }
    pthread_mutex_unlock(&l->order);
    return rc;
}

/* loader_main loads batches from the queue until closing or a failure. */
static void *loader_main(void *arg) {
    conn *c = arg;
    di_loader *l = c->l;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (!l->failed && !(l->closing && l->qlen == 0) &&
               (l->qlen == 0 || l->active >= l->tune.limit))
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->failed || l->qlen == 0) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        di_batch *b = l->queue[l->qhead];
        l->qhead = (l->qhead + 1) % l->npool;
        l->qlen--;
        l->active++;
        pthread_mutex_unlock(&l->mu);

        di_error err;
        di_error_clear(&err);
        double t = now_s();
        int rc = di_batch_load(&c->pg, b, &l->job, &c->scratch, &err);
        if (rc == 0)
            rc = commit_batch(c, b, &err);
        if (rc == 0)
            di_metrics_batch(now_s() - t);

        pthread_mutex_lock(&l->mu);
        l->active--;
        if (rc) {
            fail(l, &err);
        } else {
            l->inflight--;
            di_tune_batch(&l->tune, (int64_t)b->nrows, now_s());
        }
        di_batch_reset(b);
        l->free_list[l->nfree++] = b;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        if (rc)
            break;
    }
    return NULL;
}

/* copy_segments duplicates n segments (NULL when n is 0). */
static int copy_segments(di_segment **out, const di_segment *in, size_t n) {
    *out = NULL;
    if (n == 0)
        return 0;
    *out = malloc(n * sizeof **out);
    if (!*out)
        return -1;
    memcpy(*out, in, n * sizeof **out);
    return 0;
}

di_loader *di_loader_start(const di_loader_opts *o, di_error *err) {
    di_loader *l = calloc(1, sizeof *l);
    if (!l) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->order, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->job = o->job;
    l->nconns = o->connections > 0 ? o->connections : 1;
    di_tune_init(&l->tune, l->nconns, now_s());
    l->npool = (size_t)l->nconns + 2;
    l->wm_rows = o->rows;
    l->batches = o->batches;
    l->bytes_read = o->bytes_read;
    l->wm_progress = strdup(o->progress ? o->progress : "{}");
    l->conns = calloc((size_t)l->nconns, sizeof *l->conns);
    l->pool = calloc(l->npool, sizeof *l->pool);
    l->free_list = calloc(l->npool, sizeof *l->free_list);
    l->queue = calloc(l->npool, sizeof *l->queue);
    if (!l->wm_progress || !l->conns || !l->pool || !l->free_list || !l->queue ||
        copy_segments(&l->inherited, o->finished, o->nfinished)) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        di_loader_stop(l);
        return NULL;
    }
    l->ninherited = o->nfinished;
    for (size_t i = 0; i < l->npool; i++) {
        di_batch_init(&l->pool[i]);
        l->free_list[l->nfree++] = &l->pool[i];
    }
    for (int i = 0; i < l->nconns; i++) {
        conn *c = &l->conns[i];
        c->l = l;
        di_buf_init(&c->scratch, (size_t)1 << 30);
        if (di_pg_connect(&c->pg, o->conninfo, err) ||
            di_batch_prepare(&c->pg, l->job.lease_s, err)) {
            di_loader_stop(l);
            return NULL;
        }
    }
    for (int i = 0; i < l->nconns; i++) {
        if (pthread_create(&l->conns[i].thread, NULL, loader_main, &l->conns[i]) != 0) {
            di_error_set(err, DI_ERR_INTERNAL, "cannot start a loader thread");
            di_loader_stop(l);
            return NULL;
        }
        l->conns[i].started = 1;
    }
    return l;
}

di_batch *di_loader_batch(di_loader *l, di_error *err) {
    pthread_mutex_lock(&l->mu);
    while (!l->failed && l->nfree == 0)
        pthread_cond_wait(&l->cv, &l->mu);
    di_batch *b = NULL;
    if (l->failed) {
        *err = l->err;
    } else {
        b = l->free_list[--l->nfree];
        di_batch_reset(b);
        b->seq = ++l->next_seq;
    }
    pthread_mutex_unlock(&l->mu);
    return b;
}

int di_loader_submit(di_loader *l, di_batch *b, di_error *err) {
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    if (l->failed) {
        *err = l->err;
        di_batch_reset(b);
        l->free_list[l->nfree++] = b;
        rc = -1;
    } else {
        l->queue[(l->qhead + l->qlen) % l->npool] = b;
        l->qlen++;
        l->inflight++;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int di_loader_wait(di_loader *l, di_error *err) {
    pthread_mutex_lock(&l->mu);
    while (!l->failed && l->inflight > 0)
        pthread_cond_wait(&l->cv, &l->mu);
    int rc = 0;
    if (l->failed) {
        *err = l->err;
        rc = -1;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void di_loader_committed(di_loader *l, int64_t *rows, int64_t *batches) {
    pthread_mutex_lock(&l->mu);
    int64_t n = l->wm_rows;
    for (size_t i = 0; i < l->nahead; i++)
        n += l->ahead[i].seg.rows;
    for (size_t i = 0; i < l->ninherited; i++)
        n += l->inherited[i].rows;
    *rows = n;
    *batches = l->batches;
    pthread_mutex_unlock(&l->mu);
}

int di_loader_connections(di_loader *l) {
    pthread_mutex_lock(&l->mu);
    int n = l->tune.limit;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void di_loader_stop(di_loader *l) {
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->closing = 1;
    if (!l->failed) { /* queued batches are dropped, not loaded */
        di_error stop;
        di_error_set(&stop, DI_ERR_TRANSIENT, "the loader was stopped");
        fail(l, &stop);
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; l->conns && i < l->nconns; i++) {
        conn *c = &l->conns[i];
        if (c->started)
            pthread_join(c->thread, NULL);
        di_pg_rollback(&c->pg);
        di_pg_close(&c->pg);
        di_buf_cleanup(&c->scratch);
    }
    for (size_t i = 0; l->pool && i < l->npool; i++)
        di_batch_cleanup(&l->pool[i]);
    for (size_t i = 0; i < l->nahead; i++)
        free(l->ahead[i].end_progress);
    free(l->ahead);
    free(l->inherited);
    free(l->wm_progress);
    free(l->queue);
    free(l->free_list);
    free(l->pool);
    free(l->conns);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->order);
    pthread_cond_destroy(&l->cv);
    free(l);
}
