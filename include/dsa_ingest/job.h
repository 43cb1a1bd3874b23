/* job.h - an import job: created as a queue row, run stage by stage, resumable.
 *
 * The job row in dsa_jobs.analysis_runs is the single source of truth: its
 * run_parameters hold the request and, under "progress", the checkpoint that
 * every batch transaction advances (DESIGN §3). Running a job means: load that
 * row, open the source at the checkpoint, and load batches until the end. */
#ifndef DSA_INGEST_JOB_H
#define DSA_INGEST_JOB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/error.h"

/* Settings (DESIGN §4): environment first, flags override. */
typedef struct di_settings {
    long batch_size;         /* IMPORT_BATCH_SIZE, rows per batch transaction */
    long chunk_size;         /* IMPORT_CHUNK_SIZE, bytes per read */
    long parallel_workers;   /* IMPORT_PARALLEL_WORKERS */
    long progress_interval;  /* IMPORT_PROGRESS_UPDATE_INTERVAL, batches between log lines */
    long stall_timeout_s;    /* IMPORT_STALL_TIMEOUT */
    long max_retries;        /* IMPORT_MAX_RETRIES, network retries in a row */
    long retry_backoff_ms;   /* IMPORT_RETRY_BACKOFF_MS, first backoff */
    long retry_max_s;        /* IMPORT_RETRY_MAX_SECONDS, total time spent retrying */
    long db_retries;         /* IMPORT_DB_RETRIES, reconnects to resume a job in-process */
    long max_field;          /* IMPORT_MAX_FIELD_SIZE, bytes */
    long max_columns;        /* IMPORT_MAX_COLUMNS */
    long lease_s;            /* IMPORT_LEASE_SECONDS, a job's lease; renewed every lease/4 */
    long poll_interval_s;    /* IMPORT_POLL_INTERVAL, queue poll when no NOTIFY arrives */
    long job_max_attempts;   /* IMPORT_JOB_MAX_ATTEMPTS, runs of a job before it fails */
    long max_decompressed;   /* IMPORT_MAX_DECOMPRESSED_BYTES, 0: no limit */
    long max_ratio;          /* IMPORT_MAX_COMPRESSION_RATIO, decoded:stored, 0: no limit */
    long max_xml_depth;      /* IMPORT_XLSX_MAX_XML_DEPTH */
    long max_shared_strings; /* IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES */
    long split_min_bytes;    /* IMPORT_SPLIT_MIN_BYTES: split objects this big (0: never) */
    long split_range_bytes;  /* IMPORT_SPLIT_RANGE_BYTES: bytes per range of a split job */
    long stage_min_bytes;    /* IMPORT_STAGE_MIN_BYTES: stage objects this big (0: never) */
    /* not a variable of its own: the loading connections of one job, which is
     * IMPORT_PARALLEL_WORKERS for `import`; a worker shares that over its slots */
    long load_connections;
} di_settings;

/* di_settings_reader_opts starts reader options from the settings: the
 * network settings and the limits (di_reader_opts_default for the rest). The
 * caller adds the URL and the job's own choices (format, delimiter...). */
struct di_reader_opts;
void di_settings_reader_opts(const di_settings *s, struct di_reader_opts *o);

/* di_settings_load fills defaults, then the environment. A malformed value is
 * a config error naming the variable. */
DI_MUSTCHECK int di_settings_load(di_settings *s, di_error *err);

/* What a user asks to import (the job's run_parameters). Strings are borrowed. */
typedef struct di_import_request {
    const char *source;
    const char *dataset;     /* name, or a numeric id */
    const char *ref;         /* "main" */
    const char *message;     /* NULL: "Import <filename>" */
    const char *mode;        /* "snapshot" | "update" */
    const char *format;      /* "auto" | "csv" | "tsv" | "ndjson" | "xlsx" */
    const char *compression; /* "auto" | "none" | "gzip" | "bz2" | "xz" | "zstd" | "zip" */
    char delimiter;          /* 0: sniffed or by format */
    int header;              /* 1 --header, 0 --no-header, -1 sniffed */
    long batch_size;         /* 0: the setting */
    long max_errors;         /* bad records skipped (listed as rejects) before the job fails */
    const char *encoding;    /* NULL: UTF-8; else converted with iconv (CSV/TSV) */
    const char *origin;      /* NULL (CLI); "api": the worker checks every address it dials */
} di_import_request;

