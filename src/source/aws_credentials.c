/* aws_credentials.c - the AWS credential chain, in the SDKs' order: environment
 * variables, the shared credentials/config files (AWS_PROFILE), web identity
 * (STS AssumeRoleWithWebIdentity), the ECS container endpoint, EC2 instance
 * metadata (IMDSv2). Temporary credentials are refetched before they expire. */
#include "source/aws_credentials.h"

#include <cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dsa_ingest/buf.h"

#define AWS_FILE_MAX      (1024 * 1024) /* a shared config file */
#define AWS_TOKEN_MAX     (64 * 1024)   /* a web identity token file */
#define AWS_RESPONSE_MAX  (64 * 1024)   /* an STS / metadata response */
#define AWS_MARGIN_S      300           /* refresh this long before expiry */
#define AWS_FETCH_TIMEOUT 10000L        /* ms, STS and the container endpoint */
#define AWS_DEFAULT_IMDS  "http://169.254.169.254"
#define AWS_ECS_HOST      "http://169.254.170.2"
#define AWS_IMDS_CREDS    "/latest/meta-data/iam/security-credentials/"
#define AWS_USER_AGENT    "dsa-ingest/0.1"

struct di_aws_provider {
    di_aws_kind kind;
    di_aws_creds creds;
    int force;   /* refresh before the next get */
    int fetches; /* credential requests made */
    int margin_s;
    char region[64];
    char s3_endpoint[1024];
    char sts_endpoint[1024];
    char describe[1400];
    /* web identity */
    char role_arn[2048];
    char token_file[4096];
    char session_name[128];
    /* container endpoint */
    char container_url[2048];
    char auth_file[4096];
    char *auth_token; /* owned, secret */
    /* instance metadata */
    char imds[1024];
    long imds_timeout_ms;
    int imds_attempts;
    char imds_role[256];
};

static pthread_once_t aws_once = PTHREAD_ONCE_INIT;

/* aws_global_init: curl_global_init is reference counted, so this may run
 * beside http.c's own. */
static void aws_global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

/* env returns a variable's value, or NULL when it is unset or empty (the SDKs
 * treat both alike). */
static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* env_true reads a boolean variable the way the SDKs do ("true", any case). */
static int env_true(const char *name) {
    const char *v = env(name);
    return v && strcasecmp(v, "true") == 0;
}

/* env_long reads a non-negative number, or def when unset or malformed. */
static long env_long(const char *name, long def) {
    const char *v = env(name);
    char *end;
    if (!v)
        return def;
    errno = 0;
    long n = strtol(v, &end, 10);
    return errno || *end || n < 0 ? def : n;
}

/* zfree wipes a secret before handing its memory back. */
static void zfree(char *s) {
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* dupn copies n bytes into a fresh NUL-terminated string. */
static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* trim_span narrows [*s, *e) to its non-blank middle. */
static void trim_span(const char **s, const char **e) {
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* home_path expands a leading "~/" as the SDKs do, else copies path. */
static void home_path(const char *path, char *out, size_t outsz) {
    const char *home = env("HOME");
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (!home && getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res)
        home = res->pw_dir;
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0'))
        snprintf(out, outsz, "%s%s", home ? home : "", path + 1);
    else
        snprintf(out, outsz, "%s", path);
}

/* read_text reads a whole (small) file: 0, 1 when it does not exist, -1 on
 * another failure (errno kept) or when it is larger than max. */
static int read_text(const char *path, size_t max, char **out) {
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (!f)
        return errno == ENOENT || errno == ENOTDIR ? 1 : -1;
    di_buf b;
    di_buf_init(&b, max);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = di_buf_append(&b, chunk, n);
    if (rc == 0 && ferror(f))
        rc = -1;
    fclose(f);
    if (rc != 0 || di_buf_putc(&b, '\0') != 0) {
        if (b.data)
            explicit_bzero(b.data, b.cap);
        di_buf_cleanup(&b);
        return -1;
    }
    *out = b.data;
    return 0;
}

/* ---- shared config files ---- */

static const char *const aws_key_names[] = {
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "region",
    "endpoint_url",
    "role_arn",
    "web_identity_token_file",
    "role_session_name",
    "source_profile",
    "credential_source",
    "credential_process",
    "sso_start_url",
    "sso_session",
};

/* section_matches tells whether a "[...]" header names the wanted profile:
 * `[name]` in the credentials file; `[profile name]` in the config file, where
 * the default profile may also be plain `[default]`. */
static int section_matches(const char *s, const char *e, const char *name, int config_style) {
    trim_span(&s, &e);
    size_t nl = strlen(name);
    if (config_style && (size_t)(e - s) > 8 && strncmp(s, "profile", 7) == 0 &&
        isspace((unsigned char)s[7])) {
        s += 8;
        trim_span(&s, &e);
    } else if (config_style && strcmp(name, "default") != 0) {
        return 0;
    }
    return (size_t)(e - s) == nl && strncmp(s, name, nl) == 0;
}

/* profile_set stores one key = value line if it is a key we use and unset. */
static int profile_set(di_aws_profile *p, const char *k, const char *ke, const char *v,
                       const char *ve) {
    trim_span(&k, &ke);
    trim_span(&v, &ve);
    for (size_t i = 0; i < sizeof aws_key_names / sizeof *aws_key_names; i++) {
        size_t n = strlen(aws_key_names[i]);
        if ((size_t)(ke - k) != n || strncasecmp(k, aws_key_names[i], n) != 0)
            continue;
        if (p->values[i])
            return 0; /* the credentials file, read first, wins */
        p->values[i] = dupn(v, (size_t)(ve - v));
        return p->values[i] ? 0 : -1;
    }
    return 0;
}

/* parse_line handles one line of a shared file; *in says whether we are in
 * the wanted section. Indented lines continue a nested block: skipped. */
static int parse_line(di_aws_profile *p, const char *s, const char *e, const char *name,
                      int config_style, int *in) {
    if (s == e || isspace((unsigned char)*s)) {
        return 0;
    }
    if (*s == '#' || *s == ';')
        return 0;
    if (*s == '[') {
        const char *close = memchr(s, ']', (size_t)(e - s));
        *in = close && section_matches(s + 1, close, name, config_style);
        p->found |= *in;
        return 0;
    }
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!*in || !eq)
        return 0;
    return profile_set(p, s, eq, eq + 1, e);
}

/* di_aws_profile_parse: see aws_credentials.h. Lines end at \n (a \r before
 * it is trimmed with the other blanks). */
int di_aws_profile_parse(di_aws_profile *p, const char *text, const char *name, int config_style) {
    int in = 0;
    const char *s = text;
    while (*s) {
        const char *e = strchr(s, '\n');
        const char *next = e ? e + 1 : s + strlen(s);
        if (!e)
            e = next;
        if (parse_line(p, s, e, name, config_style, &in) != 0)
            return -1;
        s = next;
    }
    return 0;
}

/* di_aws_profile_get: NULL when the key was not in the profile. */
const char *di_aws_profile_get(const di_aws_profile *p, di_aws_key k) {
    return p->values[k];
}

/* di_aws_profile_cleanup wipes every value: some of them are secrets. */
void di_aws_profile_cleanup(di_aws_profile *p) {
    for (size_t i = 0; i < sizeof p->values / sizeof *p->values; i++)
        zfree(p->values[i]);
    memset(p, 0, sizeof *p);
}

/* ---- parsing responses ---- */

/* di_aws_parse_time: see aws_credentials.h. */
int di_aws_parse_time(const char *s, time_t *out) {
    struct tm tm;
    int n = 0;
    memset(&tm, 0, sizeof tm);
    if (!s ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return -1;
    const char *p = s + n;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p);)
            p++;
    long off = 0;
    if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
        p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]) && !p[6])
        off = (*p == '-' ? -1 : 1) *
              (((p[1] - '0') * 10 + p[2] - '0') * 3600L + ((p[4] - '0') * 10 + p[5] - '0') * 60L);
    else if (!(p[0] == 'Z' && p[1] == '\0'))
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = t - off;
    return 0;
}

