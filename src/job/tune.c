/* tune.c - see tune.h. A change of the limit is followed by a warm-up of
 * `limit` batches, not measured (they started under the old limit), then by
 * a measured window of 3 x limit batches. */
#include "job/tune.h"

/* start_window begins the warm-up and the measurement for the current limit. */
static void start_window(di_tune *t) {
    t->in_window = -t->limit; /* negative: warming up */
    t->window = 3 * t->limit;
    t->rows = 0;
}

void di_tune_init(di_tune *t, int max, double now) {
    t->max = max > 0 ? max : 1;
    t->limit = t->max < 2 ? t->max : 2;
    t->settled = t->limit == t->max;
    t->best_rate = 0;
    t->best_limit = t->limit;
    t->started = now;
    start_window(t);
}

int di_tune_batch(di_tune *t, int64_t rows, double now) {
    if (t->settled)
        return t->limit;
    if (t->in_window < 0) {
        if (++t->in_window == 0)
            t->started = now;
        return t->limit;
    }
    t->rows += rows;
    if (++t->in_window < t->window)
        return t->limit;
    double secs = now - t->started;
    double rate = secs > 0 ? (double)t->rows / secs : 0;
    if (t->best_rate == 0 || rate >= 1.1 * t->best_rate) {
        t->best_rate = rate;
        t->best_limit = t->limit;
        if (t->limit < t->max) {
            t->limit++;
            start_window(t);
        } else {
            t->settled = 1;
        }
    } else {
        t->limit = t->best_limit;
        t->settled = 1;
    }
    return t->limit;
}
