/* source_impl.h - private to src/source/: the base every source kind embeds.
 *
 * A kind (file.c, http.c, s3.c) puts a di_source first in its own struct, fills
 * it with di_source_base_init and supplies two ops; source.c implements the
 * public getters once, on the base, and advances the offset after every read. */
#ifndef DI_SOURCE_IMPL_H
#define DI_SOURCE_IMPL_H

#include <stdint.h>
#include "dsa_ingest/source.h"

typedef struct di_source_ops {
    /* read: up to cap (> 0) bytes into buf; *nread == 0 only at the end of the
     * object. Returns 0, or -1 with err set. The base offset is advanced by source.c. */
    int (*read)(di_source *s, void *buf, size_t cap, size_t *nread, di_error *err);
    /* close: frees everything the kind owns, the struct included. */
    void (*close)(di_source *s);
} di_source_ops;

struct di_source {
    const di_source_ops *ops;
    int64_t offset;     /* next byte read() returns */
    int64_t size;       /* -1 while unknown */
    char etag[256];     /* "" when the server gave none */
    char display[1024]; /* the URL without secrets, for messages and logs */
    di_source_stats stats;
};

/* di_source_base_init fills the base of a freshly allocated source. */
void di_source_base_init(di_source *s, const di_source_ops *ops, const char *display,
                         int64_t offset);

/* di_file_open opens a local path (already percent-decoded); display names it in
 * messages. opts->etag, when set, must equal the file's "mtime-size" tag. */
di_source *di_file_open(const char *path, const char *display, int64_t offset,
                        const di_source_opts *opts, di_error *err);

/* di_http_open opens an http(s) URL with no hooks (see http.h for the full form). */
di_source *di_http_open(const char *url, const char *display, int64_t offset,
                        const di_source_opts *opts, di_error *err);

#endif
