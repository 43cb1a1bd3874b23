/* checkpoint.h - the job's resume state and its JSON form in
 * run_parameters.progress (DESIGN §3, docs/checkpoint.md). */
#ifndef DI_JOB_CHECKPOINT_H
#define DI_JOB_CHECKPOINT_H

#include <stdint.h>
#include "dsa_ingest/error.h"
#include "dsa_ingest/profile.h"
#include "dsa_ingest/reader.h"

#define DI_CHECKPOINT_VERSION 1
#define DI_REJECTS_KEPT       100 /* rejects listed in full; the rest are counted */

/* One skipped bad record (--max-errors), as output_summary.rejects lists it. */
typedef struct di_reject {
    char table[128];
    int64_t row, byte;
    char reason[512];
    char excerpt[201];
} di_reject;

/* A run of rows committed ahead of the checkpoint's position: batches load in
 * parallel and finish out of order, so the checkpoint is a watermark (pos:
 * every row before it is in) plus these rows of one table, [from, to), that
 * are in too. A resume reads on from the watermark and skips them. */
typedef struct di_segment {
    char table[128];
    int64_t from, to;
    int64_t rows; /* rows loaded from that range (rejected records are not) */
} di_segment;

/* A staged load (stage.h): its rows go into the job's staging tables first;
 * the merge then moves staging table p into dsa_core.rows (bit p of
 * rows_merged) and into the manifest (bit p of manifest_merged), in whatever
 * order its connections finish them. parts is 0 for a direct load. */
typedef struct di_stage_state {
    int parts;
    unsigned rows_merged, manifest_merged;
} di_stage_state;

typedef struct di_checkpoint {
    char commit_id[65];   /* "" until the job has started */
    char etag[256];       /* the object's ETag when the job started ("" if none) */
    int64_t size;         /* object size, -1 unknown */
    di_reader_pos pos;    /* where the reader restarts: table, row, decoder point */
    di_profile profile;   /* column types and counts of the rows loaded so far */
    di_segment *finished; /* committed beyond pos (owned) */
    size_t nfinished;
    di_stage_state stage;
    di_reject *rejects; /* the first DI_REJECTS_KEPT (owned) */
    size_t nrejects;
    int64_t rejects_total;
    /* progress counters */
    int64_t rows;
    int64_t bytes_read;
    int64_t batches;
} di_checkpoint;

void di_checkpoint_init(di_checkpoint *cp);
void di_checkpoint_cleanup(di_checkpoint *cp);

/* di_checkpoint_add_reject counts a skipped record and keeps its detail
 * while fewer than DI_REJECTS_KEPT are kept. -1: out of memory. */
DI_MUSTCHECK int di_checkpoint_add_reject(di_checkpoint *cp, const di_error *e);

/* di_rejects_json renders the kept rejects as a cJSON array. */
struct cJSON *di_rejects_json(const di_checkpoint *cp);

/* di_progress_json renders {"status", "percentage", …, "checkpoint": {…}} as a
 * malloc'd string (the caller frees it); NULL on allocation failure. */
char *di_progress_json(const di_checkpoint *cp, const char *status, const char *url);

/* di_progress_patch returns a copy of the progress JSON `progress` (as
 * di_progress_json renders it) with its counters and its checkpoint's
 * finished segments replaced: what a batch committing out of order writes.
 * NULL on allocation failure or unparsable input. */
char *di_progress_patch(const char *progress, int64_t rows, int64_t bytes_read, int64_t batches,
                        const di_segment *finished, size_t nfinished);

/* di_checkpoint_parse reads the "checkpoint" member of a progress object (cJSON
 * text of the whole run_parameters); a missing checkpoint leaves cp initialised. */
DI_MUSTCHECK int di_checkpoint_parse(di_checkpoint *cp, const char *run_parameters_json,
                                     di_error *err);

#endif
