/* row.c - stage 4: canonical JSON of a record and its XXH3-128 row hash.
 *
 * The layout sorts and escapes a table's column names once; per row we only copy
 * the key prefixes and escape the values in spans (one memcpy per run of safe
 * bytes, scanned 8 bytes at a time), so the hot path never allocates. */
#include "dsa_ingest/row.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* What follows the backslash for each byte Python's json encoder escapes
 * (json/encoder.py ESCAPE_DCT): 'u' means \u00XX; 0 means the byte is kept. */
static const char escape_tab[256] = {
    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f',  ['\r'] = 'r', [0x00] = 'u',
    [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',  [0x05] = 'u', [0x06] = 'u',
    [0x07] = 'u', [0x0B] = 'u', [0x0E] = 'u', [0x0F] = 'u',  [0x10] = 'u', [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u',  [0x16] = 'u', [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1A] = 'u', [0x1B] = 'u',  [0x1C] = 'u', [0x1D] = 'u',
    [0x1E] = 'u', [0x1F] = 'u', ['"'] = '"',  ['\\'] = '\\',
};

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* word_is_safe tells whether none of 8 bytes needs escaping: no byte < 0x20, no
 * '"', no '\\'. The haszero/hasless bit tricks are exact for "any?" questions. */
static inline int word_is_safe(uint64_t w) {
    uint64_t lt20 = (w - ONES * 0x20) & ~w;
    uint64_t quote = w ^ (ONES * '"');
    uint64_t bslash = w ^ (ONES * '\\');
    uint64_t hit = lt20 | ((quote - ONES) & ~quote) | ((bslash - ONES) & ~bslash);
    return (hit & HIGHS) == 0;
}

/* safe_run returns the length of the leading run of s that is copied as is, so
 * the caller can move it with one memcpy. */
static size_t safe_run(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8); /* unaligned load, well defined */
        if (!word_is_safe(w))
            break;
        i += 8;
    }
    while (i < n && !escape_tab[s[i]])
        i++;
    return i;
}

/* put_escape writes the escape of byte c at d and returns its length (2 or 6):
 * lowercase hex, as Python's encoder writes it. */
static size_t put_escape(char *d, unsigned char c) {
    static const char hex[] = "0123456789abcdef";
    char e = escape_tab[c];
    d[0] = '\\';
    d[1] = e;
    if (e != 'u')
        return 2;
    d[2] = '0';
    d[3] = '0';
    d[4] = hex[c >> 4];
    d[5] = hex[c & 0xF];
    return 6;
}

/* append_quoted appends "s" escaped. It reserves the unescaped size up front
 * and 5 more bytes only when an escape appears, so plain text costs one check. */
static int append_quoted(di_buf *out, const unsigned char *s, size_t n) {
    if (n > SIZE_MAX - 8 || di_buf_reserve(out, n + 2) != 0)
        return -1;
    char *d = out->data + out->len;
    *d++ = '"';
    size_t i = 0;
    for (;;) {
        size_t run = safe_run(s + i, n - i);
        if (run) {
            memcpy(d, s + i, run);
            d += run;
            i += run;
        }
        if (i == n)
            break;
        out->len = (size_t)(d - out->data); /* room left covers n - i + 1 bytes */
        if (di_buf_reserve(out, n - i + 1 + 5) != 0)
            return -1;
        d = out->data + out->len;
        d += put_escape(d, s[i++]);
    }
    *d++ = '"';
    *d = '\0';
    out->len = (size_t)(d - out->data);
    return 0;
}

/* di_json_append_string is the escaper alone, for callers outside the row stage
 * that must write strings the way the canonical form does. */
int di_json_append_string(di_buf *out, const char *s, size_t n) {
    return append_quoted(out, (const unsigned char *)s, n);
}

typedef struct name_ref {
    const char *name;
    size_t len;
    size_t index;
} name_ref;

/* cmp_names orders names by their UTF-8 bytes, a prefix first: this is Python's
 * str order (code points), which sort_keys uses. */
static int cmp_names(const void *pa, const void *pb) {
    const name_ref *a = pa, *b = pb;
    size_t m = a->len < b->len ? a->len : b->len;
    int c = m ? memcmp(a->name, b->name, m) : 0;
    if (c)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

/* sort_columns fills l->order with the byte-order permutation of names; qsort
 * has no context argument, so it sorts references that carry their index. */
static int sort_columns(di_row_layout *l, const char *const *names, size_t n) {
    name_ref *refs = malloc(n * sizeof *refs);
    if (!refs)
        return -1;
    for (size_t i = 0; i < n; i++)
        refs[i] = (name_ref){names[i], strlen(names[i]), i};
    qsort(refs, n, sizeof *refs, cmp_names);
    for (size_t k = 0; k < n; k++)
        l->order[k] = refs[k].index;
    free(refs);
    return 0;
}

/* escape_keys pre-escapes every `"name":` once per table, so rows only copy them. */
static int escape_keys(di_row_layout *l, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        l->key_off[i] = l->keys.len;
        if (di_json_append_string(&l->keys, names[i], strlen(names[i])) != 0 ||
            di_buf_putc(&l->keys, ':') != 0)
            return -1;
        l->key_len[i] = l->keys.len - l->key_off[i];
    }
    return 0;
}

