/* readopts.c - the reading options of import and scan (see readopts.h). The
 * accepted names are the library's own (di_format_parse, di_compression_parse),
 * so the CLI and the job queue can never disagree. */
#include "cli/readopts.h"

#include "dsa_ingest/decode.h"
#include "dsa_ingest/parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char cli_read_usage[] =
    "  --format auto|csv|tsv|ndjson|xlsx  (default auto: sniffed from the data)\n"
    "  --compression auto|none|gzip|zip|bz2|xz|zstd  (default auto: magic bytes, then name)\n"
    "  --delimiter C           field delimiter (an ASCII character, or \\t; default sniffed)\n"
    "  --header | --no-header  whether the first record names the columns (default sniffed)\n"
    "  --encoding NAME         the source's encoding, e.g. latin-1, windows-1252 (default "
    "UTF-8)\n";

const char *cli_check_read_values(const char *format, const char *compression) {
    di_format f;
    di_compression c;
    if (format && di_format_parse(format, &f))
        return "--format must be auto, csv, tsv, ndjson or xlsx";
    if (compression && di_compression_parse(compression, &c))
        return "--compression must be auto, none, gzip, zip, bz2, xz or zstd";
    return NULL;
}

int cli_parse_long(const char *s, long min, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_delimiter(const char *s, char *out) {
    if (strcmp(s, "\\t") == 0 || strcmp(s, "tab") == 0) {
        *out = '\t';
        return 0;
    }
    if (strlen(s) != 1 || s[0] == '"' || s[0] == '\n' || s[0] == '\r')
        return -1;
    *out = s[0];
    return 0;
}
