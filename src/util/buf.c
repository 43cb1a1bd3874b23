/* buf.c - capped growable byte buffer (see include/dsa_ingest/buf.h). */
#include "dsa_ingest/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void di_buf_init(di_buf *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void di_buf_cleanup(di_buf *b) {
    free(b->data);
    di_buf_init(b, b->max);
}

int di_buf_reserve(di_buf *b, size_t n) {
    if (n > b->max || b->len > b->max - n)
        return -1;
    size_t need = b->len + n + 1; /* room for the trailing NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int di_buf_append(di_buf *b, const void *p, size_t n) {
    if (di_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int di_buf_putc(di_buf *b, char c) {
    if (b->len + 1 < b->cap) { /* the common case: no call, no check */
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return di_buf_append(b, &c, 1);
}

int di_buf_printf(di_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || di_buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}
