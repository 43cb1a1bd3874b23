/* prefetch.h - private to src/read/: a read-ahead thread under the reader.
 * One thread calls a fill function (source + decoder) into a fixed ring of
 * reusable chunks while the caller parses the chunks before them, so inflating
 * and parsing run on two cores. The bytes, and an error after them, reach the
 * caller exactly in the order fill produced them: a read-ahead changes when
 * the work is done, never what the caller sees. */
#ifndef DI_READ_PREFETCH_H
#define DI_READ_PREFETCH_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/error.h"

typedef struct di_prefetch di_prefetch;

/* di_prefetch_fn fills buf with up to cap bytes (*n == 0: the end) and sets
 * *tag, even when it fails, to a number the caller gets back with those bytes
 * (the reader: the decoder's compressed offset after them). 0, or -1 with err
 * set. It runs on the prefetch thread, inside di_prefetch_lock (pf is passed
 * so it may unlock around a wait, see below). */
typedef int (*di_prefetch_fn)(void *ctx, di_prefetch *pf, void *buf, size_t cap, size_t *n,
                              int64_t *tag, di_error *err);

/* di_prefetch_start starts the thread over fill(ctx) with nchunks chunks of
 * chunk bytes, allocated now and reused. ctx is borrowed: nothing else may use
 * what fill touches until di_prefetch_stop, except under di_prefetch_lock.
 * Returns NULL with err set. */
di_prefetch *di_prefetch_start(di_prefetch_fn fill, void *ctx, size_t nchunks, size_t chunk,
                               di_error *err);

/* di_prefetch_read copies up to cap of the next bytes into buf: it waits for
 * the first chunk only, then takes what is ready. *n == 0 at the end; -1 with
 * err once the bytes before fill's error are all handed out (sticky). *tag is
 * the tag of the last chunk looked at: the one the last byte came from, or
 * the one that carries the end or the error. */
DI_MUSTCHECK int di_prefetch_read(di_prefetch *pf, void *buf, size_t cap, size_t *n, int64_t *tag,
                                  di_error *err);

/* di_prefetch_lock / unlock keep fill from running meanwhile (the reader
 * describes a decoder point under it). fill itself may call unlock and lock
 * around a wait that touches none of the shared state (a network read), so
 * the lock is never held for longer than a decode step. */
void di_prefetch_lock(di_prefetch *pf);
void di_prefetch_unlock(di_prefetch *pf);

/* di_prefetch_stop ends the thread (after the fill call in flight returns)
 * and frees everything. Accepts NULL. */
void di_prefetch_stop(di_prefetch *pf);

#endif
