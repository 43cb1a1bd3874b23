/* test_csv.c - the CSV/TSV parse stage against tables of tricky inputs.
 *
 * Every input is fed in slices of 1, 7 and 4096 bytes (and whole) to prove read
 * boundaries don't matter; expected fields were checked with Python's csv.reader.
 * Resume is checked at every record boundary against the tail of a full parse. */
#include "check.h"
#include "dsa_ingest/buf.h"
#include "dsa_ingest/parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define US      "\x1f" /* between fields in the expected text */
#define RS      "\x1e" /* after each record */
#define MAXREC  1024
#define MAXCOLS 64

static const size_t slices[] = {1, 7, 4096, (size_t)1 << 30};
#define NSLICES (sizeof slices / sizeof *slices)

/* mem_in is the in-memory source: it returns at most `slice` bytes per read. */
typedef struct mem_in {
    const char *p;
    size_t len, pos, slice;
} mem_in;

/* mem_read is the di_read_fn over mem_in. */
static int mem_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    (void)err;
    mem_in *m = ctx;
    size_t k = m->len - m->pos;
    k = k < m->slice ? k : m->slice;
    k = k < cap ? k : cap;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    *n = k;
    return 0;
}

/* fail_read fails on the first call, like a source that lost its connection. */
static int fail_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    (void)ctx, (void)buf, (void)cap, (void)n;
    return di_error_set(err, DI_ERR_TRANSIENT, "connection reset");
}

/* result is what one parse produced, serialised for comparison. */
typedef struct result {
    di_buf text; /* fields joined by US, each record followed by RS */
    size_t toff[MAXREC + 1];
    int64_t row[MAXREC], start[MAXREC], next[MAXREC];
    int nrec, rc;
    di_error err;
    char *cols[MAXCOLS];
    size_t ncols;
    di_buf coltext; /* column names joined by US */
} result;

/* add_record appends one record to r's text and tables. */
static void add_record(result *r, const di_record *rec) {
    r->toff[r->nrec] = r->text.len;
    for (size_t i = 0; i < rec->nfields; i++) {
        CHECK(rec->fields[i][rec->lens[i]] == '\0');
        CHECK(di_buf_append(&r->text, rec->fields[i], rec->lens[i]) == 0);
        CHECK(di_buf_append(&r->text, i + 1 < rec->nfields ? US : RS, 1) == 0);
    }
    if (r->nrec < MAXREC) {
        r->row[r->nrec] = rec->row;
        r->start[r->nrec] = rec->start;
        r->next[r->nrec] = rec->next;
        r->nrec++;
    }
    r->toff[r->nrec] = r->text.len;
}

/* take_columns copies the parser's columns into r. */
static void take_columns(result *r, const di_parser *p) {
    size_t n = 0;
    const char *const *c = di_parser_columns(p, &n);
    for (size_t i = 0; i < n && i < MAXCOLS; i++) {
        r->cols[i] = strdup(c[i]);
        CHECK(di_buf_append(&r->coltext, c[i], strlen(c[i])) == 0);
        CHECK(di_buf_append(&r->coltext, i + 1 < n ? US : "", i + 1 < n) == 0);
    }
    r->ncols = n < MAXCOLS ? n : MAXCOLS;
}

/* parse_in parses in[0..len) (stream offset opts->start_offset) in slices,
 * stopping at the end or at the first error. */
static void parse_in(const char *in, size_t len, const di_parse_opts *o, size_t slice, result *r) {
    memset(r, 0, sizeof *r);
    di_buf_init(&r->text, SIZE_MAX / 2);
    di_buf_init(&r->coltext, SIZE_MAX / 2);
    di_error_clear(&r->err);
    mem_in m = {in, len, 0, slice};
    di_parser *p = di_parser_new(o, mem_read, &m, &r->err);
    if (!p) {
        r->rc = -2;
        return;
    }
    di_record rec;
    while ((r->rc = di_parser_next(p, &rec, &r->err)) == 1)
        add_record(r, &rec);
    take_columns(r, p);
    di_parser_free(p);
}

