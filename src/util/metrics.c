/* metrics.c - the process-wide registry behind util/metrics.h. Updates take
 * one mutex for a few additions (a batch or a request is far costlier than
 * that); rendering copies the registry under the mutex and formats the copy,
 * so a slow scrape never holds up a job. */
#include "util/metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_BUCKETS 16
#define NSTATUS     600 /* index 0: no response; 1: a status outside 100..599 */

typedef struct hist {
    uint64_t counts[MAX_BUCKETS + 1]; /* per bucket (not cumulative); last is +Inf */
    uint64_t count;
    double sum;
} hist;

typedef struct registry {
    hist batch, job;
    uint64_t retries[DI_RETRY_COUNT];
    uint64_t errors[DI_ERR_INTERNAL + 1];
    uint64_t s3[NSTATUS];
} registry;

static const double batch_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                      1,     2.5,  5,     10,   30,  60};
static const double job_bounds[] = {0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400};
#define NB(a) (sizeof(a) / sizeof(a)[0])

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static registry reg;

/* observe adds one value to a histogram: the first bucket whose bound holds it. */
static void observe(hist *h, const double *bounds, size_t n, double v) {
    size_t i = 0;
    while (i < n && v > bounds[i])
        i++;
    pthread_mutex_lock(&mu);
    h->counts[i]++;
    h->count++;
    h->sum += v;
    pthread_mutex_unlock(&mu);
}

/* bump adds one to a counter under the mutex. */
static void bump(uint64_t *c) {
    pthread_mutex_lock(&mu);
    (*c)++;
    pthread_mutex_unlock(&mu);
}

/* di_metrics_batch: one batch transaction's duration. */
void di_metrics_batch(double seconds) {
    observe(&reg.batch, batch_bounds, NB(batch_bounds), seconds);
}

/* di_metrics_job: one job run's duration. */
void di_metrics_job(double seconds) {
    observe(&reg.job, job_bounds, NB(job_bounds), seconds);
}

/* di_metrics_retry: kinds out of range are ignored, not a crash. */
void di_metrics_retry(di_retry_kind k) {
    if ((int)k >= 0 && k < DI_RETRY_COUNT)
        bump(&reg.retries[k]);
}

/* di_metrics_error: DI_ERR_NONE is not an error and is not counted. */
void di_metrics_error(di_class cls) {
    if (cls > DI_ERR_NONE && cls <= DI_ERR_INTERNAL)
        bump(&reg.errors[cls]);
}

/* di_metrics_s3_request: statuses outside 100..599 share one "other" slot. */
void di_metrics_s3_request(long status) {
    bump(&reg.s3[status == 0 ? 0 : status >= 100 && status < NSTATUS ? status : 1]);
}

/* di_metrics_reset zeroes the registry. */
void di_metrics_reset(void) {
    pthread_mutex_lock(&mu);
    memset(&reg, 0, sizeof reg);
    pthread_mutex_unlock(&mu);
}

/* family writes one family's HELP and TYPE lines. */
static int family(di_buf *b, const char *name, const char *type, const char *help) {
    return di_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* render_hist writes a histogram: cumulative buckets, +Inf, _sum, _count. */
static int render_hist(di_buf *b, const char *name, const char *help, const hist *h,
                       const double *bounds, size_t n) {
    int rc = family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += h->counts[i];
        rc |= di_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                            (unsigned long long)cum);
    }
    rc |= di_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    rc |= di_buf_printf(b, "%s_sum %.6f\n", name, h->sum);
    return rc | di_buf_printf(b, "%s_count %llu\n", name, (unsigned long long)h->count);
}

/* render_counters writes retries, errors by class and S3 requests by status. */
static int render_counters(di_buf *b, const registry *r) {
    static const char *const kinds[DI_RETRY_COUNT] = {"source", "job"};
    int rc = family(b, "dsa_ingest_retries_total", "counter",
                    "Retries: a network source re-requesting from its current byte (source), "
                    "a job resumed from its checkpoint in-process (job).");
    for (int k = 0; k < DI_RETRY_COUNT; k++)
        rc |= di_buf_printf(b, "dsa_ingest_retries_total{stage=\"%s\"} %llu\n", kinds[k],
                            (unsigned long long)r->retries[k]);
    rc |= family(b, "dsa_ingest_errors_total", "counter",
                 "Job runs that ended with an error, by its class.");
    for (int c = DI_ERR_INPUT; c <= DI_ERR_INTERNAL; c++)
        rc |= di_buf_printf(b, "dsa_ingest_errors_total{class=\"%s\"} %llu\n",
                            di_error_class_name((di_class)c), (unsigned long long)r->errors[c]);
    rc |= family(b, "dsa_ingest_s3_requests_total", "counter",
                 "S3 GET requests of s3:// sources, by HTTP status (none: no response).");
    for (int s = 0; s < NSTATUS; s++) {
        if (!r->s3[s])
            continue;
        char code[8];
        snprintf(code, sizeof code, "%d", s);
        rc |= di_buf_printf(b, "dsa_ingest_s3_requests_total{code=\"%s\"} %llu\n",
                            s == 0   ? "none"
                            : s == 1 ? "other"
                                     : code,
                            (unsigned long long)r->s3[s]);
    }
    return rc;
}

/* di_metrics_render formats a copy taken under the mutex. */
int di_metrics_render(di_buf *b) {
    registry r;
    pthread_mutex_lock(&mu);
    r = reg;
    pthread_mutex_unlock(&mu);
    int rc = render_hist(b, "dsa_ingest_batch_duration_seconds",
                         "Time to commit one batch (its rows and checkpoint in one transaction).",
                         &r.batch, batch_bounds, NB(batch_bounds));
    rc |= render_hist(b, "dsa_ingest_job_run_duration_seconds",
                      "Time one run of an import job took in this worker, whatever its end.",
                      &r.job, job_bounds, NB(job_bounds));
    return rc | render_counters(b, &r);
}