/* di_aws_need_refresh: see aws_credentials.h. */
int di_aws_need_refresh(const di_aws_creds *c, time_t now, int margin_s) {
    if (c->expires == 0)
        return 0;
    time_t m = margin_s;
    time_t life = c->expires - c->fetched;
    if (c->fetched > 0 && life > 0 && m > life / 2)
        m = life / 2;
    return now >= c->expires - m;
}

/* di_aws_creds_cleanup: see aws_credentials.h. */
void di_aws_creds_cleanup(di_aws_creds *c) {
    zfree(c->access_key);
    zfree(c->secret_key);
    zfree(c->session_token);
    memset(c, 0, sizeof *c);
}

/* creds_set fills c from the strings of a response; -1 unless both keys are
 * there and every copy succeeded. */
static int creds_set(di_aws_creds *c, const char *ak, const char *sk, const char *tok,
                     const char *exp) {
    memset(c, 0, sizeof *c);
    if (!ak || !sk || !*ak || !*sk)
        return -1;
    c->access_key = strdup(ak);
    c->secret_key = strdup(sk);
    c->session_token = tok && *tok ? strdup(tok) : NULL;
    c->fetched = time(NULL);
    int bad = !c->access_key || !c->secret_key || (tok && *tok && !c->session_token);
    if (!bad && exp && *exp && di_aws_parse_time(exp, &c->expires) != 0)
        bad = 1;
    if (bad)
        di_aws_creds_cleanup(c);
    return bad ? -1 : 0;
}

/* The XML fields an S3 or STS response may carry, grabbed by element name. */
typedef struct xml_grab {
    const char *const *names;
    char **values;
    size_t n;
    int active; /* index of the element being read, -1 outside */
    di_buf text;
} xml_grab;

/* local_name drops a namespace prefix ("sts:Code" -> "Code"). */
static const char *local_name(const char *name) {
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
}

/* xml_start starts capturing when an element we want begins (first one only). */
static void XMLCALL xml_start(void *ud, const XML_Char *name, const XML_Char **attrs) {
    xml_grab *g = ud;
    (void)attrs;
    g->active = -1;
    for (size_t i = 0; i < g->n; i++)
        if (!g->values[i] && strcmp(local_name(name), g->names[i]) == 0)
            g->active = (int)i;
    di_buf_reset(&g->text);
}

/* xml_end keeps the text of the element that just ended, if it was wanted. */
static void XMLCALL xml_end(void *ud, const XML_Char *name) {
    xml_grab *g = ud;
    (void)name;
    if (g->active >= 0 && !g->values[g->active])
        g->values[g->active] = dupn(g->text.data ? g->text.data : "", g->text.len);
    g->active = -1;
}

/* xml_text collects character data; an oversized value is dropped whole. */
static void XMLCALL xml_text(void *ud, const XML_Char *s, int len) {
    xml_grab *g = ud;
    if (g->active >= 0 && di_buf_append(&g->text, s, (size_t)len) != 0)
        g->active = -1;
}

