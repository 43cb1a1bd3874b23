/* xlsx_value.c - a cell's text becomes the JSON the reference reader would
 * write: openpyxl reads a number literal as int when it has no '.', 'e' or
 * 'E', else as float, and Python's json.dumps writes an int as its digits and
 * a float as repr() (the shortest text that reads back to the same double).
 * Excel serials in a date style become ISO 8601; _xHHHH_ escapes are decoded.
 * The C locale is assumed for strtod and snprintf (the library never sets one). */
#include "xlsx_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIGITS     17 /* a double never needs more significant digits */
#define SAFE_DIGITS    15 /* DBL_DIG: every decimal this short survives a double */
#define SAFE_EXP       290
#define MAX_INT_DIGITS 4300 /* Python's int() refuses longer literals (leading zeros count) */
#define MS_PER_DAY     86400000LL
#define DAY_1970       25569 /* 1970-01-01 in days after 1899-12-30 */
#define DAYS_1904      1462  /* the 1904 date system's epoch, 1904-01-01 */
#define LEAP_BUG_END   60    /* Excel's fake 1900-02-29 */

/* is_ws: the blanks int() and float() strip (XML's whitespace). */
static int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* is_digit: ASCII only, whatever the locale. */
static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* ---- integers --------------------------------------------------------------- */

/* int_text rewrites an integer literal as Python's str(int(s)): no '+', no
 * leading zeros, "-0" is "0". Digits only, at most 4300 of them: int() would
 * refuse anything else (XV_RANGE for the length). */
static int int_text(char *s, size_t a, size_t b, size_t *n) {
    int neg = 0;
    if (a < b && (s[a] == '+' || s[a] == '-'))
        neg = s[a++] == '-';
    if (a == b)
        return XV_BAD;
    for (size_t i = a; i < b; i++)
        if (!is_digit(s[i]))
            return XV_BAD;
    if (b - a > MAX_INT_DIGITS)
        return XV_RANGE;
    while (a + 1 < b && s[a] == '0')
        a++;
    if (b - a == 1 && s[a] == '0')
        neg = 0;
    size_t k = 0;
    if (neg)
        s[k++] = '-';
    memmove(s + k, s + a, b - a);
    k += b - a;
    s[k] = '\0';
    *n = k;
    return XV_OK;
}

/* ---- floats ----------------------------------------------------------------- */

/* A decimal as repr() sees it: value = 0.D x 10^decpt, D without trailing zeros. */
typedef struct decimal {
    int neg;
    char d[MAX_DIGITS + 1];
    int nd;   /* significant digits kept (0: the value is zero) */
    int more; /* significant digits past MAX_DIGITS exist */
    long decpt;
} decimal;

/* repr_text writes Python's repr() of a decimal: positional when the exponent
 * is in [-4, 16), else d.ddde+XX; a positional float always shows a '.'. */
static size_t repr_text(const decimal *x, char *out) {
    size_t k = 0;
    if (x->neg)
        out[k++] = '-';
    if (x->nd == 0)
        return k + (size_t)snprintf(out + k, 8, "0.0");
    long dp = x->decpt;
    int nd = x->nd;
    if (dp <= -4 || dp > 16) {
        out[k++] = x->d[0];
        if (nd > 1) {
            out[k++] = '.';
            memcpy(out + k, x->d + 1, (size_t)nd - 1);
            k += (size_t)nd - 1;
        }
        return k + (size_t)snprintf(out + k, 8, "e%c%02ld", dp - 1 < 0 ? '-' : '+', labs(dp - 1));
    }
    if (dp <= 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (long i = 0; i < -dp; i++)
            out[k++] = '0';
        memcpy(out + k, x->d, (size_t)nd);
        return k + (size_t)nd;
    }
    for (long i = 0; i < dp; i++)
        out[k++] = i < nd ? x->d[i] : '0';
    out[k++] = '.';
    if (dp >= nd)
        out[k++] = '0';
    for (long i = dp; i < nd; i++)
        out[k++] = x->d[i];
    return k;
}

/* scan_float reads Python float() syntax: [sign] (digits [. [digits]] | .
 * digits) [(e|E) [sign] digits], keeping up to 17 significant digits. */
