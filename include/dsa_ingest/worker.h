/* worker.h - the worker: N slots, each claiming import jobs from the queue in
 * PostgreSQL and running them to the end; woken by LISTEN dsa_import_jobs and
 * a poll as the fallback. Signals stop it cleanly: each running job commits its
 * batch and goes back to pending. */
#ifndef DSA_INGEST_WORKER_H
#define DSA_INGEST_WORKER_H

#include <signal.h>
#include <stdint.h>
#include "dsa_ingest/job.h"

/* Counters for /metrics, updated atomically by the slots. */
typedef struct di_worker_stats {
    int64_t jobs_completed, jobs_failed, jobs_handed_back, jobs_lost;
    int64_t rows, bytes, batches;
    int64_t active;
    int64_t claims_empty;
} di_worker_stats;

typedef struct di_worker_opts {
    const char *conninfo;
    const di_settings *settings;
    int concurrency;                   /* slots (threads, each with its own connections) */
    int once;                          /* exit when no job is pending or running elsewhere */
    const volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */
    di_log_fn log;                     /* thread-safe log sink */
    void *log_ctx;
    di_worker_stats *stats; /* may be NULL */
} di_worker_opts;

/* di_worker_run runs the slots until stopped (or drained with once). */
DI_MUSTCHECK int di_worker_run(const di_worker_opts *o, di_error *err);

#endif
