/* serve_metrics.c - GET /metrics for `serve`, in the Prometheus text format:
 * the server's own counters (requests by route and status, events by outcome,
 * uploads, event streams) and the queue as the database tells it (jobs by
 * status, rows and bytes imported, job retries, job durations as a
 * histogram). Every family has its HELP and TYPE lines. */
#include "http/serve.h"
#include "sink/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const route_names[DI_ROUTE_COUNT] = {
    "none",   "ui",   "healthz",    "readyz",     "metrics",
    "import", "jobs", "job_status", "job_events", "events_s3"};
static const char *const outcome_names[DI_EV_COUNT] = {
    "received", "queued", "duplicate", "unmatched", "ignored", "refused", "failed"};
static const double duration_buckets[] = {1, 5, 15, 60, 300, 900, 3600, 14400, 86400};
#define NBUCKETS (sizeof duration_buckets / sizeof duration_buckets[0])

/* load reads one counter. */
static long long load(const int64_t *v) {
    return (long long)__atomic_load_n(v, __ATOMIC_RELAXED);
}

/* family writes the HELP and TYPE lines of one metric. */
static int family(di_buf *b, const char *name, const char *type, const char *help) {
    return di_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* render_requests writes the request counters that are not zero. */
static int render_requests(di_buf *b, const di_serve_stats *st) {
    static const unsigned statuses[] = DI_STATUSES;
    int rc = family(b, "dsa_ingest_http_requests_total", "counter",
                    "HTTP requests answered by serve, by route and status code.");
    for (int r = 1; r < DI_ROUTE_COUNT; r++)
        for (int i = 0; i < DI_NSTATUS; i++) {
            long long v = load(&st->requests[r][i]);
            char code[8];
            snprintf(code, sizeof code, "%u", i < DI_NSTATUS - 1 ? statuses[i] : 0);
            if (v)
                rc |= di_buf_printf(b,
                                    "dsa_ingest_http_requests_total{route=\"%s\",code=\"%s\"} "
                                    "%lld\n",
                                    route_names[r], i < DI_NSTATUS - 1 ? code : "other", v);
        }
    long long unknown = 0;
    for (int i = 0; i < DI_NSTATUS; i++)
        unknown += load(&st->requests[0][i]);
    return rc |
           di_buf_printf(b, "dsa_ingest_http_requests_total{route=\"none\",code=\"404\"} %lld\n",
                         unknown);
}

/* render_own writes the server's counters. */
static int render_own(di_buf *b, const di_serve_stats *st) {
    int rc = render_requests(b, st);
    rc |= family(b, "dsa_ingest_events_total", "counter",
                 "S3 objects announced by event notifications, by what became of them.");
    for (int i = 0; i < DI_EV_COUNT; i++)
        rc |= di_buf_printf(b, "dsa_ingest_events_total{outcome=\"%s\"} %lld\n", outcome_names[i],
                            load(&st->events[i]));
    rc |= family(b, "dsa_ingest_uploads_total", "counter", "Multipart uploads, by outcome.");
    rc |= di_buf_printf(b,
                        "dsa_ingest_uploads_total{outcome=\"accepted\"} %lld\n"
                        "dsa_ingest_uploads_total{outcome=\"too_large\"} %lld\n"
                        "dsa_ingest_uploads_total{outcome=\"failed\"} %lld\n",
                        load(&st->uploads_accepted), load(&st->uploads_too_large),
                        load(&st->uploads_failed));
    rc |= family(b, "dsa_ingest_upload_bytes_total", "counter",
                 "Bytes of uploaded files spooled for accepted uploads.");
    rc |= di_buf_printf(b, "dsa_ingest_upload_bytes_total %lld\n", load(&st->upload_bytes));
    rc |= family(b, "dsa_ingest_sse_clients", "gauge", "Open job event streams.");
    rc |= di_buf_printf(b, "dsa_ingest_sse_clients %lld\n", load(&st->sse_clients));
    rc |= family(b, "dsa_ingest_sse_events_total", "counter", "Job events sent to streams.");
    rc |= di_buf_printf(b, "dsa_ingest_sse_events_total %lld\n", load(&st->sse_events));
    rc |= family(b, "dsa_ingest_notifications_total", "counter",
                 "Job change notifications received through LISTEN.");
    rc |= di_buf_printf(b, "dsa_ingest_notifications_total %lld\n", load(&st->notifications));
    rc |= family(b, "dsa_ingest_listen_reconnects_total", "counter",
                 "Times the LISTEN connection was made again after it was lost.");
    rc |=
        di_buf_printf(b, "dsa_ingest_listen_reconnects_total %lld\n", load(&st->listen_reconnects));
    rc |= family(b, "dsa_ingest_sns_confirmations_total", "counter",
                 "SNS subscription confirmations, by outcome.");
    return rc | di_buf_printf(b,
                              "dsa_ingest_sns_confirmations_total{outcome=\"confirmed\"} %lld\n"
                              "dsa_ingest_sns_confirmations_total{outcome=\"refused\"} %lld\n",
                              load(&st->sns_confirmed), load(&st->sns_refused));
}

#define QUEUE_SQL                                                                                  \
    "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = "          \
    "'running'), count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = "   \
    "'failed'), coalesce(sum(CASE WHEN jsonb_typeof(output_summary->'rows') = 'number' THEN "      \
    "(output_summary->>'rows')::numeric END) FILTER (WHERE status = 'completed'), 0), "            \
    "coalesce(sum(CASE WHEN jsonb_typeof(output_summary->'bytes') = 'number' THEN "                \
    "(output_summary->>'bytes')::numeric END) FILTER (WHERE status = 'completed'), 0), "           \
    "coalesce(sum(greatest(attempts - 1, 0)), 0), "                                                \
    "coalesce(sum(extract(epoch FROM completed_at - created_at)) FILTER (WHERE status = "          \
    "'completed'), 0) FROM dsa_jobs.analysis_runs WHERE run_type = 'import'"

#define BUCKETS_SQL                                                                                \
    "SELECT b, count(d.x) FROM unnest($1::float8[]) b LEFT JOIN (SELECT extract(epoch FROM "       \
    "completed_at - created_at)::float8 AS x FROM dsa_jobs.analysis_runs WHERE run_type = "        \
    "'import' AND status = 'completed' AND completed_at IS NOT NULL) d ON d.x <= b "               \
    "GROUP BY b ORDER BY b"

/* render_durations writes the job duration histogram (queued to completed). */
static int render_durations(di_buf *b, di_pg *pg, long long count, const char *sum, di_error *err) {
    char arr[256] = "{";
    for (size_t i = 0; i < NBUCKETS; i++)
        snprintf(arr + strlen(arr), sizeof arr - strlen(arr), "%s%g", i ? "," : "",
                 duration_buckets[i]);
    snprintf(arr + strlen(arr), sizeof arr - strlen(arr), "}");
    const char *p[] = {arr};
    PGresult *r = di_pg_exec(pg, BUCKETS_SQL, 1, p, err);
    if (!r)
        return -1;
    int rc = family(b, "dsa_ingest_job_duration_seconds", "histogram",
                    "Seconds from queued to completed, of completed import jobs.");
    for (int i = 0; i < PQntuples(r) && i < (int)NBUCKETS; i++)
        rc |= di_buf_printf(b, "dsa_ingest_job_duration_seconds_bucket{le=\"%g\"} %s\n",
                            duration_buckets[i], PQgetvalue(r, i, 1));
    PQclear(r);
    return rc | di_buf_printf(b,
                              "dsa_ingest_job_duration_seconds_bucket{le=\"+Inf\"} %lld\n"
                              "dsa_ingest_job_duration_seconds_sum %s\n"
                              "dsa_ingest_job_duration_seconds_count %lld\n",
                              count, sum, count);
}

/* render_queue writes what the database says about the import jobs. */
static int render_queue(di_buf *b, const char *conninfo, di_error *err) {
    di_pg pg;
    if (di_pg_connect(&pg, conninfo, err))
        return -1;
    PGresult *r = di_pg_exec(&pg, QUEUE_SQL, 0, NULL, err);
    int rc = r ? 0 : -1;
    if (r) {
        rc |= family(b, "dsa_ingest_queue_jobs", "gauge", "Import jobs in the queue, by status.");
        static const char *const st[] = {"pending", "running", "completed", "failed"};
        for (int i = 0; i < 4; i++)
            rc |= di_buf_printf(b, "dsa_ingest_queue_jobs{status=\"%s\"} %s\n", st[i],
                                PQgetvalue(r, 0, i));
        rc |= family(b, "dsa_ingest_imported_rows_total", "counter",
                     "Rows imported by completed jobs (from their output_summary).");
        rc |= di_buf_printf(b, "dsa_ingest_imported_rows_total %s\n", PQgetvalue(r, 0, 4));
        rc |= family(b, "dsa_ingest_imported_bytes_total", "counter",
                     "Source bytes read by completed jobs (from their output_summary).");
        rc |= di_buf_printf(b, "dsa_ingest_imported_bytes_total %s\n", PQgetvalue(r, 0, 5));
        rc |= family(b, "dsa_ingest_job_retries_total", "counter",
                     "Runs of import jobs beyond their first (transient failures, lost leases).");
        rc |= di_buf_printf(b, "dsa_ingest_job_retries_total %s\n", PQgetvalue(r, 0, 6));
        long long completed = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        char sum[64];
        snprintf(sum, sizeof sum, "%s", PQgetvalue(r, 0, 7));
        PQclear(r);
        if (rc == 0)
            rc = render_durations(b, &pg, completed, sum, err);
    }
    di_pg_close(&pg);
    return rc;
}

/* di_serve_metrics renders the server's counters, then the queue's numbers. */
enum MHD_Result di_serve_metrics(di_serve *s, di_request *r, struct MHD_Connection *c) {
    di_buf b;
    di_buf_init(&b, 1 << 20);
    di_error err;
    di_error_clear(&err);
    int rc = render_own(&b, &s->stats);
    di_buf q;
    di_buf_init(&q, 1 << 20);
    int up = rc == 0 && render_queue(&q, s->o.conninfo, &err) == 0;
    rc |= family(&b, "dsa_ingest_database_up", "gauge",
                 "1 when the last scrape could read the job queue, else 0.");
    rc |= di_buf_printf(&b, "dsa_ingest_database_up %d\n", up);
    if (up && q.len)
        rc |= di_buf_append(&b, q.data, q.len);
    di_buf_cleanup(&q);
    enum MHD_Result ok =
        rc ? di_serve_error(s, r, c, 500, "metrics text too large")
           : di_serve_text(s, r, c, 200, "text/plain; version=0.0.4", b.data, b.len);
    di_buf_cleanup(&b);
    return ok;
}
