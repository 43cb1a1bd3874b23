/* http.c - the HTTP(S) source: one streaming GET pulled through curl's multi
 * interface. The write callback fills a fixed buffer and pauses the transfer
 * when it is full; read() drains it and unpauses (backpressure, no allocation
 * per read). A dropped, stalled or truncated transfer, 408, 429 and 5xx are
 * resumed from the current byte with `Range` + `If-Match`, after a jittered
 * exponential backoff; a changed ETag is a permanent input error. With an
 * address check in the options, every connection (each redirect hop, each
 * resume) is judged on the address curl resolved, just before it connects. */
#include "source/http.h"
#include "util/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_MIN_BUFFER  (512 * 1024)
#define HTTP_CURL_BUFFER (256 * 1024)
#define HTTP_MAX_WAIT_S  10.0 /* one backoff never sleeps longer */
#define HTTP_POLL_MS     1000
#define HTTP_USER_AGENT  "dsa-ingest/0.1"

typedef struct http_source {
    di_source base;
    di_source_opts opts; /* opts.etag is not kept: the pin lives in base.etag */
    struct di_http_hooks hooks;
    char *url; /* owned; may hold credentials, never printed */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers; /* the current request's */
    char errbuf[CURL_ERROR_SIZE];
    char *buf; /* receive buffer: [rpos, wpos) is not yet handed out */
    size_t cap, rpos, wpos;
    int64_t wire;    /* object position of the next body byte we keep */
    int64_t discard; /* body bytes still to drop: the server ignored Range */
    int eof;
    /* the current request, reset by start_request */
    int64_t req_off;
    int attached, paused, done, judged, ok, bad_status, at_end, got_status;
    double last_activity; /* when the server last sent anything (stall clock) */
    CURLcode result;
    long status;
    char resp_etag[256];
    int has_cr;
    int64_t cr_start, cr_total; /* Content-Range; -1 for '*' */
    di_error verdict;           /* why the response was refused, if it was */
    di_error refused;           /* why opts.check_addr refused a connection, if it did */
    char body[1024];            /* the start of an error response */
    size_t body_len;
    /* retries: the current streak of failures without progress */
    int fails;
    double streak_t0;
    uint64_t rng;
} http_source;

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc;

