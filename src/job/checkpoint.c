/* checkpoint.c - the checkpoint <-> JSON, with cJSON. The inflate window
 * travels as base64; offsets as JSON numbers (exact up to 2^53 bytes). */
#include "job/checkpoint.h"
#include "util/base64.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void di_checkpoint_init(di_checkpoint *cp) {
    memset(cp, 0, sizeof *cp);
    cp->size = -1;
    di_reader_pos_init(&cp->pos);
    di_profile_init(&cp->profile);
}

void di_checkpoint_cleanup(di_checkpoint *cp) {
    di_reader_pos_cleanup(&cp->pos);
    di_profile_cleanup(&cp->profile);
    free(cp->rejects);
    cp->rejects = NULL;
    free(cp->finished);
    cp->finished = NULL;
    cp->nfinished = 0;
    cp->nrejects = 0;
}

int di_checkpoint_add_reject(di_checkpoint *cp, const di_error *e) {
    if (cp->nrejects > 0) { /* the same record again: a resume re-read it */
        const di_reject *last = &cp->rejects[cp->nrejects - 1];
        if (last->row == e->row && strcmp(last->table, e->table) == 0)
            return 0;
    }
    cp->rejects_total++;
    if (cp->nrejects >= DI_REJECTS_KEPT)
        return 0;
    di_reject *r = realloc(cp->rejects, (cp->nrejects + 1) * sizeof *r);
    if (!r)
        return -1;
    cp->rejects = r;
    r = &cp->rejects[cp->nrejects++];
    snprintf(r->table, sizeof r->table, "%s", e->table);
    r->row = e->row;
    r->byte = e->byte;
    snprintf(r->reason, sizeof r->reason, "%s", e->message);
    snprintf(r->excerpt, sizeof r->excerpt, "%s", e->excerpt);
    return 0;
}

cJSON *di_rejects_json(const di_checkpoint *cp) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < cp->nrejects; i++) {
        const di_reject *r = &cp->rejects[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table", r->table);
        cJSON_AddNumberToObject(o, "row", (double)r->row);
        cJSON_AddNumberToObject(o, "byte", (double)r->byte);
        cJSON_AddStringToObject(o, "reason", r->reason);
        cJSON_AddStringToObject(o, "excerpt", r->excerpt);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* parse_rejects restores the kept rejects and their count. */
static int parse_rejects(di_checkpoint *cp, const cJSON *rj) {
    cp->rejects_total = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(rj, "items")) {
        di_error e;
        di_error_clear(&e);
        const cJSON *v;
        if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(it, "table")))
            snprintf(e.table, sizeof e.table, "%s", v->valuestring);
        if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(it, "reason")))
            snprintf(e.message, sizeof e.message, "%s", v->valuestring);
        if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(it, "excerpt")))
            snprintf(e.excerpt, sizeof e.excerpt, "%s", v->valuestring);
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(it, "row")))
            e.row = (int64_t)v->valuedouble;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(it, "byte")))
            e.byte = (int64_t)v->valuedouble;
        if (di_checkpoint_add_reject(cp, &e))
            return -1;
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(rj, "count");
    if (cJSON_IsNumber(n))
        cp->rejects_total = (int64_t)n->valuedouble;
    return 0;
}

/* decoder_json renders the decode point: where inflate restarts. */
static cJSON *decoder_json(const di_decode_point *pt) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "kind", di_compression_name(pt->kind));
    cJSON_AddNumberToObject(d, "in_offset", (double)pt->in_offset);
    cJSON_AddNumberToObject(d, "bits", pt->bits);
    cJSON_AddNumberToObject(d, "out_offset", (double)pt->out_offset);
    cJSON_AddNumberToObject(d, "skip", (double)pt->skip);
    cJSON_AddBoolToObject(d, "member_start", pt->member_start);
    if (pt->window_len) {
        char *w = malloc(4 * ((pt->window_len + 2) / 3) + 1);
        if (w) {
            di_base64_encode(pt->window, pt->window_len, w);
            cJSON_AddStringToObject(d, "window", w);
            free(w);
        }
    }
    return d;
}

