/* stage.c - staging tables of a staged load and their merge (see stage.h). */
#include "job/stage.h"
#include "job/catalog.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

void di_stage_table(const char *job_id, int part, char out[80]) {
    char id[33];
    size_t n = 0;
    for (const char *c = job_id; *c && n < sizeof id - 1; c++)
        if ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))
            id[n++] = *c; /* a uuid's hex digits, nothing that needs quoting */
    id[n] = '\0';
    if (part < 0)
        snprintf(out, 80, "dsa_ingest.stage_%s", id);
    else
        snprintf(out, 80, "dsa_ingest.stage_%s_%d", id, part);
}

int di_stage_part(const char *hash, int parts) {
    char c = hash[0];
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
    return digit * parts / 16;
}

int di_stage_create(di_pg *pg, const char *job_id, int parts, di_error *err) {
    char t[80], sql[256];
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err))
        return -1;
    /* Staging tables are written once, read once and dropped: autovacuum (which
     * PostgreSQL 13+ starts on tables that only get inserts) has nothing to do
     * in them during a long import. */
    for (int p = -1; p < parts; p++) {
        di_stage_table(job_id, p, t);
        if (p < 0)
            snprintf(sql, sizeof sql, "CREATE UNLOGGED TABLE IF NOT EXISTS %s (intact boolean)", t);
        else
            snprintf(sql, sizeof sql,
                     "CREATE UNLOGGED TABLE IF NOT EXISTS %s (row_hash text NOT NULL, "
                     "logical_row_id text NOT NULL, data text) WITH (autovacuum_enabled = false)",
                     t);
        if (di_pg_cmd(pg, sql, 0, NULL, err))
            goto fail;
    }
    di_stage_table(job_id, -1, t);
    snprintf(sql, sizeof sql, "INSERT INTO %s SELECT true WHERE NOT EXISTS (SELECT 1 FROM %s)", t,
             t);
    if (di_pg_cmd(pg, sql, 0, NULL, err) || di_pg_cmd(pg, "COMMIT", 0, NULL, err))
        goto fail;
    return 0;
fail:
    di_pg_rollback(pg);
    return -1;
}

int di_stage_intact(di_pg *pg, const char *job_id, int *intact, di_error *err) {
    char t[80];
    di_stage_table(job_id, -1, t);
    const char *p[] = {t};
    long exists = 0, rows = 0;
    if (di_pg_long(pg, "SELECT count(*) FROM pg_class WHERE oid = to_regclass($1)", 1, p, &exists,
                   err))
        return -1;
    if (exists) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", t);
        if (di_pg_long(pg, sql, 0, NULL, &rows, err))
            return -1;
    }
    *intact = rows == 1;
    return 0;
}

int di_stage_drop(di_pg *pg, const char *job_id, di_error *err) {
    /* Every part a job can have, in one statement: DROP of a missing table
     * is only a notice, and one statement takes the locks in one order. */
    char sql[100 + 82 * (DI_STAGE_PARTS + 1)];
    size_t n = (size_t)snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS ");
    for (int p = -1; p < DI_STAGE_PARTS; p++) {
        char t[80];
        di_stage_table(job_id, p, t);
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s%s", p < 0 ? "" : ", ", t);
    }
    return di_pg_cmd(pg, sql, 0, NULL, err);
}

/* The two targets of the merge: TARGET_ROWS fills dsa_core.rows, the other
 * the manifest. */
enum { TARGET_ROWS = 0, TARGET_MANIFEST = 1 };

/* What the merge connections share, under mu: which parts of each target
 * are taken (being merged or merged) and whether one of them failed. */
typedef struct shared {
    pthread_mutex_t mu;
    di_stage_state *st;
    unsigned taken[2];
    int failed;
} shared;

typedef struct merge {
    const char *conninfo;
    const di_batch_job *job;
    shared *sh;
    int prefer; /* the target this connection starts with */
    int rc;
    int stopped; /* rc is the other connection's failure, not its own */
    di_error err;
} merge;

static unsigned *merged_mask(di_stage_state *st, int target) {
    return target == TARGET_ROWS ? &st->rows_merged : &st->manifest_merged;
}

/* take picks the next step for a connection that prefers target `prefer`:
 * the lowest part of its own target not taken yet, else the highest of the
 * other's (so two connections that meet there work from opposite ends, on
 * index pages far apart). 0 when nothing is left. Under mu. */
static int take(shared *sh, int prefer, int *target, int *part) {
    for (int k = 0; k < 2; k++) {
        int t = k == 0 ? prefer : 1 - prefer;
        unsigned busy = sh->taken[t] | *merged_mask(sh->st, t);
        for (int i = 0; i < sh->st->parts; i++) {
            int p = k == 0 ? i : sh->st->parts - 1 - i;
            if (!(busy & (1u << p))) {
                sh->taken[t] |= 1u << p;
                *target = t;
                *part = p;
                return 1;
            }
        }
    }
    return 0;
}

/* The rows step inserts what dsa_core.rows lacks with an anti-join that
 * probes its primary key in hash order (the staging rows are sorted first:
 * probing a 225 MB key in that order took 6.2 s against 8.0 s in the staging
 * tables' order; join methods that would read the whole table are off for
 * the step). ON CONFLICT DO NOTHING's speculative insertion logs a
 * confirmation for every row: 10% more WAL for 2M new rows (988 MB against
 * 892), and the import was faster without it in 5 of 7 A/B pairs. Another job
 * that commits one of the same hashes after the step's snapshot makes it fail
 * with a unique violation; the step is then done again with ON CONFLICT. */