/* http_global_init runs curl_global_init once per process, thread-safely. */
static void http_global_init(void) {
    http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* now_s is a monotonic clock, so a wall-clock jump cannot shorten the budget. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* sleep_s sleeps out the whole backoff even when signals interrupt it. */
static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* rand01 is a per-source xorshift64*: jitter needs no shared, locked state. */
static double rand01(http_source *h) {
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return (double)((h->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* ---- response headers ---- */

/* header_value returns the value of line if its name is `name`, trimmed into
 * out; 0 if it is another header or the value does not fit. */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t outsz) {
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return 0;
    const char *v = line + nl + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if ((size_t)(end - v) >= outsz)
        return 0;
    memcpy(out, v, (size_t)(end - v));
    out[end - v] = '\0';
    return 1;
}

/* parse_num reads a decimal or "*" (-1) at *p; -2 when neither is there. */
static int64_t parse_num(const char **p) {
    if (**p == '*') {
        (*p)++;
        return -1;
    }
    char *end;
    long long v = strtoll(*p, &end, 10);
    if (end == *p || v < 0)
        return -2;
    *p = end;
    return v;
}

/* parse_content_range reads "bytes START-END/TOTAL" or "bytes * /TOTAL" (416). */
static void parse_content_range(http_source *h, const char *v) {
    if (strncasecmp(v, "bytes ", 6) != 0)
        return;
    v += 6;
    int64_t start = parse_num(&v);
    if (start >= 0 && *v == '-') {
        v++;
        if (parse_num(&v) < 0)
            return;
    }
    if (start == -2 || *v++ != '/')
        return;
    int64_t total = parse_num(&v);
    if (total == -2)
        return;
    h->cr_start = start;
    h->cr_total = total;
    h->has_cr = 1;
}

/* on_header keeps what the final response says about the object; a status
 * line starts a new response (after a redirect), so it forgets the last one. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *ud) {
    ((http_source *)ud)->last_activity = now_s();
    http_source *h = ud;
    size_t n = size * nmemb;
    char v[256];
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        h->got_status = 1;
        h->resp_etag[0] = '\0';
        h->has_cr = 0;
    } else if (header_value(line, n, "etag", v, sizeof v)) {
        memcpy(h->resp_etag, v, sizeof v);
    } else if (header_value(line, n, "content-range", v, sizeof v)) {
        parse_content_range(h, v);
    }
    return n;
}

/* ---- judging a response ---- */

/* changed is the one permanent verdict about data: never mix two versions. */
static void changed(http_source *h, const char *was, const char *now) {
    di_error_set(&h->verdict, DI_ERR_INPUT,
                 "the object changed during the import (ETag was %s, now %s): %s", was, now,
                 h->base.display);
}

/* check_pin compares the response with the pinned ETag and size; the first
 * response that has them pins them. */
static void check_pin(http_source *h, int64_t total) {
    char a[300], b[40];
    if (!h->base.etag[0]) {
        memcpy(h->base.etag, h->resp_etag, sizeof h->base.etag);
    } else if (h->resp_etag[0] && strcmp(h->resp_etag, h->base.etag) != 0) {
        changed(h, h->base.etag, h->resp_etag);
        return;
    }
    if (h->base.size >= 0 && total >= 0 && total != h->base.size) {
        snprintf(a, sizeof a, "%s%ssize %lld", h->base.etag, h->base.etag[0] ? ", " : "",
                 (long long)h->base.size);
        snprintf(b, sizeof b, "size %lld", (long long)total);
        changed(h, a, b);
    } else if (h->base.size < 0) {
        h->base.size = total;
    }
}

/* past_end refuses an offset beyond the object: a checkpoint of another object. */
static void past_end(http_source *h, int64_t total) {
    di_error_set(&h->verdict, DI_ERR_CONFIG,
                 "offset %lld is past the end of the object (size %lld): %s", (long long)h->req_off,
                 (long long)total, h->base.display);
}

/* accept_body checks a 200/206 against what we asked for: a 206 must start at
 * our offset; a 200 to a ranged request means the server ignored Range, so the
 * first req_off bytes are dropped (correct, only slower). */
static void accept_body(http_source *h) {
    int64_t total;
    if (h->status == 206) {
        if (!h->has_cr || h->cr_start != h->req_off) {
            di_error_set(&h->verdict, DI_ERR_TRANSIENT,
                         "HTTP 206 without a Content-Range starting at byte %lld",
                         (long long)h->req_off);
            return;
        }
        total = h->cr_total;
    } else {
        curl_off_t cl = -1;
        curl_easy_getinfo(h->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        total = cl;
        h->discard = h->req_off;
    }
    if (total >= 0 && h->req_off > total) {
        past_end(h, total);
        return;
    }
    check_pin(h, total);
    h->ok = h->verdict.cls == DI_ERR_NONE;
}

/* judge looks at the final status once per request, when the first body byte
 * or the end of the transfer shows the headers are complete. */
static void judge(http_source *h) {
    if (h->judged)
        return;
    h->judged = 1;
    if (!h->got_status) {
        if (h->hooks.on_status)
            h->hooks.on_status(h->hooks.ctx, 0);
        return; /* no response at all: the curl result says why */
    }
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &h->status);
    if (h->hooks.on_status)
        h->hooks.on_status(h->hooks.ctx, h->status);
    if (h->status == 200 || h->status == 206)
        accept_body(h);
    else
        h->bad_status = 1;
}

/* range_end handles 416: at exactly the end of the object it is a clean end
 * (a resume from a checkpoint at the last byte), past it a config error. */
static void range_end(http_source *h) {
    if (h->has_cr && h->cr_total >= 0 && h->cr_total == h->req_off) {
        check_pin(h, h->cr_total);
        h->at_end = h->verdict.cls == DI_ERR_NONE;
    } else {
        past_end(h, h->has_cr ? h->cr_total : -1);
    }
}

/* status_verdict maps a status other than 200/206: the hook first, then
 * DESIGN §5 (408, 429 and 5xx retry; other 4xx are permanent). */
static void status_verdict(http_source *h) {
    long st = h->status;
    const char *d = h->base.display;
    di_error *v = &h->verdict;
    if (st >= 400 && h->hooks.map_status) {
        h->body[h->body_len] = '\0';
        di_class c = h->hooks.map_status(h->hooks.ctx, st, h->body, v);
        if (c != DI_ERR_NONE) {
            v->cls = c;
            return;
        }
        di_error_clear(v);
    }
    if (st == 416)
        range_end(h);
    else if (st == 412)
        changed(h, h->base.etag[0] ? h->base.etag : "(none)",
                h->resp_etag[0] ? h->resp_etag : "different (HTTP 412)");
    else if (st == 404 || st == 410)
        di_error_set(v, DI_ERR_CONFIG, "not found (HTTP %ld): %s", st, d);
    else if (st == 401 || st == 403)
        di_error_set(v, DI_ERR_CONFIG, "access denied (HTTP %ld): %s", st, d);
    else if (st == 408 || st == 429 || st >= 500)
        di_error_set(v, DI_ERR_TRANSIENT, "HTTP %ld", st);
    else if (st >= 400)
        di_error_set(v, DI_ERR_CONFIG, "request refused (HTTP %ld): %s", st, d);
    else
        di_error_set(v, DI_ERR_CONFIG, "unexpected HTTP status %ld: %s", st, d);
}

/* curl_is_transient lists the failures a new request may not meet. A resolve
 * failure counts: cluster DNS does fail for seconds, and a mistyped host still
 * ends after max_retries attempts. */
static int curl_is_transient(CURLcode rc) {
    switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
        return 1;
    default:
        return 0;
    }
}

/* ---- the transfer ---- */

/* keep_error_body saves the start of an error response for map_status, then
 * aborts: the rest of an error page is of no use. */
static size_t keep_error_body(http_source *h, const char *p, size_t n) {
    size_t room = sizeof h->body - 1 - h->body_len;
    size_t k = n < room ? n : room;
    memcpy(h->body + h->body_len, p, k);
    h->body_len += k;
    return k == n ? n : 0;
}

/* keep_body copies a whole chunk into the buffer or pauses without touching
 * anything (curl hands the same chunk again after the unpause). */
static size_t keep_body(http_source *h, const char *p, size_t n) {
    size_t skip = h->discard < (int64_t)n ? (size_t)h->discard : n;
    size_t keep = n - skip;
    if (keep > h->cap - h->wpos) {
        if (h->wpos == h->rpos && keep > h->cap) {
            di_error_set(&h->verdict, DI_ERR_INTERNAL, "curl chunk larger than the buffer");
            return 0;
        }
        h->paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    h->base.stats.bytes_fetched += (int64_t)n;
    h->discard -= (int64_t)skip;
    memcpy(h->buf + h->wpos, p + skip, keep);
    h->wpos += keep;
    h->wire += (int64_t)keep;
    if (keep > 0)
        h->fails = 0; /* progress: the failure streak is over */
    return n;
}

/* on_body is curl's write callback: judge the response on its first byte. */
static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
    http_source *h = ud;
    size_t n = size * nmemb;
    h->last_activity = now_s();
    judge(h);
    if (h->verdict.cls != DI_ERR_NONE)
        return 0;
    if (h->bad_status)
        return keep_error_body(h, p, n);
    return h->ok ? keep_body(h, p, n) : 0;
}

/* connecting_host names the host curl is connecting to now: the effective
 * URL's (a redirect hop's, after a redirect), without userinfo or query. */
static void connecting_host(http_source *h, char *out, size_t outsz) {
    char *url = NULL;
    out[0] = '\0';
    if (curl_easy_getinfo(h->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || !url)
        return;
    const char *a = strstr(url, "://");
    a = a ? a + 3 : url;
    size_t n = strcspn(a, "/?#");
    for (size_t i = n; i > 0; i--)
        if (a[i - 1] == '@') { /* userinfo ends at the last '@' */
            a += i;
            n -= i;
            break;
        }
    snprintf(out, outsz, "%.*s", (int)n, a);
}

/* on_open_socket is curl's CURLOPT_OPENSOCKETFUNCTION: it sees every address
 * just before curl connects to it, so the check covers redirects and a name
 * that resolves differently now than when the job was submitted (DNS
 * rebinding). A refusal is kept for classify_end: curl itself only reports
 * that it could not connect, which would be retried. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
    http_source *h = ud;
    char why[512], host[300];
    if (h->opts.check_addr(h->opts.check_ctx, &a->addr, why, sizeof why) != 0) {
        if (h->refused.cls == DI_ERR_NONE) {
            connecting_host(h, host, sizeof host);
            di_error_set(&h->refused, DI_ERR_CONFIG, "%s (host %s): %s", why, host[0] ? host : "?",
                         h->base.display);
        }
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* setup_easy sets the options every request shares (see the brief in DESIGN §5). */
static int setup_easy(http_source *h) {
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc ? rc : curl_easy_setopt(e, opt, val))
    SET(CURLOPT_URL, h->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, h);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, h);
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_BUFFERSIZE, (long)HTTP_CURL_BUFFER);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_KEEPIDLE, 30L);
    SET(CURLOPT_TCP_KEEPINTVL, 15L);
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME, (long)h->opts.stall_s);
    SET(CURLOPT_CONNECTTIMEOUT, (long)h->opts.connect_timeout_s);
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, 5L);
    SET(CURLOPT_USERAGENT, HTTP_USER_AGENT);
    if (h->opts.check_addr) {
        SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        SET(CURLOPT_OPENSOCKETDATA, h);
    }
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

