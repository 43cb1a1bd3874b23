/* netcheck.c - source URL checks before a job is queued: scheme, bucket and
 * host allow-lists, and the addresses a host resolves to (every one of them:
 * a name with one public and one private address is refused). */
#include "http/netcheck.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* lower_copy copies n bytes of in as lower case; -1 when out is too small. */
static int lower_copy(const char *in, size_t n, char *out, size_t outsz) {
    if (n >= outsz)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    return 0;
}

/* split_hostport splits an authority without userinfo into host and port. */
static int split_hostport(const char *a, size_t n, char *host, size_t hsz, char *port, size_t psz) {
    const char *end = a + n, *hend, *colon = NULL;
    if (n && a[0] == '[') {
        hend = memchr(a, ']', n);
        if (!hend)
            return -1;
        if (hend + 1 < end && hend[1] != ':')
            return -1;
        colon = hend + 1 < end ? hend + 1 : NULL;
        a++;
    } else {
        colon = memchr(a, ':', n);
        hend = colon ? colon : end;
    }
    if (hend == a || lower_copy(a, (size_t)(hend - a), host, hsz))
        return -1;
    const char *p = colon ? colon + 1 : end;
    if ((size_t)(end - p) >= psz || strspn(p, "0123456789") < (size_t)(end - p))
        return -1;
    memcpy(port, p, (size_t)(end - p));
    port[end - p] = '\0';
    return 0;
}

/* di_url_split parses just enough of a URL to judge where it points. */
int di_url_split(const char *url, char *scheme, size_t ssz, char *host, size_t hsz, char *port,
                 size_t psz) {
    const char *sep = strstr(url, "://");
    size_t slen = sep ? (size_t)(sep - url) : 0;
    if (!sep || slen == 0 ||
        strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789+.-") != slen)
        return -1;
    if (lower_copy(url, slen, scheme, ssz))
        return -1;
    const char *a = sep + 3;
    size_t n = strcspn(a, "/?#");
    /* userinfo ends at the authority's last '@' */
    for (size_t i = n; i > 0; i--)
        if (a[i - 1] == '@') {
            a += i;
            n -= i;
            break;
        }
    if (strcmp(scheme, "s3") == 0) { /* the bucket, taken as written */
        if (n == 0 || n >= hsz)
            return -1;
        memcpy(host, a, n);
        host[n] = '\0';
        port[0] = '\0';
        return 0;
    }
    return split_hostport(a, n, host, hsz, port, psz);
}

/* entry_matches compares one list entry with item (case-blind, '*' suffix). */
static int entry_matches(const char *e, size_t n, const char *item) {
    while (n && isspace((unsigned char)*e))
        e++, n--;
    while (n && isspace((unsigned char)e[n - 1]))
        n--;
    if (n == 0)
        return 0;
    if (e[n - 1] == '*')
        return strncasecmp(e, item, n - 1) == 0;
    return strlen(item) == n && strncasecmp(e, item, n) == 0;
}

/* di_list_has walks the comma-separated list without copying it. */
int di_list_has(const char *list, const char *item) {
    while (list && *list) {
        size_t n = strcspn(list, ",");
        if (entry_matches(list, n, item))
            return 1;
        list += n + (list[n] == ',');
    }
    return 0;
}

/* parse_cidr reads "ADDR/BITS" (or a bare address: all bits). */
static int parse_cidr(const char *e, size_t n, di_cidr *c) {
    char text[64];
    if (n == 0 || n >= sizeof text)
        return -1;
    memcpy(text, e, n);
    text[n] = '\0';
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    c->family = strchr(text, ':') ? AF_INET6 : AF_INET;
    int max = c->family == AF_INET6 ? 128 : 32;
    memset(c->addr, 0, sizeof c->addr);
    if (inet_pton(c->family, text, c->addr) != 1)
        return -1;
    c->bits = max;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || b < 0 || b > max)
            return -1;
        c->bits = (int)b;
    }
    return 0;
}

/* di_netpolicy_init refuses file:// in the schemes and parses the networks once. */
int di_netpolicy_init(di_netpolicy *p, const char *schemes, const char *buckets, const char *hosts,
                      const char *nets, di_error *err) {
    memset(p, 0, sizeof *p);
    p->schemes = schemes && *schemes ? schemes : "s3,https,http";
    p->buckets = buckets;
    p->hosts = hosts;
    if (di_list_has(p->schemes, "file"))
        return di_error_set(err, DI_ERR_CONFIG,
                            "DSA_INGEST_ALLOWED_SCHEMES: file is never allowed from the API");
    for (const char *s = nets; s && *s;) {
        size_t n = strcspn(s, ",");
        while (n && isspace((unsigned char)*s))
            s++, n--;
        size_t len = n;
        while (len && isspace((unsigned char)s[len - 1]))
            len--;
        if (len && (p->nnets == DI_NET_MAX_NETS || parse_cidr(s, len, &p->nets[p->nnets++])))
            return di_error_set(err, DI_ERR_CONFIG,
                                "DSA_INGEST_ALLOWED_NETWORKS: bad or too many entries at \"%.*s\" "
                                "(want ADDR/BITS, at most %d)",
                                (int)len, s, DI_NET_MAX_NETS);
        s += n + (s[n] == ',');
    }
    return 0;
}

