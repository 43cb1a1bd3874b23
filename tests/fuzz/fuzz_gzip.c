/* fuzz_gzip.c - libFuzzer target for the gzip decoder (src/decode/gzip.c and
 * decode.c). The input is the compressed object. It is decoded twice, pulled
 * in one go and in small pieces of input-dependent sizes (with small output
 * reads too): both runs must hand out the same bytes and end the same way,
 * out_offset must count exactly the bytes handed out, in_offset must stay
 * within the input. Then a resume point is taken at an input-chosen position
 * and a decoder resumed there must go on with the same bytes. */
#include "fuzz_common.h"

#include "decode/decoder_impl.h"

#define MAX_OUT   ((size_t)4 << 20)  /* decoded bytes kept per run (zip bombs stop here) */
#define SMALL_OUT ((size_t)64 << 10) /* small output reads up to here, then large ones */

enum { R_ERROR = -1, R_CAPPED = 0, R_END = 1 };

/* One decoding run: what it handed out and how it ended. */
typedef struct run {
    unsigned char *out;
    size_t n, cap;
    int end; /* R_END, R_ERROR or R_CAPPED */
} run;

/* read_cap sizes the next output read (small near the start when chunked)
 * and grows the output buffer to hold it. */
static size_t read_cap(fz_in *in, run *r, size_t budget) {
    if (r->cap - r->n < SMALL_OUT && r->cap < budget) {
        size_t c = r->cap < SMALL_OUT ? SMALL_OUT : 2 * r->cap;
        r->cap = c < budget ? c : budget;
        r->out = realloc(r->out, r->cap);
        FUZZ_CHECK(r->out != NULL);
    }
    size_t cap = r->cap - r->n;
    if (in->chunked && r->n < SMALL_OUT) {
        size_t c = fz_size(&in->rng);
        cap = cap < c ? cap : c;
    }
    return cap;
}

/* failed checks a read error: input class, and sticky. */
static void failed(di_decoder *d, const di_error *err) {
    fz_check_error(err);
    FUZZ_CHECK(err->cls == DI_ERR_INPUT);
    unsigned char b[16];
    size_t n = 1;
    di_error again;
    di_error_clear(&again);
    FUZZ_CHECK(di_decoder_read(d, b, sizeof b, &n, &again) == -1 && n == 0);
    FUZZ_CHECK(strcmp(again.message, err->message) == 0);
}

/* drain reads d to its end, an error or budget bytes into r->out, checking
 * the offsets after every read. out0 is d's out_offset at the start. */
static void drain(di_decoder *d, fz_in *in, int64_t out0, size_t budget, run *r) {
    int64_t last_in = di_decoder_in_offset(d);
    for (;;) {
        if (r->n == budget) {
            r->end = R_CAPPED;
            return;
        }
        size_t cap = read_cap(in, r, budget), got = 1;
        di_error err;
        di_error_clear(&err);
        int rc = di_decoder_read(d, r->out + r->n, cap, &got, &err);
        if (rc < 0) {
            FUZZ_CHECK(got == 0);
            failed(d, &err);
            r->end = R_ERROR;
            return;
        }
        FUZZ_CHECK(rc == 0 && got <= cap);
        r->n += got;
        int64_t at = di_decoder_in_offset(d);
        FUZZ_CHECK(di_decoder_out_offset(d) == out0 + (int64_t)r->n);
        FUZZ_CHECK(at >= last_in && at <= (int64_t)in->len);
        last_in = at;
        if (got == 0) {
            unsigned char b[16];
            FUZZ_CHECK(di_decoder_read(d, b, sizeof b, &got, &err) == 0 && got == 0);
            r->end = R_END;
            return;
        }
    }
}