/* build_headers asks for the rest of the object from `wire`, pinned to the
 * ETag. A weak ETag cannot be used with If-Match (always 412), so it is only
 * compared. */
static int build_headers(http_source *h) {
    char line[320];
    curl_slist_free_all(h->headers);
    h->headers = NULL;
    if (h->wire > 0) {
        snprintf(line, sizeof line, "Range: bytes=%lld-", (long long)h->wire);
        if (!(h->headers = curl_slist_append(h->headers, line)))
            return -1;
    }
    if (h->base.etag[0] && strncmp(h->base.etag, "W/", 2) != 0) {
        snprintf(line, sizeof line, "If-Match: %s", h->base.etag);
        struct curl_slist *l = curl_slist_append(h->headers, line);
        if (!l)
            return -1;
        h->headers = l;
    }
    return 0;
}

/* reset_request forgets everything about the previous response. */
static void reset_request(http_source *h) {
    h->req_off = h->wire;
    h->discard = 0;
    h->paused = h->done = h->judged = h->ok = h->bad_status = h->at_end = h->got_status = 0;
    h->result = CURLE_OK;
    h->status = 0;
    h->resp_etag[0] = '\0';
    h->has_cr = 0;
    h->body_len = 0;
    h->errbuf[0] = '\0';
    di_error_clear(&h->verdict);
    di_error_clear(&h->refused);
}