/* finished_json renders the segments committed beyond the watermark. */
static cJSON *finished_json(const di_segment *seg, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table_key", seg[i].table);
        cJSON_AddNumberToObject(o, "from", (double)seg[i].from);
        cJSON_AddNumberToObject(o, "to", (double)seg[i].to);
        cJSON_AddNumberToObject(o, "rows", (double)seg[i].rows);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* parts_json lists the parts set in a mask, ascending. */
static cJSON *parts_json(unsigned mask) {
    cJSON *a = cJSON_CreateArray();
    for (int p = 0; p < 32; p++)
        if (mask & (1u << p))
            cJSON_AddItemToArray(a, cJSON_CreateNumber(p));
    return a;
}

/* checkpoint_json renders the checkpoint object of DESIGN §3. */
static cJSON *checkpoint_json(const di_checkpoint *cp, const char *url) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "version", DI_CHECKPOINT_VERSION);
    cJSON_AddStringToObject(c, "commit_id", cp->commit_id);
    cJSON *src = cJSON_AddObjectToObject(c, "source");
    cJSON_AddStringToObject(src, "url", url);
    cJSON_AddStringToObject(src, "etag", cp->etag);
    cJSON_AddNumberToObject(src, "size", (double)cp->size);
    const di_reader_pos *p = &cp->pos;
    int64_t offset = p->has_point ? di_decode_source_offset(&p->point) : 0;
    cJSON_AddNumberToObject(c, "offset", (double)offset);
    cJSON_AddStringToObject(c, "format", di_format_name(p->format));
    cJSON_AddStringToObject(c, "compression", di_compression_name(p->compression));
    if (p->delimiter) {
        char d[2] = {p->delimiter, 0};
        cJSON_AddStringToObject(c, "delimiter", d);
    }
    if (p->header >= 0)
        cJSON_AddBoolToObject(c, "header_row", p->header);
    cJSON_AddStringToObject(c, "table_key", p->table_key);
    cJSON_AddNumberToObject(c, "row_number", (double)p->row_number);
    if (p->header_names)
        cJSON_AddItemToObject(
            c, "header",
            cJSON_CreateStringArray((const char *const *)p->header_names, (int)p->nheader));
    if (p->member >= 0) {
        cJSON *m = cJSON_AddObjectToObject(c, "member");
        cJSON_AddNumberToObject(m, "index", (double)p->member);
        cJSON_AddStringToObject(m, "name", p->member_name);
        cJSON_AddNumberToObject(m, "offset", (double)p->member_offset);
    }
    if (p->has_point)
        cJSON_AddItemToObject(c, "decoder", decoder_json(&p->point));
    if (cp->nfinished)
        cJSON_AddItemToObject(c, "finished", finished_json(cp->finished, cp->nfinished));
    cJSON_AddItemToObject(c, "profile", di_profile_to_json(&cp->profile, 1));
    if (cp->stage.parts) {
        cJSON *st = cJSON_AddObjectToObject(c, "stage");
        cJSON_AddNumberToObject(st, "parts", cp->stage.parts);
        cJSON_AddItemToObject(st, "rows_merged", parts_json(cp->stage.rows_merged));
        cJSON_AddItemToObject(st, "manifest_merged", parts_json(cp->stage.manifest_merged));
    }
    if (cp->rejects_total) {
        cJSON *rj = cJSON_AddObjectToObject(c, "rejects");
        cJSON_AddNumberToObject(rj, "count", (double)cp->rejects_total);
        cJSON_AddItemToObject(rj, "items", di_rejects_json(cp));
    }
    return c;
}

static int64_t num(const cJSON *o, const char *key, int64_t def);

/* percentage is bytes_read of size, one decimal. */
static double percentage(int64_t bytes_read, int64_t size) {
    double pct = size > 0 ? 100.0 * (double)bytes_read / (double)size : 0.0;
    return (double)(int64_t)(pct * 10 + 0.5) / 10.0;
}

/* set_number replaces (or adds) a number member. */
static void set_number(cJSON *o, const char *key, double v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddNumberToObject(o, key, v);
}