/* result_free releases what parse_in kept. */
static void result_free(result *r) {
    di_buf_cleanup(&r->text);
    di_buf_cleanup(&r->coltext);
    for (size_t i = 0; i < r->ncols; i++)
        free(r->cols[i]);
}

/* text_of is r's records as text ("" when there are none). */
static const char *text_of(const result *r) {
    return r->text.data ? r->text.data : "";
}

/* ---- fields: tricky inputs vs Python's csv.reader -------------------------- */

typedef struct field_case {
    const char *in;
    di_format fmt;
    char delim;
    const char *want;
} field_case;

static const field_case field_cases[] = {
    {"a,b\n1,2\n", DI_FMT_CSV, 0, "a" US "b" RS "1" US "2" RS},
    {"\"a,b\",c\n", DI_FMT_CSV, 0, "a,b" US "c" RS},
    {"\"he said \"\"hi\"\"\",x\n", DI_FMT_CSV, 0, "he said \"hi\"" US "x" RS},
    {"\"l1\nl2\",\"c1\rc2\",\"d1\r\nd2\"\r\nx,y,z", DI_FMT_CSV, 0,
     "l1\nl2" US "c1\rc2" US "d1\r\nd2" RS "x" US "y" US "z" RS},
    {"a,b\r\nc,d\r\n", DI_FMT_CSV, 0, "a" US "b" RS "c" US "d" RS},
    {",\n,x\ny,\n\"\",\"\"\n", DI_FMT_CSV, 0, "" US "" RS "" US "x" RS "y" US "" RS "" US "" RS},
    {"a,b\nc,d", DI_FMT_CSV, 0, "a" US "b" RS "c" US "d" RS},
    {"\n\na,b\n\r\n\nc,d\n\n", DI_FMT_CSV, 0, "a" US "b" RS "c" US "d" RS},
    {" a , b \n", DI_FMT_CSV, 0, " a " US " b " RS},
    {"5'10\",x\na\"\"b,y\n", DI_FMT_CSV, 0, "5'10\"" US "x" RS "a\"\"b" US "y" RS},
    {" \"a\",b\n", DI_FMT_CSV, 0, " \"a\"" US "b" RS},
    {"a\tb\n\"x\ty\"\tz\n", DI_FMT_TSV, 0, "a" US "b" RS "x\ty" US "z" RS},
    {"a,b\tc\n", DI_FMT_TSV, 0, "a,b" US "c" RS},
    {"a,b\rc,d\r", DI_FMT_CSV, 0, "a" US "b" RS "c" US "d" RS},
    {"\xc3\xa9,\xf0\x9f\x98\x80\n", DI_FMT_CSV, 0, "\xc3\xa9" US "\xf0\x9f\x98\x80" RS},
    {"a\nb\n\n c\n", DI_FMT_CSV, 0, "a" RS "b" RS " c" RS},
    {"a,\"b\"", DI_FMT_CSV, 0, "a" US "b" RS},
    {"\"\"\"\"", DI_FMT_CSV, 0, "\"" RS},
    {"  \n", DI_FMT_CSV, 0, "  " RS},
    {"a;b,c\n", DI_FMT_CSV, ';', "a" US "b,c" RS},
    {"x,\"\"\"q\"\"\",\"a\"\"\"\n", DI_FMT_CSV, 0, "x" US "\"q\"" US "a\"" RS},
    {"", DI_FMT_CSV, 0, ""},
    {"\r\n\n", DI_FMT_CSV, 0, ""},
};

/* test_fields parses each case with --no-header in every slice size. */
static void test_fields(void) {
    for (size_t i = 0; i < sizeof field_cases / sizeof *field_cases; i++) {
        const field_case *c = &field_cases[i];
        for (size_t s = 0; s < NSLICES; s++) {
            di_parse_opts o;
            di_parse_opts_default(&o);
            o.format = c->fmt;
            o.delimiter = c->delim;
            o.header = 0;
            result r;
            parse_in(c->in, strlen(c->in), &o, slices[s], &r);
            CHECK_INT(r.rc, 0);
            CHECK_STR(text_of(&r), c->want);
            if (r.rc != 0 || strcmp(text_of(&r), c->want) != 0)
                fprintf(stderr, "  case %zu, slice %zu: %s\n", i, slices[s], r.err.message);
            result_free(&r);
        }
    }
}