/* start_request sends the next GET from h->wire. A transient failure of the
 * prepare hook is turned into a failed request, so it goes through backoff. */
static int start_request(http_source *h, di_error *err) {
    if (h->attached)
        curl_multi_remove_handle(h->multi, h->easy);
    h->attached = 0;
    reset_request(h);
    if (build_headers(h) != 0)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory: %s", h->base.display);
    if (h->hooks.prepare && h->hooks.prepare(h->hooks.ctx, h->easy, &h->headers, err) != 0) {
        if (err->cls != DI_ERR_TRANSIENT)
            return -1;
        h->verdict = *err;
        h->judged = h->done = 1;
        return 0;
    }
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
    if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
        return di_error_set(err, DI_ERR_INTERNAL, "curl_multi_add_handle failed: %s",
                            h->base.display);
    h->attached = 1;
    h->last_activity = now_s();
    h->base.stats.requests++;
    return 0;
}

/* check_stall ends a transfer the server has sent nothing on for stall_s
 * seconds. curl's own low-speed check averages over several seconds and
 * fires late; this clock is exact. A paused transfer is our doing, not a stall. */
static void check_stall(http_source *h) {
    if (h->done || h->paused || now_s() - h->last_activity < (double)h->opts.stall_s)
        return;
    snprintf(h->errbuf, sizeof h->errbuf, "no data for %d s: the connection stalled",
             h->opts.stall_s);
    curl_multi_remove_handle(h->multi, h->easy);
    h->attached = 0;
    h->done = 1;
    h->result = CURLE_OPERATION_TIMEDOUT;
}

