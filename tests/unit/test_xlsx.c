/* test_xlsx.c - the XLSX parse stage: workbooks written by XlsxWriter, openpyxl
 * and by hand (tests/data/xlsx/, made by make_workbooks.py) against what
 * openpyxl reads in them (the .json beside each), read through libarchive;
 * then small workbooks held in memory, fed in slices of 1, 7 and 4096 bytes,
 * for the layout rules, resume, and every error and limit; then the value
 * conversions on their own (floats.txt: Python's json.dumps of the literals). */
#include "check.h"
#include "dsa_ingest/buf.h"
#include "dsa_ingest/parse.h"
#include "dsa_ingest/row.h"
#include "parse/xlsx.h"
#include "parse/xlsx_impl.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DATA_DIR "data/xlsx/"
#define NS       "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
#define RNS      "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
#define PKG      "http://schemas.openxmlformats.org/package/2006/relationships"
#define WS_TYPE  RNS "/worksheet"

static const size_t slices[] = {1, 7, 4096, (size_t)1 << 30};
#define NSLICES (sizeof slices / sizeof *slices)

/* ---- parts from a zip file, through libarchive ---------------------------------- */

typedef struct zip_part {
    struct archive *a;
} zip_part;

static int zip_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    zip_part *zp = ctx;
    la_ssize_t r = archive_read_data(zp->a, buf, cap);
    if (r < 0)
        return di_error_set(err, DI_ERR_INPUT, "zip: %s", archive_error_string(zp->a));
    *n = (size_t)r;
    return 0;
}

/* zip_open scans the archive for the part: a test needs no index. */
static int zip_open(void *ctx, const char *name, di_read_fn *read, void **part, di_error *err) {
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    if (archive_read_open_filename(a, ctx, 1 << 16) != ARCHIVE_OK) {
        di_error_set(err, DI_ERR_CONFIG, "%s: %s", (const char *)ctx, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        if (strcmp(archive_entry_pathname(e), name) == 0) {
            zip_part *zp = malloc(sizeof *zp);
            zp->a = a;
            *read = zip_read;
            *part = zp;
            return 1;
        }
        archive_read_data_skip(a);
    }
    archive_read_free(a);
    return 0;
}

static void zip_close(void *ctx, void *part) {
    (void)ctx;
    zip_part *zp = part;
    archive_read_free(zp->a);
    free(zp);
}

/* ---- parts from memory ------------------------------------------------------------ */

typedef struct mem_book {
    const char *names[8], *data[8];
    size_t slice;
    const char *trunc_part; /* this part ends after trunc_at bytes */
    size_t trunc_at;
    const char *fail_part; /* reading this part fails (a transient error) */
    int opens, closes;
} mem_book;

typedef struct mem_part {
    const char *p;
    size_t len, pos, slice;
    int fail;
} mem_part;

static int mem_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    mem_part *m = ctx;
    if (m->fail)
        return di_error_set(err, DI_ERR_TRANSIENT, "connection reset");
    size_t k = m->len - m->pos;
    k = k < m->slice ? k : m->slice;
    k = k < cap ? k : cap;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    *n = k;
    return 0;
}

static int mem_open(void *ctx, const char *name, di_read_fn *read, void **part, di_error *err) {
    (void)err;
    mem_book *b = ctx;
    for (int i = 0; i < 8 && b->names[i]; i++) {
        if (strcmp(b->names[i], name) != 0 || !b->data[i])
            continue;
        mem_part *m = calloc(1, sizeof *m);
        m->p = b->data[i];
        m->len = strlen(m->p);
        m->slice = b->slice ? b->slice : (size_t)1 << 30;
        if (b->trunc_part && strcmp(b->trunc_part, name) == 0 && b->trunc_at < m->len)
            m->len = b->trunc_at;
        m->fail = b->fail_part && strcmp(b->fail_part, name) == 0;
        *read = mem_read;
        *part = m;
        b->opens++;
        return 1;
    }
    return 0;
}

static void mem_close(void *ctx, void *part) {
    ((mem_book *)ctx)->closes++;
    free(part);
}

#define WORKBOOK(sheets)                                                                           \
    "<?xml version=\"1.0\"?><workbook xmlns=\"" NS "\" xmlns:r=\"" RNS "\"><sheets>" sheets        \
    "</sheets></workbook>"
#define SHEET_S  "<sheet name=\"S\" sheetId=\"1\" r:id=\"rId1\"/>"
#define RELS(rs) "<Relationships xmlns=\"" PKG "\">" rs "</Relationships>"
#define REL1     "<Relationship Id=\"rId1\" Type=\"" WS_TYPE "\" Target=\"worksheets/sheet1.xml\"/>"
#define WS(body) "<worksheet xmlns=\"" NS "\"><sheetData>" body "</sheetData></worksheet>"
#define WSD(dim, body)                                                                             \
    "<worksheet xmlns=\"" NS "\"><dimension ref=\"" dim "\"/><sheetData>" body                     \
    "</sheetData></worksheet>"
#define SST(items) "<sst xmlns=\"" NS "\">" items "</sst>"

/* book_one is a one-sheet workbook "S" with the given sheet, strings, styles. */
static mem_book book_one(const char *sheet, const char *sst, const char *styles) {
    mem_book b = {.names = {"xl/workbook.xml", "xl/_rels/workbook.xml.rels",
                            "xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/styles.xml"},
                  .data = {WORKBOOK(SHEET_S), RELS(REL1), sheet, sst, styles}};
    return b;
}

/* ---- running a sheet ---------------------------------------------------------------- */

/* run_sheet opens the workbook and parses sheet 0 into text: "n:json\n" per
 * record, "!n:message\n" per error; after an error it goes on, unless the
 * same error comes again (sticky: it shows twice). */
