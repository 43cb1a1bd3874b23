/* pg.c - the only file that calls libpq's query functions: connect, exec,
 * COPY, with errors classified so the job runner knows whether to retry. */
#include "sink/pg.h"

#include <stdlib.h>
#include <string.h>

/* pg_fail turns the connection's or the result's error into a di_error. A
 * broken connection, a serialization failure or a deadlock is transient. */
static int pg_fail(di_pg *pg, const PGresult *res, const char *what, di_error *err) {
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn);
    snprintf(pg->sqlstate, sizeof pg->sqlstate, "%s", state ? state : "");
    di_class cls = DI_ERR_INTERNAL;
    if (PQstatus(pg->conn) != CONNECTION_OK)
        cls = DI_ERR_TRANSIENT;
    else if (state && (strncmp(state, "08", 2) == 0 || strcmp(state, "40001") == 0 ||
                       strcmp(state, "40P01") == 0 || strncmp(state, "57P", 3) == 0 ||
                       strcmp(state, "53300") == 0))
        cls = DI_ERR_TRANSIENT;
    char clean[768];
    snprintf(clean, sizeof clean, "%s", msg && *msg ? msg : "unknown error");
    size_t n = strlen(clean);
    while (n && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
        clean[--n] = '\0';
    return di_error_set(err, cls, "database: %s%s%s%s%s%s", what, *what ? ": " : "", clean,
                        state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
}

/* ignore_notice drops server NOTICEs ("already exists, skipping"): library code
 * never prints, and nothing in them is for the user. */
static void ignore_notice(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

int di_pg_connect(di_pg *pg, const char *conninfo, di_error *err) {
    pg->conn = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(pg->conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
        PGresult *r = PQexec(pg->conn, "SET application_name = 'dsa-ingest'");
        PQclear(r);
        return 0;
    }
    /* A server that is down is worth retrying; the error text never holds the password. */
    pg_fail(pg, NULL, "cannot connect", err);
    err->cls = DI_ERR_TRANSIENT;
    PQfinish(pg->conn);
    pg->conn = NULL;
    return -1;
}

void di_pg_close(di_pg *pg) {
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
}

PGresult *di_pg_exec(di_pg *pg, const char *sql, int nparams, const char *const *params,
                     di_error *err) {
    /* Without parameters the simple protocol runs multi-statement scripts (migrations). */
    pg->sqlstate[0] = '\0';
    PGresult *res = nparams ? PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                            : PQexec(pg->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    pg_fail(pg, res, "", err);
    PQclear(res);
    return NULL;
}

int di_pg_cmd(di_pg *pg, const char *sql, int nparams, const char *const *params, di_error *err) {
    PGresult *res = di_pg_exec(pg, sql, nparams, params, err);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

int di_pg_count(di_pg *pg, const char *sql, int nparams, const char *const *params, long *affected,
                di_error *err) {
    PGresult *res = di_pg_exec(pg, sql, nparams, params, err);
    if (!res)
        return -1;
    *affected = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

int di_pg_long(di_pg *pg, const char *sql, int nparams, const char *const *params, long *value,
               di_error *err) {
    PGresult *res = di_pg_exec(pg, sql, nparams, params, err);
    if (!res)
        return -1;
    *value = PQntuples(res) ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return 0;
}

int di_pg_copy_begin(di_pg *pg, const char *copy_sql, di_error *err) {
    PGresult *res = PQexec(pg->conn, copy_sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        pg_fail(pg, res, "COPY", err);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

int di_pg_copy_put(di_pg *pg, const char *data, size_t len, di_error *err) {
    /* PQputCopyData takes an int length: send in pieces of at most 64 MiB. */
    for (size_t off = 0; off < len;) {
        size_t n = len - off > (64u << 20) ? (64u << 20) : len - off;
        if (PQputCopyData(pg->conn, data + off, (int)n) != 1)
            return pg_fail(pg, NULL, "COPY", err);
        off += n;
    }
    return 0;
}

int di_pg_copy_end(di_pg *pg, di_error *err) {
    if (PQputCopyEnd(pg->conn, NULL) != 1)
        return pg_fail(pg, NULL, "COPY", err);
    int rc = 0;
    PGresult *res;
    while ((res = PQgetResult(pg->conn)) != NULL) {
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pg_fail(pg, res, "COPY", err);
        PQclear(res);
    }
    return rc;
}

void di_pg_rollback(di_pg *pg) {
    if (pg->conn && PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(pg->conn, "ROLLBACK");
        PQclear(r);
    }
}