/* drive lets curl work until there is data, the transfer ended or a poll
 * second passed; the caller loops. */
static int drive(http_source *h, di_error *err) {
    int running;
    CURLMsg *m;
    int left;
    if (curl_multi_perform(h->multi, &running) != CURLM_OK)
        return di_error_set(err, DI_ERR_INTERNAL, "curl_multi_perform failed: %s", h->base.display);
    while ((m = curl_multi_info_read(h->multi, &left)))
        if (m->msg == CURLMSG_DONE) {
            h->done = 1;
            h->result = m->data.result;
        }
    if (h->done || h->paused || h->wpos > h->rpos)
        return 0;
    if (curl_multi_poll(h->multi, NULL, 0, HTTP_POLL_MS, NULL) != CURLM_OK)
        return di_error_set(err, DI_ERR_INTERNAL, "curl_multi_poll failed: %s", h->base.display);
    check_stall(h);
    return 0;
}

/* classify_end decides what a finished request means: 0 the end of the
 * object, 1 retry (reason filled), -1 a permanent failure (err filled). */
static int classify_end(http_source *h, char *reason, size_t rsz, di_error *err) {
    judge(h);
    if (h->refused.cls != DI_ERR_NONE && h->result != CURLE_OK) {
        *err = h->refused; /* the address was refused: never retried */
        return -1;
    }
    if (h->verdict.cls == DI_ERR_NONE && h->bad_status)
        status_verdict(h);
    if (h->verdict.cls == DI_ERR_TRANSIENT) {
        snprintf(reason, rsz, "%s", h->verdict.message);
        return 1;
    }
    if (h->verdict.cls != DI_ERR_NONE) {
        *err = h->verdict;
        return -1;
    }
    if (h->at_end)
        return 0;
    if (h->result != CURLE_OK) {
        snprintf(reason, rsz, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(h->result));
        if (curl_is_transient(h->result))
            return 1;
        return di_error_set(err, h->result == CURLE_OUT_OF_MEMORY ? DI_ERR_INTERNAL : DI_ERR_CONFIG,
                            "%s: %s", reason, h->base.display);
    }
    if (h->base.size >= 0 && h->wire < h->base.size) {
        snprintf(reason, rsz, "connection closed at byte %lld of %lld", (long long)h->wire,
                 (long long)h->base.size);
        return 1;
    }
    return 0;
}

/* backoff sleeps before a retry: full jitter over base * 2^(n-1), at most
 * 10 s; gives up after max_retries failures in a row or retry_max_s spent. */
static int backoff(http_source *h, const char *reason, di_error *err) {
    double now = now_s();
    if (h->fails == 0)
        h->streak_t0 = now;
    h->fails++;
    double spent = now - h->streak_t0;
    if (h->fails > h->opts.max_retries || spent >= h->opts.retry_max_s)
        return di_error_set(err, DI_ERR_TRANSIENT, "gave up after %d attempts: %s: %s", h->fails,
                            reason, h->base.display);
    double cap = h->opts.backoff_base_s;
    for (int i = 1; i < h->fails && cap < HTTP_MAX_WAIT_S; i++)
        cap *= 2;
    cap = cap < HTTP_MAX_WAIT_S ? cap : HTTP_MAX_WAIT_S;
    double wait = rand01(h) * cap;
    if (spent + wait > h->opts.retry_max_s)
        wait = h->opts.retry_max_s - spent;
    sleep_s(wait);
    h->base.stats.retries++;
    di_metrics_retry(DI_RETRY_SOURCE);
    return 0;
}

/* finish ends a request: the end of the object, a resume, or a failure. */
static int finish(http_source *h, di_error *err) {
    char reason[768];
    int r = classify_end(h, reason, sizeof reason, err);
    if (r == 0)
        h->eof = 1;
    if (r <= 0)
        return r;
    if (backoff(h, reason, err) != 0)
        return -1;
    return start_request(h, err);
}

/* unpause lets curl deliver again; it may call on_body (and pause) at once, so
 * the flag is cleared first. A failure here ends the request like any other. */
static void unpause(http_source *h) {
    h->paused = 0;
    h->last_activity = now_s(); /* the silence while paused was ours */
    CURLcode rc = curl_easy_pause(h->easy, CURLPAUSE_CONT);
    if (rc != CURLE_OK) {
        h->done = 1;
        h->result = rc;
    }
}

