/* enqueue.h - private to src/http/: what becomes of an object an S3 event
 * announces, shared by POST /events/s3 and the SQS consumer: routed by the
 * rules, its source checked, and queued at most once per delivery identity. */
#ifndef DI_HTTP_ENQUEUE_H
#define DI_HTTP_ENQUEUE_H

#include <stddef.h>
#include "http/events.h"
#include "http/netcheck.h"

/* Events received at POST /events/s3 (and SQS), by what became of them. */
typedef enum di_event_outcome {
    DI_EV_RECEIVED = 0, /* objects announced */
    DI_EV_QUEUED,       /* routed by a rule, a job queued */
    DI_EV_DUPLICATE,    /* routed, but already seen: no second job */
    DI_EV_UNMATCHED,    /* no rule matched: counted, not queued */
    DI_EV_IGNORED,      /* not an ObjectCreated event, or a test event */
    DI_EV_REFUSED,      /* the rule's bucket or the source is not allowed */
    DI_EV_FAILED,       /* the database failed: answered 503 for a redelivery */
    DI_EV_COUNT
} di_event_outcome;

/* What routing needs; everything is borrowed. */
typedef struct di_event_router {
    const char *conninfo;
    const di_event_rules *rules; /* may be empty: then every object is unmatched */
    const di_netpolicy *net;
} di_event_router;

/* di_event_route routes one announced object and queues its job: the
 * outcome (never DI_EV_RECEIVED). job_id gets the job queued now or by an
 * earlier delivery; detail says why an object was refused or failed. Only
 * DI_EV_FAILED (the database failed) means "deliver again". */
di_event_outcome di_event_route(const di_event_router *r, const di_s3_object *o, char job_id[37],
                                char *detail, size_t detailsz);

typedef enum di_enqueue_result { DI_ENQ_QUEUED, DI_ENQ_DUPLICATE } di_enqueue_result;

/* di_enqueue_s3_object writes the delivery's row and the job's in ONE
 * transaction: *res says whether a job was queued now or the delivery was
 * seen before (then job_id is the earlier job). */
DI_MUSTCHECK int di_enqueue_s3_object(const char *conninfo, const di_s3_object *o,
                                      const di_event_rule *rule, di_enqueue_result *res,
                                      char job_id[37], di_error *err);

#endif
