/* error.h - the one error type of dsa-ingest.
 *
 * A di_error is filled where a failure happens and carried up by return codes.
 * Its class decides what the caller does next; its location (table, row, byte)
 * tells the user exactly where in the object the problem is. Library code never
 * prints and never exits. Messages never contain secrets. */
#ifndef DSA_INGEST_ERROR_H
#define DSA_INGEST_ERROR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define DI_MUSTCHECK __attribute__((warn_unused_result))

typedef enum di_class {
    DI_ERR_NONE = 0,
    DI_ERR_INPUT,     /* the data is bad: reject the record or fail the job (exit 1) */
    DI_ERR_CONFIG,    /* usage, configuration, permission, missing object (exit 2) */
    DI_ERR_TRANSIENT, /* network or database trouble: retry from the checkpoint (exit 3) */
    DI_ERR_INTERNAL,  /* out of memory, a bug (exit 3: the job stays resumable) */
} di_class;

/* Codes for the few failures callers must tell apart; appended only. */
typedef enum di_code {
    DI_CODE_NONE = 0,
    DI_CODE_LEASE_LOST,  /* another worker holds the job now: stop writing at once */
    DI_CODE_INTERRUPTED, /* a signal asked to stop; the job was handed back */
    DI_CODE_RECORD,      /* about one record only: the parser can go on after it */
} di_code;

typedef struct di_error {
    di_class cls;
    di_code code;
    char message[1024]; /* the reason, e.g. "unterminated quoted field" */
    char table[128];    /* table_key, "" when not about a record */
    int64_t row;        /* row number n, -1 when unknown */
    int64_t byte;       /* byte offset in the decoded stream, -1 when unknown */
    char excerpt[201];  /* the record's first bytes when known (rejects), else "" */
} di_error;

/* di_error_clear resets e to "no error" with an unknown location. */
void di_error_clear(di_error *e);

/* di_error_set records a failure of class cls; returns -1 so callers can
 * `return di_error_set(...)`. The location is left as it was. */
int di_error_set(di_error *e, di_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int di_error_vset(di_error *e, di_class cls, const char *fmt, va_list ap);

/* di_error_at records a failure about one record: table, row and byte. */
int di_error_at(di_error *e, di_class cls, const char *table, int64_t row, int64_t byte,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* di_error_prefix prepends "what: " to the message (e.g. the object's name). */
void di_error_prefix(di_error *e, const char *what);

/* di_error_format writes the full human text: "OBJECT: table T, row R (byte B): reason". */
void di_error_format(const di_error *e, const char *object, char *out, size_t outsz);

/* di_error_class_name: "input", "config", "transient", "internal". */
const char *di_error_class_name(di_class cls);

/* di_exit_code maps a class to the CLI exit codes of DESIGN §4. */
int di_exit_code(const di_error *e);

#endif