/* http_read hands out buffered bytes, unpausing curl once the buffer is empty. */
static int http_read(di_source *s, void *out, size_t cap, size_t *nread, di_error *err) {
    http_source *h = (http_source *)s;
    for (;;) {
        if (h->wpos > h->rpos) {
            size_t n = h->wpos - h->rpos < cap ? h->wpos - h->rpos : cap;
            memcpy(out, h->buf + h->rpos, n);
            h->rpos += n;
            *nread = n;
            return 0;
        }
        h->rpos = h->wpos = 0;
        if (h->eof)
            return 0;
        if (h->paused) {
            unpause(h);
        } else if (!h->done) {
            if (drive(h, err) != 0)
                return -1;
        } else if (finish(h, err) != 0) {
            return -1;
        }
    }
}

/* http_close frees the transfer and hands the hook context back. */
static void http_close(di_source *s) {
    http_source *h = (http_source *)s;
    if (h->attached)
        curl_multi_remove_handle(h->multi, h->easy);
    if (h->easy)
        curl_easy_cleanup(h->easy);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    curl_slist_free_all(h->headers);
    if (h->hooks.free_ctx)
        h->hooks.free_ctx(h->hooks.ctx);
    free(h->buf);
    free(h->url);
    free(h);
}

static const di_source_ops http_ops = {http_read, http_close};

/* http_new allocates the source, its buffer and its curl handles. */
static http_source *http_new(const char *url, const char *display, int64_t offset,
                             const di_source_opts *o) {
    http_source *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    di_source_base_init(&h->base, &http_ops, display, offset);
    h->opts = *o;
    h->wire = offset;
    h->cap = o->chunk_size > HTTP_MIN_BUFFER ? o->chunk_size : HTTP_MIN_BUFFER;
    h->rng = (uint64_t)(now_s() * 1e9) ^ (uint64_t)(uintptr_t)h ^ (uint64_t)getpid() << 32;
    h->rng |= 1; /* xorshift must not start at 0 */
    h->url = strdup(url);
    h->buf = malloc(h->cap);
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (!h->url || !h->buf || !h->multi || !h->easy || setup_easy(h) != 0) {
        http_close(&h->base);
        return NULL;
    }
    return h;
}

/* set_pin starts from the ETag a resumed job recorded, if any. */
static int set_pin(http_source *h, const char *etag, di_error *err) {
    if (!etag || !etag[0])
        return 0;
    if (strlen(etag) >= sizeof h->base.etag)
        return di_error_set(err, DI_ERR_CONFIG, "ETag too long: %s", h->base.display);
    snprintf(h->base.etag, sizeof h->base.etag, "%s", etag);
    return 0;
}

/* await_first drives the first request (and its retries) until the body
 * starts or the object is known to be empty. */
static int await_first(http_source *h, di_error *err) {
    while (!h->ok && !h->eof) {
        if (!h->done) {
            if (drive(h, err) != 0)
                return -1;
        } else if (finish(h, err) != 0) {
            return -1;
        }
    }
    return 0;
}

/* di_http_open_ex: see http.h. */
di_source *di_http_open_ex(const char *url, const char *display, int64_t offset,
                           const di_source_opts *o, const struct di_http_hooks *hooks,
                           di_error *err) {
    pthread_once(&http_once, http_global_init);
    http_source *h = http_global_rc == CURLE_OK ? http_new(url, display, offset, o) : NULL;
    if (!h) {
        if (hooks && hooks->free_ctx)
            hooks->free_ctx(hooks->ctx);
        di_error_set(err, DI_ERR_INTERNAL, "cannot set up an HTTP transfer: %s", display);
        return NULL;
    }
    if (hooks)
        h->hooks = *hooks;
    if (set_pin(h, o->etag, err) != 0 || start_request(h, err) != 0 || await_first(h, err) != 0) {
        http_close(&h->base);
        return NULL;
    }
    return &h->base;
}

/* di_http_open is the plain http(s):// source of source.c. */
di_source *di_http_open(const char *url, const char *display, int64_t offset,
                        const di_source_opts *o, di_error *err) {
    return di_http_open_ex(url, display, offset, o, NULL, err);
}
