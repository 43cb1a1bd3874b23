/* columns.c - helpers shared by the parsers: column names (DESIGN §2: empty
 * name -> column_N, repeats -> _2, _3...), strict UTF-8 validation, format
 * names and the default parse options. Nothing here keeps state between calls. */
#include "dsa_ingest/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_FIELD   ((size_t)16 << 20)
#define DEFAULT_MAX_COLUMNS ((size_t)16384)

/* di_parse_opts_default fills the settings' defaults so callers only set what
 * the job overrides. */
void di_parse_opts_default(di_parse_opts *o) {
    memset(o, 0, sizeof *o);
    o->format = DI_FMT_CSV;
    o->header = 1;
    o->max_field = DEFAULT_MAX_FIELD;
    o->max_columns = DEFAULT_MAX_COLUMNS;
    o->table_key = "primary";
    o->start_row = 1;
}

static const char *const format_names[] = {"auto", "csv", "tsv", "ndjson", "xlsx"};

/* di_format_name gives the name used by --format and run_parameters. */
const char *di_format_name(di_format f) {
    if ((unsigned)f < sizeof format_names / sizeof *format_names)
        return format_names[f];
    return "unknown";
}

/* di_format_parse reads a --format value (case-insensitive); -1 if unknown. */
int di_format_parse(const char *s, di_format *out) {
    for (size_t i = 0; s && i < sizeof format_names / sizeof *format_names; i++) {
        if (strcasecmp(s, format_names[i]) == 0) {
            *out = (di_format)i;
            return 0;
        }
    }
    return -1;
}

int di_delimiter_ok(const char *s) {
    return s && s[0] && !s[1] && (unsigned char)s[0] < 0x80;
}

/* utf8_seq returns the length of the one valid UTF-8 sequence at s, or 0: the
 * tables of Unicode 15 §3.9 (no overlongs, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* ascii8 tells whether 8 bytes are all ASCII: the fast path, since most data is. */
static int ascii8(const unsigned char *s) {
    unsigned long long w;
    memcpy(&w, s, sizeof w);
    return (w & 0x8080808080808080ULL) == 0;
}

/* di_utf8_valid returns the length of the valid prefix; a sequence cut short
 * by the end of the input counts as invalid (callers hold such tails back). */
size_t di_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8 && ascii8(s + i)) {
            i += 8;
        } else if (s[i] < 0x80) {
            i++;
        } else {
            size_t k = utf8_seq(s + i, n - i);
            if (k == 0)
                return i;
            i += k;
        }
    }
    return i;
}

/* A small open-addressing set of names with, per name, the next suffix to try:
 * headers can have 16384 columns, so no quadratic search. */
typedef struct name_slot {
    const char *name; /* borrowed from the names array */
    size_t next;      /* next _N suffix to try for repeats of this name */
} name_slot;

typedef struct name_set {
    name_slot *slot;
    size_t mask;
} name_set;

/* name_hash is FNV-1a: short keys, no need for more. */
static size_t name_hash(const char *s) {
    size_t h = (size_t)14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * (size_t)1099511628211ULL;
    return h;
}

/* set_init sizes the set for n names at most half full. */
static int set_init(name_set *s, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    s->slot = calloc(cap, sizeof *s->slot);
    s->mask = cap - 1;
    return s->slot ? 0 : -1;
}

/* set_find returns the slot holding name, or the empty slot where it belongs. */
static name_slot *set_find(const name_set *s, const char *name) {
    size_t i = name_hash(name) & s->mask;
    while (s->slot[i].name && strcmp(s->slot[i].name, name) != 0)
        i = (i + 1) & s->mask;
    return &s->slot[i];
}

/* set_add inserts name; 1 when it was new, 0 when already present. */
static int set_add(name_set *s, const char *name) {
    name_slot *e = set_find(s, name);
    if (e->name)
        return 0;
    e->name = name;
    e->next = 2;
    return 1;
}

/* fill_empty names empty columns column_N (1-based), before repeats are
 * looked at, so a generated name can itself be a repeat. */
static int fill_empty(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (names[i] && names[i][0])
            continue;
        char tmp[32];
        snprintf(tmp, sizeof tmp, "column_%zu", i + 1);
        char *s = strdup(tmp);
        if (!s)
            return -1;
        free(names[i]);
        names[i] = s;
    }
    return 0;
}

/* unique_name makes base_K for the smallest K from the base's counter on that
 * no column uses yet, and records it as used. */
static char *unique_name(name_set *all, name_slot *base) {
    size_t len = strlen(base->name) + 24;
    char *s = malloc(len);
    if (!s)
        return NULL;
    for (;;) {
        snprintf(s, len, "%s_%zu", base->name, base->next++);
        if (set_add(all, s))
            return s;
    }
}

/* rename_repeats keeps each name's first occurrence and renames the others;
 * `all` holds every name already taken (originals and generated). */
static int rename_repeats(char **names, size_t n, name_set *all, name_set *seen) {
    for (size_t i = 0; i < n; i++)
        set_add(all, names[i]);
    for (size_t i = 0; i < n; i++) {
        if (set_add(seen, names[i]))
            continue;
        char *u = unique_name(all, set_find(all, names[i]));
        if (!u)
            return -1;
        free(names[i]);
        names[i] = u;
        set_add(seen, u);
    }
    return 0;
}

/* di_normalize_columns applies DESIGN §2 in place (see parse.h). */
int di_normalize_columns(char **names, size_t n) {
    if (fill_empty(names, n) != 0)
        return -1;
    name_set all = {0}, seen = {0};
    int rc = -1;
    if (set_init(&all, 2 * n) == 0 && set_init(&seen, 2 * n) == 0)
        rc = rename_repeats(names, n, &all, &seen);
    free(all.slot);
    free(seen.slot);
    return rc;
}
