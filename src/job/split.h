/* split.h - one large object imported by many workers (docs/split.md).
 *
 * A job whose object is uncompressed CSV, TSV or NDJSON of at least
 * IMPORT_SPLIT_MIN_BYTES is split into ranges of IMPORT_SPLIT_RANGE_BYTES,
 * one child job per range (analysis_runs.parent_run_id), which any worker
 * claims like any other job. The parent waits, held by no worker.
 *
 * Phase one: each range counts the records that start in its bytes, once for
 * every parser state its first byte could be in (parse/frame.h). The range
 * counted last chains the counts: the first range starts between records and
 * each next one in the state the one before it ended in, so every range
 * learns where its first record starts and, from the prefix sums, that
 * record's row number.
 *
 * Phase two: each range loads its records into the parent's commit with the
 * row numbers a single reader gives them, checkpointing like any job. The
 * range that completes last takes the parent over and publishes it. A range
 * that fails fails the parent and its siblings; nothing is published. */
#ifndef DI_JOB_SPLIT_H
#define DI_JOB_SPLIT_H
#include <stdint.h>
#include "dsa_ingest/decode.h"
#include "dsa_ingest/job.h"
#include "dsa_ingest/parse.h"
#include "job/catalog.h"
#include "job/checkpoint.h"
#include "parse/frame.h"
#include "sink/pg.h"

/* A range job, as its run_parameters.range describes it. */
typedef struct di_range {
    int active; /* the job is a range of a split job */
    char parent[37];
    int index, count;
    int64_t from, to; /* the bytes it counts (phase one) */
    int placed;       /* phase one is done for every range: the rest is set */
    int64_t start;    /* where its first record starts */
    int64_t end;      /* where the next range's first record starts (the size for the last) */
    int64_t first_row;
    int64_t records; /* records starting in [start, end), rows numbered from first_row */
    /* the parent's, for the checkpoint the range starts from */
    char commit_id[65];
    char etag[256];
    int64_t size;
    di_format format;
    char delimiter;
    int header;
    char **names; /* the header's column names */
    size_t nnames;
} di_range;

/* di_range_parse reads run_parameters.range (rg->active = 0 when there is none). */
DI_MUSTCHECK int di_range_parse(di_range *rg, const char *run_parameters, di_error *err);
void di_range_cleanup(di_range *rg);

/* di_split_ranges is how many ranges the job was split into (0: not split). */
int di_split_ranges(const char *run_parameters);

/* di_split_wanted tells whether an object of this kind and size is split. */
int di_split_wanted(const di_settings *s, const di_job_row *j, int64_t size, di_format format,
                    di_compression comp, int64_t member);

/* What the parent learnt from its first record, which the ranges need. */
typedef struct di_split_plan {
    int64_t data_start; /* where the first data record starts (after the header) */
    int64_t first_row;  /* its row number */
    int64_t range_bytes;
    const char *const *names; /* the columns */
    size_t nnames;
} di_split_plan;

/* di_split_create splits the job owner holds: its progress (cp, with the
 * resolved format) is written, one pending range job per range is queued
 * and the parent is released to wait for them. *nranges is set. */
DI_MUSTCHECK int di_split_create(di_pg *pg, const di_job_row *j, const di_checkpoint *cp,
                                 const di_split_plan *plan, int *nranges, di_error *err);

/* di_split_open tells how many ranges of parent are not completed yet. */
DI_MUSTCHECK int di_split_open(di_pg *pg, const char *parent, long *left, di_error *err);

/* di_split_park releases the parent owner took over (`import --resume`)
 * while its ranges are not all completed. */
DI_MUSTCHECK int di_split_park(di_pg *pg, const di_job_row *j, di_error *err);

/* di_split_merge adds up the ranges' checkpoints into the parent's: rows,
 * batches, bytes and the profile. */
DI_MUSTCHECK int di_split_merge(di_pg *pg, const char *parent, di_checkpoint *cp, di_error *err);

/* di_split_counted records a range's phase one (f, fed its bytes) and hands
 * the range back to wait; the last range counted places them all. */
DI_MUSTCHECK int di_split_counted(di_pg *pg, const di_job_row *j, const di_range *rg,
                                  const di_frame *f, di_error *err);

/* di_split_range_done completes a range with its final progress and summary;
 * *publish = 1 when it was the last and owner now holds the parent. */
DI_MUSTCHECK int di_split_range_done(di_pg *pg, const di_job_row *j, const di_range *rg,
                                     const char *progress, const char *summary, int *publish,
                                     di_error *err);

/* di_split_fail fails a range, its parent and its siblings, and removes the
 * parent's partial commit. */
DI_MUSTCHECK int di_split_fail(di_pg *pg, const di_job_row *j, const di_range *rg,
                               const char *message, di_error *err);

#endif
