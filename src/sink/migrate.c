/* migrate.c - applies the numbered sql/ files embedded in the binary, each
 * once, recorded in dsa_ingest.schema_migrations, under an advisory lock so
 * that many pods starting together apply each migration exactly once. */
#include "dsa_ingest/sink.h"
#include "sink/migrations.h"
#include "sink/pg.h"

#include <stdio.h>
#include <stdlib.h>

#define MIGRATE_LOCK   "SELECT pg_advisory_lock(hashtext('dsa-ingest:migrate'))"
#define MIGRATE_UNLOCK "SELECT pg_advisory_unlock(hashtext('dsa-ingest:migrate'))"

static const char *const version_table_sql =
    "CREATE SCHEMA IF NOT EXISTS dsa_ingest;"
    "CREATE TABLE IF NOT EXISTS dsa_ingest.schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

int di_migrate_latest(void) {
    return di_migrations_count ? di_migrations[di_migrations_count - 1].version : 0;
}

/* current_version reads the newest applied migration; 0 when none (or no table). */
static int current_version(di_pg *pg, int *version, di_error *err) {
    PGresult *r = di_pg_exec(pg,
                             "SELECT coalesce((SELECT max(version) FROM "
                             "dsa_ingest.schema_migrations), 0) "
                             "WHERE to_regclass('dsa_ingest.schema_migrations') IS NOT NULL",
                             0, NULL, err);
    if (!r)
        return -1;
    *version = PQntuples(r) ? (int)strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return 0;
}

/* apply_one runs one migration and records it, in one transaction. */
static int apply_one(di_pg *pg, const struct di_migration *m, di_error *err) {
    char ver[16];
    snprintf(ver, sizeof ver, "%d", m->version);
    const char *params[] = {ver, m->name};
    if (di_pg_cmd(pg, "BEGIN", 0, NULL, err) || di_pg_cmd(pg, m->sql, 0, NULL, err) ||
        di_pg_cmd(pg, "INSERT INTO dsa_ingest.schema_migrations (version, name) VALUES ($1, $2)", 2,
                  params, err) ||
        di_pg_cmd(pg, "COMMIT", 0, NULL, err)) {
        di_pg_rollback(pg);
        di_error_prefix(err, m->name);
        return -1;
    }
    return 0;
}

/* apply_pending runs, under the lock, every migration newer than the database. */
static int apply_pending(di_pg *pg, int *applied, di_error *err) {
    int have = 0;
    if (di_pg_cmd(pg, version_table_sql, 0, NULL, err) || current_version(pg, &have, err))
        return -1;
    for (int i = 0; i < di_migrations_count; i++) {
        if (di_migrations[i].version <= have)
            continue;
        if (apply_one(pg, &di_migrations[i], err))
            return -1;
        (*applied)++;
    }
    return 0;
}

int di_migrate(const char *conninfo, int *applied, di_error *err) {
    di_pg pg;
    *applied = 0;
    if (di_pg_connect(&pg, conninfo, err))
        return -1;
    int rc = di_pg_cmd(&pg, MIGRATE_LOCK, 0, NULL, err);
    if (rc == 0) {
        rc = apply_pending(&pg, applied, err);
        di_error unlock_err;
        if (di_pg_cmd(&pg, MIGRATE_UNLOCK, 0, NULL, &unlock_err) != 0) {
            /* harmless: closing the session just below releases the lock too */
        }
    }
    di_pg_close(&pg);
    return rc;
}

int di_migrate_check(const char *conninfo, di_error *err) {
    di_pg pg;
    int have = 0;
    if (di_pg_connect(&pg, conninfo, err))
        return -1;
    int rc = current_version(&pg, &have, err);
    di_pg_close(&pg);
    if (rc)
        return -1;
    if (have < di_migrate_latest())
        return di_error_set(err, DI_ERR_CONFIG,
                            "the database schema is at version %d, this dsa-ingest needs %d: "
                            "run `dsa-ingest migrate` first",
                            have, di_migrate_latest());
    return 0;
}
