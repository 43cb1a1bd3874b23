/* frame.c - a range's record starts counted for every possible start state
 * (frame.h), fast enough to run ahead of the parsers over gigabytes.
 *
 * Table-driven: a byte -> class table and a transition table that takes four
 * classes at once (4 classes of 2 bits index 256 columns), so a run costs one
 * dependent load per 4 bytes. Runs from different start states that reach the
 * same state at the same byte stay identical: they are joined and only their
 * counts' difference is kept, so after a few records usually one or two runs
 * are left (the second: "inside quotes", in data with no quote to refute it). */
#include "frame.h"

#include <string.h>

#define BLOCK_MIN ((size_t)64)       /* the first block: runs meet within a record or two */
#define BLOCK_MAX ((size_t)64 << 10) /* blocks double up to this */
#define NO_STATE  ((uint16_t)0xFFFF)

/* Byte classes. */
enum { C_O = 0, C_Q = 1, C_D = 2, C_T = 3 };

enum { R = DI_FRAME_R, S = DI_FRAME_S, U = DI_FRAME_U, IN = DI_FRAME_IN, CL = DI_FRAME_CL };
enum { E = DI_FRAME_E, L = DI_FRAME_L };

/* The CSV transitions (csv.c over libcsv with CSV_STRICT, bare quotes accepted). */
static const unsigned char k_csv_next[6][4] = {
    /*  O   Q   D  T */
    {U, IN, S, R},    /* R */
    {U, IN, S, R},    /* S */
    {U, U, S, R},     /* U: a bare quote is text (csv.c's bare_quote) */
    {IN, CL, IN, IN}, /* IN: CR and LF are field text */
    {E, IN, S, R},    /* CL: "" is a quote; anything else after a closing quote fails */
    {E, E, E, E},     /* E */
};

/* The NDJSON transitions: only LF (class T) ends a line. */
static const unsigned char k_lines_next[2][4] = {
    {L, L, L, R}, /* R */
    {L, L, L, R}, /* L */
};

/* di_frame_states: see frame.h. */
int di_frame_states(di_frame_kind kind) {
    return kind == DI_FRAME_CSV ? 6 : 2;
}

/* set_classes fills the byte -> class table. */
static void set_classes(di_frame *f, di_frame_kind kind, unsigned char delim) {
    memset(f->cls, C_O, sizeof f->cls);
    f->cls['\n'] = C_T;
    if (kind == DI_FRAME_LINES)
        return;
    f->cls['\r'] = C_T;
    f->cls['"'] = C_Q;
    f->cls[delim] = C_D;
}

/* set_steps fills the one-byte tables: a record starts at a byte consumed in R,
 * unless (CSV) it is a CR or LF, a blank line. */
static void set_steps(di_frame *f, di_frame_kind kind) {
    for (int s = 0; s < f->nstates; s++) {
        for (int c = 0; c < 4; c++) {
            f->next1[s][c] = kind == DI_FRAME_CSV ? k_csv_next[s][c] : k_lines_next[s][c];
            f->starts1[s][c] = s == R && (kind == DI_FRAME_LINES || c != C_T);
        }
    }
}

/* set_groups composes the one-byte tables four times: column g of a state's
 * row holds the classes of 4 bytes, the first in g's low bits. */
static void set_groups(di_frame *f) {
    for (int s = 0; s < f->nstates; s++) {
        for (unsigned g = 0; g < 256; g++) {
            unsigned st = (unsigned)s, n = 0;
            for (unsigned j = 0; j < 4; j++) {
                unsigned c = (g >> (2 * j)) & 3;
                n += f->starts1[st][c];
                st = f->next1[st][c];
            }
            f->next4[s * 256 + g] = (uint16_t)(st * 256);
            f->starts4[s * 256 + g] = (unsigned char)n;
        }
    }
}

/* remove_run drops run c: the last run takes its place. */
static void remove_run(di_frame *f, int c) {
    int last = --f->nchains;
    if (c == last)
        return;
    f->run_state[c] = f->run_state[last];
    f->run_count[c] = f->run_count[last];
    for (int s = 0; s < f->nstates; s++)
        if (f->map[s] == last)
            f->map[s] = c;
}

