/* test_decode.c - the decode stage: names and sniffing, gzip round trips made
 * in memory with zlib's deflate (sizes, read and pull granularities, multi-member
 * streams), resume from access points taken mid-decode, and bad input. */
#include "check.h"
#include "decode/decoder_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MIB ((size_t)1 << 20)

/* A compressed object in memory, read through the decoder's pull function. */
typedef struct mem_in {
    const unsigned char *data;
    size_t len, pos;
    size_t chunk;   /* most bytes one pull returns */
    int64_t pulled; /* bytes handed to the decoder */
} mem_in;

/* mem_pull gives out at most `chunk` bytes a call, like a slow source. */
static int mem_pull(void *ctx, void *buf, size_t cap, size_t *n, di_error *err) {
    mem_in *m = ctx;
    size_t k = m->len - m->pos;
    k = k < cap ? k : cap;
    k = k < m->chunk ? k : m->chunk;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    m->pulled += (int64_t)k;
    *n = k;
    return 0;
}

/* A growable byte string for building inputs. */
typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
} bytes;

/* bytes_add appends n bytes (test code: aborts on out of memory). */
static void bytes_add(bytes *b, const void *src, size_t n) {
    if (!b->p || b->len + n + 1 > b->cap) {
        b->cap = b->cap ? b->cap : 4096;
        while (b->cap < b->len + n + 1)
            b->cap *= 2;
        b->p = realloc(b->p, b->cap);
    }
    if (!b->p)
        abort();
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

/* make_text builds CSV-like text: compressible, but varied enough that every
 * deflate block differs, so there are many blocks and access points. */
static bytes make_text(size_t len, uint32_t seed) {
    static const char *words[] = {"alpha", "bravo", "charlie", "delta", "echo",   "foxtrot",
                                  "golf",  "hotel", "india",   "julia", "kilo",   "lima",
                                  "mike",  "oscar", "papa",    "rome",  "sierra", "tango"};
    bytes b = {malloc(len + 1), 0, len + 1};
    char line[128];
    uint64_t x = seed * 2654435761u + 1;
    for (long row = 0; b.len < len; row++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int k = snprintf(line, sizeof line, "%ld,%s %s,%u.%02u,%s\n", row, words[(x >> 33) % 18],
                         words[(x >> 40) % 18], (unsigned)(x >> 45) % 100000,
                         (unsigned)(x >> 20) % 100, (x >> 60) ? "yes" : "no");
        size_t take = b.len + (size_t)k > len ? len - b.len : (size_t)k;
        memcpy(b.p + b.len, line, take);
        b.len += take;
    }
    return b;
}

/* gzip_member compresses src into one gzip member appended to out. */
static void gzip_member(bytes *out, const unsigned char *src, size_t n, int level) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&s, n);
    unsigned char *z = malloc(cap);
    s.next_in = (unsigned char *)src;
    s.avail_in = (uInt)n;
    s.next_out = z;
    s.avail_out = (uInt)cap;
    if (deflate(&s, Z_FINISH) != Z_STREAM_END)
        abort();
    bytes_add(out, z, cap - s.avail_out);
    deflateEnd(&s);
    free(z);
}

/* gzip_members compresses text as members cut at the given lengths (0 = empty member). */
static bytes gzip_members(const bytes *text, const size_t *cuts, size_t ncuts, int level) {
    bytes z = {NULL, 0, 0};
    size_t at = 0;
    for (size_t i = 0; i < ncuts; i++) {
        gzip_member(&z, text->p + at, cuts[i], level);
        at += cuts[i];
    }
    gzip_member(&z, text->p + at, text->len - at, level);
    return z;
}

/* A decode run: what came out, and how it ended. */
typedef struct run {
    bytes out;
    int rc;       /* 0, or -1 when read failed */
    di_error err; /* when rc == -1 */
    int64_t in_end, out_end;
    int64_t pulled;
} run;

