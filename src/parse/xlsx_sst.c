/* xlsx_sst.c - the shared-string table: every <si> of xl/sharedStrings.xml,
 * its plain <t> and rich-text runs <r><t> joined, phonetic runs <rPh> left
 * out (as openpyxl reads it), _xHHHH_ escapes decoded. Cells refer to it by
 * index, so it is kept whole: one buffer of NUL-terminated strings and an
 * offset array, both counted against max_shared_bytes. */
#include "xlsx_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct sst_read {
    xl_xml *x;
    xl_sst *s;
    int in_si, in_t, rph;
    size_t start; /* the current item's first byte in s->text */
} sst_read;

/* over_limit: the text plus one offset per string (and the sentinel). */
static int over_limit(const xl_sst *s, size_t more) {
    size_t offs = (s->count + 2) * sizeof *s->off;
    return s->text.len + more + offs > s->max || s->text.len + more < s->text.len;
}

/* too_big stops the read at the limit, naming the setting that raises it. */
static void too_big(sst_read *r) {
    xl_xml_fail(r->x, DI_ERR_INPUT,
                "the shared-string table exceeds the limit of %zu bytes "
                "(IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES)",
                r->s->max);
}

/* reserve_offset makes room for one more offset (and the sentinel). */
static int reserve_offset(xl_sst *s) {
    if (s->count + 1 < s->cap)
        return 0;
    size_t cap = s->cap ? 2 * s->cap : 1024;
    size_t *p = realloc(s->off, cap * sizeof *p);
    if (!p)
        return -1;
    s->off = p;
    s->cap = cap;
    return 0;
}

/* push_offset records where string `count` starts. */
static void push_offset(sst_read *r, size_t at) {
    if (reserve_offset(r->s) != 0) {
        xl_xml_fail(r->x, DI_ERR_INTERNAL, "out of memory");
        return;
    }
    r->s->off[r->s->count++] = at;
}

/* end_item decodes the escapes of the finished <si> and seals it with a NUL. */
static void end_item(sst_read *r) {
    xl_sst *s = r->s;
    r->in_si = 0;
    if (over_limit(s, 1)) {
        too_big(r);
        return;
    }
    if (s->text.len > r->start)
        s->text.len = r->start + xv_unescape(s->text.data + r->start, s->text.len - r->start);
    if (di_buf_putc(&s->text, '\0') != 0) {
        xl_xml_fail(r->x, DI_ERR_INTERNAL, "out of memory");
        return;
    }
    push_offset(r, r->start);
}

/* on_start: an <si> begins a string; its <t> elements hold the text, except
 * inside <rPh> (phonetic guides, not part of the value). */
static void on_start(void *ud, const char *name, const char **atts) {
    sst_read *r = ud;
    (void)atts;
    if (strcmp(name, "si") == 0) {
        r->in_si = 1;
        r->rph = 0;
        r->start = r->s->text.len;
    } else if (r->in_si && strcmp(name, "rPh") == 0) {
        r->rph++;
    } else if (r->in_si && !r->rph && strcmp(name, "t") == 0) {
        r->in_t = 1;
    }
}

/* on_end seals a string at </si>. */
static void on_end(void *ud, const char *name) {
    sst_read *r = ud;
    if (strcmp(name, "si") == 0)
        end_item(r);
    else if (strcmp(name, "rPh") == 0 && r->rph > 0)
        r->rph--;
    else if (strcmp(name, "t") == 0)
        r->in_t = 0;
}

/* on_text appends text of a <t>, within the table's limit. */
static void on_text(void *ud, const char *txt, size_t len) {
    sst_read *r = ud;
    if (!r->in_t || !r->in_si || r->rph)
        return;
    if (over_limit(r->s, len)) {
        too_big(r);
        return;
    }
    if (di_buf_append(&r->s->text, txt, len) != 0)
        xl_xml_fail(r->x, DI_ERR_INTERNAL, "out of memory");
}

/* xl_sst_read: see xlsx_impl.h. The sentinel off[count] = text.len lets a
 * string's length be read off its neighbour's start. */
int xl_sst_read(di_xlsx *wb, di_error *err) {
    static const xl_handlers h = {on_start, on_end, on_text};
    xl_sst *s = &wb->sst;
    s->max = wb->lim.max_shared_bytes;
    di_buf_init(&s->text, (size_t)-1 / 2);
    xl_xml x;
    sst_read r = {.x = &x, .s = s};
    int rc = xl_xml_open(&x, wb, wb->sst_part, &h, &r, err);
    if (rc == 1 && (rc = xl_xml_run(&x)) != 0)
        *err = x.err;
    xl_xml_close(&x);
    if (rc < 0)
        return -1;
    if (reserve_offset(s) != 0)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    s->off[s->count] = s->text.len; /* the sentinel: not a string */
    return 0;
}

/* xl_sst_cleanup frees the table (di_xlsx_close). */
void xl_sst_cleanup(xl_sst *s) {
    di_buf_cleanup(&s->text);
    free(s->off);
    s->off = NULL;
    s->count = s->cap = 0;
}
