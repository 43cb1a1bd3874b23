/* queue.h - the job queue in dsa_jobs.analysis_runs: claiming with
 * FOR UPDATE SKIP LOCKED, one writer per (dataset, ref), leases and handing
 * jobs back. Private to the library. */
#ifndef DI_JOB_QUEUE_H
#define DI_JOB_QUEUE_H

#include "sink/pg.h"

/* di_queue_claim claims the oldest claimable import job for owner: pending and
 * due, or running with an expired lease, and no other live job on its ref.
 * Returns 1 with job_id set, 0 when there is none. */
DI_MUSTCHECK int di_queue_claim(di_pg *pg, const char *owner, long lease_s, char job_id[37],
                                di_error *err);

/* di_queue_claim_range claims the first claimable range job of the split job
 * `parent` for owner (the ref rule does not apply: the parent holds the ref).
 * Returns 1 with job_id set, 0 when there is none now. */
DI_MUSTCHECK int di_queue_claim_range(di_pg *pg, const char *parent, const char *owner,
                                      long lease_s, char job_id[37], di_error *err);

/* di_queue_pending counts import jobs waiting (pending, due or not). */
DI_MUSTCHECK int di_queue_pending(di_pg *pg, long *count, di_error *err);

/* di_queue_renew extends owner's lease on job_id; *held = 0 when it is lost. */
DI_MUSTCHECK int di_queue_renew(di_pg *pg, const char *job_id, const char *owner, long lease_s,
                                int *held, di_error *err);

/* di_queue_hand_back returns a job owner holds to pending, due after delay_s
 * seconds, keeping its checkpoint; message (may be NULL) is kept as the last error. */
DI_MUSTCHECK int di_queue_hand_back(di_pg *pg, const char *job_id, const char *owner,
                                    double delay_s, const char *message, di_error *err);

#endif
