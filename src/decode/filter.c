/* filter.c - the bz2, xz and zstd decoder kinds, through libarchive's filters
 * and its "raw" format (the decompressed stream as one entry). None of these
 * keeps restart points the way zran does for gzip, so a checkpoint names the
 * object's start and the count of decoded bytes to skip (docs/checkpoint.md). */
#include "decoder_impl.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>

#define FILTER_IN_SIZE ((size_t)256 << 10)

typedef struct filter_state {
    struct archive *a;
    unsigned char *in; /* what the read callback hands libarchive */
    di_error pull_err; /* the source's own error, kept across libarchive */
    int pull_failed;
    int at_end;
} filter_state;

/* di_filter_kind: the kinds this file implements. */
int di_filter_kind(di_compression kind) {
    return kind == DI_COMP_BZIP2 || kind == DI_COMP_XZ || kind == DI_COMP_ZSTD;
}

/* pull_cb feeds libarchive compressed bytes from the decoder's pull function;
 * a source failure is kept so the caller sees the source's error, not
 * libarchive's rewording of it. */
static la_ssize_t pull_cb(struct archive *a, void *ctx, const void **buf) {
    di_decoder *d = ctx;
    filter_state *f = d->state;
    size_t n = 0;
    if (d->pull(d->ctx, f->in, FILTER_IN_SIZE, &n, &f->pull_err) < 0) {
        f->pull_failed = 1;
        archive_set_error(a, EIO, "%s", f->pull_err.message);
        return -1;
    }
    d->in_offset += (int64_t)n;
    *buf = f->in;
    return (la_ssize_t)n;
}

/* archive_fail turns libarchive's complaint into an input error at the
 * compressed offset (or passes the source's own error through). */
static int archive_fail(di_decoder *d, const char *doing, di_error *err) {
    filter_state *f = d->state;
    if (f->pull_failed) {
        *err = f->pull_err;
        return -1;
    }
    const char *why = archive_error_string(f->a);
    return di_error_set(err, DI_ERR_INPUT, "corrupt %s data near compressed byte %lld (%s: %s)",
                        di_compression_name(d->kind), (long long)d->in_offset, doing,
                        why ? why : "no detail");
}

/* filter_read hands out decompressed bytes of the single raw entry. */
static int filter_read(di_decoder *d, void *buf, size_t cap, size_t *n, di_error *err) {
    filter_state *f = d->state;
    *n = 0;
    if (f->at_end)
        return 0;
    la_ssize_t got = archive_read_data(f->a, buf, cap);
    if (got < 0)
        return archive_fail(d, "decompressing", err);
    f->at_end = got == 0;
    *n = (size_t)got;
    return 0;
}

/* filter_mark: no restart points inside the stream; resume from the start and
 * skip the decoded bytes before out_pos. */
static int filter_mark(const di_decoder *d, int64_t out_pos, di_decode_point *pt) {
    *pt = (di_decode_point){.kind = d->kind, .member_start = 1, .skip = out_pos};
    return 0;
}

/* filter_close frees libarchive's reader and the input buffer. */
static void filter_close(di_decoder *d) {
    filter_state *f = d->state;
    if (!f)
        return;
    if (f->a)
        archive_read_free(f->a);
    free(f->in);
    free(f);
    d->state = NULL;
}

static const di_decoder_ops k_filter_ops = {filter_read, filter_mark, filter_close};

/* support_filter enables the one filter the kind names: a bz2 job must not
 * silently accept an xz object. */
static int support_filter(struct archive *a, di_compression kind) {
    switch (kind) {
    case DI_COMP_BZIP2:
        return archive_read_support_filter_bzip2(a);
    case DI_COMP_XZ:
        return archive_read_support_filter_xz(a);
    default:
        return archive_read_support_filter_zstd(a);
    }
}

/* di_filter_init opens libarchive over the pull function and reaches the raw
 * entry, so the first read returns decompressed bytes. */
int di_filter_init(di_decoder *d, di_error *err) {
    filter_state *f = calloc(1, sizeof *f);
    if (!f || !(f->in = malloc(FILTER_IN_SIZE)) || !(f->a = archive_read_new())) {
        if (f)
            free(f->in);
        free(f);
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory opening the decoder");
    }
    d->state = f;
    d->ops = &k_filter_ops;
    d->in_offset = 0;
    d->out_offset = 0;
    if (support_filter(f->a, d->kind) != ARCHIVE_OK ||
        archive_read_support_format_raw(f->a) != ARCHIVE_OK)
        return di_error_set(err, DI_ERR_INTERNAL, "libarchive was built without %s support",
                            di_compression_name(d->kind));
    struct archive_entry *e;
    if (archive_read_open(f->a, d, NULL, pull_cb, NULL) != ARCHIVE_OK ||
        archive_read_next_header(f->a, &e) != ARCHIVE_OK)
        return archive_fail(d, "opening", err);
    if (archive_filter_code(f->a, 0) == ARCHIVE_FILTER_NONE)
        return di_error_set(err, DI_ERR_INPUT,
                            "the object is not %s data (its first bytes do not match)",
                            di_compression_name(d->kind));
    return 0;
}
