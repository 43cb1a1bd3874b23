/* reader.c - the object's tables and records (see reader.h). Three shapes:
 *   stream   source -> decoder (none, gzip, bz2, xz, zstd) -> one parser
 *   archive  zip members (seeking source) or tar members (behind a decoder),
 *            each its own table and parser
 *   xlsx     a zip read part by part; each sheet a table
 * Every table's bytes pass through table_read, which replays the sniffed
 * head, discards up to a resume offset, and enforces the size limits. */
#include "dsa_ingest/reader.h"

#include "dsa_ingest/buf.h"

#include "decode/archive.h"
#include "decode/decoder_impl.h"
#include "parse/xlsx.h"
#include "read/prefetch.h"
#include "read/seekable.h"
#include "read/sniff.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAGIC_BYTES ((size_t)16)
#define TAR_PEEK    ((size_t)512)
#define RATIO_FLOOR ((int64_t)64 << 20) /* the ratio limit applies past 64 MiB out */
#define AHEAD_CHUNK ((size_t)256 << 10) /* decoded bytes per read-ahead chunk */

enum { MODE_STREAM, MODE_ARCHIVE, MODE_XLSX };

struct di_reader {
    di_reader_opts o;
    char *url;
    int mode;
    /* resolved for the object */
    di_compression comp;
    di_format fmt;
    char delim;
    int header;
    /* stage 1 */
    di_source *src;
    unsigned char magic[MAGIC_BYTES];
    size_t magic_len, magic_pos;
    int64_t size;
    char etag[256];
    char display[1024];
    di_seekable sk; /* zip and xlsx */
    int have_sk;
    /* stage 2 */
    di_decoder *dec;
    int64_t in_start; /* decoder in_offset when this reader opened */
    /* read-ahead (a single stream): a thread runs source and decoder */
    di_prefetch *pf;
    di_prefetch *pf_io; /* the prefetch thread's own copy, for magic_read */
    int64_t ra_in;      /* decoder in_offset after the bytes handed on so far */
    di_archive *ar;
    int tar;              /* the archive is a tar behind dec, read front to back */
    unsigned char *dhead; /* tar: the decoded bytes peeked to recognise it */
    size_t dhead_len, dhead_pos;
    di_xlsx *xlsx;
    int64_t sheets_done;
    int64_t parts_in; /* bytes the closed workbook parts fetched */
    /* the current table */
    di_parser *parser;
    int in_table;
    int64_t seq, member;
    char member_name[512];
    char table[128];
    di_format tfmt;
    char tdelim;
    int theader;
    unsigned char *head; /* the table's first bytes, sniffed, replayed */
    size_t head_len, head_pos;
    int64_t tpos; /* table bytes handed on */
    int64_t out_total;
    char **keys; /* archive: table keys given so far (dedupe) */
    size_t nkeys;
    /* a declared encoding */
    iconv_t cd;
    int convert, cols_converted;
    di_buf conv;
    const char **cptrs;
    size_t *clens, ccap;
    char **ccols;
    size_t nccols;
};

void di_reader_opts_default(di_reader_opts *o) {
    memset(o, 0, sizeof *o);
    di_source_opts_default(&o->source);
    o->header = -1;
    o->max_field = (size_t)16 << 20;
    o->max_columns = 16384;
    o->max_decompressed = (int64_t)1 << 40;
    o->max_ratio = 500;
    o->max_xml_depth = 256;
    o->max_shared_strings = (size_t)256 << 20;
    o->readahead = 4;
}

void di_reader_pos_init(di_reader_pos *p) {
    memset(p, 0, sizeof *p);
    p->member = -1;
    p->header = -1;
    snprintf(p->table_key, sizeof p->table_key, "primary");
}

/* free_names frees an array of n strings. */
static void free_names(char **names, size_t n) {
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

void di_reader_pos_cleanup(di_reader_pos *p) {
    free_names(p->header_names, p->nheader);
    p->header_names = NULL;
    p->nheader = 0;
}

int di_reader_pos_set_header(di_reader_pos *p, const char *const *names, size_t n) {
    char **copy = calloc(n ? n : 1, sizeof *copy);
    if (!copy)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!(copy[i] = strdup(names[i]))) {
            free_names(copy, i);
            return -1;
        }
    }
    di_reader_pos_cleanup(p);
    p->header_names = copy;
    p->nheader = n;
    return 0;
}

/* ---- limits ---------------------------------------------------------- */

/* dec_in: the decoder's compressed offset behind the bytes handed on (with a
 * read-ahead, the decoder itself is further on, on its own thread). */
