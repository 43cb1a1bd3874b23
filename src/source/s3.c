/* s3.c - the s3:// source: http.c's resumable, ETag-pinned GET, signed with
 * libcurl's SigV4 (CURLOPT_AWS_SIGV4, x-amz-content-sha256: UNSIGNED-PAYLOAD,
 * x-amz-security-token signed too) before every request, with S3's XML error
 * codes worded for people. No HEAD: the first GET pins size and ETag. */
#include "source/s3.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "source/aws_credentials.h"
#include "source/http.h"
#include "util/metrics.h"

#define S3_URL_MAX 8192

typedef struct s3_ctx {
    di_aws_provider *aws; /* owned */
    char sigv4[128];      /* "aws:amz:REGION:s3" */
    char display[DI_S3_BUCKET_MAX + DI_S3_KEY_MAX + 8];
    char bucket[DI_S3_BUCKET_MAX + 1];
    int64_t req_off; /* where the current request starts (its Range header) */
} s3_ctx;

/* ---- addressing ---- */

/* bucket_char: what S3 and the S3-compatible stores accept in a bucket name. */
static int bucket_char(int c) {
    return isalnum(c) || c == '.' || c == '-' || c == '_';
}

/* di_s3_parse_url: see s3.h. Messages show the URL without any userinfo. */
int di_s3_parse_url(const char *url, char *bucket, size_t bsz, char *key, size_t ksz,
                    di_error *err) {
    char shown[512];
    di_url_redact(url, shown, sizeof shown);
    if (strncasecmp(url, "s3://", 5) != 0)
        return di_error_set(err, DI_ERR_CONFIG, "not an s3:// URL: %s", shown);
    const char *b = url + 5;
    size_t bl = strcspn(b, "/");
    if (memchr(b, '@', bl))
        return di_error_set(err, DI_ERR_CONFIG,
                            "an s3:// URL cannot carry credentials (use "
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile): %s",
                            shown);
    for (size_t i = 0; i < bl; i++)
        if (!bucket_char((unsigned char)b[i]))
            return di_error_set(err, DI_ERR_CONFIG,
                                "bad bucket name in %s (want s3://bucket/key; "
                                "a bucket has letters, digits, '.', '-', '_')",
                                shown);
    if (bl == 0 || bl > DI_S3_BUCKET_MAX || bl >= bsz)
        return di_error_set(err, DI_ERR_CONFIG, "bad s3 URL (want s3://bucket/key): %s", shown);
    const char *k = b + bl + (b[bl] == '/');
    size_t kl = strlen(k);
    if (kl == 0)
        return di_error_set(err, DI_ERR_CONFIG,
                            "s3://%.*s names a bucket, not an object "
                            "(want s3://bucket/key)",
                            (int)bl, b);
    if (kl > DI_S3_KEY_MAX || kl >= ksz)
        return di_error_set(err, DI_ERR_CONFIG,
                            "the key of s3://%.*s/… is longer than S3's "
                            "%d bytes",
                            (int)bl, b, DI_S3_KEY_MAX);
    memcpy(bucket, b, bl);
    bucket[bl] = '\0';
    memcpy(key, k, kl + 1);
    return 0;
}

/* di_s3_encode_path: see s3.h. */
int di_s3_encode_path(const char *in, char *out, size_t outsz) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        int keep = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == '/';
        if (o + (keep ? 1 : 3) >= outsz)
            return -1;
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

/* dns_bucket: a bucket that can be a host label (virtual-hosted style);
 * anything else (dots break TLS names, capitals, '_') goes path style. */
static int dns_bucket(const char *b) {
    size_t n = strlen(b);
    if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-'))
            return 0;
    return 1;
}

/* valid_region: a region goes into a host name and the SigV4 scope. */
static int valid_region(const char *r) {
    if (!*r)
        return 0;
    for (; *r; r++)
        if (!(islower((unsigned char)*r) || isdigit((unsigned char)*r) || *r == '-'))
            return 0;
    return 1;
}

/* valid_endpoint: an http(s) base URL without query or fragment. */
static int valid_endpoint(const char *e) {
    return (strncmp(e, "http://", 7) == 0 || strncmp(e, "https://", 8) == 0) &&
           !strpbrk(e, "?# \t\r\n") && strlen(e) > 8;
}