char *di_progress_patch(const char *progress, int64_t rows, int64_t bytes_read, int64_t batches,
                        const di_segment *finished, size_t nfinished) {
    cJSON *p = cJSON_Parse(progress);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(p, "checkpoint");
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(p);
        return NULL;
    }
    int64_t size = num(p, "bytes_total", -1);
    set_number(p, "rows_processed", (double)rows);
    set_number(p, "bytes_read", (double)bytes_read);
    set_number(p, "batches", (double)batches);
    set_number(p, "percentage", percentage(bytes_read, size));
    cJSON_DeleteItemFromObjectCaseSensitive(c, "finished");
    if (nfinished)
        cJSON_AddItemToObject(c, "finished", finished_json(finished, nfinished));
    char *s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return s;
}

char *di_progress_json(const di_checkpoint *cp, const char *status, const char *url) {
    cJSON *p = cJSON_CreateObject();
    double pct = strcmp(status, "completed") == 0 ? 100.0 : percentage(cp->bytes_read, cp->size);
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    cJSON_AddStringToObject(p, "status", status);
    cJSON_AddNumberToObject(p, "percentage", pct);
    cJSON_AddNumberToObject(p, "rows_processed", (double)cp->rows);
    cJSON_AddNumberToObject(p, "bytes_read", (double)cp->bytes_read);
    cJSON_AddNumberToObject(p, "bytes_total", (double)cp->size);
    cJSON_AddNumberToObject(p, "batches", (double)cp->batches);
    cJSON_AddStringToObject(p, "updated_at", now);
    cJSON_AddItemToObject(p, "checkpoint", checkpoint_json(cp, url));
    char *s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return s;
}

/* num reads a number member, def when absent. */
static int64_t num(const cJSON *o, const char *key, int64_t def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

/* str copies a string member into out ("" when absent). */
static void str(const cJSON *o, const char *key, char *out, size_t outsz) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(out, outsz, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* parse_decoder restores the decode point, window included. */
static int parse_decoder(di_checkpoint *cp, const cJSON *d, di_error *err) {
    char kind[16];
    str(d, "kind", kind, sizeof kind);
    di_decode_point *pt = &cp->pos.point;
    if (di_compression_parse(kind, &pt->kind) || pt->kind == DI_COMP_AUTO)
        return di_error_set(err, DI_ERR_INTERNAL, "checkpoint: unknown decoder kind \"%s\"", kind);
    pt->in_offset = num(d, "in_offset", 0);
    pt->bits = (int)num(d, "bits", 0);
    pt->out_offset = num(d, "out_offset", 0);
    pt->skip = num(d, "skip", 0);
    pt->member_start = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "member_start"));
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "window");
    pt->window_len = 0;
    if (cJSON_IsString(w)) {
        long n = di_base64_decode(w->valuestring, pt->window, sizeof pt->window);
        if (n < 0)
            return di_error_set(err, DI_ERR_INTERNAL, "checkpoint: corrupt decoder window");
        pt->window_len = (size_t)n;
    }
    cp->pos.has_point = 1;
    return 0;
}

/* parse_finished restores the segments committed beyond the watermark. */
static int parse_finished(di_checkpoint *cp, const cJSON *f) {
    int n = cJSON_GetArraySize(f);
    if (n <= 0)
        return 0;
    cp->finished = calloc((size_t)n, sizeof *cp->finished);
    if (!cp->finished)
        return -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, f) {
        di_segment *g = &cp->finished[cp->nfinished++];
        str(it, "table_key", g->table, sizeof g->table);
        g->from = num(it, "from", 0);
        g->to = num(it, "to", 0);
        g->rows = num(it, "rows", 0);
    }
    return 0;
}

/* parse_header restores the column names. */
static int parse_header(di_checkpoint *cp, const cJSON *h) {
    int n = cJSON_GetArraySize(h);
    const char **names = calloc(n ? (size_t)n : 1, sizeof *names);
    if (!names)
        return -1;
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(h, i);
        names[i] = cJSON_IsString(it) ? it->valuestring : "";
    }
    int rc = di_reader_pos_set_header(&cp->pos, names, (size_t)n);
    free(names);
    return rc;
}

