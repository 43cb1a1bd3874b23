/* profile.c - column types and counts per table (see profile.h). The type
 * tests are strict and cheap: a value is an integer only as [-+]digits with
 * no leading zero (so ZIP codes stay text), a date only as YYYY-MM-DD. */
#include "dsa_ingest/profile.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* digits counts the ASCII digits at s[0..n). */
static size_t digits(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* is_integer: an optional sign, then 1-19 digits without a leading zero. */
static int is_integer(const char *s, size_t n) {
    size_t i = n && (s[0] == '-' || s[0] == '+');
    size_t d = digits(s + i, n - i);
    return d > 0 && d <= 18 && i + d == n && (d == 1 || s[i] != '0');
}

/* is_float: [sign] digits [. digits] [e [sign] digits], with a digit somewhere. */
static int is_float(const char *s, size_t n) {
    size_t i = n && (s[0] == '-' || s[0] == '+');
    size_t a = digits(s + i, n - i), b = 0;
    i += a;
    if (i < n && s[i] == '.') {
        b = digits(s + i + 1, n - i - 1);
        i += 1 + b;
    }
    if (a + b == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        i += i < n && (s[i] == '-' || s[i] == '+');
        size_t e = digits(s + i, n - i);
        if (!e)
            return 0;
        i += e;
    }
    return i == n;
}

/* num2 reads two digits at s, -1 if they are not digits. */
static int num2(const char *s) {
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* is_date: YYYY-MM-DD with a real month and a day that month can have. */
static int is_date(const char *s, size_t n) {
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n < 10 || digits(s, 4) != 4 || s[4] != '-' || s[7] != '-')
        return 0;
    int m = num2(s + 5), d = num2(s + 8);
    return m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1];
}

/* is_time: HH:MM[:SS[.frac]] then an optional Z or ±HH[:MM] zone, to the end. */
static int is_time(const char *s, size_t n) {
    if (n < 5 || num2(s) < 0 || num2(s) > 23 || s[2] != ':' || num2(s + 3) < 0 || num2(s + 3) > 59)
        return 0;
    size_t i = 5;
    if (i + 3 <= n && s[i] == ':' && num2(s + i + 1) >= 0 && num2(s + i + 1) <= 60) {
        i += 3;
        if (i < n && s[i] == '.') {
            size_t f = digits(s + i + 1, n - i - 1);
            if (!f)
                return 0;
            i += 1 + f;
        }
    }
    if (i < n && s[i] == 'Z')
        i++;
    else if (i < n && (s[i] == '+' || s[i] == '-')) {
        if (i + 3 > n || num2(s + i + 1) < 0)
            return 0;
        i += 3;
        if (i < n && s[i] == ':')
            i++;
        i += digits(s + i, n - i) == 2 ? 2 : 0;
    }
    return i == n;
}

/* text_types: the bits a string value fits. */
static unsigned text_types(const char *s, size_t n) {
    if ((n == 4 && strncasecmp(s, "true", 4) == 0) || (n == 5 && strncasecmp(s, "false", 5) == 0))
        return DI_TYPE_BOOLEAN;
    if (is_integer(s, n))
        return DI_TYPE_INTEGER | DI_TYPE_FLOAT;
    size_t sign = s[0] == '-' || s[0] == '+';
    if (n > sign + 1 && s[sign] == '0' && digits(s, n) == n)
        return 0; /* 007: a code, not a number */
    if (is_float(s, n))
        return DI_TYPE_FLOAT;
    if (is_date(s, n)) {
        if (n == 10)
            return DI_TYPE_DATE | DI_TYPE_TIMESTAMP;
        if ((s[10] == 'T' || s[10] == ' ') && is_time(s + 11, n - 11))
            return DI_TYPE_TIMESTAMP;
    }
    return 0;
}

