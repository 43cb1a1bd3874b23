/* fuzz_ndjson.c - libFuzzer target for the NDJSON parser (src/parse/ndjson.c
 * and canon.c). The input is the NDJSON text itself; a hash of it picks the
 * limits (sometimes a small max_field or max_columns, sometimes a resume
 * mid-stream) and the read sizes. The text is parsed twice, in one read and in
 * small reads: each record must keep parse.h's contract (keys unique and
 * sorted, values valid UTF-8) and both runs must agree. */
#include "fuzz_common.h"

#include "dsa_ingest/parse.h"

static const char *const k_resume_cols[] = {"a", "b"};

/* set_opts draws the options from the input's hash. */
static void set_opts(uint64_t *rng, size_t len, di_parse_opts *po, fz_expect *x) {
    uint64_t r = fz_next(rng);
    di_parse_opts_default(po);
    po->format = DI_FMT_NDJSON;
    if ((r & 3) == 0)
        po->max_field = 1 + (r >> 8) % 64;
    if ((r & 12) == 0)
        po->max_columns = 1 + (r >> 16) % 8;
    if ((r & 112) == 0) {
        po->start_offset = 4096 + (int64_t)((r >> 24) % 4096);
        po->start_row = 2 + (int64_t)((r >> 40) % 9);
        po->resume_columns = k_resume_cols;
        po->resume_ncolumns = 1 + (r >> 50) % 2;
    }
    size_t maxc = po->max_columns > po->resume_ncolumns ? po->max_columns : po->resume_ncolumns;
    *x = (fz_expect){.max_columns = maxc,
                     .first_offset = po->start_offset,
                     .last_offset = po->start_offset + (int64_t)len,
                     .first_row = po->start_row,
                     .max_calls = len + 2,
                     .keyed = 1};
}

/* run parses the text once; returns the digest of what it produced. */
static uint64_t run(const di_parse_opts *po, const fz_expect *x, const uint8_t *text, size_t len,
                    int chunked, uint64_t seed) {
    fz_in in;
    fz_in_init(&in, text, len, chunked, seed);
    di_error err;
    di_error_clear(&err);
    di_parser *p = di_parser_new(po, fz_read, &in, &err);
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(strcmp(di_parser_table(p), "primary") == 0);
    uint64_t d = fz_drain(p, x);
    di_parser_free(p);
    return d;
}

/* LLVMFuzzerTestOneInput: the parse must not depend on where reads end. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t seed = fz_hash(data, size), rng = seed;
    di_parse_opts po;
    fz_expect x;
    set_opts(&rng, size, &po, &x);
    uint64_t whole = run(&po, &x, data, size, 0, rng);
    uint64_t pieces = run(&po, &x, data, size, 1, rng);
    FUZZ_CHECK(whole == pieces);
    return 0;
}
