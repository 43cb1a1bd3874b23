/* cmd_import.c - `dsa-ingest import`: record the job, run it in-process through
 * the same queue row a worker would use, report the outcome (DESIGN §4). */
#include "cli/cli.h"
#include "cli/readopts.h"
#include "cli/progress.h"
#include "dsa_ingest/job.h"
#include "dsa_ingest/sink.h"
#include "dsa_ingest/source.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char import_usage[] =
    "usage: dsa-ingest import SOURCE --dataset NAME|ID [options]\n"
    "       dsa-ingest import --resume JOB_ID [--json]\n"
    "\n"
    "SOURCE is a path, file://, http://, https:// or s3://bucket/key.\n"
    "  --dataset NAME|ID       the dataset (created when a name is new)\n"
    "  --ref NAME              the ref to move (default main)\n"
    "  --message TEXT          the commit message\n"
    "  --mode snapshot|update  replace all tables, or only the imported ones\n"
    "%s"
    "  --max-errors N          skip up to N bad records (listed as rejects), then fail\n"
    "  --batch-size N          rows per batch transaction (IMPORT_BATCH_SIZE)\n"
    "  --json                  print one JSON object with the outcome\n"
    "  --database URL          PostgreSQL (else DATABASE_URL, PG*, or embedded)\n"
    "  --s3-endpoint URL       an S3-compatible store (else AWS_ENDPOINT_URL)\n"
    "  --resume JOB_ID         continue a killed import from its checkpoint\n";

typedef struct import_args {
    di_import_request req;
    const char *database;
    const char *resume;
    int json;
} import_args;

/* import_ctx is what the runner's hooks see: the progress bar, and what the
 * log lines are about (the fields of DSA_INGEST_LOG_FORMAT=json). */
typedef struct import_ctx {
    cli_progress bar;
    cli_log_fields log;
    char job_id[37];
    char dataset[32]; /* the dataset's id, when only that is known */
    double started;   /* monotonic seconds when the load started */
} import_ctx;

/* mono_s is a monotonic clock in seconds. */
static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* one_of checks an enumerated option's value. */
static int one_of(const char *v, const char *const *allowed) {
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0)
            return 1;
    return 0;
}

/* usage_error prints a usage problem and returns exit code 2. */
static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "dsa-ingest import: %s%s%s\n\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, import_usage, cli_read_usage);
    return -1;
}

/* check_values validates the enumerated options. */
static int check_values(const import_args *a) {
    static const char *const modes[] = {"snapshot", "update", NULL};
    if (!one_of(a->req.mode, modes))
        return usage_error("--mode must be snapshot or update", a->req.mode);
    const char *bad = cli_check_read_values(a->req.format, a->req.compression);
    if (bad)
        return usage_error(bad, NULL);
    if (!a->resume && (!a->req.source || !a->req.dataset))
        return usage_error("SOURCE and --dataset are required", NULL);
    return 0;
}

/* parse_args reads the command line into a. */
static int parse_args(int argc, char **argv, import_args *a) {
    static const struct option opts[] = {{"dataset", required_argument, NULL, 'D'},
                                         {"ref", required_argument, NULL, 'r'},
                                         {"message", required_argument, NULL, 'm'},
                                         {"mode", required_argument, NULL, 'M'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"compression", required_argument, NULL, 'c'},
                                         {"delimiter", required_argument, NULL, 'd'},
                                         {"no-header", no_argument, NULL, 'H'},
                                         {"header", no_argument, NULL, 'T'},
                                         {"encoding", required_argument, NULL, 'e'},
                                         {"max-errors", required_argument, NULL, 'x'},
                                         {"batch-size", required_argument, NULL, 'b'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"database", required_argument, NULL, 'B'},
                                         {"resume", required_argument, NULL, 'R'},
                                         {"s3-endpoint", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->req = (di_import_request){
        .ref = "main", .mode = "snapshot", .format = "auto", .compression = "auto", .header = -1};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'D':
            a->req.dataset = optarg;
            break;
        case 'r':
            a->req.ref = optarg;
            break;
        case 'm':
            a->req.message = optarg;
            break;
        case 'M':
            a->req.mode = optarg;
            break;
        case 'f':
            a->req.format = optarg;
            break;
        case 'c':
            a->req.compression = optarg;
            break;
        case 'H':
            a->req.header = 0;
            break;
        case 'T':
            a->req.header = 1;
            break;
        case 'e':
            a->req.encoding = optarg;
            break;
        case 'x':
            if (cli_parse_long(optarg, 0, &a->req.max_errors))
                return usage_error("--max-errors takes a number >= 0", optarg);
            break;
        case 'j':
            a->json = 1;
            break;
        case 'B':
            a->database = optarg;
            break;
        case 'R':
            a->resume = optarg;
            break;
        case 'd':
            if (cli_parse_delimiter(optarg, &a->req.delimiter))
                return usage_error("--delimiter takes one character", optarg);
            break;
        case 'b':
            if (cli_parse_long(optarg, 1, &a->req.batch_size))
                return usage_error("--batch-size takes a positive number", optarg);
            break;
        case 'S': /* an S3-compatible store (MinIO, Ceph): path-style addressing */
            setenv("AWS_ENDPOINT_URL_S3", optarg, 1);
            break;
        case 'h':
            printf(import_usage, cli_read_usage);
            exit(0);
        default:
            return usage_error("bad option", NULL);
        }
    }
    if (optind < argc)
        a->req.source = argv[optind++];
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    return check_values(a);
}