/* in_cidr tells whether the address bytes a (of family) lie inside c. */
static int in_cidr(const di_cidr *c, int family, const uint8_t *a) {
    if (c->family != family)
        return 0;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

/* v4_class names what is special about an IPv4 address (NULL: public). */
static const char *v4_class(const uint8_t *a) {
    uint32_t v = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
    static const struct {
        uint32_t net, mask;
        const char *name;
    } ranges[] = {
        {0x00000000, 0xff000000, "unspecified"}, {0x7f000000, 0xff000000, "loopback"},
        {0x0a000000, 0xff000000, "private"},     {0xac100000, 0xfff00000, "private"},
        {0xc0a80000, 0xffff0000, "private"},     {0x64400000, 0xffc00000, "private (CGNAT)"},
        {0xa9fe0000, 0xffff0000, "link-local"},  {0xc0000000, 0xffffff00, "reserved"},
        {0xc6120000, 0xfffe0000, "reserved"},    {0xe0000000, 0xf0000000, "multicast"},
        {0xf0000000, 0xf0000000, "reserved"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if ((v & ranges[i].mask) == ranges[i].net)
            return ranges[i].name;
    return NULL;
}

/* v6_class names what is special about an IPv6 address (NULL: public);
 * mapped and NAT64 addresses are judged by the IPv4 address inside. */
static const char *v6_class(const uint8_t *a) {
    static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
                                   nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(a, zero, 15) == 0 && a[15] <= 1)
        return a[15] ? "loopback" : "unspecified";
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return v4_class(a + 12);
    if (memcmp(a, zero, 12) == 0)
        return "reserved";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return "link-local";
    if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0))
        return "private";
    if (a[0] == 0xff)
        return "multicast";
    return NULL;
}

/* di_addr_refused classifies an address, then lets allowed networks through. */
const char *di_addr_refused(const di_netpolicy *p, const struct sockaddr *sa) {
    const uint8_t *a;
    const char *why;
    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        why = v4_class(a);
    } else if (sa->sa_family == AF_INET6) {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        why = v6_class(a);
    } else {
        return "not an IP address";
    }
    for (int i = 0; why && i < p->nnets; i++)
        if (in_cidr(&p->nets[i], sa->sa_family, a))
            return NULL;
    return why;
}

/* addr_text writes an address's numeric form ("?" when it is not IP). */
static void addr_text(const struct sockaddr *sa, char *out, size_t outsz) {
    const void *raw = sa->sa_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
        !inet_ntop(sa->sa_family, raw, out, (socklen_t)outsz))
        snprintf(out, outsz, "?");
}

/* di_netcheck_addr words a refusal the way the API's check does. */
int di_netcheck_addr(const di_netpolicy *p, const char *who, const struct sockaddr *sa, char *why,
                     size_t whysz) {
    const char *cls = di_addr_refused(p, sa);
    if (!cls)
        return 0;
    char ip[INET6_ADDRSTRLEN];
    addr_text(sa, ip, sizeof ip);
    snprintf(why, whysz,
             "refusing to connect to %s (%s): not allowed for %s (allow the network with "
             "DSA_INGEST_ALLOWED_NETWORKS)",
             ip, cls, who);
    return -1;
}

/* check_addresses resolves host and refuses it when any address is refused. */
static int check_addresses(const di_netpolicy *p, const char *host, di_error *err) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0)
        return di_error_set(err, rc == EAI_AGAIN ? DI_ERR_TRANSIENT : DI_ERR_CONFIG,
                            "source host %s: cannot resolve: %s", host, gai_strerror(rc));
    int refused = 0;
    for (const struct addrinfo *ai = res; ai && !refused; ai = ai->ai_next) {
        const char *why = di_addr_refused(p, ai->ai_addr);
        if (!why)
            continue;
        char ip[INET6_ADDRSTRLEN];
        addr_text(ai->ai_addr, ip, sizeof ip);
        refused = di_error_set(err, DI_ERR_CONFIG,
                               "source host %s resolves to %s, a %s address: refused (allow it "
                               "with DSA_INGEST_ALLOWED_NETWORKS)",
                               host, ip, why);
    }
    freeaddrinfo(res);
    return refused;
}

/* di_netcheck_url: scheme, then bucket (s3) or host and every address (http). */
int di_netcheck_url(const di_netpolicy *p, const char *url, di_error *err) {
    char scheme[16], host[256], port[8];
    if (strncasecmp(url, "file:", 5) == 0)
        return di_error_set(err, DI_ERR_CONFIG,
                            "source scheme file:// is not allowed from the API");
    if (di_url_split(url, scheme, sizeof scheme, host, sizeof host, port, sizeof port) != 0)
        return di_error_set(err, DI_ERR_CONFIG,
                            "source must be a URL such as s3://bucket/key or https://host/path "
                            "(local paths and file:// are refused)");
    if (strcmp(scheme, "file") == 0 || !di_list_has(p->schemes, scheme))
        return di_error_set(err, DI_ERR_CONFIG, "source scheme %s:// is not allowed (allowed: %s)",
                            scheme, p->schemes);
    if (strcmp(scheme, "s3") == 0) {
        if (p->buckets && *p->buckets && !di_list_has(p->buckets, host))
            return di_error_set(err, DI_ERR_CONFIG, "bucket %s is not allowed", host);
        return 0; /* the S3 endpoint is the operator's setting, not the caller's */
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        return di_error_set(err, DI_ERR_CONFIG, "source scheme %s:// is not supported", scheme);
    if (p->hosts && *p->hosts && !di_list_has(p->hosts, host))
        return di_error_set(err, DI_ERR_CONFIG, "source host %s is not allowed", host);
    return check_addresses(p, host, err);
}
