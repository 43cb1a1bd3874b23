/* runner.c - the one place that knows every stage: it opens the source at the
 * job's checkpoint, stacks decoder, parser and row encoder on it, and commits
 * batches, each with the checkpoint that lets a killed job resume exactly
 * there. Transient failures reload the checkpoint and go on; input errors fail
 * the job and remove its partial commit. A job queued through the API or by
 * an event has its source's every connection checked against the API's
 * address policy (it names a URL someone outside the cluster chose). */
#include "dsa_ingest/decode.h"
#include "dsa_ingest/job.h"
#include "dsa_ingest/parse.h"
#include "dsa_ingest/reader.h"
#include "dsa_ingest/row.h"
#include "job/batch.h"
#include "job/catalog.h"
#include "job/checkpoint.h"
#include "job/heartbeat.h"
#include "job/loader.h"
#include "job/queue.h"
#include "job/split.h"
#include "job/stage.h"
#include "http/netcheck.h"
#include "util/metrics.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROW_JSON_MAX ((size_t)1 << 30)

/* The address check of a job whose source came from outside (see guard_source). */
typedef struct addr_guard {
    di_netpolicy net;
    char who[64]; /* "jobs submitted through the API", for the refusal */
} addr_guard;

typedef struct run {
    const di_settings *s;
    const di_job_hooks *hooks;
    di_pg pg;
    di_job_row job;
    di_checkpoint cp;
    char display[1024];
    di_reader *reader;
    int64_t table_seq; /* the reader's table the layout is for */
    di_row_layout layout;
    int have_layout;
    di_buf json;
    di_loader *loader; /* the loading connections (started per attempt) */
    di_batch *cur;     /* the batch being filled (the loader's) */
    long batch_size;
    int warned_rewind;
    struct timespec t0;
    di_heartbeat hb;
    addr_guard guard;   /* borrowed by the source while it is open */
    di_range range;     /* the job is one range of a split job (split.h) */
    int publish_parent; /* it completed last: publish the split job */
    double merge_s;     /* a staged load's merge, this run */
    int loaders_used;   /* the tuner's count, kept when the loaders close before a merge */
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

/* reader_options maps the job and the settings onto the reader. */
static int reader_options(const run *r, di_reader_opts *o, di_error *err) {
    di_settings_reader_opts(r->s, o);
    o->url = r->job.source;
    o->source.etag = r->cp.pos.row_number > 0 && r->cp.etag[0] ? r->cp.etag : NULL;
    if (di_compression_parse(r->job.compression, &o->compression))
        return di_error_set(err, DI_ERR_CONFIG, "unknown compression \"%s\"", r->job.compression);
    if (di_format_parse(r->job.format, &o->format))
        return di_error_set(err, DI_ERR_CONFIG, "unknown format \"%s\"", r->job.format);
    o->delimiter = r->job.delimiter;
    o->header = r->job.header;
    o->encoding = r->job.encoding[0] ? r->job.encoding : NULL;
    return 0;
}

/* guard_addr is the sources' check_addr: the API's address policy, applied
 * to the address actually dialled. */
static int guard_addr(void *ctx, const struct sockaddr *sa, char *why, size_t whysz) {
    const addr_guard *g = ctx;
    return di_netcheck_addr(&g->net, g->who, sa, why, whysz);
}

/* guard_source turns the address check on for a job queued through the API
 * or by an event (any origin, in fact: only the CLI and hand-inserted rows
 * have none). The API checked the source's addresses when it queued the job,
 * but the source resolves the name again and follows redirects; the worker
 * allows what serve allows, from the same DSA_INGEST_ALLOWED_NETWORKS. */
static int guard_source(run *r, di_source_opts *o, di_error *err) {
    const char *origin = r->job.origin;
    if (!origin[0])
        return 0;
    if (di_netpolicy_init(&r->guard.net, NULL, NULL, NULL, getenv("DSA_INGEST_ALLOWED_NETWORKS"),
                          err))
        return -1;
    if (strcmp(origin, "api") == 0)
        snprintf(r->guard.who, sizeof r->guard.who, "jobs submitted through the API");
    else if (strcmp(origin, "event") == 0)
        snprintf(r->guard.who, sizeof r->guard.who, "jobs queued by S3 events");
    else
        snprintf(r->guard.who, sizeof r->guard.who, "jobs of origin \"%.16s\"", origin);
    o->check_addr = guard_addr;
    o->check_ctx = &r->guard;
    return 0;
}

/* open_pipeline opens the reader at the checkpoint and pins the object's
 * identity the first time. */
static int open_pipeline(run *r, di_error *err) {
    di_reader_opts o;
    if (reader_options(r, &o, err) || guard_source(r, &o.source, err))
        return -1;
    int resume = r->cp.pos.row_number > 0;
    r->reader = di_reader_open(&o, resume ? &r->cp.pos : NULL, err);
    if (!r->reader)
        return -1;
    snprintf(r->display, sizeof r->display, "%s", di_reader_display(r->reader));
    if (!resume) {
        snprintf(r->cp.etag, sizeof r->cp.etag, "%s", di_reader_etag(r->reader));
        r->cp.size = di_reader_size(r->reader);
    } else if (r->range.active) {
        run_log(r, "range %d of %d: rows from %lld at byte %lld, up to byte %lld",
                r->range.index + 1, r->range.count, (long long)r->cp.pos.row_number,
                (long long)di_decode_source_offset(&r->cp.pos.point), (long long)r->range.end);
    } else {
        run_log(r, "resuming at table %s, row %lld, byte %lld of the object", r->cp.pos.table_key,
                (long long)r->cp.pos.row_number,
                (long long)(r->cp.pos.has_point ? di_decode_source_offset(&r->cp.pos.point) : 0));
        if (r->cp.pos.format == DI_FMT_XLSX)
            run_log(r,
                    "sheet %s is parsed again from its start (XML cannot be entered "
                    "mid-way); its rows before %lld are skipped, not loaded",
                    r->cp.pos.table_key, (long long)r->cp.pos.row_number);
    }
    return 0;
}

/* close_pipeline releases the stages and the loaders (a batch they have not
 * committed is dropped: the checkpoint does not count it); the connection stays. */
static void close_pipeline(run *r) {
    di_loader_stop(r->loader);
    r->loader = NULL;
    r->cur = NULL;
    di_reader_close(r->reader);
    r->reader = NULL;
    r->table_seq = 0;
    if (r->have_layout)
        di_row_layout_cleanup(&r->layout);
    r->have_layout = 0;
}

/* batch_job is what the loaders and the merge need to know of the job. */
static di_batch_job batch_job(const run *r) {
    return (di_batch_job){r->job.id, r->cp.commit_id, r->hooks->owner, r->s->lease_s,
                          r->cp.stage.parts};
}

/* maybe_stage makes a job that has loaded nothing yet a staged load (stage.h)
 * when its object is big enough: the first batch's checkpoint records it. */
static int maybe_stage(run *r, di_error *err) {
    if (r->range.active || r->cp.stage.parts || r->cp.batches > 0 || r->s->stage_min_bytes <= 0 ||
        r->cp.size < r->s->stage_min_bytes)
        return 0;
    if (di_stage_create(&r->pg, r->job.id, DI_STAGE_PARTS, err))
        return -1;
    r->cp.stage.parts = DI_STAGE_PARTS;
    return 0;
}

/* start_loader connects the loaders at the checkpoint just loaded. The rows
 * of its finished ranges are counted again as the reader passes them. */
static int start_loader(run *r, const char *conninfo, di_error *err) {
    if (maybe_stage(r, err))
        return -1;
    for (size_t i = 0; i < r->cp.nfinished; i++)
        r->cp.rows -= r->cp.finished[i].rows;
    char *progress = di_progress_json(&r->cp, "running", r->job.source);
    if (!progress)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    di_loader_opts o = {
        .conninfo = conninfo,
        .connections = (int)r->s->load_connections,
        .job = batch_job(r),
        .progress = progress,
        .rows = r->cp.rows,
        .batches = r->cp.batches,
        .bytes_read = r->cp.bytes_read,
        .finished = r->cp.finished,
        .nfinished = r->cp.nfinished,
    };
    r->loader = di_loader_start(&o, err);
    free(progress);
    return r->loader ? 0 : -1;
}

/* enter_table prepares for the reader's current table once its columns are
 * known: the row encoder's layout, the profile's table, the checkpoint's
 * header. */
static int enter_table(run *r, di_error *err) {
    if (r->table_seq == di_reader_table_seq(r->reader))
        return 0;
    if (r->have_layout)
        di_row_layout_cleanup(&r->layout);
    r->have_layout = 0;
    size_t n = 0;
    const char *const *cols = di_reader_columns(r->reader, &n);
    if ((cols && di_row_layout_init(&r->layout, cols, n)) ||
        di_profile_table(&r->cp.profile, di_reader_table(r->reader), cols, n) ||
        di_reader_pos_set_header(&r->cp.pos, cols, n))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    r->have_layout = cols != NULL;
    r->table_seq = di_reader_table_seq(r->reader);
    return 0;
}

/* mark_position records in the checkpoint where the record after this batch
 * starts; when that needs re-reading the object from its start (no inflate
 * access point that far back, bz2/xz/zstd, a tar), the log says so once. */
static void mark_position(run *r, int64_t pos) {
    int rewind = 0;
    di_reader_mark(r->reader, pos, &r->cp.pos, &rewind);
    if (rewind && !r->warned_rewind++)
        run_log(r,
                "no restart point inside the %s data before byte %lld: a resume would "
                "re-read the object from byte 0",
                di_compression_name(di_reader_compression(r->reader)), (long long)pos);
}

/* report calls the progress hook with the rows committed so far. */
static void report(run *r) {
    if (!r->hooks || !r->hooks->progress)
        return;
    int64_t rows, batches;
    di_loader_committed(r->loader, &rows, &batches);
    di_progress p = {rows, r->cp.bytes_read, r->cp.size, batches,
                     now_s() - ((double)r->t0.tv_sec + (double)r->t0.tv_nsec / 1e9)};
    r->hooks->progress(r->hooks->ctx, &p);
}

/* lease_lost reports that the heartbeat found the job taken from us. */
static int lease_lost(const run *r, di_error *err) {
    di_error_set(err, DI_ERR_TRANSIENT, "job %s: the lease was lost to another worker", r->job.id);
    err->code = DI_CODE_LEASE_LOST;
    return -1;
}

/* stop_requested tells whether a signal asked us to stop after this batch;
 * the batches handed to the loaders are committed first. */
static int stop_requested(const run *r, di_error *err) {
    if (!r->hooks->stop || !*r->hooks->stop)
        return 0;
    if (di_loader_wait(r->loader, err))
        return -1;
    di_error_set(err, DI_ERR_TRANSIENT, "interrupted: job %s was handed back at row %lld",
                 r->job.id, (long long)r->cp.pos.row_number);
    err->code = DI_CODE_INTERRUPTED;
    return -1;
}

/* take_batch makes sure there is a batch to fill, for the reader's table. */
static int take_batch(run *r, di_error *err) {
    if (r->cur)
        return 0;
    r->cur = di_loader_batch(r->loader, err);
    if (!r->cur)
        return -1;
    snprintf(r->cur->table, sizeof r->cur->table, "%s", di_reader_table(r->reader));
    return 0;
}

/* flush hands the batch to the loaders with the checkpoint that follows it:
 * the reader's position after the record whose end is `next`, or, when
 * `before` is given (the first record of a new table), before that record. */
static int flush(run *r, int64_t next, const di_record *before, di_error *err) {
    if (r->hb.lost)
        return lease_lost(r, err);
    if (take_batch(r, err))
        return -1;
    di_batch *b = r->cur;
    if (before) {
        if (enter_table(r, err))
            return -1;
        mark_position(r, before->start);
        r->cp.pos.row_number = before->row;
    } else {
        mark_position(r, next);
    }
    r->cp.rows += b->rows_covered;
    r->cp.bytes_read = di_reader_bytes_in(r->reader);
    r->cp.batches++;
    b->end_rows = r->cp.rows;
    b->bytes_read = r->cp.bytes_read;
    b->end_progress = di_progress_json(&r->cp, "running", r->job.source);
    if (!b->end_progress)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    r->cur = NULL;
    if (di_loader_submit(r->loader, b, err))
        return -1;
    if (r->cp.batches % r->s->progress_interval == 0)
        run_log(r, "%lld rows, %lld bytes read", (long long)r->cp.rows,
                (long long)r->cp.bytes_read);
    report(r);
    return stop_requested(r, err);
}

/* encode writes the record's canonical JSON into r->json. */
static int encode(run *r, const di_record *rec) {
    if (rec->names)
        return di_row_json_keyed(rec->names, rec->fields, rec->lens, rec->kinds, rec->nfields,
                                 &r->json);
    return di_row_json(&r->layout, rec->fields, rec->lens, rec->kinds, &r->json);
}

/* committed_earlier tells whether an earlier run of the job committed this
 * record's row in a batch beyond its checkpoint's watermark. */
static int committed_earlier(const run *r, const di_record *rec) {
    for (size_t i = 0; i < r->cp.nfinished; i++) {
        const di_segment *g = &r->cp.finished[i];
        if (rec->row >= g->from && rec->row < g->to &&
            strcmp(g->table, di_reader_table(r->reader)) == 0)
            return 1;
    }
    return 0;
}

/* add_record encodes one record as a row and appends it to the batch; a row
 * committed earlier is only counted (profile, range) and not loaded again. */
static int add_record(run *r, const di_record *rec, di_error *err) {
    char hash[DI_HASH_HEX + 1];
    if (enter_table(r, err) || take_batch(r, err))
        return -1;
    const char *table = r->cp.pos.table_key;
    di_batch *b = r->cur;
    if (!r->cp.nfinished || !committed_earlier(r, rec)) {
        if (encode(r, rec))
            return di_error_at(err, DI_ERR_INPUT, table, rec->row, rec->start,
                               "row too large to encode");
        di_row_hash(r->json.data, r->json.len, hash);
        if (di_batch_add(b, hash, rec->row, r->json.data, r->json.len))
            return di_error_at(err, DI_ERR_INPUT, table, rec->row, rec->start,
                               "batch exceeds 1 GiB: lower IMPORT_BATCH_SIZE");
    }
    if (di_profile_add(&r->cp.profile, rec))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    if (b->rows_covered == 0)
        b->row_from = rec->row;
    b->row_to = rec->row + 1;
    b->rows_covered++;
    r->cp.pos.row_number = rec->row + 1;
    return 0;
}

/* reject skips a bad record while --max-errors allows; past it, the job
 * fails with the record's error. */
static int reject(run *r, di_error *err) {
    if (err->code != DI_CODE_RECORD || r->cp.rejects_total >= r->job.max_errors)
        return -1;
    if (di_checkpoint_add_reject(&r->cp, err))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    return 0;
}

/* locate gives a stream error (corrupt gzip, a dropped source) the place in the
 * data where it struck: the table, the record being read and its offset. */
static int locate(const run *r, int64_t record_start, di_error *err) {
    if (err->table[0])
        return -1;
    snprintf(err->table, sizeof err->table, "%s", di_reader_table(r->reader));
    err->row = r->cp.pos.row_number > 0 ? r->cp.pos.row_number : 1;
    err->byte = record_start;
    return -1;
}

/* keep_loaded returns rc (-1: the read failed with err) once the batches
 * handed to the loaders before a transient failure (a source that went away)
 * are committed, so that a resume starts after them, as it would have when
 * loading kept step with reading. Bad input fails the job: nothing to keep. */
static int keep_loaded(run *r, int rc, const di_error *err) {
    di_error ignored;
    if (err->cls == DI_ERR_TRANSIENT && di_loader_wait(r->loader, &ignored) == 0)
        run_log(r, "reading failed; the %lld rows read before it are committed",
                (long long)r->cp.rows);
    return rc;
}

/* range_mismatch fails a range whose records the reader frames differently
 * from phase one's count: never a row numbered differently from an import
 * of the whole object. */
static int range_mismatch(const run *r, int64_t at, const char *what, di_error *err) {
    return di_error_at(err, DI_ERR_INPUT, "primary", r->cp.pos.row_number, at,
                       "split import, range %d of %d (bytes %lld-%lld): %s; import this object "
                       "without splitting it (IMPORT_SPLIT_MIN_BYTES=0)",
                       r->range.index + 1, r->range.count, (long long)r->range.start,
                       (long long)r->range.end, what);
}

/* in_range tells whether a range job loads rec (0: rec starts the next
 * range's records, the end), checking that no record crosses its end. */
static int in_range(const run *r, const di_record *rec, int *stop, di_error *err) {
    *stop = 0;
    if (!r->range.active)
        return 0;
    if (rec->start >= r->range.end) {
        *stop = 1;
        return 0;
    }
    if (rec->next > r->range.end)
        return range_mismatch(r, rec->start, "a record runs past the range's end", err);
    return 0;
}

/* range_counted checks, once a range job has read its records, that their
 * row numbers end where phase one's count says the next range's begin
 * (NDJSON numbers blank lines, which yield no record: at most there). */
static int range_counted(const run *r, const di_record *next, di_error *err) {
    int64_t want = r->range.first_row + r->range.records, got = r->cp.pos.row_number;
    int lines = r->range.format == DI_FMT_NDJSON;
    int ok = lines ? got <= want && (!next || next->row >= want)
                   : got == want && (!next || next->row == want);
    if (ok)
        return 0;
    char what[160];
    snprintf(what, sizeof what,
             "the reader ends its records before row %lld, phase one's count %lld",
             (long long)(next ? next->row : got), (long long)want);
    return range_mismatch(r, next ? next->start : r->range.end, what, err);
}

/* load_all streams records into batches until the end of the object (a range
 * job: of its range), then waits for the loaders to commit them all. A batch
 * holds one table's rows. */
static int load_all(run *r, di_error *err) {
    di_record rec;
    int stop = 0;
    int64_t next = r->cp.pos.has_point ? r->cp.pos.point.out_offset + r->cp.pos.point.skip
                                       : r->cp.pos.member_offset;
    int rc;
    while ((rc = di_reader_next(r->reader, &rec, err)) != 0) {
        if (rc < 0) {
            if (reject(r, err))
                return keep_loaded(r, locate(r, next, err), err);
            continue;
        }
        if (in_range(r, &rec, &stop, err))
            return -1;
        if (stop)
            break;
        if (r->cur && r->cur->rows_covered > 0 &&
            strcmp(r->cur->table, di_reader_table(r->reader)) != 0 && flush(r, next, &rec, err))
            return -1;
        if (add_record(r, &rec, err))
            return -1;
        next = rec.next;
        if ((int64_t)r->cur->nrows >= r->batch_size && flush(r, next, NULL, err))
            return -1;
    }
    if (r->range.active && range_counted(r, stop ? &rec : NULL, err))
        return -1;
    if (r->cp.profile.ntables == 0 && enter_table(r, err))
        return -1;
    if (((r->cur && r->cur->rows_covered > 0) || r->cp.batches == 0) && flush(r, next, NULL, err))
        return -1;
    return di_loader_wait(r->loader, err);
}

/* summary_json renders output_summary (the row differences are added in SQL). */
static char *summary_json(const run *r, double elapsed) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "commit_id", r->cp.commit_id);
    if (r->job.parent[0])
        cJSON_AddStringToObject(s, "parent_commit_id", r->job.parent);
    cJSON_AddStringToObject(s, "source", r->display);
    cJSON_AddStringToObject(s, "etag", r->cp.etag);
    cJSON_AddStringToObject(s, "format", di_format_name(r->cp.pos.format));
    cJSON_AddStringToObject(s, "compression", di_compression_name(r->cp.pos.compression));
    cJSON_AddNumberToObject(s, "rows", (double)r->cp.rows);
    cJSON_AddNumberToObject(s, "bytes", (double)r->cp.bytes_read);
    cJSON_AddNumberToObject(s, "batches", (double)r->cp.batches);
    cJSON *tables = cJSON_AddArrayToObject(s, "tables");
    cJSON *prof = di_profile_to_json(&r->cp.profile, 0);
    cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(prof, "tables")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table_key", t->string);
        cJSON_AddItemToObject(o, "rows",
                              cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(t, "rows"), 1));
        cJSON_AddItemToObject(o, "columns",
                              cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(t, "columns"), 1));
        cJSON_AddItemToArray(tables, o);
    }
    cJSON_Delete(prof);
    cJSON_AddItemToObject(s, "rejects", di_rejects_json(&r->cp));
    cJSON_AddNumberToObject(s, "rejects_total", (double)r->cp.rejects_total);
    cJSON *tm = cJSON_AddObjectToObject(s, "timings");
    cJSON_AddNumberToObject(tm, "elapsed_s", elapsed);
    cJSON_AddNumberToObject(tm, "rows_per_s", elapsed > 0 ? (double)r->cp.rows / elapsed : 0);
    if (r->loader || r->loaders_used) /* how many connections the tuner settled on */
        cJSON_AddNumberToObject(tm, "loaders",
                                r->loader ? di_loader_connections(r->loader) : r->loaders_used);
    if (r->cp.stage.parts)
        cJSON_AddNumberToObject(tm, "merge_s", r->merge_s);
    char *out = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return out;
}