/* print_json prints the outcome object of DESIGN §4. */
static void print_json(const di_job_result *r, const di_error *err) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "job_id", r->job_id);
    cJSON_AddStringToObject(o, "status", r->status[0] ? r->status : "failed");
    cJSON_AddStringToObject(o, "commit_id", r->commit_id);
    cJSON_AddNumberToObject(o, "dataset_id", (double)r->dataset_id);
    cJSON_AddStringToObject(o, "ref", r->ref);
    cJSON_AddNumberToObject(o, "rows_imported", (double)r->rows);
    cJSON_AddNumberToObject(o, "bytes_read", (double)r->bytes_read);
    cJSON_AddNumberToObject(o, "tables", r->tables);
    cJSON_AddNumberToObject(o, "rejects", r->rejects);
    cJSON_AddNumberToObject(o, "elapsed_s", (double)(long long)(r->elapsed_s * 1000) / 1000.0);
    if (err->cls != DI_ERR_NONE) {
        char msg[1600];
        di_error_format(err, r->object, msg, sizeof msg);
        cJSON_AddStringToObject(o, "error", msg);
        cJSON_AddStringToObject(o, "error_class", di_error_class_name(err->cls));
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        puts(s);
    free(s);
    cJSON_Delete(o);
}

/* log_line forwards the runner's log lines, with the job's context. */
static void log_line(void *ctx, const char *line) {
    import_ctx *c = ctx;
    cli_progress_done(&c->bar);
    c->log.elapsed_s = mono_s() - c->started;
    cli_log_job(&c->log, "%s", line);
}

/* on_progress redraws the bar (the hooks' ctx is the whole import_ctx). */
static void on_progress(void *ctx, const di_progress *p) {
    import_ctx *c = ctx;
    cli_progress_update(&c->bar, p);
}

/* log_context starts the log context of one import: the job and dataset are
 * filled in as they become known. */
static void log_context(import_ctx *c, const import_args *a) {
    memset(c, 0, sizeof *c);
    c->log = (cli_log_fields){
        .job_id = c->job_id, .dataset = a->req.dataset, .stage = "setup", .elapsed_s = -1};
}

/* log_outcome fills the context from the job's result for the final lines. */
static void log_outcome(import_ctx *c, const di_job_result *res) {
    if (res->job_id[0])
        snprintf(c->job_id, sizeof c->job_id, "%s", res->job_id);
    if (!c->log.dataset && res->dataset_id > 0) {
        snprintf(c->dataset, sizeof c->dataset, "%ld", res->dataset_id);
        c->log.dataset = c->dataset;
    }
    if (res->elapsed_s > 0)
        c->log.elapsed_s = res->elapsed_s;
    c->log.stage = "done";
}

/* prepare_database resolves the database and its schema: the embedded one is
 * migrated on demand; any other must have been migrated by `dsa-ingest migrate`. */
static const char *prepare_database(const import_args *a, di_error *err) {
    int embedded = 0, applied = 0;
    const char *conninfo = cli_database(a->database, &embedded, err);
    if (!conninfo)
        return NULL;
    int rc = embedded ? di_migrate(conninfo, &applied, err) : di_migrate_check(conninfo, err);
    return rc ? NULL : conninfo;
}

