/* scan_work.h - the second half of `dsa-ingest scan` on a thread of its own.
 * The reading thread copies each record into a block; full blocks go, in
 * order, through a fixed ring to one worker that encodes, hashes and profiles
 * them (scan_work_fn). So parsing and encoding run on two cores while the
 * results are exactly those of one thread doing both. */
#ifndef DI_CLI_SCAN_WORK_H
#define DI_CLI_SCAN_WORK_H

#include "dsa_ingest/parse.h"

/* scan_work_fn handles one record on the worker (fields valid during the
 * call only); non-zero stops the work: every later call of the reading side
 * then fails. */
typedef int (*scan_work_fn)(void *ctx, const di_record *rec);

typedef struct scan_work scan_work;

/* scan_work_start starts the worker over fn(ctx). ctx is the worker's from now
 * on, and the caller's again only between scan_work_sync and the next add.
 * NULL when out of memory or threads. */
scan_work *scan_work_start(scan_work_fn fn, void *ctx);

/* scan_work_add copies rec (its fields, lengths, kinds and names) into the
 * current block and hands over the block when it is full. -1 when fn failed
 * or memory ran out. */
int scan_work_add(scan_work *w, const di_record *rec);

/* scan_work_sync hands over the current block and waits until the worker has
 * handled every record so far (a new table: the caller updates ctx). -1 when
 * fn failed or memory ran out. */
int scan_work_sync(scan_work *w);

/* scan_work_stop ends the worker (after the block in hand, without handling
 * the rest) and frees everything. Accepts NULL. */
void scan_work_stop(scan_work *w);

#endif
