/* events.c - S3 event notification bodies (Records[], MinIO, EventBridge,
 * SNS) turned into the objects they announce, and the rules file that routes
 * an object to a dataset and ref. Pure: no I/O but reading the rules file. */
#include "http/events.h"
#include "util/percent.h"
#include "http/netcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* str reads a string member, NULL when absent or not a string. */
static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* obj reads an object member (NULL when absent). */
static const cJSON *obj(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

/* di_s3_key_decode undoes S3's form encoding of keys ('+' for space, %XX). */
int di_s3_key_decode(const char *in, char *out, size_t outsz) {
    return di_percent_decode(in, strlen(in), 1, out, outsz);
}

/* di_s3_identity picks what tells two deliveries of one object version apart. */
void di_s3_identity(di_s3_object *o, const char *version_id, const char *sequencer) {
    if (version_id && *version_id && strcmp(version_id, "null") != 0)
        snprintf(o->version, sizeof o->version, "v:%s", version_id);
    else if (o->etag[0])
        snprintf(o->version, sizeof o->version, "etag:%s", o->etag);
    else if (sequencer && *sequencer)
        snprintf(o->version, sizeof o->version, "seq:%s", sequencer);
    else
        o->version[0] = '\0';
}

/* number_or_string reads a size given as a JSON number or a decimal string. */
static int64_t number_or_string(const cJSON *v) {
    if (cJSON_IsNumber(v))
        return (int64_t)v->valuedouble;
    if (cJSON_IsString(v)) {
        char *end;
        long long n = strtoll(v->valuestring, &end, 10);
        return end != v->valuestring && !*end ? (int64_t)n : -1;
    }
    return -1;
}

/* fill_object completes o from a bucket name and an object description; the
 * member names differ between S3 records and EventBridge (given here). */
static int fill_object(di_s3_object *o, const char *bucket, const cJSON *object,
                       const char *etag_key, const char *version_key, int idx, di_error *err) {
    const char *key = str(object, "key");
    if (!bucket || !*bucket || !key || !*key)
        return di_error_set(err, DI_ERR_INPUT, "event %d: no bucket name or object key", idx);
    if (strlen(bucket) >= sizeof o->bucket)
        return di_error_set(err, DI_ERR_INPUT, "event %d: bucket name too long", idx);
    snprintf(o->bucket, sizeof o->bucket, "%s", bucket);
    if (di_s3_key_decode(key, o->key, sizeof o->key) != 0)
        return di_error_set(err, DI_ERR_INPUT,
                            "event %d: object key is not a valid URL-encoded S3 key", idx);
    const char *etag = str(object, etag_key);
    size_t n = etag ? strlen(etag) : 0;
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
        etag++, n -= 2;
    snprintf(o->etag, sizeof o->etag, "%.*s", (int)n, etag ? etag : "");
    o->size = number_or_string(cJSON_GetObjectItemCaseSensitive(object, "size"));
    di_s3_identity(o, str(object, version_key), str(object, "sequencer"));
    return 0;
}

/* walk_records handles S3's Records[] (and MinIO's webhook, which adds
 * EventName and Key beside it). */
static int walk_records(const cJSON *records, di_s3_object_fn fn, void *ctx, di_error *err) {
    const cJSON *r;
    int idx = 0;
    cJSON_ArrayForEach(r, records) {
        di_s3_object o;
        memset(&o, 0, sizeof o);
        const cJSON *s3 = obj(r, "s3");
        const char *name = str(r, "eventName");
        if (fill_object(&o, str(obj(s3, "bucket"), "name"), obj(s3, "object"), "eTag", "versionId",
                        idx++, err))
            return -1;
        snprintf(o.name, sizeof o.name, "%s", name ? name : "");
        o.created = name && strstr(name, "ObjectCreated:") != NULL;
        int rc = fn(ctx, &o);
        if (rc)
            return rc;
    }
    return 0;
}

/* walk_eventbridge handles an EventBridge event from aws.s3. */
static int walk_eventbridge(const cJSON *root, di_s3_object_fn fn, void *ctx, di_error *err) {
    const cJSON *detail = obj(root, "detail");
    const char *type = str(root, "detail-type");
    di_s3_object o;
    memset(&o, 0, sizeof o);
    if (fill_object(&o, str(obj(detail, "bucket"), "name"), obj(detail, "object"), "etag",
                    "version-id", 0, err))
        return -1;
    snprintf(o.name, sizeof o.name, "%s", type ? type : "");
    o.created = type && strcmp(type, "Object Created") == 0;
    return fn(ctx, &o);
}

/* walk_plain recognises a body that is not an SNS envelope. */
static int walk_plain(const cJSON *root, di_s3_parsed *out, di_s3_object_fn fn, void *ctx,
                      di_error *err) {
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(root, "Records");
    const char *event = str(root, "Event");
    const char *source = str(root, "source");
    if (cJSON_IsArray(records)) {
        out->envelope = DI_S3_ENV_RECORDS;
        return walk_records(records, fn, ctx, err);
    }
    if (event && strcmp(event, "s3:TestEvent") == 0) {
        out->envelope = DI_S3_ENV_TEST;
        return 0;
    }
    if (source && strcmp(source, "aws.s3") == 0 && str(root, "detail-type") &&
        obj(root, "detail")) {
        out->envelope = DI_S3_ENV_EVENTBRIDGE;
        return walk_eventbridge(root, fn, ctx, err);
    }
    return di_error_set(err, DI_ERR_INPUT,
                        "not an S3 event: expected Records[], an EventBridge event from aws.s3 "
                        "or an SNS envelope");
}

/* walk_sns opens an SNS envelope: a confirmation request, or a Notification
 * whose Message is the JSON text of an S3 event. */
static int walk_sns(const cJSON *root, const char *type, di_s3_parsed *out, cJSON **inner,
                    di_s3_object_fn fn, void *ctx, di_error *err) {
    out->sns = 1;
    if (strcmp(type, "SubscriptionConfirmation") == 0) {
        out->envelope = DI_S3_ENV_SNS_CONFIRM;
        out->subscribe_url = str(root, "SubscribeURL");
        if (!out->subscribe_url)
            return di_error_set(err, DI_ERR_INPUT,
                                "SNS SubscriptionConfirmation without "
                                "SubscribeURL");
        return 0;
    }
    if (strcmp(type, "Notification") != 0)
        return di_error_set(err, DI_ERR_INPUT, "SNS message type %.64s is not handled", type);
    const char *message = str(root, "Message");
    const char *end = NULL;
    *inner = message ? cJSON_ParseWithOpts(message, &end, 1) : NULL;
    if (!*inner)
        return di_error_set(err, DI_ERR_INPUT,
                            "SNS Notification: Message is not JSON (error at byte %ld)",
                            message && end ? (long)(end - message) : 0L);
    int rc = walk_plain(*inner, out, fn, ctx, err);
    out->sns = 1;
    return rc;
}

/* di_s3_events_walk tells the envelopes apart by their distinctive members. */
int di_s3_events_walk(const cJSON *root, di_s3_parsed *out, cJSON **inner, di_s3_object_fn fn,
                      void *ctx, di_error *err) {
    memset(out, 0, sizeof *out);
    *inner = NULL;
    if (!cJSON_IsObject(root))
        return di_error_set(err, DI_ERR_INPUT, "an S3 event must be a JSON object");
    const char *type = str(root, "Type");
    if (type && str(root, "TopicArn"))
        return walk_sns(root, type, out, inner, fn, ctx, err);
    return walk_plain(root, out, fn, ctx, err);
}

/* ---- rules ---- */

/* rule_str reads an optional string member of rule i; *bad is set when it is
 * present but not a string. */
static const char *rule_str(const cJSON *r, const char *key, const char *def, int *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    if (v && !cJSON_IsString(v) && !cJSON_IsNull(v))
        *bad = 1;
    return cJSON_IsString(v) ? v->valuestring : def;
}

/* dataset_as_text turns a numeric "dataset": 7 into "7", so that every rule
 * field is a string pointing into the document. */
static void dataset_as_text(cJSON *r) {
    cJSON *num = cJSON_GetObjectItemCaseSensitive(r, "dataset");
    if (!cJSON_IsNumber(num) || num->valuedouble < 0 || num->valuedouble > 2147483647.0)
        return;
    char text[16];
    snprintf(text, sizeof text, "%d", num->valueint);
    cJSON *s = cJSON_CreateString(text);
    if (s)
        cJSON_ReplaceItemInObjectCaseSensitive(r, "dataset", s);
}

/* parse_rule fills one rule from its JSON object. */
static int parse_rule(const cJSON *r, int i, di_event_rule *out, di_error *err) {
    int bad = 0;
    if (!cJSON_IsObject(r))
        return di_error_set(err, DI_ERR_CONFIG, "event rules: rule %d is not an object", i + 1);
    out->bucket = rule_str(r, "bucket", NULL, &bad);
    out->prefix = rule_str(r, "prefix", "", &bad);
    out->suffix = rule_str(r, "suffix", "", &bad);
    out->dataset = rule_str(r, "dataset", NULL, &bad);
    out->ref = rule_str(r, "ref", "main", &bad);
    out->mode = rule_str(r, "mode", "snapshot", &bad);
    out->format = rule_str(r, "format", NULL, &bad);
    out->compression = rule_str(r, "compression", NULL, &bad);
    if (bad)
        return di_error_set(err, DI_ERR_CONFIG, "event rules: rule %d: a field is not a string",
                            i + 1);
    if (!out->dataset || !*out->dataset)
        return di_error_set(err, DI_ERR_CONFIG, "event rules: rule %d has no \"dataset\"", i + 1);
    if (strcmp(out->mode, "snapshot") != 0 && strcmp(out->mode, "update") != 0)
        return di_error_set(err, DI_ERR_CONFIG,
                            "event rules: rule %d: mode must be snapshot or update", i + 1);
    if (!*out->ref)
        return di_error_set(err, DI_ERR_CONFIG, "event rules: rule %d: empty ref", i + 1);
    return 0;
}

/* di_event_rules_parse keeps the document: every rule's strings point into it. */
int di_event_rules_parse(di_event_rules *rules, const char *text, di_error *err) {
    memset(rules, 0, sizeof *rules);
    const char *end = NULL;
    rules->doc = cJSON_ParseWithOpts(text, &end, 1);
    if (!cJSON_IsArray(rules->doc)) {
        di_event_rules_free(rules);
        return di_error_set(err, DI_ERR_CONFIG,
                            "event rules: expected a JSON array of rules (error at byte %ld)",
                            end ? (long)(end - text) : 0L);
    }
    int n = cJSON_GetArraySize(rules->doc);
    rules->rules = calloc(n ? (size_t)n : 1, sizeof *rules->rules);
    if (!rules->rules) {
        di_event_rules_free(rules);
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    }
    cJSON *r;
    cJSON_ArrayForEach(r, rules->doc) {
        dataset_as_text(r);
        if (parse_rule(r, rules->n, &rules->rules[rules->n], err)) {
            di_event_rules_free(rules);
            return -1;
        }
        rules->n++;
    }
    return 0;
}

/* di_event_rules_load reads a rules file whole (capped) and parses it. */
int di_event_rules_load(di_event_rules *rules, const char *path, di_error *err) {
    memset(rules, 0, sizeof *rules);
    FILE *f = fopen(path, "rb");
    if (!f)
        return di_error_set(err, DI_ERR_CONFIG, "event rules %s: cannot open", path);
    enum { MAX = 1 << 20 };
    char *text = malloc(MAX + 1);
    size_t n = text ? fread(text, 1, MAX + 1, f) : 0;
    fclose(f);
    if (!text)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    if (n > MAX) {
        free(text);
        return di_error_set(err, DI_ERR_CONFIG, "event rules %s: larger than 1 MiB", path);
    }
    text[n] = '\0';
    int rc = di_event_rules_parse(rules, text, err);
    free(text);
    if (rc)
        di_error_prefix(err, path);
    return rc;
}

/* di_event_rules_free releases the document and the rule array. */
void di_event_rules_free(di_event_rules *rules) {
    cJSON_Delete(rules->doc);
    free(rules->rules);
    memset(rules, 0, sizeof *rules);
}

/* ends_with tells whether s ends with suffix. */
static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return k <= n && memcmp(s + n - k, suffix, k) == 0;
}

