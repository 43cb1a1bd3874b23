/* upload.c - multipart uploads (`file`, `commit_message` and the import
 * options as form fields) streamed to DSA_INGEST_SPOOL_DIR/<random>/<name>
 * through one IMPORT_CHUNK_SIZE buffer. The size limit is enforced as bytes
 * arrive: past it the partial file is removed at once and the rest of the
 * body is drained (then 413). The spooled file becomes the job's source; it
 * is removed whenever no job took it. Workers must see the spool directory
 * at the same path (a shared volume). */
#include "dsa_ingest/parse.h"
#include "http/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIELD_MAX 4096

struct di_upload {
    di_serve *s;
    struct MHD_PostProcessor *pp;
    char dir[2048];  /* spool_dir/<32 hex> */
    char path[2400]; /* dir/<safe name> */
    int fd;          /* -1 when no file is open */
    char *buf;       /* chunk_size bytes, written out when full */
    size_t used;
    long long bytes; /* file bytes received */
    int have_file, stopped, too_large;
    char failure[256]; /* why the upload cannot become a job */
    long long drained;
    char message[FIELD_MAX + 1], mode[16], format[16], compression[16], delimiter[8], header[8];
};

/* di_spool_name keeps a file name's extension (the format) and nothing dangerous. */
void di_spool_name(const char *filename, char *out, size_t outsz) {
    const char *base = filename ? filename : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    while (*base == '.')
        base++;
    size_t len = strlen(base), keep = len < outsz - 1 ? len : outsz - 1;
    size_t ext = 0; /* ".csv.gz": from the first dot of the last 15 bytes */
    for (size_t i = len > 15 ? len - 15 : 0; i < len && !ext; i++)
        if (base[i] == '.')
            ext = len - i;
    size_t o = 0;
    for (size_t i = 0; i < len && o < keep; i++) {
        if (len > keep && ext && i == keep - ext) /* too long: cut the stem, keep the extension */
            i = len - ext;
        char ch = base[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        out[o++] = ok ? ch : '_';
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, outsz, "upload");
}

/* fail stops an upload for a reason the client is told at the end. */
static enum MHD_Result fail(di_upload *u, const char *fmt, const char *detail) {
    if (!u->failure[0])
        snprintf(u->failure, sizeof u->failure, fmt, detail);
    u->stopped = 1;
    return MHD_NO;
}

/* remove_spool deletes the partial or unwanted file and its directory. */
static void remove_spool(di_upload *u) {
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->path[0])
        unlink(u->path);
    if (u->dir[0])
        rmdir(u->dir);
    u->path[0] = u->dir[0] = '\0';
}

