/* test_ndjson.c - the NDJSON parse stage against tables of tricky inputs.
 *
 * Expected canonical texts were computed with Python's json.dumps(json.loads(line),
 * sort_keys=True, separators=(",", ":"), ensure_ascii=False). Every stream is fed
 * in slices of 1, 7 and 4096 bytes (and whole) so read boundaries cannot matter;
 * resume is checked at every record boundary against the tail of a full parse. */
#include "check.h"
#include "dsa_ingest/buf.h"
#include "dsa_ingest/parse.h"
#include "dsa_ingest/row.h"
#include "parse/canon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXREC 256

static const size_t slices[] = {1, 7, 4096, (size_t)1 << 30};
#define NSLICES (sizeof slices / sizeof *slices)

/* mem_in is the in-memory source: at most `slice` bytes per read, and a failure
 * once `fail_at` bytes were given (never when fail_at is 0). */
typedef struct mem_in {
    const char *p;
    size_t len, pos, slice, fail_at;
} mem_in;

/* mem_read is the di_read_fn over mem_in. */
static int mem_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    mem_in *m = ctx;
    if (m->fail_at && m->pos >= m->fail_at)
        return di_error_set(err, DI_ERR_TRANSIENT, "connection reset");
    size_t k = m->len - m->pos;
    k = k < m->slice ? k : m->slice;
    k = k < cap ? k : cap;
    if (m->fail_at && k > m->fail_at - m->pos)
        k = m->fail_at - m->pos;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    *n = k;
    return 0;
}

/* result is what one parse produced: a log line per record ("R<row> <json>")
 * and per error ("E<row>@<byte> <message>"), plus the offsets and columns. */
typedef struct result {
    di_buf log;
    size_t loff[MAXREC + 1]; /* where the k-th entry starts in log */
    int64_t row[MAXREC], start[MAXREC], next[MAXREC];
    int nrec, nent, rc;
    di_error err;
    di_buf cols; /* column names, each followed by '|' */
    size_t ncols;
} result;

/* check_record checks what every record promises: unique names sorted by
 * bytes, every kind JSON, each field NUL-terminated at its length. */
static void check_record(const di_record *rec) {
    CHECK(rec->names != NULL && rec->kinds != NULL);
    for (size_t i = 0; i < rec->nfields; i++) {
        CHECK(rec->kinds[i] == DI_VAL_JSON);
        CHECK(rec->fields[i][rec->lens[i]] == '\0');
        CHECK(strlen(rec->fields[i]) == rec->lens[i]);
        if (i > 0) {
            size_t a = strlen(rec->names[i - 1]), b = strlen(rec->names[i]);
            int c = memcmp(rec->names[i - 1], rec->names[i], a < b ? a : b);
            CHECK(c < 0 || (c == 0 && a < b));
        }
    }
}

/* log_record appends "R<row> <canonical object>\n" (the row stage's writer). */
static void log_record(result *r, const di_record *rec) {
    di_buf json;
    di_buf_init(&json, SIZE_MAX / 2);
    check_record(rec);
    CHECK(di_row_json_keyed(rec->names, rec->fields, rec->lens, rec->kinds, rec->nfields, &json) ==
          0);
    CHECK(di_buf_printf(&r->log, "R%lld %s\n", (long long)rec->row, json.data ? json.data : "") ==
          0);
    if (r->nrec < MAXREC) {
        r->row[r->nrec] = rec->row;
        r->start[r->nrec] = rec->start;
        r->next[r->nrec] = rec->next;
        r->nrec++;
    }
    di_buf_cleanup(&json);
}

/* parse_opts runs a parser over in[0..len) in slices, logging records and the
 * errors it goes on after (input class); it stops at the end or a fatal error. */
static void parse_opts(const char *in, size_t len, const di_parse_opts *o, size_t slice,
                       size_t fail_at, result *r) {
    memset(r, 0, sizeof *r);
    di_buf_init(&r->log, SIZE_MAX / 2);
    di_buf_init(&r->cols, SIZE_MAX / 2);
    CHECK(di_buf_append(&r->log, "", 0) == 0);
    CHECK(di_buf_append(&r->cols, "", 0) == 0);
    mem_in m = {in, len, 0, slice, fail_at};
    di_parser *p = di_parser_new(o, mem_read, &m, &r->err);
    if (!p) {
        r->rc = -2;
        return;
    }
    di_record rec;
    for (;;) {
        if (r->nent < MAXREC)
            r->loff[r->nent++] = r->log.len;
        r->rc = di_parser_next(p, &rec, &r->err);
        if (r->rc == 1) {
            log_record(r, &rec);
            continue;
        }
        if (r->rc == 0 || r->err.cls != DI_ERR_INPUT)
            break;
        CHECK_STR(r->err.table, o->table_key ? o->table_key : "primary");
        CHECK_INT(r->err.code, DI_CODE_RECORD);
        CHECK(di_buf_printf(&r->log, "E%lld@%lld %s\n", (long long)r->err.row,
                            (long long)r->err.byte, r->err.message) == 0);
    }
    const char *const *c = di_parser_columns(p, &r->ncols);
    CHECK((c == NULL) == (r->ncols == 0));
    for (size_t i = 0; i < r->ncols; i++)
        CHECK(di_buf_printf(&r->cols, "%s|", c[i]) == 0);
    CHECK_STR(di_parser_table(p), o->table_key ? o->table_key : "primary");
    di_parser_free(p);
}

/* ndjson_opts are the defaults with the NDJSON format. */
static di_parse_opts ndjson_opts(void) {
    di_parse_opts o;
    di_parse_opts_default(&o);
    o.format = DI_FMT_NDJSON;
    return o;
}

/* parse_in parses a NUL-terminated input with the defaults. */
static void parse_in(const char *in, size_t slice, result *r) {
    di_parse_opts o = ndjson_opts();
    parse_opts(in, strlen(in), &o, slice, 0, r);
}

static void result_free(result *r) {
    di_buf_cleanup(&r->log);
    di_buf_cleanup(&r->cols);
}

/* expect_log parses `in` in every slice size and compares the log. */
static void expect_log(const char *in, size_t len, const di_parse_opts *o, const char *want) {
    for (size_t s = 0; s < NSLICES; s++) {
        result r;
        parse_opts(in, len, o, slices[s], 0, &r);
        CHECK_INT(r.rc, 0);
        CHECK_STR(r.log.data, want);
        result_free(&r);
    }
}