/* schema_json renders commit_schemas.schema_definition. */
static char *schema_json(const run *r) {
    cJSON *s = di_profile_to_json(&r->cp.profile, 0);
    char *out = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return out;
}

/* range_summary is a range job's output_summary. */
static char *range_summary(const run *r) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "split_job", r->range.parent);
    cJSON_AddNumberToObject(s, "range", r->range.index + 1);
    cJSON_AddNumberToObject(s, "ranges", r->range.count);
    cJSON_AddNumberToObject(s, "start", (double)r->range.start);
    cJSON_AddNumberToObject(s, "end", (double)r->range.end);
    cJSON_AddNumberToObject(s, "first_row", (double)r->range.first_row);
    cJSON_AddNumberToObject(s, "rows", (double)r->cp.rows);
    cJSON_AddNumberToObject(s, "batches", (double)r->cp.batches);
    char *out = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return out;
}

/* finish_range completes a range job; the last one takes its split job over
 * (r->publish_parent) to publish it once this run is over. */
static int finish_range(run *r, di_job_result *res, di_error *err) {
    char *progress = di_progress_json(&r->cp, "completed", r->job.source);
    char *summary = range_summary(r);
    int rc = progress && summary ? di_split_range_done(&r->pg, &r->job, &r->range, progress,
                                                       summary, &r->publish_parent, err)
                                 : di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    free(progress);
    free(summary);
    if (rc == 0)
        snprintf(res->status, sizeof res->status, "completed");
    return rc;
}

