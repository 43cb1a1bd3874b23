/* frame.h - private to src/parse/: record boundaries of a byte range scanned
 * without its context, so one big uncompressed object can be parsed in parallel.
 *
 * "Speculative parsing": a range is scanned once for every state the parser might
 * be in at its first byte. Chaining the ranges in order then picks each range's
 * true start state, and with it the range's first record boundary, its record
 * count and its first row number (prefix sums), exactly as one sequential parse
 * by csv.c (libcsv, strict) or ndjson.c would have numbered the rows.
 *
 * The states are those of csv.c's framing (libcsv's, split by quoting):
 *   R  between records          S  at a field start of a begun record
 *   U  in an unquoted field     IN in a quoted field
 *   CL just after a quote in a quoted field (closing, or half of "")
 *   E  malformed: a character after a closing quote (libcsv strict); absorbing.
 * Classes: Q '"', D the delimiter, T CR or LF, O anything else.
 *   R, S: Q->IN D->S T->R O->U      U: Q->U (a bare quote is text) D->S T->R O->U
 *   IN: Q->CL, else IN              CL: Q->IN D->S T->R O->E
 * A record starts at a byte consumed in R that is not CR or LF (CR and LF alone
 * are blank lines: no record, no row number). For NDJSON (DI_FRAME_LINES) lines
 * end at LF only and every line is a record, a blank one too (ndjson.c numbers
 * blank lines): a record starts at every byte consumed in R (state L: in a line).
 * Row k is the k-th record start of the stream (the header is row 1).
 *
 * The parsers skip a UTF-8 BOM at stream offset 0 before framing: the first
 * range must begin after it (at offset 3), else the BOM counts as text.
 * Ownership: a di_frame is plain memory (about 5 KiB): no allocation, no cleanup. */
#ifndef DI_PARSE_FRAME_H
#define DI_PARSE_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/error.h"

typedef enum di_frame_kind {
    DI_FRAME_CSV,   /* CSV or TSV: 6 states */
    DI_FRAME_LINES, /* NDJSON: 2 states */
} di_frame_kind;

/* State numbers; R is 0 for both kinds. */
enum {
    DI_FRAME_R = 0,
    DI_FRAME_S = 1,
    DI_FRAME_U = 2,
    DI_FRAME_IN = 3,
    DI_FRAME_CL = 4,
    DI_FRAME_E = 5,
    DI_FRAME_L = 1, /* LINES: inside a line */
    DI_FRAME_MAX_STATES = 6,
};

/* One range's scan. Read it with di_frame_get; kind is set by di_frame_init,
 * the other fields are private. */
typedef struct di_frame {
    di_frame_kind kind;
    int nstates;
    uint16_t dead;                      /* E x 256 for CSV; none for LINES */
    int nchains;                        /* distinct live runs: start states that met share one */
    size_t block;                       /* the next block's size: small while runs may still meet */
    int64_t pos;                        /* bytes fed so far */
    int map[DI_FRAME_MAX_STATES];       /* start state -> run, -1: dead (E) */
    int64_t base[DI_FRAME_MAX_STATES];  /* start state's count minus its run's */
    int64_t first[DI_FRAME_MAX_STATES]; /* start state's first boundary, -1 none yet */
    uint16_t run_state[DI_FRAME_MAX_STATES]; /* state x 256 (a row of next4) */
    int64_t run_count[DI_FRAME_MAX_STATES];
    unsigned char cls[256];                           /* byte -> class 0..3 */
    uint16_t next4[DI_FRAME_MAX_STATES * 256];        /* state x 256 + 4 classes -> state x 256 */
    unsigned char starts4[DI_FRAME_MAX_STATES * 256]; /* ... -> record starts in those 4 bytes */
    unsigned char next1[DI_FRAME_MAX_STATES][4];      /* one byte: state, class -> state */
    unsigned char starts1[DI_FRAME_MAX_STATES][4];    /* ... -> 1 when it starts a record */
} di_frame;

/* di_frame_states is how many start states a kind has: 6 (CSV, E included) or 2. */
int di_frame_states(di_frame_kind kind);

/* di_frame_init readies f for one range. delim is the CSV delimiter (0: ',');
 * -1 when it is a quote, CR or LF (csv.c refuses those too). */
DI_MUSTCHECK int di_frame_init(di_frame *f, di_frame_kind kind, unsigned char delim);

/* di_frame_feed scans the range's next n bytes: call it for consecutive pieces
 * of one range, in order. Results are exact after every call. */
void di_frame_feed(di_frame *f, const void *buf, size_t n);

/* What a range gives for one start state. */
typedef struct di_frame_result {
    int end_state;  /* the state after the last byte fed */
    int64_t starts; /* record starts among the bytes fed */
    int64_t first;  /* the range's first boundary: the offset, from the range's first
                     * byte, of the first byte consumed in R (0 when starting in R);
                     * -1 when there is none (E never has one) */
} di_frame_result;

/* di_frame_get is what the bytes fed so far give when the range starts in
 * state s (0 <= s < di_frame_states). */
void di_frame_get(const di_frame *f, int s, di_frame_result *out);

/* One range for di_frame_chain: offset and out are filled by the caller
 * (di_frame_collect), the rest by di_frame_chain. */
typedef struct di_frame_range {
    int64_t offset;                           /* the range's first byte in the stream */
    di_frame_result out[DI_FRAME_MAX_STATES]; /* per start state */
    int state;                                /* the true start state */
    int64_t boundary;  /* stream offset of its first boundary, -1: none, then it owns
                        * no records (its bytes belong to an earlier range's record) */
    int64_t records;   /* records starting in the range */
    int64_t first_row; /* the row number of the first of them (of the next record
                        * to start, when there are none) */
} di_frame_range;

/* di_frame_collect copies f's results for every start state into r. */
void di_frame_collect(const di_frame *f, int64_t offset, di_frame_range *r);

/* di_frame_chain walks n ranges, consecutive and in stream order, from the
 * first one's known start state (DI_FRAME_R at a stream start) and row number
 * (1 at a stream start): it fills each range's state, boundary, records and
 * first_row. Returns the state after the last range: at the end of the stream,
 * IN means an unterminated quoted field and E a malformed one (the parse fails
 * in the range whose out[state].end_state is E first; rows after that are not reached). */
int di_frame_chain(di_frame_range *r, size_t n, int state, int64_t row);

#endif
