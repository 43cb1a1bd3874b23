/* pg.h - the one wrapper around libpq (private to the library).
 *
 * Every statement is parameterised; every failure becomes a di_error whose
 * class follows from the SQLSTATE and the connection state: a lost connection
 * or a serialization failure is transient, anything else internal. */
#ifndef DI_SINK_PG_H
#define DI_SINK_PG_H

#include <libpq-fe.h>
#include "dsa_ingest/error.h"

typedef struct di_pg {
    PGconn *conn;
    char sqlstate[6]; /* after a failed call, its SQLSTATE ("" when it had none,
                         as when the connection was lost) */
} di_pg;

DI_MUSTCHECK int di_pg_connect(di_pg *pg, const char *conninfo, di_error *err);
void di_pg_close(di_pg *pg);

/* di_pg_exec runs one statement with text parameters (NULL entries are SQL NULL)
 * and returns its result, or NULL with err set. The caller PQclear()s it. */
PGresult *di_pg_exec(di_pg *pg, const char *sql, int nparams, const char *const *params,
                     di_error *err);

/* di_pg_cmd runs one statement and discards its result. */
DI_MUSTCHECK int di_pg_cmd(di_pg *pg, const char *sql, int nparams, const char *const *params,
                           di_error *err);

/* di_pg_count runs one statement and gives the number of rows it affected. */
DI_MUSTCHECK int di_pg_count(di_pg *pg, const char *sql, int nparams, const char *const *params,
                             long *affected, di_error *err);

/* di_pg_long runs a query of one row and gives its first column as a number
 * (a count, say). */
DI_MUSTCHECK int di_pg_long(di_pg *pg, const char *sql, int nparams, const char *const *params,
                            long *value, di_error *err);

/* COPY … FROM STDIN in pieces: di_pg_copy_begin starts `copy_sql`, di_pg_copy_put
 * sends data (libpq buffers it and flushes as its buffer fills), di_pg_copy_end
 * finishes the COPY and reports its result. After a failed put, still call
 * di_pg_copy_end (or roll back) to leave the COPY state. */
DI_MUSTCHECK int di_pg_copy_begin(di_pg *pg, const char *copy_sql, di_error *err);
DI_MUSTCHECK int di_pg_copy_put(di_pg *pg, const char *data, size_t len, di_error *err);
DI_MUSTCHECK int di_pg_copy_end(di_pg *pg, di_error *err);

/* di_pg_rollback ends a failed transaction; harmless when none is open. */
void di_pg_rollback(di_pg *pg);

#endif
