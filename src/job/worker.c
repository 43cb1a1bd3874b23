/* worker.c - the worker's slots. Each slot is a thread with two connections:
 * one that LISTENs and claims, and the job runner's own. A slot claims the
 * oldest claimable job (queue.c), runs it, and claims again; with nothing to
 * do it sleeps on its LISTEN socket until a NOTIFY or the poll interval. */
#include "dsa_ingest/worker.h"
#include "job/queue.h"
#include "sink/pg.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

typedef struct slot {
    const di_worker_opts *o;
    int index;
    char owner[160];
    di_pg pg; /* LISTEN + claims */
} slot;

/* slot_log sends a line prefixed with the slot's owner id. */
static void slot_log(const slot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void slot_log(const slot *s, const char *fmt, ...) {
    if (!s->o->log)
        return;
    char line[1400];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(line, sizeof line, "%s: ", s->owner);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    s->o->log(s->o->log_ctx, line);
}

/* stopping tells whether a signal asked the worker to stop. */
static int stopping(const slot *s) {
    return s->o->stop && *s->o->stop;
}

/* stat_add adds to a counter shared by the slots. */
static void stat_add(const slot *s, int64_t *field, int64_t v) {
    if (s->o->stats)
        __atomic_add_fetch(field, v, __ATOMIC_RELAXED);
}

/* slot_connect opens the slot's connection and LISTENs. */
static int slot_connect(slot *s, di_error *err) {
    if (s->pg.conn && PQstatus(s->pg.conn) == CONNECTION_OK)
        return 0;
    di_pg_close(&s->pg);
    return di_pg_connect(&s->pg, s->o->conninfo, err) ||
           di_pg_cmd(&s->pg, "LISTEN dsa_import_jobs", 0, NULL, err);
}

/* wait_for_work sleeps until a NOTIFY, the poll interval, or a stop signal. */
static void wait_for_work(slot *s) {
    time_t until = time(NULL) + s->o->settings->poll_interval_s;
    int sock = PQsocket(s->pg.conn);
    while (!stopping(s) && time(NULL) < until && sock >= 0) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(sock, &fds);
        struct timeval tv = {0, 250000}; /* wake often enough to notice signals */
        if (select(sock + 1, &fds, NULL, NULL, &tv) > 0) {
            PQconsumeInput(s->pg.conn);
            PGnotify *n, *got = NULL;
            while ((n = PQnotifies(s->pg.conn)) != NULL) {
                PQfreemem(got);
                got = n;
            }
            if (got) {
                PQfreemem(got);
                return;
            }
            if (PQstatus(s->pg.conn) != CONNECTION_OK)
                return;
        }
    }
}

/* others_busy tells a --once worker whether jobs remain that it must wait
 * for: pending ones, or running ones not run by this process. */
static int others_busy(slot *s, int *busy, di_error *err) {
    char mine[200];
    snprintf(mine, sizeof mine, "%.*s%%", (int)(strrchr(s->owner, ':') - s->owner + 1), s->owner);
    const char *p[] = {mine};
    long n = 0;
    if (di_pg_long(&s->pg,
                   "SELECT count(*) FROM dsa_jobs.analysis_runs WHERE run_type = "
                   "'import' AND (status = 'pending' OR (status = 'running' AND "
                   "coalesce(worker_id, '') NOT LIKE $1))",
                   1, p, &n, err))
        return -1;
    *busy = n > 0;
    return 0;
}

/* record_outcome counts and logs how a job ended. */
static void record_outcome(slot *s, int rc, const di_job_result *res, const di_error *err) {
    di_worker_stats *st = s->o->stats;
    if (st) {
        stat_add(s, &st->rows, res->rows);
        stat_add(s, &st->bytes, res->bytes_read);
    }
    if (rc == 0 && strcmp(res->status, "completed") != 0) { /* split, or a range counted */
        slot_log(s, "job %s %s", res->job_id, res->status);
        return;
    }
    if (rc == 0) {
        if (st)
            stat_add(s, &st->jobs_completed, 1);
        slot_log(s, "job %s completed: %lld rows, commit %s", res->job_id, (long long)res->rows,
                 res->commit_id);
        return;
    }
    if (st)
        stat_add(s,
                 strcmp(res->status, "failed") == 0 ? &st->jobs_failed
                 : strcmp(res->status, "lost") == 0 ? &st->jobs_lost
                                                    : &st->jobs_handed_back,
                 1);
    slot_log(s, "job %s %s: %s", res->job_id, res->status, err->message);
}

/* slot_log_line adapts the runner's log hook to the slot's prefix. */
static void slot_log_line(void *ctx, const char *line) {
    slot_log(ctx, "%s", line);
}

/* run_claimed runs one claimed job through the job runner. */
static void run_claimed(slot *s, const char *job_id) {
    di_job_result res;
    di_error err;
    di_error_clear(&err);
    di_job_hooks hooks = {NULL, slot_log_line, s, s->owner, s->o->stop};
    slot_log(s, "job %s claimed", job_id);
    if (s->o->stats)
        stat_add(s, &s->o->stats->active, 1);
    int rc = di_job_run(s->o->conninfo, job_id, s->o->settings, &hooks, &res, &err);
    if (s->o->stats)
        stat_add(s, &s->o->stats->active, -1);
    record_outcome(s, rc, &res, &err);
}

/* step claims and runs at most one job: 1 ran one, 0 idle, 2 drained (once), -1 error. */
static int step(slot *s, di_error *err) {
    char job_id[37];
    if (slot_connect(s, err))
        return -1;
    int got = di_queue_claim(&s->pg, s->owner, s->o->settings->lease_s, job_id, err);
    if (got < 0)
        return -1;
    if (got) {
        run_claimed(s, job_id);
        return 1;
    }
    if (s->o->stats)
        stat_add(s, &s->o->stats->claims_empty, 1);
    int busy = 1;
    if (s->o->once && others_busy(s, &busy, err))
        return -1;
    return s->o->once && !busy ? 2 : 0;
}

/* slot_main is a slot's thread: claim, run, wait, until stopped or drained. */
static void *slot_main(void *arg) {
    slot *s = arg;
    di_error err;
    int failures = 0;
    while (!stopping(s)) {
        di_error_clear(&err);
        int rc = step(s, &err);
        if (rc == 2)
            break;
        if (rc < 0) {
            slot_log(s, "queue: %s", err.message);
            di_pg_close(&s->pg);
            sleep((unsigned)(failures < 5 ? 1 << failures++ : 30));
            continue;
        }
        failures = 0;
        if (rc == 0)
            wait_for_work(s);
    }
    di_pg_close(&s->pg);
    return NULL;
}

int di_worker_run(const di_worker_opts *o, di_error *err) {
    int n = o->concurrency > 0 ? o->concurrency : 1;
    slot *slots = calloc((size_t)n, sizeof *slots);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    if (!slots || !threads) {
        free(slots);
        free(threads);
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    }
    int started = 0;
    for (int i = 0; i < n; i++) {
        slots[i].o = o;
        slots[i].index = i;
        di_worker_id(slots[i].owner, sizeof slots[i].owner, i);
        if (pthread_create(&threads[i], NULL, slot_main, &slots[i]) != 0)
            break;
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(slots);
    free(threads);
    if (started < n)
        return di_error_set(err, DI_ERR_INTERNAL, "could start only %d of %d worker slots", started,
                            n);
    return 0;
}
