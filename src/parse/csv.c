/* csv.c - stage 3 for CSV/TSV: records with exact byte boundaries, via libcsv.
 *
 * libcsv does the quoting; we feed it pieces that end at each CR or LF, so when a
 * piece completes a record the next record starts at the following byte (`next`).
 * UTF-8 is checked on the raw bytes (exact offsets). libcsv writes each field
 * straight into one reused arena: its entry buffer is the arena's free end, moved
 * past each field kept, so no field is copied after libcsv wrote it. */
#include "dsa_ingest/buf.h"
#include "parser_impl.h"

#include <csv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF_SIZE DI_PARSE_BUF_SIZE
#define FIELD_BLK_MIN ((size_t)4096) /* the arena at first; libcsv's first growth step */
#define RECORD_FACTOR 4              /* a record holds at most 4 x max_field bytes */
#define ENTRY_MIN     ((size_t)256)  /* free arena bytes always left to libcsv's entry */
#define NONE          ((size_t)-1)

/* libcsv's parser states (struct csv_parser.pstate; the values of libcsv.c). */
enum { ROW_NOT_BEGUN = 0, FIELD_NOT_BEGUN = 1, FIELD_BEGUN = 2, FIELD_MIGHT_HAVE_ENDED = 3 };

typedef struct csv_state {
    di_parser parser; /* first: a di_parser * is a csv_state * */
    struct csv_parser cp;
    di_read_fn read;
    void *ctx;
    char *table;
    size_t max_field, max_columns;
    int header_pending; /* the next record names the columns */
    int header_words;   /* count errors speak of "the header" */
    int bom_pending;    /* at stream offset 0: a BOM may come */
    int raw_bytes;      /* a declared encoding: UTF-8 is not checked here */

    unsigned char *buf; /* READ_BUF_SIZE bytes, allocated once */
    size_t pos, cut;    /* [pos, cut) is ready to parse */
    size_t end;         /* [cut, end): a UTF-8 sequence the next read completes */
    size_t nl, cr;      /* next LF / CR in [pos, cut), cut when none, NONE: unknown */
    size_t bad;         /* first invalid UTF-8 byte in [pos, cut), cut when none */
    size_t nul;         /* first NUL byte in [pos, cut), cut when none */
    int64_t base;       /* stream offset of buf[0] */
    int eof, failed;
    di_error fatal; /* sticky: no more records after it */

    /* the record in progress */
    int done;
    int64_t row, start, open_quote;
    di_error pend;  /* the record's first problem: reported when it ends */
    di_buf arena;   /* fields, each NUL-terminated; libcsv's entry buffer is its free end */
    size_t rec_max; /* bytes a record's fields may take (RECORD_FACTOR x max_field) */
    size_t nfields, fcap, *offs, *lens;
    const char **ptrs;

    char **cols;
    size_t ncols;
} csv_state;

/* set_where puts the record in progress into an error. */
static void set_where(csv_state *p, di_error *e) {
    snprintf(e->table, sizeof e->table, "%s", p->table);
    e->row = p->row;
    e->byte = p->start;
}

/* fail records a fatal error (the first one wins): the stream cannot be
 * followed past it. */
