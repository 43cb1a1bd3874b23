/* error.c - filling and formatting di_error (see include/dsa_ingest/error.h). */
#include "dsa_ingest/error.h"

#include <stdio.h>
#include <string.h>

void di_error_clear(di_error *e) {
    e->cls = DI_ERR_NONE;
    e->code = DI_CODE_NONE;
    e->message[0] = '\0';
    e->table[0] = '\0';
    e->row = -1;
    e->byte = -1;
    e->excerpt[0] = '\0';
}

int di_error_vset(di_error *e, di_class cls, const char *fmt, va_list ap) {
    e->cls = cls;
    e->code = DI_CODE_NONE;
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    return -1;
}

int di_error_set(di_error *e, di_class cls, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    di_error_vset(e, cls, fmt, ap);
    va_end(ap);
    return -1;
}

int di_error_at(di_error *e, di_class cls, const char *table, int64_t row, int64_t byte,
                const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    di_error_vset(e, cls, fmt, ap);
    va_end(ap);
    snprintf(e->table, sizeof e->table, "%s", table ? table : "");
    e->row = row;
    e->byte = byte;
    return -1;
}

void di_error_prefix(di_error *e, const char *what) {
    char tmp[sizeof e->message];
    snprintf(tmp, sizeof tmp, "%s: %s", what, e->message);
    memcpy(e->message, tmp, sizeof tmp);
}

void di_error_format(const di_error *e, const char *object, char *out, size_t outsz) {
    char where[256] = "";
    /* A record's location is spelled out here; a decoder or source names its
     * own offset and object inside the message, so neither is repeated. */
    if (e->row >= 0 && e->table[0])
        snprintf(where, sizeof where, "table %s, row %lld (byte %lld): ", e->table,
                 (long long)e->row, (long long)e->byte);
    if (object && object[0] && !strstr(e->message, object))
        snprintf(out, outsz, "%s: %s%s", object, where, e->message);
    else
        snprintf(out, outsz, "%s%s", where, e->message);
}

const char *di_error_class_name(di_class cls) {
    switch (cls) {
    case DI_ERR_NONE:
        return "none";
    case DI_ERR_INPUT:
        return "input";
    case DI_ERR_CONFIG:
        return "config";
    case DI_ERR_TRANSIENT:
        return "transient";
    case DI_ERR_INTERNAL:
        return "internal";
    }
    return "internal";
}

int di_exit_code(const di_error *e) {
    switch (e->cls) {
    case DI_ERR_NONE:
        return 0;
    case DI_ERR_INPUT:
        return 1;
    case DI_ERR_CONFIG:
        return 2;
    case DI_ERR_TRANSIENT:
    case DI_ERR_INTERNAL:
        return 3;
    }
    return 3;
}
