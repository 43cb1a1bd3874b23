/* test_serve.c - the pure parts of `serve`: S3 event envelopes (Records[],
 * MinIO, EventBridge, SNS, test events) and key decoding, the rules file and
 * first-match routing, source URL checks (schemes, buckets, hosts, every
 * special address range, allowed networks), SNS confirmation hosts, API
 * tokens and scopes, JSON bodies with their error positions, and spool file
 * names. Nothing here opens a socket: URL checks use numeric hosts only. */
#include "http/auth.h"
#include "http/events.h"
#include "http/jsonbody.h"
#include "http/netcheck.h"
#include "http/serve.h"
#include "http/sqs.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- events ---- */

typedef struct seen {
    int n;
    di_s3_object o[4];
} seen;

/* collect keeps the objects a walk announces. */
static int collect(void *ctx, const di_s3_object *o) {
    seen *s = ctx;
    if (s->n < 4)
        s->o[s->n] = *o;
    s->n++;
    return 0;
}

/* walk parses text and walks it; returns the walk's result. */
static int walk(const char *text, seen *s, di_s3_parsed *p, di_error *err) {
    memset(s, 0, sizeof *s);
    di_error_clear(err);
    cJSON *root = cJSON_Parse(text), *inner = NULL;
    int rc = di_s3_events_walk(root, p, &inner, collect, s, err);
    cJSON_Delete(inner);
    cJSON_Delete(root);
    return rc;
}

static const char records_body[] =
    "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"eventName\":"
    "\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"data\"},\"object\":{\"key\":"
    "\"incoming/My+Sales%2B2024%3F.csv\",\"size\":1024,\"eTag\":\"abc123\",\"sequencer\":"
    "\"0055AED6DCD90281E5\"}}},{\"eventName\":\"ObjectRemoved:Delete\",\"s3\":{\"bucket\":"
    "{\"name\":\"data\"},\"object\":{\"key\":\"old.csv\",\"versionId\":\"v7\"}}}]}";

/* test_records: S3's own shape, key decoding, identity, created or not. */
static void test_records(void) {
    seen s;
    di_s3_parsed p;
    di_error err;
    CHECK_INT(walk(records_body, &s, &p, &err), 0);
    CHECK_INT(p.envelope, DI_S3_ENV_RECORDS);
    CHECK_INT(p.sns, 0);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.o[0].bucket, "data");
    CHECK_STR(s.o[0].key, "incoming/My Sales+2024?.csv");
    CHECK_STR(s.o[0].version, "etag:abc123");
    CHECK_INT(s.o[0].size, 1024);
    CHECK_INT(s.o[0].created, 1);
    CHECK_STR(s.o[1].version, "v:v7");
    CHECK_INT(s.o[1].created, 0);
}

/* test_minio: MinIO's webhook body (Records with EventName/Key beside), a
 * quoted ETag, a "null" version id and a size given as a string. */
static void test_minio(void) {
    seen s;
    di_s3_parsed p;
    di_error err;
    const char *body =
        "{\"EventName\":\"s3:ObjectCreated:Put\",\"Key\":\"data/a b.csv\",\"Records\":[{"
        "\"eventSource\":\"minio:s3\",\"eventName\":\"s3:ObjectCreated:Put\",\"s3\":{\"bucket\":"
        "{\"name\":\"data\"},\"object\":{\"key\":\"a+b.csv\",\"size\":\"12\",\"eTag\":"
        "\"\\\"e1\\\"\",\"versionId\":\"null\"}}}]}";
    CHECK_INT(walk(body, &s, &p, &err), 0);
    CHECK_INT(p.envelope, DI_S3_ENV_RECORDS);
    CHECK_INT(s.n, 1);
    CHECK_STR(s.o[0].key, "a b.csv");
    CHECK_STR(s.o[0].etag, "e1");
    CHECK_STR(s.o[0].version, "etag:e1");
    CHECK_INT(s.o[0].size, 12);
    CHECK_INT(s.o[0].created, 1);
}

