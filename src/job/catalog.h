/* catalog.h - what the job runner reads and writes about a job besides its
 * rows: the job row, its dataset, its commit, the ref. All SQL is here. */
#ifndef DI_JOB_CATALOG_H
#define DI_JOB_CATALOG_H

#include "dsa_ingest/job.h"
#include "job/checkpoint.h"
#include "sink/pg.h"

/* A job row, as the runner needs it. */
typedef struct di_job_row {
    char id[37];
    char status[16];
    long dataset_id;
    char parent[65]; /* source_commit_id: the ref's head when the job started */
    char source[4096];
    char ref[256];
    char message[1024];
    char mode[16];
    char format[16];
    char compression[16];
    char delimiter;       /* 0: by format */
    int header;           /* 1, 0, -1: sniffed */
    long batch_size;      /* 0: the setting */
    long max_errors;      /* options.max_errors */
    char encoding[32];    /* options.encoding, "" = UTF-8 */
    char origin[16];      /* who queued it: "api", "event"; "" = CLI or by hand */
    char *run_parameters; /* the whole JSON (owned) */
    char *output_summary; /* JSON or NULL (owned) */
    char error_message[1024];
    char worker_id[128]; /* who holds the lease now ("" = nobody) */
    long attempts;       /* runs so far, this one included */
    const char *owner;   /* us: set by the runner; every write is fenced on it */
    long lease_s;
} di_job_row;

void di_job_row_cleanup(di_job_row *j);

/* di_catalog_fenced runs an UPDATE of job_id's row that must hit exactly that
 * row while owner holds it; otherwise the job was taken from us (lease lost,
 * cancelled) and the error (code DI_CODE_LEASE_LOST) makes the caller roll back.
 * This is the one fence every write of a running job goes through. */
DI_MUSTCHECK int di_catalog_fenced(di_pg *pg, const char *sql, int n, const char *const *params,
                                   const char *job_id, const char *owner, di_error *err);

/* di_catalog_load_job reads job `id`; a missing job is a config error. */
DI_MUSTCHECK int di_catalog_load_job(di_pg *pg, const char *id, di_job_row *j, di_error *err);

/* di_catalog_start takes a job with no commit yet: reads the ref's head as the
 * parent, creates the (unpublished) commit and writes the first checkpoint. */
DI_MUSTCHECK int di_catalog_start(di_pg *pg, di_job_row *j, di_checkpoint *cp, di_error *err);

/* di_catalog_finish publishes: the commit's manifest is complete; the ref
 * moves (compare-and-swap on the parent), the schema is stored and the job is
 * completed with its output_summary, all in one transaction. */
DI_MUSTCHECK int di_catalog_finish(di_pg *pg, di_job_row *j, const di_checkpoint *cp,
                                   const char *progress_json, const char *summary_json,
                                   const char *schema_json, di_error *err);

/* di_catalog_remove_commit deletes an unpublished commit and its manifest
 * (a published one, which a ref points at, is kept), in the caller's
 * transaction. */
DI_MUSTCHECK int di_catalog_remove_commit(di_pg *pg, const char *commit_id, di_error *err);

/* di_catalog_fail marks the job failed with message and removes its partial
 * commit and its staging tables (stage.h), if owner (NULL: anyone) still
 * holds it. */
DI_MUSTCHECK int di_catalog_fail(di_pg *pg, const char *job_id, const char *owner,
                                 const char *commit_id, const char *message, di_error *err);

#endif
