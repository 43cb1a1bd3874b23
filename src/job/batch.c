/* batch.c - the batch transaction. Rows go out sorted by hash with repeated
 * content sent once: index pages are visited in key order, concurrent
 * batches take their row locks in one global order (so two loaders that
 * insert the same new content wait for each other but never deadlock), and
 * the dedup of dsa_core.rows needs no DISTINCT in the database. */
#include "job/batch.h"
#include "job/catalog.h"
#include "job/stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX_BYTES ((size_t)1 << 30)   /* a batch of huge rows still fits in one COPY */
#define COPY_PIECE      ((size_t)256 << 10) /* COPY text is sent in pieces of this size */

void di_batch_init(di_batch *b) {
    memset(b, 0, sizeof *b);
    di_buf_init(&b->arena, BATCH_MAX_BYTES);
}

void di_batch_cleanup(di_batch *b) {
    di_buf_cleanup(&b->arena);
    free(b->rows);
    free(b->end_progress);
    memset(b, 0, sizeof *b);
}

void di_batch_reset(di_batch *b) {
    di_buf_reset(&b->arena);
    b->nrows = 0;
    b->seq = 0;
    b->table[0] = '\0';
    b->row_from = b->row_to = 0;
    b->rows_covered = 0;
    free(b->end_progress);
    b->end_progress = NULL;
    b->end_rows = 0;
    b->bytes_read = 0;
}

int di_batch_add(di_batch *b, const char *hash, int64_t row, const char *json, size_t len) {
    if (b->nrows == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 1024;
        di_batch_row *rows = realloc(b->rows, cap * sizeof *rows);
        if (!rows)
            return -1;
        b->rows = rows;
        b->cap = cap;
    }
    size_t off = b->arena.len;
    if (di_buf_append(&b->arena, json, len))
        return -1;
    di_batch_row *r = &b->rows[b->nrows++];
    memcpy(r->hash, hash, DI_HASH_HEX);
    r->row = row;
    r->off = off;
    r->len = len;
    return 0;
}

/* by_hash orders rows by hash, then by row number (so the first of equal
 * contents is the one that carries the data). */
static int by_hash(const void *a, const void *b) {
    const di_batch_row *x = a, *y = b;
    int c = memcmp(x->hash, y->hash, DI_HASH_HEX);
    if (c)
        return c;
    return x->row < y->row ? -1 : x->row > y->row;
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

/* copy_rows streams sorted rows [from, to) into table as COPY text: hash,
 * logical row id, and the JSON for the first row of each content (\N, SQL
 * NULL, for repeats: equal hashes are neighbours). */
static int copy_rows(di_pg *pg, const di_batch *b, size_t from, size_t to, const char *table,
                     di_buf *out, di_error *err) {
    char sql[160];
    snprintf(sql, sizeof sql, "COPY %s (row_hash, logical_row_id, data) FROM STDIN", table);
    if (di_pg_copy_begin(pg, sql, err))
        return -1;
    int rc = 0;
    di_buf_reset(out);
    for (size_t i = from; i < to && rc == 0; i++) {
        const di_batch_row *r = &b->rows[i];
        int repeat = i > 0 && memcmp(r->hash, b->rows[i - 1].hash, DI_HASH_HEX) == 0;
        if (di_buf_append(out, r->hash, DI_HASH_HEX) || di_buf_putc(out, '\t') ||
            put_copy_text(out, b->table, strlen(b->table)) ||
            di_buf_printf(out, ":%lld\t", (long long)r->row) ||
            (repeat ? di_buf_append(out, "\\N", 2)
                    : put_copy_text(out, b->arena.data + r->off, r->len)) ||
            di_buf_putc(out, '\n')) {
            rc = di_error_set(err, DI_ERR_INTERNAL, "out of memory for the COPY of a batch");
            break;
        }
        if (out->len >= COPY_PIECE) {
            rc = di_pg_copy_put(pg, out->data, out->len, err);
            di_buf_reset(out);
        }
    }
    if (rc == 0 && out->len)
        rc = di_pg_copy_put(pg, out->data, out->len, err);
    di_buf_reset(out);
    di_error ignored;
    if (di_pg_copy_end(pg, rc ? &ignored : err))
        rc = -1;
    return rc;
}

int di_batch_prepare(di_pg *pg, long lease_s, di_error *err) {
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%lds", lease_s);
    const char *p[] = {timeout};
    return di_pg_cmd(pg, "SELECT set_config('idle_in_transaction_session_timeout', $1, false)", 1,
                     p, err) ||
           di_pg_cmd(pg,
                     "CREATE TEMP TABLE IF NOT EXISTS di_stage (row_hash text NOT NULL, "
                     "logical_row_id text NOT NULL, data text) ON COMMIT DELETE ROWS",
                     0, NULL, err);
}

/* stage_rows sends a sorted batch into the job's staging tables: one COPY
 * per staging table, each taking the run of rows whose hashes it holds. */
static int stage_rows(di_pg *pg, const di_batch *b, const di_batch_job *job, di_buf *scratch,
                      di_error *err) {
    for (size_t from = 0; from < b->nrows;) {
        int part = di_stage_part(b->rows[from].hash, job->stage_parts);
        size_t to = from + 1;
        while (to < b->nrows && di_stage_part(b->rows[to].hash, job->stage_parts) == part)
            to++;
        char table[80];
        di_stage_table(job->job_id, part, table);
        if (copy_rows(pg, b, from, to, table, scratch, err))
            return -1;
        from = to;
    }
    return 0;
}

int di_batch_load(di_pg *pg, di_batch *b, const di_batch_job *job, di_buf *scratch, di_error *err) {
    qsort(b->rows, b->nrows, sizeof *b->rows, by_hash);
    if (job->stage_parts > 0) {
        if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) || stage_rows(pg, b, job, scratch, err)) {
            di_pg_rollback(pg);
            return -1;
        }
        return 0;
    }
    const char *p[] = {job->commit_id};
    /* One statement: the CTE adds the new contents in hash order (its
     * ON CONFLICT waits on, never deadlocks with, a concurrent batch holding
     * the same key), the outer INSERT writes the manifest. */
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) ||
        (b->nrows > 0 &&
         (copy_rows(pg, b, 0, b->nrows, "di_stage", scratch, err) ||
          di_pg_cmd(pg,
                    "WITH new_rows AS (INSERT INTO dsa_core.rows (row_hash, data) "
                    "SELECT row_hash, data::jsonb FROM di_stage WHERE data IS NOT NULL "
                    "ORDER BY row_hash ON CONFLICT (row_hash) DO NOTHING) "
                    "INSERT INTO dsa_core.commit_rows (commit_id, logical_row_id, row_hash) "
                    "SELECT $1, logical_row_id, row_hash FROM di_stage",
                    1, p, err)))) {
        di_pg_rollback(pg);
        return -1;
    }
    return 0;
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

int di_batch_publish(di_pg *pg, const di_batch_job *job, const char *progress_json, di_error *err) {
    if (PQtransactionStatus(pg->conn) == PQTRANS_IDLE && di_pg_cmd(pg, "BEGIN", 0, NULL, err))
        return -1;
    if (advance_job(pg, job, progress_json, err) || di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        return -1;
    }
    return 0;
}
