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

int cmd_migrate(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_jobs(int argc, char **argv);

#endif
