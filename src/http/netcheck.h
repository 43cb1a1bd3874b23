/* netcheck.h - private to src/http/ and the job runner: is a source URL one
 * the service may queue, and may a worker connect to this address for it?
 *
 * A URL submitted through the API or by an S3 event must never turn a worker
 * into a proxy into the cluster. The policy allows schemes, S3 buckets and
 * hosts from settings, refuses file:// and plain paths always, and refuses a
 * host when any address it resolves to is loopback, link-local (instance
 * metadata), private, unspecified or multicast, unless the address is inside a
 * network the operator allowed (tests on 127.0.0.1 opt in that way). The
 * runner applies the address half again at connect time (di_netcheck_addr),
 * for jobs queued through the API or by events: redirects and a name that
 * resolves differently by then are judged on the address actually dialled.
 *
 * Lists are comma-separated text, borrowed for the policy's life. */
#ifndef DI_HTTP_NETCHECK_H
#define DI_HTTP_NETCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "dsa_ingest/error.h"

#define DI_NET_MAX_NETS 32

/* One allowed network: family AF_INET or AF_INET6, address bytes, prefix bits. */
typedef struct di_cidr {
    int family;
    uint8_t addr[16];
    int bits;
} di_cidr;

typedef struct di_netpolicy {
    const char *schemes;           /* e.g. "s3,https,http"; never file */
    const char *buckets;           /* NULL or "": any bucket; entries may end in '*' */
    const char *hosts;             /* NULL or "": any host with public addresses */
    di_cidr nets[DI_NET_MAX_NETS]; /* private addresses allowed anyway */
    int nnets;
} di_netpolicy;

/* di_netpolicy_init checks the lists and parses the allowed networks
 * ("127.0.0.1/32,10.0.0.0/8,::1/128"); a malformed entry is a config error
 * naming it. The strings are borrowed. */
DI_MUSTCHECK int di_netpolicy_init(di_netpolicy *p, const char *schemes, const char *buckets,
                                   const char *hosts, const char *nets, di_error *err);

/* di_url_split splits scheme://[user@]host[:port]/… into scheme (lower case),
 * host (lower case, IPv6 without brackets) and port ("" when absent). An
 * s3:// URL's host is its bucket. -1 when url has no scheme or host. */
int di_url_split(const char *url, char *scheme, size_t ssz, char *host, size_t hsz, char *port,
                 size_t psz);

/* di_list_has tells whether the comma-separated list holds item (case-blind;
 * an entry ending in '*' matches any item it is a prefix of). */
int di_list_has(const char *list, const char *item);

/* di_addr_refused says why an address may not be fetched ("loopback",
 * "link-local", "private", …) or returns NULL when it is public or allowed. */
const char *di_addr_refused(const di_netpolicy *p, const struct sockaddr *sa);

/* di_netcheck_addr judges one address for a job queued by `who` (e.g. "jobs
 * submitted through the API"): 0 when allowed, else -1 with why filled as
 * "refusing to connect to 169.254.169.254 (link-local): not allowed for …".
 * Its shape fits di_source_opts.check_addr once wrapped with the policy. */
int di_netcheck_addr(const di_netpolicy *p, const char *who, const struct sockaddr *sa, char *why,
                     size_t whysz);

/* di_netcheck_url applies the policy to url: scheme, bucket or host, and for
 * http(s) every address the host resolves to. A refusal is a config error
 * that names the URL's host and the reason, never the URL's secrets. */
DI_MUSTCHECK int di_netcheck_url(const di_netpolicy *p, const char *url, di_error *err);

#endif