/* di_event_rules_match: the first rule whose bucket, prefix and suffix fit. */
const di_event_rule *di_event_rules_match(const di_event_rules *rules, const char *bucket,
                                          const char *key) {
    for (int i = 0; i < rules->n; i++) {
        const di_event_rule *r = &rules->rules[i];
        if (r->bucket && strcmp(r->bucket, "*") != 0 && strcmp(r->bucket, bucket) != 0)
            continue;
        if (strncmp(key, r->prefix, strlen(r->prefix)) != 0 || !ends_with(key, r->suffix))
            continue;
        return r;
    }
    return NULL;
}

/* is_sns_host tells whether host is sns.REGION.amazonaws.com(.cn). */
static int is_sns_host(const char *host) {
    if (strncmp(host, "sns.", 4) != 0)
        return 0;
    const char *region = host + 4;
    size_t n = strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (n == 0)
        return 0;
    return strcmp(region + n, ".amazonaws.com") == 0 ||
           strcmp(region + n, ".amazonaws.com.cn") == 0;
}

/* di_sns_confirm_allowed: SNS's own hosts over https, or hosts the operator named. */
int di_sns_confirm_allowed(const char *url, const char *allowed) {
    char scheme[16], host[256], port[8];
    if (di_url_split(url, scheme, sizeof scheme, host, sizeof host, port, sizeof port) != 0)
        return 0;
    int web = strcmp(scheme, "https") == 0 || strcmp(scheme, "http") == 0;
    if (allowed && *allowed && web && di_list_has(allowed, host))
        return 1;
    return strcmp(scheme, "https") == 0 && !port[0] && is_sns_host(host);
}