/* di_aws_xml_fields grabs the text of the first element of each name; a
 * truncated or broken document yields what came before the damage. Returns
 * how many were found; the caller frees values[]. */
size_t di_aws_xml_fields(const char *xml, size_t len, const char *const *names, char **values,
                         size_t n) {
    xml_grab g = {names, values, n, -1, {0}};
    di_buf_init(&g.text, AWS_RESPONSE_MAX);
    memset(values, 0, n * sizeof *values);
    XML_Parser p = XML_ParserCreate(NULL);
    if (p) {
        XML_SetUserData(p, &g);
        XML_SetElementHandler(p, xml_start, xml_end);
        XML_SetCharacterDataHandler(p, xml_text);
        if (XML_Parse(p, xml, (int)len, 0) == XML_STATUS_OK)
            XML_Parse(p, "", 0, 1);
        XML_ParserFree(p);
    }
    if (g.text.data)
        explicit_bzero(g.text.data, g.text.cap);
    di_buf_cleanup(&g.text);
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        found += values[i] != NULL;
    return found;
}

/* di_aws_parse_sts: see aws_credentials.h. */
int di_aws_parse_sts(const char *xml, size_t n, di_aws_creds *out, char *code, size_t codesz,
                     char *message, size_t msgsz) {
    static const char *const names[] = {
        "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Code", "Message"};
    char *v[6];
    di_aws_xml_fields(xml, n, names, v, 6);
    snprintf(code, codesz, "%s", v[4] ? v[4] : "");
    snprintf(message, msgsz, "%s", v[5] ? v[5] : "");
    int rc = v[4] ? -1 : creds_set(out, v[0], v[1], v[2], v[3]);
    for (int i = 0; i < 6; i++)
        zfree(v[i]);
    return rc;
}

/* json_str returns a string member of obj, or NULL. */
static const char *json_str(const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* di_aws_parse_json: see aws_credentials.h. */
int di_aws_parse_json(const char *json, di_aws_creds *out) {
    memset(out, 0, sizeof *out);
    cJSON *doc = cJSON_Parse(json);
    if (!doc)
        return -1;
    int rc = creds_set(out, json_str(doc, "AccessKeyId"), json_str(doc, "SecretAccessKey"),
                       json_str(doc, "Token"), json_str(doc, "Expiration"));
    cJSON_Delete(doc);
    return rc;
}

/* ---- HTTP for STS and the metadata services ---- */

typedef struct fetch_req {
    const char *method; /* "GET", "PUT" or "POST" */
    const char *url;
    struct curl_slist *headers;
    const char *body; /* POST/PUT body, NULL for none */
    long timeout_ms;
    int no_proxy; /* link-local metadata services are never proxied */
} fetch_req;

/* on_fetch_body appends a response to a capped buffer; too long aborts. */
static size_t on_fetch_body(char *p, size_t size, size_t nmemb, void *ud) {
    return di_buf_append(ud, p, size * nmemb) == 0 ? size * nmemb : 0;
}

/* fetch_setup sets the options of one small blocking request. */
static CURLcode fetch_setup(CURL *e, const fetch_req *rq, di_buf *out) {
    CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc ? rc : curl_easy_setopt(e, opt, val))
    SET(CURLOPT_URL, rq->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, rq->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, rq->timeout_ms);
    SET(CURLOPT_WRITEFUNCTION, on_fetch_body);
    SET(CURLOPT_WRITEDATA, out);
    SET(CURLOPT_USERAGENT, AWS_USER_AGENT);
    SET(CURLOPT_HTTPHEADER, rq->headers);
    if (rq->no_proxy)
        SET(CURLOPT_NOPROXY, "*");
    if (rq->body)
        SET(CURLOPT_POSTFIELDS, rq->body);
    if (strcmp(rq->method, "POST") != 0)
        SET(CURLOPT_CUSTOMREQUEST, rq->method);
#undef SET
    return rc;
}

/* fetch makes one request: 0 with *status and the body in out (NUL-ended),
 * or -1 with *cc saying why no response came. */
static int fetch(const fetch_req *rq, di_buf *out, long *status, CURLcode *cc) {
    pthread_once(&aws_once, aws_global_init);
    di_buf_reset(out);
    *status = 0;
    CURL *e = curl_easy_init();
    if (!e) {
        *cc = CURLE_OUT_OF_MEMORY;
        return -1;
    }
    *cc = fetch_setup(e, rq, out);
    if (*cc == CURLE_OK)
        *cc = curl_easy_perform(e);
    if (*cc == CURLE_OK && di_buf_putc(out, '\0') == 0) {
        out->len--;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    } else if (*cc == CURLE_OK) {
        *cc = CURLE_OUT_OF_MEMORY;
    }
    curl_easy_cleanup(e);
    return *cc == CURLE_OK ? 0 : -1;
}

/* wipe_buf forgets a response that held secrets. */
static void wipe_buf(di_buf *b) {
    if (b->data)
        explicit_bzero(b->data, b->cap);
    di_buf_cleanup(b);
}

/* status_class: a server's own trouble is worth retrying, a refusal is not. */
static di_class status_class(long status) {
    return status == 408 || status == 429 || status >= 500 ? DI_ERR_TRANSIENT : DI_ERR_CONFIG;
}

/* ---- web identity ---- */