/* ---- header, rows and offsets ---------------------------------------------- */

typedef struct layout_case {
    const char *in;
    int header;
    const char *cols;
    const char *want;
    int64_t row[4], start[4], next[4];
} layout_case;

static const layout_case layout_cases[] = {
    /* header normalisation: empty -> column_N, repeats -> _2, _3 */
    {"a,,a,b,a\n1,2,3,4,5\n",
     1,
     "a" US "column_2" US "a_2" US "b" US "a_3",
     "1" US "2" US "3" US "4" US "5" RS,
     {2},
     {9},
     {19}},
    /* BOM skipped; offsets count it */
    {"\xef\xbb\xbfid,name\n1,x\n", 1, "id" US "name", "1" US "x" RS, {2}, {11}, {15}},
    {"\xef\xbb\xbf"
     "a\n",
     0,
     "column_1",
     "a" RS,
     {1},
     {3},
     {5}},
    {"\xef\xbb\xbf", 1, "", "", {0}, {0}, {0}},
    /* CRLF: next points at the LF, the following record starts after it */
    {"a,b\r\nc,d\r\n\r\ne,f",
     0,
     "column_1" US "column_2",
     "a" US "b" RS "c" US "d" RS "e" US "f" RS,
     {1, 2, 3},
     {0, 5, 12},
     {4, 9, 15}},
    /* blank lines are not records and are not counted */
    {"h\n\n1\n\n\n2\n", 1, "h", "1" RS "2" RS, {2, 3}, {3, 7}, {5, 9}},
    {"\"x\ny\",1\nz,2\n",
     0,
     "column_1" US "column_2",
     "x\ny" US "1" RS "z" US "2" RS,
     {1, 2},
     {0, 8},
     {8, 12}},
    /* header only, empty input: no records, not an error */
    {"a,b\n", 1, "a" US "b", "", {0}, {0}, {0}},
    {"a,b", 1, "a" US "b", "", {0}, {0}, {0}},
    {"", 1, "", "", {0}, {0}, {0}},
};

/* test_layout checks columns, row numbers and start/next offsets. */
static void test_layout(void) {
    for (size_t i = 0; i < sizeof layout_cases / sizeof *layout_cases; i++) {
        const layout_case *c = &layout_cases[i];
        for (size_t s = 0; s < NSLICES; s++) {
            di_parse_opts o;
            di_parse_opts_default(&o);
            o.header = c->header;
            result r;
            parse_in(c->in, strlen(c->in), &o, slices[s], &r);
            CHECK_INT(r.rc, 0);
            CHECK_STR(r.coltext.data ? r.coltext.data : "", c->cols);
            CHECK_STR(text_of(&r), c->want);
            for (int k = 0; k < r.nrec && k < 4; k++) {
                CHECK_INT(r.row[k], c->row[k]);
                CHECK_INT(r.start[k], c->start[k]);
                CHECK_INT(r.next[k], c->next[k]);
            }
            result_free(&r);
        }
    }
}

typedef struct norm_case {
    const char *in[6];
    const char *want[6];
} norm_case;

static const norm_case norm_cases[] = {
    {{"a", "a", "a"}, {"a", "a_2", "a_3"}},
    {{"", "", "x"}, {"column_1", "column_2", "x"}},
    {{"a", "a", "a_2"}, {"a", "a_3", "a_2"}},
    {{"column_2", ""}, {"column_2", "column_2_2"}},
    {{"a_2", "a", "a"}, {"a_2", "a", "a_3"}},
    {{"x", "x_2", "x", "x_2"}, {"x", "x_2", "x_3", "x_2_2"}},
    {{"id", "name"}, {"id", "name"}},
};

/* test_normalize runs di_normalize_columns on its own. */
static void test_normalize(void) {
    for (size_t i = 0; i < sizeof norm_cases / sizeof *norm_cases; i++) {
        const norm_case *c = &norm_cases[i];
        char *v[6];
        size_t n = 0;
        while (n < 6 && c->in[n])
            v[n] = strdup(c->in[n]), n++;
        CHECK(di_normalize_columns(v, n) == 0);
        for (size_t k = 0; k < n; k++) {
            CHECK_STR(v[k], c->want[k]);
            free(v[k]);
        }
    }
}

