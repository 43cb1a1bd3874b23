/* auth.h - private to src/http/: bearer tokens and what each may do.
 *
 * Tokens come from DSA_INGEST_API_TOKENS (or a file with the same text):
 * entries separated by commas, spaces or newlines, each TOKEN or
 * TOKEN:SCOPE+SCOPE with scopes `read` (job status, events, list), `import`
 * (queue imports), `events` (S3 notifications) — no scopes means all. Every
 * check compares the offered token with every entry over a fixed length, so
 * its time does not depend on how much of a token was right. Tokens are never
 * logged or copied into messages. */
#ifndef DI_HTTP_AUTH_H
#define DI_HTTP_AUTH_H

#include "dsa_ingest/error.h"

#define DI_AUTH_MAX_TOKENS 64
#define DI_AUTH_TOKEN_MAX  256 /* bytes, including the NUL */

enum {
    DI_SCOPE_READ = 1,
    DI_SCOPE_IMPORT = 2,
    DI_SCOPE_EVENTS = 4,
    DI_SCOPE_ALL = 7,
};

typedef struct di_auth {
    struct {
        char token[DI_AUTH_TOKEN_MAX]; /* zero-padded: compared over the whole array */
        unsigned len;
        unsigned scopes;
    } entries[DI_AUTH_MAX_TOKENS];
    int n;
} di_auth;

/* di_auth_load parses the token text; a bad entry is a config error that
 * names its position (never its text). No tokens at all is an error too. */
DI_MUSTCHECK int di_auth_load(di_auth *a, const char *text, di_error *err);

/* di_auth_check judges an Authorization header value (NULL: none) for a route
 * needing `scope`: 0 allowed, 401 no or unknown token, 403 a known token
 * without the scope. `Bearer TOKEN` is the rule; `Basic` with the token as
 * password is accepted too (SNS puts credentials in the endpoint URL). */
int di_auth_check(const di_auth *a, const char *header, unsigned scope);

/* di_ct_equal compares two buffers of DI_AUTH_TOKEN_MAX bytes in constant time. */
int di_ct_equal(const char *a, const char *b);

#endif
