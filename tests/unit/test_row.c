/* test_row.c - the row stage against Python's canonical JSON and xxhsum's XXH3-128.
 *
 * Fixtures come from tests/data/canonical_json/make_fixtures.py (run from tests/,
 * as ctest does); the small tables here cover the escaper alone, the layout's
 * permutation, buffer reuse across rows and the buffer cap. */
#include "dsa_ingest/row.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#define CASES_PATH  "data/canonical_json/cases.txt"
#define HASHES_PATH "data/canonical_json/hashes.txt"
#define MAX_COLUMNS 64

/* hexval maps one hex digit to its value, -1 for anything else. */
static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* unhex decodes n hex digits into a fresh NUL-terminated string (fixtures keep
 * every byte exact this way); NULL on bad input. */
static char *unhex(const char *h, size_t n, size_t *len) {
    if (n % 2)
        return NULL;
    char *s = malloc(n / 2 + 1);
    for (size_t i = 0; s && i < n / 2; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(s);
            return NULL;
        }
        s[i] = (char)(hi << 4 | lo);
    }
    if (s) {
        s[n / 2] = '\0';
        *len = n / 2;
    }
    return s;
}

typedef struct row_case {
    char *label;
    size_t ncol;
    char *names[MAX_COLUMNS];
    char *values[MAX_COLUMNS];
    size_t lens[MAX_COLUMNS];
    char *want;
    size_t want_len;
} row_case;

/* case_free releases what parse_case allocated. */
static void case_free(row_case *c) {
    for (size_t i = 0; i < c->ncol; i++) {
        free(c->names[i]);
        free(c->values[i]);
    }
    free(c->label);
    free(c->want);
    memset(c, 0, sizeof *c);
}

/* parse_columns reads "name_hex,value_hex;..." (empty: no columns) into c. */
static int parse_columns(row_case *c, const char *p, const char *end) {
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        const char *comma = memchr(p, ',', (size_t)(stop - p));
        size_t nlen;
        if (!comma || c->ncol == MAX_COLUMNS)
            return -1;
        c->names[c->ncol] = unhex(p, (size_t)(comma - p), &nlen);
        c->values[c->ncol] = unhex(comma + 1, (size_t)(stop - comma - 1), &c->lens[c->ncol]);
        if (!c->names[c->ncol] || !c->values[c->ncol]) {
            free(c->names[c->ncol]);
            free(c->values[c->ncol]);
            return -1;
        }
        c->ncol++;
        p = semi ? semi + 1 : end;
    }
    return 0;
}

/* parse_case reads one "label TAB columns TAB json_hex" line. */
static int parse_case(char *line, row_case *c) {
    memset(c, 0, sizeof *c);
    line[strcspn(line, "\r\n")] = '\0';
    char *t1 = strchr(line, '\t');
    char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2)
        return -1;
    c->label = strndup(line, (size_t)(t1 - line));
    c->want = unhex(t2 + 1, strlen(t2 + 1), &c->want_len);
    if (!c->label || !c->want || parse_columns(c, t1 + 1, t2) != 0) {
        case_free(c);
        return -1;
    }
    return 0;
}

/* check_case builds the row once from a fresh layout and compares bytes. */
static void check_case(const row_case *c, di_buf *out) {
    di_row_layout l;
    CHECK_INT(di_row_layout_init(&l, (const char *const *)c->names, c->ncol), 0);
    CHECK_INT(di_row_json(&l, (const char *const *)c->values, c->lens, NULL, out), 0);
    int same = out->len == c->want_len && memcmp(out->data, c->want, c->want_len) == 0;
    CHECK(same);
    if (!same)
        fprintf(stderr, "  case %s:\n  got  %.*s\n  want %s\n", c->label, (int)out->len, out->data,
                c->want);
    di_row_layout_cleanup(&l);
}

