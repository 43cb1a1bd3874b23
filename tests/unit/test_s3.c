/* test_s3.c - the S3 source's pure parts and the credential chain, offline:
 * s3:// URL parsing and SigV4 path encoding, endpoint and addressing styles,
 * S3 error codes to classes and messages, ISO times and the refresh point,
 * STS XML and metadata JSON, and the chain over real temp files and env
 * variables (instance metadata disabled: nothing here touches the network). */
#include "source/aws_credentials.h"
#include "source/s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[256];

/* The variables the chain reads; each case starts from none of them. */
static const char *const aws_vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_PROFILE",
                                       "AWS_DEFAULT_PROFILE",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_S3",
                                       "AWS_ENDPOINT_URL_STS",
                                       "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                                       "AWS_WEB_IDENTITY_TOKEN_FILE",
                                       "AWS_ROLE_ARN",
                                       "AWS_ROLE_SESSION_NAME",
                                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                       "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE",
                                       "DSA_INGEST_AWS_REFRESH_MARGIN",
                                       NULL};

/* ---- helpers ---- */

/* clean_env unsets every AWS variable and points the shared files into the
 * temp dir, so the developer's own ~/.aws never leaks into a case. */
static void clean_env(void) {
    char path[512];
    for (const char *const *v = aws_vars; *v; v++)
        unsetenv(*v);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    snprintf(path, sizeof path, "%s/credentials", tmpdir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    snprintf(path, sizeof path, "%s/config", tmpdir);
    setenv("AWS_CONFIG_FILE", path, 1);
    snprintf(path, sizeof path, "%s/credentials", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config", tmpdir);
    unlink(path);
}

/* write_tmp writes text to tmpdir/name. */
static void write_tmp(const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* ---- s3:// URLs ---- */

static const struct {
    const char *url;
    int ok;
    const char *bucket, *key; /* or the error's substring in bucket */
} url_cases[] = {
    {"s3://bucket/key.csv", 1, "bucket", "key.csv"},
    {"s3://b-1.x_y/dir/sub/file.csv.gz", 1, "b-1.x_y", "dir/sub/file.csv.gz"},
    {"s3://bucket/with space/and+plus=eq.csv", 1, "bucket", "with space/and+plus=eq.csv"},
    {"s3://bucket/a%20b?c#d", 1, "bucket", "a%20b?c#d"}, /* literal, as the AWS CLI */
    {"s3://bucket//leading-slash", 1, "bucket", "/leading-slash"},
    {"s3://bucket/ünï/データ.csv", 1, "bucket", "ünï/データ.csv"},
    {"s3://bucket/", 0, "names a bucket, not an object", NULL},
    {"s3://bucket", 0, "names a bucket, not an object", NULL},
    {"s3:///key", 0, "bad s3 URL", NULL},
    {"s3://user:secret@bucket/key", 0, "cannot carry credentials", NULL},
    {"s3://buc ket/key", 0, "bad bucket name", NULL},
    {"http://bucket/key", 0, "not an s3:// URL", NULL},
};

/* test_parse_url: bucket and key split, literal keys, bad buckets refused. */
static void test_parse_url(void) {
    for (size_t i = 0; i < sizeof url_cases / sizeof *url_cases; i++) {
        char bucket[256], key[1100];
        di_error err;
        di_error_clear(&err);
        int rc = di_s3_parse_url(url_cases[i].url, bucket, sizeof bucket, key, sizeof key, &err);
        CHECK_INT(rc == 0, url_cases[i].ok);
        if (url_cases[i].ok) {
            CHECK_STR(bucket, url_cases[i].bucket);
            CHECK_STR(key, url_cases[i].key);
        } else {
            CHECK_INT(err.cls, DI_ERR_CONFIG);
            CHECK(strstr(err.message, url_cases[i].bucket) != NULL);
            CHECK(strstr(err.message, "secret") == NULL);
        }
    }
    char longkey[1100];
    char bucket[256], key[1100];
    di_error err;
    memset(longkey, 'k', sizeof longkey);
    memcpy(longkey, "s3://b/", 7);
    longkey[sizeof longkey - 1] = '\0';
    CHECK_INT(di_s3_parse_url(longkey, bucket, sizeof bucket, key, sizeof key, &err), -1);
    CHECK(strstr(err.message, "1024 bytes") != NULL);
}

static const struct {
    const char *in, *out;
} enc_cases[] = {
    {"plain/key.csv", "plain/key.csv"},
    {"with space/x.csv", "with%20space/x.csv"},
    {"a+b=c&d", "a%2Bb%3Dc%26d"},
    {"ünï", "%C3%BCn%C3%AF"},
    {"keep-._~/all", "keep-._~/all"},
    {"odd!'()*$@,;:", "odd%21%27%28%29%2A%24%40%2C%3B%3A"},
    {"a%20b", "a%2520b"},
    {"tab\there\n", "tab%09here%0A"},
};

/* test_encode_path: SigV4's UriEncode with '/' kept, upper-case hex. */
static void test_encode_path(void) {
    char out[256];
    for (size_t i = 0; i < sizeof enc_cases / sizeof *enc_cases; i++) {
        CHECK_INT(di_s3_encode_path(enc_cases[i].in, out, sizeof out), 0);
        CHECK_STR(out, enc_cases[i].out);
    }
    CHECK_INT(di_s3_encode_path("  ", out, 6), -1); /* "%20%20" + NUL does not fit */
}

static const struct {
    const char *endpoint, *region, *bucket, *key, *want;
} addr_cases[] = {
    {"", "us-east-1", "my-bucket", "a b.csv",
     "https://my-bucket.s3.us-east-1.amazonaws.com/a%20b.csv"},
    {"", "eu-west-3", "logs", "x/y.gz", "https://logs.s3.eu-west-3.amazonaws.com/x/y.gz"},
    {"", "cn-north-1", "cnb", "k", "https://cnb.s3.cn-north-1.amazonaws.com.cn/k"},
    {"", "us-west-2", "dotted.bucket", "k", "https://s3.us-west-2.amazonaws.com/dotted.bucket/k"},
    {"", "us-west-2", "Upper", "k", "https://s3.us-west-2.amazonaws.com/Upper/k"},
    {"http://127.0.0.1:9000", "us-east-1", "data", "a+b.csv",
     "http://127.0.0.1:9000/data/a%2Bb.csv"},
    {"https://minio.local/prefix", "eu-west-1", "b", "k", "https://minio.local/prefix/b/k"},
};

/* test_object_url: virtual-hosted on AWS, path style with an endpoint. */
static void test_object_url(void) {
    char out[1024];
    di_error err;
    for (size_t i = 0; i < sizeof addr_cases / sizeof *addr_cases; i++) {
        CHECK_INT(di_s3_object_url(addr_cases[i].endpoint, addr_cases[i].region,
                                   addr_cases[i].bucket, addr_cases[i].key, out, sizeof out, &err),
                  0);
        CHECK_STR(out, addr_cases[i].want);
    }
    CHECK_INT(di_s3_object_url("ftp://x", "us-east-1", "b", "k", out, sizeof out, &err), -1);
    CHECK(strstr(err.message, "bad S3 endpoint") != NULL);
    CHECK_INT(di_s3_object_url("http://h/?q=1", "us-east-1", "b", "k", out, sizeof out, &err), -1);
    CHECK_INT(di_s3_object_url("", "us-east-1:evil", "b", "k", out, sizeof out, &err), -1);
    CHECK(strstr(err.message, "bad AWS region") != NULL);
}

/* ---- S3 errors ---- */

static const struct {
    long status;
    const char *code, *region;
    int64_t actual, req_off;
    int refreshable;
    di_class want;
    const char *text; /* a substring of the message, NULL when none is set */
} err_cases[] = {
    {403, "AccessDenied", "", -1, 0, 0, DI_ERR_CONFIG,
     "access denied to s3://b/k: check the credentials from profile \"dev\""},
    {403, "", "", -1, 0, 0, DI_ERR_CONFIG, "access denied to s3://b/k"},
    {404, "NoSuchKey", "", -1, 0, 0, DI_ERR_CONFIG, "no such object s3://b/k"},
    {404, "", "", -1, 0, 0, DI_ERR_CONFIG, "no such object s3://b/k"},
    {404, "NoSuchBucket", "", -1, 0, 0, DI_ERR_CONFIG, "no such bucket \"b\": s3://b/k"},
    {403, "SignatureDoesNotMatch", "", -1, 0, 0, DI_ERR_CONFIG,
     "signature was rejected for s3://b/k: check the secret access key"},
    {403, "InvalidAccessKeyId", "", -1, 0, 0, DI_ERR_CONFIG, "access key id is not known"},
    {400, "InvalidToken", "", -1, 0, 0, DI_ERR_CONFIG, "session token was rejected"},
    {400, "ExpiredToken", "", -1, 0, 0, DI_ERR_CONFIG, "session token has expired"},
    {400, "ExpiredToken", "", -1, 0, 1, DI_ERR_TRANSIENT, "fetching new ones"},
    {403, "RequestTimeTooSkewed", "", -1, 0, 0, DI_ERR_CONFIG, "clock is off"},
    {400, "AuthorizationHeaderMalformed", "eu-west-1", -1, 0, 0, DI_ERR_CONFIG,
     "is in region eu-west-1, not us-east-1: set AWS_REGION=eu-west-1"},
    {503, "SlowDown", "", -1, 0, 0, DI_ERR_TRANSIENT, "S3 SlowDown (HTTP 503)"},
    {500, "InternalError", "", -1, 0, 0, DI_ERR_TRANSIENT, "InternalError"},
    {503, "ServiceUnavailable", "", -1, 0, 0, DI_ERR_TRANSIENT, NULL},
    {400, "RequestTimeout", "", -1, 0, 0, DI_ERR_TRANSIENT, NULL},
    {502, "", "", -1, 0, 0, DI_ERR_NONE, NULL},                   /* http.c retries plain 5xx */
    {412, "PreconditionFailed", "", -1, 0, 0, DI_ERR_NONE, NULL}, /* http.c: "changed" */
    {416, "InvalidRange", "", 100, 100, 0, DI_ERR_NONE, NULL},    /* exactly at the end */
    {416, "InvalidRange", "", 10, 5000, 0, DI_ERR_INPUT, "the object changed during the import"},
    {400, "InvalidArgument", "", -1, 0, 0, DI_ERR_CONFIG, "S3 refused the request for s3://b/k"},
};

/* test_map_error: each S3 code gets its class and a message naming the object. */
static void test_map_error(void) {
    for (size_t i = 0; i < sizeof err_cases / sizeof *err_cases; i++) {
        di_error err;
        di_error_clear(&err);
        di_s3_error_ctx c = {"s3://b/k",
                             "b",
                             "us-east-1",
                             "from profile \"dev\" in /h/.aws/credentials",
                             err_cases[i].refreshable,
                             err_cases[i].req_off};
        di_s3_error_body b = {err_cases[i].code, "the server's message", err_cases[i].region,
                              err_cases[i].actual};
        di_class got = di_s3_map_error(&c, err_cases[i].status, &b, &err);
        CHECK_INT(got, err_cases[i].want);
        if (err_cases[i].text && !strstr(err.message, err_cases[i].text))
            fprintf(stderr, "case %zu: message \"%s\"\n", i, err.message);
        CHECK(!err_cases[i].text || strstr(err.message, err_cases[i].text) != NULL);
        CHECK(got == DI_ERR_NONE || err.cls == got);
    }
}

/* test_xml_fields: S3 bodies, including one cut off by the 1 KiB limit. */
static void test_xml_fields(void) {
    static const char *const names[] = {"Code", "Message", "Region"};
    const char *full = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The "
                       "specified key &amp; more</Message><Key>k</Key></Error>";
    const char *cut = "<?xml version=\"1.0\"?><Error><Code>AuthorizationHeaderMalformed</Code>"
                      "<Region>eu-west-1</Region><Message>the reg";
    char *v[3];
    CHECK_INT(di_aws_xml_fields(full, strlen(full), names, v, 3), 2);
    CHECK_STR(v[0], "NoSuchKey");
    CHECK_STR(v[1], "The specified key & more");
    CHECK(v[2] == NULL);
    for (int i = 0; i < 3; i++)
        free(v[i]);
    CHECK_INT(di_aws_xml_fields(cut, strlen(cut), names, v, 3), 2);
    CHECK_STR(v[0], "AuthorizationHeaderMalformed");
    CHECK_STR(v[2], "eu-west-1");
    CHECK(v[1] == NULL);
    for (int i = 0; i < 3; i++)
        free(v[i]);
    CHECK_INT(di_aws_xml_fields("not xml", 7, names, v, 3), 0);
}

/* ---- times, refresh, responses ---- */

static const struct {
    const char *s;
    int ok;
    long long t;
} time_cases[] = {
    {"2024-01-02T03:04:05Z", 1, 1704164645},
    {"2024-01-02T03:04:05.123Z", 1, 1704164645},
    {"2024-01-02T04:04:05+01:00", 1, 1704164645},
    {"2024-01-01T22:04:05-05:00", 1, 1704164645},
    {"1970-01-01T00:00:00Z", 1, 0},
    {"2024-01-02 03:04:05Z", 0, 0},
    {"2024-01-02T03:04:05", 0, 0},
    {"2024-01-02T03:04:05Zjunk", 0, 0},
    {"soon", 0, 0},
};

/* test_parse_time: AWS's Expiration formats, and what is not one. */
static void test_parse_time(void) {
    for (size_t i = 0; i < sizeof time_cases / sizeof *time_cases; i++) {
        time_t t = 0;
        CHECK_INT(di_aws_parse_time(time_cases[i].s, &t) == 0, time_cases[i].ok);
        if (time_cases[i].ok)
            CHECK_INT(t, time_cases[i].t);
    }
}

static const struct {
    long long expires, fetched, now;
    int margin, want;
} refresh_cases[] = {
    {0, 1000, 999999, 300, 0},    /* long-term keys never refresh */
    {10000, 6400, 9600, 300, 0},  /* an hour's credentials: not yet */
    {10000, 6400, 9700, 300, 1},  /* 5 minutes before expiry */
    {10000, 6400, 10001, 300, 1}, /* past expiry */
    {1004, 1000, 1001, 300, 0},   /* 4 s credentials: half way at 1002 */
    {1004, 1000, 1002, 300, 1},
    {1003, 1000, 1001, 1, 0}, /* margin 1: refresh at 1002 */
    {1003, 1000, 1002, 1, 1},
    {1000, 2000, 1500, 300, 1}, /* our clock ahead: refresh, never trust */
};

/* test_need_refresh: the margin, capped at half the lifetime. */
static void test_need_refresh(void) {
    for (size_t i = 0; i < sizeof refresh_cases / sizeof *refresh_cases; i++) {
        di_aws_creds c = {0};
        c.expires = (time_t)refresh_cases[i].expires;
        c.fetched = (time_t)refresh_cases[i].fetched;
        CHECK_INT(di_aws_need_refresh(&c, (time_t)refresh_cases[i].now, refresh_cases[i].margin),
                  refresh_cases[i].want);
    }
}

/* test_parse_sts: AssumeRoleWithWebIdentity's answer and its ErrorResponse. */
static void test_parse_sts(void) {
    const char *ok =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials><SessionToken>TOK/EN==</SessionToken>"
        "<SecretAccessKey>sec+ret</SecretAccessKey><Expiration>2024-01-02T03:04:05Z</Expiration>"
        "<AccessKeyId>ASIAXYZ</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult>"
        "</AssumeRoleWithWebIdentityResponse>";
    const char *bad = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                      "<Message>Incorrect token audience</Message></Error></ErrorResponse>";
    di_aws_creds c;
    char code[64], msg[128];
    CHECK_INT(di_aws_parse_sts(ok, strlen(ok), &c, code, sizeof code, msg, sizeof msg), 0);
    CHECK_STR(c.access_key, "ASIAXYZ");
    CHECK_STR(c.secret_key, "sec+ret");
    CHECK_STR(c.session_token, "TOK/EN==");
    CHECK_INT(c.expires, 1704164645);
    di_aws_creds_cleanup(&c);
    CHECK(c.access_key == NULL && c.expires == 0);
    CHECK_INT(di_aws_parse_sts(bad, strlen(bad), &c, code, sizeof code, msg, sizeof msg), -1);
    CHECK_STR(code, "InvalidIdentityToken");
    CHECK_STR(msg, "Incorrect token audience");
    CHECK_INT(di_aws_parse_sts("<x/>", 4, &c, code, sizeof code, msg, sizeof msg), -1);
}

/* test_parse_json: the container and IMDS documents. */
static void test_parse_json(void) {
    di_aws_creds c;
    CHECK_INT(di_aws_parse_json("{\"Code\":\"Success\",\"AccessKeyId\":\"ASIA1\","
                                "\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                                "\"Expiration\":\"2024-01-02T03:04:05Z\"}",
                                &c),
              0);
    CHECK_STR(c.access_key, "ASIA1");
    CHECK_STR(c.session_token, "t");
    CHECK_INT(c.expires, 1704164645);
    di_aws_creds_cleanup(&c);
    CHECK_INT(di_aws_parse_json("{\"AccessKeyId\":\"A\"}", &c), -1);
    CHECK_INT(di_aws_parse_json("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
                                "\"Expiration\":\"tomorrow\"}",
                                &c),
              -1);
    CHECK_INT(di_aws_parse_json("[", &c), -1);
}

/* ---- shared files ---- */

static const char creds_file[] = "# comment\n"
                                 "[default]\n"
                                 "aws_access_key_id = AKIADEFAULT\n"
                                 "aws_secret_access_key = defaultsecret\n"
                                 "\n"
                                 "[dev]\r\n"
                                 "AWS_Access_Key_Id=AKIADEV\r\n"
                                 "aws_secret_access_key =  dev/secret+x  \r\n"
                                 "aws_session_token = devtoken\n"
                                 "[profile dev]\n"
                                 "aws_access_key_id = WRONG-section-style\n";
static const char config_file[] = "[default]\n"
                                  "region = eu-central-1\n"
                                  "[profile dev]\n"
                                  "region = eu-west-1\n"
                                  "aws_access_key_id = AKIAFROMCONFIG\n"
                                  "s3 =\n"
                                  "  region = nested-ignored\n"
                                  "endpoint_url = http://127.0.0.1:9/\n"
                                  "[dev]\n"
                                  "region = wrong-style-for-config\n"
                                  "[profile cfg]\n"
                                  "aws_access_key_id = AKIACFG\n"
                                  "aws_secret_access_key = cfgsecret\n";

/* test_profile_parse: section styles, case, CRLF, blanks, credentials first. */
static void test_profile_parse(void) {
    di_aws_profile p = {0};
    CHECK_INT(di_aws_profile_parse(&p, creds_file, "dev", 0), 0);
    CHECK_INT(di_aws_profile_parse(&p, config_file, "dev", 1), 0);
    CHECK(p.found);
    CHECK_STR(di_aws_profile_get(&p, DI_AWS_KEY_ACCESS_KEY_ID), "AKIADEV");
    CHECK_STR(di_aws_profile_get(&p, DI_AWS_KEY_SECRET_ACCESS_KEY), "dev/secret+x");
    CHECK_STR(di_aws_profile_get(&p, DI_AWS_KEY_SESSION_TOKEN), "devtoken");
    CHECK_STR(di_aws_profile_get(&p, DI_AWS_KEY_REGION), "eu-west-1");
    CHECK_STR(di_aws_profile_get(&p, DI_AWS_KEY_ENDPOINT_URL), "http://127.0.0.1:9/");
    di_aws_profile_cleanup(&p);
    CHECK_INT(di_aws_profile_parse(&p, config_file, "default", 1), 0);
    CHECK_STR(di_aws_profile_get(&p, DI_AWS_KEY_REGION), "eu-central-1");
    CHECK(di_aws_profile_get(&p, DI_AWS_KEY_ACCESS_KEY_ID) == NULL);
    di_aws_profile_cleanup(&p);
    CHECK_INT(di_aws_profile_parse(&p, creds_file, "nope", 0), 0);
    CHECK(!p.found);
    di_aws_profile_cleanup(&p);
}

/* provider_case opens the chain and checks where it ended. */
static di_aws_provider *provider_case(di_aws_kind kind, const char *ak, const char *describe) {
    di_error err;
    di_error_clear(&err);
    di_aws_provider *p = di_aws_provider_new(&err);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "chain failed: %s\n", err.message);
        return NULL;
    }
    const di_aws_creds *c;
    CHECK_INT(di_aws_provider_kind(p), kind);
    CHECK_INT(di_aws_provider_get(p, time(NULL), &c, &err), 0);
    if (ak)
        CHECK(c && strcmp(c->access_key, ak) == 0);
    else
        CHECK(c == NULL);
    CHECK(strstr(di_aws_provider_describe(p), describe) != NULL);
    return p;
}

/* chain_error opens the chain expecting a config error mentioning text. */
static void chain_error(const char *text) {
    di_error err;
    di_error_clear(&err);
    di_aws_provider *p = di_aws_provider_new(&err);
    CHECK(p == NULL);
    CHECK_INT(err.cls, DI_ERR_CONFIG);
    if (!strstr(err.message, text))
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.message, text);
    CHECK(strstr(err.message, text) != NULL);
    CHECK(strstr(err.message, "secret") == NULL || strstr(text, "secret") != NULL);
    di_aws_provider_free(p);
}

