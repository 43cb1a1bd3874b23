/* decode.c - stage 2's front: choosing the kind (names, magic bytes, URL
 * extension), the handle every kind shares (offsets, resume skip, sticky
 * errors), and the "none" kind, a passthrough. Each compressed kind lives in
 * its own file (gzip.c) and plugs in through di_decoder_ops. */
#include "decoder_impl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One row per kind a user may name; new kinds are appended. */
static const struct {
    const char *name;
    di_compression kind;
} k_names[] = {
    {"auto", DI_COMP_AUTO}, {"none", DI_COMP_NONE},   {"gzip", DI_COMP_GZIP},
    {"bz2", DI_COMP_BZIP2}, {"xz", DI_COMP_XZ},       {"zstd", DI_COMP_ZSTD},
    {"zip", DI_COMP_ZIP},   {"bzip2", DI_COMP_BZIP2}, /* aliases after the canonical names */
    {"zst", DI_COMP_ZSTD},  {"gz", DI_COMP_GZIP},
};

/* Magic bytes at the start of the object (the bidders of libarchive). */
static const struct {
    const unsigned char magic[6];
    size_t len;
    di_compression kind;
} k_magics[] = {
    {{0x1f, 0x8b}, 2, DI_COMP_GZIP},
    {{'B', 'Z', 'h'}, 3, DI_COMP_BZIP2},
    {{0xfd, '7', 'z', 'X', 'Z', 0x00}, 6, DI_COMP_XZ},
    {{0x28, 0xb5, 0x2f, 0xfd}, 4, DI_COMP_ZSTD},
    {{'P', 'K', 0x03, 0x04}, 4, DI_COMP_ZIP},
    {{'P', 'K', 0x05, 0x06}, 4, DI_COMP_ZIP}, /* an empty zip */
};

/* File name extensions, tried when no magic matched. */
static const struct {
    const char *ext;
    di_compression kind;
} k_exts[] = {
    {".gz", DI_COMP_GZIP},   {".gzip", DI_COMP_GZIP}, {".tgz", DI_COMP_GZIP},
    {".bz2", DI_COMP_BZIP2}, {".xz", DI_COMP_XZ},     {".zst", DI_COMP_ZSTD},
    {".zstd", DI_COMP_ZSTD}, {".zip", DI_COMP_ZIP},   {".xlsx", DI_COMP_ZIP},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* di_compression_name gives the name used in flags, job parameters and
 * checkpoints: the first row of the kind (aliases come later). */
const char *di_compression_name(di_compression c) {
    for (size_t i = 0; i < COUNT(k_names); i++)
        if (k_names[i].kind == c)
            return k_names[i].name;
    return "unknown";
}

/* di_compression_parse reads a --compression value; case does not matter. */
int di_compression_parse(const char *s, di_compression *out) {
    for (size_t i = 0; s && i < COUNT(k_names); i++) {
        if (strcasecmp(s, k_names[i].name) == 0) {
            *out = k_names[i].kind;
            return 0;
        }
    }
    return -1;
}

/* url_has_ext tells whether the URL's path (without its query string) ends in ext. */
static int url_has_ext(const char *url, const char *ext) {
    size_t len = strcspn(url, "?");
    size_t elen = strlen(ext);
    return len > elen && strncasecmp(url + len - elen, ext, elen) == 0;
}

/* di_compression_sniff trusts magic bytes first, because stored names lie less
 * often than they are missing; the extension decides only when no magic matches. */
di_compression di_compression_sniff(const unsigned char *head, size_t n, const char *url) {
    for (size_t i = 0; head && i < COUNT(k_magics); i++)
        if (n >= k_magics[i].len && memcmp(head, k_magics[i].magic, k_magics[i].len) == 0)
            return k_magics[i].kind;
    for (size_t i = 0; url && i < COUNT(k_exts); i++)
        if (url_has_ext(url, k_exts[i].ext))
            return k_exts[i].kind;
    return DI_COMP_NONE;
}

/* di_decode_source_offset: a mid-member gzip point with bits still needs the
 * byte before in_offset (its high bits start the next block). */
int64_t di_decode_source_offset(const di_decode_point *pt) {
    if (pt->kind == DI_COMP_GZIP && !pt->member_start && pt->bits)
        return pt->in_offset - 1;
    return pt->in_offset;
}

/* none_read fills buf from the source: with no compression, in == out. */
static int none_read(di_decoder *d, void *buf, size_t cap, size_t *n, di_error *err) {
    unsigned char *out = buf;
    *n = 0;
    while (*n < cap && !d->at_end) {
        size_t got = 0;
        if (d->pull(d->ctx, out + *n, cap - *n, &got, err) < 0)
            return -1;
        *n += got;
        d->in_offset += (int64_t)got;
        d->at_end = got == 0;
    }
    return 0;
}

/* none_mark: any position is its own restart point, at the same byte. */
static int none_mark(const di_decoder *d, int64_t out_pos, di_decode_point *pt) {
    pt->kind = DI_COMP_NONE;
    pt->in_offset = out_pos;
    pt->bits = 0;
    pt->out_offset = out_pos;
    pt->skip = 0;
    pt->member_start = 0;
    pt->window_len = 0;
    return 0;
}

/* none_close: the passthrough has no state of its own. */
static void none_close(di_decoder *d) {}

static const di_decoder_ops k_none_ops = {none_read, none_mark, none_close};

/* check_resume refuses a point that cannot have come from this decoder kind
 * (a damaged or hand-edited checkpoint) before any byte is read. */
static int check_resume(const di_decode_point *pt, di_compression kind, di_error *err) {
    const char *why = NULL;
    if (pt->kind != kind)
        why = "it was made for another compression kind";
    else if (pt->bits < 0 || pt->bits > 7 || pt->window_len > DI_WINDOW_SIZE)
        why = "bits or window out of range";
    else if (pt->in_offset < (pt->bits ? 1 : 0) || pt->out_offset < 0 || pt->skip < 0)
        why = "negative offset";
    else if (kind == DI_COMP_NONE && pt->in_offset != pt->out_offset)
        why = "uncompressed offsets differ";
    else if (di_filter_kind(kind) && (pt->in_offset != 0 || pt->out_offset != 0))
        why = "bz2, xz and zstd restart only at the start of the object";
    if (why)
        return di_error_set(err, DI_ERR_CONFIG, "invalid decoder resume point: %s", why);
    return 0;
}

/* di_decoder_open_fn builds the shared handle, then lets the kind fill it in. */
di_decoder *di_decoder_open_fn(di_pull_fn pull, void *ctx, di_compression kind,
                               const di_decode_point *resume, di_error *err) {
    if (kind != DI_COMP_NONE && kind != DI_COMP_GZIP && !di_filter_kind(kind)) {
        di_error_set(err, DI_ERR_INTERNAL, "decoder opened with compression '%s'",
                     di_compression_name(kind));
        return NULL;
    }
    if (resume && check_resume(resume, kind, err) < 0)
        return NULL;
    di_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        di_error_set(err, DI_ERR_INTERNAL, "out of memory opening the decoder");
        return NULL;
    }
    d->kind = kind;
    d->pull = pull;
    d->ctx = ctx;
    d->ops = &k_none_ops;
    if (resume) {
        d->in_offset = resume->in_offset;
        d->out_offset = resume->out_offset;
        d->skip = resume->skip;
    }
    if ((kind == DI_COMP_GZIP && di_gzip_init(d, resume, err) < 0) ||
        (di_filter_kind(kind) && di_filter_init(d, err) < 0)) {
        di_decoder_close(d);
        return NULL;
    }
    return d;
}