/* form_add appends "&name=escaped(value)" to a form body. */
static int form_add(di_buf *b, CURL *e, const char *name, const char *value) {
    char *esc = curl_easy_escape(e, value, 0);
    if (!esc)
        return -1;
    int rc = di_buf_printf(b, "%s%s=%s", b->len ? "&" : "", name, esc);
    explicit_bzero(esc, strlen(esc));
    curl_free(esc);
    return rc;
}

/* sts_body builds the AssumeRoleWithWebIdentity form (the token goes in the
 * body, not the URL, so no proxy or server logs it). */
static int sts_body(const di_aws_provider *p, const char *token, di_buf *b) {
    CURL *e = curl_easy_init();
    int rc = e ? 0 : -1;
    rc = rc ? rc : form_add(b, e, "Action", "AssumeRoleWithWebIdentity");
    rc = rc ? rc : form_add(b, e, "Version", "2011-06-15");
    rc = rc ? rc : form_add(b, e, "RoleArn", p->role_arn);
    rc = rc ? rc : form_add(b, e, "RoleSessionName", p->session_name);
    rc = rc ? rc : form_add(b, e, "WebIdentityToken", token);
    if (e)
        curl_easy_cleanup(e);
    return rc;
}

/* read_token reads the web identity token file afresh (Kubernetes rotates it). */
static int read_token(const di_aws_provider *p, char **token, di_error *err) {
    int rc = read_text(p->token_file, AWS_TOKEN_MAX, token);
    if (rc != 0)
        return di_error_set(err, DI_ERR_CONFIG, "cannot read the web identity token file %s: %s",
                            p->token_file, rc > 0 ? "no such file" : strerror(errno));
    char *s = *token, *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    if (!*s) {
        zfree(*token);
        return di_error_set(err, DI_ERR_CONFIG, "the web identity token file %s is empty",
                            p->token_file);
    }
    return 0;
}

/* sts_verdict words a response that carried no credentials. */
static int sts_verdict(const di_aws_provider *p, long status, const char *code, const char *msg,
                       di_error *err) {
    di_class c = status_class(status);
    if (strcmp(code, "IDPCommunicationError") == 0 || strcmp(code, "Throttling") == 0 ||
        strcmp(code, "ServiceUnavailable") == 0 || strcmp(code, "InternalFailure") == 0)
        c = DI_ERR_TRANSIENT;
    if (status == 200)
        c = DI_ERR_TRANSIENT; /* a 200 without credentials: a broken answer */
    return di_error_set(err, c,
                        "web identity: STS refused AssumeRoleWithWebIdentity for role %s "
                        "(HTTP %ld%s%s%s%.300s)",
                        p->role_arn, status, code[0] ? ", " : "", code, msg[0] ? ": " : "", msg);
}

/* sts_exchange posts the form and reads the credentials out of the answer. */
static int sts_exchange(di_aws_provider *p, const char *form, di_aws_creds *out, di_error *err) {
    char code[128] = "", msg[512] = "";
    long status;
    CURLcode cc;
    di_buf resp;
    di_buf_init(&resp, AWS_RESPONSE_MAX);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/xml");
    fetch_req rq = {"POST", p->sts_endpoint, h, form, AWS_FETCH_TIMEOUT, 0};
    int rc = 0;
    if (!h)
        rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory building the STS request");
    else if (fetch(&rq, &resp, &status, &cc) != 0)
        rc = di_error_set(err, DI_ERR_TRANSIENT, "web identity: cannot reach STS at %s: %s",
                          p->sts_endpoint, curl_easy_strerror(cc));
    else if (di_aws_parse_sts(resp.data, resp.len, out, code, sizeof code, msg, sizeof msg) != 0)
        rc = sts_verdict(p, status, code, msg, err);
    else if (status != 200)
        rc = sts_verdict(p, status, code, msg, err);
    if (rc != 0)
        di_aws_creds_cleanup(out);
    curl_slist_free_all(h);
    wipe_buf(&resp);
    return rc;
}

/* fetch_web_identity trades the token for temporary credentials at STS. */
static int fetch_web_identity(di_aws_provider *p, di_aws_creds *out, di_error *err) {
    char *token = NULL;
    di_buf form;
    p->fetches++;
    if (read_token(p, &token, err) != 0)
        return -1;
    di_buf_init(&form, AWS_TOKEN_MAX * 4);
    int rc = sts_body(p, token, &form);
    zfree(token);
    if (rc != 0)
        rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory building the STS request");
    else
        rc = sts_exchange(p, form.data, out, err);
    wipe_buf(&form);
    return rc;
}

/* ---- container credentials (ECS, EKS Pod Identity) ---- */

/* allowed_container_url: like the SDKs, plain http only to loopback or to the
 * ECS / EKS link-local agents; anything else must be https. */
static int allowed_container_url(const char *url) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = 0;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        ok = strcasecmp(scheme, "https") == 0 ||
             (strcasecmp(scheme, "http") == 0 &&
              (strncmp(host, "127.", 4) == 0 || strcasecmp(host, "localhost") == 0 ||
               strcmp(host, "[::1]") == 0 || strcmp(host, "169.254.170.2") == 0 ||
               strcmp(host, "169.254.170.23") == 0 || strcasecmp(host, "[fd00:ec2::23]") == 0));
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* container_auth builds the Authorization header line, from the token file
 * (read each time: it rotates) or the token variable; NULL line for none. */