/* flush writes the buffer out. */
static int flush(di_upload *u) {
    size_t off = 0;
    while (off < u->used) {
        ssize_t n = write(u->fd, u->buf + off, u->used - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    u->used = 0;
    return 0;
}

/* open_spool creates the upload's own directory and file (never following
 * a link, never reusing a name). */
static int open_spool(di_upload *u, const char *filename) {
    unsigned char rnd[16];
    char name[128];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return -1;
    int n = snprintf(u->dir, sizeof u->dir, "%s/", u->s->o.spool_dir);
    for (size_t i = 0; i < sizeof rnd && n > 0 && (size_t)n + 3 < sizeof u->dir; i++)
        n += snprintf(u->dir + n, sizeof u->dir - (size_t)n, "%02x", rnd[i]);
    di_spool_name(filename, name, sizeof name);
    snprintf(u->path, sizeof u->path, "%s/%s", u->dir, name);
    if (mkdir(u->dir, 0700) != 0) {
        u->dir[0] = u->path[0] = '\0';
        return -1;
    }
    u->fd = open(u->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    return u->fd < 0 ? -1 : 0;
}

/* take_file stores one piece of the file part. */
static enum MHD_Result take_file(di_upload *u, const char *filename, const char *data, uint64_t off,
                                 size_t size) {
    if (!u->have_file) {
        if (open_spool(u, filename) != 0)
            return fail(u, "cannot create the spool file: %s", strerror(errno));
        u->have_file = 1;
    } else if (off == 0 && u->bytes > 0) {
        return fail(u, "%s", "one file per upload, please");
    }
    u->bytes += (long long)size;
    if (u->bytes > u->s->o.max_upload) {
        u->too_large = 1;
        remove_spool(u); /* at once: nothing over the limit stays on disk */
        return fail(u, "%s", "over the limit");
    }
    while (size) {
        size_t room = (size_t)u->s->chunk_size - u->used, n = size < room ? size : room;
        memcpy(u->buf + u->used, data, n);
        u->used += n;
        data += n;
        size -= n;
        if (u->used == (size_t)u->s->chunk_size && flush(u) != 0)
            return fail(u, "cannot write the spool file: %s", strerror(errno));
    }
    return MHD_YES;
}

/* take_field appends one piece of a small form field to its buffer. */
static enum MHD_Result take_field(di_upload *u, const char *key, char *dst, size_t dstsz,
                                  const char *data, uint64_t off, size_t size) {
    size_t have = strlen(dst);
    if (off != have || have + size >= dstsz)
        return fail(u, "form field \"%s\" is too long", key);
    memcpy(dst + have, data, size);
    dst[have + size] = '\0';
    return MHD_YES;
}

/* on_part is the post processor's iterator: every piece of every part. */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size) {
    di_upload *u = cls;
    static const struct {
        const char *key;
        size_t field;
        size_t size;
    } fields[] = {
        {"commit_message", offsetof(di_upload, message), FIELD_MAX + 1},
        {"mode", offsetof(di_upload, mode), 16},
        {"format", offsetof(di_upload, format), 16},
        {"compression", offsetof(di_upload, compression), 16},
        {"delimiter", offsetof(di_upload, delimiter), 8},
        {"header", offsetof(di_upload, header), 8},
    };
    if (strcmp(key, "file") == 0)
        return take_file(u, filename, data, off, size);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(key, fields[i].key) == 0)
            return take_field(u, key, (char *)u + fields[i].field, fields[i].size, data, off, size);
    return MHD_YES; /* unknown fields are ignored, as browsers add their own */
}

/* di_upload_begin sets up the post processor and the one write buffer. */
enum MHD_Result di_upload_begin(di_serve *s, di_request *r, struct MHD_Connection *c) {
    di_upload *u = calloc(1, sizeof *u);
    char *buf = u ? malloc((size_t)s->chunk_size) : NULL;
    if (!buf) {
        free(u);
        return di_serve_error(s, r, c, 500, "out of memory");
    }
    u->s = s;
    u->fd = -1;
    u->buf = buf;
    u->pp = MHD_create_post_processor(c, 16384, on_part, u);
    if (!u->pp) {
        di_upload_free(u);
        return di_serve_error(s, r, c, 400, "multipart/form-data body without a boundary");
    }
    r->upload = u;
    return MHD_YES;
}

/* di_upload_feed hands a piece to the post processor, or drops it once stopped. */
enum MHD_Result di_upload_feed(di_serve *s, di_request *r, const char *data, size_t size) {
    di_upload *u = r->upload;
    if (!u->stopped && MHD_post_process(u->pp, data, size) != MHD_YES && !u->stopped)
        fail(u, "%s", "malformed multipart/form-data body");
    if (u->stopped && (u->drained += (long long)size) > DI_DRAIN_MAX)
        return MHD_NO;
    return MHD_YES;
}

/* finish_file writes out the rest and makes the file durable. */
static int finish_file(di_upload *u) {
    if (u->used && flush(u) != 0)
        return -1;
    if (fsync(u->fd) != 0 || close(u->fd) != 0) {
        u->fd = -1;
        return -1;
    }
    u->fd = -1;
    return 0;
}

/* form_request turns the form fields into an import request. */
static int form_request(di_upload *u, di_import_request *q) {
    memset(q, 0, sizeof *q);
    q->source = u->path;
    q->header = strcmp(u->header, "false") != 0 && strcmp(u->header, "0") != 0;
    q->message = u->message[0] ? u->message : NULL;
    q->mode = u->mode[0] ? u->mode : NULL;
    q->format = u->format[0] ? u->format : NULL;
    q->compression = u->compression[0] ? u->compression : NULL;
    if (u->delimiter[0] && !di_delimiter_ok(u->delimiter))
        return -1;
    q->delimiter = u->delimiter[0];
    return 0;
}

/* di_upload_finish answers 413, the form's error, or queues the spooled file. */
enum MHD_Result di_upload_finish(di_serve *s, di_request *r, struct MHD_Connection *c) {
    di_upload *u = r->upload;
    if (u->too_large) {
        di_serve_count(&s->stats.uploads_too_large, 1);
        return di_serve_error(s, r, c, 413,
                              "upload is over the limit of %lld bytes; nothing was kept",
                              s->o.max_upload);
    }
    if (!u->stopped && !u->have_file)
        fail(u, "%s", "no \"file\" part in the form");
    if (!u->stopped && finish_file(u) != 0)
        fail(u, "cannot write the spool file: %s", strerror(errno));
    di_import_request q;
    if (!u->stopped && form_request(u, &q) != 0)
        fail(u, "%s", "delimiter must be one ASCII character");
    if (u->stopped) {
        remove_spool(u);
        di_serve_count(&s->stats.uploads_failed, 1);
        return di_serve_error(s, r, c, strncmp(u->failure, "cannot", 6) == 0 ? 500 : 400, "%s",
                              u->failure);
    }
    enum MHD_Result ok = di_api_queue(s, r, c, &q, 0);
    if (r->queued) {
        di_serve_count(&s->stats.uploads_accepted, 1);
        di_serve_count(&s->stats.upload_bytes, u->bytes);
    } else {
        remove_spool(u);
    }
    return ok;
}

/* di_upload_free removes a file no job took (an aborted or refused upload). */
void di_upload_free(di_upload *u) {
    if (!u)
        return;
    if (u->pp)
        MHD_destroy_post_processor(u->pp);
    if (u->fd >= 0 || u->stopped)
        remove_spool(u); /* a body that never completed */
    free(u->buf);
    free(u);
}
