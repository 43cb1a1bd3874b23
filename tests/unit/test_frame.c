/* test_frame.c - the range framer (parse/frame.h) against the real parsers.
 *
 * Random CSV, TSV and NDJSON streams (seeded) are parsed by csv.c / ndjson.c;
 * every record's start and row must be where a whole-stream frame puts them.
 * The streams are then cut into random ranges (1-byte ones, cuts inside quotes,
 * after a quote, between CR and LF), each range framed on its own and chained:
 * each range's state, first boundary, records and first row must match the
 * whole stream, and each start state's result a naive one-state-at-a-time run. */
#include "check.h"
#include "dsa_ingest/parse.h"
#include "parse/frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXLEN  ((size_t)256 << 10)
#define MAXCUTS 48

enum { R = DI_FRAME_R, S = DI_FRAME_S, U = DI_FRAME_U, IN = DI_FRAME_IN, CL = DI_FRAME_CL };
enum { E = DI_FRAME_E, L = DI_FRAME_L };

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rng_state;

/* rnd is xorshift64*: the same streams on every run. */
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* below is a random number in [0, n). */
static size_t below(size_t n) {
    return n ? (size_t)(rnd() % n) : 0;
}

/* mem_in is the in-memory source for the parsers. */
typedef struct mem_in {
    const char *p;
    size_t len, pos;
} mem_in;

/* mem_read is the di_read_fn over mem_in, in reads of up to 4093 bytes. */
static int mem_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    (void)err;
    mem_in *m = ctx;
    size_t k = m->len - m->pos;
    k = k < 4093 ? k : 4093;
    k = k < cap ? k : cap;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    *n = k;
    return 0;
}

/* One stream under test: its bytes, what the parser and the reference say. */
typedef struct stream {
    di_frame_kind kind;
    unsigned char delim;
    char *buf;
    size_t len;
    /* the parser's records (errors about one record count: their row and byte) */
    int64_t *pstart, *prow;
    size_t np;
    int fatal;
    /* the reference: state before each byte (len + 1), record start offsets */
    int *state;
    int64_t *rstart;
    size_t nr;
} stream;

/* ---- the reference: the state table of frame.h, one byte at a time ------- */

/* ref_step is one byte of the state machine; *starts is set when the byte
 * starts a record. Written from the spec, independent of frame.c's tables. */
static int ref_step(di_frame_kind kind, unsigned char delim, int st, unsigned char c, int *starts) {
    if (kind == DI_FRAME_LINES) {
        *starts = st == R;
        return c == '\n' ? R : L;
    }
    int q = c == '"', d = c == delim, t = c == '\r' || c == '\n';
    *starts = st == R && !t;
    switch (st) {
    case R:
    case S:
        return q ? IN : d ? S : t ? R : U;
    case U:
        return d ? S : t ? R : U;
    case IN:
        return q ? CL : IN;
    case CL:
        return q ? IN : d ? S : t ? R : E;
    default:
        return E;
    }
}

/* ref_run is the naive run of p[0..n) from state st. */
static void ref_run(di_frame_kind kind, unsigned char delim, const char *p, size_t n, int st,
                    di_frame_result *out) {
    out->starts = 0;
    out->first = -1;
    for (size_t i = 0; i < n; i++) {
        if (st == R && out->first < 0)
            out->first = (int64_t)i;
        int starts;
        st = ref_step(kind, delim, st, (unsigned char)p[i], &starts);
        out->starts += starts;
    }
    out->end_state = st;
}

/* ref_whole fills the stream's states and record starts from R. */
static void ref_whole(stream *s) {
    int st = R;
    s->nr = 0;
    for (size_t i = 0; i < s->len; i++) {
        s->state[i] = st;
        int starts;
        st = ref_step(s->kind, s->delim, st, (unsigned char)s->buf[i], &starts);
        if (starts)
            s->rstart[s->nr++] = (int64_t)i;
    }
    s->state[s->len] = st;
}

/* starts_before counts the reference's record starts before offset at. */
static int64_t starts_before(const stream *s, int64_t at) {
    size_t lo = 0, hi = s->nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->rstart[mid] < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int64_t)lo;
}

