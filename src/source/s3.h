/* s3.h - private to src/source/: the s3://bucket/key source. It is http.c's
 * transfer with two hooks: every request is signed with SigV4 (credentials
 * from aws_credentials.c, refreshed when near expiry), and S3's XML errors are
 * turned into plain messages. The pure pieces are exposed for the unit tests. */
#ifndef DI_SOURCE_S3_H
#define DI_SOURCE_S3_H

#include <stddef.h>
#include "source/source_impl.h"

#define DI_S3_BUCKET_MAX 255
#define DI_S3_KEY_MAX    1024 /* S3's own limit, in bytes of UTF-8 */

/* di_s3_open opens s3://bucket/key at byte offset (see source.h). */
di_source *di_s3_open(const char *url, int64_t offset, const di_source_opts *o, di_error *err);

/* di_s3_parse_url splits s3://bucket/key. The key is taken literally, as the
 * AWS CLI does: spaces, '+', '=', '%', '?' and '#' are part of it. */
int di_s3_parse_url(const char *url, char *bucket, size_t bsz, char *key, size_t ksz,
                    di_error *err);

/* di_s3_encode_path percent-encodes every byte but A-Z a-z 0-9 - . _ ~ and
 * '/', upper-case hex: the form SigV4 signs for S3 (no double encoding). */
int di_s3_encode_path(const char *in, char *out, size_t outsz);

/* di_s3_object_url builds the request URL. With an endpoint (AWS_ENDPOINT_URL,
 * MinIO, Ceph, the test server): path style ENDPOINT/BUCKET/KEY. Without: AWS
 * virtual-hosted style https://BUCKET.s3.REGION.amazonaws.com/KEY, or path
 * style on s3.REGION.amazonaws.com for names that cannot be a host name. */
int di_s3_object_url(const char *endpoint, const char *region, const char *bucket, const char *key,
                     char *out, size_t outsz, di_error *err);

/* What a message about a failed request may name. */
typedef struct di_s3_error_ctx {
    const char *display; /* s3://bucket/key */
    const char *bucket;
    const char *region;      /* the region we signed for */
    const char *credentials; /* where they came from, e.g. `from profile "x" in …` */
    int refreshable;         /* temporary credentials that can be fetched again */
    int64_t req_off;         /* the first byte the failed request asked for */
} di_s3_error_ctx;

/* What S3 said in its <Error> body; "" (or -1) for what it did not say. */
typedef struct di_s3_error_body {
    const char *code;
    const char *message;
    const char *region;  /* <Region>: where the bucket really is */
    int64_t actual_size; /* <ActualObjectSize> of a 416 InvalidRange */
} di_s3_error_body;

/* di_s3_map_error maps a status >= 400 and its body to a class and a message;
 * DI_ERR_NONE leaves the status to http.c (412 "object changed", plain 5xx
 * retries). A 416 for a byte the object no longer has means it changed. */
di_class di_s3_map_error(const di_s3_error_ctx *c, long status, const di_s3_error_body *b,
                         di_error *err);

#endif
