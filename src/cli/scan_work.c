/* scan_work.c - records handed from the reading thread to one worker in
 * blocks (see scan_work.h). A block holds up to BLOCK_RECORDS records or
 * about BLOCK_BYTES of fields; NBLOCKS blocks are allocated once and reused,
 * so memory stays flat whatever the input: a block only grows past
 * BLOCK_BYTES by the size of the largest record (capped by the parser). */
#include "cli/scan_work.h"

#include "dsa_ingest/buf.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_RECORDS 2048
#define BLOCK_BYTES   ((size_t)512 << 10)
#define NBLOCKS       3
#define BYTES_MAX     ((size_t)1 << 30)

typedef struct brec {
    size_t first, nfields; /* its fields: [first, first + nfields) of the block's arrays */
    int64_t row, start, next;
    int has_kinds, has_names;
} brec;

typedef struct block {
    di_buf bytes; /* fields and names, each NUL-terminated */
    brec recs[BLOCK_RECORDS];
    size_t nrec, nfld, fcap;
    size_t *off, *len, *noff; /* per field: value offset, length, name offset */
    unsigned char *kind;
} block;

struct scan_work {
    scan_work_fn fn;
    void *ctx;
    block *blocks;      /* NBLOCKS */
    size_t head, count; /* published blocks: [head, head + count), the worker's */
    size_t fill;        /* the block the reading side fills: its alone, no lock */
    int stop, failed;   /* failed: fn or memory failed (read under mu) */
    pthread_mutex_t mu;
    pthread_cond_t work, room;
    pthread_t thread;
    /* the worker's own: pointer arrays for one record */
    const char **ptrs, **names;
    size_t pcap;
};

/* grow_fields makes room for n more fields in b; it allocates only when a
 * block meets more fields than it ever held. */
static int grow_fields(block *b, size_t n) {
    if (b->nfld + n <= b->fcap)
        return 0;
    size_t cap = b->fcap ? b->fcap : 4096;
    while (cap < b->nfld + n)
        cap *= 2;
    size_t *off = realloc(b->off, cap * sizeof *off);
    if (off)
        b->off = off;
    size_t *len = realloc(b->len, cap * sizeof *len);
    if (len)
        b->len = len;
    size_t *noff = realloc(b->noff, cap * sizeof *noff);
    if (noff)
        b->noff = noff;
    unsigned char *kind = realloc(b->kind, cap);
    if (kind)
        b->kind = kind;
    if (!off || !len || !noff || !kind)
        return -1;
    b->fcap = cap;
    return 0;
}

/* contiguous tells whether the fields lie one after the other, each with its
 * NUL (a CSV record in the parser's arena): then one memcpy copies them all. */
static int contiguous(const di_record *rec) {
    for (size_t i = 1; i < rec->nfields; i++)
        if (rec->fields[i] != rec->fields[i - 1] + rec->lens[i - 1] + 1)
            return 0;
    return 1;
}

/* copy_values appends the record's values to b->bytes and notes their offsets. */
static int copy_values(block *b, const di_record *rec) {
    size_t nf = rec->nfields, base = b->bytes.len;
    memcpy(b->len + b->nfld, rec->lens, nf * sizeof *rec->lens);
    if (nf && contiguous(rec)) {
        size_t span = (size_t)(rec->fields[nf - 1] - rec->fields[0]) + rec->lens[nf - 1] + 1;
        if (di_buf_reserve(&b->bytes, span))
            return -1;
        memcpy(b->bytes.data + base, rec->fields[0], span);
        b->bytes.len += span;
        for (size_t i = 0; i < nf; i++)
            b->off[b->nfld + i] = base + (size_t)(rec->fields[i] - rec->fields[0]);
        return 0;
    }
    for (size_t i = 0; i < nf; i++) {
        b->off[b->nfld + i] = b->bytes.len;
        if (di_buf_append(&b->bytes, rec->fields[i], rec->lens[i] + 1))
            return -1;
    }
    return 0;
}

/* copy_names appends an NDJSON record's keys. */
static int copy_names(block *b, const di_record *rec) {
    for (size_t i = 0; i < rec->nfields; i++) {
        b->noff[b->nfld + i] = b->bytes.len;
        if (di_buf_append(&b->bytes, rec->names[i], strlen(rec->names[i]) + 1))
            return -1;
    }
    return 0;
}

/* copy_record puts one record into b. */
static int copy_record(block *b, const di_record *rec) {
    size_t nf = rec->nfields;
    if (grow_fields(b, nf) || copy_values(b, rec) || (rec->names && copy_names(b, rec)))
        return -1;
    if (rec->kinds)
        memcpy(b->kind + b->nfld, rec->kinds, nf);
    b->recs[b->nrec++] = (brec){
        b->nfld, nf, rec->row, rec->start, rec->next, rec->kinds != NULL, rec->names != NULL};
    b->nfld += nf;
    return 0;
}

