/* base64.h - standard base64 (RFC 4648) for the 32 KiB inflate windows kept in
 * checkpoints. None of our libraries exports an encoder, so this is ours. */
#ifndef DI_UTIL_BASE64_H
#define DI_UTIL_BASE64_H

#include <stddef.h>

/* di_base64_encode writes the encoding of n bytes and a NUL into out, which must
 * hold 4 * ((n + 2) / 3) + 1 bytes. Returns the length written. */
size_t di_base64_encode(const unsigned char *in, size_t n, char *out);

/* di_base64_decode decodes s into out (cap bytes); returns the length, or -1 on
 * bad input or overflow. */
long di_base64_decode(const char *s, unsigned char *out, size_t cap);

#endif
