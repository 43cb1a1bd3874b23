/* stage.h - the staged load of a big import (docs/performance.md).
 *
 * Index maintenance is what an import costs the database: a batch's rows,
 * sorted or not, land on leaf pages all over indexes of millions of random
 * hash keys. A staged load first COPYs every batch into the job's UNLOGGED
 * staging tables (no index, no WAL), one per leading hex digit of the row
 * hash, with the checkpoint in the same transaction as each batch. When the
 * whole object is staged, the merge moves each staging table into
 * dsa_core.rows and into the manifest in hash order, so each index leaf is
 * visited once, not once per batch. Two connections share the 2 x 16 steps:
 * one starts with the rows, the other with the manifest (so they do not
 * contend for the same pages), and whichever runs out first takes the
 * other's remaining parts from the far end. Every step commits with the part
 * it finished (checkpoint.stage), so a killed merge resumes with the parts
 * not merged yet.
 *
 * The staging tables live in schema dsa_ingest as stage_<job>_<part> and a
 * marker table stage_<job> holding one row. A server crash empties every
 * UNLOGGED table: an empty marker on resume means the staged rows are gone,
 * and the job starts again from the beginning of the object. The tables are
 * dropped in the transaction that publishes the commit or fails the job. */
#ifndef DI_JOB_STAGE_H
#define DI_JOB_STAGE_H

#include "job/batch.h"
#include "job/checkpoint.h"
#include "sink/pg.h"

#define DI_STAGE_PARTS 16 /* one per leading hex digit of row_hash */

/* di_stage_table names staging table part (-1: the marker) of job_id, quoted
 * and schema-qualified, into out. */
void di_stage_table(const char *job_id, int part, char out[80]);

/* di_stage_part is the staging table a row hash (lowercase hex) goes to. */
int di_stage_part(const char *hash, int parts);

/* di_stage_create makes the job's staging tables and marker (if missing) and
 * commits them. */
DI_MUSTCHECK int di_stage_create(di_pg *pg, const char *job_id, int parts, di_error *err);

/* di_stage_intact tells whether the job's staged rows are all still there: 1
 * when its marker holds its row, 0 when a server restart emptied them. */
DI_MUSTCHECK int di_stage_intact(di_pg *pg, const char *job_id, int *intact, di_error *err);

/* di_stage_drop drops the job's staging tables, if any, in the caller's
 * transaction. */
DI_MUSTCHECK int di_stage_drop(di_pg *pg, const char *job_id, di_error *err);

/* di_stage_merged tells whether st's every part is in rows and the manifest:
 * the staging tables are not needed any more. */
int di_stage_merged(const di_stage_state *st);

/* di_stage_merge merges every part st has not merged yet, on up to
 * `connections` connections of its own (two at most), and updates st as
 * parts complete. Each step is fenced by the job's lease. */
DI_MUSTCHECK int di_stage_merge(const char *conninfo, const di_batch_job *job, di_stage_state *st,
                                int connections, di_error *err);

#endif