static int scan_float(const char *s, size_t a, size_t b, decimal *x) {
    memset(x, 0, sizeof *x);
    if (a < b && (s[a] == '+' || s[a] == '-'))
        x->neg = s[a++] == '-';
    long pos = 0, first = -1, intdigits = -1;
    int zeros = 0, mant = 0;
    for (; a < b && (is_digit(s[a]) || (s[a] == '.' && intdigits < 0)); a++) {
        if (s[a] == '.') {
            intdigits = pos;
            continue;
        }
        mant = 1;
        if (s[a] == '0') {
            zeros += first >= 0; /* trailing zeros wait for a later non-zero */
        } else {
            if (first < 0)
                first = pos;
            for (; zeros > 0; zeros--)
                x->nd < MAX_DIGITS ? (void)(x->d[x->nd++] = '0') : (void)(x->more = 1);
            x->nd < MAX_DIGITS ? (void)(x->d[x->nd++] = s[a]) : (void)(x->more = 1);
        }
        pos++;
    }
    if (!mant)
        return XV_BAD;
    long e = 0;
    if (a < b && (s[a] == 'e' || s[a] == 'E')) {
        int eneg = 0;
        if (++a < b && (s[a] == '+' || s[a] == '-'))
            eneg = s[a++] == '-';
        if (a == b)
            return XV_BAD;
        for (; a < b && is_digit(s[a]); a++)
            e = e < 100000 ? e * 10 + (s[a] - '0') : e;
        e = eneg ? -e : e;
    }
    if (a != b)
        return XV_BAD;
    if (intdigits < 0)
        intdigits = pos;
    x->decpt = first < 0 ? 0 : intdigits - first + e;
    return XV_OK;
}

/* ---- the shortest digits of a double ------------------------------------------
 * repr() writes the fewest significant digits that read back as the same
 * double and, among those, the ones closest to it. With d = mant x 2^e, the
 * decimals that read back as d are those inside d's rounding interval: half
 * a unit in the last place either side (a quarter below when mant is a power
 * of two), ends included when mant is even (strtod rounds half to even).
 * For 1e-13 <= |d| < 1e37 everything fits 128-bit integers: W = d x 10^s
 * with 17 integer digits, exactly, as n / m; for each length k the two
 * k-digit neighbours of W are tested against the interval. Elsewhere printf
 * finds the digits (slower, but exact too). */

typedef unsigned __int128 u128;

static const uint64_t k_pow10[20] = {1ULL,
                                     10ULL,
                                     100ULL,
                                     1000ULL,
                                     10000ULL,
                                     100000ULL,
                                     1000000ULL,
                                     10000000ULL,
                                     100000000ULL,
                                     1000000000ULL,
                                     10000000000ULL,
                                     100000000000ULL,
                                     1000000000000ULL,
                                     10000000000000ULL,
                                     100000000000000ULL,
                                     1000000000000000ULL,
                                     10000000000000000ULL,
                                     100000000000000000ULL,
                                     1000000000000000000ULL,
                                     10000000000000000000ULL};

/* W = n / m exactly; gh and gl are the interval's half-widths above and below, over m. */
typedef struct scaled {
    u128 n, m, gh, gl;
} scaled;

/* pow5 is 5^s, s <= 31 (fits 2^73). */
static u128 pow5(int s) {
    u128 r = 1;
    for (; s >= 13; s -= 13)
        r *= 1220703125ULL; /* 5^13 */
    static const uint32_t small[13] = {1,     5,      25,      125,     625,      3125,     15625,
                                       78125, 390625, 1953125, 9765625, 48828125, 244140625};
    return r * small[s];
}

/* scale writes d x 10^s = mant x 2^e x 10^s as n / m, times 4 so that the
 * quarter-unit gap is whole; -1 when a product would not fit. */