/* di_s3_object_url: see s3.h. */
int di_s3_object_url(const char *endpoint, const char *region, const char *bucket, const char *key,
                     char *out, size_t outsz, di_error *err) {
    char path[DI_S3_KEY_MAX * 3 + 1];
    if (di_s3_encode_path(key, path, sizeof path) != 0)
        return di_error_set(err, DI_ERR_CONFIG, "the key of s3://%s/… is too long", bucket);
    int n;
    if (endpoint && *endpoint) {
        if (!valid_endpoint(endpoint))
            return di_error_set(err, DI_ERR_CONFIG,
                                "bad S3 endpoint URL \"%s\" (want "
                                "http(s)://host[:port][/prefix], from AWS_ENDPOINT_URL)",
                                endpoint);
        n = snprintf(out, outsz, "%s/%s/%s", endpoint, bucket, path);
    } else if (!valid_region(region)) {
        return di_error_set(err, DI_ERR_CONFIG,
                            "bad AWS region \"%s\" (from AWS_REGION, "
                            "AWS_DEFAULT_REGION or the profile)",
                            region);
    } else {
        const char *cn = strncmp(region, "cn-", 3) == 0 ? ".cn" : "";
        if (dns_bucket(bucket))
            n = snprintf(out, outsz, "https://%s.s3.%s.amazonaws.com%s/%s", bucket, region, cn,
                         path);
        else
            n = snprintf(out, outsz, "https://s3.%s.amazonaws.com%s/%s/%s", region, cn, bucket,
                         path);
    }
    if (n < 0 || (size_t)n >= outsz)
        return di_error_set(err, DI_ERR_CONFIG, "the URL of s3://%s/… is too long", bucket);
    return 0;
}

/* ---- errors ---- */

/* code_in tells whether code is one of a NULL-terminated list. */
static int code_in(const char *code, const char *const *list) {
    for (; *list; list++)
        if (strcmp(code, *list) == 0)
            return 1;
    return 0;
}

/* credential_error words the refusals that are about who signed. */
static di_class credential_error(const di_s3_error_ctx *c, const char *code, di_error *err) {
    const char *d = c->display, *cr = c->credentials;
    if (strcmp(code, "SignatureDoesNotMatch") == 0)
        di_error_set(err, DI_ERR_CONFIG,
                     "the signature was rejected for %s: check the secret "
                     "access key (credentials %s)",
                     d, cr);
    else if (strcmp(code, "InvalidAccessKeyId") == 0)
        di_error_set(err, DI_ERR_CONFIG,
                     "the access key id is not known to the server for %s: "
                     "check the credentials %s",
                     d, cr);
    else if (strcmp(code, "InvalidToken") == 0)
        di_error_set(err, DI_ERR_CONFIG,
                     "the session token was rejected for %s: check the "
                     "credentials %s",
                     d, cr);
    else if (c->refreshable)
        return di_error_set(err, DI_ERR_TRANSIENT,
                            "the temporary credentials expired (%s): "
                            "fetching new ones",
                            code),
               DI_ERR_TRANSIENT;
    else
        di_error_set(err, DI_ERR_CONFIG,
                     "the session token has expired for %s: renew the "
                     "temporary credentials %s",
                     d, cr);
    return DI_ERR_CONFIG;
}

/* region_error: the request was signed for the wrong region. */
static di_class region_error(const di_s3_error_ctx *c, const char *code, const char *region,
                             di_error *err) {
    if (region[0])
        di_error_set(err, DI_ERR_CONFIG,
                     "the bucket of %s is in region %s, not %s: set "
                     "AWS_REGION=%s",
                     c->display, region, c->region, region);
    else
        di_error_set(err, DI_ERR_CONFIG,
                     "%s refused for %s (signed for region %s): check "
                     "AWS_REGION",
                     code, c->display, c->region);
    return DI_ERR_CONFIG;
}

/* shrunk: a 416 for a byte below what we had read (a resume starts at most
 * at the end) means a shorter object now stands under the key. */
static di_class shrunk(const di_s3_error_ctx *c, int64_t size, di_error *err) {
    di_error_set(err, DI_ERR_INPUT,
                 "the object changed during the import (it is now %lld bytes, "
                 "but byte %lld had been read): %s",
                 (long long)size, (long long)c->req_off, c->display);
    return DI_ERR_INPUT;
}

