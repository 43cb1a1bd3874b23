/* batch.h - one batch of rows and its transaction (DESIGN §1 sink): COPY into
 * a staging table, dedup into dsa_core.rows, the manifest into commit_rows, the
 * checkpoint into the job row, committed together or not at all. */
#ifndef DI_JOB_BATCH_H
#define DI_JOB_BATCH_H

#include <stdint.h>
#include "dsa_ingest/buf.h"
#include "sink/pg.h"

typedef struct di_batch {
    di_buf copy; /* COPY text: row_hash \t logical_row_id \t data \n (reused) */
    long rows;
} di_batch;

void di_batch_init(di_batch *b);
void di_batch_cleanup(di_batch *b);

/* di_batch_add appends one row; -1 when the batch buffer's cap is reached. */
DI_MUSTCHECK int di_batch_add(di_batch *b, const char *hash, const char *table_key, int64_t row,
                              const char *json, size_t len);

/* di_batch_prepare readies a connection for batches: its staging table, and
 * idle_in_transaction_session_timeout = lease_s, so that a worker frozen inside
 * a batch transaction (SIGSTOP, a partition) is cut off by the server and its
 * uncommitted rows stop blocking the worker that took the job over. */
DI_MUSTCHECK int di_batch_prepare(di_pg *pg, long lease_s, di_error *err);

/* The job a batch belongs to, and the lease that fences it. */
typedef struct di_batch_job {
    const char *job_id;
    const char *commit_id;
    const char *owner; /* the lease holder: the batch commits only while owner holds it */
    long lease_s;      /* each batch also renews the lease */
} di_batch_job;

/* di_batch_commit loads the batch and advances the job's progress in ONE
 * transaction; it fails (and rolls back) unless the job is still running under
 * owner's unexpired lease. The batch is emptied on success. */
DI_MUSTCHECK int di_batch_commit(di_pg *pg, di_batch *b, const di_batch_job *job,
                                 const char *progress_json, di_error *err);

#endif
