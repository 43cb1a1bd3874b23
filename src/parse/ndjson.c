/* ndjson.c - stage 3 for NDJSON: one JSON object per line, via cJSON.
 *
 * JSON strings cannot hold a raw LF, so every LF ends a record: framing is a
 * memchr over one read buffer that grows only as far as the longest line (capped).
 * Each line is checked strictly (canon.c), parsed by cJSON, and handed out as its
 * top-level keys, sorted, with each value's canonical JSON text (DESIGN §2). */
#include "canon.h"
#include "dsa_ingest/buf.h"
#include "parser_impl.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define READ_BUF_SIZE DI_PARSE_BUF_SIZE
#define LINE_FACTOR   4 /* a line holds at most 4 x max_field bytes */
#define NOT_FOUND     ((size_t)-1)

/* The union of the top-level keys seen so far, in first-seen order, with an
 * open-addressing index (slot = column + 1, 0 empty) so a record costs one
 * lookup per key. */
typedef struct nd_cols {
    char **name;
    size_t *len;
    uint64_t *hash;
    size_t n, cap;
    size_t *slot;
    size_t mask;
} nd_cols;

/* One line of the stream, NUL-terminated in the read buffer (over its LF). */
typedef struct nd_line {
    char *s;
    size_t n;
    int64_t start, next;
} nd_line;

typedef struct nd_state {
    di_parser parser; /* first: a di_parser * is an nd_state * */
    di_read_fn read;
    void *ctx;
    char *table;
    size_t max_line, max_columns, max_buf;

    unsigned char *buf; /* cap + 1 bytes: room for a NUL after a last line */
    size_t cap;
    size_t pos, end; /* [pos, end) is unread */
    size_t scanned;  /* [pos, pos + scanned) has no LF */
    int64_t base;    /* stream offset of buf[0] */
    int eof, failed, bom_pending;
    di_error fatal; /* sticky: no more records after it */
    int64_t row;    /* the next line's number */
    char head[200]; /* the first bytes of a line too long to hold (rejects) */

    /* the record handed out last: valid until the next call */
    cJSON *tree; /* the names point into it */
    di_canon canon;
    di_buf out;   /* the fields' canonical texts, each NUL-terminated */
    di_buf patch; /* a copy of a line with long numbers shortened for cJSON */
    size_t fcap;
    const char **names, **fields;
    size_t *lens, *offs;
    unsigned char *kinds;

    nd_cols cols;
} nd_state;

/* ---- the column union ------------------------------------------------------ */

/* cols_find returns the column named k, or NOT_FOUND. */
static size_t cols_find(const nd_cols *t, const char *k, size_t len, uint64_t h) {
    if (!t->slot)
        return NOT_FOUND;
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        size_t c = t->slot[i];
        if (c == 0)
            return NOT_FOUND;
        c--;
        if (t->hash[c] == h && t->len[c] == len && memcmp(t->name[c], k, len) == 0)
            return c;
    }
}

/* cols_rehash keeps the index at most half full. */
static int cols_rehash(nd_cols *t) {
    size_t nslot = t->slot ? 2 * (t->mask + 1) : 64;
    size_t *slot = calloc(nslot, sizeof *slot);
    if (!slot)
        return -1;
    free(t->slot);
    t->slot = slot;
    t->mask = nslot - 1;
    for (size_t c = 0; c < t->n; c++) {
        size_t i = (size_t)t->hash[c] & t->mask;
        while (t->slot[i])
            i = (i + 1) & t->mask;
        t->slot[i] = c + 1;
    }
    return 0;
}

/* cols_grow makes room for one more column. */
static int cols_grow(nd_cols *t) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    char **name = realloc(t->name, cap * sizeof *name);
    if (name)
        t->name = name;
    size_t *len = realloc(t->len, cap * sizeof *len);
    if (len)
        t->len = len;
    uint64_t *hash = realloc(t->hash, cap * sizeof *hash);
    if (hash)
        t->hash = hash;
    if (!name || !len || !hash)
        return -1;
    t->cap = cap;
    return 0;
}