static void run_sheet(mem_book *b, const di_parse_opts *o, const di_xlsx_limits *lim, di_buf *out) {
    di_error err;
    di_buf_reset(out);
    di_xlsx *x = di_xlsx_open(mem_open, mem_close, b, lim, &err);
    if (!x) {
        CHECK(di_buf_printf(out, "!open:%s\n", err.message) == 0);
        return;
    }
    di_parser *p = di_xlsx_sheet_parser(x, 0, o, &err);
    if (!p) {
        CHECK(di_buf_printf(out, "!sheet:%s\n", err.message) == 0);
        di_xlsx_close(x);
        return;
    }
    di_row_layout l = {0};
    int have_layout = 0, rc, last_code = -1;
    char last[1100] = "";
    di_buf json;
    di_buf_init(&json, SIZE_MAX / 2);
    di_record rec;
    while ((rc = di_parser_next(p, &rec, &err)) != 0) {
        if (rc < 0) {
            char line[1100];
            snprintf(line, sizeof line, "!%lld:%s\n", (long long)err.row, err.message);
            CHECK_STR(err.table, "S");
            CHECK(di_buf_printf(out, "%s", line) == 0);
            if (strcmp(line, last) == 0) { /* sticky: not about one record */
                CHECK(err.code != DI_CODE_RECORD);
                last_code = -1;
                break;
            }
            if (last_code >= 0) /* the parser went on after the previous error */
                CHECK_INT(last_code, DI_CODE_RECORD);
            snprintf(last, sizeof last, "%s", line);
            last_code = (int)err.code;
            continue;
        }
        if (last_code >= 0)
            CHECK_INT(last_code, DI_CODE_RECORD);
        last_code = -1;
        last[0] = '\0';
        if (!have_layout) {
            size_t n;
            const char *const *cols = di_parser_columns(p, &n);
            CHECK(di_row_layout_init(&l, cols, n) == 0);
            have_layout = 1;
        }
        CHECK_INT(rec.nfields, l.ncolumns);
        CHECK(di_row_json(&l, rec.fields, rec.lens, rec.kinds, &json) == 0);
        CHECK(di_buf_printf(out, "%lld:%s\n", (long long)rec.row, json.data) == 0);
    }
    if (last_code >= 0)
        CHECK_INT(last_code, DI_CODE_RECORD);
    if (have_layout)
        di_row_layout_cleanup(&l);
    di_buf_cleanup(&json);
    di_parser_free(p);
    di_xlsx_close(x);
    CHECK_INT(b->opens, b->closes);
}

/* ---- workbooks on disk vs openpyxl ---------------------------------------------------- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

/* sheet_rows parses one sheet of a zip workbook; rows[k] / json[k] per record. */
typedef struct parsed {
    int64_t row[64];
    char *json[64];
    int n, rc;
    char **cols;
    size_t ncols;
} parsed;

static void parsed_free(parsed *r) {
    for (int i = 0; i < r->n; i++)
        free(r->json[i]);
    for (size_t i = 0; i < r->ncols; i++)
        free(r->cols[i]);
    free(r->cols);
}

static void parse_sheet(di_xlsx *x, size_t i, const di_parse_opts *o, parsed *r) {
    memset(r, 0, sizeof *r);
    di_error err;
    di_parser *p = di_xlsx_sheet_parser(x, i, o, &err);
    CHECK(p != NULL);
    if (!p)
        return;
    di_row_layout l = {0};
    int have = 0;
    di_buf json;
    di_buf_init(&json, SIZE_MAX / 2);
    di_record rec;
    while ((r->rc = di_parser_next(p, &rec, &err)) == 1 && r->n < 64) {
        if (!have) {
            size_t n;
            const char *const *cols = di_parser_columns(p, &n);
            CHECK(di_row_layout_init(&l, cols, n) == 0);
            have = 1;
        }
        CHECK(di_row_json(&l, rec.fields, rec.lens, rec.kinds, &json) == 0);
        r->row[r->n] = rec.row;
        r->json[r->n++] = strdup(json.data);
    }
    if (r->rc < 0)
        fprintf(stderr, "  %s: %s (row %lld)\n", di_xlsx_sheet_name(x, i), err.message,
                (long long)err.row);
    const char *const *cols = di_parser_columns(p, &r->ncols);
    r->cols = calloc(r->ncols + 1, sizeof *r->cols);
    for (size_t k = 0; k < r->ncols; k++)
        r->cols[k] = strdup(cols[k]);
    if (have)
        di_row_layout_cleanup(&l);
    di_buf_cleanup(&json);
    di_parser_free(p);
}

/* check_resume resumes after each record and compares with the full parse. */
static void check_resume(di_xlsx *x, size_t i, const parsed *full) {
    for (int k = 0; k < full->n; k++) {
        di_parse_opts o;
        di_parse_opts_default(&o);
        o.format = DI_FMT_XLSX;
        o.start_row = full->row[k] + 1;
        o.resume_columns = (const char *const *)full->cols;
        o.resume_ncolumns = full->ncols;
        parsed r;
        parse_sheet(x, i, &o, &r);
        CHECK_INT(r.rc, 0);
        CHECK_INT(r.n, full->n - k - 1);
        for (int j = 0; j < r.n && k + 1 + j < full->n; j++) {
            CHECK_INT(r.row[j], full->row[k + 1 + j]);
            CHECK_STR(r.json[j], full->json[k + 1 + j]);
        }
        parsed_free(&r);
    }
}

/* check_sheet compares one sheet with its expected columns and rows. */
static void check_sheet(di_xlsx *x, size_t i, const cJSON *want) {
    CHECK_STR(di_xlsx_sheet_name(x, i), cJSON_GetObjectItem(want, "name")->valuestring);
    di_parse_opts o;
    di_parse_opts_default(&o);
    o.format = DI_FMT_XLSX;
    parsed r;
    parse_sheet(x, i, &o, &r);
    CHECK_INT(r.rc, 0);
    const cJSON *cols = cJSON_GetObjectItem(want, "columns");
    const cJSON *rows = cJSON_GetObjectItem(want, "rows");
    CHECK_INT(r.ncols, cJSON_GetArraySize(cols));
    for (size_t k = 0; k < r.ncols && k < (size_t)cJSON_GetArraySize(cols); k++)
        CHECK_STR(r.cols[k], cJSON_GetArrayItem(cols, (int)k)->valuestring);
    CHECK_INT(r.n, cJSON_GetArraySize(rows));
    for (int k = 0; k < r.n && k < cJSON_GetArraySize(rows); k++) {
        const cJSON *w = cJSON_GetArrayItem(rows, k);
        CHECK_INT(r.row[k], cJSON_GetArrayItem(w, 0)->valuedouble);
        CHECK_STR(r.json[k], cJSON_GetArrayItem(w, 1)->valuestring);
    }
    check_resume(x, i, &r);
    parsed_free(&r);
}

/* test_books reads every generated workbook and compares with openpyxl. */
static void test_books(void) {
    static const char *const books[] = {"mixed",    "inline_xw", "date1904",
                                        "openpyxl", "isodates",  "handmade"};
    for (size_t b = 0; b < sizeof books / sizeof *books; b++) {
        char path[256], jpath[256];
        snprintf(path, sizeof path, DATA_DIR "%s.xlsx", books[b]);
        snprintf(jpath, sizeof jpath, DATA_DIR "%s.json", books[b]);
        char *text = slurp(jpath);
        cJSON *want = text ? cJSON_Parse(text) : NULL;
        CHECK(want != NULL);
        di_error err;
        di_xlsx *x = di_xlsx_open(zip_open, zip_close, path, NULL, &err);
        CHECK(x != NULL);
        if (x && want) {
            const cJSON *sheets = cJSON_GetObjectItem(want, "sheets");
            CHECK_INT(di_xlsx_sheet_count(x), cJSON_GetArraySize(sheets));
            for (size_t i = 0; i < di_xlsx_sheet_count(x); i++)
                check_sheet(x, i, cJSON_GetArrayItem(sheets, (int)i));
        } else if (!x) {
            fprintf(stderr, "  %s: %s\n", path, err.message);
        }
        di_xlsx_close(x);
        cJSON_Delete(want);
        free(text);
    }
}