/* ---- resume at every record boundary ---------------------------------------- */

static const char tricky[] = "\xef\xbb\xbfid,text,note\r\n"
                             "1,\"multi\nline\",plain\r\n"
                             "\r\n"
                             "2,\"with \"\"quotes\"\", and comma\",\xc3\xa9t\xc3\xa9\r\n"
                             "3,,\n"
                             "\n"
                             "4,\"cr\rinside\",5'10\"\r"
                             "5,\" spaced \",\"\"\r\n"
                             "6,\"crlf\r\ninside\",\xf0\x9f\x98\x80";

/* check_resume resumes `full`'s input after each of its records (and at the
 * first one's start) and compares with the tail of the full parse. */
static void check_resume(const char *in, size_t len, const di_parse_opts *base_o,
                         const result *full, size_t slice) {
    for (int k = -1; k < full->nrec; k++) {
        int64_t at = k < 0 ? full->start[0] : full->next[k];
        di_parse_opts o = *base_o;
        o.start_offset = at;
        o.start_row = k < 0 ? full->row[0] : full->row[k] + 1;
        o.resume_columns = (const char *const *)full->cols;
        o.resume_ncolumns = full->ncols;
        result r;
        parse_in(in + at, len - (size_t)at, &o, slice, &r);
        CHECK_INT(r.rc, 0);
        CHECK_INT(r.nrec, full->nrec - (k + 1));
        CHECK_STR(text_of(&r), text_of(full) + full->toff[k + 1]);
        CHECK_STR(r.coltext.data ? r.coltext.data : "", full->coltext.data);
        for (int j = 0; j < r.nrec; j++) {
            CHECK_INT(r.row[j], full->row[k + 1 + j]);
            CHECK_INT(r.start[j], full->start[k + 1 + j]);
            CHECK_INT(r.next[j], full->next[k + 1 + j]);
        }
        result_free(&r);
    }
}

/* test_resume parses `tricky` fully, checks it, then resumes everywhere. */
static void test_resume(void) {
    const char *want = "1" US "multi\nline" US "plain" RS "2" US "with \"quotes\", and comma" US
                       "\xc3\xa9t\xc3\xa9" RS "3" US "" US "" RS "4" US "cr\rinside" US "5'10\"" RS
                       "5" US " spaced " US "" RS "6" US "crlf\r\ninside" US "\xf0\x9f\x98\x80" RS;
    const int64_t rows[] = {2, 3, 4, 5, 6, 7}, starts[] = {17, 41, 79, 84, 104, 121};
    for (size_t s = 0; s < NSLICES; s++) {
        di_parse_opts o;
        di_parse_opts_default(&o);
        result full;
        parse_in(tricky, sizeof tricky - 1, &o, slices[s], &full);
        CHECK_INT(full.rc, 0);
        CHECK_STR(text_of(&full), want);
        CHECK_STR(full.coltext.data, "id" US "text" US "note");
        CHECK_INT(full.nrec, 6);
        for (int k = 0; k < full.nrec && k < 6; k++) {
            CHECK_INT(full.row[k], rows[k]);
            CHECK_INT(full.start[k], starts[k]);
        }
        CHECK_INT(full.next[0], 38); /* the LF of the CR LF */
        CHECK_INT(full.next[full.nrec - 1], (int64_t)sizeof tricky - 1);
        check_resume(tricky, sizeof tricky - 1, &o, &full, slices[s]);
        result_free(&full);
    }
}

/* test_resume_no_bom: mid-stream, EF BB BF is data (U+FEFF), not a BOM, and
 * the columns are known before the first record. */
