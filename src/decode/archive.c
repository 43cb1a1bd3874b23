/* archive.c - zip and tar members through libarchive (see archive.h). The io
 * callbacks adapt our pull/seek functions; libarchive does the formats. */
#include "decode/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef DI_ARCHIVE_IN_SIZE /* fuzz builds make it small, as DI_PARSE_BUF_SIZE */
#define DI_ARCHIVE_IN_SIZE ((size_t)256 << 10)
#endif
#define ARCHIVE_IN_SIZE DI_ARCHIVE_IN_SIZE

struct di_archive {
    struct archive *a;
    di_archive_io io;
    unsigned char *in;
    int64_t pos;     /* archive offset of the next byte io.read returns */
    int64_t in_read; /* bytes handed to libarchive */
    int64_t index;   /* entries seen, minus one */
    di_error io_err; /* the io's own error, kept across libarchive */
    int io_failed;
    int at_end; /* the last member was passed: next() keeps answering 0 */
    char kind_name[8];
};

/* read_cb hands libarchive the next bytes of the archive. */
static la_ssize_t read_cb(struct archive *la, void *ctx, const void **buf) {
    di_archive *a = ctx;
    size_t n = 0;
    if (a->io.read(a->io.ctx, a->in, ARCHIVE_IN_SIZE, &n, &a->io_err) < 0) {
        a->io_failed = 1;
        archive_set_error(la, EIO, "%s", a->io_err.message);
        return -1;
    }
    a->pos += (int64_t)n;
    a->in_read += (int64_t)n;
    *buf = a->in;
    return (la_ssize_t)n;
}

/* seek_cb moves the io; SEEK_END needs the size the io gave. */
static la_int64_t seek_cb(struct archive *la, void *ctx, la_int64_t offset, int whence) {
    di_archive *a = ctx;
    int64_t to = whence == SEEK_SET   ? offset
                 : whence == SEEK_CUR ? a->pos + offset
                                      : a->io.size + offset;
    if (to < 0 || to > a->io.size) {
        archive_set_error(la, EINVAL, "seek to %lld outside the archive's %lld bytes",
                          (long long)to, (long long)a->io.size);
        return ARCHIVE_FATAL;
    }
    if (to != a->pos && a->io.seek(a->io.ctx, to, &a->io_err) < 0) {
        a->io_failed = 1;
        archive_set_error(la, EIO, "%s", a->io_err.message);
        return ARCHIVE_FATAL;
    }
    a->pos = to;
    return to;
}

/* fail reports libarchive's complaint as an input error (damaged archive), or
 * the io's own error when that is what stopped it. */
static int fail(di_archive *a, const char *doing, di_error *err) {
    if (a->io_failed) {
        *err = a->io_err;
        return -1;
    }
    const char *why = archive_error_string(a->a);
    return di_error_set(err, DI_ERR_INPUT, "corrupt %s archive near byte %lld (%s: %s)",
                        a->kind_name, (long long)a->pos, doing, why ? why : "no detail");
}

/* support_format enables exactly the format asked for. */
static int support_format(di_archive *a, di_archive_kind kind) {
    if (kind == DI_ARCHIVE_TAR)
        return archive_read_support_format_tar(a->a);
    if (a->io.seek && a->io.size >= 0)
        return archive_read_support_format_zip_seekable(a->a);
    return archive_read_support_format_zip_streamable(a->a);
}

di_archive *di_archive_open(di_archive_kind kind, const di_archive_io *io, di_error *err) {
    di_archive *a = calloc(1, sizeof *a);
    if (!a || !(a->in = malloc(ARCHIVE_IN_SIZE)) || !(a->a = archive_read_new())) {
        di_archive_close(a);
        di_error_set(err, DI_ERR_INTERNAL, "out of memory opening the archive");
        return NULL;
    }
    a->io = *io;
    a->index = -1;
    snprintf(a->kind_name, sizeof a->kind_name, "%s", kind == DI_ARCHIVE_TAR ? "tar" : "zip");
    archive_read_set_callback_data(a->a, a);
    archive_read_set_read_callback(a->a, read_cb);
    if (a->io.seek && a->io.size >= 0)
        archive_read_set_seek_callback(a->a, seek_cb);
    if (support_format(a, kind) != ARCHIVE_OK || archive_read_open1(a->a) != ARCHIVE_OK) {
        fail(a, "opening", err);
        di_archive_close(a);
        return NULL;
    }
    return a;
}

/* skipped tells whether a member is not data: macOS resource forks, hidden
 * files (".DS_Store", "._name"), anything under a __MACOSX directory. */
static int skipped(const char *name) {
    if (strncmp(name, "__MACOSX/", 9) == 0 || strstr(name, "/__MACOSX/"))
        return 1;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return base[0] == '.' || base[0] == '\0';
}

int di_archive_next(di_archive *a, const char **name, int64_t *index, di_error *err) {
    while (!a->at_end) {
        struct archive_entry *e;
        int rc = archive_read_next_header(a->a, &e);
        if (rc == ARCHIVE_EOF) {
            a->at_end = 1;
            break;
        }
        if (rc < ARCHIVE_WARN)
            return fail(a, "reading the next member's header", err);
        a->index++;
        const char *n = archive_entry_pathname(e);
        if (!n || archive_entry_filetype(e) != AE_IFREG || skipped(n))
            continue;
        if (archive_entry_is_encrypted(e))
            return di_error_set(err, DI_ERR_INPUT, "member \"%s\" is encrypted: not supported", n);
        *name = n;
        *index = a->index;
        return 1;
    }
    return 0;
}

int di_archive_read(di_archive *a, void *buf, size_t cap, size_t *n, di_error *err) {
    la_ssize_t got = archive_read_data(a->a, buf, cap);
    if (got < 0) {
        *n = 0;
        return fail(a, "decompressing a member", err);
    }
    *n = (size_t)got;
    return 0;
}

int64_t di_archive_in_offset(const di_archive *a) {
    return a->in_read;
}

void di_archive_close(di_archive *a) {
    if (!a)
        return;
    if (a->a)
        archive_read_free(a->a);
    free(a->in);
    free(a);
}

/* di_archive_table_key: the base name without its extension; a compression
 * extension before it (.csv.gz) is dropped as well. */
void di_archive_table_key(const char *name, char *out, size_t outsz) {
    static const char *const comp[] = {".gz", ".bz2", ".xz", ".zst"};
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t len = strlen(base);
    for (size_t i = 0; i < sizeof comp / sizeof *comp; i++) {
        size_t cl = strlen(comp[i]);
        if (len > cl && strcasecmp(base + len - cl, comp[i]) == 0) {
            len -= cl;
            break;
        }
    }
    for (size_t i = len; i > 0; i--) {
        if (base[i - 1] == '.') {
            if (i > 1)
                len = i - 1;
            break;
        }
    }
    snprintf(out, outsz, "%.*s", (int)len, base);
}
