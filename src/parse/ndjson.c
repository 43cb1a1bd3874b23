/* ndjson.c - stage 3 for NDJSON (placeholder until the cJSON parser lands). */
#include "parser_impl.h"

/* di_ndjson_parser_new: not built yet. */
di_parser *di_ndjson_parser_new(const di_parse_opts *opts, di_read_fn read, void *ctx,
                                di_error *err) {
    di_error_set(err, DI_ERR_CONFIG, "NDJSON is not supported yet");
    return NULL;
}