static int64_t dec_in(const di_reader *r) {
    if (r->pf)
        return r->ra_in;
    return r->dec ? di_decoder_in_offset(r->dec) : 0;
}

/* bytes_in_now: object bytes consumed since this reader opened. */
static int64_t bytes_in_now(const di_reader *r) {
    if (r->mode != MODE_STREAM && !r->tar)
        return r->size; /* a zip is read out of order (directory first): its whole size */
    return r->dec ? dec_in(r) - r->in_start : 0;
}

/* check_limits stops a decompression bomb: too many bytes out in all, or
 * too many out per byte in (once past RATIO_FLOOR, so small files with a
 * high ratio pass). */
static int check_limits(di_reader *r, size_t n, di_error *err) {
    r->out_total += (int64_t)n;
    if (r->o.max_decompressed > 0 && r->out_total > r->o.max_decompressed)
        return di_error_set(err, DI_ERR_INPUT,
                            "the decompressed data exceeds %lld bytes "
                            "(IMPORT_MAX_DECOMPRESSED_BYTES): refusing a possible "
                            "decompression bomb",
                            (long long)r->o.max_decompressed);
    int64_t in = bytes_in_now(r);
    if (r->o.max_ratio > 0 && r->out_total > RATIO_FLOOR &&
        (double)r->out_total > r->o.max_ratio * (double)(in > 0 ? in : 1))
        return di_error_set(err, DI_ERR_INPUT,
                            "compression ratio above %.0f:1 (%lld bytes out of %lld; "
                            "IMPORT_MAX_COMPRESSION_RATIO): refusing a possible "
                            "decompression bomb",
                            r->o.max_ratio, (long long)r->out_total, (long long)in);
    return 0;
}

/* ---- stage 1 and 2 ----------------------------------------------------- */

/* magic_read replays the bytes read to recognise the compression. On the
 * read-ahead thread it lets di_reader_mark in while it waits for the network:
 * the decoder's points are consistent whenever it pulls. */
static int magic_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    di_reader *r = ctx;
    if (r->magic_pos < r->magic_len) {
        size_t k = r->magic_len - r->magic_pos;
        k = k < cap ? k : cap;
        memcpy(buf, r->magic + r->magic_pos, k);
        r->magic_pos += k;
        *n = k;
        return 0;
    }
    if (!r->pf_io)
        return di_source_read(r->src, buf, cap, n, err);
    di_prefetch_unlock(r->pf_io);
    int rc = di_source_read(r->src, buf, cap, n, err);
    di_prefetch_lock(r->pf_io);
    return rc;
}

/* read_magic reads the object's first bytes (fewer if it is shorter). */
static int read_magic(di_reader *r, di_error *err) {
    while (r->magic_len < MAGIC_BYTES) {
        size_t n = 0;
        if (di_source_read(r->src, r->magic + r->magic_len, MAGIC_BYTES - r->magic_len, &n, err))
            return -1;
        if (n == 0)
            break;
        r->magic_len += n;
    }
    return 0;
}

/* open_source opens the object at offset and notes its size and ETag. */
static int open_source(di_reader *r, int64_t offset, di_error *err) {
    r->src = di_source_open(r->url, offset, &r->o.source, err);
    if (!r->src)
        return -1;
    snprintf(r->display, sizeof r->display, "%s", di_source_display(r->src));
    r->size = di_source_size(r->src);
    snprintf(r->etag, sizeof r->etag, "%s", di_source_etag(r->src));
    return 0;
}

/* dec_read: the decoder's output, after the tar peek replay. */
static int dec_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    di_reader *r = ctx;
    if (r->dhead_pos < r->dhead_len) {
        size_t k = r->dhead_len - r->dhead_pos;
        k = k < cap ? k : cap;
        memcpy(buf, r->dhead + r->dhead_pos, k);
        r->dhead_pos += k;
        *n = k;
        return 0;
    }
    return di_decoder_read(r->dec, buf, cap, n, err);
}

/* peek_tar reads the first decoded block: a tar has "ustar" at 257. */
static int peek_tar(di_reader *r, int *is_tar, di_error *err) {
    r->dhead = malloc(TAR_PEEK);
    if (!r->dhead)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    while (r->dhead_len < TAR_PEEK) {
        size_t n = 0;
        if (di_decoder_read(r->dec, r->dhead + r->dhead_len, TAR_PEEK - r->dhead_len, &n, err))
            return -1;
        if (n == 0)
            break;
        r->dhead_len += n;
    }
    *is_tar = r->dhead_len >= 262 && memcmp(r->dhead + 257, "ustar", 5) == 0;
    return 0;
}