/* ---- the real parsers ------------------------------------------------------- */

/* run_parser parses the stream without a header, keeping every record's
 * start and row (a record refused alone counts too: its error has both). */
static void run_parser(stream *s) {
    di_parse_opts o;
    di_parse_opts_default(&o);
    o.format = s->kind == DI_FRAME_LINES ? DI_FMT_NDJSON : DI_FMT_CSV;
    o.delimiter = (char)s->delim;
    o.header = 0;
    mem_in m = {s->buf, s->len, 0};
    di_error err;
    di_error_clear(&err);
    di_parser *p = di_parser_new(&o, mem_read, &m, &err);
    CHECK(p != NULL);
    di_record rec;
    s->np = 0;
    s->fatal = 0;
    for (int rc; p && (rc = di_parser_next(p, &rec, &err)) != 0; s->np++) {
        if (rc < 0 && err.code != DI_CODE_RECORD) {
            s->fatal = 1;
            break;
        }
        s->pstart[s->np] = rc > 0 ? rec.start : err.byte;
        s->prow[s->np] = rc > 0 ? rec.row : err.row;
    }
    di_parser_free(p);
}

/* ---- generated streams ----------------------------------------------------- */

/* put appends n bytes if they fit. */
static void put(stream *s, const char *p, size_t n) {
    if (s->len + n <= MAXLEN) {
        memcpy(s->buf + s->len, p, n);
        s->len += n;
    }
}

/* put_c appends one byte. */
static void put_c(stream *s, char c) {
    put(s, &c, 1);
}

/* plain_char is a character of an unquoted field: never the delimiter, a
 * quote only after the first character (a bare quote, a"b). */
static void put_plain(stream *s, size_t n) {
    static const char alpha[] = "abcxyz019 ,;\t'\"";
    for (size_t i = 0; i < n; i++) {
        char c = alpha[below(sizeof alpha - 1)];
        if (c == (char)s->delim || (c == '"' && i == 0))
            c = 'q';
        if (c == 'z' && i > 0)
            put(s, "\xc3\xa9", 2); /* UTF-8 too */
        else
            put_c(s, c);
    }
}

/* put_quoted writes a quoted field with doubled quotes, delimiters, CR, LF
 * and CRLF inside. */
static void put_quoted(stream *s, size_t n) {
    static const char *const parts[] = {"a", "b c", "\"\"", "\n", "\r", "\r\n", ",", "\t", ";"};
    put_c(s, '"');
    for (size_t i = 0; i < n; i++) {
        const char *p = parts[below(sizeof parts / sizeof *parts)];
        put(s, p, strlen(p));
    }
    put_c(s, '"');
}

/* put_line_end writes LF, CRLF or a lone CR, sometimes followed by blank lines. */
static void put_line_end(stream *s) {
    static const char *const ends[] = {"\n", "\n",   "\r\n",     "\r\n",
                                       "\r", "\n\n", "\r\n\r\n", "\n\r"};
    const char *e = ends[below(sizeof ends / sizeof *ends)];
    put(s, e, strlen(e));
}

/* gen_csv writes about `size` bytes of records: plain, empty, quoted fields;
 * bad = 1 sometimes puts a character after a closing quote ("a"b). */
static void gen_csv(stream *s, size_t size, int bad) {
    s->len = 0;
    if (below(8) == 0)
        put_line_end(s); /* blank lines first */
    while (s->len < size) {
        size_t nf = 1 + below(5);
        for (size_t f = 0; f < nf; f++) {
            size_t kind = below(10);
            if (kind < 5)
                put_plain(s, below(12));
            else if (kind < 9)
                put_quoted(s, below(6));
            if (bad && below(200) == 0)
                put(s, "\"a\"b", 4);
            if (f + 1 < nf)
                put_c(s, (char)s->delim);
        }
        if (s->len < size || below(2))
            put_line_end(s);
    }
}

/* gen_noise writes random bytes from the characters that matter, with NUL
 * and invalid UTF-8 (errors about one record, which must not move the
 * framing): corner cases found by sheer numbers (most streams fail).
 * The first record names the columns: a NUL in it fails the whole parse. */
