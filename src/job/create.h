/* create.h - the queue row of a new import job, inside a caller's
 * transaction: `import` (di_job_create) and the S3 event intake
 * (src/http/enqueue.c, which writes the delivery's row in the same
 * transaction) both queue jobs through it. */
#ifndef DI_JOB_CREATE_H
#define DI_JOB_CREATE_H

#include "sink/pg.h"

/* di_job_insert finds the dataset by id or name (creating a named one that
 * does not exist yet, under an advisory lock so that two requests make one)
 * and inserts the job with run_parameters = params: claimed by owner with a
 * lease of lease_s, or pending when owner is NULL. Runs on pg, in the
 * caller's transaction. */
DI_MUSTCHECK int di_job_insert(di_pg *pg, const char *dataset, const char *params,
                               const char *owner, long lease_s, char job_id[37], di_error *err);

#endif