/* test_book_no_header reads mixed.xlsx's first sheet with --no-header: the
 * header row is a record and the columns are column_1..column_8. */
static void test_book_no_header(void) {
    di_error err;
    di_xlsx *x = di_xlsx_open(zip_open, zip_close, DATA_DIR "mixed.xlsx", NULL, &err);
    CHECK(x != NULL);
    if (!x)
        return;
    di_parse_opts o;
    di_parse_opts_default(&o);
    o.header = 0;
    parsed r;
    parse_sheet(x, 0, &o, &r);
    CHECK_INT(r.rc, 0);
    CHECK_INT(r.n, 15);
    CHECK_INT(r.row[0], 1);
    CHECK_STR(r.json[0], "{\"column_1\":\"id\",\"column_2\":\"name\",\"column_3\":\"amount\","
                         "\"column_4\":\"flag\",\"column_5\":\"when\",\"column_6\":\"note\","
                         "\"column_7\":null,\"column_8\":\"id\"}");
    CHECK_INT(r.ncols, 8);
    CHECK_STR(r.cols[7], "column_8");
    parsed_free(&r);
    di_xlsx_close(x);
}

/* ---- small workbooks in memory: layout -------------------------------------------- */

typedef struct sheet_case {
    const char *sheet, *sst, *styles;
    int header;
    const char *want;
} sheet_case;

#define STYLES(fmts, xfs)                                                                          \
    "<styleSheet xmlns=\"" NS "\"><numFmts>" fmts "</numFmts><cellXfs>" xfs                        \
    "</cellXfs></styleSheet>"

static const sheet_case layout_cases[] = {
    /* types: shared, inline (rich, phonetic left out), str, bool, error, ISO date */
    {WS("<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c></row>"
        "<row r=\"2\"><c r=\"A2\" t=\"inlineStr\"><is><r><t>x</t></r><rPh><t>no</t></rPh>"
        "<r><t>y</t></r></is></c><c r=\"B2\" t=\"str\"><v>s</v></c></row>"
        "<row r=\"3\"><c r=\"A3\" t=\"b\"><v>1</v></c><c r=\"B3\" t=\"e\"><v>#REF!</v></c></row>"
        "<row r=\"4\"><c r=\"A4\" t=\"d\"><v>2024-01-02</v></c><c r=\"B4\"><v>-1.50</v></c></row>"),
     SST("<si><t>a</t></si><si><r><t>b</t></r><r><t>!</t></r></si>"), NULL, 1,
     "2:{\"a\":\"xy\",\"b!\":\"s\"}\n3:{\"a\":true,\"b!\":\"#REF!\"}\n"
     "4:{\"a\":\"2024-01-02\",\"b!\":-1.5}\n"},
    /* rows and cells without r follow the previous ones; a gap of rows */
    {WS("<row><c><v>1</v></c><c><v>2</v></c></row><row><c><v>3</v></c><c r=\"C2\"><v>4</v></c>"
        "<c><v>5</v></c></row><row r=\"12\"><c r=\"B12\"><v>6</v></c></row>"),
     NULL, NULL, 0,
     "1:{\"column_1\":1,\"column_2\":2}\n!2:cell C2 is beyond the sheet's 2 columns\n"
     "12:{\"column_1\":null,\"column_2\":6}\n"},
    /* empty rows, empty values, styled blanks: no records; "" is a value */
    {WSD("A1:C9", "<row r=\"1\"/><row r=\"2\"><c r=\"A2\" s=\"0\"/><c r=\"B2\"><v></v></c></row>"
                  "<row r=\"3\"><c r=\"B3\" t=\"inlineStr\"><is><t>h</t></is></c></row>"
                  "<row r=\"4\"><c r=\"A4\" t=\"str\"><v/></c></row>"
                  "<row r=\"5\"><c r=\"C5\" t=\"inlineStr\"><is><t/></is></c></row>"),
     NULL, NULL, 1, "5:{\"column_1\":null,\"column_3\":\"\",\"h\":null}\n"},
    /* the header: numbers, booleans and dates name columns by their text */
    {WS("<row r=\"1\"><c r=\"A1\"><v>2024</v></c><c r=\"B1\" t=\"b\"><v>0</v></c>"
        "<c r=\"C1\" s=\"1\"><v>45000</v></c><c r=\"D1\"><v>1.50</v></c></row>"
        "<row r=\"2\"><c r=\"A2\"><v>1</v></c></row>"),
     NULL, STYLES("", "<xf numFmtId=\"0\"/><xf numFmtId=\"14\"/>"), 1,
     "2:{\"1.5\":null,\"2023-03-15\":null,\"2024\":1,\"false\":null}\n"},
    /* date styles: custom codes, built-ins, a style index out of range */
    {WS("<row r=\"1\"><c r=\"A1\" t=\"str\"><v>a</v></c><c r=\"B1\" t=\"str\"><v>b</v></c>"
        "<c r=\"C1\" t=\"str\"><v>c</v></c><c r=\"D1\" t=\"str\"><v>d</v></c></row>"
        "<row r=\"2\"><c r=\"A2\" s=\"1\"><v>45000.25</v></c><c r=\"B2\" s=\"2\"><v>1.5</v></c>"
        "<c r=\"C2\" s=\"3\"><v>45000.123456</v></c><c r=\"D2\" s=\"9\"><v>7</v></c></row>"
        "<row r=\"3\"><c r=\"A3\" s=\"4\"><v>12</v></c><c r=\"B3\" s=\"5\"><v>0.5</v></c>"
        "<c r=\"C3\" s=\"1\"><v>1e9</v></c><c r=\"D3\" s=\"6\"><v>45000</v></c></row>"),
     NULL,
     STYLES(
         "<numFmt numFmtId=\"164\" formatCode=\"dd/mm/yyyy hh:mm\"/>"
         "<numFmt numFmtId=\"165\" formatCode=\"[h]:mm\"/>"
         "<numFmt numFmtId=\"14\" formatCode=\"0.00\"/>"
         "<numFmt numFmtId=\"166\" formatCode=\"[Blue]#,##0;[Red]-#,##0\"/>",
         "<xf numFmtId=\"0\"/><xf numFmtId=\"164\"/><xf numFmtId=\"165\"/>"
         "<xf numFmtId=\"22\"/><xf numFmtId=\"14\"/><xf numFmtId=\"166\"/><xf numFmtId=\"47\"/>"),
     1,
     "2:{\"a\":\"2023-03-15T06:00:00\",\"b\":\"12:00:00\",\"c\":\"2023-03-15T02:57:46.598000\","
     "\"d\":7}\n3:{\"a\":12,\"b\":0.5,\"c\":1000000000.0,\"d\":\"00:00:00\"}\n"},
    /* duplicate and empty header names; _xHHHH_ escapes */
    {WSD("A1:D2",
         "<row r=\"1\"><c r=\"A1\" t=\"str\"><v>k</v></c><c r=\"C1\" t=\"str\"><v>k</v></c>"
         "</row><row r=\"2\"><c r=\"A2\" t=\"str\"><v>a_x000D__x000a_b_x0000_</v></c>"
         "<c r=\"B2\" t=\"inlineStr\"><is><t>_x005F_x0041_ _xD800_ _x263a_</t></is></c>"
         "</row>"),
     NULL, NULL, 1,
     "2:{\"column_2\":\"_x0041_ _xD800_ \xe2\x98\xba\",\"column_4\":null,\"k\":\"a\\r\\nb_x0000_\","
     "\"k_2\":null}\n"},
    /* a namespace prefix on every element */
    {"<x:worksheet xmlns:x=\"" NS "\"><x:sheetData><x:row r=\"1\"><x:c r=\"A1\" t=\"inlineStr\">"
     "<x:is><x:t>p</x:t></x:is></x:c></x:row><x:row r=\"2\"><x:c r=\"A2\"><x:v>3</x:v></x:c>"
     "</x:row></x:sheetData></x:worksheet>",
     NULL, NULL, 1, "2:{\"p\":3}\n"},
    /* formulas: the cached value; comments, PIs and CDATA are fine */
    {WS("<!-- c --><row r=\"1\"><c r=\"A1\" t=\"str\"><f>\"q\"</f><v><![CDATA[q<>]]></v></c></row>"
        "<?pi x?><row r=\"2\"><c r=\"A2\"><f>1+1</f><v>2</v></c></row>"
        "<row r=\"3\"><c r=\"A3\"><f>1+1</f></c></row>"),
     NULL, NULL, 1, "2:{\"q<>\":2}\n"},
};