static int container_auth(const di_aws_provider *p, char **line, di_error *err) {
    char *tok = NULL;
    *line = NULL;
    if (p->auth_file[0]) {
        if (read_text(p->auth_file, AWS_TOKEN_MAX, &tok) != 0)
            return di_error_set(err, DI_ERR_CONFIG,
                                "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
                                p->auth_file);
    } else if (p->auth_token) {
        tok = strdup(p->auth_token);
    } else {
        return 0;
    }
    size_t n = tok ? strlen(tok) : 0;
    while (n > 0 && isspace((unsigned char)tok[n - 1]))
        tok[--n] = '\0';
    *line = tok ? malloc(n + 16) : NULL;
    if (*line)
        snprintf(*line, n + 16, "Authorization: %s", tok);
    zfree(tok);
    return *line ? 0 : di_error_set(err, DI_ERR_INTERNAL, "out of memory");
}

/* fetch_container asks the container agent for the task's credentials. */
static int fetch_container(di_aws_provider *p, di_aws_creds *out, di_error *err) {
    char *auth = NULL;
    if (container_auth(p, &auth, err) != 0)
        return -1;
    struct curl_slist *h = auth ? curl_slist_append(NULL, auth) : NULL;
    zfree(auth);
    di_buf resp;
    di_buf_init(&resp, AWS_RESPONSE_MAX);
    long status;
    CURLcode cc;
    fetch_req rq = {"GET", p->container_url, h, NULL, AWS_FETCH_TIMEOUT, 1};
    int rc = 0;
    p->fetches++;
    if (fetch(&rq, &resp, &status, &cc) != 0)
        rc = di_error_set(err, DI_ERR_TRANSIENT, "cannot reach the container endpoint %s: %s",
                          p->container_url, curl_easy_strerror(cc));
    else if (status != 200)
        rc = di_error_set(err, status_class(status),
                          "the container credentials endpoint %s answered HTTP %ld",
                          p->container_url, status);
    else if (di_aws_parse_json(resp.data, out) != 0)
        rc = di_error_set(err, DI_ERR_TRANSIENT, "no usable credentials from %s", p->container_url);
    if (h) {
        explicit_bzero(h->data, strlen(h->data));
        curl_slist_free_all(h);
    }
    wipe_buf(&resp);
    return rc;
}

/* ---- EC2 instance metadata (IMDSv2) ---- */

/* imds_call makes one metadata request, retried up to the configured number
 * of attempts; 0 with status and body, -1 when the service never answered. */
static int imds_call(di_aws_provider *p, const char *method, const char *path, struct curl_slist *h,
                     di_buf *out, long *status) {
    char url[1400];
    CURLcode cc;
    snprintf(url, sizeof url, "%s%s", p->imds, path);
    fetch_req rq = {method, url, h, strcmp(method, "PUT") == 0 ? "" : NULL, p->imds_timeout_ms, 1};
    for (int i = 0; i < p->imds_attempts; i++)
        if (fetch(&rq, out, status, &cc) == 0 && *status < 500)
            return 0;
    return -1;
}

/* imds_token gets an IMDSv2 session token; its header line goes in *h. */
static int imds_token(di_aws_provider *p, struct curl_slist **h, di_error *err) {
    di_buf b;
    long status;
    di_buf_init(&b, 4096);
    struct curl_slist *ttl = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: 300");
    int rc = ttl ? imds_call(p, "PUT", "/latest/api/token", ttl, &b, &status) : -1;
    curl_slist_free_all(ttl);
    if (rc == 0 && (status != 200 || b.len == 0))
        rc = di_error_set(err, DI_ERR_CONFIG,
                          "the instance metadata service at %s refused an IMDSv2 token (HTTP %ld)",
                          p->imds, status);
    else if (rc != 0)
        di_error_set(err, DI_ERR_TRANSIENT, "the instance metadata service at %s did not answer",
                     p->imds);
    char line[4200];
    if (rc == 0) {
        snprintf(line, sizeof line, "X-aws-ec2-metadata-token: %.*s", (int)strcspn(b.data, "\r\n"),
                 b.data);
        *h = curl_slist_append(NULL, line);
        explicit_bzero(line, sizeof line);
        rc = *h ? 0 : di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    }
    wipe_buf(&b);
    return rc;
}

/* imds_role finds the instance profile's role name (the first line). */
static int imds_role(di_aws_provider *p, struct curl_slist *h, di_error *err) {
    di_buf b;
    long status;
    di_buf_init(&b, 4096);
    int rc = imds_call(p, "GET", AWS_IMDS_CREDS, h, &b, &status);
    if (rc != 0)
        di_error_set(err, DI_ERR_TRANSIENT, "the instance metadata service at %s did not answer",
                     p->imds);
    else if (status != 200 || b.len == 0)
        rc = di_error_set(err, DI_ERR_CONFIG,
                          "no IAM role is attached to this instance (metadata HTTP %ld)", status);
    else
        snprintf(p->imds_role, sizeof p->imds_role, "%.*s", (int)strcspn(b.data, "\r\n"), b.data);
    di_buf_cleanup(&b);
    return rc;
}

/* imds_creds reads the role's credentials document. */
static int imds_creds(di_aws_provider *p, struct curl_slist *h, di_aws_creds *out, di_error *err) {
    char path[512];
    di_buf b;
    long status;
    char *role = curl_easy_escape(NULL, p->imds_role, 0);
    if (!role)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    snprintf(path, sizeof path, "%s%s", AWS_IMDS_CREDS, role);
    curl_free(role);
    di_buf_init(&b, AWS_RESPONSE_MAX);
    int rc = imds_call(p, "GET", path, h, &b, &status);
    if (rc != 0)
        di_error_set(err, DI_ERR_TRANSIENT, "the instance metadata service at %s did not answer",
                     p->imds);
    else if (status != 200 || di_aws_parse_json(b.data, out) != 0)
        rc = di_error_set(err, status == 200 ? DI_ERR_TRANSIENT : status_class(status),
                          "no usable credentials for role %s from instance metadata (HTTP %ld)",
                          p->imds_role, status);
    wipe_buf(&b);
    return rc;
}

