/* batch.c - the batch transaction. The staging table is a temporary table
 * emptied at every commit; rows are deduplicated in the database by primary
 * key (ON CONFLICT DO NOTHING) so content shared between commits is stored once. */
#include "job/batch.h"
#include "job/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX_BYTES ((size_t)1 << 30) /* a batch of huge rows still fits in one COPY */

void di_batch_init(di_batch *b) {
    di_buf_init(&b->copy, BATCH_MAX_BYTES);
    b->rows = 0;
}

void di_batch_cleanup(di_batch *b) {
    di_buf_cleanup(&b->copy);
}

/* put_copy_text appends s escaped for COPY's text format: backslash, tab, LF, CR. */
static int put_copy_text(di_buf *out, const char *s, size_t n) {
    if (di_buf_reserve(out, 2 * n))
        return -1;
    char *w = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
            *w++ = '\\';
            c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
        }
        *w++ = c;
    }
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return 0;
}

int di_batch_add(di_batch *b, const char *hash, const char *table_key, int64_t row,
                 const char *json, size_t len) {
    if (di_buf_append(&b->copy, hash, strlen(hash)) || di_buf_putc(&b->copy, '\t') ||
        put_copy_text(&b->copy, table_key, strlen(table_key)) ||
        di_buf_printf(&b->copy, ":%lld\t", (long long)row) || put_copy_text(&b->copy, json, len) ||
        di_buf_putc(&b->copy, '\n'))
        return -1;
    b->rows++;
    return 0;
}

int di_batch_prepare(di_pg *pg, long lease_s, di_error *err) {
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%lds", lease_s);
    const char *p[] = {timeout};
    return di_pg_cmd(pg, "SELECT set_config('idle_in_transaction_session_timeout', $1, false)", 1,
                     p, err) ||
           di_pg_cmd(pg,
                     "CREATE TEMP TABLE IF NOT EXISTS di_stage (row_hash text NOT NULL, "
                     "logical_row_id text NOT NULL, data text NOT NULL) ON COMMIT DELETE ROWS",
                     0, NULL, err);
}

/* advance_job writes the checkpoint and renews the lease; zero rows updated
 * means the job is no longer ours (lease lost, cancelled), so the batch must
 * not commit: this is the fence that keeps a paused worker from writing. */
static int advance_job(di_pg *pg, const di_batch_job *job, const char *progress, di_error *err) {
    char lease[24];
    snprintf(lease, sizeof lease, "%ld", job->lease_s);
    const char *p[] = {job->job_id, progress, job->owner, lease};
    return di_catalog_fenced(pg,
                             "UPDATE dsa_jobs.analysis_runs SET run_parameters = "
                             "jsonb_set(run_parameters, '{progress}', $2::jsonb), "
                             "lease_expires_at = now() + make_interval(secs => $4::int) "
                             "WHERE id = $1 AND status = 'running' AND worker_id = $3 "
                             "AND lease_expires_at > clock_timestamp()",
                             4, p, job->job_id, job->owner, err);
}

int di_batch_commit(di_pg *pg, di_batch *b, const di_batch_job *job, const char *progress_json,
                    di_error *err) {
    const char *p[] = {job->commit_id};
    /* The fence comes first: its UPDATE locks the job row until COMMIT, so a
     * writer that lost its lease never reaches the inserts, and no claimer can
     * take the job while the batch is in flight (claims skip locked rows). */
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) || advance_job(pg, job, progress_json, err) ||
        (b->rows > 0 &&
         (di_pg_copy(pg, "COPY di_stage (row_hash, logical_row_id, data) FROM STDIN", b->copy.data,
                     b->copy.len, err) ||
          di_pg_cmd(pg,
                    "INSERT INTO dsa_core.rows (row_hash, data) "
                    "SELECT DISTINCT ON (row_hash) row_hash, data::jsonb FROM di_stage "
                    "ORDER BY row_hash ON CONFLICT (row_hash) DO NOTHING",
                    0, NULL, err) ||
          di_pg_cmd(pg,
                    "INSERT INTO dsa_core.commit_rows (commit_id, logical_row_id, row_hash) "
                    "SELECT $1, logical_row_id, row_hash FROM di_stage",
                    1, p, err))) ||
        di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        return -1;
    }
    di_buf_reset(&b->copy);
    b->rows = 0;
    return 0;
}
