/* runner.c - the one place that knows every stage: it opens the source at the
 * job's checkpoint, stacks decoder, parser and row encoder on it, and commits
 * batches, each with the checkpoint that lets a killed job resume exactly
 * there. Transient failures reload the checkpoint and go on; input errors fail
 * the job and remove its partial commit. */
#include "decode/decoder_impl.h"
#include "dsa_ingest/decode.h"
#include "dsa_ingest/job.h"
#include "dsa_ingest/parse.h"
#include "dsa_ingest/row.h"
#include "job/batch.h"
#include "job/catalog.h"
#include "job/checkpoint.h"
#include "job/heartbeat.h"
#include "job/queue.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SNIFF_BYTES  16
#define ROW_JSON_MAX ((size_t)1 << 30)

/* The source with its first bytes read ahead for sniffing, replayed on pull. */
typedef struct prefix_pull {
    di_source *src;
    unsigned char head[SNIFF_BYTES];
    size_t head_len, head_pos;
} prefix_pull;

typedef struct run {
    const di_settings *s;
    const di_job_hooks *hooks;
    di_pg pg;
    di_job_row job;
    di_checkpoint cp;
    char display[1024];
    prefix_pull pp;
    di_decoder *dec;
    di_parser *parser;
    di_compression comp;
    di_row_layout layout;
    int have_layout;
    di_buf json;
    di_batch batch;
    long batch_size;
    int warned_rewind;
    struct timespec t0;
    di_heartbeat hb;
} run;

/* now_s is a monotonic clock in seconds. */
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* logf sends one line to the caller's log hook. */
static void run_log(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_log(run *r, const char *fmt, ...) {
    if (!r->hooks || !r->hooks->log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->hooks->log(r->hooks->ctx, line);
}

/* prefix_read replays the sniffed bytes, then reads the source. */
static int prefix_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    prefix_pull *pp = ctx;
    if (pp->head_pos < pp->head_len) {
        size_t k = pp->head_len - pp->head_pos;
        k = k < cap ? k : cap;
        memcpy(buf, pp->head + pp->head_pos, k);
        pp->head_pos += k;
        *n = k;
        return 0;
    }
    return di_source_read(pp->src, buf, cap, n, err);
}

/* decoder_read adapts the decoder to the parser's read function. */
static int decoder_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    return di_decoder_read(ctx, buf, cap, n, err);
}

/* sniff_head reads the first bytes of a fresh source to recognise its compression. */
static int sniff_head(run *r, di_error *err) {
    prefix_pull *pp = &r->pp;
    while (pp->head_len < SNIFF_BYTES) {
        size_t n = 0;
        if (di_source_read(pp->src, pp->head + pp->head_len, SNIFF_BYTES - pp->head_len, &n, err))
            return -1;
        if (n == 0)
            break;
        pp->head_len += n;
    }
    r->comp = di_compression_sniff(pp->head, pp->head_len, r->job.source);
    return 0;
}

/* choose_compression: the job's explicit choice, the checkpoint's, or sniffed. */
static int choose_compression(run *r, di_error *err) {
    if (di_compression_parse(r->job.compression, &r->comp))
        return di_error_set(err, DI_ERR_CONFIG, "unknown compression \"%s\"", r->job.compression);
    if (r->cp.has_point)
        r->comp = r->cp.point.kind;
    else if (r->comp == DI_COMP_AUTO)
        return sniff_head(r, err);
    return 0;
}

/* source_options fills the network settings and, on resume, the ETag pin. */
static void source_options(const run *r, di_source_opts *o) {
    di_source_opts_default(o);
    o->chunk_size = (size_t)r->s->chunk_size;
    o->max_retries = (int)r->s->max_retries;
    o->retry_max_s = (double)r->s->retry_max_s;
    o->backoff_base_s = (double)r->s->retry_backoff_ms / 1000.0;
    o->stall_s = (int)r->s->stall_timeout_s;
    o->etag = r->cp.has_point && r->cp.etag[0] ? r->cp.etag : NULL;
}