/* test_eventbridge: "Object Created" with version-id and etag. */
static void test_eventbridge(void) {
    seen s;
    di_s3_parsed p;
    di_error err;
    const char *body =
        "{\"version\":\"0\",\"detail-type\":\"Object Created\",\"source\":\"aws.s3\","
        "\"detail\":{\"bucket\":{\"name\":\"lake\"},\"object\":{\"key\":\"x/y%20z.tsv\","
        "\"size\":5,\"etag\":\"b194\",\"version-id\":\"IYV3\",\"sequencer\":\"61\"}}}";
    CHECK_INT(walk(body, &s, &p, &err), 0);
    CHECK_INT(p.envelope, DI_S3_ENV_EVENTBRIDGE);
    CHECK_INT(s.n, 1);
    CHECK_STR(s.o[0].bucket, "lake");
    CHECK_STR(s.o[0].key, "x/y z.tsv");
    CHECK_STR(s.o[0].version, "v:IYV3");
    CHECK_INT(s.o[0].created, 1);
    const char *deleted = "{\"detail-type\":\"Object Deleted\",\"source\":\"aws.s3\",\"detail\":{"
                          "\"bucket\":{\"name\":\"lake\"},\"object\":{\"key\":\"k\"}}}";
    CHECK_INT(walk(deleted, &s, &p, &err), 0);
    CHECK_INT(s.o[0].created, 0);
    CHECK_STR(s.o[0].version, "");
}

/* test_sns: a Notification wrapping Records, a confirmation, a test event. */
static void test_sns(void) {
    seen s;
    di_s3_parsed p;
    di_error err;
    cJSON *env = cJSON_CreateObject();
    cJSON_AddStringToObject(env, "Type", "Notification");
    cJSON_AddStringToObject(env, "TopicArn", "arn:aws:sns:us-east-1:1:t");
    cJSON_AddStringToObject(env, "Message", records_body);
    char *text = cJSON_PrintUnformatted(env);
    cJSON_Delete(env);
    CHECK_INT(walk(text, &s, &p, &err), 0);
    free(text);
    CHECK_INT(p.sns, 1);
    CHECK_INT(p.envelope, DI_S3_ENV_RECORDS);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.o[0].key, "incoming/My Sales+2024?.csv");
    CHECK_INT(walk("{\"Type\":\"SubscriptionConfirmation\",\"TopicArn\":\"a\",\"SubscribeURL\":"
                   "\"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\"}",
                   &s, &p, &err),
              0);
    CHECK_INT(p.envelope, DI_S3_ENV_SNS_CONFIRM);
    CHECK_INT(walk("{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Bucket\":\"b\"}", &s,
                   &p, &err),
              0);
    CHECK_INT(p.envelope, DI_S3_ENV_TEST);
    CHECK_INT(s.n, 0);
    CHECK_INT(walk("{\"Type\":\"Notification\",\"TopicArn\":\"a\",\"Message\":\"not json\"}", &s,
                   &p, &err),
              -1);
}

/* test_bad_events: bodies that are not S3 events, or records without keys. */
static void test_bad_events(void) {
    seen s;
    di_s3_parsed p;
    di_error err;
    CHECK_INT(walk("{\"hello\":1}", &s, &p, &err), -1);
    CHECK(strstr(err.message, "not an S3 event") != NULL);
    CHECK_INT(walk("[1,2]", &s, &p, &err), -1);
    CHECK_INT(
        walk("{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{}}}]}", &s, &p, &err),
        -1);
    CHECK(strstr(err.message, "event 0") != NULL);
    CHECK_INT(walk("{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":"
                   "\"a%00b\"}}}]}",
                   &s, &p, &err),
              -1);
}

/* test_key_decode: the table of S3 key encodings. */
static void test_key_decode(void) {
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"a+b", "a b"},           {"a%2Bb", "a+b"},           {"%E2%82%AC.csv", "\xe2\x82\xac.csv"},
        {"dir/x%3Dy", "dir/x=y"}, {"plain.csv", "plain.csv"}, {"%25", "%"}};
    char out[64];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CHECK_INT(di_s3_key_decode(ok[i].in, out, sizeof out), 0);
        CHECK_STR(out, ok[i].out);
    }
    CHECK_INT(di_s3_key_decode("%4", out, sizeof out), -1);
    CHECK_INT(di_s3_key_decode("%zz", out, sizeof out), -1);
    CHECK_INT(di_s3_key_decode("%00", out, sizeof out), -1);
    CHECK_INT(di_s3_key_decode("abcdef", out, 4), -1);
}