/* test_layout runs each case in every slice size: the text must not change. */
static void test_layout(void) {
    di_buf out;
    di_buf_init(&out, SIZE_MAX / 2);
    for (size_t i = 0; i < sizeof layout_cases / sizeof *layout_cases; i++) {
        const sheet_case *c = &layout_cases[i];
        for (size_t s = 0; s < NSLICES; s++) {
            mem_book b = book_one(c->sheet, c->sst, c->styles);
            b.slice = slices[s];
            di_parse_opts o;
            di_parse_opts_default(&o);
            o.header = c->header;
            run_sheet(&b, &o, NULL, &out);
            CHECK_STR(out.data ? out.data : "", c->want);
            if (!out.data || strcmp(out.data, c->want) != 0)
                fprintf(stderr, "  layout case %zu, slice %zu\n", i, slices[s]);
        }
    }
    di_buf_cleanup(&out);
}

/* test_offsets: a record starts at its "<row" and the next one where it ends. */
static void test_offsets(void) {
    static const char sheet[] = WS("<row r=\"1\"><c r=\"A1\"><v>1</v></c></row>\n"
                                   "<row r=\"2\"><c r=\"A2\"><v>2</v></c></row>\n"
                                   "<row r=\"3\"><c r=\"A3\"><v>3</v></c></row>");
    for (size_t s = 0; s < NSLICES; s++) {
        mem_book b = book_one(sheet, NULL, NULL);
        b.slice = slices[s];
        di_error err;
        di_xlsx *x = di_xlsx_open(mem_open, mem_close, &b, NULL, &err);
        di_parse_opts o;
        di_parse_opts_default(&o);
        di_parser *p = di_xlsx_sheet_parser(x, 0, &o, &err);
        di_record rec;
        const char *first = strstr(sheet, "<row r=\"2\"");
        CHECK_INT(di_parser_next(p, &rec, &err), 1);
        CHECK_INT(rec.start, first - sheet);
        CHECK_INT(rec.next, strstr(first, "</row>") + 6 - sheet);
        CHECK_INT(di_parser_next(p, &rec, &err), 1);
        CHECK_INT(rec.row, 3);
        CHECK_INT(rec.start, strstr(sheet, "<row r=\"3\"") - sheet);
        CHECK_INT(di_parser_next(p, &rec, &err), 0);
        CHECK_STR(di_parser_table(p), "S");
        di_parser_free(p);
        di_xlsx_close(x);
    }
}

/* test_resume_mem: the header is not read again; rows before start_row are
 * skipped, even bad ones; without resume columns the header is still read. */
static void test_resume_mem(void) {
    static const char sheet[] = WS(
        "<row r=\"1\"><c r=\"A1\" t=\"str\"><v>h</v></c></row>"
        "<row r=\"2\"><c r=\"A2\" t=\"s\"><v>99</v></c></row>"
        "<row r=\"3\"><c r=\"A3\"><v>3</v></c></row><row r=\"5\"><c r=\"A5\"><v>5</v></c></row>");
    static const char *const cols[] = {"h"};
    di_buf out;
    di_buf_init(&out, SIZE_MAX / 2);
    mem_book b = book_one(sheet, NULL, NULL);
    di_parse_opts o;
    di_parse_opts_default(&o);
    o.start_row = 3;
    o.resume_columns = cols;
    o.resume_ncolumns = 1;
    run_sheet(&b, &o, NULL, &out);
    CHECK_STR(out.data, "3:{\"h\":3}\n5:{\"h\":5}\n");
    o.start_row = 4;
    run_sheet(&b, &o, NULL, &out);
    CHECK_STR(out.data, "5:{\"h\":5}\n");
    o.resume_columns = NULL; /* no columns given: the header row is read first */
    o.resume_ncolumns = 0;
    run_sheet(&b, &o, NULL, &out);
    CHECK_STR(out.data, "5:{\"h\":5}\n");
    di_buf_cleanup(&out);
}

/* ---- errors and limits -------------------------------------------------------------- */

typedef struct error_case {
    const char *workbook, *rels, *sheet, *sst, *styles;
    size_t max_depth, max_shared, max_cell;
    const char *want;
} error_case;

#define LAUGHS                                                                                     \
    "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"                                 \
    "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"                        \
    "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"