/* report prints the outcome for people or for --json, and picks the exit code. */
static int report(const import_args *a, import_ctx *c, const di_job_result *res,
                  const di_error *err) {
    if (a->json)
        print_json(res, err);
    if (strcmp(c->log.stage, "setup") != 0)
        log_outcome(c, res);
    if (err->cls != DI_ERR_NONE) {
        int code = cli_fail_job(&c->log, err, res->object);
        if ((strcmp(res->status, "running") == 0 || strcmp(res->status, "pending") == 0) &&
            res->job_id[0])
            cli_log_job(&c->log, "job %s is resumable: dsa-ingest import --resume %s", res->job_id,
                        res->job_id);
        return code;
    }
    cli_log_job(&c->log,
                "job %s: imported %lld rows (%lld bytes) into dataset %ld, ref %s, as commit %s "
                "in %.1f s (%.0f rows/s)",
                res->job_id, (long long)res->rows, (long long)res->bytes_read, res->dataset_id,
                res->ref, res->commit_id, res->elapsed_s,
                res->elapsed_s > 0 ? (double)res->rows / res->elapsed_s : 0.0);
    return 0;
}

static volatile sig_atomic_t import_stop;

/* on_signal asks the import to stop after the current batch. */
static void on_signal(int sig) {
    (void)sig;
    import_stop = 1;
}

/* absolute_source makes a relative local path absolute, so any worker on this
 * machine (or a later --resume from elsewhere) finds the same file. */
static void absolute_source(import_args *a, char *buf, size_t bufsz) {
    const char *src = a->req.source;
    if (!src || src[0] == '/' || strstr(src, "://"))
        return;
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) {
        snprintf(buf, bufsz, "%s/%s", cwd, src);
        a->req.source = buf;
    }
}

/* claim_job creates the job (or takes over the one to resume) for owner. */
static int claim_job(const import_args *a, const char *conninfo, const char *owner,
                     const di_settings *s, char job_id[37], int *done, di_error *err) {
    *done = 0;
    if (!a->resume)
        return di_job_create(conninfo, &a->req, owner, s->lease_s, job_id, err);
    snprintf(job_id, 37, "%s", a->resume);
    return di_job_takeover(conninfo, job_id, owner, s->lease_s, done, err);
}

/* log_start says what is about to happen; from here on lines are about the load. */
static void log_start(const import_args *a, import_ctx *c) {
    char shown[1024];
    c->log.stage = "load";
    c->log.elapsed_s = 0;
    c->started = mono_s();
    if (a->resume) {
        cli_log_job(&c->log, "job %s: resuming from its checkpoint", c->job_id);
        return;
    }
    di_url_redact(a->req.source, shown, sizeof shown);
    cli_log_job(&c->log, "job %s: importing %s into dataset %s, ref %s", c->job_id, shown,
                a->req.dataset, a->req.ref);
}

int cmd_import(int argc, char **argv) {
    import_args a;
    if (parse_args(argc, argv, &a))
        return EXIT_USAGE;
    di_error err;
    di_error_clear(&err);
    di_settings s;
    char owner[160];
    di_job_result res;
    memset(&res, 0, sizeof res);
    const char *conninfo = NULL;
    int done = 0;
    char absolute[4200];
    absolute_source(&a, absolute, sizeof absolute);
    di_worker_id(owner, sizeof owner, -1);
    import_ctx ctx;
    log_context(&ctx, &a);
    if (di_settings_load(&s, &err) || !(conninfo = prepare_database(&a, &err)) ||
        claim_job(&a, conninfo, owner, &s, ctx.job_id, &done, &err))
        return report(&a, &ctx, &res, &err);
    log_start(&a, &ctx);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    cli_progress_init(&ctx.bar);
    di_job_hooks hooks = {on_progress, log_line, &ctx, owner, &import_stop};
    int rc = di_job_run(conninfo, ctx.job_id, &s, &hooks, &res, &err);
    if (rc == 0 && strcmp(res.status, "split") == 0) /* its ranges, with any workers */
        rc = di_job_run_split(conninfo, ctx.job_id, &s, &hooks, &res, &err);
    cli_progress_done(&ctx.bar);
    if (rc == 0)
        di_error_clear(&err);
    return report(&a, &ctx, &res, &err);
}
