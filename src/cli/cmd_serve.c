/* cmd_serve.c - `dsa-ingest serve`: the import API, S3 event triggers and the
 * live progress page (DESIGN §4 HTTP). Reads its settings from the
 * environment (flags override), checks the schema, and serves until SIGTERM
 * or SIGINT; then open event streams end and in-flight requests finish. */
#include "cli/cli.h"
#include "dsa_ingest/http.h"
#include "dsa_ingest/sink.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char serve_usage[] =
    "usage: dsa-ingest serve [--listen ADDR:PORT] [--event-rules FILE] [--spool-dir DIR]\n"
    "                        [--max-upload BYTES] [--database URL]\n"
    "  --listen ADDR:PORT   where to answer (default 0.0.0.0:8080)\n"
    "  --event-rules FILE   S3 event routing rules (DSA_INGEST_EVENT_RULES)\n"
    "  --spool-dir DIR      where uploads are spooled for the workers (DSA_INGEST_SPOOL_DIR)\n"
    "  --max-upload BYTES   largest uploaded file (DSA_INGEST_MAX_UPLOAD_BYTES, 10 GiB)\n"
    "Tokens: DSA_INGEST_API_TOKENS or DSA_INGEST_API_TOKENS_FILE (TOKEN[:read+import+events]).\n"
    "Sources: DSA_INGEST_ALLOWED_SCHEMES, _BUCKETS, _HOSTS, _NETWORKS (see docs/api.md).\n";

static volatile sig_atomic_t serve_stop;

/* on_signal asks the server to stop. */
static void on_signal(int sig) {
    (void)sig;
    serve_stop = 1;
}

/* log_line is the server's log sink. */
static void log_line(void *ctx, const char *line) {
    (void)ctx;
    cli_log("%s", line);
}

