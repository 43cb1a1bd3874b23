/* sink.h - stage 5 and the catalog: PostgreSQL.
 *
 * The schema (migrations compiled into the binary), and what the job runner and
 * the CLI ask of the database. The batch transaction itself is in job/. */
#ifndef DSA_INGEST_SINK_H
#define DSA_INGEST_SINK_H

#include "dsa_ingest/error.h"

/* di_migrate applies every embedded migration not yet applied, in order, each
 * once, under an advisory lock (safe from many pods at once). *applied gets the
 * number applied now. */
DI_MUSTCHECK int di_migrate(const char *conninfo, int *applied, di_error *err);

/* di_migrate_check fails with a config error naming `dsa-ingest migrate` when
 * the database's schema is older than this binary's. */
DI_MUSTCHECK int di_migrate_check(const char *conninfo, di_error *err);

/* di_migrate_latest: the newest migration version built in. */
int di_migrate_latest(void);

#endif
