/* source.h - stage 1: the bytes of one stored object, from any byte offset.
 *
 * Schemes: a plain path, file://, http://, https:// (s3:// in source/s3.c).
 * A source is opened at a byte offset and read sequentially; network sources
 * survive dropped and stalled connections by re-requesting from the current
 * byte with a ranged GET, pinned to the object's ETag. */
#ifndef DSA_INGEST_SOURCE_H
#define DSA_INGEST_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/error.h"

typedef struct di_source di_source;
struct sockaddr;

/* di_addr_check_fn judges an address a network source is about to connect to:
 * 0 allows it; -1 refuses it, with why filled (a sentence naming the address
 * and the reason, e.g. "refusing to connect to 169.254.169.254 (link-local):
 * ..."). It runs on the thread that reads the source. */
typedef int (*di_addr_check_fn)(void *ctx, const struct sockaddr *sa, char *why, size_t whysz);

typedef struct di_source_opts {
    size_t chunk_size;     /* IMPORT_CHUNK_SIZE: bytes per read / receive buffer */
    int max_retries;       /* transient failures in a row before giving up (default 8) */
    double retry_max_s;    /* total seconds spent retrying before giving up (default 120) */
    double backoff_base_s; /* first backoff; doubles, full jitter (default 0.2) */
    int stall_s;           /* no byte for this many seconds = stalled connection (default 30) */
    int connect_timeout_s; /* default 15 */
    const char *etag;      /* NULL, or the ETag the object must still have (resume) */
    /* check_addr, when set, is asked before EVERY connection an http(s) or s3
     * source makes (each redirect hop, each resume), with the address as
     * resolved then; a refusal fails the open or read with a config error that
     * is never retried. NULL (the default): every address is allowed. */
    di_addr_check_fn check_addr;
    void *check_ctx; /* borrowed; passed to check_addr */
} di_source_opts;

/* di_source_opts_default fills the defaults above. */
void di_source_opts_default(di_source_opts *o);

typedef struct di_source_stats {
    int64_t bytes_fetched; /* bytes received from the network or disk, incl. re-fetches */
    int requests;          /* GET requests made (1 + resumes) */
    int retries;           /* transient failures survived */
} di_source_stats;

/* di_source_open opens url at byte offset `offset`. Returns NULL with err set
 * (config: no such file / 404 / 403; transient: retries exhausted). */
di_source *di_source_open(const char *url, int64_t offset, const di_source_opts *opts,
                          di_error *err);

/* di_source_read reads up to cap bytes into buf. *nread == 0 means end of object.
 * Returns 0, or -1 with err set. */
DI_MUSTCHECK int di_source_read(di_source *s, void *buf, size_t cap, size_t *nread, di_error *err);

int64_t di_source_size(const di_source *s);        /* object size, -1 if unknown */
const char *di_source_etag(const di_source *s);    /* "" if the server gave none */
int64_t di_source_offset(const di_source *s);      /* next byte read() will return */
const char *di_source_display(const di_source *s); /* the URL without secrets */
void di_source_get_stats(const di_source *s, di_source_stats *st);
void di_source_close(di_source *s); /* accepts NULL */

/* di_url_redact writes url without userinfo password and query string. */
void di_url_redact(const char *url, char *out, size_t outsz);

#endif