/* env_or gives the variable's value, or def when unset or empty. */
static const char *env_or(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* parse_size reads a whole positive number of bytes. */
static int parse_size(const char *name, const char *v, long long *out, di_error *err) {
    char *end;
    errno = 0;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (!v)
        return 0;
    if (errno || end == v || *end || n < 1)
        return di_error_set(err, DI_ERR_CONFIG, "%s=%s: expected a whole number >= 1", name, v);
    *out = n;
    return 0;
}

/* read_tokens_file reads the tokens file (at most 64 KiB; caller frees). */
static char *read_tokens_file(const char *path, di_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) {
        di_error_set(err, DI_ERR_CONFIG, "DSA_INGEST_API_TOKENS_FILE %s: cannot open: %s", path,
                     strerror(errno));
        return NULL;
    }
    char *text = calloc(1, 65537);
    size_t n = text ? fread(text, 1, 65536, f) : 0;
    int more = fgetc(f) != EOF;
    fclose(f);
    if (!text || more) {
        free(text);
        di_error_set(err, DI_ERR_CONFIG, "DSA_INGEST_API_TOKENS_FILE %s: larger than 64 KiB", path);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

/* load_env fills the options that come from the environment. */
static int load_env(di_serve_opts *o, char **tokens_text, di_error *err) {
    long long v = 0;
    const char *file = env_or("DSA_INGEST_API_TOKENS_FILE", NULL);
    o->tokens = env_or("DSA_INGEST_API_TOKENS", NULL);
    if (!o->tokens && file && !(o->tokens = *tokens_text = read_tokens_file(file, err)))
        return -1;
    o->spool_dir = env_or("DSA_INGEST_SPOOL_DIR", NULL);
    o->event_rules = env_or("DSA_INGEST_EVENT_RULES", NULL);
    o->allowed_schemes = env_or("DSA_INGEST_ALLOWED_SCHEMES", NULL);
    o->allowed_buckets = env_or("DSA_INGEST_ALLOWED_BUCKETS", NULL);
    o->allowed_hosts = env_or("DSA_INGEST_ALLOWED_HOSTS", NULL);
    o->allowed_networks = env_or("DSA_INGEST_ALLOWED_NETWORKS", NULL);
    o->sns_hosts = env_or("DSA_INGEST_SNS_ALLOWED_HOSTS", NULL);
    if (parse_size("DSA_INGEST_MAX_UPLOAD_BYTES", env_or("DSA_INGEST_MAX_UPLOAD_BYTES", NULL),
                   &o->max_upload, err) ||
        parse_size("DSA_INGEST_MAX_BODY_BYTES", env_or("DSA_INGEST_MAX_BODY_BYTES", NULL), &v, err))
        return -1;
    o->max_body = (long)v;
    v = 0;
    if (parse_size("DSA_INGEST_SPOOL_RETENTION_SECONDS",
                   env_or("DSA_INGEST_SPOOL_RETENTION_SECONDS", NULL), &v, err))
        return -1;
    o->spool_retention_s = (long)v;
    v = 0;
    if (parse_size("DSA_INGEST_SPOOL_SWEEP_SECONDS", env_or("DSA_INGEST_SPOOL_SWEEP_SECONDS", NULL),
                   &v, err))
        return -1;
    o->spool_sweep_s = (long)v;
    v = 0;
    if (parse_size("DSA_INGEST_MAX_CONNECTIONS", env_or("DSA_INGEST_MAX_CONNECTIONS", NULL), &v,
                   err))
        return -1;
    o->max_connections = v > 0 && v < 65536 ? (int)v : 0;
    v = 0;
    if (parse_size("DSA_INGEST_IDLE_TIMEOUT_SECONDS",
                   env_or("DSA_INGEST_IDLE_TIMEOUT_SECONDS", NULL), &v, err))
        return -1;
    o->idle_timeout_s = v > 0 && v < 86400 ? (int)v : 0;
    return 0;
}

/* parse_serve_args reads the flags over the environment; -1 on a usage error. */
static int parse_serve_args(int argc, char **argv, di_serve_opts *o, const char **database,
                            di_error *err) {
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"event-rules", required_argument, NULL, 'r'},
                                         {"spool-dir", required_argument, NULL, 's'},
                                         {"max-upload", required_argument, NULL, 'm'},
                                         {"database", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o->listen = optarg;
            break;
        case 'r':
            o->event_rules = optarg;
            break;
        case 's':
            o->spool_dir = optarg;
            break;
        case 'm':
            if (parse_size("--max-upload", optarg, &o->max_upload, err))
                return -1;
            break;
        case 'd':
            *database = optarg;
            break;
        case 'h':
            fputs(serve_usage, stdout);
            exit(0);
        default:
            return -1;
        }
    }
    return optind < argc ? -1 : 0;
}

/* cmd_serve: settings, database check, then serve until a signal. */
int cmd_serve(int argc, char **argv) {
    di_settings s;
    di_serve_opts o = {.listen = "0.0.0.0:8080", .settings = &s, .log = log_line};
    const char *database = NULL;
    char *tokens_text = NULL;
    di_error err;
    di_error_clear(&err);
    if (di_settings_load(&s, &err) || load_env(&o, &tokens_text, &err))
        return cli_fail(&err, NULL);
    if (parse_serve_args(argc, argv, &o, &database, &err)) {
        free(tokens_text);
        if (err.cls != DI_ERR_NONE)
            return cli_fail(&err, NULL);
        fputs(serve_usage, stderr);
        return EXIT_USAGE;
    }
    int embedded = 0, applied = 0;
    o.conninfo = cli_database(database, &embedded, &err);
    di_serve *srv = NULL;
    if (o.conninfo && (embedded ? di_migrate(o.conninfo, &applied, &err)
                                : di_migrate_check(o.conninfo, &err)) == 0)
        srv = di_serve_start(&o, &err);
    if (!srv) {
        free(tokens_text);
        return cli_fail(&err, NULL);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    cli_log("serve: listening on %s%s%s%s%s", o.listen, o.spool_dir ? ", uploads spooled to " : "",
            o.spool_dir ? o.spool_dir : "", o.event_rules ? ", event rules from " : "",
            o.event_rules ? o.event_rules : "");
    while (!serve_stop)
        nanosleep(&(struct timespec){0, 100000000L}, NULL);
    cli_log("serve: stopping");
    di_serve_stop(srv);
    free(tokens_text);
    return 0;
}