static const error_case error_cases[] = {
    {WORKBOOK(""), NULL, NULL, NULL, NULL, 0, 0, 0, "!open:the workbook has no sheets\n"},
    {"<workbook xmlns=\"" NS "\"/>", NULL, NULL, NULL, NULL, 0, 0, 0,
     "!open:the workbook has no sheets\n"},
    {WORKBOOK("<sheet name=\"C\" sheetId=\"1\" r:id=\"rId1\"/>"),
     RELS("<Relationship Id=\"rId1\" Type=\"" RNS "/chartsheet\" Target=\"c.xml\"/>"), NULL, NULL,
     NULL, 0, 0, 0, "!open:the workbook has no sheets\n"},
    {WORKBOOK("<sheet name=\"S\" sheetId=\"1\" r:id=\"rId9\"/>"), NULL, NULL, NULL, NULL, 0, 0, 0,
     "!open:sheet 'S' refers to relationship 'rId9', which xl/_rels/workbook.xml.rels lacks\n"},
    {WORKBOOK(SHEET_S "<sheet name=\"S\" sheetId=\"2\" r:id=\"rId2\"/>"),
     RELS(REL1 "<Relationship Id=\"rId2\" Type=\"" WS_TYPE "\" Target=\"s2.xml\"/>"), NULL, NULL,
     NULL, 0, 0, 0, "!open:two sheets are named 'S'\n"},
    {"", NULL, NULL, NULL, NULL, 0, 0, 0,
     "!open:malformed XML in xl/workbook.xml at line 1, column 1: no element found\n"},
    {LAUGHS "<workbook/>", NULL, NULL, NULL, NULL, 0, 0, 0,
     "!open:xl/workbook.xml: XML entity declarations are not allowed (the part declares a DTD)\n"},
    {NULL, NULL, WS(""), SST("<si><t>0123456789</t></si><si><t>0123456789</t></si>"), NULL, 0, 40,
     0,
     "!open:the shared-string table exceeds the limit of 40 bytes "
     "(IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES)\n"},
    {NULL, NULL, WS(""), SST("<si><t>x</t></si>") "<", NULL, 0, 0, 0,
     "!open:malformed XML in xl/sharedStrings.xml at line 1, column 95: unclosed token\n"},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, 0,
     "!sheet:sheet 'S': its part xl/worksheets/sheet1.xml is missing\n"},
    {NULL, NULL, WS("<row r=\"1\"><c r=\"A1\"><v>1</v></c></row><row r=\"2\"><c>"), NULL, NULL, 0,
     0, 0,
     "!2:malformed XML in xl/worksheets/sheet1.xml at line 1, column 144: mismatched tag\n"
     "!2:malformed XML in xl/worksheets/sheet1.xml at line 1, column 144: mismatched tag\n"},
    {NULL, NULL, WS("<row r=\"1\"><c r=\"A1\"><v>1</v></c></row><row r=\"2\"></c></row>"), NULL,
     NULL, 0, 0, 0,
     "!2:malformed XML in xl/worksheets/sheet1.xml at line 1, column 141: mismatched tag\n"
     "!2:malformed XML in xl/worksheets/sheet1.xml at line 1, column 141: mismatched tag\n"},
    {NULL, NULL, LAUGHS WS("<row><c><v>&lol3;</v></c></row>"), NULL, NULL, 0, 0, 0,
     "!-1:xl/worksheets/sheet1.xml: XML entity declarations are not allowed (the part declares a "
     "DTD)\n!-1:xl/worksheets/sheet1.xml: XML entity declarations are not allowed (the part "
     "declares a DTD)\n"},
    {NULL, NULL, WS("<row r=\"1\"><c><v><a><a><a><a><a>1</a></a></a></a></a></v></c></row>"), NULL,
     NULL, 8, 0, 0,
     "!1:xl/worksheets/sheet1.xml nests XML elements deeper than 8 levels\n"
     "!1:xl/worksheets/sheet1.xml nests XML elements deeper than 8 levels\n"},
    {NULL, NULL,
     WS("<row r=\"1\"><c><v>1</v></c></row><row r=\"2\"><c><v>12345678901</v></c><c><v>2</v></c>"
        "</row><row r=\"3\"><c t=\"inlineStr\"><is><t>12345</t><t>678901</t></is></c></row>"
        "<row r=\"4\"><c><v>4</v></c></row>"),
     NULL, NULL, 0, 0, 10,
     "!2:cell A2 exceeds IMPORT_MAX_FIELD_SIZE (10 bytes)\n"
     "!3:cell A3 exceeds IMPORT_MAX_FIELD_SIZE (10 bytes)\n4:{\"1\":4}\n"},
    {NULL, NULL,
     WSD("A1:F9", "<row r=\"1\"><c r=\"A1\"><v>1</v></c></row><row r=\"7\"><c r=\"A7\"><v>1</v></c>"
                  "<c r=\"H7\"><v>1</v></c></row><row r=\"8\"><c r=\"G8\" s=\"0\"/>"
                  "<c r=\"A8\"><v>8</v></c></row>"),
     NULL, NULL, 0, 0, 0,
     "!7:cell H7 is beyond the sheet's 6 columns\n8:{\"1\":8,\"column_2\":null,\"column_3\":null,"
     "\"column_4\":null,\"column_5\":null,\"column_6\":null}\n"},
    {NULL, NULL,
     WS("<row r=\"1\"><c t=\"s\"><v>0</v></c></row><row r=\"2\"><c t=\"s\"><v>1</v></c></row>"
        "<row r=\"3\"><c t=\"s\"><v>x</v></c></row><row r=\"4\"><c><v>1e400</v></c></row>"
        "<row r=\"5\"><c><v>1,5</v></c></row><row r=\"6\"><c t=\"b\"><v>yes</v></c></row>"
        "<row r=\"7\"><c r=\"A7A\"><v>1</v></c></row><row r=\"8\"><c t=\"s\"><v>0</v></c></row>"),
     SST("<si><t>h</t></si>"), NULL, 0, 0, 0,
     "!2:cell A2 refers to shared string '1', but the table has 1\n"
     "!3:cell A3 refers to shared string 'x', but the table has 1\n"
     "!4:cell A4 holds a number out of range: '1e400'\n"
     "!5:cell A5 has an invalid number '1,5'\n!6:cell A6 has an invalid boolean 'yes'\n"
     "!7:invalid cell reference 'A7A' in row 7\n8:{\"h\":\"h\"}\n"},
    {NULL, NULL, WS("<row r=\"1\"><c t=\"s\"><v>3</v></c></row><row r=\"2\"><c><v>1</v></c></row>"),
     SST("<si><t>h</t></si>"), NULL, 0, 0, 0,
     "!1:cell A1 refers to shared string '3', but the table has 1\n"
     "!1:cell A1 refers to shared string '3', but the table has 1\n"},
    {NULL, NULL,
     WS("<row r=\"2\"><c><v>1</v></c></row><row r=\"3\"><c><v>1</v></c></row><row r=\"3\"/>"
        "<row r=\"4\"><c><v>1</v></c></row>"),
     NULL, NULL, 0, 0, 0,
     "3:{\"1\":1}\n!3:row 3 comes after row 3: rows must ascend\n"
     "!3:row 3 comes after row 3: rows must ascend\n"},
    {NULL, NULL, WS("<row r=\"x\"/>"), NULL, NULL, 0, 0, 0,
     "!-1:invalid row number 'x' after row 0\n!-1:invalid row number 'x' after row 0\n"},
    {NULL, NULL, WSD("A1:XFE1", ""), NULL, NULL, 0, 0, 0,
     "!-1:the sheet's dimension A1:XFE1 is wider than 16384 columns\n"
     "!-1:the sheet's dimension A1:XFE1 is wider than 16384 columns\n"},
};