/* cols_add appends the column k (known to be new). */
static int cols_add(nd_cols *t, const char *k, size_t len, uint64_t h) {
    if ((t->n == t->cap && cols_grow(t) != 0) ||
        (2 * (t->n + 1) > (t->slot ? t->mask + 1 : 0) && cols_rehash(t) != 0))
        return -1;
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, k, len);
    copy[len] = '\0';
    size_t c = t->n++;
    t->name[c] = copy;
    t->len[c] = len;
    t->hash[c] = h;
    size_t i = (size_t)h & t->mask;
    while (t->slot[i])
        i = (i + 1) & t->mask;
    t->slot[i] = c + 1;
    return 0;
}

/* cols_free releases the union. */
static void cols_free(nd_cols *t) {
    for (size_t c = 0; c < t->n; c++)
        free(t->name[c]);
    free(t->name);
    free(t->len);
    free(t->hash);
    free(t->slot);
}

/* ---- framing: lines out of the byte stream --------------------------------- */

/* fail_oom records a sticky out-of-memory error. */
static void fail_oom(nd_state *p) {
    if (!p->failed)
        di_error_set(&p->fatal, DI_ERR_INTERNAL, "out of memory");
    p->failed = 1;
}

/* grow_buf doubles the read buffer, up to max_buf: only a line longer than
 * the buffer makes it grow. */
static int grow_buf(nd_state *p) {
    size_t cap = p->cap > p->max_buf / 2 ? p->max_buf : 2 * p->cap;
    unsigned char *b = realloc(p->buf, cap + 1);
    if (!b) {
        fail_oom(p);
        return -1;
    }
    p->buf = b;
    p->cap = cap;
    return 0;
}

/* refill keeps the unread bytes, moved to the front, and reads more after
 * them: one read call per refill; a failed read is sticky. */
static int refill(nd_state *p) {
    if (p->pos > 0) {
        memmove(p->buf, p->buf + p->pos, p->end - p->pos);
        p->base += (int64_t)p->pos;
        p->end -= p->pos;
        p->pos = 0;
    }
    if (p->end == p->cap && grow_buf(p) != 0)
        return -1;
    size_t n = 0;
    if (p->read(p->ctx, p->buf + p->end, p->cap - p->end, &n, &p->fatal) != 0) {
        p->failed = 1;
        return -1;
    }
    p->end += n;
    p->eof = n == 0;
    return 0;
}

/* skip_bom drops a UTF-8 BOM at stream offset 0 once 3 bytes (or the end) are
 * there; 0 while it cannot tell yet. Offsets still count the BOM. */
static int skip_bom(nd_state *p) {
    if (p->end - p->pos < 3 && !p->eof)
        return 0;
    if (p->end - p->pos >= 3 && memcmp(p->buf + p->pos, "\xEF\xBB\xBF", 3) == 0)
        p->pos += 3;
    p->bom_pending = 0;
    return 1;
}

/* cut_line hands out [pos, e) and consumes its LF, if any. */
static int cut_line(nd_state *p, nd_line *ln, size_t e, int lf) {
    ln->s = (char *)p->buf + p->pos;
    ln->n = e - p->pos;
    ln->start = p->base + (int64_t)p->pos;
    p->buf[e] = '\0'; /* over the LF, or in the spare byte after the data */
    p->pos = e + (size_t)lf;
    p->scanned = 0;
    ln->next = p->base + (int64_t)p->pos;
    return 1;
}