static void gen_noise(stream *s, size_t size) {
    static const char alpha[] = "\"\",,\r\n\nab \0\xff\xc3";
    s->len = 0;
    put(s, "h\n", 2); /* a clean first record: one with a NUL would fail the parse */
    while (s->len < size)
        put_c(s, alpha[below(sizeof alpha - 1)]);
}

/* gen_lines writes NDJSON: objects, blank lines, lines of spaces, lone CRs,
 * CRLF ends, lines the parser refuses, maybe no final LF. */
static void gen_lines(stream *s, size_t size) {
    static const char *const lines[] = {"{\"a\":1}",
                                        "{\"b\":\"x,\\\"y\\\"\"}",
                                        "",
                                        "   ",
                                        "\t",
                                        "\r",
                                        "[1]",
                                        "{bad",
                                        "{\"c\":{\"d\":[1,2]}}",
                                        "{\"a\":2}\r",
                                        " {\"e\":null} ",
                                        "\r\r",
                                        "{\"f\":\"\xff\"}"};
    s->len = 0;
    while (s->len < size) {
        const char *l = lines[below(sizeof lines / sizeof *lines)];
        put(s, l, strlen(l));
        if (s->len < size || below(2))
            put_c(s, '\n');
    }
}

/* ---- the checks ------------------------------------------------------------ */

/* frame_feed frames p[0..n) fed in random pieces. */
static void frame_feed(di_frame *f, const stream *s, const char *p, size_t n) {
    CHECK_INT(di_frame_init(f, s->kind, s->delim), 0);
    for (size_t i = 0; i < n;) {
        size_t k = below(4) == 0 ? 1 + below(8) : 1 + below(n - i);
        k = k < n - i ? k : n - i;
        di_frame_feed(f, p + i, k);
        i += k;
    }
}

/* check_parser: the parser's records are the reference's record starts,
 * numbered in order (NDJSON: its blank lines are numbered, not returned). */
static void check_parser(const stream *s) {
    size_t k = 0;
    for (size_t i = 0; i < s->np; i++) {
        int64_t before = starts_before(s, s->pstart[i]);
        CHECK(before < (int64_t)s->nr && s->rstart[before] == s->pstart[i]);
        CHECK_INT(s->prow[i], 1 + before);
        k += s->kind == DI_FRAME_CSV && before == (int64_t)i;
    }
    if (s->kind == DI_FRAME_CSV) {
        CHECK_INT(k, s->np); /* none is missing before the last one returned */
        int broken = s->state[s->len] == E || s->state[s->len] == IN;
        CHECK_INT(s->fatal, broken);
        if (!s->fatal)
            CHECK_INT(s->np, s->nr);
        else /* the record with the error is not returned */
            CHECK(s->np + 1 <= s->nr);
    }
}

/* check_whole frames the whole stream from R, then byte by byte: its record
 * starts must be the reference's (and so the parser's). */
static void check_whole(const stream *s) {
    static di_frame f;
    frame_feed(&f, s, s->buf, s->len);
    di_frame_result got;
    di_frame_get(&f, R, &got);
    CHECK_INT(got.end_state, s->state[s->len]);
    CHECK_INT(got.starts, s->nr);
    CHECK_INT(got.first, s->len ? 0 : -1);
    CHECK_INT(di_frame_init(&f, s->kind, s->delim), 0);
    size_t k = 0, bad = 0;
    for (size_t i = 0; i < s->len; i++) {
        di_frame_feed(&f, s->buf + i, 1);
        di_frame_get(&f, R, &got);
        int starts = k < s->nr && s->rstart[k] == (int64_t)i;
        k += (size_t)starts;
        bad += got.starts != (int64_t)k || got.end_state != s->state[i + 1];
    }
    CHECK_INT(bad, 0);
}

/* pick_cuts chooses range starts: random offsets, offsets inside quoted
 * fields, right after a quote, between CR and LF, and 1-byte ranges. */