/* di_row_layout_init does the per-table work (sort, escape names) up front so
 * di_row_json is a copy loop. Names must be unique; they are not kept. */
int di_row_layout_init(di_row_layout *l, const char *const *names, size_t n) {
    memset(l, 0, sizeof *l);
    di_buf_init(&l->keys, SIZE_MAX);
    l->ncolumns = n;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / sizeof(size_t))
        return -1;
    l->order = malloc(n * sizeof *l->order);
    l->key_off = malloc(n * sizeof *l->key_off);
    l->key_len = malloc(n * sizeof *l->key_len);
    if (!l->order || !l->key_off || !l->key_len || sort_columns(l, names, n) != 0 ||
        escape_keys(l, names, n) != 0) {
        di_row_layout_cleanup(l);
        return -1;
    }
    return 0;
}

/* di_row_layout_cleanup frees what init allocated; safe on a zeroed or failed layout. */
void di_row_layout_cleanup(di_row_layout *l) {
    free(l->order);
    free(l->key_off);
    free(l->key_len);
    di_buf_cleanup(&l->keys);
    l->order = l->key_off = l->key_len = NULL;
    l->ncolumns = 0;
}

/* row_min_size is the output size if no value needed escaping: reserving it once
 * means at most one realloc per row, and none once the buffer has warmed up. */
static size_t row_min_size(const di_row_layout *l, const size_t *lens) {
    size_t need = 2 + l->keys.len + 3 * l->ncolumns; /* braces; quotes and comma per value */
    for (size_t i = 0; i < l->ncolumns; i++) {
        if (lens[i] > SIZE_MAX - need)
            return SIZE_MAX;
        need += lens[i];
    }
    return need;
}

/* append_value writes one value by its kind: a quoted string, null, or JSON
 * text that is already canonical (copied as is). */
static int append_value(di_buf *out, const char *v, size_t len, unsigned char kind) {
    if (kind == DI_VAL_NULL)
        return di_buf_append(out, "null", 4);
    if (kind == DI_VAL_JSON)
        return di_buf_append(out, v, len);
    return append_quoted(out, (const unsigned char *)v, len);
}

/* di_row_json writes the canonical object: keys in byte order, each a copied
 * prefix, each value escaped in spans. out keeps its memory across rows. */
int di_row_json(const di_row_layout *l, const char *const *values, const size_t *lens,
                const unsigned char *kinds, di_buf *out) {
    di_buf_reset(out);
    if (di_buf_reserve(out, row_min_size(l, lens)) != 0)
        return -1;
    out->data[out->len++] = '{';
    for (size_t k = 0; k < l->ncolumns; k++) {
        size_t i = l->order[k];
        /* Escapes eat into the room reserved above, so check again (a compare). */
        if (di_buf_reserve(out, 1 + l->key_len[i]) != 0)
            return -1;
        if (k)
            out->data[out->len++] = ',';
        memcpy(out->data + out->len, l->keys.data + l->key_off[i], l->key_len[i]);
        out->len += l->key_len[i];
        if (append_value(out, values[i], lens[i], kinds ? kinds[i] : DI_VAL_TEXT) != 0)
            return -1;
    }
    if (di_buf_reserve(out, 1) != 0)
        return -1;
    out->data[out->len++] = '}';
    out->data[out->len] = '\0';
    return 0;
}

/* di_row_json_keyed writes an object whose keys come with the values, already
 * unique and in byte order (an NDJSON record): keys are escaped per row. */
int di_row_json_keyed(const char *const *names, const char *const *values, const size_t *lens,
                      const unsigned char *kinds, size_t n, di_buf *out) {
    di_buf_reset(out);
    if (di_buf_putc(out, '{') != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((i && di_buf_putc(out, ',') != 0) ||
            append_quoted(out, (const unsigned char *)names[i], strlen(names[i])) != 0 ||
            di_buf_putc(out, ':') != 0 ||
            append_value(out, values[i], lens[i], kinds ? kinds[i] : DI_VAL_TEXT) != 0)
            return -1;
    }
    if (di_buf_putc(out, '}') != 0 || di_buf_reserve(out, 1) != 0)
        return -1;
    out->data[out->len] = '\0';
    return 0;
}

/* di_row_hash names a row by content: the canonical big-endian XXH3-128 in hex,
 * the same text as Python's xxhash.xxh3_128_hexdigest. */
void di_row_hash(const char *json, size_t len, char hex[DI_HASH_HEX + 1]) {
    static const char digits[] = "0123456789abcdef";
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(json, len));
    for (size_t i = 0; i < sizeof c.digest; i++) {
        hex[2 * i] = digits[c.digest[i] >> 4];
        hex[2 * i + 1] = digits[c.digest[i] & 0xF];
    }
    hex[DI_HASH_HEX] = '\0';
}