/* map_code words the codes that are not about credentials or retries. */
static di_class map_code(const di_s3_error_ctx *c, long status, const di_s3_error_body *b,
                         di_error *err) {
    static const char *const http_c[] = {"PreconditionFailed", "InvalidRange", NULL};
    const char *d = c->display, *code = b->code;
    if (strcmp(code, "NoSuchBucket") == 0)
        return di_error_set(err, DI_ERR_CONFIG, "no such bucket \"%s\": %s", c->bucket, d),
               DI_ERR_CONFIG;
    if (strcmp(code, "RequestTimeTooSkewed") == 0)
        return di_error_set(err, DI_ERR_CONFIG,
                            "the server refused the request time for %s: "
                            "this machine's clock is off by more than 15 minutes",
                            d),
               DI_ERR_CONFIG;
    if (strcmp(code, "AuthorizationHeaderMalformed") == 0 || strcmp(code, "PermanentRedirect") == 0)
        return region_error(c, code, b->region, err);
    if (status == 416 && b->actual_size >= 0 && b->actual_size < c->req_off)
        return shrunk(c, b->actual_size, err);
    if (!code[0] || code_in(code, http_c) || status >= 500 || status == 408 || status == 429)
        return DI_ERR_NONE;
    return di_error_set(err, DI_ERR_CONFIG, "S3 refused the request for %s: %s (HTTP %ld)%s%.200s",
                        d, code, status, b->message[0] ? ": " : "", b->message),
           DI_ERR_CONFIG;
}

/* di_s3_map_error: see s3.h. */
di_class di_s3_map_error(const di_s3_error_ctx *c, long status, const di_s3_error_body *b,
                         di_error *err) {
    static const char *const denied[] = {"AccessDenied", "AllAccessDisabled", "AccountProblem",
                                         NULL};
    static const char *const creds[] = {"SignatureDoesNotMatch", "InvalidAccessKeyId",
                                        "InvalidToken",          "ExpiredToken",
                                        "TokenRefreshRequired",  NULL};
    static const char *const retry[] = {
        "SlowDown",   "InternalError",        "ServiceUnavailable", "RequestTimeout",
        "Throttling", "RequestLimitExceeded", "OperationAborted",   NULL};
    const char *code = b->code;
    if (code_in(code, denied) || (!code[0] && (status == 401 || status == 403)))
        return di_error_set(err, DI_ERR_CONFIG, "access denied to %s: check the credentials %s",
                            c->display, c->credentials),
               DI_ERR_CONFIG;
    if (strcmp(code, "NoSuchKey") == 0 || (!code[0] && status == 404))
        return di_error_set(err, DI_ERR_CONFIG, "no such object %s", c->display), DI_ERR_CONFIG;
    if (code_in(code, creds))
        return credential_error(c, code, err);
    if (code_in(code, retry))
        return di_error_set(err, DI_ERR_TRANSIENT, "S3 %s (HTTP %ld)", code, status),
               DI_ERR_TRANSIENT;
    return map_code(c, status, b, err);
}

/* ---- hooks ---- */

/* refreshable_kind: credentials that came from a service can be fetched again. */
static int refreshable_kind(di_aws_kind k) {
    return k == DI_AWS_WEB_IDENTITY || k == DI_AWS_CONTAINER || k == DI_AWS_IMDS;
}

/* add_header appends "name: value" to the request's headers. */
static int add_header(struct curl_slist **headers, const char *name, const char *value) {
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line)
        return -1;
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*headers, line);
    explicit_bzero(line, n);
    free(line);
    if (!l)
        return -1;
    *headers = l;
    return 0;
}

/* sign sets the SigV4 options for this request's credentials. */
static int sign(s3_ctx *c, CURL *easy, struct curl_slist **headers, const di_aws_creds *cr) {
    if (curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, c->sigv4) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_USERNAME, cr->access_key) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PASSWORD, cr->secret_key) != CURLE_OK)
        return -1;
    if (add_header(headers, "x-amz-content-sha256", "UNSIGNED-PAYLOAD") != 0)
        return -1;
    if (cr->session_token && add_header(headers, "x-amz-security-token", cr->session_token) != 0)
        return -1;
    return 0;
}

/* range_start finds where this request starts from its "Range: bytes=N-". */
static int64_t range_start(const struct curl_slist *h) {
    for (; h; h = h->next)
        if (strncasecmp(h->data, "Range: bytes=", 13) == 0)
            return strtoll(h->data + 13, NULL, 10);
    return 0;
}

/* s3_prepare runs before every GET: fresh credentials (refreshed near their
 * expiry) and a new signature. PATH_AS_IS keeps "a/../b" keys as they are. */
