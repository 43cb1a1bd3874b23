/* reader.h - stages 1 to 3 wired together: the tables and records of one
 * stored object, whatever its compression, archive and format.
 *
 * The reader opens the source, recognises the compression and the format
 * (magic bytes, then the name; the CSV dialect from the first KB, as DuckDB's
 * sniffer does), walks the members of a zip or tar and the sheets of a
 * workbook, applies the size and ratio limits, converts a declared encoding,
 * and hands out records one at a time. It can describe the position after any
 * record it returned (di_reader_mark), and reopen there (resume). The job
 * runner and `dsa-ingest scan` are its two users.
 *
 * Threads: a single stream (not an archive or a workbook) is read ahead on a
 * thread of the reader's own (opts.readahead chunks of 256 KiB decoded bytes),
 * so the source and the decoder run on one core while the caller parses on
 * another. The caller sees no difference: same bytes, same records, same
 * errors at the same places, and every function below is still called from
 * the caller's one thread. di_reader_mark waits at most for one decode step of
 * the thread; di_reader_close waits for the read in flight (bounded by the
 * source's stall timeout) and joins the thread. */
#ifndef DSA_INGEST_READER_H
#define DSA_INGEST_READER_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/decode.h"
#include "dsa_ingest/error.h"
#include "dsa_ingest/parse.h"
#include "dsa_ingest/source.h"

typedef struct di_reader_opts {
    const char *url;
    di_source_opts source;      /* network settings; source.etag pins a resume */
    di_compression compression; /* AUTO: magic bytes, then the name */
    di_format format;           /* AUTO: sniffed */
    char delimiter;             /* 0: sniffed (CSV) or by format */
    int header;                 /* 1 or 0; -1: sniffed */
    const char *encoding;       /* NULL or "utf-8": validated UTF-8; else converted (iconv) */
    size_t max_field;           /* IMPORT_MAX_FIELD_SIZE */
    size_t max_columns;         /* IMPORT_MAX_COLUMNS */
    int64_t max_decompressed;   /* IMPORT_MAX_DECOMPRESSED_BYTES; 0: no limit */
    double max_ratio;           /* IMPORT_MAX_COMPRESSION_RATIO; 0: no limit */
    size_t max_xml_depth;       /* IMPORT_XLSX_MAX_XML_DEPTH */
    size_t max_shared_strings;  /* IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES */
    int readahead;              /* read-ahead chunks on the reader's thread (4); 0: no thread */
} di_reader_opts;

void di_reader_opts_default(di_reader_opts *o);

/* Where to resume: what a checkpoint keeps of the reader. The caller owns
 * header; di_reader_pos_cleanup frees it. */
typedef struct di_reader_pos {
    /* resolved when the job first opened the object, kept for every resume */
    di_compression compression;
    di_format format;
    char delimiter;
    int header;
    /* the table being read */
    int64_t member;        /* archive member / sheet index; -1: a single stream */
    char member_name[512]; /* checked on resume: the archive must not have changed */
    char table_key[128];
    int64_t row_number; /* n of the next record; 0 = nothing read yet */
    char **header_names;
    size_t nheader;
    /* single stream: where the decoder restarts */
    di_decode_point point;
    int has_point;
    int64_t member_offset; /* member / sheet: decoded offset of the next record in it */
} di_reader_pos;

void di_reader_pos_init(di_reader_pos *p);
void di_reader_pos_cleanup(di_reader_pos *p);
DI_MUSTCHECK int di_reader_pos_set_header(di_reader_pos *p, const char *const *names, size_t n);

typedef struct di_reader di_reader;

/* di_reader_open opens the object; with resume (has a table_key and
 * row_number > 0) it starts after the record the position was marked at.
 * Returns NULL with err set. */
di_reader *di_reader_open(const di_reader_opts *o, const di_reader_pos *resume, di_error *err);

/* di_reader_next: 1 with *rec (fields valid until the next call); 0 at the
 * end of the object; -1 with err set. An error with err->code ==
 * DI_CODE_RECORD is about one record only: the reader stands after it and the
 * next call goes on (so a caller may skip up to --max-errors of them). */
DI_MUSTCHECK int di_reader_next(di_reader *r, di_record *rec, di_error *err);

/* The current table: its key, its sequence number (changes when a new table
 * starts) and columns (NULL and 0 while unknown). */
const char *di_reader_table(const di_reader *r);
int64_t di_reader_table_seq(const di_reader *r);
const char *const *di_reader_columns(di_reader *r, size_t *n);

/* di_reader_mark fills pos (resolved options, table, decoder point or member
 * offset) for a restart at decoded offset next of the current table, which
 * must be the `next` of the last record returned. table_key, row_number and
 * the header are the caller's to fill. Logs nothing; *rewind is set when a
 * resume must re-read the object from its start. */
void di_reader_mark(const di_reader *r, int64_t next, di_reader_pos *pos, int *rewind);

/* The resolved choices, for messages and the checkpoint. */
di_compression di_reader_compression(const di_reader *r);
di_format di_reader_format(const di_reader *r);
char di_reader_delimiter(const di_reader *r);
int di_reader_header(const di_reader *r);

int64_t di_reader_bytes_in(const di_reader *r);    /* bytes of the object consumed */
int64_t di_reader_bytes_out(const di_reader *r);   /* decoded bytes produced */
int64_t di_reader_size(const di_reader *r);        /* the object's size, -1 unknown */
const char *di_reader_etag(const di_reader *r);    /* "" if none */
const char *di_reader_display(const di_reader *r); /* the URL without secrets */
void di_reader_close(di_reader *r);                /* accepts NULL */

#endif
