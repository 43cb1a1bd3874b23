/* xlsx_styles.c - which cell styles show a number as a date or a time.
 *
 * A cell's s="N" indexes styles.xml's <cellXfs>; each <xf> names a number
 * format, either built in (ids 14-22 and 45-47 are dates and times) or
 * defined in <numFmts> by a format code, which is scanned for date and time
 * tokens the way Excel reads it. Only one byte per style is kept. */
#include "xlsx_impl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_STYLES ((size_t)1 << 20) /* Excel itself stops at 64000 */

typedef struct custom_fmt {
    uint32_t id;
    uint32_t seq; /* definition order: a later definition wins */
    unsigned char cls;
} custom_fmt;

typedef struct styles_read {
    xl_xml *x;
    int in_numfmts, in_cellxfs;
    custom_fmt *fmts;
    size_t nfmts, fcap;
    uint32_t *xf_fmt; /* numFmtId per cellXfs entry, classified at the end */
    size_t nxf, xcap;
} styles_read;

/* elapsed tells "[h]", "[mm]", "[ss]" (elapsed time) from other brackets:
 * colours, conditions and locales, which are not tokens. */
static int elapsed(const char *a, const char *e) {
    char c = (char)(*a | 0x20);
    if (a == e || (c != 'h' && c != 'm' && c != 's'))
        return 0;
    for (const char *p = a; p < e; p++)
        if ((char)(*p | 0x20) != c)
            return 0;
    return 1;
}

/* xl_format_class scans the code's first section for tokens: d and y are
 * date parts, h and s (and elapsed brackets) time parts; m is minutes beside
 * h or s and otherwise a month. Quoted text, \x, _x, *x, AM/PM and A/P are
 * not tokens. */
int xl_format_class(const char *f) {
    int date = 0, time = 0, m = 0;
    for (const char *p = f; *p && *p != ';'; p++) {
        const char *e;
        if (*p == '"') {
            if (!(p = strchr(p + 1, '"')))
                break;
        } else if (*p == '\\' || *p == '_' || *p == '*') {
            if (!*++p)
                break;
        } else if (*p == '[') {
            if (!(e = strchr(p, ']')))
                break;
            time |= elapsed(p + 1, e);
            p = e;
        } else if (strncasecmp(p, "AM/PM", 5) == 0) {
            p += 4;
        } else if (strncasecmp(p, "A/P", 3) == 0) {
            p += 2;
        } else {
            char c = (char)(*p | 0x20);
            date |= c == 'd' || c == 'y';
            time |= c == 'h' || c == 's';
            m |= c == 'm';
        }
    }
    if (m && !date && !time)
        date = 1;
    return (date ? XL_FMT_DATE : 0) | (time ? XL_FMT_TIME : 0);
}

/* builtin_class: the built-in formats that show dates and times. */
static int builtin_class(uint32_t id) {
    if (id >= 14 && id <= 17)
        return XL_FMT_DATE;
    if ((id >= 18 && id <= 21) || (id >= 45 && id <= 47))
        return XL_FMT_TIME;
    return id == 22 ? XL_FMT_DATETIME : XL_FMT_NUMBER;
}

/* parse_id reads a numFmtId; absent or odd ids are 0 (General). */
static uint32_t parse_id(const char *s) {
    char *end;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    return s && end != s && v <= UINT32_MAX ? (uint32_t)v : 0;
}

/* grow doubles an array when full, refusing to pass MAX_STYLES entries. */
static int grow(styles_read *r, void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap)
        return 0;
    if (n >= MAX_STYLES) {
        xl_xml_fail(r->x, DI_ERR_INPUT, "%s has more than %zu styles", r->x->name, MAX_STYLES);
        return -1;
    }
    size_t ncap = *cap ? 2 * *cap : 64;
    void *p = realloc(*arr, ncap * elem);
    if (!p) {
        xl_xml_fail(r->x, DI_ERR_INTERNAL, "out of memory");
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

/* on_start keeps the <numFmt>s of <numFmts> (not those of <dxfs>) and the
 * numFmtId of each <xf> of <cellXfs> (not of <cellStyleXfs>). */
static void on_start(void *ud, const char *name, const char **atts) {
    styles_read *r = ud;
    if (strcmp(name, "numFmts") == 0) {
        r->in_numfmts = 1;
    } else if (strcmp(name, "cellXfs") == 0) {
        r->in_cellxfs = 1;
    } else if (r->in_numfmts && strcmp(name, "numFmt") == 0) {
        const char *code = xl_attr(atts, "formatCode");
        if (grow(r, (void **)&r->fmts, &r->fcap, r->nfmts, sizeof *r->fmts) != 0)
            return;
        r->fmts[r->nfmts] = (custom_fmt){parse_id(xl_attr(atts, "numFmtId")), (uint32_t)r->nfmts,
                                         (unsigned char)(code ? xl_format_class(code) : 0)};
        r->nfmts++;
    } else if (r->in_cellxfs && strcmp(name, "xf") == 0) {
        if (grow(r, (void **)&r->xf_fmt, &r->xcap, r->nxf, sizeof *r->xf_fmt) == 0)
            r->xf_fmt[r->nxf++] = parse_id(xl_attr(atts, "numFmtId"));
    }
}

/* on_end leaves <numFmts> and <cellXfs>. */
static void on_end(void *ud, const char *name) {
    styles_read *r = ud;
    if (strcmp(name, "numFmts") == 0)
        r->in_numfmts = 0;
    else if (strcmp(name, "cellXfs") == 0)
        r->in_cellxfs = 0;
}

/* cmp_fmt orders by id, the latest definition of an id first. */
static int cmp_fmt(const void *a, const void *b) {
    const custom_fmt *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->seq > y->seq ? -1 : x->seq < y->seq;
}

/* class_of: a custom definition wins over the built-in meaning of its id. */
static int class_of(const styles_read *r, uint32_t id) {
    size_t lo = 0, hi = r->nfmts;
    while (lo < hi) { /* the first entry with this id: the latest definition */
        size_t mid = lo + (hi - lo) / 2;
        if (r->fmts[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->nfmts && r->fmts[lo].id == id)
        return r->fmts[lo].cls;
    return builtin_class(id);
}

/* classify turns the numFmtIds into one class byte per style. */
static int classify(di_xlsx *wb, styles_read *r, di_error *err) {
    if (r->nfmts)
        qsort(r->fmts, r->nfmts, sizeof *r->fmts, cmp_fmt);
    wb->xf_class = malloc(r->nxf ? r->nxf : 1);
    if (!wb->xf_class)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < r->nxf; i++)
        wb->xf_class[i] = (unsigned char)class_of(r, r->xf_fmt[i]);
    wb->nxf = r->nxf;
    return 0;
}

/* xl_styles_read: see xlsx_impl.h. */
int xl_styles_read(di_xlsx *wb, di_error *err) {
    static const xl_handlers h = {on_start, on_end, NULL};
    xl_xml x;
    styles_read r = {.x = &x};
    int rc = xl_xml_open(&x, wb, wb->styles_part, &h, &r, err);
    if (rc == 1) {
        rc = xl_xml_run(&x);
        if (rc != 0)
            *err = x.err;
        else
            rc = classify(wb, &r, err);
    }
    xl_xml_close(&x);
    free(r.fmts);
    free(r.xf_fmt);
    return rc < 0 ? -1 : 0;
}
