/* value.h - how a field's bytes become a JSON value (DESIGN §2, row identity).
 * Shared by the parsers, which tag each field, and the row stage, which writes
 * the canonical JSON; neither needs the other's header. */
#ifndef DSA_INGEST_VALUE_H
#define DSA_INGEST_VALUE_H

typedef enum di_value_kind {
    DI_VAL_TEXT = 0, /* a string: escaped and quoted by the row stage */
    DI_VAL_NULL,     /* null (an empty XLSX cell); the field's bytes are ignored */
    DI_VAL_JSON,     /* canonical JSON text already (a number, true, an object...) */
} di_value_kind;

#endif