/* open_source opens the object where the checkpoint says and pins its identity. */
static int open_source(run *r, di_error *err) {
    di_source_opts o;
    source_options(r, &o);
    int64_t offset = r->cp.has_point ? di_decode_source_offset(&r->cp.point) : 0;
    r->pp.src = di_source_open(r->job.source, offset, &o, err);
    if (!r->pp.src)
        return -1;
    snprintf(r->display, sizeof r->display, "%s", di_source_display(r->pp.src));
    if (!r->cp.has_point) {
        snprintf(r->cp.etag, sizeof r->cp.etag, "%s", di_source_etag(r->pp.src));
        r->cp.size = di_source_size(r->pp.src);
    }
    return 0;
}

/* parse_options maps the job's options onto the parser, resuming mid-stream
 * when the checkpoint has a position. */
static int parse_options(run *r, di_parse_opts *o, di_error *err) {
    di_parse_opts_default(o);
    di_format f = DI_FMT_AUTO;
    if (di_format_parse(r->job.format, &f))
        return di_error_set(err, DI_ERR_CONFIG, "unknown format \"%s\"", r->job.format);
    if (f == DI_FMT_AUTO) {
        const char *u = r->job.source;
        f = (strstr(u, ".tsv") || strstr(u, ".tab")) ? DI_FMT_TSV : DI_FMT_CSV;
    }
    o->format = f;
    o->delimiter = r->job.delimiter;
    o->header = r->job.header;
    o->max_field = (size_t)r->s->max_field;
    o->max_columns = (size_t)r->s->max_columns;
    o->table_key = r->cp.table_key;
    if (r->cp.has_point && r->cp.header) {
        o->start_offset = r->cp.point.out_offset + r->cp.point.skip;
        o->start_row = r->cp.row_number;
        o->resume_columns = (const char *const *)r->cp.header;
        o->resume_ncolumns = r->cp.nheader;
    }
    return 0;
}

/* open_pipeline stacks source, decoder and parser at the checkpoint. */
static int open_pipeline(run *r, di_error *err) {
    di_parse_opts po;
    if (open_source(r, err) || choose_compression(r, err) || parse_options(r, &po, err))
        return -1;
    r->dec = di_decoder_open_fn(prefix_read, &r->pp, r->comp, r->cp.has_point ? &r->cp.point : NULL,
                                err);
    if (!r->dec)
        return -1;
    r->parser = di_parser_new(&po, decoder_read, r->dec, err);
    if (!r->parser)
        return -1;
    if (r->cp.has_point)
        run_log(r, "resuming at row %lld, byte %lld of the object", (long long)r->cp.row_number,
                (long long)di_decode_source_offset(&r->cp.point));
    return 0;
}

/* close_pipeline releases the stages; the connection stays. */
static void close_pipeline(run *r) {
    di_parser_free(r->parser);
    di_decoder_close(r->dec);
    di_source_close(r->pp.src);
    r->parser = NULL;
    r->dec = NULL;
    memset(&r->pp, 0, sizeof r->pp);
    if (r->have_layout)
        di_row_layout_cleanup(&r->layout);
    r->have_layout = 0;
    di_buf_reset(&r->batch.copy);
    r->batch.rows = 0;
}

/* ensure_layout prepares the row encoder once the columns are known. */
static int ensure_layout(run *r, di_error *err) {
    if (r->have_layout)
        return 0;
    size_t n = 0;
    const char *const *cols = di_parser_columns(r->parser, &n);
    if (di_row_layout_init(&r->layout, cols, n) || di_checkpoint_set_header(&r->cp, cols, n))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    r->have_layout = 1;
    return 0;
}

/* mark_position records in the checkpoint where the record after this batch
 * starts; when the decoder kept no access point that far back, resuming must
 * re-read from byte 0 and skip, and the log says so. */
