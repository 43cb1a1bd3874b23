/* row.h - stage 4: a record becomes a content-addressed row.
 *
 * Canonical JSON (keys sorted by bytes, no spaces, UTF-8 kept, byte-identical to
 * Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)),
 * its XXH3-128 hash in lowercase hex, and the logical row id "<table_key>:<n>". */
#ifndef DSA_INGEST_ROW_H
#define DSA_INGEST_ROW_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/buf.h"
#include "dsa_ingest/error.h"
#include "dsa_ingest/value.h"

#define DI_HASH_HEX 32 /* XXH3-128 in hex; buffers take DI_HASH_HEX + 1 */

/* di_json_append_string appends s as a JSON string literal, escaped as Python does. */
DI_MUSTCHECK int di_json_append_string(di_buf *out, const char *s, size_t n);

/* The column order of one table: names and the permutation that sorts them by bytes. */
typedef struct di_row_layout {
    size_t ncolumns;
    size_t *order;   /* order[k] = index of the k-th column in byte order */
    di_buf keys;     /* the escaped "name": prefixes, concatenated */
    size_t *key_off; /* key_off[i], key_len[i]: column i's "name": in keys */
    size_t *key_len;
} di_row_layout;

DI_MUSTCHECK int di_row_layout_init(di_row_layout *l, const char *const *names, size_t n);
void di_row_layout_cleanup(di_row_layout *l);

/* di_row_json writes the canonical JSON object of one record (out is reset
 * first). kinds[i] (a di_value_kind) says how values[i] is written; kinds ==
 * NULL means every value is a string. */
DI_MUSTCHECK int di_row_json(const di_row_layout *l, const char *const *values, const size_t *lens,
                             const unsigned char *kinds, di_buf *out);

/* di_row_json_keyed is di_row_json for a record that carries its own keys,
 * unique and sorted by bytes (NDJSON): no layout. */
DI_MUSTCHECK int di_row_json_keyed(const char *const *names, const char *const *values,
                                   const size_t *lens, const unsigned char *kinds, size_t n,
                                   di_buf *out);

/* di_row_hash writes the lowercase hex XXH3-128 of json into hex[DI_HASH_HEX + 1]. */
void di_row_hash(const char *json, size_t len, char hex[DI_HASH_HEX + 1]);

#endif
