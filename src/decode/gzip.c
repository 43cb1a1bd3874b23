/* gzip.c - the resumable gzip decoder (the technique of zlib's examples/zran.c).
 * Inflates block by block (Z_BLOCK) straight into the caller's buffer, keeps a
 * small ring of access points (compressed offset, bit offset, 32 KiB window),
 * decodes concatenated members, and can restart mid-member from any kept point
 * with a raw inflate primed with the leftover bits and the window. */
#include "decoder_impl.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define GZ_SPAN   ((int64_t)1 << 20) /* decompressed bytes between access points */
#define GZ_POINTS 8                  /* access points kept (the ring) */
#ifndef DI_GZ_INBUF                  /* fuzz builds make it small, as DI_PARSE_BUF_SIZE */
#define DI_GZ_INBUF (256u << 10)
#endif
#define GZ_INBUF DI_GZ_INBUF /* compressed bytes per pull */

typedef enum gz_mode {
    GZ_MEMBER,  /* inflating a member from its header: zlib checks CRC and length */
    GZ_RAW,     /* inflating a member resumed mid-way: raw deflate, nothing to check */
    GZ_TRAILER, /* skipping the 8-byte trailer of a raw-resumed member */
    GZ_BETWEEN, /* after a member: another member, zero padding, or the end */
    GZ_ZEROS,   /* zero padding after the last member, up to the end */
    GZ_END,
} gz_mode;

typedef struct gz_state {
    z_stream strm;
    int strm_ready; /* inflateInit2 succeeded: inflateEnd on close */
    gz_mode mode;
    int eof;                         /* the pull function reported the end */
    int trailer_left;                /* GZ_TRAILER: bytes still to skip */
    int64_t in_end;                  /* absolute offset just past the bytes pulled */
    int64_t out;                     /* absolute decompressed offset produced */
    int64_t last_point_out;          /* out_offset of the newest point */
    int npoints, next_point;         /* ring fill and next slot to overwrite */
    di_decode_point ring[GZ_POINTS]; /* allocated once, with the state */
    unsigned char inbuf[GZ_INBUF];
} gz_state;

/* gz_consumed is the absolute compressed offset of the next unread byte. */
static int64_t gz_consumed(const gz_state *g) {
    return g->in_end - (int64_t)g->strm.avail_in;
}

/* gz_advance consumes bytes the decoder handles itself (trailers, padding). */
static void gz_advance(gz_state *g, uInt k) {
    g->strm.next_in += k;
    g->strm.avail_in -= k;
}

/* gz_truncated reports an end of object where more gzip data must follow. */
static int gz_truncated(const gz_state *g, di_error *err) {
    int64_t at = gz_consumed(g);
    return di_error_at(err, DI_ERR_INPUT, NULL, -1, at,
                       "truncated gzip data: the stream ends inside a member "
                       "(compressed byte %lld)",
                       (long long)at);
}

/* gz_fill pulls the next piece of the object once the previous one is used up. */
static int gz_fill(di_decoder *d, gz_state *g, di_error *err) {
    if (g->strm.avail_in > 0 || g->eof)
        return 0;
    size_t got = 0;
    if (d->pull(d->ctx, g->inbuf, GZ_INBUF, &got, err) < 0)
        return -1;
    g->eof = got == 0;
    g->strm.next_in = g->inbuf;
    g->strm.avail_in = (uInt)got;
    g->in_end += (int64_t)got;
    return 0;
}

/* gz_slot hands out the ring slot to fill next, not yet kept: a point whose
 * window could not be read is simply never committed. */
static di_decode_point *gz_slot(gz_state *g) {
    return &g->ring[g->next_point];
}

/* gz_commit keeps the filled slot, overwriting the oldest point once the ring is full. */
static void gz_commit(gz_state *g) {
    g->last_point_out = g->ring[g->next_point].out_offset;
    g->next_point = (g->next_point + 1) % GZ_POINTS;
    if (g->npoints < GZ_POINTS)
        g->npoints++;
}

/* gz_point_member keeps a member start as a point: it needs no window, but it
 * still waits for the span so that many small members do not flush the ring. */
static void gz_point_member(gz_state *g, int force) {
    if (!force && g->out - g->last_point_out < GZ_SPAN)
        return;
    di_decode_point *p = gz_slot(g);
    p->kind = DI_COMP_GZIP;
    p->in_offset = gz_consumed(g);
    p->bits = 0;
    p->out_offset = g->out;
    p->skip = 0;
    p->member_start = 1;
    p->window_len = 0;
    gz_commit(g);
}

/* gz_point_block keeps a point at a deflate block boundary (not after the last
 * block) once a span of output has passed: the window is copied into the ring
 * slot, so keeping a point never allocates. */