/* ends_with tells whether the URL's path ends in ext (case-insensitive). */
static int ends_with(const char *url, const char *ext) {
    size_t len = strcspn(url, "?#"), el = strlen(ext);
    return len > el && strncasecmp(url + len - el, ext, el) == 0;
}

/* ---- tables ------------------------------------------------------------ */

/* ahead_fill is the read-ahead thread's fill: decoded bytes, tagged with the
 * compressed offset reached, for the limits and bytes_in of the consumer. */
static int ahead_fill(void *ctx, di_prefetch *pf, void *buf, size_t cap, size_t *n, int64_t *tag,
                      di_error *err) {
    di_reader *r = ctx;
    r->pf_io = pf;
    int rc = dec_read(r, buf, cap, n, err);
    *tag = di_decoder_in_offset(r->dec);
    return rc;
}

/* start_ahead hands source and decoder to the read-ahead thread, once the
 * main thread has sniffed what it needed (a single stream only: archives
 * seek, and a tar's members are read by libarchive). */
static int start_ahead(di_reader *r, di_error *err) {
    if (r->o.readahead <= 0)
        return 0;
    r->ra_in = di_decoder_in_offset(r->dec);
    r->pf = di_prefetch_start(ahead_fill, r, (size_t)r->o.readahead, AHEAD_CHUNK, err);
    return r->pf ? 0 : -1;
}

/* raw_read reads the current table's bytes from where they come from. */
static int raw_read(di_reader *r, void *buf, size_t cap, size_t *n, di_error *err) {
    if (r->mode == MODE_ARCHIVE)
        return di_archive_read(r->ar, buf, cap, n, err);
    if (r->pf)
        return di_prefetch_read(r->pf, buf, cap, n, &r->ra_in, err);
    return dec_read(r, buf, cap, n, err);
}

/* table_read is the parsers' read function: the sniffed head again, then the
 * rest, with the limits checked on every byte that was decompressed. */
static int table_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    di_reader *r = ctx;
    *n = 0;
    if (r->head_pos < r->head_len) {
        size_t k = r->head_len - r->head_pos;
        k = k < cap ? k : cap;
        memcpy(buf, r->head + r->head_pos, k);
        r->head_pos += k;
        *n = k;
    } else {
        if (raw_read(r, buf, cap, n, err) || check_limits(r, *n, err))
            return -1;
    }
    r->tpos += (int64_t)*n;
    return 0;
}

/* fill_head reads up to DI_SNIFF_BYTES of the table for sniffing; *complete
 * says the table ended within them. */
static int fill_head(di_reader *r, int *complete, di_error *err) {
    if (!r->head && !(r->head = malloc(DI_SNIFF_BYTES)))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    r->head_len = r->head_pos = 0;
    *complete = 0;
    while (r->head_len < DI_SNIFF_BYTES) {
        size_t n = 0;
        if (raw_read(r, r->head + r->head_len, DI_SNIFF_BYTES - r->head_len, &n, err) ||
            check_limits(r, n, err))
            return -1;
        if (n == 0) {
            *complete = 1;
            break;
        }
        r->head_len += n;
    }
    return 0;
}

/* discard skips the table's first `upto` bytes (resume inside a member). */
static int discard(di_reader *r, int64_t upto, di_error *err) {
    unsigned char scratch[16384];
    while (r->tpos < upto) {
        size_t want = (size_t)(upto - r->tpos), n = 0;
        if (want > sizeof scratch)
            want = sizeof scratch;
        if (table_read(r, scratch, want, &n, err))
            return -1;
        if (n == 0)
            return di_error_set(err, DI_ERR_INPUT,
                                "cannot resume: member \"%s\" ends at byte %lld, before the "
                                "checkpoint's byte %lld",
                                r->member_name, (long long)r->tpos, (long long)upto);
    }
    return 0;
}

/* member_format: the user's format, else the member's extension, else AUTO. */
static di_format member_format(const di_reader *r, const char *name) {
    if (r->o.format != DI_FMT_AUTO && r->o.format != DI_FMT_XLSX)
        return r->o.format;
    if (ends_with(name, ".ndjson") || ends_with(name, ".jsonl") || ends_with(name, ".json"))
        return DI_FMT_NDJSON;
    if (ends_with(name, ".tsv") || ends_with(name, ".tab"))
        return DI_FMT_TSV;
    return DI_FMT_AUTO;
}