static void mark_position(run *r, int64_t pos) {
    if (di_decoder_mark(r->dec, pos, &r->cp.point) == 0) {
        r->cp.has_point = 1;
        return;
    }
    memset(&r->cp.point, 0, sizeof r->cp.point);
    r->cp.point.kind = r->comp;
    r->cp.point.member_start = 1;
    r->cp.point.skip = pos;
    r->cp.has_point = 1;
    if (!r->warned_rewind++)
        run_log(r,
                "no inflate access point before byte %lld: a resume would re-read the "
                "object from byte 0",
                (long long)pos);
}

/* report calls the progress hook. */
static void report(run *r) {
    if (!r->hooks || !r->hooks->progress)
        return;
    di_progress p = {r->cp.rows, r->cp.bytes_read, r->cp.size, r->cp.batches,
                     now_s() - ((double)r->t0.tv_sec + (double)r->t0.tv_nsec / 1e9)};
    r->hooks->progress(r->hooks->ctx, &p);
}

/* lease_lost reports that the heartbeat found the job taken from us. */
static int lease_lost(const run *r, di_error *err) {
    di_error_set(err, DI_ERR_TRANSIENT, "job %s: the lease was lost to another worker", r->job.id);
    err->code = DI_CODE_LEASE_LOST;
    return -1;
}

/* stop_requested tells whether a signal asked us to stop after this batch. */
static int stop_requested(const run *r, di_error *err) {
    if (!r->hooks->stop || !*r->hooks->stop)
        return 0;
    di_error_set(err, DI_ERR_TRANSIENT, "interrupted: job %s was handed back at row %lld",
                 r->job.id, (long long)r->cp.row_number);
    err->code = DI_CODE_INTERRUPTED;
    return -1;
}

/* flush commits the batch with the checkpoint at `next` (the next record). */
static int flush(run *r, int64_t next, di_error *err) {
    if (r->hb.lost)
        return lease_lost(r, err);
    mark_position(r, next);
    long rows = r->batch.rows;
    r->cp.rows += rows;
    r->cp.bytes_read = di_decoder_in_offset(r->dec);
    r->cp.batches++;
    char *progress = di_progress_json(&r->cp, "running", r->job.source);
    if (!progress)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    di_batch_job bj = {r->job.id, r->cp.commit_id, r->hooks->owner, r->s->lease_s};
    int rc = di_batch_commit(&r->pg, &r->batch, &bj, progress, err);
    free(progress);
    if (rc)
        return -1;
    if (r->cp.batches % r->s->progress_interval == 0)
        run_log(r, "%lld rows, %lld bytes read", (long long)r->cp.rows,
                (long long)r->cp.bytes_read);
    report(r);
    return stop_requested(r, err);
}

/* add_record encodes one record as a row and appends it to the batch. */
static int add_record(run *r, const di_record *rec, di_error *err) {
    char hash[DI_HASH_HEX + 1];
    if (ensure_layout(r, err))
        return -1;
    if (di_row_json(&r->layout, rec->fields, rec->lens, rec->kinds, &r->json))
        return di_error_at(err, DI_ERR_INPUT, r->cp.table_key, rec->row, rec->start,
                           "row too large to encode");
    di_row_hash(r->json.data, r->json.len, hash);
    if (di_batch_add(&r->batch, hash, r->cp.table_key, rec->row, r->json.data, r->json.len))
        return di_error_at(err, DI_ERR_INPUT, r->cp.table_key, rec->row, rec->start,
                           "batch exceeds 1 GiB: lower IMPORT_BATCH_SIZE");
    r->cp.row_number = rec->row + 1;
    return 0;
}

/* locate gives a stream error (corrupt gzip, a dropped source) the place in the
 * data where it struck: the table, the record being read and its offset. */
static int locate(const run *r, int64_t record_start, di_error *err) {
    if (err->table[0])
        return -1;
    snprintf(err->table, sizeof err->table, "%s", r->cp.table_key);
    err->row = r->cp.row_number > 0 ? r->cp.row_number : 1;
    err->byte = record_start;
    return -1;
}

