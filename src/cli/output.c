/* output.c - how the CLI talks to people and log pipelines: log lines to
 * stderr, as text or (DSA_INGEST_LOG_FORMAT=json) one JSON object per line with
 * ts, level, msg and, when known, job_id, dataset, stage, worker, elapsed_s. */
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

int cli_log_json(void) {
    const char *f = getenv("DSA_INGEST_LOG_FORMAT");
    return f && strcasecmp(f, "json") == 0;
}

/* rfc3339_now writes the wall-clock time as RFC 3339 in UTC with milliseconds
 * ("2026-11-24T10:00:00.123Z"), the form log pipelines parse without hints. */
static void rfc3339_now(char *out, size_t outsz) {
    struct timespec now;
    struct tm tm;
    char secs[24];
    clock_gettime(CLOCK_REALTIME, &now);
    strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", gmtime_r(&now.tv_sec, &tm));
    snprintf(out, outsz, "%s.%03ldZ", secs, now.tv_nsec / 1000000L);
}

/* add_text adds a string member when it is known (non-NULL, non-empty). */
static void add_text(cJSON *o, const char *key, const char *v) {
    if (v && *v)
        cJSON_AddStringToObject(o, key, v);
}

/* add_fields adds the job context of a line; cJSON escapes every string. */
static void add_fields(cJSON *o, const cli_log_fields *f) {
    if (!f)
        return;
    add_text(o, "job_id", f->job_id);
    add_text(o, "dataset", f->dataset);
    add_text(o, "stage", f->stage);
    add_text(o, "worker", f->worker);
    if (f->elapsed_s >= 0) /* milliseconds are plenty; fewer digits for the pipeline */
        cJSON_AddNumberToObject(o, "elapsed_s", (double)(long long)(f->elapsed_s * 1000) / 1000.0);
}

/* add_error adds what kind of failure it was and where in the input, so a
 * pipeline can alert on error_class without parsing the message. */
static void add_error(cJSON *o, const di_error *err) {
    if (!err || err->cls == DI_ERR_NONE)
        return;
    cJSON_AddStringToObject(o, "error_class", di_error_class_name(err->cls));
    add_text(o, "table", err->table);
    if (err->row >= 0)
        cJSON_AddNumberToObject(o, "row", (double)err->row);
    if (err->byte >= 0)
        cJSON_AddNumberToObject(o, "byte", (double)err->byte);
}

/* emit_json writes one JSON object on one line. The line goes out in a single
 * fputs, so lines from several worker threads never interleave. */
static void emit_json(const char *level, const cli_log_fields *f, const di_error *err,
                      const char *msg) {
    char ts[40];
    rfc3339_now(ts, sizeof ts);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddStringToObject(o, "msg", msg);
    add_fields(o, f);
    add_error(o, err);
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        fprintf(stderr, "%s\n", s);
        free(s);
    }
    cJSON_Delete(o);
}

/* emit writes one log line in the chosen format; the text format is the one
 * people read on a terminal and ignores the structured context. */
static void emit(const char *level, const cli_log_fields *f, const di_error *err, const char *msg) {
    if (cli_log_json())
        emit_json(level, f, err, msg);
    else
        fprintf(stderr, "dsa-ingest: %s%s\n", err ? "error: " : "", msg);
}

void cli_log(const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    emit("info", NULL, NULL, line);
}

void cli_log_job(const cli_log_fields *f, const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    emit("info", f, NULL, line);
}

int cli_fail_job(const cli_log_fields *f, const di_error *err, const char *object) {
    char msg[1600];
    di_error_format(err, object, msg, sizeof msg);
    emit("error", f, err, msg);
    return di_exit_code(err);
}

int cli_fail(const di_error *err, const char *object) {
    return cli_fail_job(NULL, err, object);
}