/* parse_parts reads a list of merged parts, each below parts, into a mask. */
static int parse_parts(const cJSON *st, const char *key, int parts, unsigned *mask) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(st, key), *v;
    *mask = 0;
    if (!a)
        return 0;
    if (!cJSON_IsArray(a))
        return -1;
    cJSON_ArrayForEach(v, a) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= parts)
            return -1;
        *mask |= 1u << (int)v->valuedouble;
    }
    return 0;
}

/* parse_checkpoint restores the fields of the "checkpoint" object. */
static int parse_checkpoint(di_checkpoint *cp, const cJSON *prog, const cJSON *c, di_error *err) {
    str(c, "commit_id", cp->commit_id, sizeof cp->commit_id);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(c, "source");
    str(src, "etag", cp->etag, sizeof cp->etag);
    cp->size = num(src, "size", -1);
    di_reader_pos *p = &cp->pos;
    str(c, "table_key", p->table_key, sizeof p->table_key);
    p->row_number = num(c, "row_number", 0);
    char name[32];
    str(c, "format", name, sizeof name);
    if (di_format_parse(name[0] ? name : "auto", &p->format))
        return di_error_set(err, DI_ERR_INTERNAL, "checkpoint: unknown format \"%s\"", name);
    str(c, "compression", name, sizeof name);
    if (name[0] && di_compression_parse(name, &p->compression))
        return di_error_set(err, DI_ERR_INTERNAL, "checkpoint: unknown compression \"%s\"", name);
    str(c, "delimiter", name, sizeof name);
    p->delimiter = name[0];
    const cJSON *hr = cJSON_GetObjectItemCaseSensitive(c, "header_row");
    p->header = cJSON_IsBool(hr) ? cJSON_IsTrue(hr) : -1;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "member");
    if (cJSON_IsObject(m)) {
        p->member = num(m, "index", -1);
        str(m, "name", p->member_name, sizeof p->member_name);
        p->member_offset = num(m, "offset", 0);
    }
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(c, "profile");
    if (cJSON_IsObject(pj) && di_profile_from_json(&cp->profile, pj))
        return di_error_set(err, DI_ERR_INTERNAL, "checkpoint: unreadable profile");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "stage");
    if (cJSON_IsObject(st)) {
        cp->stage.parts = (int)num(st, "parts", 0);
        if (cp->stage.parts < 1 || cp->stage.parts > 16 ||
            parse_parts(st, "rows_merged", cp->stage.parts, &cp->stage.rows_merged) ||
            parse_parts(st, "manifest_merged", cp->stage.parts, &cp->stage.manifest_merged))
            return di_error_set(err, DI_ERR_INTERNAL, "checkpoint: impossible stage state");
    }
    const cJSON *rj = cJSON_GetObjectItemCaseSensitive(c, "rejects");
    if (cJSON_IsObject(rj) && parse_rejects(cp, rj))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    cp->rows = num(prog, "rows_processed", 0);
    cp->bytes_read = num(prog, "bytes_read", 0);
    cp->batches = num(prog, "batches", 0);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(c, "header");
    if (cJSON_IsArray(h) && parse_header(cp, h))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "finished");
    if (cJSON_IsArray(f) && parse_finished(cp, f))
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "decoder");
    if (cJSON_IsObject(d) && parse_decoder(cp, d, err))
        return -1;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "compression")))
        p->compression = p->has_point ? p->point.kind : DI_COMP_AUTO; /* before v0.2 */
    return 0;
}

int di_checkpoint_parse(di_checkpoint *cp, const char *run_parameters_json, di_error *err) {
    cJSON *rp = cJSON_Parse(run_parameters_json);
    if (!rp)
        return di_error_set(err, DI_ERR_INTERNAL, "job run_parameters are not valid JSON");
    const cJSON *prog = cJSON_GetObjectItemCaseSensitive(rp, "progress");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(prog, "checkpoint");
    int rc = cJSON_IsObject(c) ? parse_checkpoint(cp, prog, c, err) : 0;
    cJSON_Delete(rp);
    return rc;
}