/* skip_long passes a line longer than the limit without holding it: 2. */
static int skip_long(nd_state *p, nd_line *ln) {
    ln->n = p->end - p->pos < sizeof p->head ? p->end - p->pos : sizeof p->head;
    ln->s = memcpy(p->head, p->buf + p->pos, ln->n);
    ln->start = p->base + (int64_t)p->pos;
    for (;;) {
        unsigned char *lf = memchr(p->buf + p->pos, '\n', p->end - p->pos);
        if (lf) {
            p->pos = (size_t)(lf - p->buf) + 1;
            break;
        }
        p->pos = p->end;
        if (p->eof)
            break;
        if (refill(p) != 0)
            return -1;
    }
    p->scanned = 0;
    ln->next = p->base + (int64_t)p->pos;
    return 2;
}

/* next_line finds the next line: 1 a line, 2 a line too long (skipped), 0 the
 * end, -1 fatal. Bytes already searched for an LF are not searched again. */
static int next_line(nd_state *p, nd_line *ln) {
    for (;;) {
        if (p->bom_pending && skip_bom(p))
            continue;
        size_t avail = p->end - p->pos;
        if (!p->bom_pending) {
            unsigned char *lf = memchr(p->buf + p->pos + p->scanned, '\n', avail - p->scanned);
            if (lf)
                return cut_line(p, ln, (size_t)(lf - p->buf), 1);
            p->scanned = avail;
            if (avail > p->max_line + 1) /* even without a CR before the LF */
                return skip_long(p, ln);
            if (p->eof)
                return avail ? cut_line(p, ln, p->end, 0) : 0;
        }
        if (refill(p) != 0)
            return -1;
    }
}

/* ---- one line, one record -------------------------------------------------- */

/* is_blank tells whether a line holds only spaces, tabs and CRs. */
static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* check_bytes refuses what no JSON parser should see: NUL bytes, invalid
 * UTF-8 (a BOM after the stream start is caught by the scan). */
static int check_bytes(nd_state *p, const nd_line *ln, int64_t row, di_error *err) {
    size_t ok = di_utf8_valid((const unsigned char *)ln->s, ln->n);
    const char *nul = memchr(ln->s, '\0', ok);
    if (nul)
        return di_error_at(err, DI_ERR_INPUT, p->table, row, ln->start, "NUL byte at column %zu",
                           di_canon_column(ln->s, (size_t)(nul - ln->s)));
    if (ok < ln->n)
        return di_error_at(err, DI_ERR_INPUT, p->table, row, ln->start,
                           "invalid UTF-8 at byte %lld", (long long)(ln->start + (int64_t)ok));
    return 0;
}

/* kind_name names the JSON type of the value starting at s[0]. */
static const char *kind_name(char c) {
    switch (c) {
    case '[':
        return "an array";
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return "a number";
    }
}

/* scan_line checks the line strictly (canon.c) and that it holds an object. */
static int scan_line(nd_state *p, const nd_line *ln, int64_t row, di_error *err) {
    di_canon_fault f;
    int rc = di_canon_scan(&p->canon, ln->s, ln->n, &f);
    if (rc == -2) {
        fail_oom(p);
        *err = p->fatal;
        return -1;
    }
    if (rc != 0)
        return di_error_at(err, DI_ERR_INPUT, p->table, row, ln->start, "%s", f.msg);
    const char *v = ln->s;
    while (*v == ' ' || *v == '\t' || *v == '\r')
        v++;
    if (*v != '{')
        return di_error_at(err, DI_ERR_INPUT, p->table, row, ln->start,
                           "line is not a JSON object (found %s)", kind_name(*v));
    return 0;
}

/* cjson_text is what cJSON reads: the line itself, or a copy in which every
 * number too long for some cJSON builds is "0" and spaces (the writer uses the
 * literals, never cJSON's doubles). NULL out of memory. */
static const char *cjson_text(nd_state *p, const nd_line *ln) {
    if (p->canon.nlong == 0)
        return ln->s;
    di_buf_reset(&p->patch);
    if (di_buf_append(&p->patch, ln->s, ln->n) != 0)
        return NULL;
    for (size_t k = 0; k < p->canon.nlit; k++) {
        const di_canon_lit *l = &p->canon.lit[k];
        if (l->len > DI_CANON_CJSON_NUMBER) {
            char *at = p->patch.data + (l->s - ln->s);
            at[0] = '0';
            memset(at + 1, ' ', l->len - 1);
        }
    }
    return p->patch.data;
}