/* grow_ptrs makes the worker's pointer arrays hold n fields. */
static int grow_ptrs(scan_work *w, size_t n) {
    if (n <= w->pcap)
        return 0;
    const char **p = realloc(w->ptrs, n * sizeof *p);
    if (p)
        w->ptrs = p;
    const char **q = realloc(w->names, n * sizeof *q);
    if (q)
        w->names = q;
    if (!p || !q)
        return -1;
    w->pcap = n;
    return 0;
}

/* handle_block gives fn every record of b, in order. */
static int handle_block(scan_work *w, const block *b) {
    for (size_t k = 0; k < b->nrec; k++) {
        const brec *br = &b->recs[k];
        if (grow_ptrs(w, br->nfields))
            return -1;
        for (size_t i = 0; i < br->nfields; i++) {
            w->ptrs[i] = b->bytes.data + b->off[br->first + i];
            if (br->has_names)
                w->names[i] = b->bytes.data + b->noff[br->first + i];
        }
        di_record rec = {.fields = w->ptrs,
                         .lens = b->len + br->first,
                         .kinds = br->has_kinds ? b->kind + br->first : NULL,
                         .names = br->has_names ? w->names : NULL,
                         .nfields = br->nfields,
                         .row = br->row,
                         .start = br->start,
                         .next = br->next};
        if (w->fn(w->ctx, &rec))
            return -1;
    }
    return 0;
}

/* worker is the thread: handle published blocks in order until stopped. A
 * failure is kept and the blocks after it are passed over, so the reading
 * side never waits on a worker that gave up. */
static void *worker(void *arg) {
    scan_work *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->count == 0 && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        int skip = w->failed;
        block *b = w->stop ? NULL : &w->blocks[w->head];
        pthread_mutex_unlock(&w->mu);
        if (!b)
            return NULL;
        int rc = skip ? 0 : handle_block(w, b);
        b->nrec = b->nfld = 0;
        di_buf_reset(&b->bytes);
        pthread_mutex_lock(&w->mu);
        w->failed |= rc != 0;
        w->head = (w->head + 1) % NBLOCKS;
        w->count--;
        pthread_cond_signal(&w->room);
        pthread_mutex_unlock(&w->mu);
    }
}

/* free_work frees the blocks and the handle (no thread running). */
static void free_work(scan_work *w) {
    for (size_t i = 0; w->blocks && i < NBLOCKS; i++) {
        block *b = &w->blocks[i];
        di_buf_cleanup(&b->bytes);
        free(b->off);
        free(b->len);
        free(b->noff);
        free(b->kind);
    }
    free(w->blocks);
    free(w->ptrs);
    free(w->names);
    free(w);
}

scan_work *scan_work_start(scan_work_fn fn, void *ctx) {
    scan_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fn = fn;
    w->ctx = ctx;
    w->blocks = calloc(NBLOCKS, sizeof *w->blocks);
    if (!w->blocks) {
        free_work(w);
        return NULL;
    }
    for (size_t i = 0; i < NBLOCKS; i++)
        di_buf_init(&w->blocks[i].bytes, BYTES_MAX);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->room, NULL);
    sigset_t all, old; /* the worker blocks every signal: they stay the main thread's */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, worker, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->work);
        pthread_cond_destroy(&w->room);
        free_work(w);
        return NULL;
    }
    return w;
}

/* publish hands the block being filled to the worker and waits until the
 * next one is free (fill == head + count stays true). -1 once the worker
 * failed. */
static int publish(scan_work *w) {
    pthread_mutex_lock(&w->mu);
    if (w->blocks[w->fill].nrec > 0) {
        w->count++;
        w->fill = (w->fill + 1) % NBLOCKS;
        pthread_cond_signal(&w->work);
    }
    while (w->count == NBLOCKS && !w->failed)
        pthread_cond_wait(&w->room, &w->mu);
    int failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

int scan_work_add(scan_work *w, const di_record *rec) {
    block *b = &w->blocks[w->fill];
    if (copy_record(b, rec))
        return -1;
    if (b->nrec == BLOCK_RECORDS || b->bytes.len >= BLOCK_BYTES)
        return publish(w);
    return 0;
}

int scan_work_sync(scan_work *w) {
    if (publish(w))
        return -1;
    pthread_mutex_lock(&w->mu);
    while (w->count > 0 && !w->failed)
        pthread_cond_wait(&w->room, &w->mu);
    int failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

void scan_work_stop(scan_work *w) {
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->room);
    free_work(w);
}
