/* batch.h - one batch of rows and its transaction (DESIGN §1 sink).
 *
 * The reading thread fills a batch (di_batch_add: a row's hash, number and
 * JSON, copied into the batch's arena); a loader thread sends it. Sending
 * sorts the rows by hash and drops repeated content client-side, so the
 * indexes of dsa_core.rows and commit_rows see their keys in order, then
 * COPYs them into a temporary staging table and moves them on with ONE
 * statement (a data-modifying CTE fills rows, the outer INSERT the
 * manifest). di_batch_publish then writes the checkpoint, renews the lease
 * and commits: the rows and the checkpoint that counts them commit together
 * or not at all. */
#ifndef DI_JOB_BATCH_H
#define DI_JOB_BATCH_H

#include <stdint.h>
#include "dsa_ingest/buf.h"
#include "dsa_ingest/row.h"
#include "sink/pg.h"

/* One row of a batch: its hash and where its JSON sits in the arena. */
typedef struct di_batch_row {
    char hash[DI_HASH_HEX];
    int64_t row;
    size_t off, len;
} di_batch_row;

/* A batch belongs to one table. [row_from, row_to) are the row numbers it
 * covers: those it loads and those a resumed job skips because an earlier
 * run committed them (rows_covered counts both). */
typedef struct di_batch {
    int64_t seq; /* 1, 2, … in reading order within one run of a job */
    char table[128];
    int64_t row_from, row_to;
    int64_t rows_covered;
    di_buf arena; /* the rows' JSON texts, back to back (reused) */
    di_batch_row *rows;
    size_t nrows, cap;
    char *end_progress; /* the job's progress if every batch up to this one were in (owned) */
    int64_t end_rows;   /* rows_processed in end_progress */
    int64_t bytes_read; /* of the object, when the batch was cut */
} di_batch;

void di_batch_init(di_batch *b);
void di_batch_cleanup(di_batch *b);

/* di_batch_reset empties the batch for reuse, keeping its memory. */
void di_batch_reset(di_batch *b);

/* di_batch_add appends one row; -1 when the batch's cap (1 GiB of JSON) is
 * reached or memory runs out. */
DI_MUSTCHECK int di_batch_add(di_batch *b, const char *hash, int64_t row, const char *json,
                              size_t len);

/* di_batch_prepare readies a loading connection: its staging table, and
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
    int stage_parts;   /* > 0: a staged load into that many staging tables (stage.h) */
} di_batch_job;

/* di_batch_load opens the batch's transaction and sends its rows (sorted,
 * deduplicated) into dsa_core.rows and commit_rows, or for a staged load into
 * the job's staging tables; scratch holds the COPY text in pieces. Nothing is
 * committed: di_batch_publish does that. On failure the transaction is
 * rolled back. */
DI_MUSTCHECK int di_batch_load(di_pg *pg, di_batch *b, const di_batch_job *job, di_buf *scratch,
                               di_error *err);

/* di_batch_publish writes progress_json into the job row and renews the lease
 * unless the job is no longer running under owner's unexpired lease (then
 * it fails with DI_CODE_LEASE_LOST), and commits. Its UPDATE is the last
 * statement before COMMIT, so the row lock it takes is held only for the
 * commit itself and parallel loaders of one job do not queue behind each
 * other's inserts. On failure the transaction is rolled back. */
DI_MUSTCHECK int di_batch_publish(di_pg *pg, const di_batch_job *job, const char *progress_json,
                                  di_error *err);

#endif
