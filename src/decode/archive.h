/* archive.h - private to src/decode/ and src/read/: the data files inside a
 * zip or tar archive, one member at a time, through libarchive.
 *
 * A zip whose bytes can be re-read from any offset (every source here can:
 * files, ranged GETs) is read through its central directory, so members
 * written with data descriptors by streaming tools are found, and skipping a
 * member costs a seek, not a read. Without seeking (tar inside gzip, say) the
 * archive is read front to back. */
#ifndef DI_DECODE_ARCHIVE_H
#define DI_DECODE_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/error.h"

typedef enum di_archive_kind { DI_ARCHIVE_ZIP, DI_ARCHIVE_TAR } di_archive_kind;

/* Where the archive's bytes come from. read: same contract as di_source_read.
 * seek (NULL: the bytes can only be read front to back) moves the next read
 * to an absolute offset; size is the archive's length (needed with seek). */
typedef struct di_archive_io {
    int (*read)(void *ctx, void *buf, size_t cap, size_t *n, di_error *err);
    int (*seek)(void *ctx, int64_t offset, di_error *err);
    int64_t size;
    void *ctx;
} di_archive_io;

typedef struct di_archive di_archive;

/* di_archive_open starts reading; nothing is read past the central directory
 * (zip) or the first header (tar) until di_archive_next. */
di_archive *di_archive_open(di_archive_kind kind, const di_archive_io *io, di_error *err);

/* di_archive_next moves to the next data file: directories, links, hidden
 * files and macOS resource forks (__MACOSX/, ._name, .DS_Store) are passed
 * over. 1 with *name (valid until the next call) and *index (the member's
 * position among all entries); 0 after the last; -1 with err set. */
DI_MUSTCHECK int di_archive_next(di_archive *a, const char **name, int64_t *index, di_error *err);

/* di_archive_read reads the current member's data; *n == 0 at its end. */
DI_MUSTCHECK int di_archive_read(di_archive *a, void *buf, size_t cap, size_t *n, di_error *err);

/* di_archive_in_offset: bytes of the archive read so far (compressed). */
int64_t di_archive_in_offset(const di_archive *a);
void di_archive_close(di_archive *a); /* accepts NULL */

/* di_archive_table_key writes a member's table key: its file name without
 * directories and without its last extension ("in/Sales 2024.csv" ->
 * "Sales 2024"); a second extension of compression (.csv.gz) goes too. */
void di_archive_table_key(const char *name, char *out, size_t outsz);

#endif
