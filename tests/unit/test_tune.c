/* test_tune.c - the loader tuner climbs while one more connection pays off
 * by a tenth, steps back and settles when it does not, and never leaves
 * [1, max]. Time is simulated: each batch of 1000 rows commits after
 * 1000 / rate(limit) seconds. */
#include "check.h"
#include "job/tune.h"

/* run feeds the tuner batches whose rate depends on the limit, returns the
 * limit it settled on (or the last one after many batches). */
static int run(int max, const double *rate_by_limit) {
    di_tune t;
    double now = 0;
    di_tune_init(&t, max, now);
    for (int i = 0; i < 500 && !t.settled; i++) {
        now += 1000.0 / rate_by_limit[t.limit];
        di_tune_batch(&t, 1000, now);
        CHECK(t.limit >= 1 && t.limit <= max);
    }
    CHECK(t.settled);
    return t.limit;
}

int main(void) {
    /* index = concurrent loaders; [0] unused */
    const double two_cores[] = {0, 20000, 38000, 30000, 26000, 24000, 22000, 21000, 20000};
    const double many_cores[] = {0, 20000, 38000, 55000, 70000, 80000, 84000, 85000, 85500};
    const double flat[] = {0, 20000, 20000, 20000, 20000, 20000, 20000, 20000, 20000};
    CHECK_INT(run(4, two_cores), 2);
    CHECK_INT(run(8, many_cores), 5); /* 5→6 gains under a tenth */
    CHECK_INT(run(8, flat), 2);       /* no gain: stays at the start */
    CHECK_INT(run(1, two_cores), 1);
    CHECK_INT(run(2, many_cores), 2);
    CHECK_INT(run(3, many_cores), 3);
    return check_report();
}