static int scale(uint64_t mant, int e, int s, int lower_half, scaled *w) {
    if (s >= 0) {
        if (s > 31)
            return -1;
        u128 f5 = pow5(s), a = (u128)mant * f5; /* < 2^53 x 2^72 */
        int b = e + s;
        if (b >= 0 && (b > 12 || a > ((~(u128)0) >> (b + 3))))
            return -1;
        if (b < -68)
            return -1;
        w->n = b >= 0 ? a << (b + 2) : a << 2;
        w->m = b >= 0 ? 4 : (u128)1 << (2 - b);
        w->gh = b >= 0 ? f5 << (b + 1) : f5 << 1;
        w->gl = lower_half ? w->gh >> 1 : w->gh;
        return 0;
    }
    if (-s > 20 || e < 0 || e > 72)
        return -1;
    w->n = (u128)mant << (e + 2);
    w->m = (u128)k_pow10[-s > 19 ? 19 : -s] * (-s > 19 ? 10 : 1) * 4;
    w->gh = (u128)1 << (e + 1);
    w->gl = lower_half ? w->gh >> 1 : w->gh;
    return 0;
}

/* set_digits stores D x 10^exp10 as digits without trailing zeros. */
static void set_digits(decimal *x, uint64_t D, long exp10) {
    char t[24];
    int n = 0;
    for (; D; D /= 10)
        t[n++] = (char)('0' + D % 10);
    x->decpt = n + exp10;
    int lo = 0;
    while (lo < n && t[lo] == '0')
        lo++;
    x->nd = 0;
    for (int i = n - 1; i >= lo && x->nd < MAX_DIGITS; i--)
        x->d[x->nd++] = t[i];
}

/* exact_shortest: see above. 0 done, -1 out of its range. */
static int exact_shortest(double d, decimal *x) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    int be = (int)(bits >> 52 & 0x7FF);
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1), mant = frac | (uint64_t)1 << 52, q = 0;
    if (be == 0 || be == 0x7FF)
        return -1;
    int e = be - 1075, lower_half = frac == 0 && be > 1, even = (mant & 1) == 0;
    int P = (int)floor(log10(fabs(d))), tries = 0;
    scaled w;
    u128 r = 0;
    for (;; tries++) { /* log10 may be one off: W must have 17 integer digits */
        if (tries == 3 || scale(mant, e, 16 - P, lower_half, &w) != 0)
            return -1;
        u128 Q = w.n / w.m;
        if (Q >= k_pow10[17])
            P++;
        else if (Q < k_pow10[16])
            P--;
        else {
            q = (uint64_t)Q;
            r = w.n % w.m;
            break;
        }
    }
    x->neg = (int)(bits >> 63);
    for (int k = 1; k <= MAX_DIGITS; k++) {
        uint64_t p = k_pow10[MAX_DIGITS - k], dk = q / p;
        u128 below = (u128)(q % p) * w.m + r, pm = (u128)p * w.m; /* W - dk p, p: over m */
        int lo = below < w.gl || (below == w.gl && even);
        int hi = below != 0 && (pm - below < w.gh || (pm - below == w.gh && even));
        if (!lo && !hi)
            continue;
        if (lo && hi) /* both read back: the closer one, ties to an even digit */
            hi = 2 * below > pm || (2 * below == pm && (dk & 1));
        set_digits(x, dk + (uint64_t)hi, (long)(MAX_DIGITS - k) - (16 - P));
        return 0;
    }
    return -1;
}

/* from_printf reads "%.*e" output back into a decimal. */
static void from_printf(const char *t, decimal *x) {
    memset(x, 0, sizeof *x);
    if (*t == '-')
        x->neg = 1, t++;
    for (; *t && *t != 'e'; t++)
        if (is_digit(*t))
            x->d[x->nd++] = *t;
    x->decpt = strtol(t + 1, NULL, 10) + 1;
    while (x->nd > 0 && x->d[x->nd - 1] == '0')
        x->nd--;
}

/* round_up adds one unit in the last of the p + 1 digits of t ("d.ddde+X"):
 * the k-digit neighbour above, for the wider upper gap of a power of two. */
static void round_up(const char *t, int p, char *out, size_t cap) {
    decimal x;
    memset(&x, 0, sizeof x);
    const char *u = t + (*t == '-');
    for (; *u && *u != 'e'; u++)
        if (is_digit(*u))
            x.d[x.nd++] = *u;
    long exp10 = strtol(u + 1, NULL, 10);
    int i = p;
    while (i >= 0 && x.d[i] == '9')
        x.d[i--] = '0';
    if (i >= 0) {
        x.d[i]++;
    } else {
        x.d[0] = '1';
        exp10++;
    }
    snprintf(out, cap, "%s%c.%.*se%ld", *t == '-' ? "-" : "", x.d[0], p, x.d + 1, exp10);
}