/* fetch_imds: token, role (looked up every time: it can be changed), creds. */
static int fetch_imds(di_aws_provider *p, di_aws_creds *out, di_error *err) {
    struct curl_slist *h = NULL;
    p->fetches++;
    int rc = imds_token(p, &h, err);
    rc = rc ? rc : imds_role(p, h, err);
    rc = rc ? rc : imds_creds(p, h, out, err);
    if (h)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(h);
    return rc;
}

/* ---- the chain ---- */

/* fetch_kind refetches temporary credentials from where they came. */
static int fetch_kind(di_aws_provider *p, di_aws_creds *out, di_error *err) {
    memset(out, 0, sizeof *out);
    switch (p->kind) {
    case DI_AWS_WEB_IDENTITY:
        return fetch_web_identity(p, out, err);
    case DI_AWS_CONTAINER:
        return fetch_container(p, out, err);
    case DI_AWS_IMDS:
        return fetch_imds(p, out, err);
    default:
        return di_error_set(err, DI_ERR_INTERNAL, "these credentials cannot be refreshed");
    }
}

/* refreshable: only fetched credentials can be fetched again. */
static int refreshable(const di_aws_provider *p) {
    return p->kind == DI_AWS_WEB_IDENTITY || p->kind == DI_AWS_CONTAINER || p->kind == DI_AWS_IMDS;
}

/* from_env: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN];
 * one without the other is a mistake worth saying. 1 when unset. */