static void test_resume_no_bom(void) {
    static const char in[] = "a\n\xef\xbb\xbfx\n";
    static const char *const cols[] = {"a"};
    di_parse_opts o;
    di_parse_opts_default(&o);
    o.start_offset = 2;
    o.start_row = 2;
    o.resume_columns = cols;
    o.resume_ncolumns = 1;
    mem_in m = {in + 2, sizeof in - 3, 0, 1};
    di_error err;
    di_parser *p = di_parser_new(&o, mem_read, &m, &err);
    size_t n = 0;
    const char *const *c = di_parser_columns(p, &n);
    CHECK(n == 1 && strcmp(c[0], "a") == 0);
    di_record rec;
    CHECK_INT(di_parser_next(p, &rec, &err), 1);
    CHECK_STR(rec.fields[0], "\xef\xbb\xbfx");
    CHECK_INT(rec.row, 2);
    CHECK_INT(rec.start, 2);
    CHECK_INT(rec.next, 7);
    CHECK_INT(di_parser_next(p, &rec, &err), 0);
    di_parser_free(p);
}

/* ---- generated inputs: the parse gives back exactly what was written -------- */

/* rnd is a small xorshift generator: the same inputs on every run. */
static uint32_t rnd(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* gen_field writes one random field to csv (quoted when it must be) and to want. */
static void gen_field(uint32_t *seed, di_buf *csv, di_buf *want) {
    static const char *const atoms[] = {"a", "b", ",", "\"", "\n", "\r", " ", "\xc3\xa9", "x'y"};
    char raw[64];
    size_t n = 0, len = rnd(seed) % 6;
    for (size_t i = 0; i < len; i++) {
        const char *a = atoms[rnd(seed) % (sizeof atoms / sizeof *atoms)];
        memcpy(raw + n, a, strlen(a));
        n += strlen(a);
    }
    raw[n] = '\0';
    int quote = strpbrk(raw, ",\"\r\n") != NULL || rnd(seed) % 4 == 0;
    CHECK(di_buf_append(want, raw, n) == 0);
    if (quote)
        CHECK(di_buf_putc(csv, '"') == 0);
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '"' && quote)
            CHECK(di_buf_putc(csv, '"') == 0);
        CHECK(di_buf_putc(csv, raw[i]) == 0);
    }
    if (quote)
        CHECK(di_buf_putc(csv, '"') == 0);
}

/* gen_csv writes nrec random records of ncols fields with mixed line ends and
 * blank lines, and the text the parse must give back. */
static void gen_csv(uint32_t seed, int nrec, int ncols, di_buf *csv, di_buf *want) {
    static const char *const ends[] = {"\n", "\r\n", "\r", "\n\n", "\r\n\r\n"};
    for (int r = 0; r < nrec; r++) {
        for (int c = 0; c < ncols; c++) {
            gen_field(&seed, csv, want);
            if (c + 1 < ncols)
                CHECK(di_buf_putc(csv, ',') == 0);
            CHECK(di_buf_append(want, c + 1 < ncols ? US : RS, 1) == 0);
        }
        if (r + 1 < nrec || rnd(&seed) % 2)
            CHECK(di_buf_printf(csv, "%s", ends[rnd(&seed) % 5]) == 0);
    }
}

/* test_generated round-trips random CSVs in all slice sizes, with resumes. */
static void test_generated(void) {
    for (uint32_t seed = 1; seed <= 40; seed++) {
        di_buf csv, want;
        di_buf_init(&csv, SIZE_MAX / 2);
        di_buf_init(&want, SIZE_MAX / 2);
        gen_csv(seed * 2654435761u, 25, 2 + (int)(seed % 3), &csv, &want);
        for (size_t s = 0; s < NSLICES; s++) {
            di_parse_opts o;
            di_parse_opts_default(&o);
            o.header = 0;
            result r;
            parse_in(csv.data, csv.len, &o, slices[s], &r);
            CHECK_INT(r.rc, 0);
            CHECK_INT(r.nrec, 25);
            CHECK_STR(text_of(&r), want.data);
            if (s == 1 || s == 3)
                check_resume(csv.data, csv.len, &o, &r, slices[s]);
            result_free(&r);
        }
        di_buf_cleanup(&csv);
        di_buf_cleanup(&want);
    }
}

/* long_input makes "k,v\n1,<quoted field of `big` bytes>\n2,<unquoted field>":
 * both fields far longer than the 1 MiB read buffer. */