/* ---- numbers: a literal's canonical text vs Python's ---------------------- */

typedef struct num_case {
    const char *lit, *want;
} num_case;

static const num_case num_cases[] = {
    {"0", "0"},
    {"-0", "0"},
    {"1", "1"},
    {"-1", "-1"},
    {"10", "10"},
    {"-123", "-123"},
    {"123456789012345678901234567890", "123456789012345678901234567890"},
    {"1.0", "1.0"},
    {"-0.0", "-0.0"},
    {"0.0", "0.0"},
    {"1e2", "100.0"},
    {"1E-7", "1e-07"},
    {"0.1", "0.1"},
    {"1.7976931348623157e308", "1.7976931348623157e+308"},
    {"1e400", "Infinity"},
    {"-1e400", "-Infinity"},
    {"1e-400", "0.0"},
    {"-1e-400", "-0.0"},
    {"5e-324", "5e-324"},
    {"2.4703282292062328e-324", "5e-324"},
    {"0.30000000000000004", "0.30000000000000004"},
    {"12345678.9", "12345678.9"},
    {"1e16", "1e+16"},
    {"1e15", "1000000000000000.0"},
    {"9999999999999999.0", "1e+16"},
    {"1.5e-5", "1.5e-05"},
    {"0.0001", "0.0001"},
    {"0.00001", "1e-05"},
    {"1e22", "1e+22"},
    {"1e23", "1e+23"},
    {"2.5e-320", "2.5e-320"},
    {"1.0e+2", "100.0"},
    {"0e0", "0.0"},
    {"1.5E+16", "1.5e+16"},
    {"4.35", "4.35"},
    {"2.675", "2.675"},
    {"100.5e-2", "1.005"},
    {"0.1e1", "1.0"},
    {"1e-5", "1e-05"},
    {"123e-20", "1.23e-18"},
    {"8.98846567431158e307", "8.98846567431158e+307"},
    {"2.2250738585072014e-308", "2.2250738585072014e-308"},
    {"2.225073858507201e-308", "2.225073858507201e-308"},
    {"9007199254740993.0", "9007199254740992.0"},
    {"0.000123456789012345678", "0.00012345678901234567"},
    {"1.00000000000000000000001", "1.0"},
    {"3.14159265358979323846264338327950288", "3.141592653589793"},
    {"-2.5E-3", "-0.0025"},
    {"1E+308", "1e+308"},
    {"1.7976931348623158e308", "1.7976931348623157e+308"},
    {"1.7976931348623159e308", "Infinity"},
    {"0.0000000000000000000000000000001", "1e-31"},
    {"-1.0", "-1.0"},
    {"-0.0", "-0.0"},
    {"-1e2", "-100.0"},
    {"-1E-7", "-1e-07"},
    {"-0.1", "-0.1"},
    {"-1.7976931348623157e308", "-1.7976931348623157e+308"},
    {"-1e400", "-Infinity"},
    {"-1e-400", "-0.0"},
    {"-5e-324", "-5e-324"},
    {"-2.4703282292062328e-324", "-5e-324"},
    {"-0.30000000000000004", "-0.30000000000000004"},
    {"-12345678.9", "-12345678.9"},
    {"-1e16", "-1e+16"},
    {"-1e15", "-1000000000000000.0"},
    {"-9999999999999999.0", "-1e+16"},
    {"-1.5e-5", "-1.5e-05"},
    {"-0.0001", "-0.0001"},
    {"-0.00001", "-1e-05"},
    {"-1e22", "-1e+22"},
    {"-1e23", "-1e+23"},
    {"-2.5e-320", "-2.5e-320"},
    {"-1.0e+2", "-100.0"},
    {"-0e0", "-0.0"},
    {"-1.5E+16", "-1.5e+16"},
    {"-4.35", "-4.35"},
    {"-2.675", "-2.675"},
    {"-100.5e-2", "-1.005"},
    {"-0.1e1", "-1.0"},
    {"-1e-5", "-1e-05"},
    {"-123e-20", "-1.23e-18"},
    {"-8.98846567431158e307", "-8.98846567431158e+307"},
    {"-2.2250738585072014e-308", "-2.2250738585072014e-308"},
    {"-2.225073858507201e-308", "-2.225073858507201e-308"},
    {"-9007199254740993.0", "-9007199254740992.0"},
    {"-0.000123456789012345678", "-0.00012345678901234567"},
    {"-1.00000000000000000000001", "-1.0"},
    {"-3.14159265358979323846264338327950288", "-3.141592653589793"},
    {"-1E+308", "-1e+308"},
    {"-1.7976931348623158e308", "-1.7976931348623157e+308"},
    {"-1.7976931348623159e308", "-Infinity"},
    {"-0.0000000000000000000000000000001", "-1e-31"},
    {"-88815503050121.22", "-88815503050121.22"},
    {"-49.282767067905056", "-49.282767067905056"},
    {"2.799491064788738", "2.799491064788738"},
    {"-9.5367431640625e-07", "-9.5367431640625e-07"},
    {"1.4901161193847656e-08", "1.4901161193847656e-08"},
    {"-4.440892098500626e-16", "-4.440892098500626e-16"},
};

/* test_numbers runs the table through di_canon_number alone (the literal's
 * own strtod), then as a line (the writer reuses cJSON's double). */
static void test_numbers(void) {
    di_canon c;
    di_canon_init(&c);
    di_buf out, in, want;
    di_buf_init(&out, SIZE_MAX / 2);
    di_buf_init(&in, SIZE_MAX / 2);
    di_buf_init(&want, SIZE_MAX / 2);
    di_parse_opts o = ndjson_opts();
    for (size_t i = 0; i < sizeof num_cases / sizeof *num_cases; i++) {
        const num_case *n = &num_cases[i];
        di_buf_reset(&out);
        CHECK(di_canon_number(&c, n->lit, strlen(n->lit), &out) == 0);
        CHECK_STR(out.data, n->want);
        di_buf_reset(&in);
        di_buf_reset(&want);
        CHECK(di_buf_printf(&in, "{\"n\":%s,\"m\":[%s]}", n->lit, n->lit) == 0);
        CHECK(di_buf_printf(&want, "R1 {\"m\":[%s],\"n\":%s}\n", n->want, n->want) == 0);
        result r;
        parse_opts(in.data, in.len, &o, 4096, 0, &r);
        CHECK_STR(r.log.data, want.data);
        result_free(&r);
    }
    di_buf_cleanup(&out);
    di_buf_cleanup(&in);
    di_buf_cleanup(&want);
    di_canon_cleanup(&c);
}