static void gz_point_block(gz_state *g) {
    int dt = g->strm.data_type;
    if (!(dt & 128) || (dt & 64) || g->out - g->last_point_out < GZ_SPAN)
        return;
    di_decode_point *p = gz_slot(g);
    uInt len = DI_WINDOW_SIZE;
    if (inflateGetDictionary(&g->strm, p->window, &len) != Z_OK)
        return;
    p->kind = DI_COMP_GZIP;
    p->in_offset = gz_consumed(g);
    p->bits = dt & 7;
    p->out_offset = g->out;
    p->skip = 0;
    p->member_start = 0;
    p->window_len = len;
    gz_commit(g);
}

/* gz_inflate_error turns a zlib failure into the decoder's error. */
static int gz_inflate_error(const gz_state *g, int rc, di_error *err) {
    int64_t at = gz_consumed(g);
    if (rc == Z_BUF_ERROR)
        return gz_truncated(g, err);
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT)
        return di_error_at(err, DI_ERR_INPUT, NULL, -1, at,
                           "corrupt gzip data at compressed byte %lld: %s", (long long)at,
                           g->strm.msg ? g->strm.msg : "a preset dictionary is required");
    if (rc == Z_MEM_ERROR)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory in zlib inflate");
    return di_error_set(err, DI_ERR_INTERNAL, "zlib inflate failed (%d) at compressed byte %lld",
                        rc, (long long)at);
}

/* gz_inflate runs inflate up to the next block boundary (Z_BLOCK), the only
 * places where an access point can be taken. */
static int gz_inflate(gz_state *g, unsigned char *out, size_t cap, size_t *got, di_error *err) {
    uInt room = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
    g->strm.next_out = out;
    g->strm.avail_out = room;
    int rc = inflate(&g->strm, Z_BLOCK);
    *got = room - g->strm.avail_out;
    g->out += (int64_t)*got;
    if (rc == Z_STREAM_END) {
        /* A raw-resumed member began before our first byte, so its CRC-32 and
         * length cannot be checked: skip its trailer unread. */
        g->mode = g->mode == GZ_RAW ? GZ_TRAILER : GZ_BETWEEN;
        g->trailer_left = 8;
        return 0;
    }
    if (rc == Z_OK || (rc == Z_BUF_ERROR && !g->eof)) {
        gz_point_block(g);
        return 0;
    }
    return gz_inflate_error(g, rc, err);
}

/* gz_trailer skips the trailer of a raw-resumed member, which may straddle pulls. */
static int gz_trailer(gz_state *g, di_error *err) {
    if (g->strm.avail_in == 0)
        return gz_truncated(g, err);
    uInt k = g->strm.avail_in < (uInt)g->trailer_left ? g->strm.avail_in : (uInt)g->trailer_left;
    gz_advance(g, k);
    g->trailer_left -= (int)k;
    if (g->trailer_left == 0)
        g->mode = GZ_BETWEEN;
    return 0;
}

/* gz_garbage reports bytes after the gzip data that are neither a member nor padding. */
static int gz_garbage(const gz_state *g, di_error *err) {
    int64_t at = gz_consumed(g);
    return di_error_at(err, DI_ERR_INPUT, NULL, -1, at,
                       "trailing garbage after gzip data at compressed byte %lld", (long long)at);
}

/* gz_between looks at what follows a member: the end, zero padding (some
 * writers pad to a block size), or the next member (`cat a.gz b.gz`). */
static int gz_between(gz_state *g, di_error *err) {
    if (g->strm.avail_in == 0) {
        g->mode = GZ_END;
        return 0;
    }
    unsigned char c = g->strm.next_in[0];
    if (c == 0) {
        g->mode = GZ_ZEROS;
        return 0;
    }
    if (c != 0x1f)
        return gz_garbage(g, err);
    /* gzip only from here on: a zlib stream is not a gzip member. */
    if (inflateReset2(&g->strm, 15 + 16) != Z_OK)
        return di_error_set(err, DI_ERR_INTERNAL, "zlib inflateReset2 failed");
    g->mode = GZ_MEMBER;
    gz_point_member(g, 0);
    return 0;
}

/* gz_zeros accepts zero padding to the end of the object, and nothing else. */
static int gz_zeros(gz_state *g, di_error *err) {
    while (g->strm.avail_in > 0 && g->strm.next_in[0] == 0)
        gz_advance(g, 1);
    if (g->strm.avail_in > 0)
        return gz_garbage(g, err);
    if (g->eof)
        g->mode = GZ_END;
    return 0;
}

