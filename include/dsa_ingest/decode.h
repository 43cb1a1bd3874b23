/* decode.h - stage 2: decompress the object's bytes into the data stream.
 *
 * Kinds: none, gzip (zlib), and bz2, xz, zstd (libarchive's filters). zip is
 * not a stream filter: its members are read through archive.h.
 * The gzip decoder is resumable mid-stream (zlib's zran technique): it keeps
 * recent inflate access points (compressed offset, bit offset, 32 KiB window)
 * and can describe, for any recent decompressed position, where to restart. */
#ifndef DSA_INGEST_DECODE_H
#define DSA_INGEST_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/error.h"
#include "dsa_ingest/source.h"

typedef enum di_compression {
    DI_COMP_AUTO = 0,
    DI_COMP_NONE,
    DI_COMP_GZIP,
    DI_COMP_BZIP2,
    DI_COMP_XZ,
    DI_COMP_ZSTD,
    DI_COMP_ZIP, /* an archive: never passed to di_decoder_open */
} di_compression;

/* di_compression_name / di_compression_parse: "auto", "none", "gzip", "bz2",
 * "xz", "zstd", "zip" (parse also takes "bzip2", "zst"). parse returns -1 if unknown. */
const char *di_compression_name(di_compression c);
int di_compression_parse(const char *s, di_compression *out);

/* di_compression_sniff decides the kind from the first bytes of the object
 * (magic bytes), falling back to the URL's extension. */
di_compression di_compression_sniff(const unsigned char *head, size_t n, const char *url);

#define DI_WINDOW_SIZE 32768

/* A place to restart decoding: everything a checkpoint must keep. */
typedef struct di_decode_point {
    di_compression kind;
    int64_t in_offset;  /* compressed offset of the access point (none: == out_offset) */
    int bits;           /* gzip: bits of the byte before in_offset still to be used (0-7) */
    int64_t out_offset; /* decompressed offset of the access point */
    int64_t skip;       /* decompressed bytes from the access point to the wanted position */
    int member_start;   /* gzip: 1 when the point is the start of a gzip member (no window) */
    size_t window_len;  /* gzip mid-member: bytes of window (<= 32 KiB) */
    unsigned char window[DI_WINDOW_SIZE];
} di_decode_point;

typedef struct di_decoder di_decoder;

/* di_decode_source_offset: the byte at which the source must be opened to resume at pt. */
int64_t di_decode_source_offset(const di_decode_point *pt);

/* di_decoder_open starts decoding src (borrowed; must outlive the decoder).
 * kind must not be AUTO (sniff first). With resume != NULL, src must have been
 * opened at di_decode_source_offset(resume); the first byte read() returns is the
 * one at resume->out_offset + resume->skip. Returns NULL with err set. */
di_decoder *di_decoder_open(di_source *src, di_compression kind, const di_decode_point *resume,
                            di_error *err);

/* di_decoder_read fills buf with up to cap decompressed bytes; *n == 0 at end.
 * Corrupt or truncated input: -1 with an input-class error naming the offset. */
DI_MUSTCHECK int di_decoder_read(di_decoder *d, void *buf, size_t cap, size_t *n, di_error *err);

/* di_decoder_mark describes how to restart at decompressed offset `out_pos`,
 * which must lie within the last few MiB already returned by read() (the
 * decoder keeps access points every ~1 MiB and the last few of them).
 * Returns 0, or -1 if no kept point is at or before out_pos. */
DI_MUSTCHECK int di_decoder_mark(const di_decoder *d, int64_t out_pos, di_decode_point *pt);

int64_t di_decoder_in_offset(const di_decoder *d);  /* compressed bytes consumed */
int64_t di_decoder_out_offset(const di_decoder *d); /* decompressed bytes returned */
void di_decoder_close(di_decoder *d);               /* accepts NULL; does not close src */

#endif
