/* janitor.c - the spool directory does not grow forever: every sweep period,
 * the files of uploads whose jobs completed are removed, and those of failed
 * jobs once DSA_INGEST_SPOOL_RETENTION_SECONDS have passed (until then `jobs
 * retry` can run them again). Only paths of the spool's own layout
 * (SPOOL/<32 hex>/<name>) are ever removed, whatever a job row says. Several
 * serve replicas may sweep at once: removing a removed file is harmless. */
#include "http/serve.h"
#include "sink/pg.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* di_spool_owned checks the layout upload.c creates, character by character. */
int di_spool_owned(const char *spool_dir, const char *path, char *dir, size_t dirsz) {
    size_t n = strlen(spool_dir);
    if (strncmp(path, spool_dir, n) != 0 || path[n] != '/')
        return 0;
    const char *id = path + n + 1;
    if (strspn(id, "0123456789abcdef") != 32 || id[32] != '/')
        return 0;
    const char *name = id + 33;
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    return snprintf(dir, dirsz, "%.*s", (int)(name - 1 - path), path) < (int)dirsz;
}

#define SWEEP_SQL                                                                                  \
    "SELECT run_parameters->>'source' FROM dsa_jobs.analysis_runs WHERE run_type = 'import' "      \
    "AND left(run_parameters->>'source', length($1) + 1) = $1 || '/' "                             \
    "AND completed_at > now() - interval '7 days' AND (status = 'completed' OR (status = "         \
    "'failed' AND completed_at < now() - make_interval(secs => $2::int)))"

/* sweep removes what the finished jobs no longer need; the count removed. */
static int sweep(di_serve *s, di_error *err) {
    di_pg pg;
    char secs[24];
    snprintf(secs, sizeof secs, "%ld", s->o.spool_retention_s);
    const char *p[] = {s->o.spool_dir, secs};
    if (di_pg_connect(&pg, s->o.conninfo, err))
        return -1;
    PGresult *r = di_pg_exec(&pg, SWEEP_SQL, 2, p, err);
    int removed = r ? 0 : -1;
    for (int i = 0; r && i < PQntuples(r); i++) {
        char dir[2048];
        const char *path = PQgetvalue(r, i, 0);
        if (!di_spool_owned(s->o.spool_dir, path, dir, sizeof dir))
            continue;
        if (unlink(path) == 0)
            removed++;
        rmdir(dir);
    }
    PQclear(r);
    di_pg_close(&pg);
    return removed;
}

/* janitor sweeps every period until the server stops. */
static void *janitor(void *arg) {
    di_serve *s = arg;
    while (!s->stopping) {
        di_error err;
        di_error_clear(&err);
        int n = sweep(s, &err);
        if (n > 0)
            di_serve_log(s, "serve: removed %d spooled upload%s of finished jobs", n,
                         n == 1 ? "" : "s");
        for (long t = 0; t < s->o.spool_sweep_s * 4 && !s->stopping; t++)
            nanosleep(&(struct timespec){0, 250000000L}, NULL);
    }
    return NULL;
}

/* di_janitor_start runs the sweeps in their own thread (only with a spool). */
int di_janitor_start(di_serve *s, di_error *err) {
    if (!s->o.spool_dir)
        return 0;
    if (pthread_create(&s->janitor, NULL, janitor, s) != 0)
        return di_error_set(err, DI_ERR_INTERNAL, "cannot start the spool janitor thread");
    s->janitor_started = 1;
    return 0;
}

/* di_janitor_stop ends the sweeps; an ongoing one finishes first. */
void di_janitor_stop(di_serve *s) {
    s->stopping = 1;
    if (s->janitor_started)
        pthread_join(s->janitor, NULL);
    s->janitor_started = 0;
}