/* printf_shortest tries 1..17 correctly rounded digits until one reads back. */
static void printf_shortest(double d, decimal *x) {
    char t[XV_FLOAT_MAX], up[XV_FLOAT_MAX];
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    int power2 = (bits & (((uint64_t)1 << 52) - 1)) == 0 && (bits >> 52 & 0x7FF) > 1;
    for (int p = 0; p < MAX_DIGITS - 1; p++) {
        snprintf(t, sizeof t, "%.*e", p, d);
        double back = strtod(t, NULL);
        if (back == d) {
            from_printf(t, x);
            return;
        }
        if (power2 && fabs(back) < fabs(d)) {
            round_up(t, p, up, sizeof up);
            if (strtod(up, NULL) == d) {
                from_printf(up, x);
                return;
            }
        }
    }
    snprintf(t, sizeof t, "%.*e", MAX_DIGITS - 1, d);
    from_printf(t, x);
}

/* shortest: repr()'s digits of a finite, non-zero d. */
static void shortest(double d, decimal *x) {
    if (exact_shortest(d, x) != 0)
        printf_shortest(d, x);
}

/* xv_float_repr: see xlsx_impl.h. */
size_t xv_float_repr(double d, char out[XV_FLOAT_MAX]) {
    decimal x;
    if (d == 0) {
        memset(&x, 0, sizeof x);
        x.neg = signbit(d) != 0;
    } else {
        shortest(d, &x);
    }
    size_t k = repr_text(&x, out);
    out[k] = '\0';
    return k;
}

/* float_text: a literal with at most 15 significant digits is already the
 * shortest text of its double (the fast path: no conversion at all). */
static int float_text(const char *s, size_t a, size_t b, char *fbuf, double *val) {
    decimal x;
    if (scan_float(s, a, b, &x) != XV_OK)
        return XV_BAD;
    double d = 0;
    int fast = x.nd == 0 || (!x.more && x.nd <= SAFE_DIGITS && labs(x.decpt) < SAFE_EXP);
    if (!fast || val) {
        d = strtod(s + a, NULL);
        if (!isfinite(d))
            return XV_RANGE;
    }
    if (val)
        *val = d;
    if (!fast && d == 0) { /* underflow: repr(float("1e-400")) is 0.0 */
        memset(x.d, 0, sizeof x.d);
        x.nd = 0;
    } else if (!fast) {
        shortest(d, &x);
    }
    fbuf[repr_text(&x, fbuf)] = '\0';
    return XV_OK;
}

/* xv_number: see xlsx_impl.h. int() and float() allow surrounding blanks. */
int xv_number(char *s, size_t *n, char fbuf[XV_FLOAT_MAX], const char **out, double *val) {
    size_t a = 0, b = *n;
    while (a < b && is_ws(s[a]))
        a++;
    while (b > a && is_ws(s[b - 1]))
        b--;
    int is_float = 0;
    for (size_t i = a; i < b && !is_float; i++)
        is_float = s[i] == '.' || s[i] == 'e' || s[i] == 'E';
    if (is_float) {
        *out = fbuf;
        return float_text(s, a, b, fbuf, val);
    }
    if (val)
        *val = strtod(s + a, NULL); /* may be inf: then no date, just digits */
    *out = s;
    return int_text(s, a, b, n);
}

/* ---- dates ------------------------------------------------------------------ */

/* civil_from_days is Howard Hinnant's algorithm: days since 1970-01-01 to y-m-d. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* put_digits writes v in exactly n digits, zero-padded (dates are hot). */
static char *put_digits(char *w, unsigned v, int n) {
    for (int i = n - 1; i >= 0; i--, v /= 10)
        w[i] = (char)('0' + v % 10);
    return w + n;
}

/* xv_date: the serial counts days from 1899-12-30 (Excel's 1900 system, where
 * serials below 60 are one day later because Excel believes 1900-02-29 was a
 * day) or from 1904-01-01; the fraction is the time of day. The time is
 * rounded to the millisecond with openpyxl's very float operations: writers
 * store serials with 15-17 digits, so 08:30 is often 08:29:59.9999993, and
 * Excel itself shows no more than milliseconds. */