static const char rows_missing[] =
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; "
    "INSERT INTO dsa_core.rows (row_hash, data) SELECT s.row_hash, s.data::jsonb FROM "
    "(SELECT row_hash, data FROM %s WHERE data IS NOT NULL ORDER BY row_hash) s "
    "WHERE NOT EXISTS (SELECT 1 FROM dsa_core.rows r WHERE r.row_hash = s.row_hash) "
    "ORDER BY s.row_hash";
static const char rows_on_conflict[] =
    "INSERT INTO dsa_core.rows (row_hash, data) SELECT row_hash, data::jsonb FROM %s "
    "WHERE data IS NOT NULL ORDER BY row_hash ON CONFLICT (row_hash) DO NOTHING";
static const char manifest_part[] =
    "INSERT INTO dsa_core.commit_rows (commit_id, logical_row_id, row_hash) "
    "SELECT $1, logical_row_id, row_hash FROM %s ORDER BY row_hash";

/* step_tx moves staging table `part` into one target with `form` and adds the
 * part to the checkpoint's list for it, fenced by the lease, in one
 * transaction. Its rows go in hash order: concurrent writers of the same keys
 * (another job's batch or merge) take their locks in one order and never
 * deadlock. */
static int step_tx(di_pg *pg, const di_batch_job *job, int target, int part, const char *form,
                   di_error *err) {
    char t[80], sql[512], lease[24], done[12];
    di_stage_table(job->job_id, part, t);
    snprintf(sql, sizeof sql, form, t);
    snprintf(lease, sizeof lease, "%ld", job->lease_s);
    snprintf(done, sizeof done, "%d", part);
    const char *ins[] = {job->commit_id};
    const char *p[] = {job->job_id,
                       target == TARGET_ROWS ? "{progress,checkpoint,stage,rows_merged}"
                                             : "{progress,checkpoint,stage,manifest_merged}",
                       done, job->owner, lease};
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) ||
        di_pg_cmd(pg, sql, target == TARGET_ROWS ? 0 : 1, ins, err) ||
        di_catalog_fenced(pg,
                          "UPDATE dsa_jobs.analysis_runs SET run_parameters = "
                          "jsonb_set(run_parameters, $2::text[], coalesce(run_parameters #> "
                          "$2::text[], '[]'::jsonb) || to_jsonb($3::int)), "
                          "lease_expires_at = now() + make_interval(secs => $5::int) "
                          "WHERE id = $1 AND status = 'running' AND worker_id = $4 "
                          "AND lease_expires_at > clock_timestamp()",
                          5, p, job->job_id, job->owner, err) ||
        di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        return -1;
    }
    return 0;
}

/* merge_step is one step of the merge: part `part` into `target`. */
static int merge_step(di_pg *pg, const di_batch_job *job, int target, int part, di_error *err) {
    if (target == TARGET_MANIFEST)
        return step_tx(pg, job, target, part, manifest_part, err);
    if (step_tx(pg, job, target, part, rows_missing, err) == 0)
        return 0;
    if (strcmp(pg->sqlstate, "23505") != 0) /* unique_violation: a concurrent job's row */
        return -1;
    return step_tx(pg, job, target, part, rows_on_conflict, err);
}

/* merge_main takes steps until none is left; the other connection's failure
 * stops it before its next step. */
static void *merge_main(void *arg) {
    merge *m = arg;
    shared *sh = m->sh;
    di_pg pg = {0};
    m->rc = di_pg_connect(&pg, m->conninfo, &m->err);
    while (m->rc == 0) {
        int target, part;
        pthread_mutex_lock(&sh->mu);
        int stop = sh->failed, more = !stop && take(sh, m->prefer, &target, &part);
        pthread_mutex_unlock(&sh->mu);
        if (stop) {
            m->rc = -1;
            m->stopped = 1;
        }
        if (!more)
            break;
        m->rc = merge_step(&pg, m->job, target, part, &m->err);
        pthread_mutex_lock(&sh->mu);
        if (m->rc)
            sh->failed = 1;
        else
            *merged_mask(sh->st, target) |= 1u << part;
        pthread_mutex_unlock(&sh->mu);
    }
    if (m->rc && !m->stopped) {
        pthread_mutex_lock(&sh->mu);
        sh->failed = 1;
        pthread_mutex_unlock(&sh->mu);
    }
    di_pg_close(&pg);
    return NULL;
}

int di_stage_merged(const di_stage_state *st) {
    unsigned all = (1u << st->parts) - 1;
    return st->rows_merged == all && st->manifest_merged == all;
}

int di_stage_merge(const char *conninfo, const di_batch_job *job, di_stage_state *st,
                   int connections, di_error *err) {
    shared sh = {.st = st};
    pthread_mutex_init(&sh.mu, NULL);
    merge m[2];
    for (int i = 0; i < 2; i++)
        m[i] = (merge){conninfo, job, &sh, i == 0 ? TARGET_ROWS : TARGET_MANIFEST, 0, 0, {0}};
    pthread_t th;
    int threaded = connections >= 2 && pthread_create(&th, NULL, merge_main, &m[1]) == 0;
    merge_main(&m[0]); /* alone, it does every step */
    if (threaded)
        pthread_join(th, NULL);
    pthread_mutex_destroy(&sh.mu);
    for (int i = 0; i < (threaded ? 2 : 1); i++)
        if (m[i].rc && !m[i].stopped) {
            *err = m[i].err;
            return -1;
        }
    return 0;
}
