/* test_metrics.c - the metrics registry (util/metrics.h): histogram buckets are
 * cumulative and end in +Inf equal to _count, counters land under the right
 * labels, every family has HELP and TYPE, and updates from several threads
 * are all counted. */
#include "util/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* render returns the exposition text (caller frees). */
static char *render(void) {
    di_buf b;
    di_buf_init(&b, 1 << 20);
    CHECK_INT(di_metrics_render(&b), 0);
    char *text = strdup(b.data ? b.data : "");
    di_buf_cleanup(&b);
    return text;
}

/* has_line tells whether text holds exactly this line. */
static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static const char *const want_lines[] = {
    "# TYPE dsa_ingest_batch_duration_seconds histogram",
    "dsa_ingest_batch_duration_seconds_bucket{le=\"0.005\"} 1",
    "dsa_ingest_batch_duration_seconds_bucket{le=\"0.05\"} 2",
    "dsa_ingest_batch_duration_seconds_bucket{le=\"1\"} 3",
    "dsa_ingest_batch_duration_seconds_bucket{le=\"60\"} 3",
    "dsa_ingest_batch_duration_seconds_bucket{le=\"+Inf\"} 4",
    "dsa_ingest_batch_duration_seconds_sum 121.051000",
    "dsa_ingest_batch_duration_seconds_count 4",
    "# TYPE dsa_ingest_job_run_duration_seconds histogram",
    "dsa_ingest_job_run_duration_seconds_bucket{le=\"0.5\"} 0",
    "dsa_ingest_job_run_duration_seconds_bucket{le=\"5\"} 1",
    "dsa_ingest_job_run_duration_seconds_bucket{le=\"+Inf\"} 1",
    "dsa_ingest_job_run_duration_seconds_count 1",
    "# TYPE dsa_ingest_retries_total counter",
    "dsa_ingest_retries_total{stage=\"source\"} 2",
    "dsa_ingest_retries_total{stage=\"job\"} 1",
    "# TYPE dsa_ingest_errors_total counter",
    "dsa_ingest_errors_total{class=\"input\"} 0",
    "dsa_ingest_errors_total{class=\"config\"} 2",
    "dsa_ingest_errors_total{class=\"transient\"} 1",
    "dsa_ingest_errors_total{class=\"internal\"} 0",
    "# TYPE dsa_ingest_s3_requests_total counter",
    "dsa_ingest_s3_requests_total{code=\"none\"} 1",
    "dsa_ingest_s3_requests_total{code=\"other\"} 1",
    "dsa_ingest_s3_requests_total{code=\"200\"} 2",
    "dsa_ingest_s3_requests_total{code=\"503\"} 1",
};

/* test_render records a known set of events and checks every line above. */
static void test_render(void) {
    di_metrics_reset();
    di_metrics_batch(0.001); /* <= 0.005 */
    di_metrics_batch(0.05);  /* on a bound: that bucket */
    di_metrics_batch(1);
    di_metrics_batch(120); /* past the last bound: +Inf only */
    di_metrics_job(3);
    di_metrics_retry(DI_RETRY_SOURCE);
    di_metrics_retry(DI_RETRY_SOURCE);
    di_metrics_retry(DI_RETRY_JOB);
    di_metrics_error(DI_ERR_CONFIG);
    di_metrics_error(DI_ERR_CONFIG);
    di_metrics_error(DI_ERR_TRANSIENT);
    di_metrics_error(DI_ERR_NONE); /* not an error: not counted */
    di_metrics_s3_request(200);
    di_metrics_s3_request(200);
    di_metrics_s3_request(503);
    di_metrics_s3_request(0);
    di_metrics_s3_request(999);
    char *text = render();
    for (size_t i = 0; i < sizeof want_lines / sizeof want_lines[0]; i++) {
        int ok = has_line(text, want_lines[i]);
        if (!ok)
            fprintf(stderr, "  missing line: %s\n", want_lines[i]);
        CHECK(ok);
    }
    CHECK(strstr(text, "code=\"404\"") == NULL); /* statuses never seen are left out */
    free(text);
}

/* test_help_everywhere: every TYPE line follows its family's HELP line. */
static void test_help_everywhere(void) {
    char *text = render();
    int types = 0;
    for (char *p = strstr(text, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
        char name[128], help[160];
        CHECK(sscanf(p, "# TYPE %127s", name) == 1);
        snprintf(help, sizeof help, "# HELP %s ", name);
        CHECK(strstr(text, help) != NULL && strstr(text, help) < p);
        types++;
    }
    CHECK_INT(types, 5);
    free(text);
}

#define THREADS 4
#define PER     20000

/* hammer records PER events of each kind. */
static void *hammer(void *arg) {
    for (int i = 0; i < PER; i++) {
        di_metrics_batch(0.01);
        di_metrics_retry(DI_RETRY_SOURCE);
        di_metrics_s3_request(206);
    }
    return arg;
}

/* test_threads: no update is lost when slots record at once. */
static void test_threads(void) {
    pthread_t t[THREADS];
    di_metrics_reset();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *text = render();
    char line[128];
    snprintf(line, sizeof line, "dsa_ingest_batch_duration_seconds_count %d", THREADS * PER);
    CHECK(has_line(text, line));
    snprintf(line, sizeof line, "dsa_ingest_retries_total{stage=\"source\"} %d", THREADS * PER);
    CHECK(has_line(text, line));
    snprintf(line, sizeof line, "dsa_ingest_s3_requests_total{code=\"206\"} %d", THREADS * PER);
    CHECK(has_line(text, line));
    free(text);
}

int main(void) {
    test_render();
    test_help_everywhere();
    test_threads();
    return check_report();
}