/* ---- rules ---- */

/* test_rules: parsing, defaults, first match wins, errors name the rule. */
static void test_rules(void) {
    di_event_rules r;
    di_error err;
    di_error_clear(&err);
    const char *text =
        "[{\"bucket\":\"b\",\"prefix\":\"incoming/\",\"suffix\":\".csv.gz\","
        "\"dataset\":\"sales\",\"ref\":\"main\",\"mode\":\"update\"},"
        "{\"bucket\":\"b\",\"prefix\":\"incoming/\",\"dataset\":7},"
        "{\"bucket\":\"*\",\"suffix\":\".tsv\",\"dataset\":\"any\",\"format\":\"tsv\"}]";
    CHECK_INT(di_event_rules_parse(&r, text, &err), 0);
    CHECK_INT(r.n, 3);
    const di_event_rule *m = di_event_rules_match(&r, "b", "incoming/x.csv.gz");
    CHECK(m == &r.rules[0]);
    CHECK_STR(m ? m->mode : NULL, "update");
    m = di_event_rules_match(&r, "b", "incoming/x.csv");
    CHECK(m == &r.rules[1]);
    CHECK_STR(m ? m->dataset : NULL, "7");
    CHECK_STR(m ? m->ref : NULL, "main");
    CHECK_STR(m ? m->mode : NULL, "snapshot");
    CHECK(di_event_rules_match(&r, "other", "incoming/x.csv") == NULL);
    m = di_event_rules_match(&r, "other", "deep/y.tsv");
    CHECK(m == &r.rules[2]);
    CHECK(di_event_rules_match(&r, "b", "outgoing/x.csv.gz") == NULL);
    di_event_rules_free(&r);

    static const struct {
        const char *text, *want;
    } bad[] = {{"{}", "expected a JSON array"},
               {"[{\"bucket\":\"b\"}]", "rule 1 has no \"dataset\""},
               {"[{\"dataset\":\"d\"},{\"dataset\":\"d\",\"mode\":\"merge\"}]", "rule 2: mode"},
               {"[{\"dataset\":\"d\",\"prefix\":3}]", "not a string"},
               {"[1]", "rule 1 is not an object"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        di_error_clear(&err);
        CHECK_INT(di_event_rules_parse(&r, bad[i].text, &err), -1);
        CHECK(strstr(err.message, bad[i].want) != NULL);
        CHECK_INT(r.n, 0);
    }
}

/* ---- source checks ---- */

/* refused_v4 runs di_addr_refused on a dotted IPv4 address. */
static const char *refused_ip(const di_netpolicy *p, const char *ip) {
    static struct sockaddr_in6 sa6;
    static struct sockaddr_in sa4;
    if (strchr(ip, ':')) {
        memset(&sa6, 0, sizeof sa6);
        sa6.sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &sa6.sin6_addr);
        return di_addr_refused(p, (struct sockaddr *)&sa6);
    }
    memset(&sa4, 0, sizeof sa4);
    sa4.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sa4.sin_addr);
    return di_addr_refused(p, (struct sockaddr *)&sa4);
}

/* test_addresses: every special range is refused, public ones pass, and an
 * allowed network lets its addresses through (only those). */
