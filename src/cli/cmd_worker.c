/* cmd_worker.c - `dsa-ingest worker`: the Helm-deployed workhorse. Runs
 * --concurrency slots against the queue; SIGTERM/SIGINT let every running job
 * commit its batch and go back to pending, then the process exits 0. */
#include "cli/cli.h"
#include "dsa_ingest/http.h"
#include "dsa_ingest/sink.h"
#include "dsa_ingest/worker.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char worker_usage[] =
    "usage: dsa-ingest worker [--concurrency N] [--listen ADDR:PORT] [--once] [--database URL]\n"
    "  --concurrency N     jobs at once (default IMPORT_PARALLEL_WORKERS)\n"
    "  --listen ADDR:PORT  serve /healthz, /readyz and /metrics\n"
    "  --once              drain the queue, then exit\n"
    "  --sqs-queue-url URL also queue jobs from S3 event notifications in this SQS queue,\n"
    "                      routed by --event-rules FILE (or DSA_INGEST_EVENT_RULES)\n";

static volatile sig_atomic_t worker_stop;
static const char *sqs_queue_url, *sqs_event_rules; /* --sqs-queue-url, --event-rules */

/* on_signal asks every slot to finish its batch and hand its job back. */
static void on_signal(int sig) {
    (void)sig;
    worker_stop = 1;
}

/* What each slot runs, for the job_id/stage/elapsed_s of JSON log lines. The
 * slots' lines are "host:pid:slot: TEXT"; the runner's lines carry no job id,
 * so the slot's last "job ID claimed" tells which job they are about. Slots
 * log from their own threads, hence the lock. */
typedef struct slot_job {
    char owner[160];
    char job_id[37];
    double started;
} slot_job;

static slot_job slot_jobs[256]; /* --concurrency is at most 256 */
static pthread_mutex_t slot_jobs_lock = PTHREAD_MUTEX_INITIALIZER;

/* mono_s is a monotonic clock in seconds. */
static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* job_word reads "job <uuid> " at the start of text: the id into id, and
 * returns the word after it (NULL when text does not start so). */
static const char *job_word(const char *text, char id[37]) {
    if (strncmp(text, "job ", 4) != 0)
        return NULL;
    for (int i = 0; i < 36; i++) {
        char ch = text[4 + i];
        if (!(isxdigit((unsigned char)ch) ||
              (ch == '-' && (i == 8 || i == 13 || i == 18 || i == 23))))
            return NULL;
    }
    if (text[40] != ' ')
        return NULL;
    memcpy(id, text + 4, 36);
    id[36] = '\0';
    return text + 41;
}

/* slot_entry finds (or takes a free) entry for owner; call with the lock held. */
static slot_job *slot_entry(const char *owner, size_t len) {
    slot_job *free_one = NULL;
    for (size_t i = 0; i < sizeof slot_jobs / sizeof slot_jobs[0]; i++) {
        slot_job *e = &slot_jobs[i];
        if (e->owner[0] && strlen(e->owner) == len && memcmp(e->owner, owner, len) == 0)
            return e;
        if (!e->owner[0] && !free_one)
            free_one = e;
    }
    if (free_one && len < sizeof free_one->owner)
        snprintf(free_one->owner, sizeof free_one->owner, "%.*s", (int)len, owner);
    return free_one && free_one->owner[0] ? free_one : NULL;
}

/* slot_context fills f (job_id, stage, elapsed_s) for one slot line's text
 * and updates what the slot runs: claimed starts a job, any other "job ID
 * WORD" line is its outcome and ends it. */
static void slot_context(slot_job *e, const char *text, cli_log_fields *f, char id[37]) {
    const char *word = job_word(text, id);
    if (word && strncmp(word, "claimed", 7) == 0) {
        snprintf(e->job_id, sizeof e->job_id, "%s", id);
        e->started = mono_s();
        f->stage = "claim";
        f->elapsed_s = 0;
    } else if (word) {
        f->stage = "done";
        f->elapsed_s = strcmp(e->job_id, id) == 0 ? mono_s() - e->started : -1;
        e->job_id[0] = '\0';
    } else if (strncmp(text, "queue: ", 7) == 0) {
        f->stage = "queue";
    } else if (e->job_id[0]) {
        snprintf(id, 37, "%s", e->job_id);
        f->stage = "load";
        f->elapsed_s = mono_s() - e->started;
    }
    f->job_id = id[0] ? id : NULL;
}

/* log_line is the worker's log sink (stdio locks per call: lines never mix).
 * Text lines stay as the slots wrote them; JSON lines carry the context. */