/* merge_stage merges a staged load's staging tables into rows and the
 * manifest once every batch is staged. */
static int merge_stage(run *r, const char *conninfo, di_error *err) {
    di_stage_state *st = &r->cp.stage;
    if (!st->parts || di_stage_merged(st))
        return 0;
    run_log(r, "merging the %lld staged rows of job %s into dsa_core.rows and the manifest",
            (long long)r->cp.rows, r->job.id);
    if (r->loader) { /* every batch is in: the merge takes over their connections */
        r->loaders_used = di_loader_connections(r->loader);
        di_loader_stop(r->loader);
        r->loader = NULL;
    }
    double t = now_s();
    di_batch_job job = batch_job(r);
    int rc = di_stage_merge(conninfo, &job, st, (int)r->s->load_connections, err);
    r->merge_s += now_s() - t;
    return rc;
}

/* finish publishes the commit in one transaction. */
static int finish(run *r, di_job_result *res, di_error *err) {
    if (r->range.active)
        return finish_range(r, res, err);
    free(r->cp.finished); /* every row is in: nothing is ahead of the watermark now */
    r->cp.finished = NULL;
    r->cp.nfinished = 0;
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
    res->tables = (int)r->cp.profile.ntables;
    res->rejects = (int)r->cp.rejects_total;
}

