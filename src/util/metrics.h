/* metrics.h - private: the process's own Prometheus series that several
 * stages feed (the job runner, the sources) and the worker's /metrics reads:
 * batch and job durations as histograms, retries, errors by class, S3
 * requests by status. One registry per process, as a scrape sees one
 * process; every function is thread-safe (the worker runs jobs on several
 * threads) and cheap enough to call once per batch or request. */
#ifndef DI_UTIL_METRICS_H
#define DI_UTIL_METRICS_H

#include "dsa_ingest/buf.h"
#include "dsa_ingest/error.h"

/* Where a retry happened. */
typedef enum di_retry_kind {
    DI_RETRY_SOURCE, /* a network source re-requested from the current byte */
    DI_RETRY_JOB,    /* the runner resumed a job from its checkpoint in-process */
    DI_RETRY_COUNT
} di_retry_kind;

/* di_metrics_batch records how long one batch transaction took. */
void di_metrics_batch(double seconds);

/* di_metrics_job records how long one run of a job took, whatever its end. */
void di_metrics_job(double seconds);

/* di_metrics_retry counts one retry of kind k. */
void di_metrics_retry(di_retry_kind k);

/* di_metrics_error counts a job run that ended with an error of class cls. */
void di_metrics_error(di_class cls);

/* di_metrics_s3_request counts one S3 request by its HTTP status (0: no
 * response at all). */
void di_metrics_s3_request(long status);

/* di_metrics_render appends every series in the Prometheus text format, each
 * family with its HELP and TYPE lines; -1 when b is full. */
DI_MUSTCHECK int di_metrics_render(di_buf *b);

/* di_metrics_reset zeroes everything (for tests). */
void di_metrics_reset(void);

#endif
