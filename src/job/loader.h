/* loader.h - the database side of an import: up to N connections loading
 * the batches of one job at once, and the checkpoint they commit.
 *
 * The reading thread takes an empty batch (di_loader_batch), fills it and
 * hands it over (di_loader_submit); loader threads, each with a connection
 * of its own, load batches as they come (di_batch_load) and commit them in
 * whatever order they finish. What each commit writes as the job's progress
 * is a watermark (the checkpoint of the last batch before which every batch
 * is in) plus the row ranges of the batches beyond it that are in too; these
 * commits are serialised (only the final UPDATE and COMMIT, not the loading),
 * so every checkpoint written describes exactly the batches committed with
 * it. A resumed job reads on from the watermark and skips those ranges.
 *
 * How many of the connections load at once is tuned while the job runs
 * (tune.h): more connections than the database has cores to serve them are
 * slower than fewer.
 *
 * Memory is bounded: connections + 2 batches, reused. The first failure of
 * any loader stops the others after their current batch (rolled back unless
 * already committed); the reading thread sees it at its next call. */
#ifndef DI_JOB_LOADER_H
#define DI_JOB_LOADER_H

#include "job/batch.h"
#include "job/checkpoint.h"

typedef struct di_loader di_loader;

typedef struct di_loader_opts {
    const char *conninfo;
    int connections;  /* loading connections, 1 or more (IMPORT_PARALLEL_WORKERS) */
    di_batch_job job; /* its strings must outlive the loader */
    /* the checkpoint the run starts from */
    const char *progress; /* its progress JSON (copied) */
    int64_t rows;         /* rows before its watermark (its finished ranges excluded) */
    int64_t batches;
    int64_t bytes_read;
    const di_segment *finished; /* committed beyond its watermark (copied) */
    size_t nfinished;
} di_loader_opts;

/* di_loader_start connects the loaders and starts their threads. */
di_loader *di_loader_start(const di_loader_opts *o, di_error *err);

/* di_loader_batch gives an empty batch with its sequence number set; it
 * waits while every batch is in use. NULL with err set when a loader failed. */
di_batch *di_loader_batch(di_loader *l, di_error *err);

/* di_loader_submit queues a filled batch (with end_progress, end_rows and its
 * range set) for loading; the loader owns it from here. -1 with err set when
 * a loader failed. */
DI_MUSTCHECK int di_loader_submit(di_loader *l, di_batch *b, di_error *err);

/* di_loader_wait returns when every submitted batch is committed (0) or a
 * loader failed (-1, err set). */
DI_MUSTCHECK int di_loader_wait(di_loader *l, di_error *err);

/* di_loader_committed reports the rows and batches committed so far. */
void di_loader_committed(di_loader *l, int64_t *rows, int64_t *batches);

/* di_loader_connections is how many batches load at once now: the tuner
 * (tune.h) picks between 2 and `connections` while the job runs. */
int di_loader_connections(di_loader *l);

/* di_loader_stop stops and joins the threads (batches not yet committed are
 * dropped: the checkpoint does not count them), closes the connections and
 * frees everything. NULL is allowed. */
void di_loader_stop(di_loader *l);

#endif