static char *long_input(size_t big, size_t *len) {
    char *in = malloc(2 * big + big / 6 + 16), *w = in;
    memcpy(w, "k,v\n1,\"", 7);
    w += 7;
    for (size_t i = 0; i < big; i++) {
        char c = "ab,\n\"\r"[i % 6];
        *w++ = c;
        if (c == '"')
            *w++ = c;
    }
    memcpy(w, "\"\n2,", 4);
    w += 4;
    memset(w, 'z', big);
    *len = (size_t)(w + big - in);
    return in;
}

/* test_long_fields reads fields that span many reads and buffer refills. */
static void test_long_fields(void) {
    size_t big = (size_t)3 << 20, len;
    char *in = long_input(big, &len);
    for (size_t s = 2; s < NSLICES; s++) {
        di_parse_opts o;
        di_parse_opts_default(&o);
        result r;
        parse_in(in, len, &o, slices[s], &r);
        CHECK_INT(r.rc, 0);
        CHECK_INT(r.nrec, 2);
        CHECK_INT(r.start[1], r.next[0]);
        CHECK_INT(r.next[1], (int64_t)len);
        CHECK_INT(r.toff[1] - r.toff[0], big + 3); /* "1", US, the field, RS */
        CHECK_INT(r.toff[2] - r.toff[1], big + 3);
        result_free(&r);
    }
    free(in);
}

/* test_field_limit_exact accepts fields of exactly max_field bytes, quoted or
 * not, at the end of the input or not. */
static void test_field_limit_exact(void) {
    static const char *const ins[] = {"a\n12345678\n", "a\n12345678", "a\n\"1234\n678\"",
                                      "a\n\"12\"\"45678\"\n"};
    for (size_t i = 0; i < sizeof ins / sizeof *ins; i++) {
        for (size_t s = 0; s < NSLICES; s++) {
            di_parse_opts o;
            di_parse_opts_default(&o);
            o.max_field = 8;
            result r;
            parse_in(ins[i], strlen(ins[i]), &o, slices[s], &r);
            CHECK_INT(r.rc, 0);
            CHECK_INT(r.nrec, 1);
            CHECK_INT(r.toff[1], 9);
            result_free(&r);
        }
    }
}

/* ---- errors ------------------------------------------------------------------ */

typedef struct error_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int header;
    size_t max_field, max_columns;
    const char *msg;
    int64_t row, byte;
    const char *after; /* records a second call yields: "-" when the error is sticky */
} error_case;

static const error_case error_cases[] = {
    {"a,b,c,d,e\n1,2,3,4,5,6,7\nx,y,z,w,v\n", 0, 1, 0, 0,
     "record has 7 fields, expected 5 (the header has 5 columns)", 2, 10,
     "x" US "y" US "z" US "w" US "v" RS},
    {"a,b,c\n1,2\n", 0, 1, 0, 0, "record has 2 fields, expected 3 (the header has 3 columns)", 2, 6,
     ""},
    {"a,b,c\n1,2\n", 0, 0, 0, 0, "record has 2 fields, expected 3 as in the first record", 2, 6,
     ""},
    {"a,b\n1,\"abc\ndef\n", 0, 1, 0, 0,
     "unterminated quoted field (the quote opened at byte 6 is never closed)", 2, 4, "-"},
    {"a\n\"x", 0, 1, 0, 0, "unterminated quoted field (the quote opened at byte 2 is never closed)",
     2, 2, "-"},
    {"a,b\n1,\"x\"y\n", 0, 1, 0, 0,
     "malformed quoted field: unexpected character after a closing quote (at byte 9)", 2, 4, "-"},
    {"a,b\n\"a\" ,b\n", 0, 1, 0, 0,
     "malformed quoted field: unexpected character after a closing quote (at byte 7)", 2, 4, "-"},
    {"a,b\nok,x\xff\n1,2\n", 0, 1, 0, 0, "invalid UTF-8 at byte 8", 2, 4, "1" US "2" RS},
    {"a\n\xc0\x80\n", 0, 1, 0, 0, "invalid UTF-8 at byte 2", 2, 2, ""},
    {"a\n\"x\ny\xff\"\n2\n", 0, 1, 0, 0, "invalid UTF-8 at byte 6", 2, 2, "2" RS},
    {"a\n\"\xed\xa0\x80\"\n", 0, 1, 0, 0, "invalid UTF-8 at byte 3", 2, 2, ""},
    {"a\nb\n\xe2\x82", 0, 1, 0, 0, "invalid UTF-8 at byte 4", 3, 4, ""},
    {"h\xff\n", 0, 1, 0, 0, "invalid UTF-8 at byte 1", 1, 0, "-"},
    {"a,b\n1,x\0y\n2,3\n", 14, 1, 0, 0, "NUL byte in field 2", 2, 4, "2" US "3" RS},
    {"a\n123456789\n", 0, 1, 8, 0, "field exceeds IMPORT_MAX_FIELD_SIZE (8 bytes)", 2, 2, "-"},
    {"a\n\"1234,\n6789\"", 0, 1, 8, 0, "field exceeds IMPORT_MAX_FIELD_SIZE (8 bytes)", 2, 2, "-"},
    {"a,b,c,d\n", 0, 0, 0, 3, "record has more than 3 fields", 1, 0, "-"},
    {"a,b,c\n1,2,3,4\n5,6,7\n", 0, 1, 0, 3, "record has more than 3 fields", 2, 6,
     "5" US "6" US "7" RS},
};