/* resolve_dialect sniffs what the user left open from the table's head. */
static int resolve_dialect(di_reader *r, di_format fmt, di_error *err) {
    int complete = 0;
    if (fill_head(r, &complete, err))
        return -1;
    di_sniff s = {fmt, r->o.delimiter, r->o.header};
    di_sniff_text(r->head, r->head_len, complete, &s);
    r->tfmt = s.format;
    r->tdelim = s.delimiter;
    r->theader = s.header;
    return 0;
}

/* open_parser starts the table's parser, at the resume point when given. */
static int open_parser(di_reader *r, const di_reader_pos *resume, int64_t start, di_error *err) {
    di_parse_opts po;
    di_parse_opts_default(&po);
    po.format = r->tfmt;
    po.delimiter = r->tdelim;
    po.header = r->theader;
    po.max_field = r->o.max_field;
    po.max_columns = r->o.max_columns;
    po.table_key = r->table;
    po.raw_bytes = r->convert;
    if (resume) {
        po.start_offset = start;
        po.start_row = resume->row_number;
        po.resume_columns = (const char *const *)resume->header_names;
        po.resume_ncolumns = resume->nheader;
    }
    r->parser = di_parser_new(&po, table_read, r, err);
    r->cols_converted = resume && resume->nheader; /* the checkpoint kept them in UTF-8 */
    return r->parser ? 0 : -1;
}

/* close_table ends the current table's parser. */
static void close_table(di_reader *r) {
    di_parser_free(r->parser);
    r->parser = NULL;
    r->in_table = 0;
    r->head_len = r->head_pos = 0;
    r->tpos = 0;
    free_names(r->ccols, r->nccols);
    r->ccols = NULL;
    r->nccols = 0;
}

/* unique_key records a member's table key, renaming a repeat "_2", "_3"… as
 * columns are (two directories may hold a file of the same name). */
static int unique_key(di_reader *r, const char *name) {
    char base[128];
    di_archive_table_key(name, base, sizeof base);
    snprintf(r->table, sizeof r->table, "%s", base);
    for (int k = 2;; k++) {
        size_t i = 0;
        while (i < r->nkeys && strcmp(r->keys[i], r->table) != 0)
            i++;
        if (i == r->nkeys)
            break;
        snprintf(r->table, sizeof r->table, "%.100s_%d", base, k);
    }
    char **keys = realloc(r->keys, (r->nkeys + 1) * sizeof *keys);
    if (!keys)
        return -1;
    r->keys = keys;
    if (!(keys[r->nkeys] = strdup(r->table)))
        return -1;
    r->nkeys++;
    return 0;
}

/* next_member opens the next data file of the archive as a table: 1, or 0
 * after the last. With resume, members before the checkpoint's are passed. */
static int next_member(di_reader *r, const di_reader_pos *resume, di_error *err) {
    for (;;) {
        const char *name;
        int64_t index;
        int rc = di_archive_next(r->ar, &name, &index, err);
        if (rc <= 0) {
            if (rc == 0 && resume)
                return di_error_set(err, DI_ERR_INPUT,
                                    "cannot resume: the archive has no member \"%s\" any more",
                                    resume->member_name);
            return rc;
        }
        if (unique_key(r, name) < 0)
            return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        if (resume && index < resume->member)
            continue;
        if (resume && (index != resume->member || strcmp(name, resume->member_name) != 0))
            return di_error_set(err, DI_ERR_INPUT,
                                "cannot resume: member %lld of the archive is \"%s\", the "
                                "checkpoint expected \"%s\" (the archive changed)",
                                (long long)index, name, resume->member_name);
        r->member = index;
        snprintf(r->member_name, sizeof r->member_name, "%s", name);
        r->seq++;
        r->in_table = 1;
        if (resolve_dialect(r, member_format(r, name), err))
            return -1;
        if (resume && (discard(r, resume->member_offset, err) ||
                       open_parser(r, resume, resume->member_offset, err)))
            return -1;
        if (!resume && open_parser(r, NULL, 0, err))
            return -1;
        return 1;
    }
}