/* test_fixture_cases replays every case of cases.txt (Python's output). */
static void test_fixture_cases(void) {
    FILE *f = fopen(CASES_PATH, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    di_buf out;
    di_buf_init(&out, 1 << 20);
    char *line = NULL;
    size_t cap = 0, ncases = 0;
    while (getline(&line, &cap, f) != -1) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        row_case c;
        int ok = parse_case(line, &c) == 0;
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "  bad fixture line: %.60s\n", line);
            continue;
        }
        check_case(&c, &out);
        case_free(&c);
        ncases++;
    }
    CHECK(ncases >= 150);
    free(line);
    fclose(f);
    di_buf_cleanup(&out);
}

/* test_hash_fixtures checks XXH3-128 hex against xxhsum -H2's output. */
static void test_hash_fixtures(void) {
    FILE *f = fopen(HASHES_PATH, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0, nhashes = 0;
    while (getline(&line, &cap, f) != -1) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\r\n")] = '\0';
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        size_t len;
        char *input = t2 ? unhex(t1 + 1, (size_t)(t2 - t1 - 1), &len) : NULL;
        CHECK(input != NULL);
        if (!input)
            continue;
        char hex[DI_HASH_HEX + 1];
        di_row_hash(input, len, hex);
        CHECK_STR(hex, t2 + 1);
        free(input);
        nhashes++;
    }
    CHECK(nhashes >= 10);
    free(line);
    fclose(f);
}

