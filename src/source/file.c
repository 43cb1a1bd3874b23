/* file.c - the local-file source: read(2) straight into the caller's buffer.
 *
 * The ETag of a file is "<mtime in ns, hex>-<size, hex>" (nginx's idea): a job
 * resumed with opts->etag fails cleanly if the file was rewritten meanwhile. */
#include "source/source_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct file_source {
    di_source base;
    int fd;
} file_source;

/* file_read retries EINTR; any other failure is transient (a network file
 * system hiccup), so the job stays resumable from its checkpoint. */
static int file_read(di_source *s, void *buf, size_t cap, size_t *nread, di_error *err) {
    file_source *f = (file_source *)s;
    ssize_t n;
    do
        n = read(f->fd, buf, cap);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return di_error_set(err, DI_ERR_TRANSIENT, "read error at byte %lld: %s: %s",
                            (long long)s->offset, strerror(errno), s->display);
    *nread = (size_t)n;
    s->stats.bytes_fetched += n;
    return 0;
}

/* file_close closes the descriptor and frees the source. */
static void file_close(di_source *s) {
    file_source *f = (file_source *)s;
    close(f->fd);
    free(f);
}

static const di_source_ops file_ops = {file_read, file_close};

/* open_fd opens path read-only, mapping errno to the message a user can act on. */
static int open_fd(const char *path, di_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    if (errno == ENOENT || errno == ENOTDIR)
        return di_error_set(err, DI_ERR_CONFIG, "no such file: %s", path);
    if (errno == EACCES)
        return di_error_set(err, DI_ERR_CONFIG, "permission denied: %s", path);
    return di_error_set(err, DI_ERR_CONFIG, "cannot open %s: %s", path, strerror(errno));
}

/* check_stat fills size and ETag and refuses directories, a changed file and
 * an offset past the end. */
static int check_stat(file_source *f, const struct stat *st, const char *path,
                      const di_source_opts *o, di_error *err) {
    if (S_ISDIR(st->st_mode))
        return di_error_set(err, DI_ERR_CONFIG, "is a directory, not a file: %s", path);
    if (!S_ISREG(st->st_mode))
        return 0; /* a pipe or device: no size, no ETag, offset 0 only */
    f->base.size = st->st_size;
    long long mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    snprintf(f->base.etag, sizeof f->base.etag, "%llx-%llx", mtime_ns, (long long)st->st_size);
    if (o->etag && o->etag[0] && strcmp(o->etag, f->base.etag) != 0)
        return di_error_set(err, DI_ERR_INPUT,
                            "the object changed during the import (ETag was %s, now %s): %s",
                            o->etag, f->base.etag, f->base.display);
    if (f->base.offset > st->st_size)
        return di_error_set(err, DI_ERR_CONFIG, "offset %lld is past the end (size %lld): %s",
                            (long long)f->base.offset, (long long)st->st_size, path);
    return 0;
}

/* seek_to positions the descriptor at the start offset. */
static int seek_to(file_source *f, const char *path, di_error *err) {
    if (f->base.offset == 0)
        return 0;
    if (lseek(f->fd, (off_t)f->base.offset, SEEK_SET) < 0)
        return di_error_set(err, DI_ERR_CONFIG, "cannot seek to byte %lld: %s: %s",
                            (long long)f->base.offset, strerror(errno), path);
    return 0;
}

/* di_file_open opens, checks and positions a local file. */
di_source *di_file_open(const char *path, const char *display, int64_t offset,
                        const di_source_opts *o, di_error *err) {
    int fd = open_fd(path, err);
    if (fd < 0)
        return NULL;
    file_source *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        di_error_set(err, DI_ERR_INTERNAL, "out of memory opening %s", path);
        return NULL;
    }
    f->fd = fd;
    di_source_base_init(&f->base, &file_ops, display, offset);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        di_error_set(err, DI_ERR_CONFIG, "cannot stat %s: %s", path, strerror(errno));
        file_close(&f->base);
        return NULL;
    }
    if (check_stat(f, &st, path, o, err) != 0 || seek_to(f, path, err) != 0) {
        file_close(&f->base);
        return NULL;
    }
    return &f->base;
}