/* test_chain_static: environment over profile, named profiles, config-only
 * keys, region and endpoint precedence, anonymous when nothing is found. */
static void test_chain_static(void) {
    clean_env();
    di_aws_provider_free(provider_case(DI_AWS_ANONYMOUS, NULL, "request was unsigned"));
    write_tmp("credentials", creds_file);
    write_tmp("config", config_file);
    di_aws_provider *p = provider_case(DI_AWS_PROFILE, "AKIADEFAULT", "from profile \"default\"");
    CHECK_STR(di_aws_provider_region(p), "eu-central-1");
    CHECK_STR(di_aws_provider_s3_endpoint(p), "");
    di_aws_provider_free(p);
    setenv("AWS_PROFILE", "dev", 1);
    p = provider_case(DI_AWS_PROFILE, "AKIADEV", "/credentials");
    CHECK_STR(di_aws_provider_region(p), "eu-west-1");
    CHECK_STR(di_aws_provider_s3_endpoint(p), "http://127.0.0.1:9");
    di_aws_provider_free(p);
    setenv("AWS_ENDPOINT_URL", "http://general:1", 1);
    setenv("AWS_ENDPOINT_URL_S3", "http://s3only:2/", 1);
    setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
    p = provider_case(DI_AWS_PROFILE, "AKIADEV", "profile \"dev\"");
    CHECK_STR(di_aws_provider_s3_endpoint(p), "http://s3only:2");
    CHECK_STR(di_aws_provider_region(p), "ap-south-1");
    di_aws_provider_free(p);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    setenv("AWS_REGION", "us-west-2", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    p = provider_case(DI_AWS_ENV, "AKIAENV", "environment");
    CHECK_STR(di_aws_provider_s3_endpoint(p), "");
    CHECK_STR(di_aws_provider_region(p), "us-west-2");
    di_aws_provider_free(p);
    clean_env();
    write_tmp("config", config_file);
    setenv("AWS_PROFILE", "cfg", 1);
    p = provider_case(DI_AWS_PROFILE, "AKIACFG", "/config");
    di_aws_provider_free(p);
}

/* test_chain_errors: mistakes are said plainly, never with the secret. */
static void test_chain_errors(void) {
    clean_env();
    setenv("AWS_ACCESS_KEY_ID", "AKIAONLY", 1);
    chain_error("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    clean_env();
    setenv("AWS_PROFILE", "missing", 1);
    chain_error("the AWS profile \"missing\" (AWS_PROFILE) is in neither");
    write_tmp("credentials", "[proc]\ncredential_process = /bin/get-creds\n"
                             "[assume]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = x\n"
                             "[half]\naws_access_key_id = AKIAHALF\n"
                             "[wi]\nrole_arn = arn:aws:iam::1:role/r\n"
                             "web_identity_token_file = /nonexistent/token\n");
    setenv("AWS_PROFILE", "proc", 1);
    chain_error("uses credential_process");
    setenv("AWS_PROFILE", "assume", 1);
    chain_error("AssumeRole");
    setenv("AWS_PROFILE", "half", 1);
    chain_error("has aws_access_key_id but not aws_secret_access_key");
    setenv("AWS_PROFILE", "wi", 1);
    chain_error("cannot read the web identity token file /nonexistent/token");
    clean_env();
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
    chain_error("must be https");
    clean_env();
}

/* test_s3_open_errors: the dispatch reaches s3.c and fails before any request. */
static void test_s3_open_errors(void) {
    static const struct {
        const char *url, *endpoint, *text;
    } cases[] = {
        {"s3://bucket/", NULL, "names a bucket"},
        {"s3://b!d/key", NULL, "bad bucket name"},
        {"s3://bucket/key", "ftp://nowhere", "bad S3 endpoint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        di_error err;
        clean_env();
        if (cases[i].endpoint)
            setenv("AWS_ENDPOINT_URL", cases[i].endpoint, 1);
        di_error_clear(&err);
        di_source *s = di_source_open(cases[i].url, 0, NULL, &err);
        CHECK(s == NULL);
        CHECK_INT(err.cls, DI_ERR_CONFIG);
        CHECK(strstr(err.message, cases[i].text) != NULL);
        di_source_close(s);
    }
    clean_env();
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dsa-test-s3-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    test_parse_url();
    test_encode_path();
    test_object_url();
    test_map_error();
    test_xml_fields();
    test_parse_time();
    test_need_refresh();
    test_parse_sts();
    test_parse_json();
    test_profile_parse();
    test_chain_static();
    test_chain_errors();
    test_s3_open_errors();
    clean_env();
    rmdir(tmpdir);
    return check_report();
}