static const struct {
    const char *in;
    size_t len;
    const char *want;
} escape_cases[] = {
    {"", 0, "\"\""},
    {"plain", 5, "\"plain\""},
    {"\"", 1, "\"\\\"\""},
    {"\\", 1, "\"\\\\\""},
    {"\x01", 1, "\"\\u0001\""},
    {"\x1f", 1, "\"\\u001f\""},
    {"\x1b[0m", 4, "\"\\u001b[0m\""},
    {"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
    {"\x0b", 1, "\"\\u000b\""},
    {"a\x7f", 2, "\"a\x7f\""},
    {"\xc3\xa9\xe2\x80\xa8", 5, "\"\xc3\xa9\xe2\x80\xa8\""},
    {"0123456789abcdef\n0123456789abcdef", 33, "\"0123456789abcdef\\n0123456789abcdef\""},
    {"1234567\"", 8, "\"1234567\\\"\""},
    {"a\0b", 3, "\"a\\u0000b\""}, /* NUL never reaches us, but is escaped like Python */
};

/* test_escaper checks di_json_append_string alone, and that it appends. */
static void test_escaper(void) {
    di_buf out;
    di_buf_init(&out, 4096);
    for (size_t i = 0; i < sizeof escape_cases / sizeof escape_cases[0]; i++) {
        di_buf_reset(&out);
        CHECK_INT(di_buf_append(&out, "[", 1), 0);
        CHECK_INT(di_json_append_string(&out, escape_cases[i].in, escape_cases[i].len), 0);
        CHECK_STR(out.data + 1, escape_cases[i].want);
        CHECK_INT(out.len, 1 + strlen(escape_cases[i].want));
    }
    di_buf_cleanup(&out);
}

static const struct {
    const char *names[8];
    size_t n;
    size_t order[8];
} layout_cases[] = {
    {{"B", "a", "_", "\xc3\xa4", "Z", "aa", ""}, 7, {6, 0, 4, 2, 1, 5, 3}},
    {{"abc", "a", "ab", "a\x01", "a b", "abcd"}, 6, {1, 3, 4, 2, 0, 5}},
    {{"\\", "\n", "\""}, 3, {1, 2, 0}},
    {{"\xf0\x9f\x98\x80", "\xef\xbf\xbf", "~"}, 3, {2, 1, 0}},
    {{"only"}, 1, {0}},
    {{0}, 0, {0}},
};

/* test_layout checks the byte-order permutation and the pre-escaped keys. */
static void test_layout(void) {
    for (size_t c = 0; c < sizeof layout_cases / sizeof layout_cases[0]; c++) {
        di_row_layout l;
        CHECK_INT(di_row_layout_init(&l, layout_cases[c].names, layout_cases[c].n), 0);
        CHECK_INT(l.ncolumns, layout_cases[c].n);
        for (size_t k = 0; k < layout_cases[c].n; k++)
            CHECK_INT(l.order[k], layout_cases[c].order[k]);
        di_row_layout_cleanup(&l);
        di_row_layout_cleanup(&l); /* twice is harmless */
    }
    const char *names[] = {"x", "a\"b\n", "\xc3\xa4"};
    const char *want[] = {"\"x\":", "\"a\\\"b\\n\":", "\"\xc3\xa4\":"};
    di_row_layout l;
    CHECK_INT(di_row_layout_init(&l, names, 3), 0);
    for (size_t i = 0; i < 3; i++) {
        CHECK_INT(l.key_len[i], strlen(want[i]));
        CHECK(memcmp(l.keys.data + l.key_off[i], want[i], strlen(want[i])) == 0);
    }
    di_row_layout_cleanup(&l);
}

/* test_buffer_reuse runs rows of different sizes through one buffer: no stale
 * bytes, and no realloc once the biggest row has been seen. */
static void test_buffer_reuse(void) {
    const char *names[] = {"b", "a", "c"};
    char big[3000];
    memset(big, '\n', sizeof big); /* every byte escaped: the worst expansion but one */
    static const struct {
        const char *v[3];
        size_t len[3];
        size_t want_len;
    } rows[] = {
        {{"1", "2", "3"}, {1, 1, 1}, 25},
        {{NULL, "\x01\x01", ""}, {3000, 2, 0}, 6034}, /* the biggest */
        {{"", "", ""}, {0, 0, 0}, 22},
        {{"x", NULL, "\x01"}, {1, 3000, 1}, 6029},
        {{"1", "2", "3"}, {1, 1, 1}, 25},
    };
    di_row_layout l;
    di_buf out;
    di_buf_init(&out, 1 << 16);
    CHECK_INT(di_row_layout_init(&l, names, 3), 0);
    char *data_after_big = NULL;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const char *v[3];
        for (size_t i = 0; i < 3; i++)
            v[i] = rows[r].v[i] ? rows[r].v[i] : big;
        CHECK_INT(di_row_json(&l, v, rows[r].len, NULL, &out), 0);
        CHECK_INT(out.len, rows[r].want_len);
        CHECK_INT(strlen(out.data), out.len); /* NUL-terminated, no stale tail */
        if (r == 1)
            data_after_big = out.data;
        if (r >= 2)
            CHECK(out.data == data_after_big && out.cap > 6034);
    }
    CHECK_STR(out.data, "{\"a\":\"2\",\"b\":\"1\",\"c\":\"3\"}");
    di_row_layout_cleanup(&l);
    di_buf_cleanup(&out);
}

/* test_cap checks that a row past the buffer's max fails instead of growing. */
static void test_cap(void) {
    const char *names[] = {"k"};
    const char *small[] = {"abc"}, *escaped[] = {"\x01\x01\x01\x01"};
    size_t small_len[] = {3}, escaped_len[] = {4};
    di_row_layout l;
    di_buf out;
    di_buf_init(&out, 16);
    CHECK_INT(di_row_layout_init(&l, names, 1), 0);
    CHECK_INT(di_row_json(&l, small, small_len, NULL, &out), 0);
    CHECK_STR(out.data, "{\"k\":\"abc\"}");
    CHECK_INT(di_row_json(&l, escaped, escaped_len, NULL, &out), -1); /* 32 bytes > 16 */
    di_buf_reset(&out);
    CHECK_INT(di_json_append_string(&out, "\x01\x01\x01", 3), -1);
    di_row_layout_cleanup(&l);
    di_buf_cleanup(&out);
}

/* main runs each table; the last line is check.h's report. */
int main(void) {
    test_escaper();
    test_layout();
    test_fixture_cases();
    test_hash_fixtures();
    test_buffer_reuse();
    test_cap();
    return check_report();
}
