/* fuzz_xlsx.c - libFuzzer target for XLSX workbooks as they arrive: the input
 * is the .xlsx file (a zip). Each part is opened the way the reader does it
 * (src/read/reader.c: an archive over the bytes, with seeking, searched for
 * the part's name through di_archive_next) and read with di_archive_read; a
 * hash of the input picks header, limits and resume. The workbook is read
 * twice, in one go and in small reads of input-dependent sizes: every record
 * must keep parse.h's contract and both runs must agree (archive errors word
 * their byte position by read size, so only error classes are compared). */
#include "fuzz_xlsx.h"

#include "decode/archive.h"

#define PART_BUDGET ((size_t)4 << 20) /* decompressed bytes per part (the reader's ratio cap) */

/* The input as a workbook; open and close calls are counted. */
typedef struct zip_book {
    const uint8_t *p;
    size_t len;
    int chunked;
    uint64_t seed;
    int opens, closes;
    int read_failed; /* a member read failed: what came before it depends on read sizes */
} zip_book;

/* One open part: the archive positioned on its member. */
typedef struct zip_part {
    fz_in in;
    zip_book *book;
    di_archive *a;
    size_t left; /* bytes still allowed */
    uint64_t rng;
} zip_part;

/* part_read reads the member, in small reads when chunked, within the budget. */
static int part_read(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    zip_part *z = ctx;
    if (z->in.chunked) {
        size_t c = fz_size(&z->rng);
        cap = cap < c ? cap : c;
    }
    if (di_archive_read(z->a, buf, cap, n, err) != 0) {
        z->book->read_failed = 1;
        return -1;
    }
    if (*n > z->left)
        return di_error_set(err, DI_ERR_INPUT, "part larger than %zu bytes", PART_BUDGET);
    z->left -= *n;
    return 0;
}

/* part_close is the di_part_close_fn: the archive and the handle go. */
static void part_close(void *ctx, void *part) {
    zip_part *z = part;
    ((zip_book *)ctx)->closes++;
    di_archive_close(z->a);
    free(z);
}

/* part_open is the di_part_open_fn: a new archive over the input, searched
 * for the member called name. */
static int part_open(void *ctx, const char *name, di_read_fn *read, void **out, di_error *err) {
    zip_book *b = ctx;
    zip_part *z = calloc(1, sizeof *z);
    FUZZ_CHECK(z != NULL);
    uint64_t seed = b->seed ^ fz_hash((const uint8_t *)name, strlen(name));
    fz_in_init(&z->in, b->p, b->len, b->chunked, seed);
    z->rng = seed + 1;
    z->book = b;
    z->left = PART_BUDGET;
    di_archive_io io = {fz_read, fz_seek, (int64_t)b->len, &z->in};
    b->opens++;
    z->a = di_archive_open(DI_ARCHIVE_ZIP, &io, err);
    int rc = z->a ? 0 : -1;
    const char *member;
    int64_t index;
    while (rc == 0 && (rc = di_archive_next(z->a, &member, &index, err)) == 1) {
        if (strcmp(member, name) == 0) {
            *read = part_read;
            *out = z;
            return 1;
        }
        rc = 0;
    }
    part_close(b, z);
    return rc;
}

/* run reads the workbook once; returns the digest of what it produced, or 0
 * when a member read failed (libarchive drops what that read decoded before
 * the failure, so the records before it depend on the read sizes). */
static uint64_t run(const uint8_t *data, size_t size, int chunked, uint64_t seed,
                    const fz_xlsx_opts *o) {
    zip_book b = {data, size, chunked, seed, 0, 0, 0};
    uint64_t d = fz_xlsx_book(part_open, part_close, &b, o);
    FUZZ_CHECK(b.opens == b.closes);
    return b.read_failed ? 0 : d;
}

/* LLVMFuzzerTestOneInput: the workbook must not depend on read sizes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fz_has_lzma(data, size))
        return 0;
    uint64_t seed = fz_hash(data, size), rng = seed;
    uint64_t r = fz_next(&rng);
    fz_xlsx_opts o;
    fz_xlsx_opts_init(&o, r, (r & 1) != 0, (r & 6) == 0, (r & 56) == 0);
    o.x.loose_errors = 1;
    uint64_t whole = run(data, size, 0, rng, &o);
    uint64_t pieces = run(data, size, 1, rng, &o);
    FUZZ_CHECK(whole == pieces || whole == 0 || pieces == 0);
    return 0;
}