/* check_point: a point is for the position asked and looks like a gzip point. */
static void check_point(const di_decode_point *pt, int64_t pos, size_t size) {
    FUZZ_CHECK(pt->kind == DI_COMP_GZIP);
    FUZZ_CHECK(pt->skip >= 0 && pt->out_offset >= 0 && pt->out_offset + pt->skip == pos);
    FUZZ_CHECK(pt->bits >= 0 && pt->bits <= 7 && pt->window_len <= DI_WINDOW_SIZE);
    FUZZ_CHECK(!pt->member_start || (pt->bits == 0 && pt->window_len == 0));
    int64_t from = di_decode_source_offset(pt);
    FUZZ_CHECK(from >= 0 && from <= (int64_t)size && from <= pt->in_offset);
}

/* resume decodes again from pt (taken at pos of the first run r) over the
 * input from di_decode_source_offset(pt): the same bytes must follow. */
static void resume(const uint8_t *data, size_t size, const di_decode_point *pt, size_t pos,
                   const run *r, uint64_t seed) {
    int64_t from = di_decode_source_offset(pt);
    fz_in in;
    fz_in_init(&in, data, size, 1, seed);
    in.pos = (size_t)from;
    di_error err;
    di_error_clear(&err);
    di_decoder *d = di_decoder_open_fn(fz_read, &in, DI_COMP_GZIP, pt, &err);
    FUZZ_CHECK(d != NULL);
    FUZZ_CHECK(di_decoder_in_offset(d) == pt->in_offset);
    run r2 = {NULL, 0, 0, R_ERROR};
    drain(d, &in, (int64_t)pos, MAX_OUT - pos, &r2);
    size_t common = r2.n < r->n - pos ? r2.n : r->n - pos;
    FUZZ_CHECK(common == 0 || memcmp(r2.out, r->out + pos, common) == 0);
    if (r->end == R_END) /* a resumed member's CRC is not checked: only a clean end binds */
        FUZZ_CHECK(r2.end == R_END && r2.n == r->n - pos);
    if (r->end == R_CAPPED) /* every member before the cap was whole */
        FUZZ_CHECK(r2.end == R_CAPPED && r2.n == r->n - pos);
    free(r2.out);
    di_decoder_close(d);
}

/* decode runs the input through a fresh decoder into r; the chunked run then
 * takes a resume point at an input-chosen position and checks it. */
static void decode(const uint8_t *data, size_t size, int chunked, uint64_t seed, run *r) {
    fz_in in;
    fz_in_init(&in, data, size, chunked, seed);
    di_error err;
    di_error_clear(&err);
    di_decoder *d = di_decoder_open_fn(fz_read, &in, DI_COMP_GZIP, NULL, &err);
    FUZZ_CHECK(d != NULL);
    drain(d, &in, 0, MAX_OUT, r);
    di_decode_point *pt = malloc(sizeof *pt);
    FUZZ_CHECK(pt != NULL);
    FUZZ_CHECK(di_decoder_mark(d, (int64_t)r->n + 1, pt) == -1);
    if (chunked) {
        /* Points are kept every ~1 MiB, 8 of them: all of MAX_OUT is covered. */
        uint64_t x = fz_next(&in.rng); /* half the time near the end: past the 1st MiB's point */
        size_t tail = r->n < SMALL_OUT ? r->n : SMALL_OUT;
        size_t pos = x & 1 ? (size_t)(x >> 1) % (r->n + 1) : r->n - (size_t)(x >> 1) % (tail + 1);
        FUZZ_CHECK(di_decoder_mark(d, (int64_t)pos, pt) == 0);
        check_point(pt, (int64_t)pos, size);
        resume(data, size, pt, pos, r, in.rng);
    }
    free(pt);
    di_decoder_close(d);
}

/* LLVMFuzzerTestOneInput: decoding must not depend on read sizes, and a
 * resume point must lead back into the same stream. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t seed = fz_hash(data, size);
    run whole = {NULL, 0, 0, R_ERROR}, pieces = {NULL, 0, 0, R_ERROR};
    decode(data, size, 0, seed, &whole);
    decode(data, size, 1, seed, &pieces);
    FUZZ_CHECK(whole.end == pieces.end && whole.n == pieces.n);
    FUZZ_CHECK(whole.n == 0 || memcmp(whole.out, pieces.out, whole.n) == 0);
    free(whole.out);
    free(pieces.out);
    return 0;
}