/* next_sheet opens the next sheet of the workbook as a table: 1, or 0. */
static int next_sheet(di_reader *r, const di_reader_pos *resume, di_error *err) {
    size_t i = (size_t)r->sheets_done;
    if (resume)
        i = (size_t)resume->member;
    if (i >= di_xlsx_sheet_count(r->xlsx)) {
        if (resume)
            return di_error_set(err, DI_ERR_INPUT,
                                "cannot resume: the workbook has no sheet %lld (\"%s\") any more",
                                (long long)resume->member, resume->member_name);
        return 0;
    }
    const char *name = di_xlsx_sheet_name(r->xlsx, i);
    if (resume && strcmp(name, resume->member_name) != 0)
        return di_error_set(err, DI_ERR_INPUT,
                            "cannot resume: sheet %zu is \"%s\", the checkpoint expected \"%s\" "
                            "(the workbook changed)",
                            i + 1, name, resume->member_name);
    r->sheets_done = (int64_t)i + 1;
    r->member = (int64_t)i;
    snprintf(r->member_name, sizeof r->member_name, "%s", name);
    snprintf(r->table, sizeof r->table, "%s", name);
    r->seq++;
    r->in_table = 1;
    di_parse_opts po;
    di_parse_opts_default(&po);
    po.format = DI_FMT_XLSX;
    po.header = r->o.header != 0;
    po.max_field = r->o.max_field;
    po.max_columns = r->o.max_columns;
    po.table_key = r->table;
    if (resume) {
        po.start_row = resume->row_number;
        po.resume_columns = (const char *const *)resume->header_names;
        po.resume_ncolumns = resume->nheader;
    }
    r->parser = di_xlsx_sheet_parser(r->xlsx, i, &po, err);
    return r->parser ? 1 : -1;
}

/* ---- xlsx parts --------------------------------------------------------- */

typedef struct xlsx_part {
    di_reader *r;
    di_seekable sk;
    di_archive *ar;
} xlsx_part;

/* part_read reads a workbook part, under the same limits as any table. */
static int part_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    xlsx_part *p = ctx;
    if (di_archive_read(p->ar, buf, cap, n, err))
        return -1;
    return check_limits(p->r, *n, err);
}

/* part_close frees what part_open made. */
static void part_close(void *ctx, void *part) {
    xlsx_part *p = part;
    if (!p)
        return;
    p->r->parts_in += di_seekable_fetched(&p->sk);
    di_archive_close(p->ar);
    di_seekable_close(&p->sk);
    free(p);
}

/* part_open finds a part by name through the zip's central directory; each
 * part has its own ranged reads, so a sheet streams while nothing else does. */
static int part_open(void *ctx, const char *name, di_read_fn *read, void **out, di_error *err) {
    di_reader *r = ctx;
    xlsx_part *p = calloc(1, sizeof *p);
    if (!p)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    p->r = r;
    di_seekable_init(&p->sk, r->url, &r->o.source, r->size, r->etag);
    di_archive_io io = {di_seekable_read, di_seekable_seek, r->size, &p->sk};
    p->ar = di_archive_open(DI_ARCHIVE_ZIP, &io, err);
    const char *member;
    int64_t index;
    int rc = p->ar ? 0 : -1;
    while (rc == 0 && (rc = di_archive_next(p->ar, &member, &index, err)) == 1) {
        if (strcmp(member, name) == 0) {
            *read = part_read;
            *out = p;
            return 1;
        }
        rc = 0;
    }
    part_close(r, p);
    return rc;
}

/* zip_has_workbook tells whether a zip is an XLSX workbook. */
static int zip_has_workbook(di_reader *r, int *yes, di_error *err) {
    di_read_fn read;
    void *part = NULL;
    int rc = part_open(r, "xl/workbook.xml", &read, &part, err);
    part_close(r, part);
    *yes = rc == 1;
    return rc < 0 ? -1 : 0;
}

/* ---- opening ------------------------------------------------------------ */

/* open_zip reads a zip through its central directory: a workbook, or an
 * archive of data files. */
static int open_zip(di_reader *r, const di_reader_pos *resume, di_error *err) {
    if (r->size < 0)
        return di_error_set(err, DI_ERR_CONFIG,
                            "the server did not say how long the zip is: it cannot be read "
                            "through its central directory");
    int workbook = r->fmt == DI_FMT_XLSX;
    if (r->fmt == DI_FMT_AUTO && (ends_with(r->url, ".xlsx") || ends_with(r->url, ".xlsm")))
        workbook = 1;
    else if (r->fmt == DI_FMT_AUTO && zip_has_workbook(r, &workbook, err))
        return -1;
    if (workbook) {
        r->mode = MODE_XLSX;
        r->fmt = DI_FMT_XLSX;
        di_xlsx_limits lim = {r->o.max_xml_depth, r->o.max_shared_strings, r->o.max_field,
                              r->o.max_columns};
        r->xlsx = di_xlsx_open(part_open, part_close, r, &lim, err);
        return r->xlsx ? 0 : -1;
    }
    r->mode = MODE_ARCHIVE;
    di_seekable_init(&r->sk, r->url, &r->o.source, r->size, r->etag);
    r->have_sk = 1;
    di_archive_io io = {di_seekable_read, di_seekable_seek, r->size, &r->sk};
    r->ar = di_archive_open(DI_ARCHIVE_ZIP, &io, err);
    return r->ar ? 0 : -1;
}

