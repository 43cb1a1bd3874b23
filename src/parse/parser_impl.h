/* parser_impl.h - private to src/parse/: the handle every parser kind shares
 * and the small vtable each kind fills in. parse.c dispatches the public calls
 * of parse.h through it; include/dsa_ingest/parse.h is the contract. */
#ifndef DI_PARSER_IMPL_H
#define DI_PARSER_IMPL_H

#include "dsa_ingest/parse.h"

/* DI_PARSE_BUF_SIZE is how many bytes a CSV or NDJSON parser reads at a time (the default
 * IMPORT_CHUNK_SIZE). Fuzz builds make it small (CMakeLists.txt): refills then come within
 * small inputs too, and ASan's cost of a 1 MiB allocation does not dominate every input. */
#ifndef DI_PARSE_BUF_SIZE
#define DI_PARSE_BUF_SIZE ((size_t)1 << 20)
#endif

typedef struct di_parser_ops {
    int (*next)(di_parser *p, di_record *rec, di_error *err);
    const char *const *(*columns)(const di_parser *p, size_t *ncolumns);
    const char *(*table)(const di_parser *p);
    void (*free)(di_parser *p);
} di_parser_ops;

/* Each kind's state struct starts with this member, so a di_parser * is also
 * a pointer to the kind's state. */
struct di_parser {
    const di_parser_ops *ops;
};

/* The constructors of the byte-stream kinds (same contract as di_parser_new). */
di_parser *di_csv_parser_new(const di_parse_opts *opts, di_read_fn read, void *ctx, di_error *err);
di_parser *di_ndjson_parser_new(const di_parse_opts *opts, di_read_fn read, void *ctx,
                                di_error *err);

#endif
