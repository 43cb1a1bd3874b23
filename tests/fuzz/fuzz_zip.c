/* fuzz_zip.c - libFuzzer target for zip archives (src/decode/archive.c over
 * libarchive). The input is the zip, read with seeking as the reader does it
 * (through the central directory), every member read to its end. It is read
 * twice, in one go and in small reads of input-dependent sizes: every name
 * must be a data member's, and when both runs read the whole archive they
 * must list the same members with the same bytes. */
#include "fuzz_common.h"

#include "decode/archive.h"

#define MAX_OUT   ((size_t)8 << 20)  /* member bytes read per run (zip bombs stop here) */
#define SMALL_OUT ((size_t)64 << 10) /* small member reads up to here, then large ones */

/* check_name: a data member's name, as di_archive_next promises it. */
static void check_name(const char *name) {
    FUZZ_CHECK(name != NULL && name[0] != '\0');
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    FUZZ_CHECK(base[0] != '.' && base[0] != '\0');
    FUZZ_CHECK(strncmp(name, "__MACOSX/", 9) != 0 && !strstr(name, "/__MACOSX/"));
    char key[256], small[4];
    di_archive_table_key(name, key, sizeof key);
    di_archive_table_key(name, small, sizeof small);
    FUZZ_CHECK(strchr(key, '/') == NULL && strlen(small) < sizeof small);
    FUZZ_CHECK(strncmp(key, small, strlen(small)) == 0);
}

/* read_member reads the current member to its end (or the run's budget):
 * 0, or -1 on an error. Its bytes go into the digest when it reads to the
 * end: libarchive drops what one read decoded before an error (a bad CRC is
 * found at the member's end), so how much comes before one depends on the
 * read sizes. */
static int read_member(di_archive *a, fz_in *in, size_t *total, uint64_t *d) {
    static unsigned char buf[SMALL_OUT];
    size_t member = 0;
    uint64_t md = 14695981039346656037ULL;
    for (;;) {
        size_t cap = sizeof buf, n = 1;
        if (in->chunked && member < SMALL_OUT) {
            size_t c = fz_size(&in->rng);
            cap = cap < c ? cap : c;
        }
        if (cap > MAX_OUT - *total)
            cap = MAX_OUT - *total;
        di_error err;
        di_error_clear(&err);
        if (di_archive_read(a, buf, cap, &n, &err) != 0) {
            fz_check_error(&err);
            FUZZ_CHECK(n == 0 && err.cls == DI_ERR_INPUT);
            return -1;
        }
        FUZZ_CHECK(n <= cap);
        fz_mix_stream(&md, buf, n);
        member += n;
        *total += n;
        if (n == 0 || *total == MAX_OUT) {
            fz_mix_int(d, (int64_t)md);
            fz_mix_int(d, (int64_t)member);
            return 0;
        }
    }
}

/* run lists and reads every member; returns the digest of names and bytes,
 * or 0 when something failed: libarchive words a failure by read position,
 * and a few of its decoders (LZMA) fail or not by read size, so only runs
 * that both read the whole archive are compared. */
static uint64_t run(const uint8_t *data, size_t size, int chunked, uint64_t seed) {
    fz_in in;
    fz_in_init(&in, data, size, chunked, seed);
    di_archive_io io = {fz_read, fz_seek, (int64_t)size, &in};
    di_error err;
    di_error_clear(&err);
    uint64_t d = 14695981039346656037ULL;
    di_archive *a = di_archive_open(DI_ARCHIVE_ZIP, &io, &err);
    if (!a) {
        fz_check_error(&err);
        FUZZ_CHECK(err.cls == DI_ERR_INPUT);
        return 0;
    }
    int64_t last = -1, in_read = 0, index;
    size_t total = 0;
    int rc = 0;
    const char *name;
    while (rc == 0 && total < MAX_OUT) {
        rc = di_archive_next(a, &name, &index, &err);
        if (rc != 1) {
            if (rc < 0)
                fz_check_error(&err);
            break;
        }
        check_name(name);
        FUZZ_CHECK(index > last);
        last = index;
        fz_mix(&d, name, strlen(name));
        fz_mix_int(&d, index);
        rc = read_member(a, &in, &total, &d);
        FUZZ_CHECK(di_archive_in_offset(a) >= in_read);
        in_read = di_archive_in_offset(a);
    }
    di_archive_close(a);
    return rc < 0 ? 0 : d;
}

/* LLVMFuzzerTestOneInput: what the archive holds must not depend on read sizes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fz_has_lzma(data, size))
        return 0;
    uint64_t seed = fz_hash(data, size);
    uint64_t whole = run(data, size, 0, seed);
    uint64_t pieces = run(data, size, 1, seed);
    FUZZ_CHECK(whole == pieces || whole == 0 || pieces == 0);
    return 0;
}