static size_t pick_cuts(const stream *s, size_t *cut) {
    size_t n = 1, want = 1 + below(MAXCUTS - 2);
    cut[0] = 0;
    for (size_t t = 0; t < 4 * want && n < want && s->len > 1; t++) {
        size_t at = 1 + below(s->len - 1), how = below(4);
        if (how == 1 && s->state[at] != IN && s->kind == DI_FRAME_CSV)
            continue;
        if (how == 2 && s->buf[at - 1] != '"')
            continue;
        if (how == 3 && !(s->buf[at - 1] == '\r' && s->buf[at] == '\n'))
            continue;
        cut[n++] = at;
        if (below(4) == 0 && at + 1 < s->len && n < want)
            cut[n++] = at + 1; /* a 1-byte range */
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: n is small */
        for (size_t j = i; j > 0 && cut[j - 1] > cut[j]; j--) {
            size_t t = cut[j];
            cut[j] = cut[j - 1];
            cut[j - 1] = t;
        }
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (cut[i] != cut[m - 1])
            cut[m++] = cut[i];
    cut[m] = s->len;
    return m;
}

/* check_states: every start state's result is the naive run's. */
static void check_states(const stream *s, const di_frame *f, size_t a, size_t b) {
    for (int st = 0; st < di_frame_states(s->kind); st++) {
        di_frame_result got, want;
        di_frame_get(f, st, &got);
        ref_run(s->kind, s->delim, s->buf + a, b - a, st, &want);
        CHECK_INT(got.end_state, want.end_state);
        CHECK_INT(got.starts, want.starts);
        CHECK_INT(got.first, want.first);
    }
}

/* first_r is the reference's first offset in [a, b) in state R, -1 none. */
static int64_t first_r(const stream *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (s->state[i] == R)
            return (int64_t)i;
    return -1;
}

/* check_link: a chained range agrees with the whole stream, and with the
 * parser: the first record it returns at or after the range's boundary is
 * numbered from the range's first row (NDJSON: plus the blank lines before it). */
static void check_link(const stream *s, const di_frame_range *r, size_t a, size_t b) {
    CHECK_INT(r->state, s->state[a]);
    CHECK_INT(r->boundary, first_r(s, a, b));
    CHECK_INT(r->records, starts_before(s, (int64_t)b) - starts_before(s, (int64_t)a));
    CHECK_INT(r->first_row, 1 + starts_before(s, (int64_t)a));
    for (size_t i = 0; r->boundary >= 0 && i < s->np; i++) {
        if (s->pstart[i] >= r->boundary) {
            int64_t blanks = starts_before(s, s->pstart[i]) - starts_before(s, r->boundary);
            CHECK_INT(s->prow[i], r->first_row + blanks);
            if (s->kind == DI_FRAME_CSV)
                CHECK_INT(blanks, 0);
            break;
        }
    }
}

/* check_ranges cuts the stream, frames each range alone, chains them. */
static void check_ranges(const stream *s) {
    static di_frame f;
    di_frame_range r[MAXCUTS + 1];
    size_t cut[MAXCUTS + 1];
    size_t n = pick_cuts(s, cut);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        frame_feed(&f, s, s->buf + cut[i], cut[i + 1] - cut[i]);
        check_states(s, &f, cut[i], cut[i + 1]);
        di_frame_collect(&f, (int64_t)cut[i], &r[i]);
    }
    CHECK_INT(di_frame_chain(r, n, R, 1), s->state[s->len]);
    for (size_t i = 0; i < n; i++) {
        check_link(s, &r[i], cut[i], cut[i + 1]);
        total += r[i].records;
    }
    CHECK_INT(total, s->nr);
}

/* check_stream runs every check on one generated stream. */
static void check_stream(stream *s) {
    int failed = check_failed;
    ref_whole(s);
    run_parser(s);
    check_parser(s);
    check_whole(s);
    check_ranges(s);
    if (check_failed != failed)
        fprintf(stderr, "  stream of %zu bytes, delimiter %d, kind %d, seed state %llu\n", s->len,
                s->delim, (int)s->kind, (unsigned long long)rng_state);
}