static int s3_prepare(void *vctx, CURL *easy, struct curl_slist **headers, di_error *err) {
    s3_ctx *c = vctx;
    const di_aws_creds *cr;
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
    c->req_off = range_start(*headers);
    if (di_aws_provider_get(c->aws, time(NULL), &cr, err) != 0) {
        di_error_prefix(err, c->display);
        return -1;
    }
    if (cr && sign(c, easy, headers, cr) != 0)
        return di_error_set(err, DI_ERR_INTERNAL, "cannot set up request signing: %s", c->display);
    return 0;
}

/* body_size reads <ActualObjectSize>; -1 when absent or not a number. */
static int64_t body_size(const char *v) {
    char *end;
    if (!v || !*v)
        return -1;
    long long n = strtoll(v, &end, 10);
    return *end || n < 0 ? -1 : (int64_t)n;
}

/* s3_map_status reads S3's <Error> body and words it; an expired token of
 * refreshable credentials forces a refresh before the retry. */
static di_class s3_map_status(void *vctx, long status, const char *body, di_error *err) {
    static const char *const names[] = {"Code", "Message", "Region", "ActualObjectSize"};
    s3_ctx *c = vctx;
    char *v[4];
    di_aws_xml_fields(body, strlen(body), names, v, 4);
    di_s3_error_ctx ec = {c->display,
                          c->bucket,
                          di_aws_provider_region(c->aws),
                          di_aws_provider_describe(c->aws),
                          refreshable_kind(di_aws_provider_kind(c->aws)),
                          c->req_off};
    di_s3_error_body eb = {v[0] ? v[0] : "", v[1] ? v[1] : "", v[2] ? v[2] : "", body_size(v[3])};
    di_class cls = di_s3_map_error(&ec, status, &eb, err);
    if (cls == DI_ERR_TRANSIENT && v[0] &&
        (strcmp(v[0], "ExpiredToken") == 0 || strcmp(v[0], "TokenRefreshRequired") == 0))
        di_aws_provider_expire(c->aws);
    for (int i = 0; i < 4; i++)
        free(v[i]);
    return cls;
}

/* s3_free is the hooks' free_ctx: the credentials go with the source. */
static void s3_free(void *vctx) {
    s3_ctx *c = vctx;
    if (c)
        di_aws_provider_free(c->aws);
    free(c);
}

/* s3_on_status counts every GET by its status for /metrics (0: no response). */
static void s3_on_status(void *vctx, long status) {
    di_metrics_s3_request(status);
}

/* s3_setup parses the URL, resolves the credentials and builds the request
 * URL into url; the context is complete when it returns 0. */
static int s3_setup(s3_ctx *c, const char *src, char *url, size_t urlsz, di_error *err) {
    char key[DI_S3_KEY_MAX + 1];
    if (di_s3_parse_url(src, c->bucket, sizeof c->bucket, key, sizeof key, err) != 0)
        return -1;
    snprintf(c->display, sizeof c->display, "s3://%s/%s", c->bucket, key);
    c->aws = di_aws_provider_new(err);
    if (!c->aws) {
        di_error_prefix(err, c->display);
        return -1;
    }
    const char *region = di_aws_provider_region(c->aws);
    if (!valid_region(region))
        return di_error_set(err, DI_ERR_CONFIG, "bad AWS region \"%s\": %s", region, c->display);
    snprintf(c->sigv4, sizeof c->sigv4, "aws:amz:%s:s3", region);
    return di_s3_object_url(di_aws_provider_s3_endpoint(c->aws), region, c->bucket, key, url, urlsz,
                            err);
}

/* di_s3_open: see s3.h. The context is handed to http.c, which frees it
 * (even on failure: hence the display is copied first). */
di_source *di_s3_open(const char *src, int64_t offset, const di_source_opts *o, di_error *err) {
    char display[sizeof((s3_ctx *)0)->display];
    s3_ctx *c = calloc(1, sizeof *c);
    char *url = malloc(S3_URL_MAX);
    if (!c || !url) {
        free(c);
        free(url);
        di_error_set(err, DI_ERR_INTERNAL, "out of memory opening an s3 source");
        return NULL;
    }
    di_source *s = NULL;
    if (s3_setup(c, src, url, S3_URL_MAX, err) != 0) {
        s3_free(c);
    } else {
        struct di_http_hooks hooks = {c, s3_prepare, s3_map_status, s3_free, s3_on_status};
        memcpy(display, c->display, sizeof display);
        s = di_http_open_ex(url, display, offset, o, &hooks, err);
    }
    free(url);
    return s;
}