/* ---- lines: canonical objects vs Python's --------------------------------- */

typedef struct line_case {
    const char *in, *want;
} line_case;

static const line_case line_cases[] = {
    {"{\"k6\":{\"k0\":0,\"k3\":1,\"k17\":2,\"k6\":3,\"k11\":4,\"é\":5,\"k5\":6,\"a\":7,\"k16\":8,"
     "\"k13\":9,\"k4\":10,\"k8\":11,\"k0\":12,\"k1\":13,\"k10\":14,\"k7\":15,\"k17\":16,\"k1\":17},"
     "\"k16\":1.5,\"é\":2.5,\"k14\":{\"k3\":0,\"k17\":1,\"a\":2,\"k0\":3,\"k1\":4,\"k12\":5,"
     "\"k14\":6,\"k16\":7,\"k11\":8,\"k3\":9,\"k17\":10,\"k2\":11,\"k1\":12,\"k0\":13,\"k8\":14,"
     "\"k4\":15,\"k7\":16,\"k9\":17},\"k1\":4.5,\"k5\":5.5,\"k17\":{\"k3\":0,\"a\":1,\"k12\":2,"
     "\"k2\":3,\"k18\":4,\"k8\":5,\"k11\":6,\"k10\":7,\"k1\":8,\"k6\":9,\"k9\":10,\"k13\":11,"
     "\"k4\":12,\"k17\":13,\"é\":14,\"k5\":15,\"k3\":16,\"k16\":17},\"k10\":7.5,\"k9\":8.5,\"k13\":"
     "{\"k4\":0,\"k19\":1,\"k17\":2,\"k18\":3,\"a\":4,\"k9\":5,\"k13\":6,\"k14\":7,\"é\":8,\"k3\":"
     "9,\"k0\":10,\"k16\":11,\"k5\":12,\"k3\":13,\"k0\":14,\"k17\":15,\"k2\":16,\"k6\":17},\"k1\":"
     "10.5,\"k12\":11.5,\"k3\":{\"k13\":0,\"k8\":1,\"k18\":2,\"k14\":3,\"k16\":4,\"k15\":5,\"k19\":"
     "6,\"k11\":7,\"k3\":8,\"k1\":9,\"k9\":10,\"k3\":11,\"k4\":12,\"k6\":13,\"k1\":14,\"k2\":15,"
     "\"a\":16,\"k7\":17},\"k8\":13.5,\"k0\":14.5,\"k3\":{\"k15\":0,\"k2\":1,\"k16\":2,\"k17\":3,"
     "\"k8\":4,\"k13\":5,\"k7\":6,\"k9\":7,\"k1\":8,\"k17\":9,\"k1\":10,\"k5\":11,\"k0\":12,\"é\":"
     "13,\"k4\":14,\"k12\":15,\"k10\":16,\"a\":17},\"k0\":16.5,\"k2\":17.5,\"a\":{\"k3\":0,\"k19\":"
     "1,\"k15\":2,\"k11\":3,\"k2\":4,\"k14\":5,\"k17\":6,\"k0\":7,\"k9\":8,\"k8\":9,\"k10\":10,"
     "\"k0\":11,\"k1\":12,\"k17\":13,\"a\":14,\"k4\":15,\"k12\":16,\"k1\":17},\"k15\":19.5,\"k19\":"
     "20.5,\"k11\":{\"k1\":0,\"k6\":1,\"k8\":2,\"a\":3,\"k7\":4,\"k18\":5,\"k3\":6,\"k4\":7,\"k1\":"
     "8,\"k16\":9,\"k11\":10,\"k10\":11,\"k5\":12,\"k3\":13,\"k17\":14,\"k13\":15,\"k2\":16,\"k0\":"
     "17},\"k4\":22.5,\"k17\":23.5,\"k18\":{\"k6\":0,\"a\":1,\"k16\":2,\"k11\":3,\"k7\":4,\"k12\":"
     "5,\"k9\":6,\"k0\":7,\"k13\":8,\"k1\":9,\"k5\":10,\"k3\":11,\"é\":12,\"k18\":13,\"k3\":14,"
     "\"k2\":15,\"k1\":16,\"k0\":17},\"k7\":25.5}",
     "{\"a\":{\"a\":14,\"k0\":11,\"k1\":17,\"k10\":10,\"k11\":3,\"k12\":16,\"k14\":5,\"k15\":2,"
     "\"k17\":13,\"k19\":1,\"k2\":4,\"k3\":0,\"k4\":15,\"k8\":9,\"k9\":8},\"k0\":16.5,\"k1\":10.5,"
     "\"k10\":7.5,\"k11\":{\"a\":3,\"k0\":17,\"k1\":8,\"k10\":11,\"k11\":10,\"k13\":15,\"k16\":9,"
     "\"k17\":14,\"k18\":5,\"k2\":16,\"k3\":13,\"k4\":7,\"k5\":12,\"k6\":1,\"k7\":4,\"k8\":2},"
     "\"k12\":11.5,\"k13\":{\"a\":4,\"k0\":14,\"k13\":6,\"k14\":7,\"k16\":11,\"k17\":15,\"k18\":3,"
     "\"k19\":1,\"k2\":16,\"k3\":13,\"k4\":0,\"k5\":12,\"k6\":17,\"k9\":5,\"é\":8},\"k14\":{\"a\":"
     "2,\"k0\":13,\"k1\":12,\"k11\":8,\"k12\":5,\"k14\":6,\"k16\":7,\"k17\":10,\"k2\":11,\"k3\":9,"
     "\"k4\":15,\"k7\":16,\"k8\":14,\"k9\":17},\"k15\":19.5,\"k16\":1.5,\"k17\":23.5,\"k18\":{"
     "\"a\":1,\"k0\":17,\"k1\":16,\"k11\":3,\"k12\":5,\"k13\":8,\"k16\":2,\"k18\":13,\"k2\":15,"
     "\"k3\":14,\"k5\":10,\"k6\":0,\"k7\":4,\"k9\":6,\"é\":12},\"k19\":20.5,\"k2\":17.5,\"k3\":{"
     "\"a\":17,\"k0\":12,\"k1\":10,\"k10\":16,\"k12\":15,\"k13\":5,\"k15\":0,\"k16\":2,\"k17\":9,"
     "\"k2\":1,\"k4\":14,\"k5\":11,\"k7\":6,\"k8\":4,\"k9\":7,\"é\":13},\"k4\":22.5,\"k5\":5.5,"
     "\"k6\":{\"a\":7,\"k0\":12,\"k1\":17,\"k10\":14,\"k11\":4,\"k13\":9,\"k16\":8,\"k17\":16,"
     "\"k3\":1,\"k4\":10,\"k5\":6,\"k6\":3,\"k7\":15,\"k8\":11,\"é\":5},\"k7\":25.5,\"k8\":13.5,"
     "\"k9\":8.5,\"é\":2.5}"},
    {"{\"b\":1,\"a\":2}", "{\"a\":2,\"b\":1}"},
    {"{\"n\":[1,1.0,-0,-0.0,1e2,1E-7,0.1,123456789012345678901234567890,1.7976931348623157e308,"
     "1e400,-1e400,5e-324,0.30000000000000004,12345678.9,1e16,1e15,1.5e-5]}",
     "{\"n\":[1,1.0,0,-0.0,100.0,1e-07,0.1,123456789012345678901234567890,1.7976931348623157e+308,"
     "Infinity,-Infinity,5e-324,0.30000000000000004,12345678.9,1e+16,1000000000000000.0,1.5e-05]}"},
    {"{\"n\":[1e-400,-1e-400,0.0001,0.00001,1e22,1e23,2.5e-320,100,-12,9007199254740993,1.0e+2,0e0,"
     "-0e-0,1.5E+16,123.456e-2,4.35,2.675,1e-5,9999999999999998.0,0.1e1]}",
     "{\"n\":[0.0,-0.0,0.0001,1e-05,1e+22,1e+23,2.5e-320,100,-12,9007199254740993,100.0,0.0,-0.0,1."
     "5e+16,1.23456,4.35,2.675,1e-05,9999999999999998.0,1.0]}"},
    {"{\"x\":{\"b\":1,\"a\":{\"d\":[],\"c\":{}},\"b\":{\"z\":1,\"y\":2,\"z\":3}},\"a\":[[],[[]],{}]"
     "}",
     "{\"a\":[[],[[]],{}],\"x\":{\"a\":{\"c\":{},\"d\":[]},\"b\":{\"y\":2,\"z\":3}}}"},
    {"{\"é\":1,\"z\":2,\"😀\":3,\"a\":4,\"ab\":5,\"\":6,\"\\u00e9x\":7,\"\\uD834\\uDD1E\":8,"
     "\"\\uffff\":9}",
     "{\"\":6,\"a\":4,\"ab\":5,\"z\":2,\"é\":1,\"éx\":7,\"\xef"
     "\xbf"
     "\xbf"
     "\":9,\"𝄞\":8,\"😀\":3}"},
    {"{\"s\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0001 \\u001f \\u007f \\u2028 \\u00e9 "
     "\\ud83d\\ude00 é\"}",
     "{\"s\":\"\\\" \\\\ / \\b \\f \\n \\r \\t \\u0001 \\u001f \x7f"
     " \xe2"
     "\x80"
     "\xa8"
     " é 😀 é\"}"},
    {"{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}"},
    {" \t{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \t\r", "{\"a\":[1,2],\"b\":{}}"},
    {"{}", "{}"},
    {"{\"t\":true,\"f\":false,\"z\":null,\"e\":[],\"o\":{},\"s\":\"\"}",
     "{\"e\":[],\"f\":false,\"o\":{},\"s\":\"\",\"t\":true,\"z\":null}"},
    {"{\"a\\nb\":1,\"a\\\"\":2,\"a\":{\"\\\\\":\"\\u0041\\u00DF\"}}",
     "{\"a\":{\"\\\\\":\"Aß\"},\"a\\nb\":1,\"a\\\"\":2}"},
    {"{\"big\":1234567890123456789012345678901234567890123456789012345678901234567890,\"f\":0."
     "33333333333333333333333333333333333333333333333333333333333333333333333333333333,\"g\":-"
     "9999999999999999999999999999999999999999999999999999999999999999999999.5e-3}",
     "{\"big\":1234567890123456789012345678901234567890123456789012345678901234567890,\"f\":0."
     "3333333333333333,\"g\":-1e+67}"},
    {"{\"d\":{\"k\":[{\"k\":1,\"k\":{\"b\":[1.50,2e0],\"a\":-0}}],\"k\":\"last\"},\"d\":{\"k2\":[0."
     "5]}}",
     "{\"d\":{\"k2\":[0.5]}}"},
    {"{\"a\":1.5,\"a\":2.50,\"b\":[1e1,{\"c\":0.1,\"c\":1E2}]}",
     "{\"a\":2.5,\"b\":[10.0,{\"c\":100.0}]}"},
    {"{\"x\":\"\\u0080\\u07ff\\u0800\\ufffd\",\"y\":\"\\ud800\\udc00\\udbff\\udfff\"}",
     "{\"x\":\"\xc2"
     "\x80"
     "߿ࠀ�\",\"y\":\"𐀀\xf4"
     "\x8f"
     "\xbf"
     "\xbf"
     "\"}"},
};
#define NLINES (sizeof line_cases / sizeof *line_cases)