/* test_errors checks each bad input's message and location, then whether the
 * parser goes on (record errors) or stays failed (stream errors). */
static void test_errors(void) {
    for (size_t i = 0; i < sizeof error_cases / sizeof *error_cases; i++) {
        const error_case *c = &error_cases[i];
        for (size_t s = 0; s < NSLICES; s++) {
            di_parse_opts o;
            di_parse_opts_default(&o);
            o.header = c->header;
            if (c->max_field)
                o.max_field = c->max_field;
            if (c->max_columns)
                o.max_columns = c->max_columns;
            result r;
            size_t len = c->len ? c->len : strlen(c->in);
            memset(&r, 0, sizeof r);
            di_buf_init(&r.text, SIZE_MAX / 2);
            di_buf_init(&r.coltext, 0);
            mem_in m = {c->in, len, 0, slices[s]};
            di_parser *p = di_parser_new(&o, mem_read, &m, &r.err);
            di_record rec;
            int rc;
            while ((rc = di_parser_next(p, &rec, &r.err)) == 1)
                ;
            CHECK_INT(rc, -1);
            CHECK_INT(r.err.cls, DI_ERR_INPUT);
            CHECK_STR(r.err.message, c->msg);
            CHECK_STR(r.err.table, "primary");
            CHECK_INT(r.err.row, c->row);
            CHECK_INT(r.err.byte, c->byte);
            di_error again;
            while ((rc = di_parser_next(p, &rec, &again)) == 1)
                add_record(&r, &rec);
            if (strcmp(c->after, "-") == 0) {
                CHECK_INT(rc, -1);
                CHECK_STR(again.message, c->msg);
            } else {
                CHECK_INT(rc, 0);
                CHECK_STR(text_of(&r), c->after);
            }
            di_parser_free(p);
            result_free(&r);
        }
    }
}

/* test_read_error passes the source's error through unchanged, and sticks. */
static void test_read_error(void) {
    di_parse_opts o;
    di_parse_opts_default(&o);
    di_error err;
    di_error_clear(&err);
    di_parser *p = di_parser_new(&o, fail_read, NULL, &err);
    di_record rec;
    CHECK_INT(di_parser_next(p, &rec, &err), -1);
    CHECK_INT(err.cls, DI_ERR_TRANSIENT);
    CHECK_STR(err.message, "connection reset");
    CHECK_INT(di_parser_next(p, &rec, &err), -1);
    di_parser_free(p);
    o.delimiter = '"';
    CHECK(di_parser_new(&o, fail_read, NULL, &err) == NULL);
    CHECK_INT(err.cls, DI_ERR_CONFIG);
    /* a byte of a multi-byte UTF-8 character would cut characters in two (found by
     * fuzz_csv: 0xBF splits a BOM into an invalid field) */
    o.delimiter = (char)0xBF;
    CHECK(di_parser_new(&o, fail_read, NULL, &err) == NULL);
    CHECK_INT(err.cls, DI_ERR_CONFIG);
    CHECK(strstr(err.message, "0xBF") && strstr(err.message, "ASCII"));
    /* the same rule for a delimiter given as text (requests, queued jobs) */
    CHECK(di_delimiter_ok(",") && di_delimiter_ok("\t"));
    CHECK(!di_delimiter_ok("") && !di_delimiter_ok(",;") && !di_delimiter_ok("\xbf") &&
          !di_delimiter_ok("\xc2\xa7"));
    o.raw_bytes = 1; /* a declared encoding: its bytes are not UTF-8's */
    p = di_parser_new(&o, fail_read, NULL, &err);
    CHECK(p != NULL);
    di_parser_free(p);
    di_parser_free(NULL);
}

