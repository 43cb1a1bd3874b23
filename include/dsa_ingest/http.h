/* http.h - the HTTP endpoints (libmicrohttpd). `worker --listen` serves the
 * health and metrics routes: /healthz (the process is up), /readyz (the
 * database answers and its schema is current), /metrics (Prometheus text). */
#ifndef DSA_INGEST_HTTP_H
#define DSA_INGEST_HTTP_H

#include "dsa_ingest/error.h"
#include "dsa_ingest/worker.h"

typedef struct di_health_server di_health_server;

/* di_health_start listens on "ADDR:PORT" (or ":PORT"); stats and conninfo are
 * borrowed for the server's life. */
di_health_server *di_health_start(const char *listen, const char *conninfo,
                                  const di_worker_stats *stats, di_error *err);
void di_health_stop(di_health_server *h); /* accepts NULL */

#endif