/* retire ends run c, which reached E: its start states keep their counts. */
static void retire(di_frame *f, int c) {
    for (int s = 0; s < f->nstates; s++) {
        if (f->map[s] == c) {
            f->base[s] += f->run_count[c];
            f->map[s] = -1;
        }
    }
    remove_run(f, c);
}

/* join folds run c into run d (same state at the same byte: the same future). */
static void join(di_frame *f, int d, int c) {
    for (int s = 0; s < f->nstates; s++) {
        if (f->map[s] == c) {
            f->base[s] += f->run_count[c] - f->run_count[d];
            f->map[s] = d;
        }
    }
    remove_run(f, c);
}

/* tidy_runs retires dead runs and joins runs that met. */
static void tidy_runs(di_frame *f) {
    for (int c = 0; c < f->nchains; c++) {
        if (f->run_state[c] == f->dead) {
            retire(f, c--);
            continue;
        }
        for (int d = 0; d < c; d++) {
            if (f->run_state[d] == f->run_state[c]) {
                join(f, d, c--);
                break;
            }
        }
    }
}

/* di_frame_init: see frame.h. */
int di_frame_init(di_frame *f, di_frame_kind kind, unsigned char delim) {
    delim = delim ? delim : ',';
    if (kind == DI_FRAME_CSV && (delim == '"' || delim == '\r' || delim == '\n'))
        return -1;
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->nstates = di_frame_states(kind);
    f->dead = kind == DI_FRAME_CSV ? (uint16_t)(E * 256) : NO_STATE;
    f->block = BLOCK_MIN;
    set_classes(f, kind, delim);
    set_steps(f, kind);
    set_groups(f);
    f->nchains = f->nstates;
    for (int s = 0; s < f->nstates; s++) {
        f->map[s] = s;
        f->first[s] = -1;
        f->run_state[s] = (uint16_t)(s * 256);
    }
    tidy_runs(f); /* E is dead from the start */
    return 0;
}

/* GROUP packs the classes of the 4 bytes at q, the first in the low bits. */
#define GROUP(cls, q)                                                                              \
    ((unsigned)(cls)[(q)[0]] | (unsigned)(cls)[(q)[1]] << 2 | (unsigned)(cls)[(q)[2]] << 4 |       \
     (unsigned)(cls)[(q)[3]] << 6)

/* run_tail steps one run over the last n < 4 bytes of a block. */
static void run_tail(const di_frame *f, const unsigned char *p, size_t n, uint16_t *state,
                     int64_t *count) {
    unsigned st = *state >> 8;
    for (size_t i = 0; i < n; i++) {
        unsigned c = f->cls[p[i]];
        *count += f->starts1[st][c];
        st = f->next1[st][c];
    }
    *state = (uint16_t)(st * 256);
}

/* run_one moves the only run over n bytes: the hot loop of a settled scan. */
static size_t run_one(di_frame *f, const unsigned char *p, size_t n) {
    const unsigned char *cls = f->cls;
    unsigned st = f->run_state[0];
    uint64_t k = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        unsigned g0 = GROUP(cls, p + i), g1 = GROUP(cls, p + i + 4);
        k += f->starts4[st + g0];
        st = f->next4[st + g0];
        k += f->starts4[st + g1];
        st = f->next4[st + g1];
    }
    for (; i + 4 <= n; i += 4) {
        unsigned g = GROUP(cls, p + i);
        k += f->starts4[st + g];
        st = f->next4[st + g];
    }
    f->run_state[0] = (uint16_t)st;
    f->run_count[0] += (int64_t)k;
    return i;
}

/* run_two moves two runs together (the usual pair: outside and inside quotes),
 * classifying each byte once. */
static size_t run_two(di_frame *f, const unsigned char *p, size_t n) {
    const unsigned char *cls = f->cls;
    unsigned a = f->run_state[0], b = f->run_state[1];
    uint64_t ka = 0, kb = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        unsigned g = GROUP(cls, p + i);
        ka += f->starts4[a + g];
        kb += f->starts4[b + g];
        a = f->next4[a + g];
        b = f->next4[b + g];
    }
    f->run_state[0] = (uint16_t)a;
    f->run_state[1] = (uint16_t)b;
    f->run_count[0] += (int64_t)ka;
    f->run_count[1] += (int64_t)kb;
    return i;
}

