/* heartbeat.c - the lease renewal thread of a running job. */
#include "job/heartbeat.h"
#include "job/queue.h"

#include <string.h>
#include <time.h>

/* wait_period sleeps one renewal period or until stopped; 1 when stopped. */
static int wait_period(di_heartbeat *h) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long ms = h->lease_s * 1000 / 4;
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&h->mu);
    while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0) {
    }
    int stop = h->stop;
    pthread_mutex_unlock(&h->mu);
    return stop;
}

/* beat renews until stopped or the lease is gone; a database that is away
 * for a while is retried at the next period (the lease may then lapse). */
static void *beat(void *arg) {
    di_heartbeat *h = arg;
    di_pg pg = {0};
    di_error err;
    while (!wait_period(h)) {
        int held = 1;
        if (!pg.conn && di_pg_connect(&pg, h->conninfo, &err))
            continue;
        if (di_queue_renew(&pg, h->job_id, h->owner, h->lease_s, &held, &err)) {
            di_pg_close(&pg);
            continue;
        }
        if (!held) {
            h->lost = 1;
            break;
        }
    }
    di_pg_close(&pg);
    return NULL;
}

int di_heartbeat_start(di_heartbeat *h, const char *conninfo, const char *job_id, const char *owner,
                       long lease_s) {
    memset(h, 0, sizeof *h);
    h->conninfo = conninfo;
    h->job_id = job_id;
    h->owner = owner;
    h->lease_s = lease_s;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, beat, h) != 0)
        return -1;
    h->running = 1;
    return 0;
}

void di_heartbeat_stop(di_heartbeat *h) {
    if (!h->running)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    h->running = 0;
}