/* range_checkpoint is where a range job that has loaded nothing yet starts:
 * the parent's commit and object, the range's first record and row. */
static int range_checkpoint(run *r, di_error *err) {
    const di_range *g = &r->range;
    di_reader_pos *p = &r->cp.pos;
    snprintf(r->cp.commit_id, sizeof r->cp.commit_id, "%s", g->commit_id);
    snprintf(r->cp.etag, sizeof r->cp.etag, "%s", g->etag);
    r->cp.size = g->size;
    p->compression = DI_COMP_NONE;
    p->format = g->format;
    p->delimiter = g->delimiter;
    p->header = g->header;
    p->member = -1;
    snprintf(p->table_key, sizeof p->table_key, "primary");
    p->row_number = g->first_row;
    p->has_point = 1;
    memset(&p->point, 0, sizeof p->point);
    p->point.kind = DI_COMP_NONE;
    p->point.in_offset = p->point.out_offset = g->start;
    if (di_reader_pos_set_header(p, (const char *const *)g->names, g->nnames))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    return 0;
}

/* load_job (re)reads the job row and its checkpoint; starts it if new. */
static int load_job(run *r, const char *job_id, di_error *err) {
    di_job_row_cleanup(&r->job);
    di_checkpoint_cleanup(&r->cp);
    di_checkpoint_init(&r->cp);
    di_range_cleanup(&r->range);
    if (di_catalog_load_job(&r->pg, job_id, &r->job, err) ||
        di_checkpoint_parse(&r->cp, r->job.run_parameters, err) ||
        di_range_parse(&r->range, r->job.run_parameters, err))
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
    if (r->range.active)
        return r->range.placed ? range_checkpoint(r, err) : 0;
    return di_catalog_start(&r->pg, &r->job, &r->cp, err);
}