/* parse_tree builds the cJSON tree of a line the scan accepted and binds its
 * numbers to their literals. */
static int parse_tree(nd_state *p, const nd_line *ln, int64_t row, di_error *err) {
    const char *text = cjson_text(p, ln), *end = NULL;
    if (!text) {
        fail_oom(p);
        *err = p->fatal;
        return -1;
    }
    p->tree = cJSON_ParseWithLengthOpts(text, ln->n + 1, &end, 1); /* + 1: the NUL */
    if (!p->tree) {
        size_t at = end && end >= text && end <= text + ln->n ? (size_t)(end - text) : 0;
        return di_error_at(err, DI_ERR_INPUT, p->table, row, ln->start,
                           "malformed JSON at column %zu (cJSON refused the line)",
                           di_canon_column(ln->s, at));
    }
    if (di_canon_bind(&p->canon, p->tree) != 0)
        return di_error_at(err, DI_ERR_INTERNAL, p->table, row, ln->start,
                           "NDJSON: cJSON's numbers do not match the scan");
    return 0;
}

/* add_columns adds the record's new keys to the union, in document order, or
 * refuses the record if they would pass max_columns (then nothing is added). */
static int add_columns(nd_state *p, size_t first, size_t n, int64_t row, int64_t start,
                       di_error *err) {
    size_t fresh = 0;
    for (size_t j = 0; j < n; j++) {
        const di_canon_ref *r = &p->canon.ref[first + j];
        fresh += cols_find(&p->cols, r->key, r->len, XXH3_64bits(r->key, r->len)) == NOT_FOUND;
    }
    if (fresh == 0)
        return 0;
    if (p->cols.n + fresh > p->max_columns)
        return di_error_at(err, DI_ERR_INPUT, p->table, row, start,
                           "record brings the distinct top-level keys to %zu, more than %zu",
                           p->cols.n + fresh, p->max_columns);
    for (const cJSON *m = p->tree->child; m; m = m->next) {
        size_t len = strlen(m->string);
        uint64_t h = XXH3_64bits(m->string, len);
        if (cols_find(&p->cols, m->string, len, h) == NOT_FOUND &&
            cols_add(&p->cols, m->string, len, h) != 0) {
            fail_oom(p);
            *err = p->fatal;
            return -1;
        }
    }
    return 0;
}

/* grow_fields makes the per-field arrays hold n, only when a record has more
 * keys than any before it. */
static int grow_fields(nd_state *p, size_t n) {
    size_t cap = p->fcap ? p->fcap : 64;
    while (cap < n)
        cap *= 2;
    const char **names = realloc(p->names, cap * sizeof *names);
    if (names)
        p->names = names;
    const char **fields = realloc(p->fields, cap * sizeof *fields);
    if (fields)
        p->fields = fields;
    size_t *lens = realloc(p->lens, cap * sizeof *lens);
    if (lens)
        p->lens = lens;
    size_t *offs = realloc(p->offs, cap * sizeof *offs);
    if (offs)
        p->offs = offs;
    unsigned char *kinds = realloc(p->kinds, cap);
    if (kinds)
        p->kinds = kinds;
    if (!names || !fields || !lens || !offs || !kinds)
        return -1;
    memset(p->kinds, DI_VAL_JSON, cap);
    p->fcap = cap;
    return 0;
}

/* write_fields writes each member's canonical text into the output arena; the
 * arena may move while it grows, so field pointers are set at the end. */
