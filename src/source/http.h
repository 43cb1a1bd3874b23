/* http.h - private to src/source/: the HTTP(S) source's full entry point, for
 * kinds built on it (s3.c signs every request through the hooks). The
 * transfer, backpressure, resume, ETag pinning and backoff all stay in http.c. */
#ifndef DI_SOURCE_HTTP_H
#define DI_SOURCE_HTTP_H

#include <curl/curl.h>
#include "source/source_impl.h"

/* di_http_hooks let a kind shape each request and word its failures. Any hook
 * may be NULL. ctx is TAKEN by di_http_open_ex: free_ctx(ctx) runs exactly once,
 * at close or when the open fails. */
struct di_http_hooks {
    void *ctx;
    /* prepare runs before every GET (the first and each resume), after the
     * Range/If-Match headers are in *headers: add curl options (CURLOPT_AWS_SIGV4,
     * CURLOPT_USERPWD) or append headers. Returns 0, or -1 with err set; a
     * DI_ERR_TRANSIENT error counts as a failed attempt and is retried. */
    int (*prepare)(void *ctx, CURL *easy, struct curl_slist **headers, di_error *err);
    /* map_status sees every final status >= 400 with the start of the response
     * body (NUL-terminated, at most 1 KiB, e.g. S3's <Error><Code>). It returns
     * DI_ERR_NONE for the default mapping, or the class it gave err with
     * di_error_set (DI_ERR_TRANSIENT: retry, err's message is the reason). */
    di_class (*map_status)(void *ctx, long status, const char *body, di_error *err);
    void (*free_ctx)(void *ctx);
    /* on_status sees the final status of every request once, 0 when the
     * request got no response at all (for metrics). */
    void (*on_status)(void *ctx, long status);
};

/* di_http_open_ex opens url (which may carry secrets: it is never printed) at
 * byte offset; display is what messages show (e.g. "s3://bucket/key"). The first
 * GET is made before it returns, so size, ETag, 404 and 403 are known then.
 * hooks is copied and may be NULL. */
di_source *di_http_open_ex(const char *url, const char *display, int64_t offset,
                           const di_source_opts *o, const struct di_http_hooks *hooks,
                           di_error *err);

#endif
