/* test_reader.c - the reader's read-ahead thread: the prefetch ring alone
 * (every byte in order, whatever the chunk, fill and read sizes; an error
 * after the bytes before it; stopping early never hangs), and a gzip CSV read
 * with and without the thread giving the same records, offsets, marks and
 * byte counts. */
#include "check.h"
#include "dsa_ingest/reader.h"
#include "read/prefetch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* A stream made up on the fly: byte i is (i * 7 + i / 251) & 0xFF. */
typedef struct gen_in {
    size_t total, pos;
    size_t piece;      /* most bytes one fill returns */
    size_t fail_at;    /* fail once pos reaches this (SIZE_MAX: never) */
    int fills_checked; /* fills that found themselves under the io lock */
} gen_in;

static unsigned char gen_byte(size_t i) {
    return (unsigned char)((i * 7 + i / 251) & 0xFF);
}

/* gen_fill is a di_prefetch_fn: pieces of the stream, tagged with the
 * position after them, then the end or a failure. */
static int gen_fill(void *ctx, di_prefetch *pf, void *buf, size_t cap, size_t *n, int64_t *tag,
                    di_error *err) {
    gen_in *g = ctx;
    di_prefetch_unlock(pf); /* as the reader does around a network wait */
    di_prefetch_lock(pf);
    *n = 0;
    *tag = (int64_t)g->pos;
    if (g->pos >= g->fail_at)
        return di_error_set(err, DI_ERR_INPUT, "made-up failure at byte %zu", g->pos);
    size_t k = g->total - g->pos;
    k = k < cap ? k : cap;
    k = k < g->piece ? k : g->piece;
    if (g->fail_at != SIZE_MAX && g->pos + k > g->fail_at)
        k = g->fail_at - g->pos;
    for (size_t i = 0; i < k; i++)
        ((unsigned char *)buf)[i] = gen_byte(g->pos + i);
    g->pos += k;
    *n = k;
    *tag = (int64_t)g->pos;
    return 0;
}

typedef struct ring_case {
    size_t total, piece, nchunks, chunk, cap, fail_at, stop_after;
} ring_case;

/* run_ring reads a case to its end (or stop_after bytes) and checks it. */
static void run_ring(const ring_case *c) {
    gen_in g = {c->total, 0, c->piece, c->fail_at, 0};
    di_error err;
    di_error_clear(&err);
    di_prefetch *pf = di_prefetch_start(gen_fill, &g, c->nchunks, c->chunk, &err);
    CHECK(pf != NULL);
    if (!pf)
        return;
    unsigned char *buf = malloc(c->cap);
    size_t got = 0, bad = 0;
    int64_t tag = -1;
    int rc = 0;
    for (;;) {
        size_t n = 0;
        rc = di_prefetch_read(pf, buf, c->cap, &n, &tag, &err);
        for (size_t i = 0; i < n; i++)
            bad += buf[i] != gen_byte(got + i);
        got += n;
        if (rc < 0 || n == 0 || got >= c->stop_after)
            break;
    }
    CHECK_INT(bad, 0);
    size_t want = c->fail_at < c->total ? c->fail_at : c->total;
    if (c->stop_after < want) {
        CHECK(got >= c->stop_after);
    } else if (c->fail_at < c->total) {
        CHECK_INT(rc, -1);
        CHECK_INT(got, c->fail_at);
        CHECK(strstr(err.message, "made-up failure") != NULL);
        size_t n = 1;
        CHECK_INT(di_prefetch_read(pf, buf, c->cap, &n, &tag, &err), -1); /* sticky */
        CHECK_INT(n, 0);
    } else {
        CHECK_INT(rc, 0);
        CHECK_INT(got, c->total);
        CHECK_INT(tag, (int64_t)c->total);
        size_t n = 1;
        CHECK_INT(di_prefetch_read(pf, buf, c->cap, &n, &tag, &err), 0); /* the end stays */
        CHECK_INT(n, 0);
    }
    di_prefetch_stop(pf);
    free(buf);
}

