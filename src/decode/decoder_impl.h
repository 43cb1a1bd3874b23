/* decoder_impl.h - private to src/decode/ and its unit test: the decoder handle,
 * the small vtable each kind fills in, and an entry point that pulls bytes from
 * any function instead of a di_source, so tests can feed a decoder from memory.
 * Not part of the public API: include/dsa_ingest/decode.h is the contract. */
#ifndef DI_DECODER_IMPL_H
#define DI_DECODER_IMPL_H

#include "dsa_ingest/decode.h"

/* di_pull_fn reads up to cap bytes of the compressed object; *n == 0 at end.
 * Same contract as di_source_read. */
typedef int (*di_pull_fn)(void *ctx, void *buf, size_t cap, size_t *n, di_error *err);

/* The per-kind operations. read may return -1 with *n > 0: the bytes before
 * the failure are valid and are handed out before the error (decode.c). */
typedef struct di_decoder_ops {
    int (*read)(di_decoder *d, void *buf, size_t cap, size_t *n, di_error *err);
    int (*mark)(const di_decoder *d, int64_t out_pos, di_decode_point *pt);
    void (*close)(di_decoder *d);
} di_decoder_ops;

struct di_decoder {
    const di_decoder_ops *ops;
    di_compression kind;
    di_pull_fn pull;    /* where compressed bytes come from */
    void *ctx;          /* pull's argument (borrowed) */
    int64_t in_offset;  /* compressed bytes consumed, absolute; kept by the kind */
    int64_t out_offset; /* decompressed bytes returned, absolute; kept by decode.c */
    int64_t skip;       /* resume: decompressed bytes still to discard */
    int at_end;         /* none: the source reported its end */
    void *state;        /* the kind's own state (gzip.c), freed by ops->close */
    int failed;         /* sticky: every later read returns `failure` */
    di_error failure;
};

/* di_decoder_open_fn is di_decoder_open over a pull function (ctx borrowed). */
di_decoder *di_decoder_open_fn(di_pull_fn pull, void *ctx, di_compression kind,
                               const di_decode_point *resume, di_error *err);

/* di_gzip_init sets d->ops and d->state for gzip (fresh, or resumed at a point
 * already validated by decode.c). Returns 0, or -1 with err set. */
int di_gzip_init(di_decoder *d, const di_decode_point *resume, di_error *err);

/* di_filter_kind tells whether kind is one of libarchive's filters here
 * (bz2, xz, zstd); di_filter_init sets d up for it, always from the object's
 * start (a resume point only skips). Returns 0, or -1 with err set. */
int di_filter_kind(di_compression kind);
int di_filter_init(di_decoder *d, di_error *err);

#endif