/* gz_step does one thing the current mode asks for; *got is the output made. */
static int gz_step(di_decoder *d, gz_state *g, unsigned char *out, size_t cap, size_t *got,
                   di_error *err) {
    *got = 0;
    if (gz_fill(d, g, err) < 0)
        return -1;
    switch (g->mode) {
    case GZ_MEMBER:
    case GZ_RAW:
        return gz_inflate(g, out, cap, got, err);
    case GZ_TRAILER:
        return gz_trailer(g, err);
    case GZ_BETWEEN:
        return gz_between(g, err);
    case GZ_ZEROS:
        return gz_zeros(g, err);
    case GZ_END:
        break;
    }
    return 0;
}

/* gz_read fills the caller's buffer as far as the data goes: fewer, fuller
 * reads keep the stages above cheap. */
static int gz_read(di_decoder *d, void *buf, size_t cap, size_t *n, di_error *err) {
    gz_state *g = d->state;
    unsigned char *out = buf;
    *n = 0;
    while (*n < cap && g->mode != GZ_END) {
        size_t got;
        int rc = gz_step(d, g, out + *n, cap - *n, &got, err);
        *n += got;
        d->in_offset = gz_consumed(g);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* gz_mark picks the newest kept point at or before out_pos (the ring is walked
 * oldest first, so a later point wins a tie). */
static int gz_mark(const di_decoder *d, int64_t out_pos, di_decode_point *pt) {
    const gz_state *g = d->state;
    const di_decode_point *best = NULL;
    for (int k = 0; k < g->npoints; k++) {
        const di_decode_point *p =
            &g->ring[(g->next_point - g->npoints + k + GZ_POINTS) % GZ_POINTS];
        if (p->out_offset <= out_pos && (!best || p->out_offset >= best->out_offset))
            best = p;
    }
    if (!best)
        return -1;
    size_t head = offsetof(di_decode_point, window);
    memcpy(pt, best, head);
    memcpy(pt->window, best->window, best->window_len);
    pt->skip = out_pos - best->out_offset;
    return 0;
}

/* gz_close ends zlib and frees the state (input buffer and ring included). */
static void gz_close(di_decoder *d) {
    gz_state *g = d->state;
    if (g && g->strm_ready)
        inflateEnd(&g->strm);
    free(g);
    d->state = NULL;
}

static const di_decoder_ops k_gzip_ops = {gz_read, gz_mark, gz_close};

/* gz_prime restores a mid-member point: the leftover bits of the byte before
 * in_offset, then the 32 KiB of output the next block may refer back to. */
static int gz_prime(di_decoder *d, gz_state *g, const di_decode_point *pt, di_error *err) {
    if (pt->bits) {
        if (gz_fill(d, g, err) < 0)
            return -1;
        if (g->strm.avail_in == 0)
            return gz_truncated(g, err);
        int byte = g->strm.next_in[0];
        gz_advance(g, 1);
        if (inflatePrime(&g->strm, pt->bits, byte >> (8 - pt->bits)) != Z_OK)
            return di_error_set(err, DI_ERR_INTERNAL, "zlib inflatePrime failed");
    }
    if (pt->window_len && inflateSetDictionary(&g->strm, pt->window, (uInt)pt->window_len) != Z_OK)
        return di_error_set(err, DI_ERR_INTERNAL, "zlib inflateSetDictionary failed");
    return 0;
}

/* gz_resume starts at a kept point; that point becomes the first in the ring so
 * a checkpoint taken right away still has somewhere to restart. */
static int gz_resume(di_decoder *d, gz_state *g, const di_decode_point *pt, di_error *err) {
    g->in_end = di_decode_source_offset(pt);
    g->out = pt->out_offset;
    di_decode_point *p = gz_slot(g);
    memcpy(p, pt, offsetof(di_decode_point, window));
    memcpy(p->window, pt->window, pt->window_len);
    p->skip = 0;
    gz_commit(g);
    g->mode = pt->member_start ? GZ_MEMBER : GZ_RAW;
    return pt->member_start ? 0 : gz_prime(d, g, pt, err);
}

/* di_gzip_init allocates everything the decoder will ever need, once. */
int di_gzip_init(di_decoder *d, const di_decode_point *resume, di_error *err) {
    gz_state *g = calloc(1, sizeof *g);
    if (!g)
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory opening the gzip decoder");
    d->state = g;
    d->ops = &k_gzip_ops;
    /* 15 + 32: gzip (or zlib) header; -15: raw deflate, for a point mid-member. */
    int wbits = !resume || resume->member_start ? 15 + 32 : -15;
    if (inflateInit2(&g->strm, wbits) != Z_OK)
        return di_error_set(err, DI_ERR_INTERNAL, "zlib inflateInit2 failed");
    g->strm_ready = 1;
    if (resume)
        return gz_resume(d, g, resume, err);
    g->mode = GZ_MEMBER;
    gz_point_member(g, 1);
    return 0;
}