static void test_ring(void) {
    const size_t never = SIZE_MAX;
    static const size_t M = (size_t)1 << 20;
    const ring_case cases[] = {
        /* total, piece, nchunks, chunk, read cap, fail at, stop after */
        {0, 4096, 4, 65536, 65536, never, never},            /* empty */
        {1, 4096, 4, 65536, 65536, never, never},            /* one byte */
        {5 * M + 17, 1000, 4, 65536, 1 << 20, never, never}, /* reads span chunks */
        {5 * M + 17, 1 << 20, 2, 4096, 777, never, never},   /* small reads, big fills */
        {3 * M, 3 * M, 1, 65536, 65536, never, never},       /* one chunk in the ring */
        {3 * M, 4096, 4, 65536, 65536, 2 * M + 5, never},    /* an error mid-stream */
        {3 * M, 4096, 4, 65536, 65536, 0, never},            /* an error at once */
        {3 * M, 4096, 4, 65536, 65536, 65536, never},        /* an error at a chunk's edge */
        {64 * M, 65536, 4, 65536, 65536, never, 100000},     /* the caller stops early */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_ring(&cases[i]);
}

/* write_gzip writes a CSV of n rows (some quoted, with newlines) as gzip. */
static void write_gzip(const char *path, int n) {
    gzFile f = gzopen(path, "wb6");
    gzprintf(f, "id,name,note\n");
    for (int i = 0; i < n; i++)
        gzprintf(f, "%d,name %d,%s\n", i, i % 1000,
                 i % 7 == 0 ? "\"multi\nline, \"\"quoted\"\"\"" : "plain note");
    gzclose(f);
}

/* A digest of everything a caller sees of a reader. */
typedef struct seen {
    int64_t rows, last_next, bytes_in, bytes_out;
    uint64_t fold; /* the fields, rows and offsets folded together */
    int64_t mark_in[64], mark_skip[64];
    int marks, rewinds;
} seen;

/* read_all reads path through a reader with the given read-ahead. */
static void read_all(const char *path, int readahead, seen *s) {
    memset(s, 0, sizeof *s);
    di_reader_opts o;
    di_reader_opts_default(&o);
    o.url = path;
    o.readahead = readahead;
    di_error err;
    di_error_clear(&err);
    di_reader *r = di_reader_open(&o, NULL, &err);
    CHECK(r != NULL);
    if (!r)
        return;
    di_record rec;
    int rc;
    while ((rc = di_reader_next(r, &rec, &err)) == 1) {
        uint64_t h = (uint64_t)rec.row * 31 + (uint64_t)rec.start * 17 + (uint64_t)rec.next;
        for (size_t i = 0; i < rec.nfields; i++)
            h = h * 131 + crc32(0, (const unsigned char *)rec.fields[i], (uInt)rec.lens[i]);
        s->fold = s->fold * 1000003 + h;
        s->rows++;
        s->last_next = rec.next;
        if (s->rows % 25000 == 0 && s->marks < 64) {
            di_reader_pos pos;
            di_reader_pos_init(&pos);
            int rewind = 0;
            di_reader_mark(r, rec.next, &pos, &rewind);
            s->mark_in[s->marks] = pos.point.in_offset;
            s->mark_skip[s->marks++] = pos.point.skip;
            s->rewinds += rewind;
            di_reader_pos_cleanup(&pos);
        }
    }
    CHECK_INT(rc, 0);
    s->bytes_in = di_reader_bytes_in(r);
    s->bytes_out = di_reader_bytes_out(r);
    di_reader_close(r);
}

static void test_same_with_thread(void) {
    char dir[] = "/tmp/dsa-test-reader-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/data.csv.gz", dir);
    write_gzip(path, 300000); /* ~9 MB of CSV: past the decoder's 8 access points */
    seen a, b;
    read_all(path, 0, &a);
    read_all(path, 4, &b);
    CHECK_INT(a.rows, 300000);
    CHECK_INT(b.rows, a.rows);
    CHECK(a.fold == b.fold);
    CHECK_INT(b.last_next, a.last_next);
    CHECK_INT(b.bytes_out, a.bytes_out);
    CHECK_INT(b.bytes_in, a.bytes_in);
    CHECK_INT(b.marks, a.marks);
    CHECK_INT(a.rewinds, 0);
    CHECK_INT(b.rewinds, 0);
    for (int i = 0; i < a.marks && i < b.marks; i++) {
        CHECK_INT(b.mark_in[i], a.mark_in[i]);
        CHECK_INT(b.mark_skip[i], a.mark_skip[i]);
    }
    unlink(path);
    rmdir(dir);
}

int main(void) {
    test_ring();
    test_same_with_thread();
    return check_report();
}