/* test_lines parses each case alone, then all of them as one stream with LF
 * and CRLF endings alternating (and no newline after the last). */
static void test_lines(void) {
    di_parse_opts o = ndjson_opts();
    di_buf in, want;
    di_buf_init(&in, SIZE_MAX / 2);
    di_buf_init(&want, SIZE_MAX / 2);
    for (size_t i = 0; i < NLINES; i++) {
        di_buf one;
        di_buf_init(&one, SIZE_MAX / 2);
        CHECK(di_buf_printf(&one, "R1 %s\n", line_cases[i].want) == 0);
        expect_log(line_cases[i].in, strlen(line_cases[i].in), &o, one.data);
        di_buf_cleanup(&one);
        CHECK(di_buf_printf(&in, "%s%s", line_cases[i].in,
                            i + 1 == NLINES ? ""
                            : i % 2         ? "\r\n"
                                            : "\n") == 0);
        CHECK(di_buf_printf(&want, "R%zu %s\n", i + 1, line_cases[i].want) == 0);
    }
    expect_log(in.data, in.len, &o, want.data);
    di_buf_cleanup(&in);
    di_buf_cleanup(&want);
}

/* ---- errors: each line refused with its reason, and the stream goes on ---- */

typedef struct err_case {
    const char *in, *msg;
} err_case;

