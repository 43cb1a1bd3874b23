/* output.c - how the CLI talks to people and log pipelines: log lines to
 * stderr, as text or (DSA_INGEST_LOG_FORMAT=json) one JSON object per line. */
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* json_logs tells whether DSA_INGEST_LOG_FORMAT asks for JSON lines. */
static int json_logs(void) {
    const char *f = getenv("DSA_INGEST_LOG_FORMAT");
    return f && strcmp(f, "json") == 0;
}

/* emit writes one log line in the chosen format. */
static void emit(const char *level, const char *msg) {
    if (!json_logs()) {
        fprintf(stderr, "dsa-ingest: %s%s\n", strcmp(level, "error") == 0 ? "error: " : "", msg);
        return;
    }
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddStringToObject(o, "msg", msg);
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        fprintf(stderr, "%s\n", s);
    free(s);
    cJSON_Delete(o);
}

void cli_log(const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    emit("info", line);
}

int cli_fail(const di_error *err, const char *object) {
    char msg[1600];
    di_error_format(err, object, msg, sizeof msg);
    emit("error", msg);
    return di_exit_code(err);
}