/* test_errors: each message, in every slice size. */
static void test_errors(void) {
    di_buf out;
    di_buf_init(&out, SIZE_MAX / 2);
    for (size_t i = 0; i < sizeof error_cases / sizeof *error_cases; i++) {
        const error_case *c = &error_cases[i];
        for (size_t s = 0; s < NSLICES; s++) {
            mem_book b = book_one(c->sheet, c->sst, c->styles);
            b.data[0] = c->workbook ? c->workbook : b.data[0];
            b.data[1] = c->rels ? c->rels : b.data[1];
            b.slice = slices[s];
            di_xlsx_limits lim = {c->max_depth, c->max_shared, c->max_cell, 0};
            di_parse_opts o;
            di_parse_opts_default(&o);
            run_sheet(&b, &o, &lim, &out);
            CHECK_STR(out.data, c->want);
            if (!out.data || strcmp(out.data, c->want) != 0)
                fprintf(stderr, "  error case %zu, slice %zu\n", i, slices[s]);
        }
    }
    di_buf_cleanup(&out);
}

/* test_excerpt: a row's error carries the row's values for the rejects list. */
static void test_excerpt(void) {
    mem_book b = book_one(WS("<row r=\"1\"><c t=\"str\"><v>a</v></c><c t=\"str\"><v>b</v></c>"
                             "<c t=\"str\"><v>c</v></c></row><row r=\"2\"><c t=\"str\"><v>x</v>"
                             "</c><c><v>1,5</v></c><c><v>3</v></c></row>"),
                          NULL, NULL);
    di_error err;
    di_xlsx *x = di_xlsx_open(mem_open, mem_close, &b, NULL, &err);
    di_parse_opts o;
    di_parse_opts_default(&o);
    di_parser *p = di_xlsx_sheet_parser(x, 0, &o, &err);
    di_record rec;
    CHECK_INT(di_parser_next(p, &rec, &err), -1);
    CHECK_INT(err.code, DI_CODE_RECORD);
    CHECK_STR(err.excerpt, "x,,3");
    CHECK_INT(err.row, 2);
    CHECK_INT(err.byte, strstr(b.data[2], "<row r=\"2\"") - b.data[2]);
    CHECK_INT(di_parser_next(p, &rec, &err), 0);
    di_parser_free(p);
    di_xlsx_close(x);
}

/* test_truncated: a sheet part that ends early is malformed XML, never a
 * short sheet; wherever it is cut. */
static void test_truncated(void) {
    static const char sheet[] = WS("<row r=\"1\"><c r=\"A1\"><v>1</v></c></row>"
                                   "<row r=\"2\"><c r=\"A2\"><v>2</v></c></row>");
    di_buf out;
    di_buf_init(&out, SIZE_MAX / 2);
    for (size_t cut = 0; cut < sizeof sheet - 1; cut++) {
        mem_book b = book_one(sheet, NULL, NULL);
        b.trunc_part = "xl/worksheets/sheet1.xml";
        b.trunc_at = cut;
        b.slice = 7;
        di_parse_opts o;
        di_parse_opts_default(&o);
        run_sheet(&b, &o, NULL, &out);
        CHECK(strstr(out.data, "malformed XML in xl/worksheets/sheet1.xml at line 1") != NULL);
    }
    di_buf_cleanup(&out);
}

/* test_read_error: the part's read error comes back as it was (transient). */
static void test_read_error(void) {
    mem_book b = book_one(WS("<row><c><v>1</v></c></row>"), NULL, NULL);
    b.fail_part = "xl/worksheets/sheet1.xml";
    di_error err;
    di_xlsx *x = di_xlsx_open(mem_open, mem_close, &b, NULL, &err);
    di_parse_opts o;
    di_parse_opts_default(&o);
    di_parser *p = di_xlsx_sheet_parser(x, 0, &o, &err);
    di_record rec;
    CHECK_INT(di_parser_next(p, &rec, &err), -1);
    CHECK_INT(err.cls, DI_ERR_TRANSIENT);
    CHECK_STR(err.message, "connection reset");
    CHECK_STR(err.table, "S");
    CHECK_INT(di_parser_next(p, &rec, &err), -1);
    di_parser_free(p);
    di_xlsx_close(x);
    CHECK_INT(b.opens, b.closes);
}

/* big_sheet makes a sheet with one cell of n bytes of text, inside <v> (or
 * as an attribute value when attr): expat hands text over in pieces, so only
 * the attribute is one token expat must hold whole. */
static char *big_sheet(size_t n, int attr) {
    char *s = malloc(n + 256);
    int k = snprintf(s, 256, "<worksheet xmlns=\"%s\"><sheetData><row r=\"1\"><c t=\"str\"%s", NS,
                     attr ? " x=\"" : "><v>");
    memset(s + k, 'a', n);
    snprintf(s + k + n, 128, "%s</c></row></sheetData></worksheet>", attr ? "\"><v>1</v>" : "</v>");
    return s;
}

/* test_big_text: a 3 MiB cell passes the default cap, fails a 1 MiB one
 * (without expat buffering it whole), and a 3 MiB attribute is refused. */
static void test_big_text(void) {
    const size_t n = (size_t)3 << 20;
    di_buf out;
    di_buf_init(&out, SIZE_MAX / 2);
    char *text = big_sheet(n, 0), *attr = big_sheet(n, 1);
    mem_book b = book_one(text, NULL, NULL);
    b.slice = 4096;
    di_parse_opts o;
    di_parse_opts_default(&o);
    o.header = 0;
    run_sheet(&b, &o, NULL, &out);
    CHECK_INT(out.len, n + strlen("1:{\"column_1\":\"\"}\n"));
    di_xlsx_limits lim = {0, 0, (size_t)1 << 20, 0};
    run_sheet(&b, &o, &lim, &out);
    CHECK_STR(out.data, "!1:cell A1 exceeds IMPORT_MAX_FIELD_SIZE (1048576 bytes)\n");
    b = book_one(attr, NULL, NULL);
    b.slice = 4096;
    run_sheet(&b, &o, &lim, &out);
    CHECK_STR(out.data, "!1:xl/worksheets/sheet1.xml has an XML token longer than 2097152 bytes\n"
                        "!1:xl/worksheets/sheet1.xml has an XML token longer than 2097152 bytes\n");
    free(text);
    free(attr);
    /* 3 MiB of small comments: many tokens, none big */
    size_t nc = (size_t)3 << 17;
    char *comments = malloc(nc * 8 + 256), *w = comments;
    w += snprintf(w, 200, "<worksheet xmlns=\"%s\"><sheetData>", NS);
    for (size_t i = 0; i < nc; i++, w += 8)
        memcpy(w, "<!--x-->", 8);
    snprintf(w, 100, "<row><c><v>1</v></c></row></sheetData></worksheet>");
    b = book_one(comments, NULL, NULL);
    b.slice = 1 << 16;
    run_sheet(&b, &o, &lim, &out);
    CHECK_STR(out.data, "1:{\"column_1\":1}\n");
    free(comments);
    di_buf_cleanup(&out);
}

