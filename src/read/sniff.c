/* sniff.c - format, delimiter and header from a stream's first bytes (see
 * sniff.h). Records are split the way a CSV reader would (quotes may hold
 * delimiters and newlines); only whole records count. */
#include "read/sniff.h"

#include "dsa_ingest/profile.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define SNIFF_RECORDS 64
#define SNIFF_FIELDS  256

static const char k_delims[] = {',', ';', '\t', '|'};

/* A record's fields as spans of the head (quotes still on). */
typedef struct span {
    size_t start, len;
} span;

/* next_record splits the record at *pos into fields by delim; returns the
 * number of fields (capped), or 0 when no whole record is left. */
static size_t next_record(const unsigned char *s, size_t n, int complete, size_t *pos,
                          unsigned char delim, span *f) {
    size_t i = *pos, nf = 0, start = i;
    int quoted = 0;
    if (i >= n)
        return 0;
    for (; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"')
            quoted = !quoted;
        else if (!quoted && (c == delim || c == '\n' || c == '\r')) {
            if (nf < SNIFF_FIELDS)
                f[nf++] = (span){start, i - start};
            start = i + 1;
            if (c != delim)
                break;
        }
    }
    if (i == n) {
        if (!complete || quoted)
            return 0;
        if (nf < SNIFF_FIELDS)
            f[nf++] = (span){start, i - start};
    }
    if (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
        i++;
    *pos = i + 1;
    return nf;
}

/* skip_bom steps over a UTF-8 byte order mark. */
static size_t skip_bom(const unsigned char *s, size_t n) {
    return n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* looks_ndjson: the first non-blank line parses as a JSON object. */
static int looks_ndjson(const unsigned char *s, size_t n, int complete) {
    size_t i = skip_bom(s, n);
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    if (i >= n || s[i] != '{')
        return 0;
    const unsigned char *nl = memchr(s + i, '\n', n - i);
    if (!nl && !complete)
        return 1; /* a first object longer than the sniff window: trust the brace */
    size_t len = nl ? (size_t)(nl - (s + i)) : n - i;
    cJSON *j = cJSON_ParseWithLength((const char *)s + i, len);
    int ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

/* score_delim rates a delimiter: how many of the first records have the
 * most common field count (x that count, so one column loses to many). */
static long score_delim(const unsigned char *s, size_t n, int complete, unsigned char d) {
    span f[SNIFF_FIELDS];
    size_t counts[SNIFF_RECORDS], nrec = 0, pos = skip_bom(s, n);
    size_t k;
    while (nrec < SNIFF_RECORDS && (k = next_record(s, n, complete, &pos, d, f)) > 0)
        counts[nrec++] = k;
    if (nrec == 0)
        return 0;
    size_t best = 0, best_count = 0;
    for (size_t i = 0; i < nrec; i++) {
        size_t same = 0;
        for (size_t j = 0; j < nrec; j++)
            same += counts[j] == counts[i];
        if (same > best || (same == best && counts[i] > best_count)) {
            best = same;
            best_count = counts[i];
        }
    }
    if (best_count < 2)
        return 0;
    return (long)(best * 1000 / nrec) * 1000 + (long)best_count;
}

/* unquote narrows a field span to its text without surrounding quotes. */
static span unquote(const unsigned char *s, span f) {
    if (f.len >= 2 && s[f.start] == '"' && s[f.start + f.len - 1] == '"')
        return (span){f.start + 1, f.len - 2};
    return f;
}

/* sniff_header: the first record is a header unless it fits the types of the
 * columns below it, where at least one column has a type other than text. */
static int sniff_header(const unsigned char *s, size_t n, int complete, unsigned char d) {
    span first[SNIFF_FIELDS], f[SNIFF_FIELDS]; /* 4 KiB each: the stack, not statics (threads) */
    unsigned masks[SNIFF_FIELDS];
    size_t pos = skip_bom(s, n);
    size_t nf = next_record(s, n, complete, &pos, d, first), k, rows = 0;
    if (nf == 0)
        return 1;
    for (size_t i = 0; i < nf; i++)
        masks[i] = DI_TYPE_ALL;
    while (rows < SNIFF_RECORDS && (k = next_record(s, n, complete, &pos, d, f)) > 0) {
        rows++;
        for (size_t i = 0; i < nf && i < k; i++) {
            span u = unquote(s, f[i]);
            if (u.len)
                masks[i] &= di_value_types((const char *)s + u.start, u.len, DI_VAL_TEXT);
        }
    }
    if (rows == 0)
        return 1;
    int typed = 0;
    for (size_t i = 0; i < nf; i++) {
        if (masks[i] == DI_TYPE_ALL || masks[i] == 0)
            continue; /* no value, or text: no vote */
        typed = 1;
        span u = unquote(s, first[i]);
        unsigned m = di_value_types((const char *)s + u.start, u.len, DI_VAL_TEXT);
        if (u.len && !(m & masks[i]))
            return 1; /* "amount" above numbers: a header */
    }
    return !typed;
}

void di_sniff_text(const unsigned char *head, size_t n, int complete, di_sniff *s) {
    if (s->format == DI_FMT_AUTO)
        s->format = looks_ndjson(head, n, complete) ? DI_FMT_NDJSON : DI_FMT_CSV;
    if (s->format == DI_FMT_NDJSON) {
        s->header = 0;
        return;
    }
    if (!s->delimiter && s->format == DI_FMT_TSV)
        s->delimiter = '\t';
    if (!s->delimiter) {
        long best = 0;
        s->delimiter = ',';
        for (size_t i = 0; i < sizeof k_delims; i++) {
            long sc = score_delim(head, n, complete, (unsigned char)k_delims[i]);
            if (sc > best) {
                best = sc;
                s->delimiter = k_delims[i];
            }
        }
    }
    if (s->delimiter == '\t')
        s->format = DI_FMT_TSV;
    if (s->header < 0)
        s->header = sniff_header(head, n, complete, (unsigned char)s->delimiter);
}
