/* sniff.h - private to src/read/: the text format and CSV dialect of a
 * stream's first bytes, as DuckDB's sniffer decides them: NDJSON if the
 * first line is a JSON object; else the delimiter among , ; TAB | whose field
 * count is most consistent over the first records (quotes respected); and a
 * header when the first record does not fit the types of the columns below. */
#ifndef DI_READ_SNIFF_H
#define DI_READ_SNIFF_H

#include <stddef.h>
#include "dsa_ingest/parse.h"

#define DI_SNIFF_BYTES ((size_t)64 << 10)

typedef struct di_sniff {
    di_format format; /* in: AUTO or the user's choice; out: CSV, TSV or NDJSON */
    char delimiter;   /* in: 0 or the user's; out: the delimiter (CSV/TSV) */
    int header;       /* in: -1 or the user's; out: 1 or 0 */
} di_sniff;

/* di_sniff_text decides what s is still AUTO / 0 / -1 from head[0..n);
 * complete says the stream ends there (the last line is whole). */
void di_sniff_text(const unsigned char *head, size_t n, int complete, di_sniff *s);

#endif