static const err_case err_cases[] = {
    {"[1,2]", "line is not a JSON object (found an array)"},
    {"\"str\"", "line is not a JSON object (found a string)"},
    {" 1 ", "line is not a JSON object (found a number)"},
    {"null", "line is not a JSON object (found null)"},
    {"true", "line is not a JSON object (found a boolean)"},
    {"{\"a\":01}", "malformed JSON at column 6: a number cannot start with 0"},
    {"{\"a\":-01}", "malformed JSON at column 6: a number cannot start with 0"},
    {"{\"a\":1.}", "malformed JSON at column 7: a digit must follow the decimal point"},
    {"{\"a\":.5}", "malformed JSON at column 6: unexpected character '.'"},
    {"{\"a\":+1}", "malformed JSON at column 6: unexpected character '+'"},
    {"{\"a\":-}", "malformed JSON at column 6: a digit must follow '-'"},
    {"{\"a\":1e}", "malformed JSON at column 8: a digit must follow the exponent mark"},
    {"{\"a\":1E+}", "malformed JSON at column 9: a digit must follow the exponent mark"},
    {"{\"a\":1,}", "malformed JSON at column 8: an object key in double quotes was expected"},
    {"{\"a\" 1}", "malformed JSON at column 6: ':' was expected after the object key"},
    {"{\"a\":1}x", "malformed JSON at column 8: extra data after the value"},
    {"{\"a\":1}{\"b\":2}", "malformed JSON at column 8: extra data after the value"},
    {"{\"a\":1", "malformed JSON at column 7: ',' or '}' was expected after the value"},
    {"{\"a\":", "malformed JSON at column 6: a value is missing at the end of the line"},
    {"{\"a\":\"x", "malformed JSON at column 6: unterminated string"},
    {"{\"a\":\"x\\", "malformed JSON at column 8: invalid escape"},
    {"{\"a\":[1,]}", "malformed JSON at column 9: unexpected character ']'"},
    {"{\"a\":[1 2]}", "malformed JSON at column 9: ',' or ']' was expected after the value"},
    {"{'a':1}", "malformed JSON at column 2: an object key in double quotes was expected"},
    {"{\"a\":tru}", "malformed JSON at column 6: unexpected character 't'"},
    {"{\"é\":\"ü\",x}", "malformed JSON at column 10: an object key in double quotes was expected"},
    {"{\"a\":NaN}", "malformed JSON at column 6: NaN is not JSON"},
    {"{\"a\":Infinity}", "malformed JSON at column 6: Infinity is not JSON"},
    {"{\"a\":[-Infinity]}", "malformed JSON at column 7: -Infinity is not JSON"},
    {"{\"a\":\"x\\u0000\"}",
     "\\u0000 in a string at column 8: PostgreSQL jsonb cannot store the NUL character"},
    {"{\"\\u0000\":1}",
     "\\u0000 in a string at column 3: PostgreSQL jsonb cannot store the NUL character"},
    {"{\"a\":\"\\ud800\"}",
     "lone surrogate escape at column 7: \\ud800 is a high surrogate without a low one after it"},
    {"{\"a\":\"\\udc00\\ud800\"}",
     "lone surrogate escape at column 7: \\udc00 is a low surrogate without a high one before it"},
    {"{\"a\":\"\\uD800\\u0041\"}",
     "lone surrogate escape at column 7: \\ud800 is a high surrogate without a low one after it"},
    {"{\"a\":\"\\ud83d\\ude0\"}",
     "malformed JSON at column 13: invalid \\u escape (four hex digits expected)"},
    {"{\"a\":\"\\x\"}", "malformed JSON at column 7: invalid escape '\\x'"},
    {"{\"a\":\"\\u12G4\"}",
     "malformed JSON at column 7: invalid \\u escape (four hex digits expected)"},
    {"\x0b{}", "malformed JSON at column 1: unexpected control character U+000B"},
    {"{\"a\":\"x\ty\"}",
     "malformed JSON at column 8: control character U+0009 in a string (must be escaped)"},
    {"{\"a\":\"\x7f\x01\"}",
     "malformed JSON at column 8: control character U+0001 in a string (must be escaped)"},
    {"\xef\xbb\xbf{}", "malformed JSON at column 1: unexpected byte order mark (U+FEFF)"},
    {"{\"a\":\"\xff\"}", "invalid UTF-8 at byte 14"},
    {"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8 at byte 14"},
    {"{\"a\":\"\xc3\"}", "invalid UTF-8 at byte 14"},
};

/* test_errors puts each bad line between two good ones: the parser reports it
 * with its row and byte, then goes on. */
static void test_errors(void) {
    di_parse_opts o = ndjson_opts();
    for (size_t i = 0; i < sizeof err_cases / sizeof *err_cases; i++) {
        const err_case *c = &err_cases[i];
        di_buf in, want;
        di_buf_init(&in, SIZE_MAX / 2);
        di_buf_init(&want, SIZE_MAX / 2);
        CHECK(di_buf_printf(&in, "{\"a\":1}\n%s\n{\"b\":2}", c->in) == 0);
        CHECK(di_buf_printf(&want, "R1 {\"a\":1}\nE2@8 %s\nR3 {\"b\":2}\n", c->msg) == 0);
        expect_log(in.data, in.len, &o, want.data);
        di_buf_cleanup(&in);
        di_buf_cleanup(&want);
    }
}

/* test_nul: a NUL byte is refused where it stands, outside strings or in. */
static void test_nul(void) {
    static const char in[] = "{\"a\":\"x\0\"}\n{\"b\":1}\n\0\n{\"c\":2}";
    di_parse_opts o = ndjson_opts();
    expect_log(in, sizeof in - 1, &o,
               "E1@0 NUL byte at column 8\nR2 {\"b\":1}\nE3@19 NUL byte at column 1\n"
               "R4 {\"c\":2}\n");
}