int xv_date(double v, int cls, int date1904, char out[XV_FLOAT_MAX]) {
    if (!isfinite(v) || fabs(v) > 4e6)
        return -1;
    double day = floor(v);
    int64_t iday = (int64_t)day, ms = (int64_t)rint((v - day) * 86400.0 * 1000.0);
    if (ms >= MS_PER_DAY)
        ms -= MS_PER_DAY, iday++;
    if (!date1904 && v > 0 && v < LEAP_BUG_END)
        iday++;
    iday += date1904 ? DAYS_1904 : 0;
    int64_t y;
    unsigned mo, d;
    civil_from_days(iday - DAY_1970, &y, &mo, &d);
    if (y < 1 || y > 9999)
        return -1;
    int secs = (int)(ms / 1000), frac = (int)(ms % 1000);
    char *w = out;
    if (cls & XL_FMT_DATE) {
        w = put_digits(w, (unsigned)y, 4);
        *w++ = '-';
        w = put_digits(w, mo, 2);
        *w++ = '-';
        w = put_digits(w, d, 2);
    }
    if (cls == XL_FMT_DATETIME)
        *w++ = 'T';
    if (cls & XL_FMT_TIME) {
        w = put_digits(w, (unsigned)secs / 3600, 2);
        *w++ = ':';
        w = put_digits(w, (unsigned)secs / 60 % 60, 2);
        *w++ = ':';
        w = put_digits(w, (unsigned)secs % 60, 2);
        if (frac) { /* isoformat() writes microseconds */
            *w++ = '.';
            w = put_digits(w, (unsigned)frac * 1000, 6);
        }
    }
    *w = '\0';
    return (int)(w - out);
}

/* ---- text ------------------------------------------------------------------- */

/* hex_val: a hex digit's value, -1 for anything else. */
static int hex_val(char c) {
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* escape_at decodes "_xHHHH_" at s (n bytes available) into out; its UTF-8
 * length, or 0 when it is not an escape (NUL and surrogates stay literal). */
static size_t escape_at(const char *s, size_t n, char *out) {
    if (n < 7 || s[1] != 'x' || s[6] != '_')
        return 0;
    unsigned cp = 0;
    for (int i = 2; i < 6; i++) {
        int h = hex_val(s[i]);
        if (h < 0)
            return 0;
        cp = cp * 16 + (unsigned)h;
    }
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* xv_unescape: ECMA-376 ST_Xstring writes characters XML cannot carry as
 * _xHHHH_ (Excel: a CR is "_x000D_"; a literal "_x" is "_x005F_x"). Each
 * escape shrinks to at most 3 bytes, so this works in place. */
size_t xv_unescape(char *s, size_t n) {
    char *u = memchr(s, '_', n);
    if (!u)
        return n;
    size_t r = (size_t)(u - s), w = r;
    while (r < n) {
        char enc[3];
        size_t k = s[r] == '_' ? escape_at(s + r, n - r, enc) : 0;
        if (k) {
            memcpy(s + w, enc, k);
            w += k;
            r += 7;
        } else {
            s[w++] = s[r++];
        }
    }
    return w;
}

/* ---- references ------------------------------------------------------------- */

/* xv_cell_col: "B3" -> 2. At most 3 letters (XFD is Excel's last column),
 * then digits only. */
size_t xv_cell_col(const char *ref) {
    size_t col = 0, k = 0;
    for (; k < 4; k++) {
        char c = ref[k];
        if (c >= 'A' && c <= 'Z')
            col = col * 26 + (size_t)(c - 'A' + 1);
        else if (c >= 'a' && c <= 'z')
            col = col * 26 + (size_t)(c - 'a' + 1);
        else
            break;
    }
    if (k == 0 || k == 4)
        return 0;
    for (; ref[k]; k++)
        if (!is_digit(ref[k]))
            return 0;
    return col;
}

/* xv_col_name: 28 -> "AB" (bijective base 26). */
void xv_col_name(size_t col, char out[8]) {
    char tmp[8];
    size_t k = 0;
    while (col > 0 && k < 7) {
        col--;
        tmp[k++] = (char)('A' + col % 26);
        col /= 26;
    }
    for (size_t i = 0; i < k; i++)
        out[i] = tmp[k - 1 - i];
    out[k] = '\0';
}
