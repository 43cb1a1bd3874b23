/* fuzz_xlsx.h - what the two XLSX targets share: options drawn from the
 * input's hash, and one pass over a workbook (open, every sheet drained and
 * checked, close) whatever serves its parts. */
#ifndef DI_FUZZ_XLSX_H
#define DI_FUZZ_XLSX_H

#include "fuzz_common.h"

#include "parse/xlsx.h"

#define FZ_MAX_SHEETS 4 /* sheets parsed per workbook */

static const char *const fz_xlsx_resume_cols[] = {"a", "b", "c"};

/* One way of reading a workbook: parse options, limits, what records obey. */
typedef struct fz_xlsx_opts {
    di_parse_opts po;
    di_xlsx_limits lim;
    fz_expect x;
} fz_xlsx_opts;

/* fz_xlsx_opts_init draws the options from r: header or not, sometimes small
 * limits (depth, shared strings, cell, columns), sometimes a resume. */
static inline void fz_xlsx_opts_init(fz_xlsx_opts *o, uint64_t r, int header, int small,
                                     int resume) {
    di_parse_opts_default(&o->po);
    o->po.format = DI_FMT_XLSX;
    o->po.header = header;
    memset(&o->lim, 0, sizeof o->lim);
    if (small) {
        o->lim.max_xml_depth = 3 + (r >> 8) % 8;
        o->lim.max_shared_bytes = 16 + (r >> 16) % 512;
        o->lim.max_cell = 1 + (r >> 24) % 32;
        o->lim.max_columns = 1 + (r >> 32) % 8;
    }
    if (resume) {
        o->po.start_row = 2 + (int64_t)((r >> 40) % 5);
        o->po.resume_columns = fz_xlsx_resume_cols;
        o->po.resume_ncolumns = 1 + (r >> 48) % 3;
    }
    size_t maxc = o->lim.max_columns ? o->lim.max_columns : 16384;
    o->x = (fz_expect){.max_columns = resume && maxc < 3 ? 3 : maxc,
                       .last_offset = INT64_MAX,
                       .first_row = resume ? o->po.start_row : 1,
                       .max_calls = SIZE_MAX,
                       .json_scalars = 1};
}

/* fz_xlsx_sheet parses sheet i to its end; returns the digest. */
static inline uint64_t fz_xlsx_sheet(di_xlsx *wb, size_t i, const fz_xlsx_opts *o) {
    di_error err;
    di_error_clear(&err);
    uint64_t d = 14695981039346656037ULL;
    di_parser *p = di_xlsx_sheet_parser(wb, i, &o->po, &err);
    if (!p) {
        fz_check_error(&err);
        fz_mix_int(&d, err.cls);
        if (!o->x.loose_errors)
            fz_mix_error(&d, &err);
        return d;
    }
    FUZZ_CHECK(strcmp(di_parser_table(p), di_xlsx_sheet_name(wb, i)) == 0);
    d = fz_drain(p, &o->x);
    di_parser_free(p);
    return d;
}

/* fz_xlsx_names: sheet names are valid UTF-8, and there are exactly n. */
static inline void fz_xlsx_names(const di_xlsx *wb, size_t n, uint64_t *d) {
    FUZZ_CHECK(n >= 1); /* a workbook without sheets does not open */
    for (size_t i = 0; i < n; i++) {
        const char *s = di_xlsx_sheet_name(wb, i);
        FUZZ_CHECK(s != NULL);
        size_t len = strlen(s);
        FUZZ_CHECK(di_utf8_valid((const unsigned char *)s, len) == len);
        fz_mix(d, s, len);
    }
    FUZZ_CHECK(di_xlsx_sheet_name(wb, n) == NULL);
}

/* fz_xlsx_book opens the workbook through open/close, parses its first
 * sheets, closes it; returns the digest of all it saw. */
static inline uint64_t fz_xlsx_book(di_part_open_fn open, di_part_close_fn close, void *ctx,
                                    const fz_xlsx_opts *o) {
    di_error err;
    di_error_clear(&err);
    uint64_t d = 14695981039346656037ULL;
    di_xlsx *wb = di_xlsx_open(open, close, ctx, &o->lim, &err);
    if (!wb) {
        fz_check_error(&err);
        fz_mix_int(&d, err.cls);
        if (!o->x.loose_errors)
            fz_mix_error(&d, &err);
        return d;
    }
    size_t n = di_xlsx_sheet_count(wb);
    fz_xlsx_names(wb, n, &d);
    for (size_t i = 0; i < n && i < FZ_MAX_SHEETS; i++)
        fz_mix_int(&d, (int64_t)fz_xlsx_sheet(wb, i, o));
    di_xlsx_close(wb);
    return d;
}

#endif
