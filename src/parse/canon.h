/* canon.h - private to src/parse/: one NDJSON line checked strictly and its
 * values written as canonical JSON (DESIGN §2, row identity), byte-identical to
 * Python's json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
 *
 * cJSON builds the tree; this module does the two things cJSON cannot:
 *  - di_canon_scan refuses what cJSON lets through but Python's json.loads does
 *    not (01, 1., raw control characters, stray bytes taken as whitespace), plus
 *    what PostgreSQL's jsonb cannot store (\u0000, lone surrogates), and records
 *    the text of every number literal in document order;
 *  - di_canon_bind gives each number node of the tree its literal (cJSON keeps only
 *    a double, Python keeps 1 and 1.0 apart and integers exact), and
 *    di_canon_value writes a value back with keys sorted and duplicates resolved.
 * Ownership: a di_canon is one parser's scratch, reused line after line; the
 * literals it records point into the scanned line, which must outlive the writes. */
#ifndef DI_PARSE_CANON_H
#define DI_PARSE_CANON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include "dsa_ingest/buf.h"
#include "dsa_ingest/error.h"

#define DI_CANON_MAX_DEPTH      1000 /* nested objects and arrays, the top one included (cJSON's) */
#define DI_CANON_MAX_INT_DIGITS 4300 /* Python's int() refuses longer integer literals */
#define DI_CANON_CJSON_NUMBER   63   /* some cJSON builds cannot parse longer number literals */

typedef struct di_canon_lit {
    const char *s; /* into the scanned line */
    size_t len;
} di_canon_lit;

/* One member of an object, as di_canon_members hands them out (sorted, unique). */
typedef struct di_canon_ref {
    const char *key; /* cJSON's copy of the key, NUL-terminated */
    size_t len;
    size_t idx; /* position in the object: the last of equal keys wins */
    const cJSON *node;
} di_canon_ref;

typedef struct di_canon {
    di_canon_lit *lit; /* the line's number literals, in document order */
    size_t nlit, litcap;
    size_t nlong;                            /* literals longer than DI_CANON_CJSON_NUMBER */
    unsigned char stack[DI_CANON_MAX_DEPTH]; /* the scan's open containers */
    di_canon_ref *ref;                       /* a stack of sorted member lists */
    size_t nref, refcap;
    di_buf num; /* digits of a long float literal, for strtod */
} di_canon;

/* Where and why a line was refused: msg is the full reason, with the column. */
typedef struct di_canon_fault {
    size_t pos; /* byte offset in the line */
    char msg[256];
} di_canon_fault;

void di_canon_init(di_canon *c);
void di_canon_cleanup(di_canon *c); /* accepts a zeroed or cleaned-up di_canon */

/* di_canon_scan checks that s[0..n) is one JSON value as Python's json.loads
 * reads it (strict), and records its number literals. 0 ok; -1 refused (*f
 * filled); -2 out of memory. */
DI_MUSTCHECK int di_canon_scan(di_canon *c, const char *s, size_t n, di_canon_fault *f);

/* di_canon_column is the 1-based character column of byte pos in a valid
 * UTF-8 line, as an editor shows it (errors name it). */
size_t di_canon_column(const char *s, size_t pos);

/* di_canon_bind numbers the tree's number nodes in document order: each
 * node's valueint becomes the index of its literal (its valuedouble, what
 * strtod made of the literal, saves the writer a strtod). -1 when the tree
 * does not match the scan. */
DI_MUSTCHECK int di_canon_bind(di_canon *c, cJSON *root);

/* di_canon_members pushes obj's members, sorted by key bytes with repeated keys
 * resolved to the last, on c's ref stack: they are c->ref[*first .. *first + n).
 * Returns n, or (size_t)-1 out of memory. di_canon_pop(c, *first) drops them. */
size_t di_canon_members(di_canon *c, const cJSON *obj, size_t *first);
void di_canon_pop(di_canon *c, size_t first);

/* di_canon_value appends the canonical text of v (bound by di_canon_bind). */
DI_MUSTCHECK int di_canon_value(di_canon *c, const cJSON *v, di_buf *out);

/* di_canon_number appends the canonical text of one valid JSON number literal:
 * an integer as written ("-0" -> "0"), a float as Python's repr ("1e2" ->
 * "100.0", "1E-7" -> "1e-07"), an overflow as Infinity or -Infinity. */
DI_MUSTCHECK int di_canon_number(di_canon *c, const char *lit, size_t len, di_buf *out);

#endif