static int write_fields(nd_state *p, size_t first, size_t n) {
    if (n > p->fcap && grow_fields(p, n) != 0)
        return -1;
    di_buf_reset(&p->out);
    for (size_t j = 0; j < n; j++) {
        const di_canon_ref *r = &p->canon.ref[first + j];
        p->names[j] = r->key;
        p->offs[j] = p->out.len;
        if (di_canon_value(&p->canon, r->node, &p->out) != 0)
            return -1;
        p->lens[j] = p->out.len - p->offs[j];
        if (di_buf_putc(&p->out, '\0') != 0)
            return -1;
    }
    for (size_t j = 0; j < n; j++)
        p->fields[j] = p->out.data + p->offs[j];
    return 0;
}

/* take_line turns one line into a record: 1 a record, 0 a blank line, -1 an
 * error (about this line, or fatal when p->failed). */
static int take_line(nd_state *p, const nd_line *ln, int64_t row, di_record *rec, di_error *err) {
    if (ln->n - (ln->n && ln->s[ln->n - 1] == '\r') > p->max_line) /* CR LF not counted */
        return di_error_at(err, DI_ERR_INPUT, p->table, row, ln->start,
                           "line exceeds %zu bytes (%d x IMPORT_MAX_FIELD_SIZE)", p->max_line,
                           LINE_FACTOR);
    if (is_blank(ln->s, ln->n))
        return 0;
    if (check_bytes(p, ln, row, err) != 0 || scan_line(p, ln, row, err) != 0 ||
        parse_tree(p, ln, row, err) != 0)
        return -1;
    size_t first, n = di_canon_members(&p->canon, p->tree, &first);
    if (n == (size_t)-1) {
        fail_oom(p);
        *err = p->fatal;
        return -1;
    }
    int rc = add_columns(p, first, n, row, ln->start, err);
    if (rc == 0 && write_fields(p, first, n) != 0) {
        fail_oom(p);
        *err = p->fatal;
        rc = -1;
    }
    di_canon_pop(&p->canon, first);
    if (rc != 0)
        return -1;
    *rec = (di_record){.fields = p->fields,
                       .lens = p->lens,
                       .kinds = p->kinds,
                       .names = p->names,
                       .nfields = n,
                       .row = row,
                       .start = ln->start,
                       .next = ln->next};
    return 1;
}

/* record_error marks an error as about one line only (DI_CODE_RECORD: the
 * caller may skip it, --max-errors) and keeps the line's first bytes, cut to
 * valid UTF-8 (they go into JSON), for the rejects list. */
static void record_error(di_error *err, const nd_line *ln) {
    size_t n = ln->n - (ln->n && ln->s[ln->n - 1] == '\r');
    size_t cap = sizeof err->excerpt - 1, k = n < cap ? n : cap;
    err->code = DI_CODE_RECORD;
    memcpy(err->excerpt, ln->s, k);
    k = di_utf8_valid((const unsigned char *)err->excerpt, k);
    err->excerpt[k] = '\0';
}

/* nd_next: di_parser_next, see parse.h. After a -1 about one line (code
 * DI_CODE_RECORD) the parser stands after that line and the next call goes on
 * (--max-errors); a read failure or running out of memory is sticky. */
static int nd_next(di_parser *dp, di_record *rec, di_error *err) {
    nd_state *p = (nd_state *)dp;
    cJSON_Delete(p->tree);
    p->tree = NULL;
    for (;;) {
        nd_line ln;
        int rc = p->failed ? -1 : next_line(p, &ln);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            *err = p->fatal;
            return -1;
        }
        int64_t row = p->row++;
        if (rc == 2) {
            rc = di_error_at(err, DI_ERR_INPUT, p->table, row, ln.start,
                             "line exceeds %zu bytes (%d x IMPORT_MAX_FIELD_SIZE)", p->max_line,
                             LINE_FACTOR);
        } else {
            rc = take_line(p, &ln, row, rec, err);
        }
        if (rc < 0 && !p->failed && err->cls == DI_ERR_INPUT)
            record_error(err, &ln);
        if (rc != 0)
            return rc;
    }
}

/* ---- the handle ------------------------------------------------------------ */

