/* profile.h - what the rows of each table look like: per column, the types
 * every value fits (integer, float, boolean, date, timestamp, json, text),
 * and the counts of nulls and empty strings. It becomes
 * dsa_core.commit_schemas.schema_definition and what `scan` prints, and
 * travels in the checkpoint so a resumed job's schema covers every row. */
#ifndef DSA_INGEST_PROFILE_H
#define DSA_INGEST_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/parse.h"

struct cJSON;

/* Type bits: a column's type is the first of these every value fitted. */
enum {
    DI_TYPE_BOOLEAN = 1u << 0,
    DI_TYPE_INTEGER = 1u << 1,
    DI_TYPE_FLOAT = 1u << 2,
    DI_TYPE_DATE = 1u << 3,
    DI_TYPE_TIMESTAMP = 1u << 4,
    DI_TYPE_JSON = 1u << 5, /* an NDJSON object or array */
    DI_TYPE_ALL = (1u << 6) - 1,
};

/* di_value_types: the type bits value s fits (0 for null and "": no vote). */
unsigned di_value_types(const char *s, size_t n, di_value_kind kind);

/* di_type_name: the name of a column whose values all fitted mask ("text"
 * when none is left, or no value was seen). */
const char *di_type_name(unsigned mask);

typedef struct di_column_stats {
    char *name;
    unsigned mask; /* types every value so far fitted */
    int64_t nulls, empties;
} di_column_stats;

typedef struct di_table_profile {
    char *key;
    int64_t rows;
    di_column_stats *cols;
    size_t ncols, cap;
} di_table_profile;

typedef struct di_profile {
    di_table_profile *tables;
    size_t ntables;
    size_t current; /* the table records are added to */
} di_profile;

void di_profile_init(di_profile *p);
void di_profile_cleanup(di_profile *p);

/* di_profile_table makes key the current table, with these columns when it is
 * new (a resumed table keeps what the checkpoint had). -1: out of memory. */
DI_MUSTCHECK int di_profile_table(di_profile *p, const char *key, const char *const *cols,
                                  size_t n);

/* di_profile_add counts one record of the current table. A record with its
 * own names (NDJSON) adds columns it is the first to use. */
DI_MUSTCHECK int di_profile_add(di_profile *p, const di_record *rec);

/* di_profile_merge adds src's tables into dst: what one profile of dst's rows
 * followed by src's would hold. -1: out of memory. */
DI_MUSTCHECK int di_profile_merge(di_profile *dst, const di_profile *src);

/* di_profile_to_json: {"tables": {key: {"rows", "columns": [{"name", "type",
 * "nulls", "empties"}]}}}; with state, each column also keeps its "mask" so
 * di_profile_from_json can restore it exactly (checkpoints). */
struct cJSON *di_profile_to_json(const di_profile *p, int state);
DI_MUSTCHECK int di_profile_from_json(di_profile *p, const struct cJSON *j);

#endif
