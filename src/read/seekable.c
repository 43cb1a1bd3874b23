/* seekable.c - re-readable object for the zip reader (see seekable.h). */
#include "read/seekable.h"

#include <stdio.h>
#include <string.h>

#define SHORT_SEEK ((int64_t)256 << 10) /* read on rather than start a new request */

void di_seekable_init(di_seekable *s, const char *url, const di_source_opts *opts, int64_t size,
                      const char *etag) {
    memset(s, 0, sizeof *s);
    s->url = url;
    s->opts = *opts;
    s->size = size;
    snprintf(s->etag, sizeof s->etag, "%s", etag ? etag : "");
    s->opts.etag = s->etag[0] ? s->etag : NULL;
}

/* drop closes the current request, keeping its byte count. */
static void drop(di_seekable *s) {
    if (!s->src)
        return;
    di_source_stats st;
    di_source_get_stats(s->src, &st);
    s->fetched += st.bytes_fetched;
    di_source_close(s->src);
    s->src = NULL;
}

int di_seekable_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    di_seekable *s = ctx;
    *n = 0;
    if (s->pos >= s->size)
        return 0;
    if (!s->src) {
        s->src = di_source_open(s->url, s->pos, &s->opts, err);
        if (!s->src)
            return -1;
        s->requests++;
    }
    if (di_source_read(s->src, buf, cap, n, err) < 0)
        return -1;
    s->pos += (int64_t)*n;
    return 0;
}

int di_seekable_seek(void *ctx, int64_t offset, di_error *err) {
    di_seekable *s = ctx;
    if (s->src && offset > s->pos && offset - s->pos <= SHORT_SEEK) {
        unsigned char scratch[16384];
        while (s->pos < offset) {
            size_t want = (size_t)(offset - s->pos), got = 0;
            if (want > sizeof scratch)
                want = sizeof scratch;
            if (di_seekable_read(s, scratch, want, &got, err) < 0)
                return -1;
            if (got == 0)
                break;
        }
        return 0;
    }
    if (offset != s->pos)
        drop(s);
    s->pos = offset;
    return 0;
}

int64_t di_seekable_fetched(const di_seekable *s) {
    int64_t n = s->fetched;
    if (s->src) {
        di_source_stats st;
        di_source_get_stats(s->src, &st);
        n += st.bytes_fetched;
    }
    return n;
}

void di_seekable_close(di_seekable *s) {
    drop(s);
}
