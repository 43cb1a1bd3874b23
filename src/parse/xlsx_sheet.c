/* xlsx_sheet.c - one worksheet's XML as records, streamed: expat is suspended
 * at each </row> that makes a record and resumed by the next call, so memory
 * holds one row (its cells' text in one reused arena) whatever the sheet's
 * size. Shared strings are not copied: fields point into the table.
 *
 * Rows: the header is the first row with a value; every later row with a
 * value is a record numbered by its <row r>. A row whose cells are all empty
 * (or that has no cells) is not a record - openpyxl would yield it as a tuple
 * of None, but it carries no data, and a styled blank row must not become a
 * row of nulls. Columns run from A to the wider of the header row and the
 * sheet's <dimension>; a value past them is an error about that row. */
#include "parser_impl.h"
#include "xlsx_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_FACTOR 4 /* a row holds at most 4 x max_cell bytes of text */
#define FROM_SST      ((size_t)-1)
#define MAX_ROW       ((int64_t)1 << 31)

typedef struct sheet_state {
    di_parser parser; /* first: a di_parser * is a sheet_state * */
    di_xlsx *wb;
    xl_xml x;
    char *table;
    size_t max_cell, max_columns;
    int header_pending;
    int64_t start_row; /* rows before it are skipped (resume) */
    size_t dim_cols;   /* the <dimension>'s last column, 0 if none */

    char **cols;
    size_t ncols;
    int cols_known;

    /* where the parse is */
    int in_data, in_row, in_cell, in_v, in_is, in_t, rph;
    int skip_row;
    int64_t row, last_row, row_start;
    uint32_t seq;      /* the row's stamp: stamp[i] == seq marks a value */
    size_t col, width; /* the cell's column; the widest column with a value */
    size_t nvalues;
    char type;           /* the cell's t: n s S(str) i(inlineStr) b e d u(unknown) */
    unsigned char style; /* XL_FMT_* of the cell's style */
    int saw_is, text_over;
    size_t text_start;

    /* the row: field i's text is arena.data + offs[i], or ptrs[i] when
     * offs[i] == FROM_SST */
    di_buf arena;
    size_t fcap;
    size_t *offs, *lens;
    const char **ptrs;
    unsigned char *kinds;
    uint32_t *stamp;

    di_error pend; /* the row's first problem, reported when it ends */
    int ready;     /* 1: rec is a record; -1: pend is an error; 0: neither */
    di_record rec;
    int failed;
    di_error fatal;
} sheet_state;

/* ---- errors ------------------------------------------------------------------ */

/* flag notes the row's first problem; the row is parsed to its end so the
 * caller can skip it (--max-errors) and go on. */
