/* fuzz_csv.c - libFuzzer target for the CSV/TSV parser (src/parse/csv.c).
 * Input: three option bytes, then the text. Byte 0 is the delimiter (0: the
 * format's own); byte 1 holds flags (header, TSV, small max_field, raw bytes,
 * small max_columns, resume mid-stream); byte 2 sizes the small limits.
 * The text is parsed twice, in one read and in small reads of input-dependent
 * sizes: each record must keep parse.h's contract and both runs must agree. */
#include "fuzz_common.h"

#include "dsa_ingest/parse.h"

enum {
    F_HEADER = 1,
    F_TSV = 2,
    F_SMALL_FIELD = 4,
    F_RAW = 8,
    F_SMALL_COLUMNS = 16,
    F_RESUME = 32,
};

#define NOPT 3

static const char *const k_resume_cols[] = {"a", "b", "c"};

/* set_opts reads the option bytes into parse options and what to expect. */
static void set_opts(const uint8_t *o, size_t len, di_parse_opts *po, fz_expect *x) {
    di_parse_opts_default(po);
    po->format = o[1] & F_TSV ? DI_FMT_TSV : DI_FMT_CSV;
    po->delimiter = (char)o[0];
    po->header = (o[1] & F_HEADER) != 0;
    po->raw_bytes = (o[1] & F_RAW) != 0;
    if (o[1] & F_SMALL_FIELD)
        po->max_field = 1 + o[2] % 64;
    if (o[1] & F_SMALL_COLUMNS)
        po->max_columns = 1 + o[2] / 64;
    if (o[1] & F_RESUME) {
        po->start_offset = 1000 + o[2];
        po->start_row = 2 + o[2] % 7;
        po->resume_columns = k_resume_cols;
        po->resume_ncolumns = 1 + o[2] % 3;
    }
    *x = (fz_expect){.raw = po->raw_bytes,
                     .max_field = po->max_field,
                     .max_columns = o[1] & F_RESUME ? 0 : po->max_columns,
                     .first_offset = po->start_offset,
                     .last_offset = po->start_offset + (int64_t)len,
                     .first_row = po->start_row,
                     .max_calls = len + 2,
                     /* A fatal error's wording may depend on where reads end (which of two
                      * stream-ending problems is seen first); its class may not. Record
                      * errors, which decide what is imported, are compared in full. */
                     .loose_errors = 1};
}

/* run parses the text once; returns the digest of what it produced. */
static uint64_t run(const di_parse_opts *po, const fz_expect *x, const uint8_t *text, size_t len,
                    int chunked, uint64_t seed) {
    fz_in in;
    fz_in_init(&in, text, len, chunked, seed);
    di_error err;
    di_error_clear(&err);
    di_parser *p = di_parser_new(po, fz_read, &in, &err);
    if (!p) {
        fz_check_error(&err);
        unsigned char d = (unsigned char)po->delimiter;
        FUZZ_CHECK(err.cls == DI_ERR_CONFIG &&
                   (d == '"' || d == '\r' || d == '\n' || (d >= 0x80 && !po->raw_bytes)));
        return 1;
    }
    FUZZ_CHECK(strcmp(di_parser_table(p), "primary") == 0);
    uint64_t d = fz_drain(p, x);
    di_parser_free(p);
    return d;
}

/* LLVMFuzzerTestOneInput: the parse must not depend on where reads end. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < NOPT)
        return 0;
    di_parse_opts po;
    fz_expect x;
    set_opts(data, size - NOPT, &po, &x);
    uint64_t seed = fz_hash(data, size);
    uint64_t whole = run(&po, &x, data + NOPT, size - NOPT, 0, seed);
    uint64_t pieces = run(&po, &x, data + NOPT, size - NOPT, 1, seed);
    FUZZ_CHECK(whole == pieces);
    return 0;
}
