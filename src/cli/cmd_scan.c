/* cmd_scan.c - `dsa-ingest scan SOURCE`: everything an import does short of
 * the database. It streams, decodes, parses, encodes and hashes every row
 * and prints what it found: tables, columns with inferred types, rows,
 * bytes, and the rate. A dry run for a new source, and the benchmark of the
 * client side of an import. With more than one CPU, three threads share the
 * work: the reader's read-ahead (source, inflate), this one (parse), and a
 * worker (canonical JSON, hash, profile; scan_work.h). */
#include "cli/cli.h"
#include "cli/readopts.h"
#include "cli/scan_work.h"
#include "dsa_ingest/job.h"
#include "dsa_ingest/profile.h"
#include "dsa_ingest/reader.h"
#include "dsa_ingest/row.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char scan_usage[] = "usage: dsa-ingest scan SOURCE [options]\n"
                                 "\n"
                                 "Reads SOURCE as an import would, without a database, and prints "
                                 "its tables,\ncolumns, inferred types, rows, bytes and rows/s.\n"
                                 "%s"
                                 "  --max-errors N          skip up to N bad records\n"
                                 "  --json                  print one JSON object\n"
                                 "  --s3-endpoint URL       an S3-compatible store\n";

typedef struct scan_args {
    const char *source, *format, *compression, *encoding;
    char delimiter;
    int header, json;
    long max_errors;
} scan_args;

/* The reading thread's fields first, then, on cache lines of their own (two
 * threads writing one line would pass it to and fro per record), the
 * worker's: the main thread touches those only at a scan_work_sync. */
typedef struct scan_state {
    di_reader *reader;
    int64_t seq;
    int64_t rows, rejects;
    scan_work *work; /* NULL: records are encoded on this thread */
    _Alignas(64) di_profile profile;
    di_row_layout layout;
    int have_layout;
    di_buf json;
    int64_t hashed;           /* rows encoded so far */
    unsigned char digest[16]; /* XOR of row hashes: a cheap order-free fingerprint */
} scan_state;

/* usage_error prints a usage mistake; exit code 2. */
static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "dsa-ingest scan: %s%s%s\n\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, scan_usage, cli_read_usage);
    return EXIT_USAGE;
}

/* parse_args reads the command line. Returns 0, or an exit code. */
static int parse_args(int argc, char **argv, scan_args *a) {
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"compression", required_argument, NULL, 'c'},
                                         {"delimiter", required_argument, NULL, 'd'},
                                         {"header", no_argument, NULL, 'T'},
                                         {"no-header", no_argument, NULL, 'H'},
                                         {"encoding", required_argument, NULL, 'e'},
                                         {"max-errors", required_argument, NULL, 'x'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"s3-endpoint", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *a = (scan_args){.format = "auto", .compression = "auto", .header = -1};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            a->format = optarg;
            break;
        case 'c':
            a->compression = optarg;
            break;
        case 'd':
            if (cli_parse_delimiter(optarg, &a->delimiter))
                return usage_error("--delimiter takes one character", optarg);
            break;
        case 'T':
            a->header = 1;
            break;
        case 'H':
            a->header = 0;
            break;
        case 'e':
            a->encoding = optarg;
            break;
        case 'x':
            if (cli_parse_long(optarg, 0, &a->max_errors))
                return usage_error("--max-errors takes a number >= 0", optarg);
            break;
        case 'j':
            a->json = 1;
            break;
        case 'S':
            setenv("AWS_ENDPOINT_URL_S3", optarg, 1);
            break;
        case 'h':
            printf(scan_usage, cli_read_usage);
            exit(0);
        default:
            return usage_error("bad option", NULL);
        }
    }
    if (optind < argc)
        a->source = argv[optind++];
    if (!a->source || optind < argc)
        return usage_error(a->source ? "unexpected argument" : "SOURCE is required",
                           a->source ? argv[optind] : NULL);
    const char *bad = cli_check_read_values(a->format, a->compression);
    return bad ? usage_error(bad, NULL) : 0;
}

/* reader_options: the settings (environment) and the flags. */
static int reader_options(const scan_args *a, const di_settings *s, di_reader_opts *o) {
    di_settings_reader_opts(s, o);
    o->url = a->source;
    if (di_format_parse(a->format, &o->format) ||
        di_compression_parse(a->compression, &o->compression))
        return -1;
    o->delimiter = a->delimiter;
    o->header = a->header;
    o->encoding = a->encoding;
    return 0;
}

/* enter_table follows the reader into a new table: layout and profile, once
 * the worker is done with the records of the table before. */
static int enter_table(scan_state *st) {
    if (st->seq == di_reader_table_seq(st->reader))
        return 0;
    if (st->work && scan_work_sync(st->work))
        return -1;
    st->seq = di_reader_table_seq(st->reader);
    if (st->have_layout)
        di_row_layout_cleanup(&st->layout);
    size_t n = 0;
    const char *const *cols = di_reader_columns(st->reader, &n);
    st->have_layout = cols != NULL;
    if (cols && di_row_layout_init(&st->layout, cols, n))
        return -1;
    return di_profile_table(&st->profile, di_reader_table(st->reader), cols, n);
}

/* work_record encodes and hashes the row exactly as an import would, and
 * profiles it (on the worker when there is one). */
static int work_record(void *ctx, const di_record *rec) {
    scan_state *st = ctx;
    int rc = rec->names ? di_row_json_keyed(rec->names, rec->fields, rec->lens, rec->kinds,
                                            rec->nfields, &st->json)
                        : di_row_json(&st->layout, rec->fields, rec->lens, rec->kinds, &st->json);
    if (rc)
        return -1;
    char hex[DI_HASH_HEX + 1];
    di_row_hash(st->json.data, st->json.len, hex);
    st->digest[st->hashed % 16] ^= (unsigned char)hex[st->hashed % DI_HASH_HEX];
    st->hashed++;
    return di_profile_add(&st->profile, rec);
}

