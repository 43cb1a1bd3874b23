/* heartbeat.h - keeps a running job's lease alive from a thread of its own
 * (with its own connection), so a long network stall does not cost the job;
 * a paused or dead process stops renewing and another worker takes over. */
#ifndef DI_JOB_HEARTBEAT_H
#define DI_JOB_HEARTBEAT_H

#include <pthread.h>

typedef struct di_heartbeat {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
    int stop;
    volatile int lost;                     /* the lease was found taken: stop writing */
    const char *conninfo, *job_id, *owner; /* borrowed for the thread's life */
    long lease_s;
} di_heartbeat;

/* di_heartbeat_start renews job_id's lease every lease_s / 4 seconds. */
int di_heartbeat_start(di_heartbeat *h, const char *conninfo, const char *job_id, const char *owner,
                       long lease_s);
/* di_heartbeat_stop ends the thread (harmless when it never started). */
void di_heartbeat_stop(di_heartbeat *h);

#endif
