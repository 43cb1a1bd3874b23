/* serve.c - `dsa-ingest serve`: the libmicrohttpd daemon, routing, auth and
 * body intake. A request is matched to a route when its headers arrive;
 * refusals (404, 405, 401/403, 413 by Content-Length, 415) are answered before
 * any body is read; bodies are then streamed (capped) and the route's handler
 * answers once the body is complete. The route files hold the handlers. */
#include "http/serve.h"
#include "http/respond.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* di_serve_log formats one line for the configured sink (never a token). */
void di_serve_log(di_serve *s, const char *fmt, ...) {
    char line[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (s->o.log)
        s->o.log(s->o.log_ctx, line);
}

/* status_slot finds a status's counter column (the last one is "other"). */
static int status_slot(unsigned status) {
    static const unsigned statuses[] = DI_STATUSES;
    for (int i = 0; i < (int)(sizeof statuses / sizeof statuses[0]); i++)
        if (statuses[i] == status)
            return i;
    return DI_NSTATUS - 1;
}

/* di_serve_send adds the common headers, counts the answer and queues it. */
enum MHD_Result di_serve_send(di_serve *s, di_request *r, struct MHD_Connection *c, unsigned status,
                              struct MHD_Response *resp) {
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"dsa-ingest\"");
    di_serve_count(&s->stats.requests[r->route][status_slot(status)], 1);
    r->answered = 1;
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* di_serve_text answers a copy of body. */
enum MHD_Result di_serve_text(di_serve *s, di_request *r, struct MHD_Connection *c, unsigned status,
                              const char *type, const char *body, size_t len) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp)
        MHD_add_response_header(resp, "Content-Type", type);
    return di_serve_send(s, r, c, status, resp);
}

/* di_serve_json answers j as compact JSON. */
enum MHD_Result di_serve_json(di_serve *s, di_request *r, struct MHD_Connection *c, unsigned status,
                              cJSON *j) {
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    return di_serve_send(s, r, c, status, resp);
}

/* di_serve_error answers {"error": …}; server-side failures are logged too. */
enum MHD_Result di_serve_error(di_serve *s, di_request *r, struct MHD_Connection *c,
                               unsigned status, const char *fmt, ...) {
    char msg[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    if (status >= 500)
        di_serve_log(s, "serve: answered %u: %s", status, msg);
    return di_serve_json(s, r, c, status, j);
}

/* di_serve_status_for: the caller's fault is 400, the database's 503, ours 500. */
unsigned di_serve_status_for(const di_error *err) {
    switch (err->cls) {
    case DI_ERR_INPUT:
    case DI_ERR_CONFIG:
        return 400;
    case DI_ERR_TRANSIENT:
        return 503;
    default:
        return 500;
    }
}

/* ---- routing ---- */

/* is_uuid tells whether s is a job id (8-4-4-4-12 hex digits). */
static int is_uuid(const char *s, size_t n) {
    if (n != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return 0;
    }
    return 1;
}

/* segment copies path segment i (0-based) of url into out; its length, or -1. */
static int segment(const char *url, int i, char *out, size_t outsz) {
    const char *p = url;
    for (; i > 0; i--) {
        p = strchr(p + 1, '/');
        if (!p)
            return -1;
    }
    if (*p != '/')
        return -1;
    p++;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= outsz)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return (int)n;
}

/* count_segments counts the parts of a path ("/a/b" has 2); -1 when one is
 * empty ("//", a trailing '/'). */
static int count_segments(const char *url) {
    int n = 0;
    for (const char *p = url; *p; p++) {
        if (*p != '/')
            continue;
        if (p[1] == '/' || p[1] == '\0')
            return -1;
        n++;
    }
    return n;
}

/* match_route finds the route of url and fills the path parameters; *method
 * gets the one method the route answers. */
