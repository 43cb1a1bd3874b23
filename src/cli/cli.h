/* cli.h - what the subcommands of the dsa-ingest CLI share: the database to
 * use, the user-facing output (log lines, errors) and the exit codes. */
#ifndef DI_CLI_H
#define DI_CLI_H

#include "dsa_ingest/error.h"

#define EXIT_USAGE 2

/* cli_database resolves the database (DESIGN §4): --database, DATABASE_URL,
 * libpq's PG* variables, else the embedded cluster, started on demand (then
 * *embedded = 1). Returns a conninfo string the caller must not free. */
const char *cli_database(const char *flag, int *embedded, di_error *err);

/* cli_embedded_start ensures the embedded cluster under $DSA_INGEST_HOME runs
 * and returns its conninfo. */
const char *cli_embedded_start(di_error *err);

/* cli_log prints "dsa-ingest: LINE" to stderr (or a JSON object per line). */
void cli_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cli_fail prints the error and returns its exit code. */
int cli_fail(const di_error *err, const char *object);

/* What a log line is about, for log pipelines: with DSA_INGEST_LOG_FORMAT=json
 * each known member becomes a field of the line's object; the text format
 * ignores them. Any pointer may be NULL and elapsed_s < 0 when not known. */
typedef struct cli_log_fields {
    const char *job_id;
    const char *dataset; /* as given: a name or an id */
    const char *stage;   /* setup | load | done (import); worker | claim | load | done | queue */
    const char *worker;  /* the lease holder: host:pid:slot */
    double elapsed_s;    /* seconds since the job (or this run of it) started */
} cli_log_fields;

/* cli_log_job is cli_log with the job's context f (may be NULL). */
void cli_log_job(const cli_log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cli_fail_job is cli_fail with the job's context f (may be NULL). */
int cli_fail_job(const cli_log_fields *f, const di_error *err, const char *object);

/* cli_log_json tells whether DSA_INGEST_LOG_FORMAT asks for JSON lines. */
int cli_log_json(void);

int cmd_migrate(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