/* stream_new allocates a stream's arrays for MAXLEN bytes. */
static stream *stream_new(void) {
    stream *s = calloc(1, sizeof *s);
    s->buf = malloc(MAXLEN);
    s->pstart = malloc(MAXLEN * sizeof *s->pstart);
    s->prow = malloc(MAXLEN * sizeof *s->prow);
    s->state = malloc((MAXLEN + 1) * sizeof *s->state);
    s->rstart = malloc(MAXLEN * sizeof *s->rstart);
    return s;
}

/* stream_free releases what stream_new allocated. */
static void stream_free(stream *s) {
    free(s->buf);
    free(s->pstart);
    free(s->prow);
    free(s->state);
    free(s->rstart);
    free(s);
}

/* ---- the tests ------------------------------------------------------------- */

/* iterations scales a test's stream count by DSA_TEST_SCALE (the sanitizer
 * run's 0.3), keeping at least a few hundred streams. */
static int iterations(int base) {
    int n = (int)(base * check_scale());
    return n < 300 ? 300 : n;
}

/* test_csv_random: CSV with ',' (most), TSV and ';', small and medium. */
static void test_csv_random(void) {
    static const unsigned char delims[] = {',', ',', '\t', ';'};
    stream *s = stream_new();
    rng_state = 0x9E3779B97F4A7C15ULL;
    for (int it = 0, n = iterations(3000); it < n; it++) {
        s->kind = DI_FRAME_CSV;
        s->delim = delims[below(4)];
        gen_csv(s, it % 100 == 99 ? 20000 + below(200000) : below(300), 0);
        check_stream(s);
    }
    stream_free(s);
}

/* test_csv_errors: streams the parser refuses ("a"b, unterminated quotes):
 * E is reported and the records before the error still agree. */
static void test_csv_errors(void) {
    stream *s = stream_new();
    rng_state = 12345;
    for (int it = 0, n = iterations(3000); it < n; it++) {
        s->kind = DI_FRAME_CSV;
        s->delim = ',';
        if (it % 2)
            gen_noise(s, below(60));
        else
            gen_csv(s, it % 100 == 98 ? 50000 : below(2000), 1);
        check_stream(s);
    }
    stream_free(s);
}

/* test_lines_random: NDJSON against ndjson.c. */
static void test_lines_random(void) {
    stream *s = stream_new();
    rng_state = 777;
    for (int it = 0, n = iterations(2000); it < n; it++) {
        s->kind = DI_FRAME_LINES;
        s->delim = 0;
        gen_lines(s, it % 100 == 99 ? 20000 + below(100000) : below(300));
        check_stream(s);
    }
    stream_free(s);
}

/* A fixed case: a stream framed whole from R. */
typedef struct fixed_case {
    di_frame_kind kind;
    unsigned char delim;
    const char *in;
    int end;
    int64_t starts;
} fixed_case;

static const fixed_case fixed_cases[] = {
    {DI_FRAME_CSV, ',', "", R, 0},
    {DI_FRAME_CSV, ',', "\r\n\n", R, 0},            /* blank lines are not records */
    {DI_FRAME_CSV, ',', "a,b\r\nc,d", U, 2},        /* no final newline */
    {DI_FRAME_CSV, ',', "a\"b,\"c\"\"d\"\n", R, 1}, /* bare quote; doubled quote */
    {DI_FRAME_CSV, ',', "\"x\ny\",1\rz\n", R, 2},   /* LF inside quotes; lone CR ends */
    {DI_FRAME_CSV, ',', "\"a\"b\nc\n", E, 1},       /* libcsv strict refuses it */
    {DI_FRAME_CSV, ',', "\"a\" ,b\n", E, 1},        /* a space after the quote too */
    {DI_FRAME_CSV, ',', "\"open\nx\n", IN, 1},      /* unterminated */
    {DI_FRAME_CSV, '\t', "a,\"b\tc\"\td\n", R, 1},  /* TSV: bare quotes after the comma */
    {DI_FRAME_CSV, '\t', "\"b\tc\"\td\n", R, 1},
    {DI_FRAME_CSV, 0, ",\n", R, 1}, /* 0: ',' */
    {DI_FRAME_LINES, 0, "{}\n\n \r\n{}", L, 4},
    {DI_FRAME_LINES, 0, "\n", R, 1}, /* a blank line has a row number */
    {DI_FRAME_LINES, 0, "a\rb\n", R, 1},
};