static di_route match_route(const char *url, di_request *r, const char **method) {
    static const struct {
        const char *path;
        di_route route;
        const char *method;
    } fixed[] = {{"/", DI_ROUTE_UI, "GET"},           {"/healthz", DI_ROUTE_HEALTHZ, "GET"},
                 {"/readyz", DI_ROUTE_READYZ, "GET"}, {"/metrics", DI_ROUTE_METRICS, "GET"},
                 {"/jobs", DI_ROUTE_JOBS, "GET"},     {"/events/s3", DI_ROUTE_S3_EVENTS, "POST"}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(url, fixed[i].path) == 0) {
            *method = fixed[i].method;
            return fixed[i].route;
        }
    char word[16];
    int n = count_segments(url);
    if (n == 3 && segment(url, 0, word, sizeof word) > 0 && strcmp(word, "jobs") == 0) {
        int len = segment(url, 1, r->id, sizeof r->id);
        if (len < 0 || !is_uuid(r->id, (size_t)len) || segment(url, 2, word, sizeof word) < 0)
            return DI_ROUTE_NONE;
        *method = "GET";
        if (strcmp(word, "status") == 0)
            return DI_ROUTE_JOB_STATUS;
        return strcmp(word, "events") == 0 ? DI_ROUTE_JOB_EVENTS : DI_ROUTE_NONE;
    }
    char refs[8], imp[8];
    if (n == 5 && segment(url, 0, word, sizeof word) > 0 && strcmp(word, "datasets") == 0 &&
        segment(url, 1, r->id, sizeof r->id) > 0 && segment(url, 2, refs, sizeof refs) > 0 &&
        strcmp(refs, "refs") == 0 && segment(url, 3, r->ref, sizeof r->ref) > 0 &&
        segment(url, 4, imp, sizeof imp) > 0 && strcmp(imp, "import") == 0) {
        *method = "POST";
        return DI_ROUTE_IMPORT;
    }
    return DI_ROUTE_NONE;
}

/* route_scope is what a token needs for a route (0: no token needed). */
static unsigned route_scope(di_route route) {
    switch (route) {
    case DI_ROUTE_IMPORT:
        return DI_SCOPE_IMPORT;
    case DI_ROUTE_JOBS:
    case DI_ROUTE_JOB_STATUS:
    case DI_ROUTE_JOB_EVENTS:
        return DI_SCOPE_READ;
    case DI_ROUTE_S3_EVENTS:
        return DI_SCOPE_EVENTS;
    default:
        return 0;
    }
}

/* authorize judges the request's token: the Authorization header, or for GET
 * routes an access_token query argument (a browser's EventSource cannot send
 * headers). 0, 401 or 403. */
static int authorize(di_serve *s, di_request *r, struct MHD_Connection *c) {
    unsigned scope = route_scope(r->route);
    if (!scope)
        return 0;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "access_token");
    char bearer[DI_AUTH_TOKEN_MAX + 8];
    if (!h && q && scope == DI_SCOPE_READ && strlen(q) < DI_AUTH_TOKEN_MAX) {
        snprintf(bearer, sizeof bearer, "Bearer %s", q);
        h = bearer;
    }
    int rc = di_auth_check(&s->auth, h, scope);
    memset(bearer, 0, sizeof bearer);
    return rc;
}

/* content_length reads Content-Length (-1 when absent or malformed). */
static long long content_length(struct MHD_Connection *c) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    char *end;
    long long n = v ? strtoll(v, &end, 10) : -1;
    return v && end != v && !*end && n >= 0 ? n : -1;
}

/* is_type tells whether the Content-Type's media type is `type`. */
static int is_type(const char *ct, const char *type) {
    size_t n = strlen(type);
    return ct && strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* begin_body prepares to read the body of an import or an event, refusing
 * what can be refused from the headers alone. */
static enum MHD_Result begin_body(di_serve *s, di_request *r, struct MHD_Connection *c) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    long long len = content_length(c);
    if (r->route == DI_ROUTE_IMPORT && is_type(ct, "multipart/form-data")) {
        if (!s->o.spool_dir)
            return di_serve_error(s, r, c, 415,
                                  "uploads are off: this server has no DSA_INGEST_SPOOL_DIR");
        /* the form's own lines around the file are far below 64 KiB */
        if (len > s->o.max_upload + 65536) {
            di_serve_count(&s->stats.uploads_too_large, 1);
            return di_serve_error(s, r, c, 413, "upload of %lld bytes is over the limit of %lld",
                                  len, s->o.max_upload);
        }
        return di_upload_begin(s, r, c);
    }
    if (r->route == DI_ROUTE_IMPORT && ct && !is_type(ct, "application/json"))
        return di_serve_error(s, r, c, 415,
                              "Content-Type must be application/json or multipart/form-data");
    if (len > s->o.max_body)
        return di_serve_error(s, r, c, 413, "body of %lld bytes is over the limit of %ld", len,
                              s->o.max_body);
    di_buf_init(&r->body, (size_t)s->o.max_body);
    return MHD_YES;
}

