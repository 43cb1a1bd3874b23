/* percent.h - %XX decoding of URL paths and S3 event keys: the one decoder for
 * file:// URLs (src/source/source.c) and S3 notifications (src/http/events.c). */
#ifndef DI_UTIL_PERCENT_H
#define DI_UTIL_PERCENT_H

#include <stddef.h>

/* di_percent_decode decodes in[0..n) into out (NUL-terminated). With
 * plus_is_space, '+' is a space (S3 form-encodes the keys in its events).
 * -1 on a bad escape, an escaped NUL or overflow: a silently mangled name
 * would open the wrong file or import the wrong object. */
int di_percent_decode(const char *in, size_t n, int plus_is_space, char *out, size_t outsz);

#endif