/* load_all streams records into batches until the end of the object. */
static int load_all(run *r, di_error *err) {
    di_record rec;
    int64_t next = r->cp.has_point ? r->cp.point.out_offset + r->cp.point.skip : 0;
    int rc;
    while ((rc = di_parser_next(r->parser, &rec, err)) == 1) {
        if (add_record(r, &rec, err))
            return -1;
        next = rec.next;
        if (r->batch.rows >= r->batch_size && flush(r, next, err))
            return -1;
    }
    if (rc < 0)
        return locate(r, next, err);
    if (ensure_layout(r, err))
        return -1;
    return r->batch.rows > 0 || !r->cp.has_point ? flush(r, next, err) : 0;
}

/* columns_json lists the table's columns for the summary and the schema. */
static cJSON *columns_json(const di_checkpoint *cp) {
    cJSON *cols = cJSON_CreateArray();
    for (size_t i = 0; i < cp->nheader; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", cp->header[i]);
        cJSON_AddStringToObject(c, "type", "text");
        cJSON_AddItemToArray(cols, c);
    }
    return cols;
}

/* summary_json renders output_summary (the row differences are added in SQL). */
static char *summary_json(const run *r, double elapsed) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "commit_id", r->cp.commit_id);
    if (r->job.parent[0])
        cJSON_AddStringToObject(s, "parent_commit_id", r->job.parent);
    cJSON_AddStringToObject(s, "source", r->display);
    cJSON_AddStringToObject(s, "etag", r->cp.etag);
    cJSON_AddNumberToObject(s, "rows", (double)r->cp.rows);
    cJSON_AddNumberToObject(s, "bytes", (double)r->cp.bytes_read);
    cJSON_AddNumberToObject(s, "batches", (double)r->cp.batches);
    cJSON *tables = cJSON_AddArrayToObject(s, "tables");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "table_key", r->cp.table_key);
    cJSON_AddNumberToObject(t, "rows", (double)r->cp.rows);
    cJSON_AddItemToObject(t, "columns", columns_json(&r->cp));
    cJSON_AddItemToArray(tables, t);
    cJSON_AddArrayToObject(s, "rejects");
    cJSON *tm = cJSON_AddObjectToObject(s, "timings");
    cJSON_AddNumberToObject(tm, "elapsed_s", elapsed);
    cJSON_AddNumberToObject(tm, "rows_per_s", elapsed > 0 ? (double)r->cp.rows / elapsed : 0);
    char *out = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return out;
}

/* schema_json renders commit_schemas.schema_definition. */
static char *schema_json(const run *r) {
    cJSON *s = cJSON_CreateObject();
    cJSON *tables = cJSON_AddObjectToObject(s, "tables");
    cJSON *t = cJSON_AddObjectToObject(tables, r->cp.table_key);
    cJSON_AddItemToObject(t, "columns", columns_json(&r->cp));
    cJSON_AddNumberToObject(t, "rows", (double)r->cp.rows);
    char *out = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return out;
}

/* finish publishes the commit in one transaction. */
static int finish(run *r, di_job_result *res, di_error *err) {
    double elapsed = now_s() - ((double)r->t0.tv_sec + (double)r->t0.tv_nsec / 1e9);
    char *progress = di_progress_json(&r->cp, "completed", r->job.source);
    char *summary = summary_json(r, elapsed);
    char *schema = schema_json(r);
    int rc = progress && summary && schema
                 ? di_catalog_finish(&r->pg, &r->job, &r->cp, progress, summary, schema, err)
                 : di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    free(progress);
    free(summary);
    free(schema);
    if (rc == 0)
        snprintf(res->status, sizeof res->status, "completed");
    return rc;
}

/* fill_result copies what --json reports. */
static void fill_result(const run *r, di_job_result *res) {
    snprintf(res->job_id, sizeof res->job_id, "%s", r->job.id);
    snprintf(res->commit_id, sizeof res->commit_id, "%s", r->cp.commit_id);
    snprintf(res->ref, sizeof res->ref, "%s", r->job.ref);
    snprintf(res->object, sizeof res->object, "%s", r->display[0] ? r->display : "");
    res->dataset_id = r->job.dataset_id;
    res->rows = r->cp.rows;
    res->bytes_read = r->cp.bytes_read;
    res->tables = 1;
    res->rejects = 0;
}

