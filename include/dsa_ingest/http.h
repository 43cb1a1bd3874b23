/* http.h - the HTTP endpoints (libmicrohttpd). `worker --listen` serves the
 * health and metrics routes: /healthz (the process is up), /readyz (the
 * database answers and its schema is current), /metrics (Prometheus text). */
#ifndef DSA_INGEST_HTTP_H
#define DSA_INGEST_HTTP_H

#include "dsa_ingest/error.h"
#include "dsa_ingest/job.h"
#include "dsa_ingest/worker.h"

typedef struct di_health_server di_health_server;

/* di_health_start listens on "ADDR:PORT" (or ":PORT"); stats and conninfo are
 * borrowed for the server's life. */
di_health_server *di_health_start(const char *listen, const char *conninfo,
                                  const di_worker_stats *stats, di_error *err);
void di_health_stop(di_health_server *h); /* accepts NULL */

/* `dsa-ingest serve`: the import API, S3 event triggers and live progress
 * (DESIGN §4 HTTP). It only records jobs and answers questions; workers run
 * the imports. Every string is borrowed for the server's life. */
typedef struct di_serve_opts {
    const char *listen;   /* "ADDR:PORT" (IPv4) */
    const char *conninfo; /* the database */
    const di_settings *settings;
    const char *tokens;      /* DSA_INGEST_API_TOKENS text: TOKEN[:SCOPE+SCOPE], … */
    const char *spool_dir;   /* DSA_INGEST_SPOOL_DIR; NULL: multipart uploads refused */
    long long max_upload;    /* DSA_INGEST_MAX_UPLOAD_BYTES, bytes of one uploaded file */
    long spool_retention_s;  /* DSA_INGEST_SPOOL_RETENTION_SECONDS: failed uploads kept (1 day) */
    long spool_sweep_s;      /* DSA_INGEST_SPOOL_SWEEP_SECONDS: between spool sweeps (60) */
    long max_body;           /* DSA_INGEST_MAX_BODY_BYTES, bytes of a JSON body */
    const char *event_rules; /* --event-rules / DSA_INGEST_EVENT_RULES; NULL: no routing */
    const char *allowed_schemes;  /* DSA_INGEST_ALLOWED_SCHEMES (default s3,https,http) */
    const char *allowed_buckets;  /* DSA_INGEST_ALLOWED_BUCKETS (default: any) */
    const char *allowed_hosts;    /* DSA_INGEST_ALLOWED_HOSTS (default: any public host) */
    const char *allowed_networks; /* DSA_INGEST_ALLOWED_NETWORKS: private CIDRs allowed anyway */
    const char *sns_hosts;        /* DSA_INGEST_SNS_ALLOWED_HOSTS: confirm hosts beside SNS's */
    int max_connections;          /* DSA_INGEST_MAX_CONNECTIONS (default 128) */
    int idle_timeout_s;           /* DSA_INGEST_IDLE_TIMEOUT_SECONDS: a silent client is cut (30) */
    di_log_fn log;                /* thread-safe log sink; never given a token */
    void *log_ctx;
} di_serve_opts;

typedef struct di_serve di_serve;

/* di_serve_start checks the options (tokens, rules file, spool directory,
 * allowed networks), starts the LISTEN thread and the HTTP server. */
di_serve *di_serve_start(const di_serve_opts *o, di_error *err);
void di_serve_stop(di_serve *s); /* accepts NULL; waits for open streams to end */

/* `worker --sqs-queue-url`: S3 event notifications (the bodies POST
 * /events/s3 takes) consumed from SQS by one long-polling thread; a message
 * is deleted only after the job rows of its objects are committed. */
typedef struct di_sqs_opts {
    const char *queue_url;       /* https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE */
    const char *conninfo;        /* the database */
    const char *event_rules;     /* the rules file (required) */
    const char *allowed_buckets; /* DSA_INGEST_ALLOWED_BUCKETS (default: any) */
    int wait_s;                  /* long poll, 1..20 (default 20) */
    di_log_fn log;               /* thread-safe log sink */
    void *log_ctx;
} di_sqs_opts;

typedef struct di_sqs di_sqs;

/* di_sqs_start loads the rules and the AWS credentials and starts polling. */
di_sqs *di_sqs_start(const di_sqs_opts *o, di_error *err);
void di_sqs_stop(di_sqs *q); /* accepts NULL; ends a long poll at once */

#endif
