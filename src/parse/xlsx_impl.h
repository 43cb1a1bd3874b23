/* xlsx_impl.h - private to the xlsx_*.c files: the expat driver every part is
 * streamed through, the workbook's shared tables (number-format classes of the
 * cell styles, shared strings) and the value conversions (numbers as Python
 * writes them, Excel serials as ISO 8601, _xHHHH_ escapes). xlsx.h is the
 * contract the rest of the library sees. */
#ifndef DI_XLSX_IMPL_H
#define DI_XLSX_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <expat.h>

#include "dsa_ingest/buf.h"
#include "xlsx.h"

/* ---- the expat driver (xlsx_xml.c) ----------------------------------------- */

/* Handlers get element and attribute names without their namespace prefix
 * ("x:c" -> "c", "r:id" -> "id"): workbooks are written with and without one. */
typedef struct xl_handlers {
    void (*start)(void *user, const char *name, const char **atts);
    void (*end)(void *user, const char *name);
    void (*text)(void *user, const char *s, size_t len);
} xl_handlers;

typedef struct xl_xml {
    XML_Parser xp;
    di_xlsx *wb;
    di_read_fn read;
    void *part;       /* the part's handle from the open callback */
    const char *name; /* the part's path, for messages (borrowed) */
    xl_handlers h;
    void *user;
    size_t depth, max_depth, max_token;
    unsigned long events, events_seen; /* handler calls: progress of the tokenizer */
    size_t stall;                      /* bytes fed since the last handler call */
    int opened, suspended, final, finished, failed;
    di_error err; /* set when failed: a handler's, the read's, or expat's complaint */
} xl_xml;

/* xl_xml_open opens part `name` and sets up a parser over it: 1 ready, 0 the
 * workbook has no such part, -1 with err set. */
int xl_xml_open(xl_xml *x, di_xlsx *wb, const char *name, const xl_handlers *h, void *user,
                di_error *err);
/* xl_xml_step feeds one chunk (or resumes after a suspension): 1 progress, 0
 * the part is done, -1 failed (x->err). */
int xl_xml_step(xl_xml *x);
/* xl_xml_run parses the whole part: 0 or -1 (x->err). */
int xl_xml_run(xl_xml *x);
/* xl_xml_fail stops the parse for good from inside a handler (first error wins). */
void xl_xml_fail(xl_xml *x, di_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* xl_xml_suspend pauses the parse from inside a handler: xl_xml_step returns 1. */
void xl_xml_suspend(xl_xml *x);
/* xl_xml_offset is the byte offset of the event being handled; xl_xml_event_end
 * the offset just past it. */
int64_t xl_xml_offset(const xl_xml *x);
int64_t xl_xml_event_end(const xl_xml *x);
void xl_xml_close(xl_xml *x); /* accepts a zeroed x */

/* xl_attr finds attribute `name` (prefix ignored) in expat's list; NULL if absent. */
const char *xl_attr(const char **atts, const char *name);

/* ---- the workbook (xlsx.c) ------------------------------------------------- */

/* Number-format classes of a cell style: which parts of a date/time it shows. */
enum { XL_FMT_NUMBER = 0, XL_FMT_DATE = 1, XL_FMT_TIME = 2, XL_FMT_DATETIME = 3 };

typedef struct xl_sheet {
    char *name; /* the table key */
    char *rid;  /* r:id, until resolved */
    char *part; /* e.g. "xl/worksheets/sheet1.xml" */
} xl_sheet;

typedef struct xl_sst {
    di_buf text; /* every string, each NUL-terminated, end to end */
    size_t *off; /* off[i]: string i's start in text; off[count] = text.len */
    size_t count, cap;
    size_t max; /* bytes of text + offsets allowed (max_shared_bytes) */
} xl_sst;

struct di_xlsx {
    di_part_open_fn open;
    di_part_close_fn close;
    void *ctx;
    di_xlsx_limits lim;
    xl_sheet *sheets;
    size_t nsheets;
    int date1904;
    char *styles_part, *sst_part; /* from the relationships, else the usual names */
    unsigned char *xf_class;      /* XL_FMT_* per cellXfs index */
    size_t nxf;
    xl_sst sst;
};

/* xl_styles_read fills wb->xf_class from the styles part (absent: no dates). */
int xl_styles_read(di_xlsx *wb, di_error *err);
/* xl_format_class classifies a number-format code (exposed for the tests). */
int xl_format_class(const char *code);

/* xl_sst_read loads the shared strings (absent: an empty table). */
int xl_sst_read(di_xlsx *wb, di_error *err);
void xl_sst_cleanup(xl_sst *s);

/* ---- values (xlsx_value.c) ------------------------------------------------- */

enum { XV_OK = 0, XV_BAD = -1, XV_RANGE = -2 };
#define XV_FLOAT_MAX 40 /* room for any float's canonical text */

/* xv_number turns the number literal s[0..*n) (NUL-terminated, writable) into
 * the JSON Python writes for what openpyxl reads: an integer literal is
 * rewritten in place (*out = s), a float is written to fbuf (*out = fbuf).
 * val, when not NULL, receives the value. XV_BAD: not a number; XV_RANGE: a
 * float past the double range, or an integer of more than 4300 digits. */
int xv_number(char *s, size_t *n, char fbuf[XV_FLOAT_MAX], const char **out, double *val);
/* xv_float_repr writes Python's repr of a finite double; returns the length. */
size_t xv_float_repr(double d, char out[XV_FLOAT_MAX]);
/* xv_date writes serial v in the style's class as ISO 8601; -1 when the date
 * falls outside years 1..9999 (the cell stays a number). */
int xv_date(double v, int cls, int date1904, char out[XV_FLOAT_MAX]);
/* xv_unescape decodes ST_Xstring's _xHHHH_ escapes in place; the new length. */
size_t xv_unescape(char *s, size_t n);
/* xv_cell_ref parses "B3"'s column (1-based); 0 when it is not a reference. */
size_t xv_cell_col(const char *ref);
/* xv_col_name writes column col's letters ("A", "XFD"). */
void xv_col_name(size_t col, char out[8]);

#endif
