/* cmd_worker.c - `dsa-ingest worker`: the Helm-deployed workhorse. Runs
 * --concurrency slots against the queue; SIGTERM/SIGINT let every running job
 * commit its batch and go back to pending, then the process exits 0. */
#include "cli/cli.h"
#include "dsa_ingest/http.h"
#include "dsa_ingest/sink.h"
#include "dsa_ingest/worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char worker_usage[] =
    "usage: dsa-ingest worker [--concurrency N] [--listen ADDR:PORT] [--once] [--database URL]\n"
    "  --concurrency N     jobs at once (default IMPORT_PARALLEL_WORKERS)\n"
    "  --listen ADDR:PORT  serve /healthz, /readyz and /metrics\n"
    "  --once              drain the queue, then exit\n";

static volatile sig_atomic_t worker_stop;

/* on_signal asks every slot to finish its batch and hand its job back. */
static void on_signal(int sig) {
    (void)sig;
    worker_stop = 1;
}

/* log_line is the worker's log sink (stdio locks per call: lines never mix). */
static void log_line(void *ctx, const char *line) {
    (void)ctx;
    cli_log("%s", line);
}

/* parse_worker_args reads the options; -1 on a usage error. */
static int parse_worker_args(int argc, char **argv, di_worker_opts *o, const char **listen,
                             const char **database) {
    static const struct option opts[] = {{"concurrency", required_argument, NULL, 'c'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"once", no_argument, NULL, 'o'},
                                         {"database", required_argument, NULL, 'd'},
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
        case 'h':
            fputs(worker_usage, stdout);
            exit(0);
        default:
            return -1;
        }
    }
    return optind < argc ? -1 : 0;
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
    int embedded = 0, applied = 0;
    o.conninfo = cli_database(database, &embedded, &err);
    if (!o.conninfo ||
        (embedded ? di_migrate(o.conninfo, &applied, &err) : di_migrate_check(o.conninfo, &err)))
        return cli_fail(&err, NULL);
    di_health_server *hs = NULL;
    if (listen && !(hs = di_health_start(listen, o.conninfo, &stats, &err)))
        return cli_fail(&err, NULL);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    cli_log("worker: %d slot%s%s%s", o.concurrency, o.concurrency == 1 ? "" : "s",
            o.once ? ", until the queue is empty" : "", listen ? ", health on " : "");
    int rc = di_worker_run(&o, &err);
    di_health_stop(hs);
    if (rc)
        return cli_fail(&err, NULL);
    cli_log("worker: stopped (%lld completed, %lld failed, %lld handed back)",
            (long long)stats.jobs_completed, (long long)stats.jobs_failed,
            (long long)stats.jobs_handed_back);
    return 0;
}