/* ---- framing: row numbers, offsets, BOM, blank lines ---------------------- */

typedef struct layout_case {
    const char *in;
    const char *log;
    int64_t start[4], next[4];
} layout_case;

static const layout_case layout_cases[] = {
    /* the BOM is skipped; offsets count it */
    {"\xef\xbb\xbf{\"a\":1}\n{\"b\":2}\n", "R1 {\"a\":1}\nR2 {\"b\":2}\n", {3, 11}, {11, 19}},
    /* blank lines (spaces, tabs, CRs) count as lines but give no record */
    {"\n \t\r\n{\"a\":1}\r\n\r\n\n{\"b\":2}", "R3 {\"a\":1}\nR6 {\"b\":2}\n", {5, 17}, {14, 24}},
    {"{\"a\":1}", "R1 {\"a\":1}\n", {0}, {7}},
    {"{\"a\":1}\r\n", "R1 {\"a\":1}\n", {0}, {9}},
    {"{\"a\":1}\r", "R1 {\"a\":1}\n", {0}, {8}},
    {"{}\n{}\n", "R1 {}\nR2 {}\n", {0, 3}, {3, 6}},
    {"", "", {0}, {0}},
    {"\xef\xbb\xbf", "", {0}, {0}},
    {"\n\n  \n", "", {0}, {0}},
    /* a BOM is data after the stream start: the line is refused */
    {"{}\n\xef\xbb\xbf{}\n",
     "R1 {}\nE2@3 malformed JSON at column 1: unexpected byte order mark (U+FEFF)\n",
     {0},
     {3}},
    /* a short BOM prefix is not a BOM */
    {"\xef\xbb", "E1@0 invalid UTF-8 at byte 0\n", {0}, {0}},
};

/* test_layout checks row numbers and start/next offsets. */
static void test_layout(void) {
    for (size_t i = 0; i < sizeof layout_cases / sizeof *layout_cases; i++) {
        const layout_case *c = &layout_cases[i];
        for (size_t s = 0; s < NSLICES; s++) {
            result r;
            parse_in(c->in, slices[s], &r);
            CHECK_INT(r.rc, 0);
            CHECK_STR(r.log.data, c->log);
            for (int k = 0; k < r.nrec && k < 4; k++) {
                CHECK_INT(r.start[k], c->start[k]);
                CHECK_INT(r.next[k], c->next[k]);
            }
            result_free(&r);
        }
    }
}

/* ---- resume at every record boundary --------------------------------------- */

static const char tricky[] = "\xef\xbb\xbf{\"id\":1,\"t\":\"multi\\nline\"}\r\n"
                             "\r\n"
                             "{\"id\":2,\"n\":[1.0,-0,1e2],\"o\":{\"b\":1,\"a\":2}}\n"
                             "[\"not\",\"an\",\"object\"]\n"
                             "\n"
                             "{\"id\":3,\"é\":\"\\ud83d\\ude00\",\"id\":4}\r\n"
                             "  {\"x\":null}  \n"
                             "{\"id\":5,\"t\":\"\xef\xbb\xbf\"}";

/* test_resume parses `tricky`, then restarts after each record (and at the
 * first one's start) with start_offset/start_row and the columns so far; the
 * tail must match, offsets and error positions included. */
static void test_resume(void) {
    const char *want = "R1 {\"id\":1,\"t\":\"multi\\nline\"}\n"
                       "R3 {\"id\":2,\"n\":[1.0,0,100.0],\"o\":{\"a\":2,\"b\":1}}\n"
                       "E4@77 line is not a JSON object (found an array)\n"
                       "R6 {\"id\":4,\"é\":\"😀\"}\n"
                       "R7 {\"x\":null}\n"
                       "R8 {\"id\":5,\"t\":\"\xef\xbb\xbf\"}\n";
    for (size_t s = 0; s < NSLICES; s++) {
        result full;
        di_parse_opts o = ndjson_opts();
        parse_opts(tricky, sizeof tricky - 1, &o, slices[s], 0, &full);
        CHECK_INT(full.rc, 0);
        CHECK_STR(full.log.data, want);
        CHECK_STR(full.cols.data, "id|t|n|o|é|x|");
        CHECK_INT(full.nrec, 5);
        CHECK_INT(full.start[0], 3);
        CHECK_INT(full.next[full.nrec - 1], (int64_t)sizeof tricky - 1);
        /* every entry but the error is a record: entry k+1 follows record k */
        int ent[] = {1, 2, 4, 5, 6};
        for (int k = -1; k < full.nrec; k++) {
            di_parse_opts ro = ndjson_opts();
            ro.start_offset = k < 0 ? full.start[0] : full.next[k];
            ro.start_row = k < 0 ? full.row[0] : full.row[k] + 1;
            const char *cols[] = {"id", "t"};
            ro.resume_columns = cols;
            ro.resume_ncolumns = 2;
            result r;
            parse_opts(tricky + ro.start_offset, sizeof tricky - 1 - (size_t)ro.start_offset, &ro,
                       slices[s], 0, &r);
            CHECK_INT(r.rc, 0);
            CHECK_STR(r.log.data, full.log.data + full.loff[k < 0 ? 0 : ent[k]]);
            for (int j = 0; j < r.nrec; j++) {
                CHECK_INT(r.start[j], full.start[k + 1 + j]);
                CHECK_INT(r.next[j], full.next[k + 1 + j]);
            }
            CHECK(strncmp(r.cols.data, "id|t|", 5) == 0);
            result_free(&r);
        }
        result_free(&full);
    }
}

/* ---- the column union --------------------------------------------------------- */

/* test_columns: first-seen order (document order within a record), NULL before
 * any record, max_columns refuses a record without adding its keys. */