static int from_env(di_aws_provider *p, di_error *err) {
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    if (!ak && !sk)
        return 1;
    if (!ak || !sk)
        return di_error_set(err, DI_ERR_CONFIG, "%s is set but %s is not",
                            ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                            ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    if (creds_set(&p->creds, ak, sk, env("AWS_SESSION_TOKEN"), NULL) != 0)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    p->kind = DI_AWS_ENV;
    snprintf(p->describe, sizeof p->describe,
             "from the environment variables (AWS_ACCESS_KEY_ID%s)",
             p->creds.session_token ? ", AWS_SESSION_TOKEN" : "");
    return 0;
}

/* The profile and the two files it was read from. */
typedef struct profile_src {
    char name[256];
    int named; /* AWS_PROFILE was set: the profile must exist */
    char creds_path[4096];
    char config_path[4096];
    int keys_from_creds; /* the access key came from the credentials file */
    di_aws_profile prof;
} profile_src;

/* load_file parses one shared file into ps->prof; a missing file is fine. */
static int load_file(profile_src *ps, const char *path, int config_style, di_error *err) {
    char *text = NULL;
    int rc = read_text(path, AWS_FILE_MAX, &text);
    if (rc > 0)
        return 0;
    if (rc < 0)
        return di_error_set(err, DI_ERR_CONFIG, "cannot read the AWS %s file %s: %s",
                            config_style ? "config" : "credentials", path,
                            errno ? strerror(errno) : "too large");
    rc = di_aws_profile_parse(&ps->prof, text, ps->name, config_style);
    explicit_bzero(text, strlen(text));
    free(text);
    return rc == 0 ? 0 : di_error_set(err, DI_ERR_INTERNAL, "out of memory reading %s", path);
}

/* load_profile reads the profile from the credentials file, then the config
 * file (whose keys only fill what the credentials file left unset). */
static int load_profile(profile_src *ps, di_error *err) {
    const char *name = env("AWS_PROFILE");
    if (!name)
        name = env("AWS_DEFAULT_PROFILE");
    ps->named = name != NULL;
    snprintf(ps->name, sizeof ps->name, "%s", name ? name : "default");
    const char *cf = env("AWS_SHARED_CREDENTIALS_FILE"), *gf = env("AWS_CONFIG_FILE");
    home_path(cf ? cf : "~/.aws/credentials", ps->creds_path, sizeof ps->creds_path);
    home_path(gf ? gf : "~/.aws/config", ps->config_path, sizeof ps->config_path);
    if (load_file(ps, ps->creds_path, 0, err) != 0)
        return -1;
    ps->keys_from_creds = ps->prof.values[DI_AWS_KEY_ACCESS_KEY_ID] != NULL;
    if (load_file(ps, ps->config_path, 1, err) != 0)
        return -1;
    if (ps->named && !ps->prof.found)
        return di_error_set(err, DI_ERR_CONFIG,
                            "the AWS profile \"%s\" (AWS_PROFILE) is in "
                            "neither %s nor %s",
                            ps->name, ps->creds_path, ps->config_path);
    return 0;
}

/* web_identity_setup records what a web identity refresh needs. */
static void web_identity_setup(di_aws_provider *p, const char *role, const char *file,
                               const char *session) {
    p->kind = DI_AWS_WEB_IDENTITY;
    snprintf(p->role_arn, sizeof p->role_arn, "%s", role);
    home_path(file, p->token_file, sizeof p->token_file);
    if (session)
        snprintf(p->session_name, sizeof p->session_name, "%s", session);
    else
        snprintf(p->session_name, sizeof p->session_name, "dsa-ingest-%lld", (long long)time(NULL));
}

/* unsupported names a profile feature dsa-ingest does not implement. */
static int unsupported(const profile_src *ps, const char *what, di_error *err) {
    return di_error_set(err, DI_ERR_CONFIG,
                        "the AWS profile \"%s\" uses %s, which dsa-ingest "
                        "does not support: use static keys, web identity "
                        "(role_arn + web_identity_token_file) or instance credentials",
                        ps->name, what);
}

/* from_profile takes credentials from the shared files' profile; 1 when the
 * profile has none (the chain goes on). */
static int from_profile(di_aws_provider *p, profile_src *ps, di_error *err) {
    const di_aws_profile *pr = &ps->prof;
    const char *role = di_aws_profile_get(pr, DI_AWS_KEY_ROLE_ARN);
    const char *ak = di_aws_profile_get(pr, DI_AWS_KEY_ACCESS_KEY_ID);
    const char *sk = di_aws_profile_get(pr, DI_AWS_KEY_SECRET_ACCESS_KEY);
    if (role && di_aws_profile_get(pr, DI_AWS_KEY_WEB_IDENTITY_TOKEN_FILE)) {
        web_identity_setup(p, role, di_aws_profile_get(pr, DI_AWS_KEY_WEB_IDENTITY_TOKEN_FILE),
                           di_aws_profile_get(pr, DI_AWS_KEY_ROLE_SESSION_NAME));
        snprintf(p->describe, sizeof p->describe, "from web identity (role %s, profile \"%s\")",
                 p->role_arn, ps->name);
        return 0;
    }
    if (role)
        return unsupported(ps, "role_arn with source_profile/credential_source (AssumeRole)", err);
    if (ak || sk) {
        if (!ak || !sk)
            return di_error_set(err, DI_ERR_CONFIG, "the AWS profile \"%s\" has %s but not %s",
                                ps->name, ak ? "aws_access_key_id" : "aws_secret_access_key",
                                ak ? "aws_secret_access_key" : "aws_access_key_id");
        if (creds_set(&p->creds, ak, sk, di_aws_profile_get(pr, DI_AWS_KEY_SESSION_TOKEN), NULL))
            return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        p->kind = DI_AWS_PROFILE;
        snprintf(p->describe, sizeof p->describe, "from profile \"%s\" in %s", ps->name,
                 ps->keys_from_creds ? ps->creds_path : ps->config_path);
        return 0;
    }
    if (di_aws_profile_get(pr, DI_AWS_KEY_CREDENTIAL_PROCESS))
        return unsupported(ps, "credential_process", err);
    if (di_aws_profile_get(pr, DI_AWS_KEY_SSO_START_URL) ||
        di_aws_profile_get(pr, DI_AWS_KEY_SSO_SESSION))
        return unsupported(ps, "AWS IAM Identity Center (SSO)", err);
    return 1;
}

/* from_web_identity_env: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (EKS IRSA). */
static int from_web_identity_env(di_aws_provider *p) {
    const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
    if (!file || !role)
        return 1;
    web_identity_setup(p, role, file, env("AWS_ROLE_SESSION_NAME"));
    snprintf(p->describe, sizeof p->describe,
             "from web identity (role %s, token file AWS_WEB_IDENTITY_TOKEN_FILE)", p->role_arn);
    return 0;
}

/* from_container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS) or _FULL_URI. */
static int from_container(di_aws_provider *p, di_error *err) {
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return 1;
    if (rel)
        snprintf(p->container_url, sizeof p->container_url, "%s%s", AWS_ECS_HOST, rel);
    else
        snprintf(p->container_url, sizeof p->container_url, "%s", full);
    if (!rel && !allowed_container_url(full))
        return di_error_set(err, DI_ERR_CONFIG,
                            "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, "
                            "or http to a loopback or the ECS/EKS agent address: %s",
                            full);
    const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (file)
        snprintf(p->auth_file, sizeof p->auth_file, "%s", file);
    else if (tok && !(p->auth_token = strdup(tok)))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    p->kind = DI_AWS_CONTAINER;
    snprintf(p->describe, sizeof p->describe, "from the container credentials endpoint %s",
             p->container_url);
    return 0;
}

/* from_imds asks the instance metadata service, unless it is disabled; a
 * service that does not answer (not on EC2) only ends the chain. */
static int from_imds(di_aws_provider *p, di_error *err) {
    if (env_true("AWS_EC2_METADATA_DISABLED"))
        return 1;
    const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    snprintf(p->imds, sizeof p->imds, "%s", ep ? ep : AWS_DEFAULT_IMDS);
    size_t n = strlen(p->imds);
    while (n > 0 && p->imds[n - 1] == '/')
        p->imds[--n] = '\0';
    p->imds_timeout_ms = env_long("AWS_METADATA_SERVICE_TIMEOUT", 1) * 1000;
    p->imds_attempts = (int)env_long("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1);
    p->imds_timeout_ms = p->imds_timeout_ms > 0 ? p->imds_timeout_ms : 1000;
    p->imds_attempts = p->imds_attempts > 0 ? p->imds_attempts : 1;
    p->kind = DI_AWS_IMDS;
    if (fetch_imds(p, &p->creds, err) == 0) {
        snprintf(p->describe, sizeof p->describe, "from EC2 instance metadata (role %s)",
                 p->imds_role);
        return 0;
    }
    p->kind = DI_AWS_ANONYMOUS;
    if (err->cls == DI_ERR_TRANSIENT || !p->imds_role[0]) {
        di_error_clear(err); /* not on EC2, or no role: nothing to sign with */
        return 1;
    }
    return -1;
}

/* endpoint_setting picks AWS_ENDPOINT_URL_<SVC>, then AWS_ENDPOINT_URL, then
 * the profile's endpoint_url (the SDKs' order); "" for the AWS default. */
static void endpoint_setting(const char *svc_var, const profile_src *ps, char *out, size_t outsz) {
    const char *v = NULL;
    if (!env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
        v = env(svc_var);
        v = v ? v : env("AWS_ENDPOINT_URL");
        v = v ? v : di_aws_profile_get(&ps->prof, DI_AWS_KEY_ENDPOINT_URL);
    }
    snprintf(out, outsz, "%s", v ? v : "");
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* settings fills region, endpoints and the refresh margin. */
static void settings(di_aws_provider *p, const profile_src *ps) {
    const char *r = env("AWS_REGION");
    r = r ? r : env("AWS_DEFAULT_REGION");
    r = r ? r : di_aws_profile_get(&ps->prof, DI_AWS_KEY_REGION);
    snprintf(p->region, sizeof p->region, "%s", r && *r ? r : "us-east-1");
    endpoint_setting("AWS_ENDPOINT_URL_S3", ps, p->s3_endpoint, sizeof p->s3_endpoint);
    endpoint_setting("AWS_ENDPOINT_URL_STS", ps, p->sts_endpoint, sizeof p->sts_endpoint);
    if (!p->sts_endpoint[0])
        snprintf(p->sts_endpoint, sizeof p->sts_endpoint, "https://sts.%s.amazonaws.com%s",
                 p->region, strncmp(p->region, "cn-", 3) == 0 ? ".cn" : "");
    p->margin_s = (int)env_long("DSA_INGEST_AWS_REFRESH_MARGIN", AWS_MARGIN_S);
}

/* walk_chain stops at the first provider that has credentials. */
static int walk_chain(di_aws_provider *p, profile_src *ps, di_error *err) {
    int rc = from_env(p, err);
    if (rc == 1)
        rc = from_profile(p, ps, err);
    if (rc == 1)
        rc = from_web_identity_env(p);
    if (rc == 1)
        rc = from_container(p, err);
    if (rc == 0 && refreshable(p) && p->kind != DI_AWS_IMDS) {
        rc = fetch_kind(p, &p->creds, err);
        return rc;
    }
    if (rc == 1)
        rc = from_imds(p, err);
    if (rc == 1)
        snprintf(p->describe, sizeof p->describe,
                 "(none were found: not in the environment, profile \"%s\", web identity, the "
                 "container endpoint or instance metadata, so the request was unsigned)",
                 ps->name);
    return rc < 0 ? -1 : 0;
}

/* di_aws_provider_new: see aws_credentials.h. */
di_aws_provider *di_aws_provider_new(di_error *err) {
    di_aws_provider *p = calloc(1, sizeof *p);
    profile_src *ps = calloc(1, sizeof *ps);
    int rc = p && ps ? 0 : di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    rc = rc ? rc : load_profile(ps, err);
    if (rc == 0)
        settings(p, ps);
    rc = rc ? rc : walk_chain(p, ps, err);
    if (ps)
        di_aws_profile_cleanup(&ps->prof);
    free(ps);
    if (rc != 0) {
        di_aws_provider_free(p);
        return NULL;
    }
    return p;
}

/* di_aws_provider_get: see aws_credentials.h. A failed refresh while the old
 * credentials are still valid is not an error yet: they are used meanwhile. */
int di_aws_provider_get(di_aws_provider *p, time_t now, const di_aws_creds **out, di_error *err) {
    *out = NULL;
    if (p->kind == DI_AWS_ANONYMOUS)
        return 0;
    if (refreshable(p) && (p->force || di_aws_need_refresh(&p->creds, now, p->margin_s))) {
        di_aws_creds fresh;
        if (fetch_kind(p, &fresh, err) == 0) {
            di_aws_creds_cleanup(&p->creds);
            p->creds = fresh;
            p->force = 0;
        } else if (!p->force && err->cls == DI_ERR_TRANSIENT && p->creds.expires > now) {
            di_error_clear(err);
        } else {
            return -1;
        }
    }
    *out = &p->creds;
    return 0;
}

/* di_aws_provider_expire: see aws_credentials.h. */
int di_aws_provider_expire(di_aws_provider *p) {
    if (!refreshable(p))
        return 0;
    p->force = 1;
    return 1;
}

/* di_aws_provider_kind: which link of the chain supplied the credentials. */
di_aws_kind di_aws_provider_kind(const di_aws_provider *p) {
    return p->kind;
}

/* di_aws_provider_region: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1. */
const char *di_aws_provider_region(const di_aws_provider *p) {
    return p->region;
}

/* di_aws_provider_s3_endpoint: "" means AWS's own regional endpoints. */
const char *di_aws_provider_s3_endpoint(const di_aws_provider *p) {
    return p->s3_endpoint;
}

/* di_aws_provider_describe: for "check the credentials …" messages. */
const char *di_aws_provider_describe(const di_aws_provider *p) {
    return p->describe;
}

/* di_aws_provider_fetches counts STS / metadata credential requests. */
int di_aws_provider_fetches(const di_aws_provider *p) {
    return p->fetches;
}

/* di_aws_provider_free wipes the credentials with the struct. */
void di_aws_provider_free(di_aws_provider *p) {
    if (!p)
        return;
    di_aws_creds_cleanup(&p->creds);
    zfree(p->auth_token);
    free(p);
}