/* add_record hands the record to the worker, or does its work here. */
static int add_record(scan_state *st, const di_record *rec) {
    return st->work ? scan_work_add(st->work, rec) : work_record(st, rec);
}

/* start_worker starts the encoding thread when there is a CPU for it; without
 * one (or without memory for it) the records are encoded on this thread. */
static void start_worker(scan_state *st) {
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
        st->work = scan_work_start(work_record, st);
}

/* scan_all reads every record; errors past --max-errors stop it. */
static int scan_all(scan_state *st, const scan_args *a, di_error *err) {
    di_record rec;
    int rc;
    while ((rc = di_reader_next(st->reader, &rec, err)) != 0) {
        if (rc < 0) {
            if (err->code != DI_CODE_RECORD || st->rejects >= a->max_errors)
                return -1;
            st->rejects++;
            char line[1400];
            di_error_format(err, NULL, line, sizeof line);
            cli_log("skipped: %s", line);
            continue;
        }
        if (enter_table(st) || add_record(st, &rec))
            return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        st->rows++;
    }
    if ((st->work && scan_work_sync(st->work)) || (st->profile.ntables == 0 && enter_table(st)))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    return 0;
}

/* print_text prints the tables and the totals for a terminal. */
static void print_text(const scan_state *st, double elapsed) {
    const di_reader *r = st->reader;
    printf("source       %s\n", di_reader_display(r));
    printf("compression  %s\n", di_compression_name(di_reader_compression(r)));
    printf("format       %s", di_format_name(di_reader_format(r)));
    if (di_reader_format(r) == DI_FMT_CSV || di_reader_format(r) == DI_FMT_TSV)
        printf(" (delimiter %s, %s)",
               di_reader_delimiter(r) == '\t' ? "TAB"
                                              : (char[]){'\'', di_reader_delimiter(r), '\'', 0},
               di_reader_header(r) ? "header row" : "no header row");
    printf("\n");
    for (size_t i = 0; i < st->profile.ntables; i++) {
        const di_table_profile *t = &st->profile.tables[i];
        printf("\ntable %s: %lld rows, %zu columns\n", t->key, (long long)t->rows, t->ncols);
        for (size_t k = 0; k < t->ncols; k++) {
            const di_column_stats *c = &t->cols[k];
            printf("  %-32s %-10s nulls %lld, empty %lld\n", c->name, di_type_name(c->mask),
                   (long long)c->nulls, (long long)c->empties);
        }
    }
    double mb = (double)di_reader_bytes_out(r) / 1e6;
    printf("\nrows %lld, rejected %lld; %lld bytes read, %lld decoded; %.2f s, %.0f rows/s, "
           "%.1f MB/s decoded\n",
           (long long)st->rows, (long long)st->rejects, (long long)di_reader_bytes_in(r),
           (long long)di_reader_bytes_out(r), elapsed, elapsed > 0 ? (double)st->rows / elapsed : 0,
           elapsed > 0 ? mb / elapsed : 0);
}

/* print_json prints one object: the profile and the totals. */
static void print_json(const scan_state *st, double elapsed) {
    const di_reader *r = st->reader;
    cJSON *o = di_profile_to_json(&st->profile, 0);
    cJSON_AddStringToObject(o, "source", di_reader_display(r));
    cJSON_AddStringToObject(o, "compression", di_compression_name(di_reader_compression(r)));
    cJSON_AddStringToObject(o, "format", di_format_name(di_reader_format(r)));
    char d[2] = {di_reader_delimiter(r), 0};
    cJSON_AddStringToObject(o, "delimiter", d);
    cJSON_AddBoolToObject(o, "header", di_reader_header(r));
    cJSON_AddNumberToObject(o, "rows", (double)st->rows);
    cJSON_AddNumberToObject(o, "rejects", (double)st->rejects);
    cJSON_AddNumberToObject(o, "bytes_read", (double)di_reader_bytes_in(r));
    cJSON_AddNumberToObject(o, "bytes_decoded", (double)di_reader_bytes_out(r));
    cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
    cJSON_AddNumberToObject(o, "rows_per_s", elapsed > 0 ? (double)st->rows / elapsed : 0);
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        puts(s);
    free(s);
    cJSON_Delete(o);
}

/* mono_s is a monotonic clock in seconds. */
static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int cmd_scan(int argc, char **argv) {
    scan_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    di_settings s;
    di_error err;
    di_error_clear(&err);
    di_reader_opts o;
    if (di_settings_load(&s, &err))
        return cli_fail(&err, NULL);
    if (reader_options(&a, &s, &o))
        return usage_error("bad --format or --compression", NULL);
    scan_state st;
    memset(&st, 0, sizeof st);
    di_profile_init(&st.profile);
    di_buf_init(&st.json, (size_t)1 << 30);
    double t0 = mono_s();
    st.reader = di_reader_open(&o, NULL, &err);
    if (st.reader)
        start_worker(&st);
    rc = st.reader ? scan_all(&st, &a, &err) : -1;
    double elapsed = mono_s() - t0;
    if (rc == 0 && a.json)
        print_json(&st, elapsed);
    else if (rc == 0)
        print_text(&st, elapsed);
    int code = rc == 0 ? 0 : cli_fail(&err, st.reader ? di_reader_display(st.reader) : a.source);
    scan_work_stop(st.work); /* first: the worker uses layout, profile and json */
    di_reader_close(st.reader);
    if (st.have_layout)
        di_row_layout_cleanup(&st.layout);
    di_profile_cleanup(&st.profile);
    di_buf_cleanup(&st.json);
    return code;
}