/* printable copies text with every byte outside printable ASCII as '?', for
 * echoing what a client sent (libmicrohttpd has already %-decoded paths). */
static void printable(const char *text, char *out, size_t outsz) {
    size_t i = 0;
    for (; text[i] && i + 1 < outsz; i++)
        out[i] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
    out[i] = '\0';
}

/* begin answers what needs no body and prepares the rest. */
static enum MHD_Result begin(di_serve *s, di_request *r, struct MHD_Connection *c, const char *url,
                             const char *method) {
    const char *want = NULL;
    r->route = match_route(url, r, &want);
    if (r->route == DI_ROUTE_NONE) {
        char shown[201];
        printable(url, shown, sizeof shown);
        return di_serve_error(s, r, c, 404, "no route %.16s %s", method, shown);
    }
    int head = strcmp(method, "HEAD") == 0 && strcmp(want, "GET") == 0;
    if (strcmp(method, want) != 0 && !head) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, "Allow", want);
        return di_serve_send(s, r, c, 405, resp);
    }
    int auth = authorize(s, r, c);
    if (auth)
        return di_serve_error(s, r, c, (unsigned)auth,
                              auth == 401 ? "missing or unknown bearer token"
                                          : "this token may not use this route");
    switch (r->route) {
    case DI_ROUTE_UI:
        return di_ui_page(s, r, c);
    case DI_ROUTE_HEALTHZ:
        return di_serve_text(s, r, c, 200, "text/plain", "ok\n", 3);
    case DI_ROUTE_READYZ: {
        unsigned status = 0;
        enum MHD_Result ok = di_http_readyz(c, s->o.conninfo, &status);
        di_serve_count(&s->stats.requests[r->route][status_slot(status)], 1);
        r->answered = 1;
        return ok;
    }
    case DI_ROUTE_METRICS:
        return di_serve_metrics(s, r, c);
    case DI_ROUTE_JOBS:
        return di_api_jobs(s, r, c);
    case DI_ROUTE_JOB_STATUS:
        return di_api_job_status(s, r, c);
    case DI_ROUTE_JOB_EVENTS:
        return di_sse_job_events(s, r, c);
    default:
        return begin_body(s, r, c);
    }
}

/* take_body stores one piece of a JSON body, or drops it past the cap. */
static enum MHD_Result take_body(di_serve *s, di_request *r, const char *data, size_t size) {
    if (!r->too_large && di_buf_append(&r->body, data, size) != 0) {
        r->too_large = 1;
        di_buf_cleanup(&r->body);
    }
    if (r->too_large && (r->drained += (long long)size) > DI_DRAIN_MAX)
        return MHD_NO; /* not worth reading on: cut the connection */
    return MHD_YES;
}

/* finish answers a request whose body is complete. */
static enum MHD_Result finish(di_serve *s, di_request *r, struct MHD_Connection *c) {
    if (r->upload)
        return di_upload_finish(s, r, c);
    if (r->too_large)
        return di_serve_error(s, r, c, 413, "body is over the limit of %ld bytes", s->o.max_body);
    if (r->route == DI_ROUTE_S3_EVENTS)
        return di_s3hook_handle(s, r, c);
    return di_api_import_json(s, r, c);
}

/* on_request is libmicrohttpd's handler: called once with the headers, once
 * per piece of body, and once more when the body is complete. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls) {
    di_serve *s = cls;
    di_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return begin(s, r, c, url, method);
    }
    if (r->answered) { /* refused from the headers: whatever body follows is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->upload)
            return di_upload_feed(s, r, upload_data, n);
        return take_body(s, r, upload_data, n);
    }
    return finish(s, r, c);
}

/* on_completed frees a request's state (and an unfinished upload's file). */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
    di_request *r = *con_cls;
    if (!r)
        return;
    di_upload_free(r->upload);
    di_buf_cleanup(&r->body);
    free(r);
    *con_cls = NULL;
}