unsigned di_value_types(const char *s, size_t n, di_value_kind kind) {
    if (kind == DI_VAL_NULL || n == 0)
        return 0;
    if (kind == DI_VAL_TEXT)
        return text_types(s, n);
    switch (s[0]) { /* canonical JSON text */
    case 'n':
        return 0;
    case 't':
    case 'f':
        return DI_TYPE_BOOLEAN;
    case '{':
    case '[':
        return DI_TYPE_JSON;
    case '"':
        return memchr(s, '\\', n) ? 0 : text_types(s + 1, n - 2);
    default:
        return (memchr(s, '.', n) || memchr(s, 'e', n)) ? DI_TYPE_FLOAT
                                                        : DI_TYPE_INTEGER | DI_TYPE_FLOAT;
    }
}

const char *di_type_name(unsigned mask) {
    static const struct {
        unsigned bit;
        const char *name;
    } order[] = {{DI_TYPE_BOOLEAN, "boolean"},     {DI_TYPE_INTEGER, "integer"},
                 {DI_TYPE_FLOAT, "float"},         {DI_TYPE_DATE, "date"},
                 {DI_TYPE_TIMESTAMP, "timestamp"}, {DI_TYPE_JSON, "json"}};
    if (mask == DI_TYPE_ALL)
        return "text"; /* no value seen */
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (mask & order[i].bit)
            return order[i].name;
    return "text";
}

void di_profile_init(di_profile *p) {
    memset(p, 0, sizeof *p);
}

/* table_cleanup frees one table's names and columns. */
static void table_cleanup(di_table_profile *t) {
    for (size_t i = 0; i < t->ncols; i++)
        free(t->cols[i].name);
    free(t->cols);
    free(t->key);
}

void di_profile_cleanup(di_profile *p) {
    for (size_t i = 0; i < p->ntables; i++)
        table_cleanup(&p->tables[i]);
    free(p->tables);
    memset(p, 0, sizeof *p);
}

