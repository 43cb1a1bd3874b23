/* xlsx_xml.c - streams one part of a workbook through expat, a chunk at a time
 * (never the whole part in memory), with the guards untrusted XML needs: no
 * DTD (so no entity expansion at all), a nesting limit, and a bound on how
 * much expat may buffer for one token. A handler can suspend the parse (a
 * sheet row is ready) or stop it for good (an error). */
/* Debian's expat is built with DTD support, but its header declares the
 * billion-laughs setters only when XML_DTD is defined. */
#ifndef XML_DTD
#define XML_DTD 1
#endif
#include "xlsx_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define XML_CHUNK     ((size_t)1 << 16)
#define TOKEN_SLACK   ((size_t)1 << 20)
#define NO_DTD_REASON "XML entity declarations are not allowed (the part declares a DTD)"

/* local_name drops a namespace prefix: "x:row" -> "row". */
static const char *local_name(const char *name) {
    const char *c = strchr(name, ':');
    return c ? c + 1 : name;
}

/* xl_attr finds an attribute by its local name; expat lists name, value pairs. */
const char *xl_attr(const char **atts, const char *name) {
    for (size_t i = 0; atts[i]; i += 2)
        if (strcmp(local_name(atts[i]), name) == 0)
            return atts[i + 1];
    return NULL;
}

/* xl_xml_fail records the first error and aborts the parse (not resumable). */
void xl_xml_fail(xl_xml *x, di_class cls, const char *fmt, ...) {
    if (x->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    di_error_vset(&x->err, cls, fmt, ap);
    va_end(ap);
    x->failed = 1;
    XML_StopParser(x->xp, XML_FALSE);
}

/* xl_xml_suspend pauses after the current handler; xl_xml_step resumes. */
void xl_xml_suspend(xl_xml *x) {
    if (!x->failed)
        XML_StopParser(x->xp, XML_TRUE);
}

/* xl_xml_offset: where the event being handled starts in the part. */
int64_t xl_xml_offset(const xl_xml *x) {
    return (int64_t)XML_GetCurrentByteIndex(x->xp);
}

/* xl_xml_event_end: just past the event being handled. */
int64_t xl_xml_event_end(const xl_xml *x) {
    return (int64_t)XML_GetCurrentByteIndex(x->xp) + XML_GetCurrentByteCount(x->xp);
}

/* on_start counts depth (a nesting bomb stops here, not in our memory). */
static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
    xl_xml *x = ud;
    x->events++;
    if (x->failed)
        return;
    if (++x->depth > x->max_depth) {
        xl_xml_fail(x, DI_ERR_INPUT, "%s nests XML elements deeper than %zu levels", x->name,
                    x->max_depth);
        return;
    }
    if (x->h.start)
        x->h.start(x->user, local_name(name), atts);
}

/* on_end mirrors on_start. */
static void XMLCALL on_end(void *ud, const XML_Char *name) {
    xl_xml *x = ud;
    x->events++;
    if (x->failed)
        return;
    x->depth--;
    if (x->h.end)
        x->h.end(x->user, local_name(name));
}

/* on_text passes character data on, in whatever pieces expat delivers. */
static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
    xl_xml *x = ud;
    x->events++;
    if (!x->failed && x->h.text)
        x->h.text(x->user, s, (size_t)len);
}

/* on_other only notes progress: comments, PIs and CDATA marks are complete
 * tokens, so the stall counter must not blame them. */
static void XMLCALL on_comment(void *ud, const XML_Char *s) {
    (void)s;
    ((xl_xml *)ud)->events++;
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data) {
    (void)target, (void)data;
    ((xl_xml *)ud)->events++;
}

static void XMLCALL on_cdata(void *ud) {
    ((xl_xml *)ud)->events++;
}

/* on_doctype refuses any DTD: OOXML parts never have one, and without it no
 * entity can be declared, so nothing can expand (billion laughs, XXE). */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset) {
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    xl_xml_fail(ud, DI_ERR_INPUT, "%s: " NO_DTD_REASON, ((xl_xml *)ud)->name);
}

/* on_entity: never reached while DTDs are refused; kept as a second lock. */
static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation) {
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
    (void)pubid, (void)notation;
    xl_xml_fail(ud, DI_ERR_INPUT, "%s: " NO_DTD_REASON, ((xl_xml *)ud)->name);
}