/* source_pull adapts di_source_read to the decoder's pull function. */
static int source_pull(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    return di_source_read(ctx, buf, cap, n, err);
}

/* di_decoder_open decodes a real source; everything else is di_decoder_open_fn. */
di_decoder *di_decoder_open(di_source *src, di_compression kind, const di_decode_point *resume,
                            di_error *err) {
    return di_decoder_open_fn(source_pull, src, kind, resume, err);
}

/* fail makes the error sticky: a decoder that hit bad input or a dead source
 * must not pretend to continue on the next call. */
static int fail(di_decoder *d, const di_error *err) {
    d->failed = 1;
    d->failure = *err;
    return -1;
}

/* skip_to_resume discards the bytes between the access point and the position
 * the checkpoint wants, through a small stack buffer (no allocation). */
static int skip_to_resume(di_decoder *d, di_error *err) {
    unsigned char scratch[16384];
    while (d->skip > 0) {
        size_t want = d->skip < (int64_t)sizeof scratch ? (size_t)d->skip : sizeof scratch;
        size_t got = 0;
        int rc = d->ops->read(d, scratch, want, &got, err);
        d->out_offset += (int64_t)got;
        d->skip -= (int64_t)got;
        if (rc < 0)
            return -1;
        if (got == 0)
            return di_error_set(err, DI_ERR_INPUT,
                                "cannot resume: the data ends at decompressed byte %lld, "
                                "before the checkpoint's position %lld",
                                (long long)d->out_offset, (long long)(d->out_offset + d->skip));
    }
    return 0;
}

/* di_decoder_read hands out decoded bytes; if the kind failed after producing
 * some, those are returned now and the error on the next call, so the parser
 * sees every good byte before the failure. */
int di_decoder_read(di_decoder *d, void *buf, size_t cap, size_t *n, di_error *err) {
    *n = 0;
    if (d->failed) {
        *err = d->failure;
        return -1;
    }
    if (d->skip > 0 && skip_to_resume(d, err) < 0)
        return fail(d, err);
    int rc = d->ops->read(d, buf, cap, n, err);
    d->out_offset += (int64_t)*n;
    if (rc < 0) {
        fail(d, err);
        return *n ? 0 : -1;
    }
    return 0;
}

/* di_decoder_mark only describes bytes already returned: a point for a later
 * position could still change as decoding goes on. */
int di_decoder_mark(const di_decoder *d, int64_t out_pos, di_decode_point *pt) {
    if (out_pos < 0 || out_pos > d->out_offset)
        return -1;
    return d->ops->mark(d, out_pos, pt);
}

/* di_decoder_in_offset: the kind keeps it current after every read. */
int64_t di_decoder_in_offset(const di_decoder *d) {
    return d->in_offset;
}

/* di_decoder_out_offset counts skipped bytes too, so it is absolute. */
int64_t di_decoder_out_offset(const di_decoder *d) {
    return d->out_offset;
}

/* di_decoder_close frees the kind's state and the handle, never the source. */
void di_decoder_close(di_decoder *d) {
    if (!d)
        return;
    d->ops->close(d);
    free(d);
}
