/* fuzz_common.h - what the fuzz targets share: a pull function over memory
 * that hands the input out in small reads of input-dependent sizes (so chunk
 * boundaries are fuzzed too), a digest of everything a run produced (a target
 * runs twice, in one read and in small reads, and both runs must agree), and
 * checks that abort, so libFuzzer and the replay driver report them as crashes. */
#ifndef DI_FUZZ_COMMON_H
#define DI_FUZZ_COMMON_H

#include "dsa_ingest/error.h"
#include "dsa_ingest/parse.h"
#include "dsa_ingest/value.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_CHECK aborts with the failed condition: an invariant the library broke. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* fz_hash is FNV-1a over the whole input: it seeds the read sizes, so the same
 * input always reads the same way (a crash replays exactly). */
static inline uint64_t fz_hash(const uint8_t *p, size_t n) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* fz_next is xorshift64*: the sequence of read sizes and options. */
static inline uint64_t fz_next(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

/* fz_size draws a read size: mostly tiny (a boundary inside every token),
 * sometimes mid-sized, now and then unbounded. */
static inline size_t fz_size(uint64_t *s) {
    uint64_t r = fz_next(s);
    switch (r & 15) {
    case 0:
        return SIZE_MAX;
    case 1:
    case 2:
        return 1 + (size_t)((r >> 8) % 4096);
    case 3:
    case 4:
    case 5:
        return 1 + (size_t)((r >> 8) % 256);
    default:
        return 1 + (size_t)((r >> 8) % 8);
    }
}

/* The input as a stream. chunked == 0: every read gets as much as fits. */
typedef struct fz_in {
    const uint8_t *p;
    size_t len, pos;
    int chunked;
    uint64_t rng;
} fz_in;

/* fz_in_init starts a stream over p; the read sizes come from seed. */
static inline void fz_in_init(fz_in *in, const uint8_t *p, size_t len, int chunked, uint64_t seed) {
    *in = (fz_in){.p = p, .len = len, .chunked = chunked, .rng = seed};
}

/* fz_read is a di_read_fn / di_pull_fn: never more than asked, 0 only at the
 * end. Asking for 0 bytes is a bug of the caller: the answer reads as the end. */
static inline int fz_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    (void)err;
    fz_in *in = ctx;
    FUZZ_CHECK(cap > 0);
    size_t k = in->len - in->pos;
    if (k > cap)
        k = cap;
    if (in->chunked) {
        size_t c = fz_size(&in->rng);
        k = k < c ? k : c;
    }
    if (k)
        memcpy(buf, in->p + in->pos, k);
    in->pos += k;
    *n = k;
    return 0;
}

/* fz_has_lzma tells whether a zip holds a member compressed with LZMA (method
 * 14 in a local or central header): libarchive then allocates the dictionary
 * size the member's header names, up to 4 GiB, with no memory limit - seconds
 * under ASan, or an out-of-memory stop. Not this project's code: such inputs
 * are passed over (a finding reported to the maintainers, not a regression). */
static inline int fz_has_lzma(const uint8_t *p, size_t n) {
    for (size_t i = 0; i + 12 <= n; i++) {
        if (p[i] != 'P' || p[i + 1] != 'K')
            continue;
        if (p[i + 2] == 3 && p[i + 3] == 4 && p[i + 8] == 14 && p[i + 9] == 0)
            return 1;
        if (p[i + 2] == 1 && p[i + 3] == 2 && p[i + 10] == 14 && p[i + 11] == 0)
            return 1;
    }
    return 0;
}

/* fz_seek moves the stream (an archive io's seek); archive.c checks the range. */
static inline int fz_seek(void *ctx, int64_t offset, di_error *err) {
    (void)err;
    fz_in *in = ctx;
    FUZZ_CHECK(offset >= 0 && (uint64_t)offset <= in->len);
    in->pos = (size_t)offset;
    return 0;
}

/* fz_mix_stream adds bytes to a run's digest (FNV-1a) with no separator: a
 * stream's digest does not depend on how it was cut into reads. */
static inline void fz_mix_stream(uint64_t *d, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        *d = (*d ^ s[i]) * 1099511628211ULL;
}

/* fz_mix adds one item to a run's digest: its bytes, then a separator. */
static inline void fz_mix(uint64_t *d, const void *p, size_t n) {
    fz_mix_stream(d, p, n);
    *d = (*d ^ 0xFF) * 1099511628211ULL;
}

/* fz_mix_int adds a number to a run's digest. */
static inline void fz_mix_int(uint64_t *d, int64_t v) {
    fz_mix(d, &v, sizeof v);
}

