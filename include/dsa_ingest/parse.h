/* parse.h - stage 3: records out of the decoded byte stream.
 *
 * A parser pulls bytes through a read function (it knows nothing of sources or
 * decoders) and yields one record at a time with its table key, row number n
 * (DESIGN §2) and byte offsets, so a batch can end on an exact record boundary.
 * Field pointers are borrowed: valid until the next call on the parser. */
#ifndef DSA_INGEST_PARSE_H
#define DSA_INGEST_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/error.h"
#include "dsa_ingest/value.h"

/* The pull interface a parser reads through: fill buf, *n == 0 at end. */
typedef int (*di_read_fn)(void *ctx, void *buf, size_t cap, size_t *n, di_error *err);

typedef enum di_format {
    DI_FMT_AUTO = 0,
    DI_FMT_CSV,
    DI_FMT_TSV,
    DI_FMT_NDJSON,
    DI_FMT_XLSX, /* not a byte stream: opened through the reader (reader.h) */
} di_format;
const char *di_format_name(di_format f);
int di_format_parse(const char *s, di_format *out); /* -1 if unknown */
/* di_delimiter_ok tells whether s names a delimiter as requests and jobs give one:
 * exactly one ASCII character (a UTF-8 byte past 0x7F is part of a longer one). */
int di_delimiter_ok(const char *s);

typedef struct di_parse_opts {
    di_format format;      /* CSV, TSV or NDJSON (AUTO resolved by the caller) */
    char delimiter;        /* 0: ',' for CSV, '\t' for TSV */
    int header;            /* 1: the first record names the columns */
    size_t max_field;      /* bytes in one field (default 16 MiB) */
    size_t max_columns;    /* fields in one record (default 16384) */
    const char *table_key; /* "primary" */
    int raw_bytes; /* 1: bytes in another encoding, converted by the caller (no UTF-8 check) */
    /* Resume: start mid-stream. The first byte read is at start_offset, the
     * first record returned gets row number start_row, and the columns are
     * resume_columns (the header is not read again). */
    int64_t start_offset;
    int64_t start_row;
    const char *const *resume_columns;
    size_t resume_ncolumns;
} di_parse_opts;

void di_parse_opts_default(di_parse_opts *o);

typedef struct di_record {
    const char *const *fields; /* nfields values, each NUL-terminated, valid UTF-8 */
    const size_t *lens;
    const unsigned char *kinds; /* di_value_kind per field; NULL: every field is TEXT */
    /* NULL: the fields are the parser's columns, in order (CSV, TSV, XLSX).
     * Else the record's own keys, unique and sorted by bytes (NDJSON). */
    const char *const *names;
    size_t nfields; /* == number of columns unless names is set */
    int64_t row;    /* n: the record's number (header = 1) */
    int64_t start;  /* decoded offset of the record's first byte */
    int64_t next;   /* decoded offset where the next record starts */
} di_record;

typedef struct di_parser di_parser;

/* di_parser_new starts a parser over read(ctx). Returns NULL with err set. */
di_parser *di_parser_new(const di_parse_opts *opts, di_read_fn read, void *ctx, di_error *err);

/* di_parser_next: 1 and *rec filled; 0 at the end; -1 with err set (input class,
 * with table, row and byte). The header record is consumed, never returned. */
DI_MUSTCHECK int di_parser_next(di_parser *p, di_record *rec, di_error *err);

/* di_parser_columns: the normalised column names (DESIGN §2), valid after the
 * first di_parser_next call (or at once on resume / no-header after 1st record). */
const char *const *di_parser_columns(const di_parser *p, size_t *ncolumns);
const char *di_parser_table(const di_parser *p);
void di_parser_free(di_parser *p); /* accepts NULL */

/* di_normalize_columns applies DESIGN §2 in place: an empty name becomes
 * column_N (1-based), a repeated name gets _2, _3... Names are malloc'd; the
 * array's old entries are freed. Returns -1 on allocation failure. */
DI_MUSTCHECK int di_normalize_columns(char **names, size_t n);

/* di_utf8_valid returns the length of the valid prefix (== n when all valid). */
size_t di_utf8_valid(const unsigned char *s, size_t n);

#endif