/* ---- helpers ---------------------------------------------------------------- */

typedef struct utf8_case {
    const char *s;
    size_t len, valid;
} utf8_case;

static const utf8_case utf8_cases[] = {
    {"", 0, 0},
    {"abc", 3, 3},
    {"\xc0\x80", 2, 0},         /* overlong NUL */
    {"\xc1\xbf", 2, 0},         /* overlong */
    {"\xe0\x9f\xbf", 3, 0},     /* overlong 3-byte */
    {"\xf0\x8f\xbf\xbf", 4, 0}, /* overlong 4-byte */
    {"a\xed\xa0\x80", 4, 1},    /* surrogate U+D800 */
    {"\xed\x9f\xbf", 3, 3},     /* U+D7FF */
    {"\xee\x80\x80", 3, 3},     /* U+E000 */
    {"\xf4\x90\x80\x80", 4, 0}, /* past U+10FFFF */
    {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
    {"\xf5\x80\x80\x80", 4, 0},
    {"\xe2\x82", 2, 0},         /* truncated */
    {"x\xe2\x82\xac", 4, 4},    /* euro sign */
    {"\xf0\x9f\x98\x80", 4, 4}, /* emoji */
    {"\xf0\x9f\x98", 3, 0},     /* truncated emoji */
    {"\x80", 1, 0},             /* lone continuation */
    {"\xff", 1, 0},
    {"\xc3\x28", 2, 0}, /* lead without continuation */
    {"12345678\xc3\xa9"
     "abcdefgh\xff",
     19, 18},
    {"a\0b", 3, 3}, /* NUL is valid UTF-8 (the parser rejects it) */
};

/* test_utf8 checks di_utf8_valid's valid-prefix lengths. */
static void test_utf8(void) {
    for (size_t i = 0; i < sizeof utf8_cases / sizeof *utf8_cases; i++) {
        const utf8_case *c = &utf8_cases[i];
        CHECK_INT(di_utf8_valid((const unsigned char *)c->s, c->len), c->valid);
    }
}

/* test_formats checks names, parsing and the default options. */
static void test_formats(void) {
    di_format f = DI_FMT_AUTO;
    CHECK(di_format_parse("csv", &f) == 0 && f == DI_FMT_CSV);
    CHECK(di_format_parse("TSV", &f) == 0 && f == DI_FMT_TSV);
    CHECK(di_format_parse("auto", &f) == 0 && f == DI_FMT_AUTO);
    CHECK(di_format_parse("json", &f) == -1);
    CHECK(di_format_parse(NULL, &f) == -1);
    CHECK_STR(di_format_name(DI_FMT_TSV), "tsv");
    CHECK_STR(di_format_name(DI_FMT_CSV), "csv");
    di_parse_opts o;
    di_parse_opts_default(&o);
    CHECK_INT(o.header, 1);
    CHECK_INT(o.max_field, 16 << 20);
    CHECK_INT(o.max_columns, 16384);
    CHECK_STR(o.table_key, "primary");
    CHECK(o.resume_columns == NULL && o.start_offset == 0);
}

int main(void) {
    test_fields();
    test_layout();
    test_normalize();
    test_resume();
    test_resume_no_bom();
    test_generated();
    test_long_fields();
    test_field_limit_exact();
    test_errors();
    test_read_error();
    test_utf8();
    test_formats();
    return check_report();
}