/* decode_run reads everything from a decoder over z[from..], resuming at pt if given. */
static run decode_run(const bytes *z, size_t from, di_compression kind, const di_decode_point *pt,
                      size_t chunk, size_t rdcap) {
    run r = {{malloc(1), 0, 1}, 0, {0}, 0, 0, 0};
    mem_in m = {z->p + from, z->len - from, 0, chunk, 0};
    di_error_clear(&r.err);
    di_decoder *d = di_decoder_open_fn(mem_pull, &m, kind, pt, &r.err);
    if (!d) {
        r.rc = -2;
        return r;
    }
    unsigned char *buf = malloc(rdcap);
    size_t n = 1;
    while (n > 0 && (r.rc = di_decoder_read(d, buf, rdcap, &n, &r.err)) == 0)
        bytes_add(&r.out, buf, n);
    r.in_end = di_decoder_in_offset(d);
    r.out_end = di_decoder_out_offset(d);
    r.pulled = m.pulled;
    di_decoder_close(d);
    free(buf);
    return r;
}

/* same_bytes compares a run's output with want[0..n). */
static int same_bytes(const bytes *got, const unsigned char *want, size_t n) {
    return got->len == n && memcmp(got->p, want, n) == 0;
}

/* test_names: the names used in flags and checkpoints, both ways. */
static void test_names(void) {
    static const struct {
        const char *name;
        di_compression kind;
    } cases[] = {{"auto", DI_COMP_AUTO}, {"none", DI_COMP_NONE}, {"gzip", DI_COMP_GZIP}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        di_compression c = DI_COMP_AUTO;
        CHECK_STR(di_compression_name(cases[i].kind), cases[i].name);
        CHECK_INT(di_compression_parse(cases[i].name, &c), 0);
        CHECK_INT(c, cases[i].kind);
    }
    di_compression c;
    CHECK_INT(di_compression_parse("GZIP", &c), 0);
    CHECK_INT(c, DI_COMP_GZIP);
    CHECK_INT(di_compression_parse("lzma", &c), -1);
    CHECK_INT(di_compression_parse("", &c), -1);
}