/* load_job (re)reads the job row and its checkpoint; starts it if new. */
static int load_job(run *r, const char *job_id, di_error *err) {
    di_job_row_cleanup(&r->job);
    di_checkpoint_cleanup(&r->cp);
    di_checkpoint_init(&r->cp);
    if (di_catalog_load_job(&r->pg, job_id, &r->job, err) ||
        di_checkpoint_parse(&r->cp, r->job.run_parameters, err))
        return -1;
    r->batch_size = r->job.batch_size > 0 ? r->job.batch_size : r->s->batch_size;
    r->job.owner = r->hooks->owner;
    r->job.lease_s = r->s->lease_s;
    if (strcmp(r->job.status, "running") == 0 && strcmp(r->job.worker_id, r->hooks->owner) != 0) {
        di_error_set(err, DI_ERR_TRANSIENT, "job %s is held by %s, not %s", r->job.id,
                     r->job.worker_id[0] ? r->job.worker_id : "nobody", r->hooks->owner);
        err->code = DI_CODE_LEASE_LOST;
        return -1;
    }
    if (strcmp(r->job.status, "pending") == 0)
        return di_error_set(err, DI_ERR_CONFIG, "job %s is pending: claim it first", r->job.id);
    if (strcmp(r->job.status, "failed") == 0)
        return di_error_set(err, DI_ERR_CONFIG, "job %s failed earlier: %s", r->job.id,
                            r->job.error_message);
    if (strcmp(r->job.status, "completed") == 0 || r->cp.commit_id[0])
        return 0;
    return di_catalog_start(&r->pg, &r->job, &r->cp, err);
}

/* attempt runs the job once from its checkpoint: 1 if it was already done. */
static int attempt(run *r, const char *conninfo, const char *job_id, di_job_result *res,
                   di_error *err) {
    if (di_pg_connect(&r->pg, conninfo, err) || di_batch_prepare(&r->pg, r->s->lease_s, err) ||
        load_job(r, job_id, err))
        return -1;
    if (strcmp(r->job.status, "completed") == 0) {
        snprintf(res->status, sizeof res->status, "completed");
        return 1;
    }
    if (open_pipeline(r, err) || load_all(r, err))
        return -1;
    return finish(r, res, err);
}

/* fail_job records a permanent failure and removes the partial commit. */
static void fail_job(run *r, const di_error *cause) {
    char msg[1400];
    di_error_format(cause, r->display[0] ? r->display : r->job.source, msg, sizeof msg);
    di_error ignored;
    if (!r->pg.conn ||
        di_catalog_fail(&r->pg, r->job.id, r->hooks->owner, r->cp.commit_id, msg, &ignored))
        run_log(r, "could not record the failure of job %s: %s", r->job.id, ignored.message);
}

/* hand_back returns the job to the queue, due after delay_s, keeping its checkpoint. */
static void hand_back(run *r, double delay_s, const char *message) {
    di_error ignored;
    if (!r->pg.conn ||
        di_queue_hand_back(&r->pg, r->job.id, r->hooks->owner, delay_s, message, &ignored))
        run_log(r, "could not hand job %s back: %s", r->job.id, ignored.message);
}

/* still_ours tells whether owner still holds the job; a failure of any kind
 * on a job taken over meanwhile (e.g. a duplicate key against rows the new
 * owner wrote) is that takeover, and nothing may be recorded for it. */
static int still_ours(run *r) {
    const char *p[] = {r->job.id, r->hooks->owner};
    di_error ignored;
    PGresult *res = di_pg_exec(&r->pg,
                               "SELECT 1 FROM dsa_jobs.analysis_runs WHERE id = $1 "
                               "AND worker_id = $2 AND status = 'running'",
                               2, p, &ignored);
    int ours = res && PQntuples(res) == 1;
    PQclear(res);
    return ours;
}

/* settle records how a failed run ends: failed for bad input, configuration
 * or too many attempts; pending again (with a backoff) for transient trouble;
 * nothing at all when the job is not ours any more. Returns the result status. */
