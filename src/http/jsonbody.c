/* jsonbody.c - request bodies parsed as JSON, with errors that say where:
 * cJSON accepts any bytes in strings, so UTF-8 is checked first. */
#include "http/jsonbody.h"
#include "dsa_ingest/parse.h"

#include <stdio.h>
#include <string.h>

/* di_json_body: UTF-8 and NUL checks first (cJSON takes any bytes), then one value. */
cJSON *di_json_body(const char *data, size_t len, char *why, size_t whysz) {
    if (len == 0 || !data) {
        snprintf(why, whysz, "empty body: expected a JSON object");
        return NULL;
    }
    size_t ok = di_utf8_valid((const unsigned char *)data, len);
    if (ok < len) {
        snprintf(why, whysz, "body is not valid UTF-8 (byte %zu)", ok);
        return NULL;
    }
    const void *nul = memchr(data, '\0', len);
    if (nul) {
        snprintf(why, whysz, "body holds a NUL byte (byte %zu)",
                 (size_t)((const char *)nul - data));
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    size_t at = end ? (size_t)(end - data) : 0;
    if (j) {
        while (at < len && strchr(" \t\r\n", data[at]))
            at++;
        if (at == len)
            return j;
        cJSON_Delete(j);
        snprintf(why, whysz, "malformed JSON: unexpected text after the value at byte %zu", at);
        return NULL;
    }
    size_t show = at < len ? (len - at < 24 ? len - at : 24) : 0;
    while (show > 0 && at + show < len && ((unsigned char)data[at + show] & 0xc0) == 0x80)
        show--; /* never cut a UTF-8 sequence in two */
    snprintf(why, whysz, "malformed JSON at byte %zu%s%.*s%s", at, show ? " near \"" : "",
             (int)show, at < len ? data + at : "", show ? "\"" : " (unexpected end)");
    return NULL;
}