static const char *const *nd_columns(const di_parser *dp, size_t *ncolumns);
static const char *nd_table(const di_parser *dp);
static void nd_destroy(di_parser *dp);
static const di_parser_ops k_ndjson_ops = {nd_next, nd_columns, nd_table, nd_destroy};

/* set_limits copies the caps, with defaults for zeros; the read buffer grows
 * to hold a line of max_line bytes plus its CR LF at most. */
static void set_limits(nd_state *p, const di_parse_opts *o) {
    size_t max_field = o->max_field ? o->max_field : (size_t)16 << 20;
    p->max_line = max_field > (SIZE_MAX / 2) / LINE_FACTOR ? SIZE_MAX / 2 : max_field * LINE_FACTOR;
    p->max_columns = o->max_columns ? o->max_columns : 16384;
    p->max_buf = p->max_line + 2 > READ_BUF_SIZE ? p->max_line + 2 : READ_BUF_SIZE;
    p->cap = READ_BUF_SIZE;
    /* The canonical text of a line is at most ~4.5 x its length (1e15 becomes
     * 1000000000000000.0), so the line cap bounds the arenas too. */
    di_buf_init(&p->out, SIZE_MAX / 2);
    di_buf_init(&p->patch, SIZE_MAX / 2);
}

/* set_start places the parser at the stream start or at the resume point,
 * with the resumed job's columns known at once. */
static int set_start(nd_state *p, const di_parse_opts *o) {
    p->base = o->start_offset > 0 ? o->start_offset : 0;
    p->row = o->start_row > 0 ? o->start_row : 1;
    p->bom_pending = o->start_offset <= 0;
    for (size_t i = 0; o->resume_columns && i < o->resume_ncolumns; i++) {
        const char *k = o->resume_columns[i];
        size_t len = strlen(k);
        uint64_t h = XXH3_64bits(k, len);
        if (cols_find(&p->cols, k, len, h) == NOT_FOUND && cols_add(&p->cols, k, len, h) != 0)
            return -1;
    }
    return 0;
}

/* di_ndjson_parser_new: di_parser_new for NDJSON. */
di_parser *di_ndjson_parser_new(const di_parse_opts *opts, di_read_fn read, void *ctx,
                                di_error *err) {
    nd_state *p = calloc(1, sizeof *p);
    if (!p) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->parser.ops = &k_ndjson_ops;
    p->read = read;
    p->ctx = ctx;
    di_error_clear(&p->fatal);
    di_canon_init(&p->canon);
    set_limits(p, opts);
    p->table = strdup(opts->table_key ? opts->table_key : "primary");
    p->buf = malloc(p->cap + 1);
    /* the arrays exist from the start: names is never NULL, even for {} */
    if (!p->table || !p->buf || grow_fields(p, 1) != 0 || set_start(p, opts) != 0) {
        nd_destroy(&p->parser);
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return &p->parser;
}

/* nd_columns: di_parser_columns, see parse.h: the union of the top-level keys
 * seen so far, in first-seen order; NULL and 0 before any. */
static const char *const *nd_columns(const di_parser *dp, size_t *ncolumns) {
    const nd_state *p = (const nd_state *)dp;
    *ncolumns = p->cols.n;
    return p->cols.n ? (const char *const *)p->cols.name : NULL;
}

/* nd_table names the table the records belong to. */
static const char *nd_table(const di_parser *dp) {
    return ((const nd_state *)dp)->table;
}

/* nd_destroy releases everything the parser allocated (the last tree too). */
static void nd_destroy(di_parser *dp) {
    nd_state *p = (nd_state *)dp;
    if (!p)
        return;
    cJSON_Delete(p->tree);
    di_canon_cleanup(&p->canon);
    di_buf_cleanup(&p->out);
    di_buf_cleanup(&p->patch);
    cols_free(&p->cols);
    free(p->names);
    free(p->fields);
    free(p->lens);
    free(p->offs);
    free(p->kinds);
    free(p->buf);
    free(p->table);
    free(p);
}