/* add_column appends a column that has seen no value yet. */
static int add_column(di_table_profile *t, const char *name) {
    if (t->ncols == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        di_column_stats *c = realloc(t->cols, cap * sizeof *c);
        if (!c)
            return -1;
        t->cols = c;
        t->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return -1;
    t->cols[t->ncols++] = (di_column_stats){copy, DI_TYPE_ALL, 0, 0};
    return 0;
}

/* find_table returns the index of key, or ntables. */
static size_t find_table(const di_profile *p, const char *key) {
    size_t i = 0;
    while (i < p->ntables && strcmp(p->tables[i].key, key) != 0)
        i++;
    return i;
}

/* new_table appends an empty table named key. */
static di_table_profile *new_table(di_profile *p, const char *key) {
    di_table_profile *t = realloc(p->tables, (p->ntables + 1) * sizeof *t);
    if (!t)
        return NULL;
    p->tables = t;
    t = &p->tables[p->ntables];
    memset(t, 0, sizeof *t);
    if (!(t->key = strdup(key)))
        return NULL;
    p->ntables++;
    return t;
}

int di_profile_table(di_profile *p, const char *key, const char *const *cols, size_t n) {
    p->current = find_table(p, key);
    if (p->current < p->ntables)
        return 0;
    di_table_profile *t = new_table(p, key);
    for (size_t i = 0; t && i < n; i++)
        if (add_column(t, cols[i]))
            return -1;
    return t ? 0 : -1;
}

/* count folds one value into its column. */
static void count(di_column_stats *c, const char *v, size_t len, di_value_kind kind) {
    if (kind == DI_VAL_NULL || (kind == DI_VAL_JSON && len == 4 && memcmp(v, "null", 4) == 0)) {
        c->nulls++;
        return;
    }
    if (len == 0 || (kind == DI_VAL_JSON && len == 2 && v[0] == '"')) {
        c->empties++;
        return;
    }
    if (c->mask)
        c->mask &= di_value_types(v, len, kind);
}

/* named_column finds (or adds) the column `name`, trying the hint first:
 * NDJSON records mostly repeat the previous record's keys in order. */
static di_column_stats *named_column(di_table_profile *t, const char *name, size_t hint) {
    if (hint < t->ncols && strcmp(t->cols[hint].name, name) == 0)
        return &t->cols[hint];
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return add_column(t, name) ? NULL : &t->cols[t->ncols - 1];
}

int di_profile_add(di_profile *p, const di_record *rec) {
    if (p->current >= p->ntables)
        return -1;
    di_table_profile *t = &p->tables[p->current];
    t->rows++;
    for (size_t i = 0; i < rec->nfields; i++) {
        di_value_kind kind = rec->kinds ? (di_value_kind)rec->kinds[i] : DI_VAL_TEXT;
        di_column_stats *c = rec->names     ? named_column(t, rec->names[i], i)
                             : i < t->ncols ? &t->cols[i]
                                            : NULL;
        if (!c)
            return rec->names ? -1 : 0;
        count(c, rec->fields[i], rec->lens[i], kind);
    }
    return 0;
}

/* merge_table folds src's counts into dst, column by column (by name: an
 * NDJSON column first seen in src is appended, as a reader that went on
 * into src's rows would have). */
static int merge_table(di_table_profile *dst, const di_table_profile *src) {
    dst->rows += src->rows;
    for (size_t k = 0; k < src->ncols; k++) {
        const di_column_stats *s = &src->cols[k];
        di_column_stats *d = named_column(dst, s->name, k);
        if (!d)
            return -1;
        d->mask &= s->mask;
        d->nulls += s->nulls;
        d->empties += s->empties;
    }
    return 0;
}

int di_profile_merge(di_profile *dst, const di_profile *src) {
    for (size_t i = 0; i < src->ntables; i++) {
        const di_table_profile *t = &src->tables[i];
        size_t at = find_table(dst, t->key);
        di_table_profile *d = at < dst->ntables ? &dst->tables[at] : new_table(dst, t->key);
        if (!d || merge_table(d, t))
            return -1;
    }
    return 0;
}

cJSON *di_profile_to_json(const di_profile *p, int state) {
    cJSON *j = cJSON_CreateObject();
    cJSON *tables = cJSON_AddObjectToObject(j, "tables");
    for (size_t i = 0; i < p->ntables; i++) {
        const di_table_profile *t = &p->tables[i];
        cJSON *tj = cJSON_AddObjectToObject(tables, t->key);
        cJSON_AddNumberToObject(tj, "rows", (double)t->rows);
        cJSON *cols = cJSON_AddArrayToObject(tj, "columns");
        for (size_t k = 0; k < t->ncols; k++) {
            const di_column_stats *c = &t->cols[k];
            cJSON *cj = cJSON_CreateObject();
            cJSON_AddStringToObject(cj, "name", c->name);
            cJSON_AddStringToObject(cj, "type", di_type_name(c->mask));
            cJSON_AddNumberToObject(cj, "nulls", (double)c->nulls);
            cJSON_AddNumberToObject(cj, "empties", (double)c->empties);
            if (state)
                cJSON_AddNumberToObject(cj, "mask", c->mask);
            cJSON_AddItemToArray(cols, cj);
        }
    }
    return j;
}

/* num reads a number member (0 when absent). */
static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int di_profile_from_json(di_profile *p, const cJSON *j) {
    const cJSON *tables = cJSON_GetObjectItemCaseSensitive(j, "tables");
    const cJSON *tj;
    cJSON_ArrayForEach(tj, tables) {
        di_table_profile *t = tj->string ? new_table(p, tj->string) : NULL;
        if (!t)
            return -1;
        t->rows = (int64_t)num(tj, "rows");
        const cJSON *cj;
        cJSON_ArrayForEach(cj, cJSON_GetObjectItemCaseSensitive(tj, "columns")) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(cj, "name");
            if (!cJSON_IsString(name) || add_column(t, name->valuestring))
                return -1;
            di_column_stats *c = &t->cols[t->ncols - 1];
            c->mask = (unsigned)num(cj, "mask") & DI_TYPE_ALL;
            c->nulls = (int64_t)num(cj, "nulls");
            c->empties = (int64_t)num(cj, "empties");
        }
    }
    return 0;
}