static void test_addresses(void) {
    di_netpolicy p;
    di_error err;
    CHECK_INT(di_netpolicy_init(&p, NULL, NULL, NULL, NULL, &err), 0);
    static const struct {
        const char *ip, *why;
    } table[] = {{"127.0.0.1", "loopback"},
                 {"127.255.0.9", "loopback"},
                 {"10.1.2.3", "private"},
                 {"172.16.0.1", "private"},
                 {"172.31.255.255", "private"},
                 {"192.168.1.1", "private"},
                 {"169.254.169.254", "link-local"},
                 {"0.0.0.0", "unspecified"},
                 {"100.64.0.1", "private (CGNAT)"},
                 {"224.0.0.1", "multicast"},
                 {"255.255.255.255", "reserved"},
                 {"::1", "loopback"},
                 {"::", "unspecified"},
                 {"fe80::1", "link-local"},
                 {"fd00:ec2::254", "private"},
                 {"::ffff:127.0.0.1", "loopback"},
                 {"::ffff:169.254.169.254", "link-local"},
                 {"64:ff9b::a00:1", "private"},
                 {"ff02::1", "multicast"},
                 {"8.8.8.8", NULL},
                 {"172.32.0.1", NULL},
                 {"2606:4700::1111", NULL},
                 {"::ffff:1.1.1.1", NULL}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *got = refused_ip(&p, table[i].ip);
        if (table[i].why)
            CHECK_STR(got, table[i].why);
        else
            CHECK(got == NULL);
    }
    CHECK_INT(di_netpolicy_init(&p, NULL, NULL, NULL, "127.0.0.1/32, ::1/128,10.0.0.0/8", &err), 0);
    CHECK(refused_ip(&p, "127.0.0.1") == NULL);
    CHECK_STR(refused_ip(&p, "127.0.0.2"), "loopback");
    CHECK(refused_ip(&p, "::1") == NULL);
    CHECK(refused_ip(&p, "10.200.0.1") == NULL);
    CHECK_STR(refused_ip(&p, "169.254.169.254"), "link-local");
    CHECK_INT(di_netpolicy_init(&p, NULL, NULL, NULL, "127.0.0.1/33", &err), -1);
    CHECK_INT(di_netpolicy_init(&p, NULL, NULL, NULL, "localhost", &err), -1);
    CHECK_INT(di_netpolicy_init(&p, "s3,file", NULL, NULL, NULL, &err), -1);
}

/* test_connect_check: di_netcheck_addr (the worker's check at connect time)
 * words a refusal with the address, its class and who the rule is for. */