static void log_line(void *ctx, const char *line) {
    (void)ctx;
    const char *sep = strstr(line, ": ");
    if (!cli_log_json() || !sep) {
        cli_log("%s", line);
        return;
    }
    char owner[160], id[37] = "";
    snprintf(owner, sizeof owner, "%.*s", (int)(sep - line), line);
    cli_log_fields f = {.worker = owner, .stage = "worker", .elapsed_s = -1};
    pthread_mutex_lock(&slot_jobs_lock);
    slot_job *e = slot_entry(line, (size_t)(sep - line));
    if (e)
        slot_context(e, sep + 2, &f, id);
    pthread_mutex_unlock(&slot_jobs_lock);
    cli_log_job(&f, "%s", sep + 2);
}

/* parse_worker_args reads the options; -1 on a usage error. */
static int parse_worker_args(int argc, char **argv, di_worker_opts *o, const char **listen,
                             const char **database) {
    static const struct option opts[] = {{"concurrency", required_argument, NULL, 'c'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"once", no_argument, NULL, 'o'},
                                         {"database", required_argument, NULL, 'd'},
                                         {"sqs-queue-url", required_argument, NULL, 'q'},
                                         {"event-rules", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            errno = 0;
            o->concurrency = (int)strtol(optarg, &end, 10);
            if (errno || *end || o->concurrency < 1 || o->concurrency > 256)
                return -1;
            break;
        case 'l':
            *listen = optarg;
            break;
        case 'o':
            o->once = 1;
            break;
        case 'd':
            *database = optarg;
            break;
        case 'q':
            sqs_queue_url = optarg;
            break;
        case 'r':
            sqs_event_rules = optarg;
            break;
        case 'h':
            fputs(worker_usage, stdout);
            exit(0);
        default:
            return -1;
        }
    }
    return optind < argc ? -1 : 0;
}

/* start_sqs starts the SQS consumer of --sqs-queue-url (NULL without one). */
static int start_sqs(const char *conninfo, di_sqs **out, di_error *err) {
    const char *rules = getenv("DSA_INGEST_EVENT_RULES");
    const char *buckets = getenv("DSA_INGEST_ALLOWED_BUCKETS");
    di_sqs_opts q = {.queue_url = sqs_queue_url,
                     .conninfo = conninfo,
                     .event_rules = sqs_event_rules ? sqs_event_rules : rules,
                     .allowed_buckets = buckets,
                     .log = log_line};
    const char *wait = getenv("DSA_INGEST_SQS_WAIT_SECONDS");
    q.wait_s = wait ? (int)strtol(wait, NULL, 10) : 20;
    *out = NULL;
    return sqs_queue_url && !(*out = di_sqs_start(&q, err)) ? -1 : 0;
}

int cmd_worker(int argc, char **argv) {
    di_settings s;
    di_worker_stats stats;
    memset(&stats, 0, sizeof stats);
    di_worker_opts o = {.settings = &s, .stop = &worker_stop, .log = log_line, .stats = &stats};
    const char *listen = NULL, *database = NULL;
    di_error err;
    di_error_clear(&err);
    if (parse_worker_args(argc, argv, &o, &listen, &database)) {
        fputs(worker_usage, stderr);
        return EXIT_USAGE;
    }
    if (di_settings_load(&s, &err))
        return cli_fail(&err, NULL);
    if (o.concurrency == 0)
        o.concurrency = (int)s.parallel_workers;
    /* IMPORT_PARALLEL_WORKERS is the process's parallelism: its slots, and
     * the loading connections they share (at least one per job). */
    s.load_connections =
        s.parallel_workers / o.concurrency > 1 ? s.parallel_workers / o.concurrency : 1;
    int embedded = 0, applied = 0;
    o.conninfo = cli_database(database, &embedded, &err);
    if (!o.conninfo ||
        (embedded ? di_migrate(o.conninfo, &applied, &err) : di_migrate_check(o.conninfo, &err)))
        return cli_fail(&err, NULL);
    di_health_server *hs = NULL;
    if (listen && !(hs = di_health_start(listen, o.conninfo, &stats, &err)))
        return cli_fail(&err, NULL);
    di_sqs *sqs = NULL;
    if (start_sqs(o.conninfo, &sqs, &err)) {
        di_health_stop(hs);
        return cli_fail(&err, NULL);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    cli_log_job(&(cli_log_fields){.stage = "worker", .elapsed_s = -1}, "worker: %d slot%s%s%s%s",
                o.concurrency, o.concurrency == 1 ? "" : "s",
                o.once ? ", until the queue is empty" : "", listen ? ", health on " : "",
                listen ? listen : "");
    int rc = di_worker_run(&o, &err);
    di_sqs_stop(sqs);
    di_health_stop(hs);
    if (rc)
        return cli_fail(&err, NULL);
    cli_log_job(&(cli_log_fields){.stage = "worker", .elapsed_s = -1},
                "worker: stopped (%lld completed, %lld failed, %lld handed back)",
                (long long)stats.jobs_completed, (long long)stats.jobs_failed,
                (long long)stats.jobs_handed_back);
    return 0;
}
