/* settings.c - the settings of DESIGN §4 as one table of {name, target,
 * default, minimum} (after pgbouncer), read from the environment. */
#include "dsa_ingest/job.h"
#include "dsa_ingest/reader.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

struct setting {
    const char *name;
    size_t offset;
    long def;
    long min;
};

#define S(field) offsetof(di_settings, field)
static const struct setting settings[] = {
    {"IMPORT_BATCH_SIZE", S(batch_size), 10000, 1},
    {"IMPORT_CHUNK_SIZE", S(chunk_size), 1048576, 4096},
    {"IMPORT_PARALLEL_WORKERS", S(parallel_workers), 4, 1},
    {"IMPORT_PROGRESS_UPDATE_INTERVAL", S(progress_interval), 10, 1},
    {"IMPORT_STALL_TIMEOUT", S(stall_timeout_s), 30, 1},
    {"IMPORT_MAX_RETRIES", S(max_retries), 8, 0},
    {"IMPORT_RETRY_BACKOFF_MS", S(retry_backoff_ms), 200, 1},
    {"IMPORT_RETRY_MAX_SECONDS", S(retry_max_s), 120, 1},
    {"IMPORT_DB_RETRIES", S(db_retries), 5, 0},
    {"IMPORT_MAX_FIELD_SIZE", S(max_field), 16L << 20, 1024},
    {"IMPORT_MAX_COLUMNS", S(max_columns), 16384, 1},
    {"IMPORT_LEASE_SECONDS", S(lease_s), 60, 2},
    {"IMPORT_POLL_INTERVAL", S(poll_interval_s), 5, 1},
    {"IMPORT_JOB_MAX_ATTEMPTS", S(job_max_attempts), 5, 1},
    {"IMPORT_MAX_DECOMPRESSED_BYTES", S(max_decompressed), 1L << 40, 0},
    {"IMPORT_MAX_COMPRESSION_RATIO", S(max_ratio), 500, 0},
    {"IMPORT_XLSX_MAX_XML_DEPTH", S(max_xml_depth), 256, 8},
    {"IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES", S(max_shared_strings), 256L << 20, 1024},
    {"IMPORT_SPLIT_MIN_BYTES", S(split_min_bytes), 1L << 30, 0},
    {"IMPORT_SPLIT_RANGE_BYTES", S(split_range_bytes), 256L << 20, 4096},
    {"IMPORT_STAGE_MIN_BYTES", S(stage_min_bytes), 32L << 20, 0},
};
#undef S

/* parse_long reads a whole decimal number, refusing trailing junk. */
static int parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

int di_settings_load(di_settings *s, di_error *err) {
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        const struct setting *d = &settings[i];
        long *target = (long *)((char *)s + d->offset);
        *target = d->def;
        const char *v = getenv(d->name);
        if (!v || !*v)
            continue;
        if (parse_long(v, target) || *target < d->min)
            return di_error_set(err, DI_ERR_CONFIG, "%s=%s: expected a whole number >= %ld",
                                d->name, v, d->min);
    }
    s->load_connections = s->parallel_workers;
    return 0;
}

void di_settings_reader_opts(const di_settings *s, di_reader_opts *o) {
    di_reader_opts_default(o);
    o->source.chunk_size = (size_t)s->chunk_size;
    o->source.max_retries = (int)s->max_retries;
    o->source.retry_max_s = (double)s->retry_max_s;
    o->source.backoff_base_s = (double)s->retry_backoff_ms / 1000.0;
    o->source.stall_s = (int)s->stall_timeout_s;
    o->max_field = (size_t)s->max_field;
    o->max_columns = (size_t)s->max_columns;
    o->max_decompressed = s->max_decompressed;
    o->max_ratio = (double)s->max_ratio;
    o->max_xml_depth = (size_t)s->max_xml_depth;
    o->max_shared_strings = (size_t)s->max_shared_strings;
}