/* open_tar reads a tar behind the decoder, front to back. */
static int open_tar(di_reader *r, di_error *err) {
    r->mode = MODE_ARCHIVE;
    r->tar = 1;
    di_archive_io io = {dec_read, NULL, -1, r};
    r->ar = di_archive_open(DI_ARCHIVE_TAR, &io, err);
    return r->ar ? 0 : -1;
}

/* choose_compression: the checkpoint's, the user's, or the magic bytes'. */
static int choose_compression(di_reader *r, const di_reader_pos *resume, di_error *err) {
    if (resume) {
        r->comp = resume->compression;
        return 0;
    }
    r->comp = r->o.compression;
    if (r->comp != DI_COMP_AUTO)
        return 0;
    if (read_magic(r, err))
        return -1;
    r->comp = di_compression_sniff(r->magic, r->magic_len, r->url);
    return 0;
}

/* open_stream stacks the decoder on the source and finds out whether a tar
 * is inside; then the single table's dialect and parser. */
static int open_stream(di_reader *r, const di_reader_pos *resume, di_error *err) {
    const di_decode_point *pt = resume && resume->has_point ? &resume->point : NULL;
    r->dec = di_decoder_open_fn(magic_read, r, r->comp, pt, err);
    if (!r->dec)
        return -1;
    r->in_start = di_decoder_in_offset(r->dec);
    int is_tar = 0;
    if (resume)
        is_tar = resume->member >= 0;
    else if (peek_tar(r, &is_tar, err))
        return -1;
    if (is_tar)
        return open_tar(r, err);
    r->mode = MODE_STREAM;
    snprintf(r->table, sizeof r->table, "primary");
    r->member = -1;
    r->seq = 1;
    r->in_table = 1;
    if (resume) {
        r->tfmt = r->fmt;
        r->tdelim = r->delim;
        r->theader = r->header;
        if (open_parser(r, resume, resume->point.out_offset + resume->point.skip, err))
            return -1;
        return start_ahead(r, err);
    }
    if (resolve_dialect(r, r->fmt, err) || open_parser(r, NULL, 0, err))
        return -1;
    return start_ahead(r, err);
}

/* open_encoding prepares iconv for a declared encoding other than UTF-8. */
static int open_encoding(di_reader *r, di_error *err) {
    const char *e = r->o.encoding;
    if (!e || !*e || strcasecmp(e, "utf-8") == 0 || strcasecmp(e, "utf8") == 0)
        return 0;
    if (strncasecmp(e, "utf-16", 6) == 0 || strncasecmp(e, "utf-32", 6) == 0 ||
        strncasecmp(e, "ucs", 3) == 0)
        return di_error_set(err, DI_ERR_CONFIG,
                            "encoding \"%s\" is not ASCII-compatible: convert the file to "
                            "UTF-8 first",
                            e);
    static const struct {
        const char *alias, *name;
    } k_aliases[] = {{"latin-1", "ISO-8859-1"},  {"latin1", "ISO-8859-1"}, {"l1", "ISO-8859-1"},
                     {"windows-1252", "CP1252"}, {"win-1252", "CP1252"},   {"cp-1252", "CP1252"}};
    for (size_t i = 0; i < sizeof k_aliases / sizeof *k_aliases; i++)
        if (strcasecmp(e, k_aliases[i].alias) == 0)
            e = k_aliases[i].name;
    r->cd = iconv_open("UTF-8", e);
    if (r->cd == (iconv_t)-1)
        return di_error_set(err, DI_ERR_CONFIG, "unknown encoding \"%s\"", e);
    r->convert = 1;
    di_buf_init(&r->conv, (size_t)1 << 30);
    return 0;
}

/* restore takes the resolved choices from the checkpoint. */
static void restore(di_reader *r, const di_reader_pos *resume) {
    r->fmt = resume->format;
    r->delim = resume->delimiter;
    r->header = resume->header;
    if (r->fmt == DI_FMT_AUTO) /* a checkpoint from before format sniffing */
        r->fmt = ends_with(r->url, ".tsv") ? DI_FMT_TSV : DI_FMT_CSV;
    if (r->header < 0)
        r->header = 1;
}

