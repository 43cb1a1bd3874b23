/* jsonbody.h - private to src/http/: a request body as one JSON document.
 * The body must be valid UTF-8 without NUL bytes and hold exactly one JSON
 * value; otherwise the reason names the byte where it went wrong. */
#ifndef DI_HTTP_JSONBODY_H
#define DI_HTTP_JSONBODY_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* di_json_body parses len bytes of data; NULL with why filled on failure. The
 * caller cJSON_Delete()s the result. */
cJSON *di_json_body(const char *data, size_t len, char *why, size_t whysz);

#endif
