/* source.c - stage 1's front door: picks the source kind by URL scheme and
 * implements the public getters once, on the shared base (source_impl.h).
 * Plain paths and file:// go to file.c, http(s):// to http.c, s3:// to s3.c; any other
 * scheme is a configuration error until its kind exists. */
#include "source/source_impl.h"
#include "source/s3.h"
#include "util/percent.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DI_DEFAULT_CHUNK (1024 * 1024)

/* di_source_opts_default fills the defaults of DESIGN §4 (IMPORT_CHUNK_SIZE). */
void di_source_opts_default(di_source_opts *o) {
    o->chunk_size = DI_DEFAULT_CHUNK;
    o->max_retries = 8;
    o->retry_max_s = 120;
    o->backoff_base_s = 0.2;
    o->stall_s = 30;
    o->connect_timeout_s = 15;
    o->etag = NULL;
    o->check_addr = NULL;
    o->check_ctx = NULL;
}

/* di_source_base_init gives every kind the same starting state. */
void di_source_base_init(di_source *s, const di_source_ops *ops, const char *display,
                         int64_t offset) {
    s->ops = ops;
    s->offset = offset;
    s->size = -1;
    s->etag[0] = '\0';
    snprintf(s->display, sizeof s->display, "%s", display);
    memset(&s->stats, 0, sizeof s->stats);
}

/* scheme_len returns the length of url's "scheme" when url starts with
 * "scheme://", else 0 (a plain path, even one with a colon in it). */
static size_t scheme_len(const char *url) {
    size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    if (n == 0 || !((url[0] | 0x20) >= 'a' && (url[0] | 0x20) <= 'z'))
        return 0;
    return strncmp(url + n, "://", 3) == 0 ? n : 0;
}

/* file_url_path turns file:///p or file://localhost/p into a local path; the
 * query and fragment, if any, are not part of it. */
static int file_url_path(const char *url, char *path, size_t pathsz) {
    const char *p = url + strlen("file://");
    if (strncasecmp(p, "localhost/", 10) == 0)
        p += strlen("localhost");
    if (*p != '/')
        return -1;
    return di_percent_decode(p, strcspn(p, "?#"), 0, path, pathsz);
}

/* open_file_url opens a file:// URL through file.c. */
static di_source *open_file_url(const char *url, const char *display, int64_t offset,
                                const di_source_opts *o, di_error *err) {
    char path[4096];
    if (file_url_path(url, path, sizeof path) != 0) {
        di_error_set(err, DI_ERR_CONFIG,
                     "bad file URL (want file:///absolute/path, percent-encoded): %s", display);
        return NULL;
    }
    return di_file_open(path, display, offset, o, err);
}

/* di_source_open dispatches on the scheme; every kind gets a complete opts. */
di_source *di_source_open(const char *url, int64_t offset, const di_source_opts *opts,
                          di_error *err) {
    di_source_opts d;
    char display[1024];
    if (!opts) {
        di_source_opts_default(&d);
        opts = &d;
    }
    di_url_redact(url, display, sizeof display);
    if (offset < 0) {
        di_error_set(err, DI_ERR_CONFIG, "negative source offset %lld: %s", (long long)offset,
                     display);
        return NULL;
    }
    size_t n = scheme_len(url);
    if (n == 0)
        return di_file_open(url, url, offset, opts, err);
    if (n == 4 && strncasecmp(url, "file", 4) == 0)
        return open_file_url(url, display, offset, opts, err);
    if ((n == 4 && strncasecmp(url, "http", 4) == 0) ||
        (n == 5 && strncasecmp(url, "https", 5) == 0))
        return di_http_open(url, display, offset, opts, err);
    if (n == 2 && strncasecmp(url, "s3", 2) == 0)
        return di_s3_open(url, offset, opts, err);
    di_error_set(err, DI_ERR_CONFIG, "unsupported source scheme \"%.*s\": %s", (int)n, url,
                 display);
    return NULL;
}

/* di_source_read delegates to the kind and keeps the offset in one place. */
int di_source_read(di_source *s, void *buf, size_t cap, size_t *nread, di_error *err) {
    *nread = 0;
    if (cap == 0)
        return di_error_set(err, DI_ERR_INTERNAL, "%s: read into a zero-size buffer", s->display);
    if (s->ops->read(s, buf, cap, nread, err) != 0)
        return -1;
    s->offset += (int64_t)*nread;
    return 0;
}

/* di_source_size: -1 until the kind learns it. */
int64_t di_source_size(const di_source *s) {
    return s->size;
}

/* di_source_etag: the pin a resumed job must pass back in opts->etag. */
const char *di_source_etag(const di_source *s) {
    return s->etag;
}

/* di_source_offset: the checkpoint position when nothing is buffered above us. */
int64_t di_source_offset(const di_source *s) {
    return s->offset;
}

/* di_source_display: safe to log; never holds credentials or a signed query. */
const char *di_source_display(const di_source *s) {
    return s->display;
}

/* di_source_get_stats copies the counters out, so callers never hold the base. */
void di_source_get_stats(const di_source *s, di_source_stats *st) {
    *st = s->stats;
}

/* di_source_close hands the whole struct back to its kind. */
void di_source_close(di_source *s) {
    if (s)
        s->ops->close(s);
}

/* di_url_redact drops the userinfo (user and password: an access key is a
 * secret too) and everything from '?' or '#' (presigned URLs carry their
 * signature in the query). A plain path is copied unchanged. */
void di_url_redact(const char *url, char *out, size_t outsz) {
    if (outsz == 0)
        return;
    size_t n = scheme_len(url);
    if (n == 0) {
        snprintf(out, outsz, "%s", url);
        return;
    }
    const char *auth = url + n + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *host = auth;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            host = auth + i + 1; /* the last '@': a password may contain one */
    size_t rest = strcspn(host, "?#");
    snprintf(out, outsz, "%.*s%.*s", (int)(n + 3), url, (int)rest, host);
}