static void test_columns(void) {
    static const char in[] = "{\"b\":1,\"a\":2,\"b\":3}\n"
                             "{\"c\":1,\"a\":2}\n"
                             "{\"d\":1}\n"
                             "{\"e\":1,\"f\":2,\"g\":3,\"h\":4}\n"
                             "{\"b\":5}\n";
    di_parse_opts o = ndjson_opts();
    o.max_columns = 3;
    for (size_t s = 0; s < NSLICES; s++) {
        result r;
        parse_opts(in, sizeof in - 1, &o, slices[s], 0, &r);
        CHECK_STR(r.log.data, "R1 {\"a\":2,\"b\":3}\nR2 {\"a\":2,\"c\":1}\n"
                              "E3@34 record brings the distinct top-level keys to 4, more than 3\n"
                              "E4@42 record brings the distinct top-level keys to 7, more than 3\n"
                              "R5 {\"b\":5}\n");
        CHECK_STR(r.cols.data, "b|a|c|");
        result_free(&r);
    }
    mem_in m = {in, sizeof in - 1, 0, 4096, 0};
    di_error err;
    di_parser *p = di_parser_new(&o, mem_read, &m, &err);
    size_t n = 99;
    CHECK(di_parser_columns(p, &n) == NULL);
    CHECK_INT(n, 0);
    di_parser_free(p);
}

/* ---- limits ------------------------------------------------------------------ */

/* test_long_lines: max_field 4 allows lines of 16 bytes (CR LF not counted);
 * a longer one is refused and skipped without being held, the next goes on. */
static void test_long_lines(void) {
    static const char in[] = "{\"a\":\"01234567\"}\n"   /* 16 bytes: fine */
                             "{\"a\":\"01234567\"}\r\n" /* 16 + CR: fine */
                             "{\"a\":\"012345678\"}\n"  /* 17: refused */
                             "{\"b\":2}\n"
                             "{\"a\":\"0123456789abcdefghijklmnopqrstuvwxyz\"}";
    di_parse_opts o = ndjson_opts();
    o.max_field = 4;
    expect_log(in, sizeof in - 1, &o,
               "R1 {\"a\":\"01234567\"}\nR2 {\"a\":\"01234567\"}\n"
               "E3@35 line exceeds 16 bytes (4 x IMPORT_MAX_FIELD_SIZE)\n"
               "R4 {\"b\":2}\n"
               "E5@61 line exceeds 16 bytes (4 x IMPORT_MAX_FIELD_SIZE)\n");
}

/* test_big_lines: lines of several MiB grow the read buffer past its first
 * 1 MiB, and numbers longer than cJSON's old 63-character buffer stay exact. */
static void test_big_lines(void) {
    size_t big = (size_t)3 << 20;
    di_buf in, want;
    di_buf_init(&in, SIZE_MAX / 2);
    di_buf_init(&want, SIZE_MAX / 2);
    for (int k = 0; k < 2; k++) {
        CHECK(di_buf_append(&in, "{\"s\":\"", 6) == 0);
        CHECK(di_buf_append(&want, "R", 1) == 0);
        CHECK(di_buf_printf(&want, "%d {\"n\":", k + 1) == 0);
        size_t at = in.len;
        CHECK(di_buf_reserve(&in, big) == 0);
        memset(in.data + at, 'a' + k, big);
        in.len += big;
        CHECK(di_buf_printf(&in, "\",\"n\":%d%0100d}\n", k + 1, 0) == 0);
        CHECK(di_buf_printf(&want, "%d%0100d,\"s\":\"", k + 1, 0) == 0);
        CHECK(di_buf_append(&want, in.data + at, big) == 0);
        CHECK(di_buf_append(&want, "\"}\n", 3) == 0);
    }
    di_parse_opts o = ndjson_opts();
    for (size_t s = 2; s < NSLICES; s++) {
        result r;
        parse_opts(in.data, in.len, &o, slices[s], 0, &r);
        CHECK_INT(r.rc, 0);
        CHECK(r.log.len == want.len && memcmp(r.log.data, want.data, want.len) == 0);
        CHECK_INT(r.nrec, 2);
        CHECK_INT(r.next[1], (int64_t)in.len);
        result_free(&r);
    }
    di_buf_cleanup(&in);
    di_buf_cleanup(&want);
}

/* test_big_refused: past a limit above the first 1 MiB buffer, a 3 MiB line
 * is refused after the buffer grew to the limit, and the next line is read. */
static void test_big_refused(void) {
    size_t big = (size_t)3 << 20;
    di_buf in;
    di_buf_init(&in, SIZE_MAX / 2);
    CHECK(di_buf_append(&in, "{\"a\":1}\n{\"s\":\"", 14) == 0);
    CHECK(di_buf_reserve(&in, big) == 0);
    memset(in.data + in.len, 'x', big);
    in.len += big;
    CHECK(di_buf_append(&in, "\"}\r\n{\"b\":2}\n", 12) == 0);
    di_parse_opts o = ndjson_opts();
    o.max_field = (size_t)512 << 10;
    for (size_t s = 2; s < NSLICES; s++) {
        result r;
        parse_opts(in.data, in.len, &o, slices[s], 0, &r);
        CHECK_INT(r.rc, 0);
        CHECK_STR(r.log.data, "R1 {\"a\":1}\n"
                              "E2@8 line exceeds 2097152 bytes (4 x IMPORT_MAX_FIELD_SIZE)\n"
                              "R3 {\"b\":2}\n");
        CHECK_INT(r.start[1], (int64_t)in.len - 8);
        result_free(&r);
    }
    di_buf_cleanup(&in);
}

/* test_excerpts: a refused line's first bytes (at most 200, CR dropped, cut
 * to valid UTF-8) go with its error for the rejects list; read errors have none. */