/* setup_parser creates the expat parser with every handler and guard. */
static int setup_parser(xl_xml *x) {
    x->xp = XML_ParserCreate(NULL); /* the part declares its encoding (UTF-8 or UTF-16) */
    if (!x->xp)
        return -1;
    XML_SetUserData(x->xp, x);
    XML_SetElementHandler(x->xp, on_start, on_end);
    XML_SetCharacterDataHandler(x->xp, on_text);
    XML_SetCommentHandler(x->xp, on_comment);
    XML_SetProcessingInstructionHandler(x->xp, on_pi);
    XML_SetCdataSectionHandler(x->xp, on_cdata, on_cdata);
    XML_SetStartDoctypeDeclHandler(x->xp, on_doctype);
    XML_SetEntityDeclHandler(x->xp, on_entity);
    XML_SetParamEntityParsing(x->xp, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetBillionLaughsAttackProtectionMaximumAmplification(x->xp, 100.0f);
    return 0;
}

/* xl_xml_open: see xlsx_impl.h. The limits come from the workbook. */
int xl_xml_open(xl_xml *x, di_xlsx *wb, const char *name, const xl_handlers *h, void *user,
                di_error *err) {
    memset(x, 0, sizeof *x);
    x->wb = wb;
    x->name = name;
    x->h = *h;
    x->user = user;
    x->max_depth = wb->lim.max_xml_depth;
    x->max_token = wb->lim.max_cell + TOKEN_SLACK;
    di_error_clear(&x->err);
    int rc = wb->open(wb->ctx, name, &x->read, &x->part, err);
    if (rc <= 0)
        return rc;
    x->opened = 1;
    if (setup_parser(x) != 0) {
        xl_xml_close(x);
        return di_error_set(err, DI_ERR_INTERNAL, "out of memory");
    }
    return 1;
}

/* expat_failed turns expat's complaint into an input error with the place. */
static void expat_failed(xl_xml *x) {
    enum XML_Error code = XML_GetErrorCode(x->xp);
    di_error_set(&x->err, DI_ERR_INPUT, "malformed XML in %s at line %lu, column %lu: %s", x->name,
                 (unsigned long)XML_GetCurrentLineNumber(x->xp),
                 (unsigned long)XML_GetCurrentColumnNumber(x->xp) + 1, XML_ErrorString(code));
    x->failed = 1;
}

/* feed reads one chunk straight into expat's buffer and parses it. A part
 * that ends early reaches expat as a final empty chunk: "unclosed token". */
static enum XML_Status feed(xl_xml *x) {
    void *b = XML_GetBuffer(x->xp, (int)XML_CHUNK);
    if (!b) {
        di_error_set(&x->err, DI_ERR_INTERNAL, "out of memory");
        x->failed = 1;
        return XML_STATUS_ERROR;
    }
    size_t n = 0;
    if (x->read(x->part, b, XML_CHUNK, &n, &x->err) != 0) {
        x->failed = 1;
        return XML_STATUS_ERROR;
    }
    x->final = n == 0;
    enum XML_Status st = XML_ParseBuffer(x->xp, (int)n, x->final);
    /* Bytes that produced no event are held by expat as part of one token. */
    x->stall = x->events == x->events_seen ? x->stall + n : 0;
    x->events_seen = x->events;
    if (st != XML_STATUS_ERROR && x->stall > x->max_token)
        xl_xml_fail(x, DI_ERR_INPUT, "%s has an XML token longer than %zu bytes", x->name,
                    x->max_token);
    return x->failed ? XML_STATUS_ERROR : st;
}

/* xl_xml_step: see xlsx_impl.h. */
int xl_xml_step(xl_xml *x) {
    if (x->failed)
        return -1;
    if (x->finished)
        return 0;
    enum XML_Status st;
    if (x->suspended) {
        x->suspended = 0;
        st = XML_ResumeParser(x->xp);
    } else {
        st = feed(x);
    }
    if (st == XML_STATUS_SUSPENDED) {
        x->suspended = 1;
        return 1;
    }
    if (st == XML_STATUS_ERROR || x->failed) {
        if (!x->failed)
            expat_failed(x);
        return -1;
    }
    x->finished = x->final;
    return x->finished ? 0 : 1;
}

/* xl_xml_run parses to the end (the workbook-level parts never suspend). */
int xl_xml_run(xl_xml *x) {
    int rc;
    while ((rc = xl_xml_step(x)) == 1)
        ;
    return rc;
}

/* xl_xml_close frees the parser and gives the part back. */
void xl_xml_close(xl_xml *x) {
    if (x->xp)
        XML_ParserFree(x->xp);
    if (x->opened && x->wb->close)
        x->wb->close(x->wb->ctx, x->part);
    x->xp = NULL;
    x->opened = 0;
}