/* fz_check_error: a failure names its class and a reason. */
static inline void fz_check_error(const di_error *e) {
    FUZZ_CHECK(e->cls != DI_ERR_NONE);
    FUZZ_CHECK(memchr(e->message, '\0', sizeof e->message) != NULL);
    FUZZ_CHECK(e->message[0] != '\0');
    FUZZ_CHECK(memchr(e->excerpt, '\0', sizeof e->excerpt) != NULL);
    size_t n = strlen(e->excerpt); /* rejects put it into JSON */
    FUZZ_CHECK(di_utf8_valid((const unsigned char *)e->excerpt, n) == n);
}

/* fz_mix_error adds a failure to the digest: class, code, where, why. The
 * excerpt is left out: a rejected record's first bytes are what the parser
 * held when it gave up, which may depend on where reads ended. */
static inline void fz_mix_error(uint64_t *d, const di_error *e) {
    fz_mix_int(d, e->cls);
    fz_mix_int(d, e->code);
    fz_mix_int(d, e->row);
    fz_mix_int(d, e->byte);
    fz_mix(d, e->message, strlen(e->message));
    fz_mix(d, e->table, strnlen(e->table, sizeof e->table));
}

/* fz_cmp_str orders column names for the uniqueness check. */
static inline int fz_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* fz_check_columns: names are unique, valid UTF-8 (unless raw: another
 * encoding, converted by the caller) and non-empty (unless keyed: NDJSON keeps
 * its keys as given, "" included; DESIGN §2 names the empty header columns). */
static inline void fz_check_columns(const char *const *cols, size_t n, int raw, int keyed) {
    if (n == 0)
        return;
    FUZZ_CHECK(cols != NULL);
    const char **v = malloc(n * sizeof *v);
    FUZZ_CHECK(v != NULL);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(cols[i] != NULL && (keyed || cols[i][0] != '\0'));
        size_t len = strlen(cols[i]);
        FUZZ_CHECK(raw || di_utf8_valid((const unsigned char *)cols[i], len) == len);
        v[i] = cols[i];
    }
    qsort(v, n, sizeof *v, fz_cmp_str);
    for (size_t i = 1; i < n; i++)
        FUZZ_CHECK(strcmp(v[i - 1], v[i]) != 0);
    free(v);
}

/* fz_check_field: NUL-terminated at its length, no NUL inside, valid UTF-8
 * unless the bytes are in another encoding (raw). */
static inline void fz_check_field(const char *f, size_t len, int raw) {
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(f[len] == '\0');
    FUZZ_CHECK(memchr(f, '\0', len) == NULL);
    if (!raw)
        FUZZ_CHECK(di_utf8_valid((const unsigned char *)f, len) == len);
}

/* fz_mix_record adds a record to the digest: where it is and every field. */
static inline void fz_mix_record(uint64_t *d, const di_record *r) {
    fz_mix_int(d, r->row);
    fz_mix_int(d, r->start);
    fz_mix_int(d, r->next);
    fz_mix_int(d, (int64_t)r->nfields);
    for (size_t i = 0; i < r->nfields; i++) {
        fz_mix(d, r->fields[i], r->lens[i]);
        if (r->kinds)
            fz_mix_int(d, r->kinds[i]);
        if (r->names)
            fz_mix(d, r->names[i], strlen(r->names[i]));
    }
}

/* What a parser's records must satisfy, beyond parse.h's general contract. */
typedef struct fz_expect {
    int raw;              /* fields need not be UTF-8 (a declared encoding) */
    size_t max_field;     /* a field's bytes at most (0: not checked) */
    size_t max_columns;   /* columns at most (0: not checked) */
    int64_t first_offset; /* records lie within [first_offset, last_offset] */
    int64_t last_offset;
    int64_t first_row; /* no record or error numbered below it */
    size_t max_calls;  /* next() calls before the end: more means no progress */
    int json_scalars;  /* JSON-kind fields are numbers or booleans (XLSX) */
    int loose_errors;  /* fatal errors may word their position differently per run */
    int keyed;         /* records carry their own keys (NDJSON) */
} fz_expect;

/* The position a parser has reached, as its records and errors tell. */
typedef struct fz_pos {
    int64_t row, next;
    size_t ncols;
} fz_pos;

/* fz_json_scalar: a JSON number (RFC 8259 grammar) or true / false. */
static inline int fz_json_scalar(const char *s, size_t n) {
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0))
        return 1;
    size_t i = s[0] == '-';
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i += i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-') ? 2 : 1;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i == n;
}

