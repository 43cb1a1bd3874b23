/* auth.c - API tokens: parsing the configured list and judging a request's
 * Authorization header in constant time (every entry, every byte, always). */
#include "http/auth.h"
#include "util/base64.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* scope_bit maps one scope name to its bit (0: unknown). */
static unsigned scope_bit(const char *s, size_t n) {
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"read", DI_SCOPE_READ},
                 {"import", DI_SCOPE_IMPORT},
                 {"events", DI_SCOPE_EVENTS},
                 {"all", DI_SCOPE_ALL},
                 {"*", DI_SCOPE_ALL}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && strncmp(names[i].name, s, n) == 0)
            return names[i].bit;
    return 0;
}

/* parse_scopes reads "read+import"; 0 when a name is unknown or empty. */
static unsigned parse_scopes(const char *s, size_t n) {
    unsigned all = 0;
    while (n) {
        size_t k = 0;
        while (k < n && s[k] != '+')
            k++;
        unsigned bit = scope_bit(s, k);
        if (!bit)
            return 0;
        all |= bit;
        s += k;
        n -= k;
        if (n) {
            s++;
            n--;
        }
    }
    return all;
}

/* add_entry stores one "TOKEN[:SCOPES]" entry. */
static int add_entry(di_auth *a, const char *e, size_t n, di_error *err) {
    int pos = a->n + 1;
    if (a->n == DI_AUTH_MAX_TOKENS)
        return di_error_set(err, DI_ERR_CONFIG, "API tokens: more than %d entries",
                            DI_AUTH_MAX_TOKENS);
    const char *colon = memchr(e, ':', n);
    size_t tlen = colon ? (size_t)(colon - e) : n;
    unsigned scopes = colon ? parse_scopes(colon + 1, n - tlen - 1) : DI_SCOPE_ALL;
    if (tlen < 16 || tlen >= DI_AUTH_TOKEN_MAX)
        return di_error_set(err, DI_ERR_CONFIG, "API tokens: entry %d must be 16 to %d bytes long",
                            pos, DI_AUTH_TOKEN_MAX - 1);
    if (!scopes)
        return di_error_set(err, DI_ERR_CONFIG,
                            "API tokens: entry %d has an unknown scope (read, import, events, all)",
                            pos);
    memset(a->entries[a->n].token, 0, DI_AUTH_TOKEN_MAX);
    memcpy(a->entries[a->n].token, e, tlen);
    a->entries[a->n].len = (unsigned)tlen;
    a->entries[a->n].scopes = scopes;
    a->n++;
    return 0;
}

/* di_auth_load reads every entry of the token text; entries are named by position only. */
int di_auth_load(di_auth *a, const char *text, di_error *err) {
    a->n = 0;
    for (const char *s = text ? text : ""; *s;) {
        while (*s == ',' || isspace((unsigned char)*s))
            s++;
        size_t n = 0;
        while (s[n] && s[n] != ',' && !isspace((unsigned char)s[n]))
            n++;
        if (n && add_entry(a, s, n, err))
            return -1;
        s += n;
    }
    if (a->n == 0)
        return di_error_set(
            err, DI_ERR_CONFIG,
            "no API tokens: set DSA_INGEST_API_TOKENS or DSA_INGEST_API_TOKENS_FILE "
            "(serve refuses to run open)");
    return 0;
}

/* di_ct_equal XORs every byte of both buffers: no early exit, whatever matched. */
int di_ct_equal(const char *a, const char *b) {
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < DI_AUTH_TOKEN_MAX; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* offered_token copies the token of a Bearer or Basic header into a padded
 * buffer; -1 when there is none or it cannot be a configured token. */
static int offered_token(const char *h, char out[DI_AUTH_TOKEN_MAX]) {
    memset(out, 0, DI_AUTH_TOKEN_MAX);
    while (h && *h == ' ')
        h++;
    if (!h)
        return -1;
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ')
            h++;
        size_t n = strcspn(h, " ");
        if (n == 0 || n >= DI_AUTH_TOKEN_MAX || h[n + strspn(h + n, " ")] != '\0')
            return -1;
        memcpy(out, h, n);
        return 0;
    }
    if (strncasecmp(h, "Basic ", 6) == 0) {
        unsigned char dec[2 * DI_AUTH_TOKEN_MAX];
        h += 6;
        if (strlen(h) >= 2 * DI_AUTH_TOKEN_MAX)
            return -1;
        long n = di_base64_decode(h, dec, sizeof dec - 1);
        if (n <= 0)
            return -1;
        dec[n] = '\0';
        const char *pass = memchr(dec, ':', (size_t)n);
        size_t plen = pass ? (size_t)n - (size_t)((const unsigned char *)pass + 1 - dec) : 0;
        if (!pass || plen == 0 || plen >= DI_AUTH_TOKEN_MAX)
            return -1;
        memcpy(out, pass + 1, plen);
        memset(dec, 0, sizeof dec);
        return 0;
    }
    return -1;
}

/* di_auth_check compares the offered token with every entry, always all of them. */
int di_auth_check(const di_auth *a, const char *header, unsigned scope) {
    char given[DI_AUTH_TOKEN_MAX];
    if (offered_token(header, given) != 0)
        return 401;
    unsigned found = 0, scopes = 0;
    for (int i = 0; i < a->n; i++) {
        unsigned eq = (unsigned)di_ct_equal(a->entries[i].token, given);
        found |= eq;
        scopes |= a->entries[i].scopes & (0u - eq);
    }
    memset(given, 0, sizeof given);
    if (!found)
        return 401;
    return (scopes & scope) == scope ? 0 : 403;
}