static void test_connect_check(void) {
    di_netpolicy p;
    di_error err;
    char why[300];
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    CHECK_INT(di_netpolicy_init(&p, NULL, NULL, NULL, "127.0.0.1/32", &err), 0);
    static const struct {
        const char *ip, *want; /* want: the message, or NULL when allowed */
    } table[] = {
        {"127.0.0.1", NULL},
        {"1.1.1.1", NULL},
        {"127.0.0.2", "refusing to connect to 127.0.0.2 (loopback): not allowed for jobs "
                      "submitted through the API (allow the network with "
                      "DSA_INGEST_ALLOWED_NETWORKS)"},
        {"169.254.169.254", "refusing to connect to 169.254.169.254 (link-local): not allowed "
                            "for jobs submitted through the API (allow the network with "
                            "DSA_INGEST_ALLOWED_NETWORKS)"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        inet_pton(AF_INET, table[i].ip, &sa.sin_addr);
        why[0] = '\0';
        int rc = di_netcheck_addr(&p, "jobs submitted through the API", (struct sockaddr *)&sa, why,
                                  sizeof why);
        CHECK_INT(rc, table[i].want ? -1 : 0);
        if (table[i].want)
            CHECK_STR(why, table[i].want);
    }
}

/* test_urls: splitting, and the policy on numeric hosts (no DNS). */
static void test_urls(void) {
    char scheme[16], host[256], port[8];
    CHECK_INT(di_url_split("HTTPS://User:pw@Example.COM:8443/a?b", scheme, sizeof scheme, host,
                           sizeof host, port, sizeof port),
              0);
    CHECK_STR(scheme, "https");
    CHECK_STR(host, "example.com");
    CHECK_STR(port, "8443");
    CHECK_INT(di_url_split("http://[::1]:80/x", scheme, 16, host, 256, port, 8), 0);
    CHECK_STR(host, "::1");
    CHECK_INT(di_url_split("s3://My-Bucket/k/e y", scheme, 16, host, 256, port, 8), 0);
    CHECK_STR(host, "My-Bucket");
    CHECK_INT(di_url_split("/etc/passwd", scheme, 16, host, 256, port, 8), -1);
    CHECK_INT(di_url_split("http:///x", scheme, 16, host, 256, port, 8), -1);
    CHECK_INT(di_url_split("http://h:8x/", scheme, 16, host, 256, port, 8), -1);

    di_netpolicy p;
    di_error err;
    CHECK_INT(di_netpolicy_init(&p, NULL, "raw-*,lake", NULL, NULL, &err), 0);
    static const struct {
        const char *url;
        int ok;
        const char *why;
    } table[] = {{"s3://lake/a.csv", 1, NULL},
                 {"s3://raw-eu/a.csv", 1, NULL},
                 {"s3://secret/a.csv", 0, "bucket secret is not allowed"},
                 {"file:///etc/passwd", 0, "scheme file:// is not allowed"},
                 {"/etc/passwd", 0, "must be a URL"},
                 {"ftp://1.1.1.1/x", 0, "scheme ftp:// is not allowed"},
                 {"http://127.0.0.1:8080/x.csv", 0, "loopback"},
                 {"http://2130706433/x.csv", 0, "loopback"},
                 {"http://0x7f.1/x.csv", 0, "loopback"},
                 {"https://169.254.169.254/latest/meta-data/", 0, "link-local"},
                 {"http://[::ffff:10.0.0.1]/", 0, "private"},
                 {"http://user:pw@10.0.0.1/", 0, "private"},
                 {"https://1.1.1.1/data.csv", 1, NULL}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        di_error_clear(&err);
        int rc = di_netcheck_url(&p, table[i].url, &err);
        CHECK_INT(rc, table[i].ok ? 0 : -1);
        if (table[i].why && !strstr(err.message, table[i].why))
            fprintf(stderr, "  %s: %s\n", table[i].url, err.message);
        if (table[i].why)
            CHECK(strstr(err.message, table[i].why) != NULL);
        CHECK(strstr(err.message, "pw") == NULL); /* never the password */
    }
    CHECK_INT(di_netpolicy_init(&p, "https", NULL, "1.1.1.1", "127.0.0.0/8", &err), 0);
    CHECK_INT(di_netcheck_url(&p, "http://1.1.1.1/x", &err), -1);
    CHECK_INT(di_netcheck_url(&p, "https://8.8.8.8/x", &err), -1);
    CHECK(strstr(err.message, "host 8.8.8.8 is not allowed") != NULL);
    CHECK_INT(di_netcheck_url(&p, "https://1.1.1.1/x", &err), 0);
    CHECK_INT(di_list_has(" a , B* ", "b-x"), 1);
    CHECK_INT(di_list_has("a,b", "c"), 0);
    CHECK_INT(di_list_has(NULL, "c"), 0);
}

/* test_sns_hosts: which SubscribeURLs may be fetched. */
static void test_sns_hosts(void) {
    CHECK_INT(di_sns_confirm_allowed("https://sns.us-east-1.amazonaws.com/?Action=X", NULL), 1);
    CHECK_INT(di_sns_confirm_allowed("https://sns.cn-north-1.amazonaws.com.cn/?a", ""), 1);
    CHECK_INT(di_sns_confirm_allowed("http://sns.us-east-1.amazonaws.com/?a", NULL), 0);
    CHECK_INT(di_sns_confirm_allowed("https://sns.us-east-1.amazonaws.com.evil.io/", NULL), 0);
    CHECK_INT(di_sns_confirm_allowed("https://evil.io/sns.us-east-1.amazonaws.com", NULL), 0);
    CHECK_INT(di_sns_confirm_allowed("https://x@sns.us-east-1.amazonaws.com:444/", NULL), 0);
    CHECK_INT(di_sns_confirm_allowed("http://127.0.0.1:9000/confirm", NULL), 0);
    CHECK_INT(di_sns_confirm_allowed("http://127.0.0.1:9000/confirm", "127.0.0.1"), 1);
    CHECK_INT(di_sns_confirm_allowed("file:///etc/passwd", "127.0.0.1"), 0);
}

/* ---- tokens ---- */

#define TOK_ALL  "tok-all-0123456789abcdef"
#define TOK_READ "tok-read-0123456789abcdef"

/* test_auth: headers, scopes, Basic with the token as password, bad lists. */
static void test_auth(void) {
    static di_auth a;
    di_error err;
    CHECK_INT(
        di_auth_load(&a, " " TOK_ALL ",\n" TOK_READ ":read  ev-0123456789abcdef:events+read", &err),
        0);
    CHECK_INT(a.n, 3);
    CHECK_INT(di_auth_check(&a, NULL, DI_SCOPE_READ), 401);
    CHECK_INT(di_auth_check(&a, "Bearer " TOK_ALL, DI_SCOPE_IMPORT), 0);
    CHECK_INT(di_auth_check(&a, "bearer  " TOK_ALL "  ", DI_SCOPE_EVENTS), 0);
    CHECK_INT(di_auth_check(&a, "Bearer " TOK_READ, DI_SCOPE_READ), 0);
    CHECK_INT(di_auth_check(&a, "Bearer " TOK_READ, DI_SCOPE_IMPORT), 403);
    CHECK_INT(di_auth_check(&a, "Bearer " TOK_READ "x", DI_SCOPE_READ), 401);
    CHECK_INT(di_auth_check(&a, "Bearer tok-read-0123456789abcde", DI_SCOPE_READ), 401);
    CHECK_INT(di_auth_check(&a, "Bearer", DI_SCOPE_READ), 401);
    CHECK_INT(di_auth_check(&a, "Token " TOK_ALL, DI_SCOPE_READ), 401);
    CHECK_INT(di_auth_check(&a, "Bearer ev-0123456789abcdef", DI_SCOPE_EVENTS), 0);
    CHECK_INT(di_auth_check(&a, "Bearer ev-0123456789abcdef", DI_SCOPE_IMPORT), 403);
    /* Basic: "sns:" + the token, base64 */
    CHECK_INT(di_auth_check(&a, "Basic c25zOnRvay1hbGwtMDEyMzQ1Njc4OWFiY2RlZg==", DI_SCOPE_EVENTS),
              0);
    CHECK_INT(di_auth_check(&a, "Basic c25zOnRvay1hbGw=", DI_SCOPE_EVENTS), 401);
    CHECK_INT(di_auth_check(&a, "Basic !!!", DI_SCOPE_EVENTS), 401);
    char longer[600];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memcpy(longer, "Bearer ", 7);
    CHECK_INT(di_auth_check(&a, longer, DI_SCOPE_READ), 401);

    di_error_clear(&err);
    CHECK_INT(di_auth_load(&a, "", &err), -1);
    CHECK(strstr(err.message, "no API tokens") != NULL);
    CHECK_INT(di_auth_load(&a, "short", &err), -1);
    CHECK(strstr(err.message, "entry 1") != NULL && strstr(err.message, "short") == NULL);
    CHECK_INT(di_auth_load(&a, TOK_ALL ":write", &err), -1);
    CHECK(strstr(err.message, "unknown scope") != NULL && strstr(err.message, "tok-") == NULL);

    char x[DI_AUTH_TOKEN_MAX] = "abc", y[DI_AUTH_TOKEN_MAX] = "abc";
    memset(x + 4, 0, sizeof x - 4);
    memset(y + 4, 0, sizeof y - 4);
    CHECK_INT(di_ct_equal(x, y), 1);
    y[DI_AUTH_TOKEN_MAX - 1] = 1;
    CHECK_INT(di_ct_equal(x, y), 0);
}

/* ---- bodies and spool names ---- */

/* test_json_body: errors say where. */
static void test_json_body(void) {
    char why[256];
    cJSON *j = di_json_body("{\"a\":1} \n", 9, why, sizeof why);
    CHECK(j != NULL);
    cJSON_Delete(j);
    static const struct {
        const char *body;
        size_t len;
        const char *want;
    } bad[] = {{"", 0, "empty body"},
               {"{\"a\":}", 6, "malformed JSON at byte 5 near \"}\""},
               {"{\"a\":1", 6, "malformed JSON at byte"},
               {"{\"a\":\"\xff\"}", 9, "not valid UTF-8 (byte 6)"},
               {"{\"a\":\"\xc3\"}", 9, "not valid UTF-8 (byte 6)"},
               {"{\"a\":1}\0", 8, "NUL byte (byte 7)"},
               {"{} {}", 5, "unexpected text after the value at byte 3"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        CHECK(di_json_body(bad[i].body, bad[i].len, why, sizeof why) == NULL);
        if (!strstr(why, bad[i].want))
            fprintf(stderr, "  body %zu: %s\n", i, why);
        CHECK(strstr(why, bad[i].want) != NULL);
    }
}

/* test_spool_name: no way out of the upload's directory, extensions kept. */
static void test_spool_name(void) {
    static const struct {
        const char *in, *out;
    } table[] = {{"data.csv.gz", "data.csv.gz"},
                 {"../../etc/passwd", "passwd"},
                 {"..\\..\\win.ini", "win.ini"},
                 {"/abs/path/x.tsv", "x.tsv"},
                 {"..", "upload"},
                 {"", "upload"},
                 {NULL, "upload"},
                 {".hidden", "hidden"},
                 {"my file (1).csv", "my_file__1_.csv"},
                 {"caf\xc3\xa9.csv", "caf__.csv"},
                 {"a\nb.csv", "a_b.csv"}};
    char out[128];
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        di_spool_name(table[i].in, out, sizeof out);
        CHECK_STR(out, table[i].out);
    }
    char longname[400];
    memset(longname, 'x', sizeof longname);
    memcpy(longname + 390, ".csv.gz", 8);
    di_spool_name(longname, out, 32);
    CHECK_INT(strlen(out), 31);
    CHECK(strcmp(out + 31 - 7, ".csv.gz") == 0);
}

/* test_spool_owned: the janitor removes only paths of the spool's layout. */
static void test_spool_owned(void) {
    char dir[256];
    static const struct {
        const char *path;
        int ok;
    } table[] = {{"/sp/0123456789abcdef0123456789abcdef/a.csv", 1},
                 {"/sp/0123456789abcdef0123456789abcdef/", 0},
                 {"/sp/0123456789abcdef0123456789abcdef/..", 0},
                 {"/sp/0123456789abcdef0123456789abcdef/x/y.csv", 0},
                 {"/sp/0123456789ABCDEF0123456789abcdef/a.csv", 0},
                 {"/sp/0123/a.csv", 0},
                 {"/spool2/0123456789abcdef0123456789abcdef/a.csv", 0},
                 {"/etc/passwd", 0}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        CHECK_INT(di_spool_owned("/sp", table[i].path, dir, sizeof dir), table[i].ok);
    CHECK_INT(di_spool_owned("/sp", table[0].path, dir, sizeof dir), 1);
    CHECK_STR(dir, "/sp/0123456789abcdef0123456789abcdef");
}

/* test_sqs_endpoint: where a queue's actions go, and the signing region. */
static void test_sqs_endpoint(void) {
    char ep[256], region[64];
    CHECK_INT(di_sqs_endpoint("https://sqs.eu-west-1.amazonaws.com/123456789012/q", ep, sizeof ep,
                              region, sizeof region),
              0);
    CHECK_STR(ep, "https://sqs.eu-west-1.amazonaws.com/");
    CHECK_STR(region, "eu-west-1");
    CHECK_INT(di_sqs_endpoint("http://127.0.0.1:9324/000/q", ep, sizeof ep, region, sizeof region),
              0);
    CHECK_STR(ep, "http://127.0.0.1:9324/");
    CHECK_STR(region, "");
    CHECK_INT(di_sqs_endpoint("ftp://x/q", ep, sizeof ep, region, sizeof region), -1);
    CHECK_INT(di_sqs_endpoint("httpx://x/q", ep, sizeof ep, region, sizeof region), -1);
    CHECK_INT(di_sqs_endpoint("https://user:pw@sqs.x/q", ep, sizeof ep, region, sizeof region), -1);
    CHECK_INT(di_sqs_endpoint("https:///q", ep, sizeof ep, region, sizeof region), -1);
}

int main(void) {
    test_sqs_endpoint();
    test_spool_owned();
    test_records();
    test_minio();
    test_eventbridge();
    test_sns();
    test_bad_events();
    test_key_decode();
    test_rules();
    test_addresses();
    test_connect_check();
    test_urls();
    test_sns_hosts();
    test_auth();
    test_json_body();
    test_spool_name();
    return check_report();
}
