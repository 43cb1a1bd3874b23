/* checkpoint.h - the job's resume state and its JSON form in
 * run_parameters.progress (DESIGN §3, docs/checkpoint.md). */
#ifndef DI_JOB_CHECKPOINT_H
#define DI_JOB_CHECKPOINT_H

#include <stdint.h>
#include "dsa_ingest/decode.h"
#include "dsa_ingest/error.h"

#define DI_CHECKPOINT_VERSION 1

typedef struct di_checkpoint {
    char commit_id[65]; /* "" until the job has started */
    char etag[256];     /* the object's ETag when the job started ("" if none) */
    int64_t size;       /* object size, -1 unknown */
    char table_key[128];
    int64_t row_number; /* n of the next record; 0 = nothing parsed yet */
    char **header;      /* the table's column names (owned), NULL before the header */
    size_t nheader;
    di_decode_point point; /* where the decoder restarts; point.skip reaches the record */
    int has_point;         /* 0: start from byte 0 */
    /* progress counters */
    int64_t rows;
    int64_t bytes_read;
    int64_t batches;
} di_checkpoint;

void di_checkpoint_init(di_checkpoint *cp);
void di_checkpoint_cleanup(di_checkpoint *cp);

/* di_checkpoint_set_header copies the column names. */
DI_MUSTCHECK int di_checkpoint_set_header(di_checkpoint *cp, const char *const *names, size_t n);

/* di_progress_json renders {"status", "percentage", …, "checkpoint": {…}} as a
 * malloc'd string (the caller frees it); NULL on allocation failure. */
char *di_progress_json(const di_checkpoint *cp, const char *status, const char *url);

/* di_checkpoint_parse reads the "checkpoint" member of a progress object (cJSON
 * text of the whole run_parameters); a missing checkpoint leaves cp initialised. */
DI_MUSTCHECK int di_checkpoint_parse(di_checkpoint *cp, const char *run_parameters_json,
                                     di_error *err);

#endif
