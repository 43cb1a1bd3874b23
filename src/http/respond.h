/* respond.h - private to src/http/: what the health server (`worker
 * --listen`) and `serve` share: plain answers, the readiness check and the
 * listen address. */
#ifndef DI_HTTP_RESPOND_H
#define DI_HTTP_RESPOND_H

#include <microhttpd.h>
#include <netinet/in.h>

/* di_http_answer queues one response with a copy of body. */
enum MHD_Result di_http_answer(struct MHD_Connection *c, unsigned status, const char *type,
                               const char *body);

/* di_http_readyz answers /readyz: 200 when the database answers and its schema
 * is current, else 503 with the reason; *status (if given) gets the code. */
enum MHD_Result di_http_readyz(struct MHD_Connection *c, const char *conninfo, unsigned *status);

/* di_http_parse_listen reads "ADDR:PORT" or ":PORT" into an IPv4 address. */
int di_http_parse_listen(const char *listen, struct sockaddr_in *sa);

#endif
