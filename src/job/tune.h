/* tune.h - how many of a job's loading connections load at once.
 *
 * IMPORT_PARALLEL_WORKERS says how many connections a job may use, not how
 * many help: a database with two cores is slower with four concurrent batch
 * inserts than with two (they contend for the CPUs, the WAL and relation
 * extension), one with sixteen cores is faster. The tuner finds out while the
 * job runs, by hill climbing on committed rows per second: it starts at
 * two (or the maximum, if lower), measures a window of batches, tries one
 * more, keeps it only if the rate rose by at least a tenth, and settles on
 * the best count it saw. A pure state machine: the loader feeds it every
 * committed batch and obeys its limit. */
#ifndef DI_JOB_TUNE_H
#define DI_JOB_TUNE_H

#include <stdint.h>

typedef struct di_tune {
    int max;        /* IMPORT_PARALLEL_WORKERS */
    int limit;      /* batches that may load at once now */
    int settled;    /* the search is over */
    int window;     /* batches per measurement */
    int in_window;  /* batches committed in the current window */
    int64_t rows;   /* rows committed in the current window */
    double started; /* when the current window began (seconds, any clock) */
    double best_rate;
    int best_limit;
} di_tune;

/* di_tune_init starts the search with at most max loaders at once. */
void di_tune_init(di_tune *t, int max, double now);

/* di_tune_batch records a committed batch of rows at time now; returns the
 * limit to use from here. */
int di_tune_batch(di_tune *t, int64_t rows, double now);

#endif
