/* replay.c - a main() for the fuzz targets where libFuzzer is not linked (gcc
 * builds, ctest): each file named, and each file in each directory named, is
 * fed once to LLVMFuzzerTestOneInput, as zstd's regression_driver.c does. A
 * broken invariant aborts, so the test fails. A path that does not exist is
 * passed over (a target may have no regression inputs yet). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* slurp reads a whole file into a buffer of exactly its size (so an over-read
 * past the input is caught by ASan, as under libFuzzer). NULL on failure. */
static uint8_t *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    uint8_t *exact = bad ? NULL : malloc(n ? n : 1);
    if (exact && n)
        memcpy(exact, buf, n);
    free(buf);
    *size = n;
    return exact;
}

/* run_file feeds one file to the target; -1 if it cannot be read. */
static int run_file(const char *path) {
    size_t n;
    uint8_t *data = slurp(path, &n);
    if (!data) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    fprintf(stderr, "replay: %s\n", path); /* the last one named is the one that aborted */
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return 0;
}

/* run_dir feeds every regular file of a directory, in name order; returns
 * the files run, or -1 on a read failure. */
static int run_dir(const char *dir) {
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort), count = 0;
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s\n", dir);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
        if (list[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (count >= 0)
                count = run_file(path) == 0 ? count + 1 : -1;
        }
        free(list[i]);
    }
    free(list);
    return count;
}

/* main replays every path given; exit 1 if one could not be read. */
int main(int argc, char **argv) {
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int n;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: none, passed over\n", argv[i]);
            continue;
        }
        n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
        if (n < 0)
            return 1;
        total += n;
    }
    printf("replay: %d inputs, no invariant broken\n", total);
    return 0;
}