/* di_job_create records a new import job with its dataset (created when
 * missing). With owner != NULL the job is claimed at once by owner for
 * lease_s seconds (status running); with owner == NULL it is queued (pending,
 * NOTIFY dsa_import_jobs). job_id receives the uuid (37 bytes). */
DI_MUSTCHECK int di_job_create(const char *conninfo, const di_import_request *req,
                               const char *owner, long lease_s, char job_id[37], di_error *err);

/* di_job_takeover claims job_id for owner whatever its lease (`import
 * --resume`): fencing makes a previous holder that is still alive stop at its
 * next batch. A completed job is left alone (*done = 1); a failed one is an error. */
DI_MUSTCHECK int di_job_takeover(const char *conninfo, const char *job_id, const char *owner,
                                 long lease_s, int *done, di_error *err);

/* di_worker_id makes "host:pid[:slot]" for leases and logs (slot < 0: none). */
void di_worker_id(char *out, size_t outsz, int slot);

/* Live progress, reported after every batch. */
typedef struct di_progress {
    int64_t rows;
    int64_t bytes_read;
    int64_t bytes_total; /* -1 unknown */
    int64_t batches;
    double elapsed_s;
} di_progress;
typedef void (*di_progress_fn)(void *ctx, const di_progress *p);

/* Log lines (plain text, no newline) the runner wants the user to see. */
typedef void (*di_log_fn)(void *ctx, const char *line);

typedef struct di_job_hooks {
    di_progress_fn progress;
    di_log_fn log;
    void *ctx;
    const char *owner;                 /* the lease holder's id (required) */
    const volatile sig_atomic_t *stop; /* set (by a signal): finish the batch, hand back */
} di_job_hooks;

/* The outcome of a job, as `--json` prints it. */
typedef struct di_job_result {
    char job_id[37];
    char status[16]; /* completed | failed | running */
    char commit_id[65];
    long dataset_id;
    char ref[256];
    int64_t rows;
    int64_t bytes_read;
    int tables;
    int rejects;
    double elapsed_s;
    char object[1024]; /* the source, without secrets */
} di_job_result;

/* di_job_run runs (or resumes) job_id, which hooks->owner holds the lease of,
 * to the end: 0. When *hooks->stop is set it commits the current batch, hands
 * the job back to pending and returns 1. On an input error the job is failed,
 * its partial commit removed and its message kept (-1). A transient error that
 * outlasts settings->db_retries hands the job back to pending with a backoff,
 * or fails it after settings->job_max_attempts runs (-1). A lost lease stops
 * all writing at once (-1, transient). */
DI_MUSTCHECK int di_job_run(const char *conninfo, const char *job_id, const di_settings *s,
                            const di_job_hooks *hooks, di_job_result *res, di_error *err);

/* di_job_run_split goes on with a job di_job_run split into range jobs
 * (res->status "split"): it claims and runs its ranges in this process, as
 * any worker may at the same time, and waits for those others hold, until
 * the job is published (0, res filled like di_job_run's) or failed (-1).
 * When *hooks->stop is set it returns 1 after the current range. */
DI_MUSTCHECK int di_job_run_split(const char *conninfo, const char *job_id, const di_settings *s,
                                  const di_job_hooks *hooks, di_job_result *res, di_error *err);

/* Job administration (`dsa-ingest jobs`). The JSON texts are malloc'd. */
/* di_jobs_list: the newest `limit` import jobs as a JSON array. */
char *di_jobs_list(const char *conninfo, int limit, di_error *err);
/* di_jobs_show: one job row as a JSON object (the inflate window left out). */
char *di_jobs_show(const char *conninfo, const char *job_id, di_error *err);
/* di_jobs_cancel fails a pending or running job ("cancelled") and removes its
 * partial commit; a worker running it stops at its next batch (fencing). */
DI_MUSTCHECK int di_jobs_cancel(const char *conninfo, const char *job_id, di_error *err);
/* di_jobs_retry queues a failed job again from the start. */
DI_MUSTCHECK int di_jobs_retry(const char *conninfo, const char *job_id, di_error *err);

#endif