/* test_fixed frames each case whole and checks the parser's verdict. */
static void test_fixed(void) {
    stream *s = stream_new();
    for (size_t i = 0; i < sizeof fixed_cases / sizeof *fixed_cases; i++) {
        const fixed_case *c = &fixed_cases[i];
        di_frame f;
        CHECK_INT(di_frame_init(&f, c->kind, c->delim), 0);
        di_frame_feed(&f, c->in, strlen(c->in));
        di_frame_result got;
        di_frame_get(&f, R, &got);
        CHECK_INT(got.end_state, c->end);
        CHECK_INT(got.starts, c->starts);
        s->kind = c->kind;
        s->delim = c->delim ? c->delim : ',';
        s->len = 0;
        put(s, c->in, strlen(c->in));
        check_stream(s);
        if (got.end_state != c->end || got.starts != c->starts)
            fprintf(stderr, "  fixed case %zu\n", i);
    }
    stream_free(s);
}

/* test_bom: the parsers skip a BOM at offset 0; a frame started after it
 * agrees with them (one started on it would count "\xEF\xBB\xBF\n" a record). */
static void test_bom(void) {
    static const char in[] = "\xEF\xBB\xBF\n\"a\",b\n";
    di_frame f;
    CHECK_INT(di_frame_init(&f, DI_FRAME_CSV, ','), 0);
    di_frame_feed(&f, in + 3, sizeof in - 4);
    di_frame_range r;
    di_frame_collect(&f, 3, &r);
    CHECK_INT(di_frame_chain(&r, 1, R, 1), R);
    CHECK_INT(r.records, 1);
    di_parse_opts o;
    di_parse_opts_default(&o);
    o.header = 0;
    mem_in m = {in, sizeof in - 1, 0};
    di_error err;
    di_parser *p = di_parser_new(&o, mem_read, &m, &err);
    di_record rec;
    CHECK_INT(di_parser_next(p, &rec, &err), 1);
    CHECK_INT(rec.start, 4); /* the frame's record start: 3 + 1 */
    CHECK_INT(rec.row, r.first_row);
    CHECK_INT(di_parser_next(p, &rec, &err), 0);
    di_parser_free(p);
}

/* test_init: the delimiters csv.c refuses are refused here too. */
static void test_init(void) {
    di_frame f;
    CHECK_INT(di_frame_init(&f, DI_FRAME_CSV, '"'), -1);
    CHECK_INT(di_frame_init(&f, DI_FRAME_CSV, '\n'), -1);
    CHECK_INT(di_frame_init(&f, DI_FRAME_CSV, '\r'), -1);
    CHECK_INT(di_frame_init(&f, DI_FRAME_LINES, 0), 0);
    CHECK_INT(di_frame_states(DI_FRAME_CSV), 6);
    CHECK_INT(di_frame_states(DI_FRAME_LINES), 2);
}

/* test_chain_resume: chaining from a known state and row (a resumed run). */
static void test_chain_resume(void) {
    di_frame_range r[2] = {0};
    r[0].offset = 100;
    r[0].out[IN] = (di_frame_result){.end_state = R, .starts = 2, .first = 5};
    r[1].offset = 150;
    r[1].out[R] = (di_frame_result){.end_state = U, .starts = 1, .first = 0};
    CHECK_INT(di_frame_chain(r, 2, IN, 41), U);
    CHECK_INT(r[0].state, IN);
    CHECK_INT(r[0].boundary, 105);
    CHECK_INT(r[0].first_row, 41);
    CHECK_INT(r[1].boundary, 150);
    CHECK_INT(r[1].first_row, 43);
}

int main(void) {
    test_init();
    test_fixed();
    test_bom();
    test_chain_resume();
    test_csv_random();
    test_csv_errors();
    test_lines_random();
    return check_report();
}