static void flag(sheet_state *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flag(sheet_state *p, const char *fmt, ...) {
    if (p->pend.cls != DI_ERR_NONE)
        return;
    va_list ap;
    va_start(ap, fmt);
    di_error_vset(&p->pend, DI_ERR_INPUT, fmt, ap);
    va_end(ap);
    snprintf(p->pend.table, sizeof p->pend.table, "%s", p->table);
    p->pend.row = p->row;
    p->pend.byte = p->row_start;
}

/* cell_name writes the current cell's reference ("H7") for messages. */
static const char *cell_name(const sheet_state *p, char out[32]) {
    char letters[8];
    xv_col_name(p->col, letters);
    snprintf(out, 32, "%s%lld", letters, (long long)p->row);
    return out;
}

/* ---- the row's fields --------------------------------------------------------- */

/* grow_fields makes room for column n (1-based); arrays only ever grow, and
 * only when a row is wider than any before it. */
static int grow_fields(sheet_state *p, size_t n) {
    if (n <= p->fcap)
        return 0;
    size_t cap = p->fcap ? p->fcap : 64;
    while (cap < n)
        cap *= 2;
    size_t *offs = realloc(p->offs, cap * sizeof *offs);
    p->offs = offs ? offs : p->offs;
    size_t *lens = realloc(p->lens, cap * sizeof *lens);
    p->lens = lens ? lens : p->lens;
    const char **ptrs = realloc(p->ptrs, cap * sizeof *ptrs);
    p->ptrs = ptrs ? ptrs : p->ptrs;
    unsigned char *kinds = realloc(p->kinds, cap);
    p->kinds = kinds ? kinds : p->kinds;
    uint32_t *stamp = realloc(p->stamp, cap * sizeof *stamp);
    p->stamp = stamp ? stamp : p->stamp;
    if (!offs || !lens || !ptrs || !kinds || !stamp)
        return -1;
    memset(p->stamp + p->fcap, 0, (cap - p->fcap) * sizeof *stamp);
    p->fcap = cap;
    return 0;
}

/* field_text is field i's text (valid once the row is complete). */
static const char *field_text(const sheet_state *p, size_t i) {
    return p->offs[i] == FROM_SST ? p->ptrs[i] : p->arena.data + p->offs[i];
}

/* ---- cell values -------------------------------------------------------------- */

/* parse_index reads a non-negative decimal as int() would: blanks around it
 * are fine. -1 when it is not one. */
static int parse_index(const char *s, size_t n, size_t *out) {
    size_t v = 0, i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    if (i == n || n - i > 18)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* shared_value points the field at shared string `text`. */
static int shared_value(sheet_state *p, size_t i, const char *text, size_t n) {
    char ref[32];
    size_t k;
    const xl_sst *s = &p->wb->sst;
    p->arena.len = p->text_start;
    if (parse_index(text, n, &k) != 0 || k >= s->count) {
        flag(p, "cell %s refers to shared string '%.*s', but the table has %zu", cell_name(p, ref),
             (int)(n < 24 ? n : 24), text, s->count);
        return -1;
    }
    size_t len = s->off[k + 1] - s->off[k] - 1;
    if (len > p->max_cell) {
        flag(p, "cell %s exceeds IMPORT_MAX_FIELD_SIZE (%zu bytes)", cell_name(p, ref),
             p->max_cell);
        return -1;
    }
    p->ptrs[i] = s->text.data + s->off[k];
    p->offs[i] = FROM_SST;
    p->lens[i] = len;
    p->kinds[i] = DI_VAL_TEXT;
    return 0;
}

/* bool_value: openpyxl reads bool(int(v)); "true"/"false" are accepted too. */
static int bool_value(sheet_state *p, char *s, size_t n) {
    char ref[32];
    size_t v;
    int neg = n > 0 && (s[0] == '-' || s[0] == '+');
    if (n == 4 && memcmp(s, "true", 4) == 0)
        v = 1;
    else if (n == 5 && memcmp(s, "false", 5) == 0)
        v = 0;
    else if (parse_index(s + neg, n - (size_t)neg, &v) != 0) {
        flag(p, "cell %s has an invalid boolean '%.*s'", cell_name(p, ref), (int)(n < 24 ? n : 24),
             s);
        return -1;
    }
    p->arena.len = p->text_start;
    return di_buf_append(&p->arena, v ? "true" : "false", v ? 4 : 5) == 0 ? 0 : -2;
}

/* number_value writes the number's JSON, or its ISO 8601 text when the style
 * is a date format and the date exists. *kind tells which it became. */
static int number_value(sheet_state *p, char *s, size_t n, unsigned char *kind) {
    char ref[32], fbuf[XV_FLOAT_MAX];
    const char *out;
    double v = 0;
    size_t len = n;
    int rc = xv_number(s, &len, fbuf, &out, p->style ? &v : NULL);
    if (rc != XV_OK) {
        flag(p,
             rc == XV_RANGE ? "cell %s holds a number out of range: '%.*s'"
                            : "cell %s has an invalid number '%.*s'",
             cell_name(p, ref), (int)(n < 24 ? n : 24), s);
        return -1;
    }
    int k = p->style ? xv_date(v, p->style, p->wb->date1904, fbuf) : -1;
    *kind = k >= 0 ? DI_VAL_TEXT : DI_VAL_JSON;
    if (k >= 0)
        out = fbuf, len = (size_t)k;
    else if (out == fbuf)
        len = strlen(fbuf);
    p->arena.len = p->text_start;
    if (out == fbuf)
        return di_buf_append(&p->arena, fbuf, len) == 0 ? 0 : -2;
    p->arena.len += len; /* rewritten in place */
    return 0;
}

/* convert turns the cell's raw text (arena[text_start..]) into field i:
 * 0 done, -1 flagged, -2 out of memory. */
static int convert(sheet_state *p, size_t i) {
    char *s = p->arena.data + p->text_start;
    size_t n = p->arena.len - p->text_start;
    unsigned char kind = DI_VAL_TEXT;
    int rc = 0;
    switch (p->type) {
    case 's':
        return shared_value(p, i, s, n);
    case 'b':
        rc = bool_value(p, s, n);
        kind = DI_VAL_JSON;
        break;
    case 'n':
        rc = number_value(p, s, n, &kind);
        break;
    case 'S':
    case 'i':
        p->arena.len = p->text_start + xv_unescape(s, n);
        break;
    default: /* e (the error's text), d (ISO 8601 as written), unknown types */
        break;
    }
    if (rc != 0 || di_buf_putc(&p->arena, '\0') != 0) {
        p->arena.len = p->text_start;
        return rc == -1 ? -1 : -2;
    }
    p->offs[i] = p->text_start;
    p->lens[i] = p->arena.len - 1 - p->text_start;
    p->kinds[i] = kind;
    return 0;
}

/* is_null: an empty <v> is no value (openpyxl: findtext() or None); an
 * inline string is a value as soon as its <is> is there. */
static int is_null(const sheet_state *p) {
    size_t n = p->arena.len - p->text_start;
    return p->type == 'i' ? !p->saw_is && n == 0 : n == 0;
}

/* end_cell stores the cell's value in its column, or flags why it can't. */
static void end_cell(sheet_state *p) {
    char ref[32];
    p->in_cell = p->in_v = p->in_is = p->in_t = p->rph = 0;
    if (p->skip_row || p->text_over || is_null(p)) {
        p->arena.len = p->text_start;
        return;
    }
    size_t i = p->col - 1;
    int rc = -1;
    if (p->col > p->max_columns)
        flag(p, "cell %s is beyond the column limit (%zu)", cell_name(p, ref), p->max_columns);
    else if (p->cols_known && p->col > p->ncols)
        flag(p, "cell %s is beyond the sheet's %zu columns", cell_name(p, ref), p->ncols);
    else if (grow_fields(p, p->col) != 0)
        rc = -2;
    else
        rc = convert(p, i);
    if (rc == -2)
        xl_xml_fail(&p->x, DI_ERR_INTERNAL, "out of memory");
    if (rc != 0) {
        p->arena.len = p->text_start;
        return;
    }
    p->stamp[i] = p->seq;
    p->nvalues++;
    if (p->col > p->width)
        p->width = p->col;
}

/* add_text appends a piece of the cell's text, within the cell and row caps. */
static void add_text(sheet_state *p, const char *s, size_t len) {
    char ref[32];
    if (p->text_over)
        return;
    if (p->arena.len - p->text_start + len > p->max_cell) {
        flag(p, "cell %s exceeds IMPORT_MAX_FIELD_SIZE (%zu bytes)", cell_name(p, ref),
             p->max_cell);
        p->text_over = 1;
    } else if (p->arena.len + len + 1 > p->arena.max) {
        flag(p, "row exceeds %zu bytes (%d x IMPORT_MAX_FIELD_SIZE)", p->arena.max, RECORD_FACTOR);
        p->text_over = 1;
    } else if (di_buf_append(&p->arena, s, len) != 0) {
        xl_xml_fail(&p->x, DI_ERR_INTERNAL, "out of memory");
    }
}

/* cell_type maps t="..." to one letter (absent: a number). */
static char cell_type(const char *t) {
    if (!t || strcmp(t, "n") == 0)
        return 'n';
    if (strcmp(t, "s") == 0)
        return 's';
    if (strcmp(t, "str") == 0)
        return 'S';
    if (strcmp(t, "inlineStr") == 0)
        return 'i';
    if (strcmp(t, "b") == 0 || strcmp(t, "e") == 0 || strcmp(t, "d") == 0)
        return t[0];
    return 'u';
}

/* begin_cell reads <c r= t= s=>: a cell without r follows the previous one. */
static void begin_cell(sheet_state *p, const char **atts) {
    const char *r = NULL, *t = NULL, *s = NULL;
    p->in_cell = 1;
    p->saw_is = p->text_over = 0;
    p->text_start = p->arena.len;
    if (p->skip_row)
        return;
    for (size_t k = 0; atts[k]; k += 2) { /* one pass: r, t and s */
        const char *a = atts[k];
        if (a[0] == 'r' && !a[1])
            r = atts[k + 1];
        else if (a[0] == 't' && !a[1])
            t = atts[k + 1];
        else if (a[0] == 's' && !a[1])
            s = atts[k + 1];
    }
    size_t col = r ? xv_cell_col(r) : p->col + 1;
    if (col == 0) {
        p->col++;
        flag(p, "invalid cell reference '%.16s' in row %lld", r, (long long)p->row);
        p->text_over = 1;
        return;
    }
    p->col = col;
    p->type = cell_type(t);
    size_t st = 0;
    p->style = 0;
    if (p->type == 'n' && (!s || parse_index(s, strlen(s), &st) == 0) && st < p->wb->nxf)
        p->style = p->wb->xf_class[st];
}

/* ---- rows --------------------------------------------------------------------- */

/* parse_row_number reads <row r="N">: 1 <= N <= 2^31. */
static int parse_row_number(const char *s, int64_t *out) {
    int64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > MAX_ROW)
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return v >= 1 && v <= MAX_ROW ? 0 : -1;
}

/* begin_row numbers the row (r, else the previous one + 1); rows ascend. */
static void begin_row(sheet_state *p, const char **atts) {
    const char *r = xl_attr(atts, "r");
    int64_t n = p->last_row + 1;
    if (r && parse_row_number(r, &n) != 0) {
        xl_xml_fail(&p->x, DI_ERR_INPUT, "invalid row number '%.24s' after row %lld", r,
                    (long long)p->last_row);
        return;
    }
    if (n <= p->last_row) {
        xl_xml_fail(&p->x, DI_ERR_INPUT, "row %lld comes after row %lld: rows must ascend",
                    (long long)n, (long long)p->last_row);
        return;
    }
    p->row = p->last_row = n;
    p->row_start = xl_xml_offset(&p->x);
    p->in_row = 1;
    p->skip_row = n < p->start_row && !p->header_pending;
    p->seq++;
    p->col = p->width = p->nvalues = 0;
    di_error_clear(&p->pend);
    di_buf_reset(&p->arena);
}

/* set_columns fixes the column count; the arrays cover every column then. */
static int set_columns(sheet_state *p, size_t n) {
    if (grow_fields(p, n) != 0)
        return -1;
    p->ncols = n;
    p->cols_known = 1;
    return 0;
}

/* take_header names the columns from the header row's values. */
static int take_header(sheet_state *p) {
    size_t n = p->width > p->dim_cols ? p->width : p->dim_cols;
    p->cols = calloc(n, sizeof *p->cols);
    if (!p->cols || set_columns(p, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int set = p->stamp[i] == p->seq;
        p->cols[i] = strndup(set ? field_text(p, i) : "", set ? p->lens[i] : 0);
        if (!p->cols[i])
            return -1;
    }
    p->header_pending = 0;
    return di_normalize_columns(p->cols, n);
}

/* name_columns makes column_1..column_N for a sheet read without a header. */
static int name_columns(sheet_state *p) {
    size_t n = p->width > p->dim_cols ? p->width : p->dim_cols;
    p->cols = calloc(n, sizeof *p->cols);
    if (!p->cols || set_columns(p, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!(p->cols[i] = strdup("")))
            return -1;
    return di_normalize_columns(p->cols, n);
}

/* emit fills every column (missing cells are null) and suspends the parse. */
static void emit(sheet_state *p) {
    for (size_t i = 0; i < p->ncols; i++) {
        if (p->stamp[i] == p->seq) {
            p->ptrs[i] = field_text(p, i);
        } else {
            p->ptrs[i] = "";
            p->lens[i] = 0;
            p->kinds[i] = DI_VAL_NULL;
        }
    }
    p->rec = (di_record){.fields = p->ptrs,
                         .lens = p->lens,
                         .kinds = p->kinds,
                         .nfields = p->ncols,
                         .row = p->row,
                         .start = p->row_start,
                         .next = xl_xml_event_end(&p->x)};
    p->ready = 1;
    xl_xml_suspend(&p->x);
}

/* record_error marks the row's error as about that row alone (DI_CODE_RECORD:
 * the caller may skip it and go on) and keeps the row's first values, joined
 * by commas, for the rejects list. */
static void record_error(sheet_state *p) {
    di_error *e = &p->pend;
    size_t n = 0, cap = sizeof e->excerpt - 1;
    e->code = DI_CODE_RECORD;
    for (size_t i = 0; i < p->width && n < cap; i++) {
        if (i)
            e->excerpt[n++] = ',';
        if (p->stamp[i] != p->seq)
            continue;
        size_t k = p->lens[i] < cap - n ? p->lens[i] : cap - n;
        memcpy(e->excerpt + n, field_text(p, i), k);
        n += k;
    }
    n = di_utf8_valid((const unsigned char *)e->excerpt, n); /* it goes into JSON */
    e->excerpt[n] = '\0';
}

/* end_row decides what the row is: skipped, the header, an error, a record. */
static void end_row(sheet_state *p) {
    p->in_row = 0;
    if (p->skip_row)
        return;
    if (p->pend.cls != DI_ERR_NONE && p->header_pending) {
        xl_xml_fail(&p->x, DI_ERR_INPUT, "%s", p->pend.message); /* no columns: sticky */
        return;
    }
    if (p->pend.cls != DI_ERR_NONE) {
        record_error(p);
        p->ready = -1;
        xl_xml_suspend(&p->x);
        return;
    }
    if (p->nvalues == 0) /* no values at all: not a record (see the top) */
        return;
    if (p->header_pending) {
        if (take_header(p) != 0)
            xl_xml_fail(&p->x, DI_ERR_INTERNAL, "out of memory");
        return;
    }
    if (!p->cols_known && name_columns(p) != 0)
        xl_xml_fail(&p->x, DI_ERR_INTERNAL, "out of memory");
    else if (p->row >= p->start_row)
        emit(p);
}

/* dimension reads <dimension ref="A1:F100">: its last column. */
static void dimension(sheet_state *p, const char **atts) {
    const char *ref = xl_attr(atts, "ref");
    if (!ref)
        return;
    const char *last = strrchr(ref, ':');
    size_t col = xv_cell_col(last ? last + 1 : ref);
    if (col > p->max_columns)
        xl_xml_fail(&p->x, DI_ERR_INPUT, "the sheet's dimension %.40s is wider than %zu columns",
                    ref, p->max_columns);
    else
        p->dim_cols = col;
}

/* ---- expat handlers ----------------------------------------------------------- */

/* on_start tracks where in the sheet the parse is: the dimension before the
 * data, then rows, cells, and the value elements inside a cell. */
static void on_start(void *ud, const char *name, const char **atts) {
    sheet_state *p = ud;
    if (!p->in_data) {
        if (strcmp(name, "sheetData") == 0)
            p->in_data = 1;
        else if (strcmp(name, "dimension") == 0)
            dimension(p, atts);
    } else if (p->in_cell) {
        if (strcmp(name, "v") == 0)
            p->in_v = 1;
        else if (strcmp(name, "is") == 0)
            p->in_is = p->saw_is = 1;
        else if (strcmp(name, "rPh") == 0)
            p->rph++;
        else if (strcmp(name, "t") == 0)
            p->in_t = 1;
    } else if (p->in_row && strcmp(name, "c") == 0) {
        begin_cell(p, atts);
    } else if (!p->in_row && strcmp(name, "row") == 0) {
        begin_row(p, atts);
    }
}

/* on_end closes what on_start opened; a cell's and a row's end do the work. */
static void on_end(void *ud, const char *name) {
    sheet_state *p = ud;
    if (!p->in_data)
        return;
    if (p->in_cell) {
        if (strcmp(name, "c") == 0)
            end_cell(p);
        else if (strcmp(name, "v") == 0)
            p->in_v = 0;
        else if (strcmp(name, "is") == 0)
            p->in_is = 0;
        else if (strcmp(name, "rPh") == 0)
            p->rph--;
        else if (strcmp(name, "t") == 0)
            p->in_t = 0;
    } else if (p->in_row && strcmp(name, "row") == 0) {
        end_row(p);
    } else if (strcmp(name, "sheetData") == 0) {
        p->in_data = 0;
    }
}

/* on_text keeps a cell's <v> text, or its inline string's <t> text outside
 * phonetic runs; formulas (<f>) and whitespace between elements are dropped. */
static void on_text(void *ud, const char *s, size_t len) {
    sheet_state *p = ud;
    if (p->in_cell && !p->skip_row && (p->in_v || (p->in_is && p->in_t && !p->rph)))
        add_text(p, s, len);
}

/* ---- the parser --------------------------------------------------------------- */

/* sticky makes the driver's error the parser's last word, with the place. */
static void sticky(sheet_state *p) {
    p->fatal = p->x.err;
    p->failed = 1;
    if (!p->fatal.table[0])
        snprintf(p->fatal.table, sizeof p->fatal.table, "%s", p->table);
    p->fatal.row = p->row > 0 ? p->row : -1;
    p->fatal.byte = p->in_row ? p->row_start : xl_xml_offset(&p->x);
}

/* sheet_next: di_parser_next. After -1 about one row (a bad value, a cell
 * past the columns) the next call goes on with the following row; XML,
 * limit and read errors are sticky (XML cannot be resynchronised). */
static int sheet_next(di_parser *dp, di_record *rec, di_error *err) {
    sheet_state *p = (sheet_state *)dp;
    for (;;) {
        if (p->failed) {
            *err = p->fatal;
            return -1;
        }
        if (p->ready) {
            int r = p->ready;
            p->ready = 0;
            if (r < 0) {
                *err = p->pend;
                return -1;
            }
            *rec = p->rec;
            return 1;
        }
        int rc = xl_xml_step(&p->x);
        if (rc == 0)
            return 0;
        if (rc < 0)
            sticky(p);
    }
}

/* sheet_columns: di_parser_columns; NULL and 0 until the header is read. */
static const char *const *sheet_columns(const di_parser *dp, size_t *ncolumns) {
    const sheet_state *p = (const sheet_state *)dp;
    *ncolumns = p->cols_known ? p->ncols : 0;
    return p->cols_known ? (const char *const *)p->cols : NULL;
}

/* sheet_table: the sheet's name is the table key (DESIGN §2). */
static const char *sheet_table(const di_parser *dp) {
    return ((const sheet_state *)dp)->table;
}

/* sheet_free closes the part and frees the row buffers and the columns. */
static void sheet_free(di_parser *dp) {
    sheet_state *p = (sheet_state *)dp;
    if (!p)
        return;
    xl_xml_close(&p->x);
    for (size_t i = 0; p->cols && i < p->ncols; i++)
        free(p->cols[i]);
    free(p->cols);
    di_buf_cleanup(&p->arena);
    free(p->offs);
    free(p->lens);
    free(p->ptrs);
    free(p->kinds);
    free(p->stamp);
    free(p->table);
    free(p);
}

static const di_parser_ops k_sheet_ops = {sheet_next, sheet_columns, sheet_table, sheet_free};

/* resume_columns takes the caller's columns: the header is not read again. */
static int resume_columns(sheet_state *p, const di_parse_opts *o) {
    p->cols = calloc(o->resume_ncolumns ? o->resume_ncolumns : 1, sizeof *p->cols);
    if (!p->cols)
        return -1;
    p->ncols = o->resume_ncolumns;
    for (size_t i = 0; i < o->resume_ncolumns; i++)
        if (!(p->cols[i] = strdup(o->resume_columns[i])))
            return -1;
    return set_columns(p, o->resume_ncolumns);
}

/* setup applies the options: limits, header, resume point. */
static int setup(sheet_state *p, const di_parse_opts *o) {
    const di_xlsx_limits *lim = &p->wb->lim;
    p->max_cell = lim->max_cell ? lim->max_cell : o->max_field ? o->max_field : (size_t)16 << 20;
    p->max_columns = lim->max_columns;
    size_t rec_max = p->max_cell > ((size_t)-1 / 2) / RECORD_FACTOR ? (size_t)-1 / 2
                                                                    : p->max_cell * RECORD_FACTOR;
    di_buf_init(&p->arena, rec_max);
    di_error_clear(&p->pend);
    di_error_clear(&p->fatal);
    p->start_row = o->start_row > 1 ? o->start_row : 1;
    p->header_pending = o->header && !o->resume_columns;
    if (o->resume_columns && resume_columns(p, o) != 0)
        return -1;
    return di_buf_reserve(&p->arena, rec_max < 4096 ? rec_max : 4096);
}

/* di_xlsx_sheet_parser opens sheet i's part; see xlsx.h. opts->table_key is
 * not used: the table is the sheet's name. */
di_parser *di_xlsx_sheet_parser(di_xlsx *x, size_t i, const di_parse_opts *opts, di_error *err) {
    static const xl_handlers h = {on_start, on_end, on_text};
    if (i >= x->nsheets) {
        di_error_set(err, DI_ERR_INTERNAL, "no sheet %zu (the workbook has %zu)", i, x->nsheets);
        return NULL;
    }
    sheet_state *p = calloc(1, sizeof *p);
    if (!p) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->parser.ops = &k_sheet_ops;
    p->wb = x;
    p->table = strdup(x->sheets[i].name);
    if (!p->table || setup(p, opts) != 0) {
        sheet_free(&p->parser);
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    int rc = xl_xml_open(&p->x, x, x->sheets[i].part, &h, p, err);
    if (rc == 0)
        di_error_at(err, DI_ERR_INPUT, p->table, -1, -1, "sheet '%s': its part %s is missing",
                    p->table, x->sheets[i].part);
    if (rc <= 0) {
        sheet_free(&p->parser);
        return NULL;
    }
    p->x.max_token = p->max_cell + ((size_t)1 << 20);
    return &p->parser;
}