di_reader *di_reader_open(const di_reader_opts *o, const di_reader_pos *resume, di_error *err) {
    di_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->url = strdup(o->url))) {
        free(r);
        di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    r->o = *o;
    r->o.url = r->url;
    r->cd = (iconv_t)-1;
    r->fmt = o->format;
    r->delim = o->delimiter;
    r->header = o->header;
    if (resume && resume->row_number <= 0)
        resume = NULL; /* nothing was read: start afresh */
    if (resume)
        restore(r, resume);
    int zip = resume && resume->compression == DI_COMP_ZIP;
    int64_t offset =
        resume && resume->has_point && !zip ? di_decode_source_offset(&resume->point) : 0;
    if (open_encoding(r, err) || open_source(r, offset, err) || choose_compression(r, resume, err))
        goto fail;
    if (r->convert && (r->fmt == DI_FMT_NDJSON || r->fmt == DI_FMT_XLSX))
        goto bad_encoding;
    if (r->comp == DI_COMP_ZIP) {
        di_source_close(r->src);
        r->src = NULL;
        if (open_zip(r, resume, err))
            goto fail;
    } else if (open_stream(r, resume, err)) {
        goto fail;
    }
    if (r->mode == MODE_ARCHIVE && resume && next_member(r, resume, err) < 0)
        goto fail;
    if (r->mode == MODE_XLSX && resume && next_sheet(r, resume, err) < 0)
        goto fail;
    return r;
bad_encoding:
    di_error_set(err, DI_ERR_CONFIG, "--encoding applies to CSV and TSV only");
fail:
    di_error_prefix(err, r->display[0] ? r->display : r->url);
    di_reader_close(r);
    return NULL;
}

/* ---- records ------------------------------------------------------------ */

/* convert_to appends text f converted to UTF-8 to buf, NUL-terminated, and
 * gives its offset there. */
static int convert_to(di_reader *r, di_buf *buf, const char *f, size_t len, size_t *off,
                      di_error *err) {
    *off = buf->len;
    char *in = (char *)f;
    size_t left = len;
    iconv(r->cd, NULL, NULL, NULL, NULL);
    while (left > 0) {
        if (di_buf_reserve(buf, left * 4 + 8))
            return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
        char *out = buf->data + buf->len;
        size_t room = left * 4 + 8;
        size_t rc = iconv(r->cd, &in, &left, &out, &room);
        buf->len = (size_t)(out - buf->data);
        if (rc == (size_t)-1 && errno != E2BIG)
            return di_error_set(err, DI_ERR_INPUT, "byte 0x%02x is not a character in %s",
                                (unsigned char)*in, r->o.encoding);
    }
    return di_buf_putc(buf, '\0') ? di_error_set(err, DI_ERR_INTERNAL, "out of memory") : 0;
}

/* grow_conv makes room for n converted field pointers. */
static int grow_conv(di_reader *r, size_t n) {
    if (n <= r->ccap)
        return 0;
    const char **p = realloc(r->cptrs, n * sizeof *p);
    size_t *l = p ? realloc(r->clens, n * sizeof *l) : NULL;
    if (p)
        r->cptrs = p;
    if (!l)
        return -1;
    r->clens = l;
    r->ccap = n;
    return 0;
}

/* convert_record rewrites a record's fields in UTF-8 (--encoding). */
static int convert_record(di_reader *r, di_record *rec, di_error *err) {
    di_buf_reset(&r->conv);
    if (grow_conv(r, rec->nfields))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < rec->nfields; i++) {
        size_t off;
        if (convert_to(r, &r->conv, rec->fields[i], rec->lens[i], &off, err))
            return di_error_at(err, err->cls, r->table, rec->row, rec->start, "%s", err->message);
        r->clens[i] = r->conv.len - 1 - off;
        r->cptrs[i] = (const char *)(uintptr_t)off; /* the arena may move: offsets first */
    }
    for (size_t i = 0; i < rec->nfields; i++)
        r->cptrs[i] = r->conv.data + (uintptr_t)r->cptrs[i];
    rec->fields = r->cptrs;
    rec->lens = r->clens;
    return 0;
}

/* open_next_table moves to the next member or sheet: 1, or 0 at the end. */
static int open_next_table(di_reader *r, di_error *err) {
    if (r->mode == MODE_ARCHIVE)
        return next_member(r, NULL, err);
    if (r->mode == MODE_XLSX)
        return next_sheet(r, NULL, err);
    return 0;
}

int di_reader_next(di_reader *r, di_record *rec, di_error *err) {
    for (;;) {
        if (!r->in_table) {
            int rc = open_next_table(r, err);
            if (rc <= 0)
                return rc;
        }
        int rc = di_parser_next(r->parser, rec, err);
        if (rc == 1 && r->convert && convert_record(r, rec, err)) {
            err->code = DI_CODE_RECORD;
            return -1;
        }
        if (rc != 0)
            return rc;
        if (r->mode == MODE_STREAM)
            return 0;
        close_table(r);
    }
}