/* fz_check_fields checks each field against its kind and the limits. */
static inline void fz_check_fields(const di_record *r, const fz_expect *x) {
    FUZZ_CHECK(r->nfields == 0 || (r->fields && r->lens));
    for (size_t i = 0; i < r->nfields; i++) {
        fz_check_field(r->fields[i], r->lens[i], x->raw);
        FUZZ_CHECK(!x->max_field || r->lens[i] <= x->max_field);
        unsigned char k = r->kinds ? r->kinds[i] : DI_VAL_TEXT;
        FUZZ_CHECK(k == DI_VAL_TEXT || k == DI_VAL_NULL || k == DI_VAL_JSON);
        FUZZ_CHECK(k != DI_VAL_NULL || r->lens[i] == 0);
        FUZZ_CHECK(k != DI_VAL_JSON || r->lens[i] > 0);
        FUZZ_CHECK(k != DI_VAL_JSON || !x->json_scalars ||
                   fz_json_scalar(r->fields[i], r->lens[i]));
    }
}

/* fz_check_names: a keyed record's names are valid UTF-8, unique, sorted by bytes. */
static inline void fz_check_names(const di_record *r) {
    for (size_t i = 0; i < r->nfields; i++) {
        size_t n = strlen(r->names[i]);
        FUZZ_CHECK(di_utf8_valid((const unsigned char *)r->names[i], n) == n);
        FUZZ_CHECK(i == 0 || strcmp(r->names[i - 1], r->names[i]) < 0);
    }
}

/* fz_check_record: numbered after what came before, a non-empty byte range
 * after the previous record's, as many fields as columns (or keyed). */
static inline void fz_check_record(const di_parser *p, const di_record *r, const fz_expect *x,
                                   fz_pos *at) {
    FUZZ_CHECK(r->row > at->row && r->row >= x->first_row);
    FUZZ_CHECK(r->start >= at->next && r->next > r->start && r->next <= x->last_offset);
    at->row = r->row;
    at->next = r->next;
    size_t nc;
    const char *const *cols = di_parser_columns(p, &nc);
    FUZZ_CHECK(!x->max_columns || nc <= x->max_columns);
    if (nc != at->ncols) {
        FUZZ_CHECK(nc > at->ncols); /* columns are only ever added */
        fz_check_columns(cols, nc, x->raw, x->keyed);
        at->ncols = nc;
    }
    FUZZ_CHECK(!r->names == !x->keyed);
    if (r->names) {
        FUZZ_CHECK(r->nfields <= nc);
        fz_check_names(r);
    } else {
        FUZZ_CHECK(r->nfields == nc);
    }
    fz_check_fields(r, x);
}

/* fz_record_error: an error about one record is numbered like one, and the
 * parser stands after it. */
static inline void fz_record_error(const di_error *e, const fz_expect *x, fz_pos *at) {
    FUZZ_CHECK(e->cls == DI_ERR_INPUT);
    FUZZ_CHECK(e->row > at->row && e->row >= x->first_row);
    FUZZ_CHECK(e->byte < 0 || (e->byte >= at->next && e->byte <= x->last_offset));
    at->row = e->row;
}

/* fz_drain reads every record of p, checking each, until the end or an error
 * that is not about one record (which must then repeat: sticky). Returns the
 * digest of all it saw, columns included. */
static inline uint64_t fz_drain(di_parser *p, const fz_expect *x) {
    uint64_t d = 14695981039346656037ULL;
    fz_pos at = {x->first_row - 1, x->first_offset, 0};
    for (size_t calls = 0;; calls++) {
        FUZZ_CHECK(calls <= x->max_calls);
        di_record rec;
        di_error err;
        di_error_clear(&err);
        int rc = di_parser_next(p, &rec, &err);
        FUZZ_CHECK(rc >= -1 && rc <= 1);
        if (rc == 0) {
            FUZZ_CHECK(di_parser_next(p, &rec, &err) == 0); /* the end stays the end */
            break;
        }
        if (rc == 1) {
            fz_check_record(p, &rec, x, &at);
            fz_mix_record(&d, &rec);
            continue;
        }
        fz_check_error(&err);
        if (x->loose_errors && err.code != DI_CODE_RECORD)
            fz_mix_int(&d, err.cls);
        else
            fz_mix_error(&d, &err);
        if (err.code == DI_CODE_RECORD) {
            fz_record_error(&err, x, &at);
            continue;
        }
        di_error again;
        di_error_clear(&again);
        FUZZ_CHECK(di_parser_next(p, &rec, &again) == -1);
        FUZZ_CHECK(again.cls == err.cls && strcmp(again.message, err.message) == 0);
        break;
    }
    size_t nc;
    const char *const *cols = di_parser_columns(p, &nc);
    fz_check_columns(cols, nc, x->raw, x->keyed);
    for (size_t i = 0; i < nc; i++)
        fz_mix(&d, cols[i], strlen(cols[i]));
    return d;
}

#endif
