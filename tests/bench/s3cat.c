/* s3cat.c - reads one object through dsa-ingest's source stage (any URL that
 * di_source_open takes: s3://, http(s)://, a path) to the end, with no
 * database, and prints bytes, seconds, MB/s and the source's counters as one
 * JSON line: the S3 benchmark's probe (tests/bench/bench_s3_scan.py). */
#include "dsa_ingest/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* now_s is a monotonic clock for the throughput figure. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* drain reads s to its end in chunk-sized pieces; returns the bytes read or -1. */
static long long drain(di_source *s, char *buf, size_t cap, di_error *err) {
    long long total = 0;
    size_t n;
    do {
        if (di_source_read(s, buf, cap, &n, err) != 0)
            return -1;
        total += (long long)n;
    } while (n > 0);
    return total;
}

/* report prints the one JSON line the benchmark parses. */
static void report(const di_source *s, long long bytes, double secs) {
    di_source_stats st;
    di_source_get_stats(s, &st);
    printf("{\"bytes\": %lld, \"seconds\": %.6f, \"mb_per_s\": %.3f, \"requests\": %d, "
           "\"retries\": %d, \"size\": %lld}\n",
           bytes, secs, secs > 0 ? (double)bytes / 1e6 / secs : 0.0, st.requests, st.retries,
           (long long)di_source_size(s));
}

/* main: s3cat URL [OFFSET]; IMPORT_CHUNK_SIZE sets the read size as in an import. */
int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: s3cat URL [OFFSET]\n");
        return 2;
    }
    di_source_opts o;
    di_error err;
    di_source_opts_default(&o);
    const char *cs = getenv("IMPORT_CHUNK_SIZE");
    if (cs && strtoul(cs, NULL, 10) > 0)
        o.chunk_size = strtoul(cs, NULL, 10);
    char *buf = malloc(o.chunk_size);
    di_error_clear(&err);
    double t0 = now_s();
    di_source *s =
        buf ? di_source_open(argv[1], argc == 3 ? strtoll(argv[2], NULL, 10) : 0, &o, &err) : NULL;
    long long n = s ? drain(s, buf, o.chunk_size, &err) : -1;
    double secs = now_s() - t0;
    if (n < 0) {
        char msg[1400];
        di_error_format(&err, argv[1], msg, sizeof msg);
        fprintf(stderr, "s3cat: %s\n", msg);
    } else {
        report(s, n, secs);
    }
    di_source_close(s);
    free(buf);
    return n < 0 ? di_exit_code(&err) : 0;
}