/* run_many moves any number of runs (only while start states have not met). */
static size_t run_many(di_frame *f, const unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        unsigned g = GROUP(f->cls, p + i);
        for (int c = 0; c < f->nchains; c++) {
            f->run_count[c] += f->starts4[f->run_state[c] + g];
            f->run_state[c] = f->next4[f->run_state[c] + g];
        }
    }
    return i;
}

/* run_block moves every live run over one block. */
static void run_block(di_frame *f, const unsigned char *p, size_t n) {
    size_t done = 0;
    if (f->nchains == 1)
        done = run_one(f, p, n);
    else if (f->nchains == 2)
        done = run_two(f, p, n);
    else if (f->nchains > 2)
        done = run_many(f, p, n);
    for (int c = 0; c < f->nchains; c++)
        run_tail(f, p + done, n - done, &f->run_state[c], &f->run_count[c]);
}

/* first_r is the offset of the first of p's n bytes consumed in R, from state
 * st; -1 when there is none. */
static int64_t first_r(const di_frame *f, const unsigned char *p, size_t n, unsigned st) {
    for (size_t i = 0; i < n; i++) {
        if (st == R)
            return (int64_t)i;
        st = f->next1[st][f->cls[p[i]]];
    }
    return -1;
}

/* waiting tells whether a start state of run c has no first boundary yet. */
static int waiting(const di_frame *f, int c) {
    for (int s = 0; s < f->nstates; s++)
        if (f->map[s] == c && f->first[s] < 0)
            return 1;
    return 0;
}

/* find_firsts gives the start states still waiting for their first boundary
 * the one in this block, if any. A run leaves R only by starting a record, so
 * a run with the same count and not in R at the block's end was never in R:
 * only a run that was is scanned again, byte by byte, once. */
static void find_firsts(di_frame *f, const unsigned char *p, size_t n, const uint16_t *was,
                        const int64_t *had) {
    for (int c = 0; c < f->nchains; c++) {
        if (f->run_count[c] == had[c] && f->run_state[c] != R * 256)
            continue;
        if (!waiting(f, c))
            continue;
        int64_t at = first_r(f, p, n, was[c] >> 8);
        for (int s = 0; at >= 0 && s < f->nstates; s++)
            if (f->map[s] == c && f->first[s] < 0)
                f->first[s] = f->pos + at;
    }
}

/* di_frame_feed: see frame.h. Blocks start small so runs that meet early are
 * joined early; at each block's end boundaries are found, runs tidied. */
void di_frame_feed(di_frame *f, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n > 0) {
        size_t k = n < f->block ? n : f->block;
        uint16_t was[DI_FRAME_MAX_STATES];
        int64_t had[DI_FRAME_MAX_STATES];
        memcpy(was, f->run_state, sizeof was);
        memcpy(had, f->run_count, sizeof had);
        run_block(f, p, k);
        find_firsts(f, p, k, was, had);
        f->pos += (int64_t)k;
        tidy_runs(f);
        f->block = f->block < BLOCK_MAX ? 2 * f->block : BLOCK_MAX;
        p += k;
        n -= k;
    }
}

/* di_frame_get: see frame.h. */
void di_frame_get(const di_frame *f, int s, di_frame_result *out) {
    int c = f->map[s];
    out->end_state = c < 0 ? E : f->run_state[c] >> 8;
    out->starts = f->base[s] + (c < 0 ? 0 : f->run_count[c]);
    out->first = f->first[s];
}

/* di_frame_collect: see frame.h. */
void di_frame_collect(const di_frame *f, int64_t offset, di_frame_range *r) {
    memset(r, 0, sizeof *r);
    r->offset = offset;
    for (int s = 0; s < f->nstates; s++)
        di_frame_get(f, s, &r->out[s]);
    for (int s = f->nstates; s < DI_FRAME_MAX_STATES; s++)
        r->out[s].first = -1; /* not a state of this kind: never chosen */
}

/* di_frame_chain: see frame.h. The row numbers are the prefix sums of the
 * chosen start states' record counts. */
int di_frame_chain(di_frame_range *r, size_t n, int state, int64_t row) {
    for (size_t i = 0; i < n; i++) {
        const di_frame_result *o = &r[i].out[state];
        r[i].state = state;
        r[i].boundary = o->first >= 0 ? r[i].offset + o->first : -1;
        r[i].records = o->starts;
        r[i].first_row = row;
        row += o->starts;
        state = o->end_state;
    }
    return state;
}
