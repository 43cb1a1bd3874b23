/* canon.c - strict scan of an NDJSON line and its canonical JSON (see canon.h).
 *
 * The scan is one pass over the line with an explicit stack (no recursion), so a
 * refused line costs no tree. Numbers are the subtle part: the writer reproduces
 * Python's float repr (shortest round-trip digits, David Gay's mode 0) from the
 * literal's text, without the double when the literal is short enough to decide. */
#include "canon.h"
#include "dsa_ingest/row.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the strict scan ---------------------------------------------------- */

enum { K_OBJ, K_ARR };
enum { ST_VALUE, ST_FIRST_VALUE, ST_KEY, ST_FIRST_KEY, ST_AFTER, ST_DONE };

typedef struct scan {
    di_canon *c;
    const unsigned char *s;
    size_t n, i, depth;
    int st;
    di_canon_fault *f;
} scan;

/* di_canon_column: see canon.h; continuation bytes are not characters. */
size_t di_canon_column(const char *s, size_t pos) {
    size_t col = 1;
    for (size_t k = 0; k < pos; k++)
        col += ((unsigned char)s[k] & 0xC0) != 0x80;
    return col;
}

/* fault fills the refusal as "WHAT at column C: DETAIL" and returns -1. */
static int fault(scan *z, size_t pos, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fault(scan *z, size_t pos, const char *what, const char *fmt, ...) {
    char detail[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    z->f->pos = pos;
    snprintf(z->f->msg, sizeof z->f->msg, "%s at column %zu: %s", what,
             di_canon_column((const char *)z->s, pos), detail);
    return -1;
}

/* skip_ws passes JSON's whitespace (LF cannot occur inside a line); cJSON
 * would also pass any other byte below 0x20, Python does not. */
static size_t skip_ws(const unsigned char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    return i;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* word_plain tells whether 8 string bytes hold no '"', '\\' or byte < 0x20
 * (the haszero bit trick, exact for an "any?" question). */
static inline int word_plain(uint64_t w) {
    uint64_t lt20 = (w - ONES * 0x20) & ~w;
    uint64_t quote = w ^ (ONES * '"');
    uint64_t bslash = w ^ (ONES * '\\');
    return ((lt20 | ((quote - ONES) & ~quote) | ((bslash - ONES) & ~bslash)) & HIGHS) == 0;
}

/* plain_run is the length of the leading run of string bytes that need no look. */
static size_t plain_run(const unsigned char *s, size_t n) {
    size_t i = 0;
    for (uint64_t w; n - i >= 8; i += 8) {
        memcpy(&w, s + i, 8);
        if (!word_plain(w))
            break;
    }
    while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* hex4 reads the four hex digits of a \u escape; -1 if they are not there. */
static long hex4(const unsigned char *s, size_t avail) {
    long v = 0;
    if (avail < 4)
        return -1;
    for (int k = 0; k < 4; k++) {
        int c = s[k], d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* scan_unicode checks a \u escape at s[i]: PostgreSQL's jsonb refuses U+0000,
 * and a surrogate must come as a high-low pair (cJSON needs that too; Python
 * would keep a lone one in a str that UTF-8 cannot encode). */
static int scan_unicode(scan *z, size_t *pi) {
    size_t i = *pi;
    long cp = hex4(z->s + i + 2, z->n - i - 2);
    if (cp < 0)
        return fault(z, i, "malformed JSON", "invalid \\u escape (four hex digits expected)");
    if (cp == 0)
        return fault(z, i, "\\u0000 in a string",
                     "PostgreSQL jsonb cannot store the NUL character");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fault(z, i, "lone surrogate escape",
                     "\\u%04lx is a low surrogate without a high one before it", cp);
    if (cp < 0xD800 || cp > 0xDBFF) {
        *pi = i + 6;
        return 0;
    }
    int esc = z->n - i >= 8 && z->s[i + 6] == '\\' && z->s[i + 7] == 'u';
    long lo = esc ? hex4(z->s + i + 8, z->n - i - 8) : -1;
    if (esc && lo < 0)
        return fault(z, i + 6, "malformed JSON", "invalid \\u escape (four hex digits expected)");
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fault(z, i, "lone surrogate escape",
                     "\\u%04lx is a high surrogate without a low one after it", cp);
    *pi = i + 12;
    return 0;
}

/* scan_escape checks the escape at s[*pi] (a backslash) and steps over it. */
static int scan_escape(scan *z, size_t *pi) {
    size_t i = *pi;
    unsigned char e = i + 1 < z->n ? z->s[i + 1] : 0;
    if (e == 'u')
        return scan_unicode(z, pi);
    if (e && strchr("\"\\/bfnrt", e)) {
        *pi = i + 2;
        return 0;
    }
    if (e > 0x20 && e < 0x7F)
        return fault(z, i, "malformed JSON", "invalid escape '\\%c'", e);
    return fault(z, i, "malformed JSON", "invalid escape");
}

/* scan_string steps over the string opening at s[z->i]. */
static int scan_string(scan *z) {
    const unsigned char *s = z->s;
    size_t open = z->i, i = z->i + 1;
    for (;;) {
        i += plain_run(s + i, z->n - i);
        if (i == z->n)
            return fault(z, open, "malformed JSON", "unterminated string");
        if (s[i] == '"')
            break;
        if (s[i] < 0x20)
            return fault(z, i, "malformed JSON",
                         "control character U+%04X in a string (must be escaped)", s[i]);
        if (scan_escape(z, &i) != 0)
            return -1;
    }
    z->i = i + 1;
    return 0;
}

/* digits steps over a run of decimal digits. */
static size_t digits(const unsigned char *s, size_t n, size_t i) {
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* add_lit records one number literal. */
static int add_lit(di_canon *c, const unsigned char *s, size_t len) {
    if (c->nlit == c->litcap) {
        size_t cap = c->litcap ? 2 * c->litcap : 64;
        di_canon_lit *v = realloc(c->lit, cap * sizeof *v);
        if (!v)
            return -2;
        c->lit = v;
        c->litcap = cap;
    }
    c->lit[c->nlit++] = (di_canon_lit){(const char *)s, len};
    c->nlong += len > DI_CANON_CJSON_NUMBER;
    return 0;
}

/* scan_number steps over -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and
 * records it; cJSON would also take 01, 1. and -.5. */
static int scan_number(scan *z) {
    const unsigned char *s = z->s;
    size_t n = z->n, st = z->i, i = st + (s[st] == '-');
    if (i < n && s[i] == 'I' && n - i >= 8 && memcmp(s + i, "Infinity", 8) == 0)
        return fault(z, st, "malformed JSON", "-Infinity is not JSON");
    if (i == n || s[i] < '0' || s[i] > '9')
        return fault(z, st, "malformed JSON", "a digit must follow '-'");
    if (s[i] == '0' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')
        return fault(z, st, "malformed JSON", "a number cannot start with 0");
    size_t int_end = digits(s, n, i), ndig = int_end - i;
    i = int_end;
    if (i < n && s[i] == '.') {
        if ((i = digits(s, n, i + 1)) == int_end + 1)
            return fault(z, int_end, "malformed JSON", "a digit must follow the decimal point");
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = i + 1 + (i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-'));
        if ((i = digits(s, n, e)) == e)
            return fault(z, e, "malformed JSON", "a digit must follow the exponent mark");
    }
    if (i == int_end && ndig > DI_CANON_MAX_INT_DIGITS)
        return fault(z, st, "integer too long", "%zu digits, more than Python's limit of %d", ndig,
                     DI_CANON_MAX_INT_DIGITS);
    if (z->c->nlit == INT_MAX)
        return fault(z, st, "line too large", "more than %d numbers", INT_MAX);
    z->i = i;
    z->st = ST_AFTER;
    return add_lit(z->c, s + st, i - st);
}

/* scan_word steps over true, false or null. */
static int scan_word(scan *z, const char *w) {
    size_t len = strlen(w);
    if (z->n - z->i < len || memcmp(z->s + z->i, w, len) != 0)
        return -1;
    z->i += len;
    z->st = ST_AFTER;
    return 0;
}

/* open_container pushes an object or an array. */
static int open_container(scan *z, int kind) {
    if (z->depth == DI_CANON_MAX_DEPTH)
        return fault(z, z->i, "malformed JSON", "nested deeper than %d levels", DI_CANON_MAX_DEPTH);
    z->c->stack[z->depth++] = (unsigned char)kind;
    z->i++;
    z->st = kind == K_OBJ ? ST_FIRST_KEY : ST_FIRST_VALUE;
    return 0;
}

/* unexpected refuses the byte at s[i] where a value should start. */
static int unexpected(scan *z) {
    const unsigned char *s = z->s + z->i;
    size_t left = z->n - z->i;
    if (left == 0)
        return fault(z, z->i, "malformed JSON", "a value is missing at the end of the line");
    if (left >= 3 && memcmp(s, "NaN", 3) == 0)
        return fault(z, z->i, "malformed JSON", "NaN is not JSON");
    if (left >= 8 && memcmp(s, "Infinity", 8) == 0)
        return fault(z, z->i, "malformed JSON", "Infinity is not JSON");
    if (left >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        return fault(z, z->i, "malformed JSON", "unexpected byte order mark (U+FEFF)");
    if (s[0] > 0x20 && s[0] < 0x7F)
        return fault(z, z->i, "malformed JSON", "unexpected character '%c'", s[0]);
    if (s[0] < 0x20 || s[0] == 0x7F)
        return fault(z, z->i, "malformed JSON", "unexpected control character U+%04X", s[0]);
    return fault(z, z->i, "malformed JSON", "unexpected character");
}

/* scan_value reads one value, or opens a container. */
static int scan_value(scan *z) {
    if (z->i < z->n) {
        switch (z->s[z->i]) {
        case '{':
            return open_container(z, K_OBJ);
        case '[':
            return open_container(z, K_ARR);
        case '"':
            z->st = ST_AFTER;
            return scan_string(z);
        case 't':
            return scan_word(z, "true") == 0 ? 0 : unexpected(z);
        case 'f':
            return scan_word(z, "false") == 0 ? 0 : unexpected(z);
        case 'n':
            return scan_word(z, "null") == 0 ? 0 : unexpected(z);
        default:
            if (z->s[z->i] == '-' || (z->s[z->i] >= '0' && z->s[z->i] <= '9'))
                return scan_number(z);
        }
    }
    return unexpected(z);
}

/* scan_key reads "key" : and leaves the scan before the member's value. */
static int scan_key(scan *z) {
    if (z->i == z->n || z->s[z->i] != '"')
        return fault(z, z->i, "malformed JSON", "an object key in double quotes was expected");
    if (scan_string(z) != 0)
        return -1;
    z->i = skip_ws(z->s, z->n, z->i);
    if (z->i == z->n || z->s[z->i] != ':')
        return fault(z, z->i, "malformed JSON", "':' was expected after the object key");
    z->i++;
    z->st = ST_VALUE;
    return 0;
}

/* close_or_next handles what follows a value: ',' or the closing bracket. */
static int close_or_next(scan *z) {
    if (z->depth == 0) {
        z->st = ST_DONE;
        return z->i == z->n ? 0 : fault(z, z->i, "malformed JSON", "extra data after the value");
    }
    int obj = z->c->stack[z->depth - 1] == K_OBJ;
    unsigned char c = z->i < z->n ? z->s[z->i] : 0;
    if (c == ',') {
        z->i++;
        z->st = obj ? ST_KEY : ST_VALUE;
    } else if (c == (obj ? '}' : ']')) {
        z->i++;
        z->depth--;
    } else {
        return fault(z, z->i, "malformed JSON",
                     obj ? "',' or '}' was expected after the value"
                         : "',' or ']' was expected after the value");
    }
    return 0;
}

/* closes_empty handles '}' or ']' straight after the opening bracket. */
static int closes_empty(scan *z) {
    unsigned char want = z->st == ST_FIRST_KEY ? '}' : ']';
    if (z->i < z->n && z->s[z->i] == want) {
        z->i++;
        z->depth--;
        z->st = ST_AFTER;
        return 1;
    }
    return 0;
}

/* di_canon_scan: see canon.h. A loop over states, one token or bracket per
 * turn, so deep nesting costs a byte of stack per level, not a C frame. */
int di_canon_scan(di_canon *c, const char *s, size_t n, di_canon_fault *f) {
    scan z = {c, (const unsigned char *)s, n, 0, 0, ST_VALUE, f};
    c->nlit = c->nlong = 0;
    f->pos = 0;
    f->msg[0] = '\0';
    int rc = 0;
    while (rc == 0 && z.st != ST_DONE) {
        z.i = skip_ws(z.s, n, z.i);
        if ((z.st == ST_FIRST_KEY || z.st == ST_FIRST_VALUE) && closes_empty(&z))
            continue;
        if (z.st == ST_KEY || z.st == ST_FIRST_KEY)
            rc = scan_key(&z);
        else if (z.st == ST_AFTER)
            rc = close_or_next(&z);
        else
            rc = scan_value(&z);
    }
    return rc;
}

/* ---- numbers --------------------------------------------------------------- */

/* A decimal number as digits and a point position: 0.D x 10^decpt, D without
 * leading or trailing zeros (Gay's dtoa speaks the same way). */
typedef struct decimal {
    const char *d;
    size_t nd;
    int64_t decpt;
} decimal;

#define EXP_CLAMP ((int64_t)1 << 40) /* past this any literal is 0 or infinite */

/* take_digit keeps a significant digit, or counts a leading zero. */
static void take_digit(char c, char *dig, size_t *k, int64_t *lead) {
    if (*k == 0 && c == '0')
        ++*lead;
    else
        dig[(*k)++] = c;
}

/* split_literal copies a float literal's significant digits to dig (room for
 * len + 32 bytes) and finds its point; *neg tells the sign. The literal is a
 * valid JSON number (the scan saw to it). */
static void split_literal(const char *s, size_t len, char *dig, decimal *x, int *neg) {
    size_t i = 0, k = 0;
    int64_t lead = 0, nint = 0, e = 0;
    *neg = s[0] == '-';
    for (i = (size_t)*neg; i < len && s[i] >= '0' && s[i] <= '9'; i++, nint++)
        take_digit(s[i], dig, &k, &lead);
    if (i < len && s[i] == '.')
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            take_digit(s[i], dig, &k, &lead);
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = ++i < len && s[i] == '-';
        i += i < len && (s[i] == '-' || s[i] == '+');
        for (; i < len; i++)
            e = e < EXP_CLAMP ? e * 10 + (s[i] - '0') : e;
        e = eneg ? -e : e;
    }
    while (k && dig[k - 1] == '0')
        k--;
    *x = (decimal){dig, k, nint - lead + e};
}

/* to_double reads D x 10^(decpt - nd) with strtod. The text has no decimal
 * point, so no locale changes how it reads; d needs 32 spare bytes. */
static double to_double(char *d, size_t nd, int64_t decpt) {
    char *q = d + nd, tmp[24];
    int64_t e = decpt - (int64_t)nd;
    uint64_t u = e < 0 ? (uint64_t)-e : (uint64_t)e;
    size_t k = 0;
    do
        tmp[k++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    *q++ = 'e';
    if (e < 0)
        *q++ = '-';
    while (k)
        *q++ = tmp[--k];
    *q = '\0';
    double r = strtod(d, NULL);
    d[nd] = '\0';
    return r;
}

/* bump adds one unit in the last of p digits (999 -> 100 with decpt + 1). */
static void bump(char *d, int p, int64_t *decpt) {
    int k = p - 1;
    while (k >= 0 && d[k] == '9')
        d[k--] = '0';
    if (k >= 0) {
        d[k]++;
    } else {
        d[0] = '1';
        ++*decpt;
    }
}

/* nearest puts in d the p-digit decimal nearest to v: glibc's printf rounds
 * exactly (any locale's decimal point is skipped). */
static void nearest(double v, int p, char *d, int64_t *decpt) {
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
    const char *q = tmp;
    int k = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9')
            d[k++] = *q;
    *decpt = strtol(q + 1, NULL, 10) + 1;
}

/* reads_back tells whether the nearest p digits d read back as v. Below a
 * power of two the gap is half the gap above, so the nearest may miss while
 * the next one up reads back: Gay's shortest digits take that one (d bumped). */
static int reads_back(double v, char *d, int p, int64_t *decpt) {
    if (to_double(d, (size_t)p, *decpt) == v)
        return 1;
    int e2;
    if (frexp(v, &e2) != 0.5)
        return 0;
    bump(d, p, decpt);
    return to_double(d, (size_t)p, *decpt) == v;
}

/* round_to rounds the 17 nearest digits r (point dp) to p digits: the same as
 * rounding v itself unless the dropped digits are exactly 5, 50...: that
 * midpoint may have been rounded onto, then 0 (ask printf). */
static int round_to(const char *r, int64_t dp, int p, char *d, int64_t *decpt) {
    int k = p;
    if (r[k] == '5') {
        for (k++; k < 17 && r[k] == '0'; k++)
            ;
        if (k == 17)
            return 0;
    }
    memcpy(d, r, (size_t)p);
    *decpt = dp;
    if (r[p] >= '5')
        bump(d, p, decpt);
    return 1;
}

/* shortest finds the fewest digits that read back as v > 0 (Python's repr).
 * A normal double is told apart from every other by 15 digits (DBL_DIG), so
 * when 15 read back the shortest is those without their trailing zeros; else
 * 16 or 17. One printf gives the 17 nearest digits, 15 and 16 are rounded from
 * them. Subnormals have fewer bits: from 1 digit up, printf each time. */
static void shortest(double v, char d[64], decimal *x) {
    char r[64];
    int64_t dp;
    int p = isnormal(v) ? 15 : 1;
    nearest(v, 17, r, &dp);
    for (; p < 17; p++) {
        if (p < 15 || !round_to(r, dp, p, d, &x->decpt))
            nearest(v, p, d, &x->decpt);
        if (reads_back(v, d, p, &x->decpt))
            break;
    }
    if (p == 17) {
        memcpy(d, r, 17);
        x->decpt = dp;
    }
    size_t nd = (size_t)p;
    while (nd > 1 && d[nd - 1] == '0')
        nd--;
    x->d = d;
    x->nd = nd;
}

/* put_repr writes 0.D x 10^decpt as Python's float repr does: positional for
 * exponents -4..15, with at least one digit after the point; else d.ddde+XX. */
static int put_repr(di_buf *out, int neg, const decimal *x) {
    char s[96];
    size_t k = 0, nd = x->nd;
    int64_t e10 = x->decpt - 1;
    if (neg)
        s[k++] = '-';
    if (e10 < -4 || e10 >= 16) {
        s[k++] = x->d[0];
        if (nd > 1) {
            s[k++] = '.';
            memcpy(s + k, x->d + 1, nd - 1);
            k += nd - 1;
        }
        k += (size_t)snprintf(s + k, sizeof s - k, "e%c%02lld", e10 < 0 ? '-' : '+',
                              (long long)(e10 < 0 ? -e10 : e10));
    } else if (x->decpt <= 0) {
        memcpy(s + k, "0.000", (size_t)(2 - x->decpt)); /* decpt >= -3 here */
        k += (size_t)(2 - x->decpt);
        memcpy(s + k, x->d, nd);
        k += nd;
    } else {
        size_t ip = (size_t)x->decpt, have = ip < nd ? ip : nd;
        memcpy(s + k, x->d, have);
        k += have;
        memset(s + k, '0', ip - have); /* 100.0: zeros before the point */
        k += ip - have;
        s[k++] = '.';
        if (ip < nd) {
            memcpy(s + k, x->d + ip, nd - ip);
            k += nd - ip;
        } else {
            s[k++] = '0';
        }
    }
    return di_buf_append(out, s, k);
}

/* put_float writes a float literal as Python writes float(literal). With at
 * most 15 significant digits and a value well inside the normal range, the
 * literal's own digits are the shortest (DBL_DIG): no strtod, no printf. Else
 * the double decides (shortest). */
static int put_float(di_canon *c, const char *lit, size_t len, const double *pv, di_buf *out) {
    char small[128], *dig = small;
    if (len + 32 > sizeof small) {
        di_buf_reset(&c->num);
        if (di_buf_reserve(&c->num, len + 32) != 0)
            return -1;
        dig = c->num.data;
    }
    decimal x;
    int neg;
    split_literal(lit, len, dig, &x, &neg);
    if (x.nd == 0)
        return neg ? di_buf_append(out, "-0.0", 4) : di_buf_append(out, "0.0", 3);
    if (x.nd <= 15 && x.decpt >= -306 && x.decpt <= 308) /* in [1e-307, 1e308) */
        return put_repr(out, neg, &x);
    double v = pv ? fabs(*pv) : to_double(dig, x.nd, x.decpt); /* the sign is in neg */
    if (isinf(v))
        return neg ? di_buf_append(out, "-Infinity", 9) : di_buf_append(out, "Infinity", 8);
    if (v == 0)
        return neg ? di_buf_append(out, "-0.0", 4) : di_buf_append(out, "0.0", 3);
    char d[64];
    if (x.nd > 15 || !isnormal(v))
        shortest(v, d, &x);
    return put_repr(out, neg, &x);
}

/* put_number writes a number literal; pv, when known, is the double it reads as. */
static int put_number(di_canon *c, const char *lit, size_t len, const double *pv, di_buf *out) {
    for (size_t i = 0; i < len; i++)
        if (lit[i] == '.' || lit[i] == 'e' || lit[i] == 'E')
            return put_float(c, lit, len, pv, out);
    if (len == 2 && lit[0] == '-' && lit[1] == '0')
        return di_buf_putc(out, '0');
    return di_buf_append(out, lit, len);
}

/* di_canon_number: see canon.h (the double is read from the literal). */
int di_canon_number(di_canon *c, const char *lit, size_t len, di_buf *out) {
    return put_number(c, lit, len, NULL, out);
}

/* ---- the tree ------------------------------------------------------------- */

/* bind_node numbers the number nodes under v in document order: cJSON links
 * members and elements in the order it read them, as the scan met them. The
 * index goes in valueint (cJSON's int copy, unused); valuedouble is kept. */
static int bind_node(cJSON *v, size_t *k, size_t nlit) {
    if (cJSON_IsNumber(v)) {
        if (*k >= nlit)
            return -1;
        v->valueint = (int)(*k)++;
        return 0;
    }
    for (cJSON *m = v->child; m; m = m->next)
        if (bind_node(m, k, nlit) != 0)
            return -1;
    return 0;
}

/* di_canon_bind: see canon.h. */
int di_canon_bind(di_canon *c, cJSON *root) {
    size_t k = 0;
    if (bind_node(root, &k, c->nlit) != 0 || k != c->nlit)
        return -1;
    return 0;
}

/* cmp_ref orders members by key bytes (a prefix first: Python's str order is
 * code point order, which is UTF-8 byte order), then by position. */
static int cmp_ref(const void *pa, const void *pb) {
    const di_canon_ref *a = pa, *b = pb;
    size_t m = a->len < b->len ? a->len : b->len;
    int r = m ? memcmp(a->key, b->key, m) : 0;
    if (r)
        return r;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* sort_refs sorts members: insertion sort for the small objects that are
 * most of them (no calls through a pointer), qsort past that. */
static void sort_refs(di_canon_ref *r, size_t n) {
    if (n > 16) {
        qsort(r, n, sizeof *r, cmp_ref);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        di_canon_ref t = r[i];
        size_t j = i;
        for (; j > 0 && cmp_ref(&r[j - 1], &t) > 0; j--)
            r[j] = r[j - 1];
        r[j] = t;
    }
}

/* push_refs appends obj's members to the ref stack in document order. */
static size_t push_refs(di_canon *c, const cJSON *obj) {
    size_t first = c->nref;
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (c->nref == c->refcap) {
            size_t cap = c->refcap ? 2 * c->refcap : 64;
            di_canon_ref *r = realloc(c->ref, cap * sizeof *r);
            if (!r) {
                c->nref = first;
                return (size_t)-1;
            }
            c->ref = r;
            c->refcap = cap;
        }
        c->ref[c->nref] = (di_canon_ref){m->string, strlen(m->string), c->nref - first, m};
        c->nref++;
    }
    return first;
}

/* di_canon_members: see canon.h. Sorting by (key, position) puts the last of
 * equal keys at the end of its run, so one pass keeps it. */
size_t di_canon_members(di_canon *c, const cJSON *obj, size_t *first) {
    size_t f = push_refs(c, obj);
    *first = c->nref;
    if (f == (size_t)-1)
        return (size_t)-1;
    di_canon_ref *r = c->ref ? c->ref + f : NULL; /* no member pushed yet: NULL + 0 is UB */
    size_t n = c->nref - f, kept = 0;
    sort_refs(r, n);
    for (size_t j = 0; j < n; j++) {
        if (j + 1 < n && r[j].len == r[j + 1].len && memcmp(r[j].key, r[j + 1].key, r[j].len) == 0)
            continue;
        r[kept++] = r[j];
    }
    c->nref = f + kept;
    *first = f;
    return kept;
}

/* di_canon_pop drops the members pushed since first. */
void di_canon_pop(di_canon *c, size_t first) {
    c->nref = first;
}

static int put_object(di_canon *c, const cJSON *v, di_buf *out);

/* put_array writes [a,b,...]. */
static int put_array(di_canon *c, const cJSON *v, di_buf *out) {
    if (di_buf_putc(out, '[') != 0)
        return -1;
    for (const cJSON *m = v->child; m; m = m->next)
        if ((m != v->child && di_buf_putc(out, ',') != 0) || di_canon_value(c, m, out) != 0)
            return -1;
    return di_buf_putc(out, ']');
}

/* di_canon_value: see canon.h; recursion is bounded by DI_CANON_MAX_DEPTH. */
int di_canon_value(di_canon *c, const cJSON *v, di_buf *out) {
    switch (v->type & 0xFF) {
    case cJSON_False:
        return di_buf_append(out, "false", 5);
    case cJSON_True:
        return di_buf_append(out, "true", 4);
    case cJSON_NULL:
        return di_buf_append(out, "null", 4);
    case cJSON_Number: { /* cJSON's double is strtod's, unless cJSON saw "0" */
        const di_canon_lit *l = &c->lit[v->valueint];
        return put_number(c, l->s, l->len, l->len > DI_CANON_CJSON_NUMBER ? NULL : &v->valuedouble,
                          out);
    }
    case cJSON_String:
        return di_json_append_string(out, v->valuestring, strlen(v->valuestring));
    case cJSON_Array:
        return put_array(c, v, out);
    case cJSON_Object:
        return put_object(c, v, out);
    default:
        return -1;
    }
}

/* put_object writes {"k":v,...} with keys sorted; the ref stack may move while
 * the members are written, so they are found by index. */
static int put_object(di_canon *c, const cJSON *v, di_buf *out) {
    size_t first, n = di_canon_members(c, v, &first);
    int rc = n == (size_t)-1 || di_buf_putc(out, '{') != 0 ? -1 : 0;
    for (size_t j = 0; rc == 0 && j < n; j++) {
        const di_canon_ref *r = &c->ref[first + j];
        const cJSON *m = r->node;
        if ((j && di_buf_putc(out, ',') != 0) || di_json_append_string(out, r->key, r->len) != 0 ||
            di_buf_putc(out, ':') != 0 || di_canon_value(c, m, out) != 0)
            rc = -1;
    }
    if (n != (size_t)-1)
        di_canon_pop(c, first);
    return rc == 0 ? di_buf_putc(out, '}') : -1;
}

/* di_canon_init starts empty: the arrays grow with the largest line seen. */
void di_canon_init(di_canon *c) {
    memset(c, 0, sizeof *c);
    di_buf_init(&c->num, SIZE_MAX / 2);
}

/* di_canon_cleanup frees the scratch; the di_canon can be initialised again. */
void di_canon_cleanup(di_canon *c) {
    free(c->lit);
    free(c->ref);
    di_buf_cleanup(&c->num);
    memset(c, 0, sizeof *c);
}