const char *di_reader_table(const di_reader *r) {
    return r->table;
}

int64_t di_reader_table_seq(const di_reader *r) {
    return r->seq;
}

const char *const *di_reader_columns(di_reader *r, size_t *n) {
    *n = 0;
    if (!r->parser)
        return NULL;
    const char *const *cols = di_parser_columns(r->parser, n);
    if (!r->convert || r->cols_converted || !cols)
        return cols;
    if (!r->ccols) { /* its own buffer: the record's fields live in r->conv */
        char **c = calloc(*n ? *n : 1, sizeof *c);
        di_buf tmp;
        di_buf_init(&tmp, (size_t)1 << 30);
        di_error ignored;
        for (size_t i = 0; c && i < *n; i++) {
            size_t off;
            di_buf_reset(&tmp);
            c[i] = strdup(convert_to(r, &tmp, cols[i], strlen(cols[i]), &off, &ignored) == 0
                              ? tmp.data + off
                              : cols[i]);
        }
        di_buf_cleanup(&tmp);
        r->ccols = c;
        r->nccols = c ? *n : 0;
    }
    return (const char *const *)r->ccols;
}

void di_reader_mark(const di_reader *r, int64_t next, di_reader_pos *pos, int *rewind) {
    pos->compression = r->comp;
    pos->format = r->mode == MODE_XLSX ? DI_FMT_XLSX : r->fmt == DI_FMT_AUTO ? r->tfmt : r->fmt;
    pos->delimiter = r->mode == MODE_STREAM ? r->tdelim : r->delim;
    pos->header = r->mode == MODE_STREAM ? r->theader : r->header;
    pos->member = r->member;
    snprintf(pos->member_name, sizeof pos->member_name, "%s", r->member_name);
    snprintf(pos->table_key, sizeof pos->table_key, "%s", r->table);
    *rewind = 0;
    if (r->mode != MODE_STREAM) {
        memset(&pos->point, 0, sizeof pos->point);
        pos->has_point = 0;
        pos->member_offset = next;
        *rewind = r->tar; /* a tar behind a decoder is read again from its start */
        return;
    }
    pos->member_offset = 0;
    pos->has_point = 1;
    if (r->pf)
        di_prefetch_lock(r->pf);
    int rc = di_decoder_mark(r->dec, next, &pos->point);
    if (r->pf)
        di_prefetch_unlock(r->pf);
    if (rc == 0)
        return;
    memset(&pos->point, 0, sizeof pos->point);
    pos->point.kind = r->comp;
    pos->point.member_start = 1;
    pos->point.skip = next;
    *rewind = 1;
}

di_compression di_reader_compression(const di_reader *r) {
    return r->comp;
}

di_format di_reader_format(const di_reader *r) {
    if (r->mode == MODE_XLSX)
        return DI_FMT_XLSX;
    return r->in_table || r->mode == MODE_STREAM ? r->tfmt : r->fmt;
}

char di_reader_delimiter(const di_reader *r) {
    return r->tdelim;
}

int di_reader_header(const di_reader *r) {
    return r->theader;
}

int64_t di_reader_bytes_in(const di_reader *r) {
    if (r->mode == MODE_STREAM || r->tar)
        return dec_in(r);
    if (r->have_sk)
        return di_seekable_fetched(&r->sk);
    return r->parts_in;
}

int64_t di_reader_bytes_out(const di_reader *r) {
    return r->out_total;
}

int64_t di_reader_size(const di_reader *r) {
    return r->size;
}

const char *di_reader_etag(const di_reader *r) {
    return r->etag;
}

const char *di_reader_display(const di_reader *r) {
    return r->display[0] ? r->display : r->url;
}

void di_reader_close(di_reader *r) {
    if (!r)
        return;
    di_prefetch_stop(r->pf); /* first: the thread uses source and decoder */
    r->pf = NULL;
    close_table(r);
    di_xlsx_close(r->xlsx);
    di_archive_close(r->ar);
    if (r->have_sk)
        di_seekable_close(&r->sk);
    di_decoder_close(r->dec);
    di_source_close(r->src);
    if (r->cd != (iconv_t)-1)
        iconv_close(r->cd);
    di_buf_cleanup(&r->conv);
    free(r->cptrs);
    free(r->clens);
    free(r->head);
    free(r->dhead);
    free_names(r->keys, r->nkeys);
    free(r->url);
    free(r);
}