/* restage starts a staged load again from the beginning of its object when a
 * server restart has emptied its staging tables (UNLOGGED tables are reset
 * by crash recovery) before the merge was done with them; its unpublished
 * commit goes with them. */
static int restage(run *r, const char *job_id, di_error *err) {
    const di_stage_state *st = &r->cp.stage;
    if (!st->parts || r->range.active || strcmp(r->job.status, "running") != 0 ||
        di_stage_merged(st)) /* nothing left to read */
        return 0;
    int intact = 0;
    if (di_stage_intact(&r->pg, r->job.id, &intact, err))
        return -1;
    if (intact)
        return 0;
    run_log(r,
            "job %s: its staged rows were lost (the database restarted since they were "
            "written); reading the object again from the beginning",
            r->job.id);
    const char *p[] = {r->job.id, r->hooks->owner};
    if (di_pg_cmd(&r->pg, "BEGIN", 0, NULL, err) || di_stage_drop(&r->pg, r->job.id, err) ||
        di_catalog_remove_commit(&r->pg, r->cp.commit_id, err) ||
        di_catalog_fenced(&r->pg,
                          "UPDATE dsa_jobs.analysis_runs SET source_commit_id = NULL, "
                          "run_parameters = run_parameters - 'progress' "
                          "WHERE id = $1 AND status = 'running' AND worker_id = $2",
                          2, p, r->job.id, r->hooks->owner, err) ||
        di_pg_cmd(&r->pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(&r->pg);
        return -1;
    }
    return load_job(r, job_id, err);
}

/* split_plan reads the object's first record (the one after the header)
 * to learn what every range needs; 1 when there is one to split at. */
static int split_plan(run *r, di_split_plan *pl, di_error *err) {
    di_record rec;
    int rc = di_reader_next(r->reader, &rec, err);
    if (rc <= 0)
        return rc;
    if (enter_table(r, err))
        return -1;
    mark_position(r, rec.start);
    r->cp.pos.row_number = rec.row;
    pl->data_start = rec.start;
    pl->first_row = rec.row;
    pl->range_bytes = r->s->split_range_bytes;
    pl->names = (const char *const *)r->cp.pos.header_names;
    pl->nnames = r->cp.pos.nheader;
    return rec.start < pl->range_bytes / 2; /* else the header fills a range */
}

/* maybe_split splits a new job whose object is big enough into range jobs
 * (split.h): 1 when it did, 0 when the job runs as one (the pipeline open
 * at its start), -1 on error. */
static int maybe_split(run *r, di_job_result *res, di_error *err) {
    di_reader_pos probe;
    int rewind, nranges = 0;
    if (r->s->split_min_bytes <= 0 || r->cp.size < r->s->split_min_bytes ||
        r->cp.pos.row_number > 0 || r->cp.batches > 0)
        return 0; /* small, or a resumed job: it stays one */
    di_reader_pos_init(&probe);
    di_reader_mark(r->reader, 0, &probe, &rewind);
    int wanted =
        di_split_wanted(r->s, &r->job, r->cp.size, probe.format, probe.compression, probe.member);
    di_reader_pos_cleanup(&probe);
    if (!wanted)
        return 0;
    di_split_plan pl;
    int rc = split_plan(r, &pl, err);
    if (rc < 0)
        return -1;
    if (rc == 0) { /* not worth it after all: start over, as one job */
        close_pipeline(r);
        di_reader_pos_cleanup(&r->cp.pos);
        di_reader_pos_init(&r->cp.pos);
        di_profile_cleanup(&r->cp.profile);
        di_profile_init(&r->cp.profile);
        return open_pipeline(r, err);
    }
    close_pipeline(r);
    if (di_split_create(&r->pg, &r->job, &r->cp, &pl, &nranges, err))
        return -1;
    run_log(r, "split into %d ranges of %lld bytes for any worker to take", nranges,
            (long long)pl.range_bytes);
    snprintf(res->status, sizeof res->status, "split");
    return 1;
}

/* count_range is a range job's phase one: it scans its bytes with the
 * frame counter, for every state a parser could be in at its first byte. */
static int count_range(run *r, di_job_result *res, di_error *err) {
    di_reader_opts o;
    if (reader_options(r, &o, err) || guard_source(r, &o.source, err))
        return -1;
    o.source.etag = r->range.etag[0] ? r->range.etag : NULL;
    di_frame *f = malloc(sizeof *f);
    char *buf = malloc((size_t)r->s->chunk_size);
    di_source *src = NULL;
    int rc = -1;
    if (!f || !buf)
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    else if (di_frame_init(f, r->range.format == DI_FMT_NDJSON ? DI_FRAME_LINES : DI_FRAME_CSV,
                           (unsigned char)r->range.delimiter))
        di_error_set(err, DI_ERR_CONFIG, "invalid delimiter");
    else if ((src = di_source_open(r->job.source, r->range.from, &o.source, err)) != NULL)
        rc = 0;
    for (int64_t at = r->range.from; rc == 0 && at < r->range.to;) {
        size_t want = (size_t)r->s->chunk_size, n = 0;
        if ((int64_t)want > r->range.to - at)
            want = (size_t)(r->range.to - at);
        if ((rc = di_source_read(src, buf, want, &n, err)) == 0 && n == 0)
            rc =
                di_error_at(err, DI_ERR_INPUT, "primary", 0, at,
                            "the object ends before byte %lld: it changed", (long long)r->range.to);
        /* the parser skips a UTF-8 BOM at offset 0 before it reads a byte */
        size_t bom = at == 0 && n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
        di_frame_feed(f, buf + bom, n - bom);
        at += (int64_t)n;
    }
    di_source_close(src);
    if (rc == 0)
        rc = di_split_counted(&r->pg, &r->job, &r->range, f, err);
    free(buf);
    free(f);
    if (rc == 0)
        snprintf(res->status, sizeof res->status, "counted");
    return rc;
}

/* run_split goes on with a job that was split: while ranges are open it
 * waits for them, held by nobody; once all are in, it publishes their rows
 * as one commit. */
static int run_split(run *r, int ranges, di_job_result *res, di_error *err) {
    long left = 0;
    if (di_split_open(&r->pg, r->job.id, &left, err))
        return -1;
    if (left > 0) {
        if (di_split_park(&r->pg, &r->job, err))
            return -1;
        run_log(r, "%ld of its %d ranges are still open", left, ranges);
        snprintf(res->status, sizeof res->status, "split");
        return 2;
    }
    di_url_redact(r->job.source, r->display, sizeof r->display);
    if (di_split_merge(&r->pg, r->job.id, &r->cp, err))
        return -1;
    return finish(r, res, err);
}

/* attempt runs the job once from its checkpoint: 1 if it was already done,
 * 2 when it is done for now but not complete (split, or a range counted). */
static int attempt(run *r, const char *conninfo, const char *job_id, di_job_result *res,
                   di_error *err) {
    if (di_pg_connect(&r->pg, conninfo, err) || di_batch_prepare(&r->pg, r->s->lease_s, err) ||
        load_job(r, job_id, err) || restage(r, job_id, err))
        return -1;
    if (strcmp(r->job.status, "completed") == 0) {
        snprintf(res->status, sizeof res->status, "completed");
        return 1;
    }
    int ranges = di_split_ranges(r->job.run_parameters);
    if (ranges > 0)
        return run_split(r, ranges, res, err);
    if (r->range.active && !r->range.placed)
        return count_range(r, res, err) ? -1 : 2;
    if (r->range.active && r->range.start >= r->range.end)
        return finish(r, res, err); /* its bytes are inside a record of an earlier range */
    int split = 0;
    if (open_pipeline(r, err) || (!r->range.active && (split = maybe_split(r, res, err)) < 0))
        return -1;
    if (split)
        return 2;
    if (start_loader(r, conninfo, err) || load_all(r, err) || merge_stage(r, conninfo, err))
        return -1;
    return finish(r, res, err);
}

/* fail_job records a permanent failure and removes the partial commit. */
static void fail_job(run *r, const di_error *cause) {
    char msg[1400];
    di_error_format(cause, r->display[0] ? r->display : r->job.source, msg, sizeof msg);
    di_error ignored;
    if (!r->pg.conn || (r->range.active ? di_split_fail(&r->pg, &r->job, &r->range, msg, &ignored)
                                        : di_catalog_fail(&r->pg, r->job.id, r->hooks->owner,
                                                          r->cp.commit_id, msg, &ignored)))
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
    di_range_cleanup(&r->range);
    di_buf_cleanup(&r->json);
}

/* publish_parent publishes the split job whose last range this run
 * completed (it holds the split job now); its outcome is logged: the
 * range's own is already settled. */
static void publish_parent(const char *conninfo, const char *parent, const di_settings *s,
                           const di_job_hooks *hooks) {
    di_job_result res;
    di_error err;
    di_error_clear(&err);
    int rc = di_job_run(conninfo, parent, s, hooks, &res, &err);
    if (!hooks->log)
        return;
    char line[1400];
    if (rc == 0)
        snprintf(line, sizeof line, "split job %s completed: %lld rows, commit %s", parent,
                 (long long)res.rows, res.commit_id);
    else
        snprintf(line, sizeof line, "split job %s %s: %s", parent, res.status, err.message);
    hooks->log(hooks->ctx, line);
}

/* di_job_run: attempts until done, a permanent error or db_retries spent;
 * then settles the job and records the run's duration and error class. */
int di_job_run(const char *conninfo, const char *job_id, const di_settings *s,
               const di_job_hooks *hooks, di_job_result *res, di_error *err) {
    run r;
    memset(&r, 0, sizeof r);
    memset(res, 0, sizeof *res);
    r.s = s;
    r.hooks = hooks;
    di_buf_init(&r.json, ROW_JSON_MAX);
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
        di_metrics_retry(DI_RETRY_JOB);
        close_pipeline(&r);
        di_pg_close(&r.pg);
        backoff_sleep(&r, i);
    }
    di_heartbeat_stop(&r.hb);
    fill_result(&r, res);
    close_pipeline(&r); /* the loaders roll back what they have not committed */
    if (rc < 0)
        snprintf(res->status, sizeof res->status, "%s", settle(&r, conninfo, err));
    res->elapsed_s = now_s() - ((double)r.t0.tv_sec + (double)r.t0.tv_nsec / 1e9);
    di_metrics_job(res->elapsed_s);
    if (rc < 0 && err->code != DI_CODE_INTERRUPTED)
        di_metrics_error(err->cls);
    char parent[37];
    snprintf(parent, sizeof parent, "%s", r.publish_parent ? r.range.parent : "");
    run_cleanup(&r);
    if (parent[0])
        publish_parent(conninfo, parent, s, hooks);
    if (rc < 0 && err->code == DI_CODE_INTERRUPTED)
        return 1;
    return rc < 0 ? -1 : 0;
}
