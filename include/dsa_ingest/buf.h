/* buf.h - a growable byte buffer with a hard cap (after curl's dynbuf).
 *
 * Buffers are allocated once per job and reused per batch: di_buf_reset keeps
 * the memory. Growing past `max` fails instead of eating the machine. */
#ifndef DSA_INGEST_BUF_H
#define DSA_INGEST_BUF_H

#include <stddef.h>
#include "dsa_ingest/error.h"

typedef struct di_buf {
    char *data; /* owned; always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    size_t max; /* growing past this fails */
} di_buf;

void di_buf_init(di_buf *b, size_t max);
void di_buf_cleanup(di_buf *b);
static inline void di_buf_reset(di_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}
/* di_buf_reserve makes room for n more bytes; -1 when that would pass max. */
DI_MUSTCHECK int di_buf_reserve(di_buf *b, size_t n);
DI_MUSTCHECK int di_buf_append(di_buf *b, const void *p, size_t n);
DI_MUSTCHECK int di_buf_putc(di_buf *b, char c);
DI_MUSTCHECK int di_buf_printf(di_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
