/* parse.c - stage 3's front: di_parser_new picks the kind by format, and the
 * public calls of parse.h go through the kind's vtable. */
#include "parser_impl.h"

/* di_parser_new: CSV and TSV share one parser (the delimiter differs); NDJSON
 * has its own. XLSX is not a byte stream: its sheets come from the reader. */
di_parser *di_parser_new(const di_parse_opts *opts, di_read_fn read, void *ctx, di_error *err) {
    switch (opts->format) {
    case DI_FMT_CSV:
    case DI_FMT_TSV:
        return di_csv_parser_new(opts, read, ctx, err);
    case DI_FMT_NDJSON:
        return di_ndjson_parser_new(opts, read, ctx, err);
    default:
        di_error_set(err, DI_ERR_INTERNAL, "no byte-stream parser for format '%s'",
                     di_format_name(opts->format));
        return NULL;
    }
}

int di_parser_next(di_parser *p, di_record *rec, di_error *err) {
    return p->ops->next(p, rec, err);
}

const char *const *di_parser_columns(const di_parser *p, size_t *ncolumns) {
    return p->ops->columns(p, ncolumns);
}

const char *di_parser_table(const di_parser *p) {
    return p->ops->table(p);
}

void di_parser_free(di_parser *p) {
    if (p)
        p->ops->free(p);
}