static void fail(csv_state *p, di_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(csv_state *p, di_class cls, const char *fmt, ...) {
    if (p->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    di_error_vset(&p->fatal, cls, fmt, ap);
    va_end(ap);
    set_where(p, &p->fatal);
    p->failed = 1;
}

/* flag notes the record's first problem; parsing goes on to the record's end
 * so the caller can skip it (--max-errors) and carry on. */
static void flag(csv_state *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flag(csv_state *p, const char *fmt, ...) {
    if (p->pend.cls != DI_ERR_NONE)
        return;
    va_list ap;
    va_start(ap, fmt);
    di_error_vset(&p->pend, DI_ERR_INPUT, fmt, ap);
    va_end(ap);
    set_where(p, &p->pend);
}

/* no_space keeps spaces and tabs around fields, as Python's csv module does
 * (libcsv trims them unless told otherwise). */
static int no_space(unsigned char c) {
    (void)c;
    return 0;
}

/* grow_fields doubles the per-field arrays, only when a record has more fields
 * than any before it. */
static int grow_fields(csv_state *p) {
    size_t cap = p->fcap ? 2 * p->fcap : 64;
    size_t *offs = realloc(p->offs, cap * sizeof *offs);
    if (offs)
        p->offs = offs;
    size_t *lens = realloc(p->lens, cap * sizeof *lens);
    if (lens)
        p->lens = lens;
    const char **ptrs = realloc(p->ptrs, cap * sizeof *ptrs);
    if (ptrs)
        p->ptrs = ptrs;
    if (!offs || !lens || !ptrs)
        return -1;
    p->fcap = cap;
    return 0;
}

/* The parser whose libcsv may call entry_realloc now: libcsv's realloc hook
 * has no context argument. Set around every csv_parse call. */
static _Thread_local csv_state *t_parsing;

/* entry_at_end hands libcsv the arena's free end as its entry buffer. */
static void entry_at_end(csv_state *p) {
    p->cp.entry_buf = (unsigned char *)p->arena.data + p->arena.len;
    p->cp.entry_size = p->arena.cap - p->arena.len;
}

/* entry_realloc is libcsv's realloc: its entry buffer grows as the arena's
 * free end (what the entry holds so far moves with the arena). NULL past the
 * arena's cap: libcsv then asks for less, and fails with CSV_ENOMEM. */
static void *entry_realloc(void *old, size_t size) {
    csv_state *p = t_parsing;
    (void)old; /* == the arena's end, or NULL before the first field */
    if (di_buf_reserve(&p->arena, size) != 0)
        return NULL;
    return p->arena.data + p->arena.len;
}

/* entry_free: libcsv's entry buffer is the arena's, freed with it. */
static void entry_free(void *ptr) {
    (void)ptr;
}

/* store_field keeps one field that libcsv wrote (with its NUL) at the
 * arena's end: the arena moves past it and libcsv's entry buffer with it.
 * A field not kept is simply overwritten by the next one. */
static void store_field(csv_state *p, size_t i, const char *data, size_t len) {
    if (p->arena.len + len + 1 > p->rec_max) {
        flag(p, "record exceeds %zu bytes (%d x IMPORT_MAX_FIELD_SIZE)", p->rec_max, RECORD_FACTOR);
        return;
    }
    if (data != p->arena.data + p->arena.len) { /* cannot be: libcsv wrote it there */
        fail(p, DI_ERR_INTERNAL, "csv: a field outside the arena");
        return;
    }
    if (i == p->fcap && grow_fields(p) != 0) {
        fail(p, DI_ERR_INTERNAL, "out of memory");
        return;
    }
    p->offs[i] = p->arena.len;
    p->lens[i] = len;
    p->arena.len += len + 1;
    if (p->arena.cap - p->arena.len < ENTRY_MIN && di_buf_reserve(&p->arena, ENTRY_MIN) != 0) {
        fail(p, DI_ERR_INTERNAL, "out of memory");
        return;
    }
    entry_at_end(p);
}

/* on_field is libcsv's field callback: limits, then storage (NUL bytes are
 * found on the raw bytes, see parse_span). */
static void on_field(void *data, size_t len, void *ctx) {
    csv_state *p = ctx;
    size_t i = p->nfields++;
    if (p->failed)
        return;
    if (len > p->max_field) /* before the pending check: after_piece may catch it too */
        fail(p, DI_ERR_INPUT, "field exceeds IMPORT_MAX_FIELD_SIZE (%zu bytes)", p->max_field);
    else if (p->pend.cls != DI_ERR_NONE)
        return;
    else if (i >= p->max_columns)
        flag(p, "record has more than %zu fields", p->max_columns);
    else
        store_field(p, i, data, len);
}

/* on_row is libcsv's end-of-record callback: it fires only on the CR or LF
 * that ends a piece (or at csv_fini), so the record ends there. */
static void on_row(int c, void *ctx) {
    (void)c;
    ((csv_state *)ctx)->done = 1;
}

/* utf8_cut is where the buffer's last complete UTF-8 sequence ends: a sequence
 * split by the read is held back until the next read completes it. */
static size_t utf8_cut(const unsigned char *b, size_t from, size_t end) {
    size_t lim = end - from > 3 ? end - 3 : from;
    for (size_t k = end; k > lim; k--) {
        unsigned char c = b[k - 1];
        if (c < 0x80)
            return end;
        if (c >= 0xC0) {
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            return end - (k - 1) < need ? k - 1 : end;
        }
    }
    return end;
}

/* refill keeps the unparsed bytes, reads more after them, and checks UTF-8
 * and NUL bytes once per buffer (not per field): one read call per refill. */
static int refill(csv_state *p) {
    size_t keep = p->end - p->pos, n = 0;
    memmove(p->buf, p->buf + p->pos, keep);
    p->base += (int64_t)p->pos;
    p->pos = 0;
    p->end = keep;
    if (p->read(p->ctx, p->buf + keep, READ_BUF_SIZE - keep, &n, &p->fatal) != 0) {
        p->failed = 1;
        return -1;
    }
    p->end += n;
    p->eof = n == 0;
    p->cut = p->eof ? p->end : utf8_cut(p->buf, 0, p->end);
    p->nl = p->cr = NONE;
    p->bad = p->raw_bytes ? p->cut : di_utf8_valid(p->buf, p->cut);
    const unsigned char *z = memchr(p->buf, '\0', p->cut);
    p->nul = z ? (size_t)(z - p->buf) : p->cut;
    return 0;
}

/* skip_bom drops a UTF-8 BOM at stream offset 0 (offsets still count it). */
static void skip_bom(csv_state *p) {
    p->bom_pending = 0;
    if (p->cut - p->pos >= 3 && memcmp(p->buf + p->pos, "\xEF\xBB\xBF", 3) == 0)
        p->pos += 3;
}

/* scan finds byte c in [from, cut) with memchr; cut when absent. */
static size_t scan(const csv_state *p, size_t from, int c) {
    const unsigned char *q = memchr(p->buf + from, c, p->cut - from);
    return q ? (size_t)(q - p->buf) : p->cut;
}

/* piece_end is one past the next CR or LF, or cut: the positions found are
 * cached so CR-free (or LF-free) data is scanned once per buffer, not per line. */
static size_t piece_end(csv_state *p) {
    if (p->nl == NONE || p->nl < p->pos)
        p->nl = scan(p, p->pos, '\n');
    if (p->cr == NONE || p->cr < p->pos)
        p->cr = scan(p, p->pos, '\r');
    size_t t = p->nl < p->cr ? p->nl : p->cr;
    return t < p->cut ? t + 1 : p->cut;
}

/* Quoting states of the replay in find_open_quote. */
enum { Q_START, Q_UNQUOTED, Q_QUOTED, Q_CLOSED };

/* quote_state maps libcsv's state to the replay's. */
static int quote_state(const struct csv_parser *cp) {
    if (cp->pstate == FIELD_MIGHT_HAVE_ENDED)
        return Q_CLOSED;
    if (cp->pstate == FIELD_BEGUN)
        return cp->quoted ? Q_QUOTED : Q_UNQUOTED;
    return Q_START;
}

/* find_open_quote replays a piece's quoting to learn where the quoted field
 * still open at its end began. It runs only for pieces that open such a field
 * (once per multi-line field), so error messages can point at the quote. */
static int64_t find_open_quote(const unsigned char *s, size_t n, int st, unsigned char delim,
                               int64_t at, int64_t prev) {
    for (size_t k = 0; k < n; k++) {
        unsigned char c = s[k];
        int sep = c == delim || c == '\r' || c == '\n';
        if (st == Q_QUOTED)
            st = c == '"' ? Q_CLOSED : Q_QUOTED;
        else if (sep)
            st = Q_START;
        else if (st == Q_START && c == '"')
            prev = at + (int64_t)k, st = Q_QUOTED;
        else if (st == Q_CLOSED && c == '"')
            st = Q_QUOTED;
        else
            st = Q_UNQUOTED;
    }
    return prev;
}

/* bare_quote accepts a quote inside an unquoted field (a"b) as a plain
 * character, as Python's csv module does even with strict=True; libcsv's strict
 * mode stops there, so the quote is appended by hand (libcsv made room for it). */
static int bare_quote(csv_state *p) {
    struct csv_parser *cp = &p->cp;
    if (cp->pstate != FIELD_BEGUN || cp->quoted)
        return 0;
    cp->entry_buf[cp->entry_pos++] = cp->quote_char;
    cp->status = CSV_SUCCESS;
    return 1;
}

/* parse_piece runs libcsv over one piece, resuming after bare quotes. */
static void parse_piece(csv_state *p, const unsigned char *s, size_t n) {
    size_t off = 0;
    while (off < n) {
        t_parsing = p;
        off += csv_parse(&p->cp, s + off, n - off, on_field, on_row, p);
        if (off == n)
            return;
        if (csv_error(&p->cp) == CSV_EPARSE && bare_quote(p)) {
            off++;
        } else if (csv_error(&p->cp) == CSV_EPARSE) {
            fail(p, DI_ERR_INPUT,
                 "malformed quoted field: unexpected character after a closing quote (at byte "
                 "%lld)",
                 (long long)(p->base + (int64_t)(s + off - p->buf)));
            return;
        } else {
            fail(p, DI_ERR_INTERNAL, "csv: %s", csv_strerror(csv_error(&p->cp)));
            return;
        }
    }
}

/* parse_span parses [a, e), stopping at each NUL byte and at the first
 * invalid UTF-8 byte, so a record's problems are flagged in the order of
 * their positions (field counts are flagged as libcsv ends each field),
 * wherever the reads happened to split the record. The NUL's field is field
 * nfields + 1, which the error names. */
static void parse_span(csv_state *p, size_t a, size_t e) {
    size_t bad = p->bad < e ? p->bad : e;
    while (!p->failed) {
        size_t stop = p->nul < bad ? p->nul : bad;
        if (stop >= e)
            break;
        parse_piece(p, p->buf + a, stop - a);
        a = stop;
        if (stop == p->nul) {
            flag(p, "NUL byte in field %zu", p->nfields + 1);
            p->nul = scan(p, a + 1, '\0');
        } else {
            flag(p, "invalid UTF-8 at byte %lld", (long long)(p->base + (int64_t)bad));
            bad = e; /* one is enough: the record is rejected */
        }
    }
    parse_piece(p, p->buf + a, e - a);
}

/* after_piece enforces the field size on a field still being read (bounding
 * libcsv's buffer, which may pass the cap by one piece at most) and lets that
 * buffer grow geometrically, piece by piece. */
static void after_piece(csv_state *p) {
    size_t closing = p->cp.pstate == FIELD_MIGHT_HAVE_ENDED; /* still holds the quote */
    if (p->cp.entry_pos - closing > p->max_field)
        fail(p, DI_ERR_INPUT, "field exceeds IMPORT_MAX_FIELD_SIZE (%zu bytes)", p->max_field);
    if (p->cp.entry_size > p->cp.blk_size)
        p->cp.blk_size = p->cp.entry_size;
}

/* feed parses [pos, e): the record begins at its first byte that is not a
 * CR or LF (those alone are blank lines, which libcsv skips). */
static void feed(csv_state *p, size_t e) {
    const unsigned char *s = p->buf + p->pos;
    size_t n = e - p->pos, f0 = p->nfields;
    if (p->cp.pstate == ROW_NOT_BEGUN && s[0] != '\r' && s[0] != '\n')
        p->start = p->base + (int64_t)p->pos;
    int bad_utf8 = p->bad < e; /* parse_span flags it in its place */
    int st = quote_state(&p->cp);
    parse_span(p, p->pos, e);
    if (bad_utf8)
        p->bad = p->raw_bytes ? p->cut : e + di_utf8_valid(p->buf + e, p->cut - e);
    if (quote_state(&p->cp) == Q_QUOTED && (st != Q_QUOTED || p->nfields != f0))
        p->open_quote =
            find_open_quote(s, n, st, p->cp.delim_char, p->base + (int64_t)p->pos, p->open_quote);
    after_piece(p);
    p->pos = e;
}

/* finish ends the stream: libcsv submits a last record without a line end,
 * or reports a quoted field never closed. 1 a record, 0 none, -1 fatal. */
static int finish(csv_state *p) {
    if (csv_fini(&p->cp, on_field, on_row, p) != 0) {
        if (p->open_quote >= 0)
            fail(p, DI_ERR_INPUT,
                 "unterminated quoted field (the quote opened at byte %lld is never closed)",
                 (long long)p->open_quote);
        else
            fail(p, DI_ERR_INPUT, "unterminated quoted field");
    }
    return p->failed ? -1 : p->done; /* a field in the last record may be too big */
}

/* read_record parses up to the end of the next record: 1 done, 0 at the end
 * of the stream, -1 fatal (p->fatal). */
static int read_record(csv_state *p) {
    p->done = 0;
    p->nfields = 0;
    p->open_quote = -1;
    p->pend.cls = DI_ERR_NONE;
    di_buf_reset(&p->arena); /* libcsv is between records: its entry is empty */
    entry_at_end(p);
    while (!p->done && !p->failed) {
        if (p->bom_pending && (p->end - p->pos >= 3 || p->eof))
            skip_bom(p);
        if (p->pos < p->cut && !p->bom_pending)
            feed(p, piece_end(p));
        else if (p->eof)
            return finish(p);
        else if (refill(p) != 0)
            return -1;
    }
    return p->failed ? -1 : 1;
}

/* copy_names duplicates n strings of the given lengths into a new array. */
static char **copy_names(const char *const *src, const size_t *lens, size_t n) {
    char **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        size_t len = lens ? lens[i] : strlen(src[i]);
        v[i] = malloc(len + 1);
        if (!v[i]) {
            while (i > 0)
                free(v[--i]);
            free(v);
            return NULL;
        }
        memcpy(v[i], src[i], len);
        v[i][len] = '\0';
    }
    return v;
}

/* free_names releases an array made by copy_names. */
static void free_names(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* take_header turns the first record into the normalised column names. */
static int take_header(csv_state *p) {
    p->cols = copy_names(p->ptrs, p->lens, p->nfields);
    if (!p->cols || di_normalize_columns(p->cols, p->nfields) != 0) {
        fail(p, DI_ERR_INTERNAL, "out of memory");
        return -1;
    }
    p->ncols = p->nfields;
    p->header_pending = 0;
    return 0;
}

/* name_columns makes column_1..column_K from the first record (--no-header). */
static int name_columns(csv_state *p) {
    p->cols = calloc(p->nfields, sizeof *p->cols);
    for (size_t i = 0; p->cols && i < p->nfields; i++) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "column_%zu", i + 1);
        if (!(p->cols[i] = strdup(tmp)))
            break;
        p->ncols = i + 1;
    }
    if (p->ncols == p->nfields)
        return 0;
    fail(p, DI_ERR_INTERNAL, "out of memory");
    return -1;
}

/* check_count rejects a record whose field count is not the column count. */
static int check_count(csv_state *p, di_error *err) {
    if (p->nfields == p->ncols)
        return 0;
    if (p->header_words)
        di_error_at(err, DI_ERR_INPUT, p->table, p->row, p->start,
                    "record has %zu fields, expected %zu (the header has %zu columns)", p->nfields,
                    p->ncols, p->ncols);
    else
        di_error_at(err, DI_ERR_INPUT, p->table, p->row, p->start,
                    "record has %zu fields, expected %zu as in the first record", p->nfields,
                    p->ncols);
    return -1;
}

/* accept_record decides what a complete record is: 1 a data record for the
 * caller, 0 consumed (the header), -1 an error (fatal when it is the record
 * that names the columns). */
static int accept_record(csv_state *p, di_error *err) {
    for (size_t i = 0; p->pend.cls == DI_ERR_NONE && i < p->nfields; i++)
        p->ptrs[i] = p->arena.data + p->offs[i];
    int naming = p->header_pending || !p->cols;
    if (p->pend.cls != DI_ERR_NONE && naming) {
        p->fatal = p->pend;
        p->failed = 1;
    }
    if (p->pend.cls != DI_ERR_NONE) {
        *err = p->pend;
        return -1;
    }
    if (p->header_pending)
        return take_header(p) == 0 ? 0 : -1;
    if (!p->cols && name_columns(p) != 0)
        return -1;
    return check_count(p, err) == 0 ? 1 : -1;
}

/* record_error marks an error as about one record (the parser goes on after
 * it) and keeps the record's first bytes, its fields joined by the delimiter,
 * for the rejects list. */
static void record_error(const csv_state *p, di_error *err) {
    err->code = DI_CODE_RECORD;
    size_t n = 0, cap = sizeof err->excerpt - 1;
    for (size_t i = 0; p->arena.data && i < p->nfields && i < p->fcap && n < cap; i++) {
        if (p->offs[i] > p->arena.len || p->lens[i] > p->arena.len - p->offs[i])
            break; /* a field the error cut short */
        if (i)
            err->excerpt[n++] = p->cp.delim_char;
        size_t k = p->lens[i] < cap - n ? p->lens[i] : cap - n;
        memcpy(err->excerpt + n, p->arena.data + p->offs[i], k);
        n += k;
    }
    n = di_utf8_valid((const unsigned char *)err->excerpt, n); /* it goes into JSON */
    err->excerpt[n] = '\0';
}

/* csv_next: di_parser_next, see parse.h. After a -1 about one record (field count,
 * invalid UTF-8, NUL, too many fields) the parser stands after that record and
 * the next call goes on; other errors are sticky. */
static int csv_next(di_parser *dp, di_record *rec, di_error *err) {
    csv_state *p = (csv_state *)dp;
    for (;;) {
        int rc = read_record(p);
        if (rc == 0)
            return 0;
        int64_t row = p->row;
        if (rc > 0) {
            rc = accept_record(p, err);
            p->row++;
        }
        if (p->failed)
            *err = p->fatal;
        else if (rc < 0)
            record_error(p, err);
        if (rc < 0 || p->failed)
            return -1;
        if (rc == 1) {
            *rec = (di_record){.fields = p->ptrs,
                               .lens = p->lens,
                               .nfields = p->nfields,
                               .row = row,
                               .start = p->start,
                               .next = p->base + (int64_t)p->pos};
            return 1;
        }
    }
}

static int csv_next(di_parser *dp, di_record *rec, di_error *err);
static const char *const *csv_columns(const di_parser *dp, size_t *ncolumns);
static const char *csv_table(const di_parser *dp);
static void csv_destroy(di_parser *dp);
static const di_parser_ops k_csv_ops = {csv_next, csv_columns, csv_table, csv_destroy};

/* resolve_delim picks the delimiter: explicit, else by format. */
static int resolve_delim(const di_parse_opts *o, unsigned char *d, di_error *err) {
    *d = o->delimiter ? (unsigned char)o->delimiter : o->format == DI_FMT_TSV ? '\t' : ',';
    if (*d == '"' || *d == '\r' || *d == '\n')
        return di_error_set(err, DI_ERR_CONFIG, "invalid delimiter (a quote, CR or LF)");
    /* in UTF-8 a byte past 0x7F is part of a longer character: splitting at it
     * would cut characters in two (a declared encoding is checked after parsing) */
    if (*d >= 0x80 && !o->raw_bytes)
        return di_error_set(err, DI_ERR_CONFIG,
                            "invalid delimiter byte 0x%02X: in UTF-8 text a delimiter must be "
                            "an ASCII character",
                            *d);
    return 0;
}

/* init_csv sets libcsv up: strict quoting, no trimming, NUL-terminated fields,
 * written into the arena (set_limits sized it). */
static int init_csv(csv_state *p, unsigned char delim) {
    if (csv_init(&p->cp, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return -1;
    csv_set_delim(&p->cp, delim);
    csv_set_space_func(&p->cp, no_space);
    csv_set_blk_size(&p->cp, FIELD_BLK_MIN);
    csv_set_realloc_func(&p->cp, entry_realloc);
    csv_set_free_func(&p->cp, entry_free);
    if (di_buf_reserve(&p->arena, FIELD_BLK_MIN) != 0)
        return -1;
    entry_at_end(p);
    return 0;
}

/* set_limits copies the caps, with defaults for zeros. */
static void set_limits(csv_state *p, const di_parse_opts *o) {
    p->max_field = o->max_field ? o->max_field : (size_t)16 << 20;
    p->max_columns = o->max_columns ? o->max_columns : 16384;
    size_t big = ((size_t)-1 - 1) / (RECORD_FACTOR + 2);
    size_t field = p->max_field < big ? p->max_field : big;
    p->rec_max = field * RECORD_FACTOR;
    /* the arena also holds the field being read past the cap: until the piece
     * that passes max_field ends (after_piece), or the record's end (flagged) */
    di_buf_init(&p->arena, p->rec_max + field + READ_BUF_SIZE + 2 * ENTRY_MIN);
}

/* set_start places the parser at the stream start or at the resume point. */
static int set_start(csv_state *p, const di_parse_opts *o) {
    int resume = o->start_offset > 0 || o->resume_columns != NULL;
    p->base = o->start_offset > 0 ? o->start_offset : 0;
    p->row = o->start_row > 0 ? o->start_row : 1;
    p->start = p->base;
    p->bom_pending = o->start_offset <= 0;
    p->header_pending = o->header && !resume;
    p->header_words = o->header != 0;
    p->nl = p->cr = NONE;
    if (!o->resume_columns || o->resume_ncolumns == 0)
        return 0;
    p->cols = copy_names(o->resume_columns, NULL, o->resume_ncolumns);
    p->ncols = p->cols ? o->resume_ncolumns : 0;
    return p->cols ? 0 : -1;
}

/* di_csv_parser_new: di_parser_new for CSV and TSV. */
di_parser *di_csv_parser_new(const di_parse_opts *opts, di_read_fn read, void *ctx, di_error *err) {
    unsigned char delim;
    if (resolve_delim(opts, &delim, err) != 0)
        return NULL;
    csv_state *p = calloc(1, sizeof *p);
    if (!p) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->parser.ops = &k_csv_ops;
    p->read = read;
    p->ctx = ctx;
    p->raw_bytes = opts->raw_bytes;
    di_error_clear(&p->fatal);
    di_error_clear(&p->pend);
    set_limits(p, opts);
    p->table = strdup(opts->table_key ? opts->table_key : "primary");
    p->buf = malloc(READ_BUF_SIZE);
    if (init_csv(p, delim) != 0 || !p->table || !p->buf || set_start(p, opts) != 0) {
        csv_destroy(&p->parser);
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return &p->parser;
}

/* csv_columns: di_parser_columns, see parse.h; NULL and 0 while unknown. */
static const char *const *csv_columns(const di_parser *dp, size_t *ncolumns) {
    const csv_state *p = (const csv_state *)dp;
    *ncolumns = p->ncols;
    return (const char *const *)p->cols;
}

/* csv_table names the table the records belong to. */
static const char *csv_table(const di_parser *dp) {
    const csv_state *p = (const csv_state *)dp;
    return p->table;
}

/* csv_destroy releases everything the parser allocated (libcsv's too). */
static void csv_destroy(di_parser *dp) {
    csv_state *p = (csv_state *)dp;
    if (!p)
        return;
    csv_free(&p->cp);
    free_names(p->cols, p->ncols);
    di_buf_cleanup(&p->arena);
    free(p->offs);
    free(p->lens);
    free(p->ptrs);
    free(p->buf);
    free(p->table);
    free(p);
}
