/* seekable.h - private to src/read/: a source that can be read from any
 * offset, for libarchive's seeking zip reader. It opens the object lazily at
 * the first read, and a seek closes the request and opens a ranged one at the
 * new offset (a short forward seek just reads on), pinned to the ETag the
 * object had when the job started. */
#ifndef DI_READ_SEEKABLE_H
#define DI_READ_SEEKABLE_H

#include "dsa_ingest/source.h"

typedef struct di_seekable {
    const char *url; /* borrowed */
    di_source_opts opts;
    char etag[256]; /* "" when the server gave none */
    int64_t size;
    int64_t pos;
    di_source *src;  /* NULL until the next read */
    int64_t fetched; /* bytes received by closed requests */
    int requests;
} di_seekable;

/* di_seekable_init: size and etag come from a first open of the object. */
void di_seekable_init(di_seekable *s, const char *url, const di_source_opts *opts, int64_t size,
                      const char *etag);
DI_MUSTCHECK int di_seekable_read(void *s, void *buf, size_t cap, size_t *n, di_error *err);
DI_MUSTCHECK int di_seekable_seek(void *s, int64_t offset, di_error *err);
int64_t di_seekable_fetched(const di_seekable *s);
void di_seekable_close(di_seekable *s);

#endif
