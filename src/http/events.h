/* events.h - private to src/http/: S3 event notifications and the rules that
 * route them to a dataset and ref (DESIGN §4 POST /events/s3).
 *
 * Four envelopes are understood: S3's own `Records[]` (also what MinIO's
 * webhook sends, with EventName/Key beside it), EventBridge "Object Created",
 * and an SNS envelope carrying either of those in its Message (or asking for
 * its subscription to be confirmed). Parsing is pure: it never touches the
 * network or the database, so the unit tests feed it bodies from memory.
 * Object keys arrive URL-encoded as S3 sends them ('+' is a space) and are
 * decoded here. */
#ifndef DI_HTTP_EVENTS_H
#define DI_HTTP_EVENTS_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include "dsa_ingest/error.h"

#define DI_S3_EVENT_KEY_MAX 1024 /* S3's own limit on a key, in bytes */

/* One object an event is about. */
typedef struct di_s3_object {
    char bucket[256];
    char key[DI_S3_EVENT_KEY_MAX + 1];     /* decoded */
    char version[DI_S3_EVENT_KEY_MAX + 8]; /* what makes a delivery unique: see below */
    char etag[128];                        /* without quotes; "" when absent */
    int64_t size;                          /* -1 when absent */
    char name[64];                         /* e.g. "ObjectCreated:Put", "Object Created" */
    int created;                           /* an object was created (only these queue jobs) */
} di_s3_object;

/* The envelope a body came in. */
typedef enum di_s3_envelope {
    DI_S3_ENV_RECORDS = 1, /* S3 Records[] or MinIO webhook */
    DI_S3_ENV_EVENTBRIDGE, /* EventBridge "Object Created" (or another S3 detail-type) */
    DI_S3_ENV_SNS,         /* SNS Notification around one of the above */
    DI_S3_ENV_SNS_CONFIRM, /* SNS SubscriptionConfirmation: fetch SubscribeURL */
    DI_S3_ENV_TEST,        /* s3:TestEvent, sent when notifications are configured */
} di_s3_envelope;

typedef struct di_s3_parsed {
    di_s3_envelope envelope;
    int sns;                   /* it came inside an SNS envelope */
    const char *subscribe_url; /* SNS_CONFIRM: borrowed from the parsed document */
} di_s3_parsed;

/* Called for every object of a body; non-zero stops the walk (returned). */
typedef int (*di_s3_object_fn)(void *ctx, const di_s3_object *o);

/* di_s3_events_walk recognises the envelope of root and calls fn for each
 * object in it. An SNS Message is parsed here; *inner receives that document
 * (the caller cJSON_Delete()s it; subscribe_url may point into root). An
 * unrecognised body or a record without bucket or key is an input error. */
DI_MUSTCHECK int di_s3_events_walk(const cJSON *root, di_s3_parsed *out, cJSON **inner,
                                   di_s3_object_fn fn, void *ctx, di_error *err);

/* di_s3_key_decode decodes an event's object key: %XX escapes, '+' as space.
 * -1 on a bad escape, a NUL byte or a key longer than outsz - 1. */
int di_s3_key_decode(const char *in, char *out, size_t outsz);

/* di_s3_identity fills o->version with the delivery's identity: the version
 * id when the bucket is versioned ("v:ID"), else the ETag ("etag:E"), else
 * S3's sequencer ("seq:S"), else "" (then the key alone identifies it). */
void di_s3_identity(di_s3_object *o, const char *version_id, const char *sequencer);

/* di_sns_confirm_allowed tells whether a SubscriptionConfirmation's
 * SubscribeURL may be fetched: https on sns.REGION.amazonaws.com(.cn), or any
 * http(s) URL whose host is in the comma-separated `allowed` list. */
int di_sns_confirm_allowed(const char *url, const char *allowed);

/* One routing rule; every string points into the rules document. */
typedef struct di_event_rule {
    const char *bucket; /* NULL or "*": any bucket */
    const char *prefix; /* "" when absent */
    const char *suffix;
    const char *dataset; /* name or numeric id (required) */
    const char *ref;     /* "main" when absent */
    const char *mode;    /* "snapshot" | "update" */
    const char *format;  /* NULL: auto */
    const char *compression;
} di_event_rule;

typedef struct di_event_rules {
    cJSON *doc;
    di_event_rule *rules; /* n entries, malloc'd */
    int n;
} di_event_rules;

/* di_event_rules_parse reads the rules JSON text (an array of objects); an
 * error names the rule's position and the field. *rules is empty on error. */
DI_MUSTCHECK int di_event_rules_parse(di_event_rules *rules, const char *text, di_error *err);

/* di_event_rules_load reads the rules file at path (at most 1 MiB). */
DI_MUSTCHECK int di_event_rules_load(di_event_rules *rules, const char *path, di_error *err);

void di_event_rules_free(di_event_rules *rules); /* accepts an empty set */

/* di_event_rules_match returns the first rule matching (bucket, key), or NULL. */
const di_event_rule *di_event_rules_match(const di_event_rules *rules, const char *bucket,
                                          const char *key);

#endif