/* test_sniff: magic bytes first, then the URL's extension (query ignored). */
static void test_sniff(void) {
    static const struct {
        const char *head;
        size_t n;
        const char *url;
        di_compression want;
    } cases[] = {
        {"\x1f\x8b\x08", 3, "data.csv", DI_COMP_GZIP},
        {"\x1f\x8b", 2, NULL, DI_COMP_GZIP},
        {"\x1f", 1, "data.csv", DI_COMP_NONE},
        {"id,name", 7, "s3://b/k/data.csv.gz", DI_COMP_GZIP},
        {"", 0, "https://h/x.GZ?sig=abc.csv", DI_COMP_GZIP},
        {"", 0, "https://h/x.csv?name=y.gz", DI_COMP_NONE},
        {"", 0, "/tmp/a.gzip", DI_COMP_GZIP},
        {"", 0, "/tmp/a.tgzx", DI_COMP_NONE},
        {"", 0, ".gz", DI_COMP_NONE},
        {"id,name", 7, "file:///tmp/a.csv", DI_COMP_NONE},
        {"", 0, NULL, DI_COMP_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_INT(
            di_compression_sniff((const unsigned char *)cases[i].head, cases[i].n, cases[i].url),
            cases[i].want);
}

/* test_roundtrip: gzip data of several shapes decodes to exactly the original,
 * whatever the pull and read sizes, with absolute offsets at the end. */
static void test_roundtrip(void) {
    static const struct {
        size_t len;
        size_t cuts[3];
        size_t ncuts;
        int level;
        size_t chunk, rdcap;
    } cases[] = {
        {0, {0}, 0, 6, 1 << 20, 4096},
        {1, {0}, 0, 6, 1, 1},
        {3000, {0}, 0, 1, 1, 7},
        {100000, {0}, 0, 9, 13, 65536},
        {100000, {40000, 0, 1}, 3, 6, 1, 3},
        {3000000, {0}, 0, 0, 4093, 1 << 20},
        {3000000, {1000000, 0}, 2, 6, 65536, 100000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes t = make_text(cases[i].len, (uint32_t)i);
        bytes z = gzip_members(&t, cases[i].cuts, cases[i].ncuts, cases[i].level);
        run r = decode_run(&z, 0, DI_COMP_GZIP, NULL, cases[i].chunk, cases[i].rdcap);
        CHECK_INT(r.rc, 0);
        CHECK(same_bytes(&r.out, t.p, t.len));
        CHECK_INT(r.in_end, z.len);
        CHECK_INT(r.out_end, t.len);
        free(r.out.p);
        free(z.p);
        free(t.p);
    }
}

/* Positions to checkpoint during a full decode, and the points taken there. */
typedef struct marks {
    int64_t pos[64];
    di_decode_point *pt; /* one per position */
    int ok[64];
    size_t n;
} marks;

/* decode_marking decodes all of z, calling mark(P) as soon as P has been
 * returned: the moment the job runner would write a checkpoint. */
static void decode_marking(const bytes *z, const bytes *t, marks *mk, size_t rdcap) {
    mem_in m = {z->p, z->len, 0, 1 << 20, 0};
    di_error err;
    di_decoder *d = di_decoder_open_fn(mem_pull, &m, DI_COMP_GZIP, NULL, &err);
    unsigned char *buf = malloc(rdcap);
    size_t n = 1, next = 0, total = 0;
    int same = 1;
    while (n > 0 && di_decoder_read(d, buf, rdcap, &n, &err) == 0) {
        same = same && total + n <= t->len && memcmp(buf, t->p + total, n) == 0;
        total += n;
        for (; next < mk->n && mk->pos[next] <= di_decoder_out_offset(d); next++)
            mk->ok[next] = di_decoder_mark(d, mk->pos[next], &mk->pt[next]) == 0;
    }
    CHECK(same && total == t->len);
    di_decode_point *late = malloc(sizeof *late);
    if (t->len > 10 * MIB) /* the stream start has long left the ring */
        CHECK_INT(di_decoder_mark(d, 0, late), -1);
    CHECK_INT(di_decoder_mark(d, (int64_t)total + 1, late), -1);
    di_decoder_close(d);
    free(late);
    free(buf);
}

/* check_point: a point looks like the access point it claims to be. */
static void check_point(const di_decode_point *pt, int64_t pos) {
    CHECK_INT(pt->kind, DI_COMP_GZIP);
    CHECK_INT(pt->out_offset + pt->skip, pos);
    CHECK(pt->skip >= 0 && pt->skip < (int64_t)(3 * MIB));
    CHECK(pt->member_start ? pt->window_len == 0 && pt->bits == 0
                           : pt->window_len <= DI_WINDOW_SIZE);
}

/* resume_and_compare opens a new decoder at pt over the object from
 * di_decode_source_offset(pt) and checks it yields t[pos..]; returns the
 * compressed bytes it read. */
static int64_t resume_and_compare(const bytes *z, const bytes *t, const di_decode_point *pt,
                                  int64_t pos, size_t chunk) {
    size_t from = (size_t)di_decode_source_offset(pt);
    run r = decode_run(z, from, DI_COMP_GZIP, pt, chunk, 256 * 1024);
    CHECK_INT(r.rc, 0);
    CHECK(same_bytes(&r.out, t->p + pos, t->len - (size_t)pos));
    CHECK_INT(r.in_end, z->len);
    CHECK_INT(r.out_end, t->len);
    free(r.out.p);
    return r.pulled;
}

/* chain_resume resumes at pt, takes a new point ~2.5 MiB later from the resumed
 * decoder (a point made in raw mode), and resumes again from that one. */
static void chain_resume(const bytes *z, const bytes *t, const di_decode_point *pt, int64_t pos) {
    int64_t pos2 = pos + (int64_t)(5 * MIB / 2);
    if (pos2 > (int64_t)t->len)
        return;
    mem_in m = {z->p + di_decode_source_offset(pt), z->len - di_decode_source_offset(pt), 0, 65536,
                0};
    di_error err;
    di_decoder *d = di_decoder_open_fn(mem_pull, &m, DI_COMP_GZIP, pt, &err);
    static unsigned char buf[65536];
    size_t n = 1;
    while (n > 0 && di_decoder_out_offset(d) < pos2 &&
           di_decoder_read(d, buf, sizeof buf, &n, &err) == 0)
        ;
    di_decode_point *pt2 = malloc(sizeof *pt2);
    CHECK_INT(di_decoder_mark(d, pos2, pt2), 0);
    di_decoder_close(d);
    check_point(pt2, pos2);
    resume_and_compare(z, t, pt2, pos2, 65536);
    free(pt2);
}

/* test_resume: over ~20 MB of text (one member, or several), take a point
 * every ~700 KB (fewer under DSA_TEST_SCALE); each resume must match and read
 * far less than the whole. */
static void test_resume(const char *what, const bytes *t, const bytes *z, size_t rdcap) {
    marks mk;
    mk.n = 0;
    int64_t step = (int64_t)(700 * 1000 / check_scale());
    for (int64_t p = 1000; p < (int64_t)t->len && mk.n < 64; p += step)
        mk.pos[mk.n++] = p;
    mk.pos[mk.n - 1] = (int64_t)t->len; /* the very end is a valid checkpoint too */
    mk.pt = malloc(mk.n * sizeof *mk.pt);
    decode_marking(z, t, &mk, rdcap);
    int64_t pulled = 0, with_bits = 0, members = 0;
    for (size_t i = 0; i < mk.n; i++) {
        CHECK(mk.ok[i]);
        if (!mk.ok[i])
            continue;
        check_point(&mk.pt[i], mk.pos[i]);
        with_bits += mk.pt[i].bits != 0;
        members += mk.pt[i].member_start && mk.pt[i].in_offset > 0;
        pulled += resume_and_compare(z, t, &mk.pt[i], mk.pos[i], i % 3 ? 65536 : 4093);
        if (i % 4 == 1)
            chain_resume(z, t, &mk.pt[i], mk.pos[i]);
    }
    CHECK(mk.pt[0].member_start && mk.pt[0].in_offset == 0 && mk.pt[0].skip == 1000);
    CHECK(with_bits > 0);
    /* zran's point: on average a resume reads half the object, not all of it. */
    CHECK(pulled < (int64_t)(mk.n * z->len * 6 / 10));
    CHECK(resume_and_compare(z, t, &mk.pt[mk.n - 1], mk.pos[mk.n - 1], 65536) <
          (int64_t)z->len / 4);
    if (strcmp(what, "members") == 0)
        CHECK(members > 0);
    free(mk.pt);
}

/* test_resume_all builds the big inputs once and runs the resume checks on them. */
static void test_resume_all(void) {
    bytes t = make_text(20 * 1000 * 1000, 42);
    bytes z1 = gzip_members(&t, NULL, 0, 6);
    test_resume("one", &t, &z1, 65536);
    size_t cuts[] = {7 * 1000 * 1000, 0, 5 * 1000 * 1000 + 17};
    bytes z2 = gzip_members(&t, cuts, 3, 6);
    test_resume("two", &t, &z2, 1 << 20);
    /* members of exactly one span first (every point is then a member start),
     * then many small ones, as bgzip writes them */
    size_t small[40];
    for (size_t i = 0; i < 40; i++)
        small[i] = i < 8 ? MIB : 300 * 1000 + i;
    bytes z3 = gzip_members(&t, small, 40, 1);
    test_resume("members", &t, &z3, 100000);
    free(z1.p);
    free(z2.p);
    free(z3.p);
    free(t.p);
}

/* Ways to damage a valid gzip object, and what the decoder must say. */
typedef struct bad_case {
    const char *name;
    size_t cut;       /* keep the first len - cut bytes */
    long flip;        /* flip the byte at len + flip (negative) / 2 when 1 / none when 0 */
    const char *tail; /* bytes appended (tail_len of them) */
    size_t tail_len;
    int want_rc;      /* 0 or -1 */
    const char *want; /* message prefix */
    long want_byte;   /* -2: the length after damage; -3: anywhere; else an offset from len */
} bad_case;

/* damage applies a bad_case to a copy of z. */
static bytes damage(const bytes *z, const bad_case *c) {
    bytes b = {NULL, 0, 0};
    bytes_add(&b, z->p, z->len - c->cut);
    if (c->flip == 1)
        b.p[b.len / 2] ^= 0x55;
    else if (c->flip < 0)
        b.p[(long)b.len + c->flip] ^= 0x01;
    if (c->tail_len)
        bytes_add(&b, c->tail, c->tail_len);
    return b;
}

/* test_bad_input: truncation, corruption and trailing bytes, with offsets. */
static void test_bad_input(void) {
    static const bad_case cases[] = {
        {"trailer cut", 3, 0, NULL, 0, -1, "truncated gzip data: the stream ends inside", -2},
        {"half cut", (size_t)-2, 0, NULL, 0, -1, "truncated gzip data", -2},
        {"empty", (size_t)-1, 0, NULL, 0, -1, "truncated gzip data", -2},
        {"corrupt middle", 0, 1, NULL, 0, -1, "corrupt gzip data at compressed byte ", -3},
        {"bad crc", 0, -6, NULL, 0, -1, "corrupt gzip data at compressed byte ", -3},
        {"bad length", 0, -2, NULL, 0, -1, "corrupt gzip data at compressed byte ", -3},
        {"garbage", 0, 0, "hello", 5, -1, "trailing garbage after gzip data at compressed", 0},
        {"zeros", 0, 0, "\0\0\0\0\0\0\0\0\0\0", 10, 0, "", 0},
        {"zeros garbage", 0, 0, "\0\0\0x", 4, -1, "trailing garbage", 3},
        {"not a member", 0, 0, "\x1f\x00\x00\x00\x00\x00\x00\x00\x00\x00", 10, -1,
         "corrupt gzip data", -3},
        {"member cut", 0, 0, "\x1f\x8b\x08", 3, -1, "truncated gzip data", 3},
    };
    bytes t = make_text(400000, 7);
    bytes z = gzip_members(&t, NULL, 0, 6);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad_case c = cases[i];
        if (c.cut >= (size_t)-2) /* -1: everything, -2: half */
            c.cut = c.cut == (size_t)-1 ? z.len : z.len / 2;
        bytes b = damage(&z, &c);
        run r = decode_run(&b, 0, DI_COMP_GZIP, NULL, 8192, 65536);
        CHECK_INT(r.rc, c.want_rc);
        if (c.want_rc == 0) {
            CHECK(same_bytes(&r.out, t.p, t.len));
            CHECK_INT(r.in_end, b.len);
        } else {
            CHECK_INT(r.err.cls, DI_ERR_INPUT);
            CHECK(strncmp(r.err.message, c.want, strlen(c.want)) == 0);
            /* the good bytes before the failure were all handed out (corrupt
             * deflate data may decode to wrong bytes before zlib notices) */
            if (c.want_byte != -3)
                CHECK(r.out.len <= t.len && memcmp(r.out.p, t.p, r.out.len) == 0);
            if (c.want_byte == -2)
                CHECK_INT(r.err.byte, b.len);
            else if (c.want_byte == -3)
                CHECK(r.err.byte > 0 && r.err.byte <= (int64_t)b.len);
            else
                CHECK_INT(r.err.byte, (int64_t)z.len + c.want_byte);
        }
        if (r.rc != c.want_rc)
            fprintf(stderr, "case %s: %s\n", c.name, r.err.message);
        free(r.out.p);
        free(b.p);
    }
    free(z.p);
    free(t.p);
}

/* test_resume_errors: a resumed decoder reports truncation too, and refuses
 * points that do not fit the kind. */
static void test_resume_errors(void) {
    bytes t = make_text(5 * MIB, 9);
    bytes z = gzip_members(&t, NULL, 0, 6);
    marks mk = {{(int64_t)(4 * MIB)}, malloc(sizeof(di_decode_point)), {0}, 1};
    decode_marking(&z, &t, &mk, 65536);
    CHECK(mk.ok[0] && !mk.pt[0].member_start);
    bytes cut = {NULL, 0, 0};
    bytes_add(&cut, z.p, z.len - 4); /* raw-resumed member loses half its trailer */
    run r = decode_run(&cut, (size_t)di_decode_source_offset(&mk.pt[0]), DI_COMP_GZIP, mk.pt, 65536,
                       65536);
    CHECK_INT(r.rc, -1);
    CHECK_INT(r.err.cls, DI_ERR_INPUT);
    CHECK_INT(r.err.byte, cut.len);
    CHECK(same_bytes(&r.out, t.p + 4 * MIB, t.len - 4 * MIB));
    free(r.out.p);
    mk.pt[0].kind = DI_COMP_NONE;
    r = decode_run(&z, 0, DI_COMP_GZIP, mk.pt, 65536, 65536);
    CHECK_INT(r.rc, -2);
    CHECK_INT(r.err.cls, DI_ERR_CONFIG);
    free(r.out.p);
    free(cut.p);
    free(mk.pt);
    free(z.p);
    free(t.p);
}

/* test_none: passthrough; a point is just the offset, in == out, and resume
 * opens the object at that byte. */
static void test_none(void) {
    bytes t = make_text(300000, 3);
    run r = decode_run(&t, 0, DI_COMP_NONE, NULL, 999, 65536);
    CHECK_INT(r.rc, 0);
    CHECK(same_bytes(&r.out, t.p, t.len));
    CHECK_INT(r.in_end, t.len);
    free(r.out.p);
    static const int64_t pos[] = {0, 1, 65536, 123457, 300000};
    di_decode_point *pt = malloc(sizeof *pt);
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        mem_in m = {t.p, t.len, 0, 1 << 20, 0};
        di_error err;
        di_decoder *d = di_decoder_open_fn(mem_pull, &m, DI_COMP_NONE, NULL, &err);
        static unsigned char buf[300000];
        size_t n;
        CHECK_INT(di_decoder_read(d, buf, sizeof buf, &n, &err), 0);
        CHECK_INT(di_decoder_mark(d, pos[i], pt), 0);
        di_decoder_close(d);
        CHECK(pt->kind == DI_COMP_NONE && pt->in_offset == pos[i] && pt->out_offset == pos[i]);
        CHECK(pt->skip == 0 && di_decode_source_offset(pt) == pos[i]);
        r = decode_run(&t, (size_t)pos[i], DI_COMP_NONE, pt, 7, 1000);
        CHECK(same_bytes(&r.out, t.p + pos[i], t.len - (size_t)pos[i]));
        CHECK(r.in_end == (int64_t)t.len && r.out_end == (int64_t)t.len);
        free(r.out.p);
    }
    free(pt);
    free(t.p);
}

/* file_decode decodes the file at path from `from` through the real source,
 * marking at pos (if pt) once it has been returned. */
static bytes file_decode(const char *path, int64_t from, const di_decode_point *resume, int64_t pos,
                         di_decode_point *pt) {
    bytes out = {malloc(1), 0, 1};
    di_error err;
    di_source *src = di_source_open(path, from, NULL, &err);
    di_decoder *d = src ? di_decoder_open(src, DI_COMP_GZIP, resume, &err) : NULL;
    CHECK(d != NULL);
    static unsigned char buf[100000];
    size_t n = 1;
    int marked = 0;
    while (d && n > 0 && di_decoder_read(d, buf, sizeof buf, &n, &err) == 0) {
        bytes_add(&out, buf, n);
        if (pt && !marked && di_decoder_out_offset(d) >= pos)
            marked = di_decoder_mark(d, pos, pt) == 0;
    }
    CHECK(!pt || marked);
    di_decoder_close(d);
    di_source_close(src);
    return out;
}

/* test_file_source: the same through di_source_open on a real file, the way
 * the job runner wires it, including a resume opened at the point's offset. */
static void test_file_source(void) {
    char path[] = "/tmp/test_decode_XXXXXX";
    int fd = mkstemp(path);
    bytes t = make_text(3 * MIB, 5);
    size_t cuts[] = {MIB / 2};
    bytes z = gzip_members(&t, cuts, 1, 6);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    CHECK(f && fwrite(z.p, 1, z.len, f) == z.len && fclose(f) == 0);
    di_decode_point *pt = malloc(sizeof *pt);
    int64_t pos = (int64_t)(5 * MIB / 2);
    bytes all = file_decode(path, 0, NULL, pos, pt);
    CHECK(same_bytes(&all, t.p, t.len));
    bytes rest = file_decode(path, di_decode_source_offset(pt), pt, 0, NULL);
    CHECK(same_bytes(&rest, t.p + pos, t.len - (size_t)pos));
    CHECK(di_decode_source_offset(pt) > (int64_t)z.len / 2);
    remove(path);
    free(all.p);
    free(rest.p);
    free(pt);
    free(z.p);
    free(t.p);
}

/* main runs every table; the big resume tests last, as they take the longest. */
int main(void) {
    test_names();
    test_sniff();
    test_roundtrip();
    test_bad_input();
    test_none();
    test_resume_errors();
    test_file_source();
    test_resume_all();
    return check_report();
}