/* test_workbook: relationships (absolute, relative, renamed parts), the sheet
 * order, chartsheets left out, the 1904 date system. */
static void test_workbook(void) {
    mem_book b = {
        .names = {"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/ws/a.xml", "xl/b.xml",
                  "xl/Strings.xml", "xl/st.xml"},
        .data = {"<workbook xmlns=\"" NS "\" xmlns:r=\"" RNS "\"><workbookPr date1904=\"1\"/>"
                 "<sheets><sheet name=\"Zeta\" sheetId=\"3\" r:id=\"rId3\"/>"
                 "<sheet name=\"Chart\" sheetId=\"9\" r:id=\"rId9\"/>"
                 "<sheet name=\"Alpha &amp; co\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>",
                 RELS("<Relationship Id=\"rId1\" Type=\"" WS_TYPE "\" Target=\"/xl/ws/a.xml\"/>"
                      "<Relationship Id=\"rId3\" Type=\"" WS_TYPE "\" Target=\"ws/../b.xml\"/>"
                      "<Relationship Id=\"rId9\" Type=\"" RNS "/chartsheet\" Target=\"c.xml\"/>"
                      "<Relationship Id=\"rId4\" Type=\"" RNS "/sharedStrings\" "
                      "Target=\"Strings.xml\"/>"
                      "<Relationship Id=\"rId5\" Type=\"" RNS "/styles\" Target=\"./st.xml\"/>"),
                 WS("<row><c t=\"s\"><v>0</v></c></row><row><c s=\"1\"><v>0</v></c></row>"),
                 WS("<row><c t=\"inlineStr\"><is><t>b</t></is></c></row>"),
                 SST("<si><t>first</t></si>"),
                 STYLES("", "<xf numFmtId=\"0\"/><xf numFmtId=\"15\"/>")}};
    di_error err;
    di_xlsx *x = di_xlsx_open(mem_open, mem_close, &b, NULL, &err);
    CHECK(x != NULL);
    if (!x)
        return;
    CHECK_INT(di_xlsx_sheet_count(x), 2);
    CHECK_STR(di_xlsx_sheet_name(x, 0), "Zeta");
    CHECK_STR(di_xlsx_sheet_name(x, 1), "Alpha & co");
    CHECK(di_xlsx_sheet_name(x, 2) == NULL);
    di_parse_opts o;
    di_parse_opts_default(&o);
    parsed r;
    parse_sheet(x, 1, &o, &r);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.n ? r.json[0] : "", "{\"first\":\"1904-01-01\"}");
    CHECK_INT(r.row[0], 2);
    parsed_free(&r);
    parse_sheet(x, 0, &o, &r);
    CHECK_INT(r.n, 0);
    CHECK_INT(r.ncols, 1);
    CHECK_STR(r.ncols ? r.cols[0] : "", "b");
    parsed_free(&r);
    CHECK(di_xlsx_sheet_parser(x, 2, &o, &err) == NULL);
    di_xlsx_close(x);
    CHECK_INT(b.opens, b.closes);
}

/* test_depth_bomb: a million nested elements stop at the depth limit. */
static void test_depth_bomb(void) {
    size_t depth = 1000000;
    char *s = malloc(depth * 3 + 200), *w = s;
    w += snprintf(w, 200, "<worksheet xmlns=\"%s\"><sheetData><row><c><v>", NS);
    for (size_t i = 0; i < depth; i++)
        memcpy(w, "<a>", 3), w += 3;
    *w = '\0';
    mem_book b = book_one(s, NULL, NULL);
    b.slice = 1 << 16;
    di_buf out;
    di_buf_init(&out, SIZE_MAX / 2);
    di_parse_opts o;
    di_parse_opts_default(&o);
    run_sheet(&b, &o, NULL, &out);
    CHECK_STR(out.data, "!1:xl/worksheets/sheet1.xml nests XML elements deeper than 256 levels\n"
                        "!1:xl/worksheets/sheet1.xml nests XML elements deeper than 256 levels\n");
    di_buf_cleanup(&out);
    free(s);
}

/* ---- values ------------------------------------------------------------------------- */

/* test_floats: every literal of floats.txt gives Python's json.dumps text. */
static void test_floats(void) {
    char *text = slurp(DATA_DIR "floats.txt");
    CHECK(text != NULL);
    int n = 0, bad = 0;
    for (char *line = text; line && *line; n++) {
        char *nl = strchr(line, '\n'), *tab = strchr(line, '\t');
        if (nl)
            *nl = '\0';
        if (line[0] != '#' && tab) {
            *tab = '\0';
            char lit[128], fbuf[XV_FLOAT_MAX];
            snprintf(lit, sizeof lit, "%s", line);
            size_t len = strlen(lit);
            const char *out;
            CHECK_INT(xv_number(lit, &len, fbuf, &out, NULL), XV_OK);
            char got[128];
            snprintf(got, sizeof got, "%.*s", (int)(out == fbuf ? strlen(fbuf) : len), out);
            if (strcmp(got, tab + 1) != 0 && bad++ < 10)
                fprintf(stderr, "  float %s: got %s, want %s\n", line, got, tab + 1);
            CHECK_STR(got, tab + 1);
        }
        line = nl ? nl + 1 : NULL;
    }
    CHECK(n > 2000);
    free(text);
    char fbuf[XV_FLOAT_MAX];
    CHECK_INT(xv_float_repr(0.1, fbuf), 3);
    CHECK_STR(fbuf, "0.1");
    xv_float_repr(-0.0, fbuf);
    CHECK_STR(fbuf, "-0.0");
    xv_float_repr(1e16, fbuf);
    CHECK_STR(fbuf, "1e+16");
}

/* test_bad_numbers: what Python's int() and float() refuse. */
static void test_bad_numbers(void) {
    static const char *const bad[] = {"",     " ",     "abc", "1,5", "1e",  "1e+", "--1", "+-1",
                                      "0x10", "1.2.3", ".",   "e5",  "1 2", "inf", "nan", "1_000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char s[32], fbuf[XV_FLOAT_MAX];
        snprintf(s, sizeof s, "%s", bad[i]);
        size_t n = strlen(s);
        const char *out;
        CHECK_INT(xv_number(s, &n, fbuf, &out, NULL), XV_BAD);
    }
    char s[] = "1e309", fbuf[XV_FLOAT_MAX];
    size_t n = strlen(s);
    const char *out;
    CHECK_INT(xv_number(s, &n, fbuf, &out, NULL), XV_RANGE);
    static char big[4310]; /* int() takes 4300 digits, leading zeros included */
    memset(big, '0', 4300);
    big[4299] = '7';
    n = 4300;
    CHECK_INT(xv_number(big, &n, fbuf, &out, NULL), XV_OK);
    CHECK_STR(out, "7");
    memset(big, '0', 4301);
    big[4301] = '\0';
    n = 4301;
    CHECK_INT(xv_number(big, &n, fbuf, &out, NULL), XV_RANGE);
}

