/* prefetch.c - the read-ahead thread (see prefetch.h): a ring of chunks, one
 * producer, one consumer, a mutex and two condition variables. A chunk is
 * filled whole (or up to the end or an error) before it is published, so a
 * handover costs one lock per chunk, not per read. */
#include "read/prefetch.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
    unsigned char *data;
    size_t len, pos; /* [pos, len) not yet handed out */
    int64_t tag;
    int end;    /* the stream ends after these bytes */
    int failed; /* an error comes after these bytes */
    di_error err;
} chunk;

struct di_prefetch {
    di_prefetch_fn fill;
    void *ctx;
    size_t nchunks, size;
    chunk *ring;
    size_t head, count; /* the consumer's chunk, and chunks published */
    int stop, done;     /* stop: asked to end; done: the producer ended */
    pthread_mutex_t mu; /* the ring */
    pthread_cond_t ready, room;
    pthread_mutex_t io; /* held while fill runs (di_prefetch_lock) */
    pthread_t thread;
};

/* fill_chunk fills c from fill(ctx) until it is full, the stream ends or
 * fill fails; only the io lock is held, the ring stays free to the consumer. */
static void fill_chunk(di_prefetch *pf, chunk *c) {
    c->len = c->pos = 0;
    c->end = c->failed = 0;
    pthread_mutex_lock(&pf->io);
    while (c->len < pf->size) {
        size_t n = 0;
        if (pf->fill(pf->ctx, pf, c->data + c->len, pf->size - c->len, &n, &c->tag, &c->err) != 0) {
            c->failed = 1;
            break;
        }
        if (n == 0) {
            c->end = 1;
            break;
        }
        c->len += n;
    }
    pthread_mutex_unlock(&pf->io);
}

/* producer is the thread: fill the next free chunk, publish it, until the
 * stream ends, fill fails, or the consumer stops it. */
static void *producer(void *arg) {
    di_prefetch *pf = arg;
    size_t slot = 0;
    for (;;) {
        pthread_mutex_lock(&pf->mu);
        while (pf->count == pf->nchunks && !pf->stop)
            pthread_cond_wait(&pf->room, &pf->mu);
        int stop = pf->stop;
        pthread_mutex_unlock(&pf->mu);
        if (stop)
            break;
        chunk *c = &pf->ring[slot];
        fill_chunk(pf, c);
        pthread_mutex_lock(&pf->mu);
        pf->count++;
        pthread_cond_signal(&pf->ready);
        pthread_mutex_unlock(&pf->mu);
        if (c->end || c->failed)
            break;
        slot = (slot + 1) % pf->nchunks;
    }
    pthread_mutex_lock(&pf->mu);
    pf->done = 1;
    pthread_cond_signal(&pf->ready);
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

/* free_ring frees the chunks and the handle (the thread is not running). */
static void free_ring(di_prefetch *pf) {
    for (size_t i = 0; pf->ring && i < pf->nchunks; i++)
        free(pf->ring[i].data);
    free(pf->ring);
    free(pf);
}

di_prefetch *di_prefetch_start(di_prefetch_fn fill, void *ctx, size_t nchunks, size_t size,
                               di_error *err) {
    di_prefetch *pf = calloc(1, sizeof *pf);
    if (pf) {
        *pf = (di_prefetch){.fill = fill, .ctx = ctx, .nchunks = nchunks, .size = size};
        pf->ring = calloc(nchunks, sizeof *pf->ring);
    }
    for (size_t i = 0; pf && pf->ring && i < nchunks; i++)
        if (!(pf->ring[i].data = malloc(size)))
            break;
    if (!pf || !pf->ring || !pf->ring[nchunks - 1].data) {
        if (pf)
            free_ring(pf);
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&pf->mu, NULL);
    pthread_mutex_init(&pf->io, NULL);
    pthread_cond_init(&pf->ready, NULL);
    pthread_cond_init(&pf->room, NULL);
    /* the thread blocks every signal: they stay the caller's, as without it */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&pf->thread, NULL, producer, pf);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&pf->mu);
        pthread_mutex_destroy(&pf->io);
        pthread_cond_destroy(&pf->ready);
        pthread_cond_destroy(&pf->room);
        free_ring(pf);
        di_error_set(err, DI_ERR_INTERNAL, "cannot start the read-ahead thread");
        return NULL;
    }
    return pf;
}

/* take_bytes copies from the consumer's chunk; a drained chunk goes back to
 * the producer unless it carries the end or an error, which stay sticky. */
static size_t take_bytes(di_prefetch *pf, chunk *c, unsigned char *buf, size_t cap) {
    size_t k = c->len - c->pos < cap ? c->len - c->pos : cap;
    memcpy(buf, c->data + c->pos, k);
    c->pos += k;
    if (c->pos == c->len && !c->end && !c->failed) {
        pthread_mutex_lock(&pf->mu);
        pf->head = (pf->head + 1) % pf->nchunks;
        pf->count--;
        pthread_cond_signal(&pf->room);
        pthread_mutex_unlock(&pf->mu);
    }
    return k;
}

int di_prefetch_read(di_prefetch *pf, void *buf, size_t cap, size_t *n, int64_t *tag,
                     di_error *err) {
    *n = 0;
    while (*n < cap) {
        pthread_mutex_lock(&pf->mu);
        while (pf->count == 0 && !pf->done && *n == 0)
            pthread_cond_wait(&pf->ready, &pf->mu);
        size_t avail = pf->count;
        pthread_mutex_unlock(&pf->mu);
        if (avail == 0)
            return 0; /* what was ready is handed out; the producer ended with no chunk left */
        chunk *c = &pf->ring[pf->head];
        *tag = c->tag;
        if (c->pos < c->len) {
            *n += take_bytes(pf, c, (unsigned char *)buf + *n, cap - *n);
            continue;
        }
        if (c->failed && *n == 0) {
            *err = c->err;
            return -1;
        }
        return 0; /* the end, or an error for the next call */
    }
    return 0;
}

void di_prefetch_lock(di_prefetch *pf) {
    pthread_mutex_lock(&pf->io);
}

void di_prefetch_unlock(di_prefetch *pf) {
    pthread_mutex_unlock(&pf->io);
}

void di_prefetch_stop(di_prefetch *pf) {
    if (!pf)
        return;
    pthread_mutex_lock(&pf->mu);
    pf->stop = 1;
    pthread_cond_signal(&pf->room);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->thread, NULL);
    pthread_mutex_destroy(&pf->mu);
    pthread_mutex_destroy(&pf->io);
    pthread_cond_destroy(&pf->ready);
    pthread_cond_destroy(&pf->room);
    free_ring(pf);
}
