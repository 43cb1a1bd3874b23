/* xlsx.c - an XLSX workbook: its sheets in order (xl/workbook.xml), where each
 * sheet's XML lives (xl/_rels/workbook.xml.rels), which styles are dates
 * (xlsx_styles.c) and the shared strings (xlsx_sst.c). Sheets are streamed
 * by xlsx_sheet.c. Every part goes through the expat driver of xlsx_xml.c. */
#include "xlsx_impl.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SHEETS    ((size_t)1 << 16)
#define MAX_NAME      ((size_t)4096)
#define WORKBOOK_PART "xl/workbook.xml"
#define RELS_PART     "xl/_rels/workbook.xml.rels"
#define BASE_DIR      "xl/"

/* How a sheet's relationship resolved: chartsheets and dialogsheets hold no
 * cells and are left out. */
enum { REL_NONE = 0, REL_WORKSHEET, REL_OTHER };

typedef struct rid_ref {
    const char *rid;
    size_t sheet;
} rid_ref;

typedef struct wb_read {
    xl_xml *x;
    di_xlsx *wb;
    size_t cap;
    rid_ref *by_rid; /* the sheets sorted by r:id, for the relationships */
    unsigned char *rel;
} wb_read;

/* dup_attr copies an attribute, refusing absurd lengths. */
static char *dup_attr(xl_xml *x, const char *v, const char *what) {
    size_t n = strlen(v);
    if (n > MAX_NAME) {
        xl_xml_fail(x, DI_ERR_INPUT, "%s: a %s is longer than %zu bytes", x->name, what, MAX_NAME);
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        xl_xml_fail(x, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    memcpy(s, v, n + 1);
    return s;
}

/* add_sheet records a <sheet name=... r:id=...> in workbook order. */
static void add_sheet(wb_read *r, const char **atts) {
    di_xlsx *wb = r->wb;
    const char *name = xl_attr(atts, "name"), *rid = xl_attr(atts, "id");
    if (!name || !rid) {
        xl_xml_fail(r->x, DI_ERR_INPUT, "%s: a <sheet> has no name or r:id", r->x->name);
        return;
    }
    if (wb->nsheets == MAX_SHEETS) {
        xl_xml_fail(r->x, DI_ERR_INPUT, "the workbook has more than %zu sheets", MAX_SHEETS);
        return;
    }
    if (wb->nsheets == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        xl_sheet *p = realloc(wb->sheets, cap * sizeof *p);
        if (!p) {
            xl_xml_fail(r->x, DI_ERR_INTERNAL, "out of memory");
            return;
        }
        wb->sheets = p;
        r->cap = cap;
    }
    xl_sheet *s = &wb->sheets[wb->nsheets];
    *s = (xl_sheet){dup_attr(r->x, name, "sheet name"), dup_attr(r->x, rid, "r:id"), NULL};
    wb->nsheets++; /* even half-made: di_xlsx_close frees what is there */
}

/* is_true reads an xsd:boolean attribute. */
static int is_true(const char *v) {
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

/* wb_start takes the sheets and the date system from xl/workbook.xml. */
static void wb_start(void *ud, const char *name, const char **atts) {
    wb_read *r = ud;
    if (strcmp(name, "sheet") == 0)
        add_sheet(r, atts);
    else if (strcmp(name, "workbookPr") == 0)
        r->wb->date1904 = is_true(xl_attr(atts, "date1904"));
}

/* ---- relationships ------------------------------------------------------------ */

/* resolve_target turns a relationship target into a part name: absolute
 * ("/xl/a.xml") or relative to xl/, with "." and ".." segments applied. */
static char *resolve_target(const char *t) {
    size_t n = strlen(t);
    char *out = malloc(sizeof BASE_DIR + n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    if (t[0] == '/') {
        t++;
    } else {
        memcpy(out, BASE_DIR, sizeof BASE_DIR - 1);
        k = sizeof BASE_DIR - 1;
    }
    while (*t) {
        const char *e = strchr(t, '/');
        size_t len = e ? (size_t)(e - t) : strlen(t);
        if (len == 2 && t[0] == '.' && t[1] == '.') {
            while (k > 0 && out[k - 1] == '/')
                k--;
            while (k > 0 && out[k - 1] != '/')
                k--;
        } else if (len > 0 && !(len == 1 && t[0] == '.')) {
            memcpy(out + k, t, len);
            k += len;
            if (e)
                out[k++] = '/';
        }
        t += len + (e != NULL);
    }
    out[k] = '\0';
    return out;
}

/* ends_with matches relationship types by their last segment: transitional
 * and strict OOXML differ only in the namespace before it. */
static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* find_rid is the sheet whose r:id is rid, or -1 (binary search). */
static long find_rid(const wb_read *r, const char *rid) {
    size_t lo = 0, hi = r->wb->nsheets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->by_rid[mid].rid, rid);
        if (c == 0)
            return (long)r->by_rid[mid].sheet;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* set_part keeps a resolved part name in *slot (the first one wins). */
static void set_part(wb_read *r, char **slot, const char *target) {
    if (*slot)
        return;
    if (!(*slot = resolve_target(target)))
        xl_xml_fail(r->x, DI_ERR_INTERNAL, "out of memory");
}

/* rel_start reads one <Relationship>: a sheet's part, or the styles' or the
 * shared strings' (external targets are never parts). */
static void rel_start(void *ud, const char *name, const char **atts) {
    wb_read *r = ud;
    if (strcmp(name, "Relationship") != 0)
        return;
    const char *id = xl_attr(atts, "Id"), *type = xl_attr(atts, "Type");
    const char *target = xl_attr(atts, "Target"), *mode = xl_attr(atts, "TargetMode");
    if (!id || !type || !target || (mode && strcmp(mode, "External") == 0))
        return;
    if (ends_with(type, "/styles"))
        set_part(r, &r->wb->styles_part, target);
    else if (ends_with(type, "/sharedStrings"))
        set_part(r, &r->wb->sst_part, target);
    long i = find_rid(r, id);
    if (i < 0 || r->rel[i] != REL_NONE)
        return;
    r->rel[i] = ends_with(type, "/worksheet") ? REL_WORKSHEET : REL_OTHER;
    if (r->rel[i] == REL_WORKSHEET)
        set_part(r, &r->wb->sheets[i].part, target);
}

/* cmp_rid orders sheets by r:id for find_rid. */
static int cmp_rid(const void *a, const void *b) {
    return strcmp(((const rid_ref *)a)->rid, ((const rid_ref *)b)->rid);
}

/* run_part parses one workbook-level part: 1 done, 0 absent, -1 err. */
static int run_part(di_xlsx *wb, const char *name, const xl_handlers *h, void *user, xl_xml *x,
                    di_error *err) {
    int rc = xl_xml_open(x, wb, name, h, user, err);
    if (rc == 1 && xl_xml_run(x) != 0) {
        *err = x->err;
        rc = -1;
    }
    xl_xml_close(x);
    return rc;
}

/* keep_worksheets drops sheets that are not worksheets; a sheet whose
 * relationship is missing means a broken workbook. */
static int keep_worksheets(di_xlsx *wb, const unsigned char *rel, di_error *err) {
    for (size_t i = 0; i < wb->nsheets; i++)
        if (rel[i] == REL_NONE)
            return di_error_set(err, DI_ERR_INPUT,
                                "sheet '%s' refers to relationship '%s', which %s lacks",
                                wb->sheets[i].name, wb->sheets[i].rid, RELS_PART);
    size_t k = 0;
    for (size_t i = 0; i < wb->nsheets; i++) {
        xl_sheet s = wb->sheets[i];
        free(s.rid);
        s.rid = NULL;
        if (rel[i] == REL_WORKSHEET)
            wb->sheets[k++] = s;
        else
            free(s.name), free(s.part);
    }
    wb->nsheets = k;
    return k ? 0 : di_error_set(err, DI_ERR_INPUT, "the workbook has no sheets");
}

/* cmp_name orders sheet names by bytes. */
static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* unique_names refuses two sheets of one name: they would be one table. */
static int unique_names(const di_xlsx *wb, di_error *err) {
    const char **v = malloc(wb->nsheets * sizeof *v);
    if (!v)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < wb->nsheets; i++)
        v[i] = wb->sheets[i].name;
    qsort(v, wb->nsheets, sizeof *v, cmp_name);
    int rc = 0;
    for (size_t i = 1; i < wb->nsheets && rc == 0; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            rc = di_error_set(err, DI_ERR_INPUT, "two sheets are named '%s'", v[i]);
    free(v);
    return rc;
}

/* read_rels maps each sheet to its part. */
static int read_rels(di_xlsx *wb, di_error *err) {
    static const xl_handlers h = {rel_start, NULL, NULL};
    xl_xml x;
    wb_read r = {.x = &x, .wb = wb};
    r.by_rid = malloc(wb->nsheets * sizeof *r.by_rid);
    r.rel = calloc(wb->nsheets, 1);
    int rc = -1;
    if (!r.by_rid || !r.rel) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < wb->nsheets; i++)
        r.by_rid[i] = (rid_ref){wb->sheets[i].rid, i};
    qsort(r.by_rid, wb->nsheets, sizeof *r.by_rid, cmp_rid);
    rc = run_part(wb, RELS_PART, &h, &r, &x, err);
    if (rc == 0)
        rc = di_error_set(err, DI_ERR_INPUT, "not an XLSX workbook: %s is missing", RELS_PART);
    if (rc > 0)
        rc = keep_worksheets(wb, r.rel, err) == 0 ? unique_names(wb, err) : -1;
out:
    free(r.by_rid);
    free(r.rel);
    return rc < 0 ? -1 : 0;
}

/* read_workbook lists the sheets and the date system. */
static int read_workbook(di_xlsx *wb, di_error *err) {
    static const xl_handlers h = {wb_start, NULL, NULL};
    xl_xml x;
    wb_read r = {.x = &x, .wb = wb};
    int rc = run_part(wb, WORKBOOK_PART, &h, &r, &x, err);
    if (rc == 0)
        return di_error_set(err, DI_ERR_INPUT, "not an XLSX workbook: %s is missing",
                            WORKBOOK_PART);
    if (rc > 0 && wb->nsheets == 0)
        return di_error_set(err, DI_ERR_INPUT, "the workbook has no sheets");
    return rc < 0 ? -1 : 0;
}

/* set_limits fills the defaults; max_cell stays 0 ("the parse options'
 * max_field") until a sheet parser knows it. */
static void set_limits(di_xlsx *wb, const di_xlsx_limits *lim) {
    if (lim)
        wb->lim = *lim;
    if (!wb->lim.max_xml_depth)
        wb->lim.max_xml_depth = 256;
    if (!wb->lim.max_shared_bytes)
        wb->lim.max_shared_bytes = (size_t)256 << 20;
    if (!wb->lim.max_columns)
        wb->lim.max_columns = 16384;
}

/* default_parts names styles and shared strings when no relationship did. */
static int default_parts(di_xlsx *wb, di_error *err) {
    if (!wb->styles_part)
        wb->styles_part = strdup("xl/styles.xml");
    if (!wb->sst_part)
        wb->sst_part = strdup("xl/sharedStrings.xml");
    if (wb->styles_part && wb->sst_part)
        return 0;
    return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
}

/* di_xlsx_open reads the workbook-level parts in the order each needs the
 * one before: the sheets, their parts, then styles and shared strings. */
di_xlsx *di_xlsx_open(di_part_open_fn open, di_part_close_fn close, void *ctx,
                      const di_xlsx_limits *lim, di_error *err) {
    di_xlsx *wb = calloc(1, sizeof *wb);
    if (!wb) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    wb->open = open;
    wb->close = close;
    wb->ctx = ctx;
    set_limits(wb, lim);
    size_t cell = wb->lim.max_cell;
    if (!cell)
        wb->lim.max_cell = (size_t)16 << 20; /* for the token bound while opening */
    if (read_workbook(wb, err) != 0 || read_rels(wb, err) != 0 || default_parts(wb, err) != 0 ||
        xl_styles_read(wb, err) != 0 || xl_sst_read(wb, err) != 0) {
        di_xlsx_close(wb);
        return NULL;
    }
    wb->lim.max_cell = cell;
    return wb;
}

size_t di_xlsx_sheet_count(const di_xlsx *x) {
    return x->nsheets;
}

const char *di_xlsx_sheet_name(const di_xlsx *x, size_t i) {
    return i < x->nsheets ? x->sheets[i].name : NULL;
}

void di_xlsx_close(di_xlsx *x) {
    if (!x)
        return;
    for (size_t i = 0; i < x->nsheets; i++) {
        free(x->sheets[i].name);
        free(x->sheets[i].rid);
        free(x->sheets[i].part);
    }
    free(x->sheets);
    free(x->styles_part);
    free(x->sst_part);
    free(x->xf_class);
    xl_sst_cleanup(&x->sst);
    free(x);
}