typedef struct date_case {
    double v;
    int cls, date1904;
    const char *want;
} date_case;

static const date_case date_cases[] = {
    {1, XL_FMT_DATE, 0, "1900-01-01"},
    {59, XL_FMT_DATE, 0, "1900-02-28"},
    {60, XL_FMT_DATE, 0, "1900-02-28"},
    {61, XL_FMT_DATE, 0, "1900-03-01"},
    {0, XL_FMT_DATE, 0, "1899-12-30"},
    {45000.5, XL_FMT_DATETIME, 0, "2023-03-15T12:00:00"},
    {45000.5, XL_FMT_TIME, 0, "12:00:00"},
    {45111.35416666666, XL_FMT_DATETIME, 0, "2023-07-04T08:30:00"},
    {0.0000011574074074, XL_FMT_TIME, 0, "00:00:00.100000"},
    {0.99999999999, XL_FMT_DATETIME, 0, "1900-01-01T00:00:00"},
    {2958465.9999999, XL_FMT_DATETIME, 0, "9999-12-31T23:59:59.991000"},
    {2958466, XL_FMT_DATE, 0, NULL},
    {-1, XL_FMT_DATE, 0, "1899-12-29"},
    {-693593, XL_FMT_DATE, 0, "0001-01-01"},
    {-693594, XL_FMT_DATE, 0, NULL},
    {0, XL_FMT_DATE, 1, "1904-01-01"},
    {59, XL_FMT_DATE, 1, "1904-02-29"},
    {1.25, XL_FMT_DATETIME, 1, "1904-01-02T06:00:00"},
};

static void test_dates(void) {
    for (size_t i = 0; i < sizeof date_cases / sizeof *date_cases; i++) {
        const date_case *c = &date_cases[i];
        char out[XV_FLOAT_MAX];
        int k = xv_date(c->v, c->cls, c->date1904, out);
        if (!c->want) {
            CHECK_INT(k, -1);
            continue;
        }
        CHECK_INT(k, strlen(c->want));
        CHECK_STR(k >= 0 ? out : "", c->want);
    }
}

typedef struct fmt_case {
    const char *code;
    int cls;
} fmt_case;

static const fmt_case fmt_cases[] = {
    {"General", XL_FMT_NUMBER},
    {"0.00", XL_FMT_NUMBER},
    {"#,##0.00_);[Red](#,##0.00)", XL_FMT_NUMBER},
    {"0.00E+00", XL_FMT_NUMBER},
    {"@", XL_FMT_NUMBER},
    {"0.0 \"days\"", XL_FMT_NUMBER},
    {"\\d0", XL_FMT_NUMBER},
    {"[Red]0", XL_FMT_NUMBER},
    {"[>=100]0;0", XL_FMT_NUMBER},
    {"_-* #,##0\\ _m_-", XL_FMT_NUMBER},
    {"[$-409]#,##0", XL_FMT_NUMBER},
    {"yyyy-mm-dd", XL_FMT_DATE},
    {"d-mmm", XL_FMT_DATE},
    {"mmm", XL_FMT_DATE},
    {"[$-409]mmmm d, yyyy;@", XL_FMT_DATE},
    {"DD/MM/YYYY", XL_FMT_DATE},
    {"h:mm AM/PM", XL_FMT_TIME},
    {"mm:ss", XL_FMT_TIME},
    {"[h]:mm:ss", XL_FMT_TIME},
    {"[mm]:ss", XL_FMT_TIME},
    {"[ss]", XL_FMT_TIME},
    {"hh:mm:ss.000", XL_FMT_TIME},
    {"dd/mm/yyyy hh:mm", XL_FMT_DATETIME},
    {"yyyy-mm-dd\"T\"hh:mm:ss", XL_FMT_DATETIME},
    {"m/d/yy h:mm", XL_FMT_DATETIME},
    {"0;yyyy", XL_FMT_NUMBER},
    {"\"unterminated", XL_FMT_NUMBER},
    {"[Blue", XL_FMT_NUMBER},
};

static void test_format_class(void) {
    for (size_t i = 0; i < sizeof fmt_cases / sizeof *fmt_cases; i++) {
        CHECK_INT(xl_format_class(fmt_cases[i].code), fmt_cases[i].cls);
        if (xl_format_class(fmt_cases[i].code) != fmt_cases[i].cls)
            fprintf(stderr, "  format %s\n", fmt_cases[i].code);
    }
}

static void test_text_helpers(void) {
    static const char *const esc[][2] = {
        {"plain", "plain"},
        {"_x000D_", "\r"},
        {"a_x000d__x000A_b", "a\r\nb"},
        {"_x005F_x000D_", "_x000D_"},
        {"_x0000_ _xD800_ _x12_ _xGGGG_ _X0041_", "_x0000_ _xD800_ _x12_ _xGGGG_ _X0041_"},
        {"_x00E9__x263A_", "\xc3\xa9\xe2\x98\xba"},
        {"__x0041__", "_A_"},
    };
    for (size_t i = 0; i < sizeof esc / sizeof *esc; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", esc[i][0]);
        size_t n = xv_unescape(buf, strlen(buf));
        buf[n] = '\0';
        CHECK_STR(buf, esc[i][1]);
    }
    CHECK_INT(xv_cell_col("A1"), 1);
    CHECK_INT(xv_cell_col("z9"), 26);
    CHECK_INT(xv_cell_col("AA10"), 27);
    CHECK_INT(xv_cell_col("XFD1048576"), 16384);
    CHECK_INT(xv_cell_col("F"), 6);
    CHECK_INT(xv_cell_col("ABCD1"), 0);
    CHECK_INT(xv_cell_col("1"), 0);
    CHECK_INT(xv_cell_col("A1:B2"), 0);
    char name[8];
    xv_col_name(16384, name);
    CHECK_STR(name, "XFD");
    xv_col_name(27, name);
    CHECK_STR(name, "AA");
}

int main(void) {
    test_books();
    test_book_no_header();
    test_layout();
    test_offsets();
    test_resume_mem();
    test_errors();
    test_excerpt();
    test_truncated();
    test_read_error();
    test_big_text();
    test_workbook();
    test_depth_bomb();
    test_floats();
    test_bad_numbers();
    test_dates();
    test_format_class();
    test_text_helpers();
    return check_report();
}