/* prepare_spool makes sure the spool directory exists and is ours to write. */
static int prepare_spool(const char *dir, di_error *err) {
    if (!dir)
        return 0;
    if (dir[0] != '/')
        return di_error_set(err, DI_ERR_CONFIG,
                            "DSA_INGEST_SPOOL_DIR %s: must be an absolute path (workers open the "
                            "spooled files by it)",
                            dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return di_error_set(err, DI_ERR_CONFIG, "DSA_INGEST_SPOOL_DIR %s: cannot create: %s", dir,
                            strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return di_error_set(err, DI_ERR_CONFIG, "DSA_INGEST_SPOOL_DIR %s: not a directory", dir);
    return 0;
}

/* configure checks the options and loads tokens, rules and the net policy. */
static int configure(di_serve *s, const di_serve_opts *o, di_error *err) {
    s->o = *o;
    s->chunk_size = o->settings ? o->settings->chunk_size : 1048576;
    if (s->o.max_upload <= 0)
        s->o.max_upload = 10LL << 30;
    if (s->o.max_body <= 0)
        s->o.max_body = 1L << 20;
    if (s->o.max_connections <= 0)
        s->o.max_connections = 128;
    if (s->o.idle_timeout_s <= 0)
        s->o.idle_timeout_s = 30;
    if (s->o.spool_retention_s <= 0)
        s->o.spool_retention_s = 86400;
    if (s->o.spool_sweep_s <= 0)
        s->o.spool_sweep_s = 60;
    if (di_auth_load(&s->auth, o->tokens, err) ||
        di_netpolicy_init(&s->net, o->allowed_schemes, o->allowed_buckets, o->allowed_hosts,
                          o->allowed_networks, err) ||
        prepare_spool(o->spool_dir, err))
        return -1;
    if (o->event_rules && *o->event_rules) {
        if (di_event_rules_load(&s->rules, o->event_rules, err))
            return -1;
        s->have_rules = 1;
    }
    return 0;
}

/* start_daemon listens: a thread per connection (SSE streams block), with
 * limits on connections, per-address connections, header memory and idle time. */
static int start_daemon(di_serve *s, di_error *err) {
    struct sockaddr_in sa;
    if (!s->o.listen || di_http_parse_listen(s->o.listen, &sa))
        return di_error_set(err, DI_ERR_CONFIG, "--listen %s: expected ADDR:PORT (IPv4)",
                            s->o.listen ? s->o.listen : "(none)");
    unsigned limit = (unsigned)s->o.max_connections;
    s->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, ntohs(sa.sin_port), NULL,
        NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        limit > 64 ? limit / 2 : limit, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->o.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->daemon)
        return di_error_set(err, DI_ERR_CONFIG, "cannot listen on %s: %s", s->o.listen,
                            strerror(errno));
    return 0;
}

/* di_serve_start: options, then the LISTEN thread, the janitor, the daemon. */
di_serve *di_serve_start(const di_serve_opts *o, di_error *err) {
    di_serve *s = calloc(1, sizeof *s);
    if (!s) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (configure(s, o, err) || di_hub_start(s, err)) {
        di_event_rules_free(&s->rules);
        free(s);
        return NULL;
    }
    if (di_janitor_start(s, err) || start_daemon(s, err)) {
        di_janitor_stop(s);
        di_hub_stop(s);
        di_event_rules_free(&s->rules);
        free(s);
        return NULL;
    }
    return s;
}

/* di_serve_stop ends streams first (they block connection threads), then the rest. */
void di_serve_stop(di_serve *s) {
    if (!s)
        return;
    s->stopping = 1;
    pthread_mutex_lock(&s->hub.lock);
    s->hub.closing = 1; /* open event streams end at once */
    pthread_cond_broadcast(&s->hub.changed);
    pthread_mutex_unlock(&s->hub.lock);
    MHD_stop_daemon(s->daemon);
    di_janitor_stop(s);
    di_hub_stop(s);
    di_event_rules_free(&s->rules);
    memset(&s->auth, 0, sizeof s->auth);
    free(s);
}