static const char *settle(run *r, const char *conninfo, di_error *err) {
    if (err->code == DI_CODE_LEASE_LOST || !r->job.id[0])
        return "lost";
    di_error cerr;
    if (!r->pg.conn || PQstatus(r->pg.conn) != CONNECTION_OK) {
        di_pg_close(&r->pg);
        if (di_pg_connect(&r->pg, conninfo, &cerr))
            return "running"; /* the lease lapses; another run resumes it */
    }
    di_pg_rollback(&r->pg);
    if (!still_ours(r)) {
        char cause[sizeof err->message];
        memcpy(cause, err->message, sizeof cause);
        di_error_set(err, DI_ERR_TRANSIENT,
                     "job %s is no longer held by %s (lease lost to another worker); the "
                     "rolled-back batch failed with: %s",
                     r->job.id, r->hooks->owner, cause);
        err->code = DI_CODE_LEASE_LOST;
        return "lost";
    }
    if (err->code == DI_CODE_INTERRUPTED) {
        hand_back(r, 0, NULL);
        return "pending";
    }
    if (err->cls == DI_ERR_INPUT || err->cls == DI_ERR_CONFIG ||
        r->job.attempts >= r->s->job_max_attempts) {
        fail_job(r, err);
        return "failed";
    }
    double delay = 5.0 * (double)(1L << (r->job.attempts < 6 ? r->job.attempts : 6));
    char msg[1400];
    di_error_format(err, r->display[0] ? r->display : r->job.source, msg, sizeof msg);
    hand_back(r, delay, msg);
    return "pending";
}

/* backoff_sleep waits before the next attempt: exponential, full jitter. */
static void backoff_sleep(const run *r, int attempt_no) {
    double cap =
        (double)r->s->retry_backoff_ms / 1000.0 * (double)(1 << (attempt_no < 6 ? attempt_no : 6));
    double wait = cap * ((double)rand() / (double)RAND_MAX);
    usleep((useconds_t)(wait * 1e6));
}

/* run_cleanup releases everything the run holds. */
static void run_cleanup(run *r) {
    close_pipeline(r);
    di_pg_close(&r->pg);
    di_job_row_cleanup(&r->job);
    di_checkpoint_cleanup(&r->cp);
    di_buf_cleanup(&r->json);
    di_batch_cleanup(&r->batch);
}

int di_job_run(const char *conninfo, const char *job_id, const di_settings *s,
               const di_job_hooks *hooks, di_job_result *res, di_error *err) {
    run r;
    memset(&r, 0, sizeof r);
    memset(res, 0, sizeof *res);
    r.s = s;
    r.hooks = hooks;
    di_buf_init(&r.json, ROW_JSON_MAX);
    di_batch_init(&r.batch);
    di_checkpoint_init(&r.cp);
    clock_gettime(CLOCK_MONOTONIC, &r.t0);
    if (di_heartbeat_start(&r.hb, conninfo, job_id, hooks->owner, s->lease_s))
        return di_error_set(err, DI_ERR_INTERNAL, "cannot start the heartbeat thread");
    int rc;
    for (int i = 0;; i++) {
        di_error_clear(err);
        rc = attempt(&r, conninfo, job_id, res, err);
        if (rc >= 0 || err->cls != DI_ERR_TRANSIENT || err->code != DI_CODE_NONE ||
            i >= s->db_retries)
            break;
        run_log(&r, "transient failure, resuming from the last checkpoint: %s", err->message);
        close_pipeline(&r);
        di_pg_close(&r.pg);
        backoff_sleep(&r, i);
    }
    di_heartbeat_stop(&r.hb);
    fill_result(&r, res);
    if (rc < 0)
        snprintf(res->status, sizeof res->status, "%s", settle(&r, conninfo, err));
    res->elapsed_s = now_s() - ((double)r.t0.tv_sec + (double)r.t0.tv_nsec / 1e9);
    run_cleanup(&r);
    if (rc < 0 && err->code == DI_CODE_INTERRUPTED)
        return 1;
    return rc < 0 ? -1 : 0;
}