static void test_excerpts(void) {
    static const char l1[] = "[1, \"\xc3\xa9\"]\r\n", l2[] = "{\"a\":\"\xc3\xa9\xff\"}\n";
    di_buf in;
    di_buf_init(&in, SIZE_MAX / 2);
    CHECK(di_buf_printf(&in, "%s%s{\"s\":\"", l1, l2) == 0);
    size_t at3 = in.len - 6;
    for (int k = 0; k < 300; k++)
        CHECK(di_buf_putc(&in, (char)('a' + k % 26)) == 0);
    CHECK(di_buf_printf(&in, "\"}}\n{\"b\":\"x") == 0);
    size_t at4 = in.len - 7;
    for (int k = 0; k < 300; k++)
        CHECK(di_buf_append(&in, "\xc3\xa9", 2) == 0);
    CHECK(di_buf_printf(&in, "\" x}\n") == 0);
    char long3[201], long4[200];
    memcpy(long3, in.data + at3, 200); /* {"s":"abc... */
    long3[200] = '\0';
    memcpy(long4, in.data + at4, 199); /* {"b":"xéé...: the 200th byte starts an é */
    long4[199] = '\0';
    const char *want[4] = {"[1, \"\xc3\xa9\"]", "{\"a\":\"\xc3\xa9", long3, long4};
    for (size_t s = 0; s < NSLICES; s++) {
        for (int lim = 0; lim < 2; lim++) {
            di_parse_opts o = ndjson_opts();
            o.max_field = lim ? 64 : o.max_field; /* lines 3 and 4 too long, or malformed */
            mem_in m = {in.data, in.len, 0, slices[s], 0};
            di_error err;
            di_parser *p = di_parser_new(&o, mem_read, &m, &err);
            di_record rec;
            for (int k = 0; k < 4; k++) {
                CHECK_INT(di_parser_next(p, &rec, &err), -1);
                CHECK_INT(err.code, DI_CODE_RECORD);
                CHECK_INT(err.row, k + 1);
                CHECK_STR(err.excerpt, want[k]);
            }
            CHECK_INT(di_parser_next(p, &rec, &err), 0);
            di_parser_free(p);
        }
    }
    di_buf_cleanup(&in);
}

/* test_resume_no_bom: mid-stream, EF BB BF is data (U+FEFF), not a BOM. */
static void test_resume_no_bom(void) {
    static const char in[] = "{}\n\xef\xbb\xbf{}\n{\"a\":1}";
    di_parse_opts o = ndjson_opts();
    o.start_offset = 3;
    o.start_row = 2;
    expect_log(in + 3, sizeof in - 4, &o,
               "E2@3 malformed JSON at column 1: unexpected byte order mark (U+FEFF)\n"
               "R3 {\"a\":1}\n");
}

/* test_nesting: 1000 levels (the top object included) parse, 1001 do not. */
static void test_nesting(void) {
    for (int depth = 999; depth <= 1001; depth++) {
        di_buf in, want;
        di_buf_init(&in, SIZE_MAX / 2);
        di_buf_init(&want, SIZE_MAX / 2);
        CHECK(di_buf_append(&in, "{\"a\":", 5) == 0);
        for (int k = 1; k < depth; k++)
            CHECK(di_buf_putc(&in, '[') == 0);
        for (int k = 1; k < depth; k++)
            CHECK(di_buf_putc(&in, ']') == 0);
        CHECK(di_buf_putc(&in, '}') == 0);
        if (depth <= 1000) {
            CHECK(di_buf_printf(&want, "R1 {\"a\":%s}\n", in.data + 5) == 0);
            want.data[want.len - 3] = '}', want.data[want.len - 2] = '\n', want.len--;
            want.data[want.len] = '\0';
        } else {
            CHECK(di_buf_printf(&want,
                                "E1@0 malformed JSON at column 1005: nested deeper than 1000 "
                                "levels\n") == 0);
        }
        di_parse_opts o = ndjson_opts();
        result r;
        parse_opts(in.data, in.len, &o, 4096, 0, &r);
        CHECK_STR(r.log.data, want.data);
        result_free(&r);
        di_buf_cleanup(&in);
        di_buf_cleanup(&want);
    }
}

/* test_long_integers: Python's int() takes 4300 digits and refuses 4301. */
static void test_long_integers(void) {
    for (int nd = 4300; nd <= 4301; nd++) {
        di_buf in, want;
        di_buf_init(&in, SIZE_MAX / 2);
        di_buf_init(&want, SIZE_MAX / 2);
        CHECK(di_buf_append(&in, "{\"a\":-", 6) == 0);
        for (int k = 0; k < nd; k++)
            CHECK(di_buf_putc(&in, (char)('1' + k % 9)) == 0);
        CHECK(di_buf_putc(&in, '}') == 0);
        if (nd == 4300)
            CHECK(di_buf_printf(&want, "R1 %s\n", in.data) == 0);
        else
            CHECK(di_buf_printf(&want, "E1@0 integer too long at column 6: 4301 digits, more "
                                       "than Python's limit of 4300\n") == 0);
        di_parse_opts o = ndjson_opts();
        result r;
        parse_opts(in.data, in.len, &o, 4096, 0, &r);
        CHECK_STR(r.log.data, want.data);
        result_free(&r);
        di_buf_cleanup(&in);
        di_buf_cleanup(&want);
    }
}

/* ---- read failures are sticky -------------------------------------------------- */

/* test_read_failure: a read error after the first line comes back on every
 * call, with the read function's class and message. */
static void test_read_failure(void) {
    static const char in[] = "{\"a\":1}\n{\"b\":2}\n";
    for (size_t s = 0; s < NSLICES; s++) {
        di_parse_opts o = ndjson_opts();
        mem_in m = {in, sizeof in - 1, 0, slices[s], 10};
        di_error err;
        di_error_clear(&err);
        di_parser *p = di_parser_new(&o, mem_read, &m, &err);
        di_record rec;
        CHECK_INT(di_parser_next(p, &rec, &err), 1);
        CHECK_INT(rec.row, 1);
        CHECK_INT(di_parser_next(p, &rec, &err), -1);
        CHECK_INT(err.cls, DI_ERR_TRANSIENT);
        CHECK_INT(err.code, DI_CODE_NONE);
        CHECK_STR(err.message, "connection reset");
        di_error_clear(&err);
        CHECK_INT(di_parser_next(p, &rec, &err), -1);
        CHECK_INT(err.cls, DI_ERR_TRANSIENT);
        di_parser_free(p);
    }
}

/* test_table_key: errors and the parser name the table they were given. */
static void test_table_key(void) {
    di_parse_opts o = ndjson_opts();
    o.table_key = "events";
    result r;
    parse_opts("{\"a\":1}\n[]\n", 11, &o, 4096, 0, &r);
    CHECK_STR(r.log.data, "R1 {\"a\":1}\nE2@8 line is not a JSON object (found an array)\n");
    result_free(&r);
}

int main(void) {
    test_numbers();
    test_lines();
    test_errors();
    test_nul();
    test_layout();
    test_resume();
    test_columns();
    test_long_lines();
    test_big_lines();
    test_big_refused();
    test_resume_no_bom();
    test_excerpts();
    test_nesting();
    test_long_integers();
    test_read_failure();
    test_table_key();
    return check_report();
}
