/* test_source.c - the source stage: URL redaction, scheme dispatch, the file
 * source from any offset, and the HTTP source against a small Range-capable
 * Python server with canned faults (drops, a stall, a changed ETag, 404/403/503).
 * The HTTP cases are skipped, not failed, when /usr/bin/python3 is missing. */
#include "dsa_ingest/source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define OBJ_SIZE 3000000 /* > the 512 KiB receive buffer: pauses happen */

static char tmpdir[256];
static unsigned char *obj; /* the expected bytes of every test object */

/* ---- helpers ---- */

/* make_object fills a pattern that a shifted read cannot match by accident. */
static void make_object(void) {
    obj = malloc(OBJ_SIZE);
    for (size_t i = 0; i < OBJ_SIZE; i++)
        obj[i] = (unsigned char)((i * 7 + i / 251) & 0xff);
}

/* write_file puts n bytes of the object at dir/name. */
static void write_file(const char *name, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    fwrite(obj, 1, n, f);
    fclose(f);
}

/* small_opts keeps retries short so fault cases finish in seconds. */
static di_source_opts small_opts(void) {
    di_source_opts o;
    di_source_opts_default(&o);
    o.chunk_size = 64 * 1024;
    o.max_retries = 2;
    o.retry_max_s = 5;
    o.backoff_base_s = 0.01;
    o.stall_s = 1;
    o.connect_timeout_s = 2;
    return o;
}

/* read_from opens url at offset and reads to the end in odd-sized pieces;
 * returns bytes read, or -1 with err set (at open or at read). */
static long long read_from(const char *url, int64_t off, const di_source_opts *o, char *out,
                           size_t outsz, di_source_stats *st, int64_t *size, di_error *err) {
    di_error_clear(err);
    di_source *s = di_source_open(url, off, o, err);
    if (!s)
        return -1;
    long long total = 0;
    size_t n = 1;
    while (n > 0) {
        size_t want = outsz - (size_t)total < 77777 ? outsz - (size_t)total : 77777;
        if (want == 0 || di_source_read(s, out + total, want, &n, err) != 0) {
            total = want == 0 ? total : -1;
            break;
        }
        total += (long long)n;
    }
    CHECK_INT(di_source_offset(s), total < 0 ? di_source_offset(s) : off + total);
    *size = di_source_size(s);
    di_source_get_stats(s, st);
    di_source_close(s);
    return total;
}

/* ---- URL redaction ---- */

static const struct {
    const char *url, *want;
} redact_cases[] = {
    {"https://host/a/b.csv", "https://host/a/b.csv"},
    {"https://user:pa%40ss@host:8443/k?X-Amz-Signature=abc#f", "https://host:8443/k"},
    {"http://user@host/k", "http://host/k"},
    {"http://u:p@ss@host/k", "http://host/k"},
    {"https://host/k?sig=1", "https://host/k"},
    {"https://host/k#frag", "https://host/k"},
    {"s3://bucket/dir/key.csv.gz", "s3://bucket/dir/key.csv.gz"},
    {"file:///tmp/a%20b.csv", "file:///tmp/a%20b.csv"},
    {"/data/what?.csv", "/data/what?.csv"},
    {"relative/p:q@r.csv", "relative/p:q@r.csv"},
    {"https://host?x=1", "https://host"},
};

/* test_redact: no secret part of a URL survives, and plain paths are untouched. */
static void test_redact(void) {
    char out[256];
    for (size_t i = 0; i < sizeof redact_cases / sizeof redact_cases[0]; i++) {
        di_url_redact(redact_cases[i].url, out, sizeof out);
        CHECK_STR(out, redact_cases[i].want);
    }
    char tiny[8];
    di_url_redact("https://host/long/path", tiny, sizeof tiny);
    CHECK_STR(tiny, "https:/");
}

/* ---- file source and dispatch ---- */

static const struct {
    const char *name;
    int64_t offset;
    di_class want;
} file_cases[] = {
    {"start", 0, DI_ERR_NONE},
    {"middle", 1234567, DI_ERR_NONE},
    {"last byte", OBJ_SIZE - 1, DI_ERR_NONE},
    {"end", OBJ_SIZE, DI_ERR_NONE},
    {"past end", OBJ_SIZE + 1, DI_ERR_CONFIG},
};

/* test_file_offsets reads the rest of the object from each offset, by path
 * and by file:// URL with a percent-encoded space. */
static void test_file_offsets(char *out) {
    char path[512], url[600];
    snprintf(path, sizeof path, "%s/a b.csv", tmpdir);
    snprintf(url, sizeof url, "file://%s/a%%20b.csv", tmpdir);
    di_source_opts o = small_opts();
    for (size_t i = 0; i < sizeof file_cases / sizeof file_cases[0]; i++) {
        for (int byurl = 0; byurl < 2; byurl++) {
            di_error err;
            di_source_stats st;
            int64_t size = -2, off = file_cases[i].offset;
            long long n =
                read_from(byurl ? url : path, off, &o, out, OBJ_SIZE + 1, &st, &size, &err);
            CHECK_INT(err.cls, file_cases[i].want);
            if (file_cases[i].want != DI_ERR_NONE)
                continue;
            CHECK_INT(n, OBJ_SIZE - off);
            CHECK_INT(size, OBJ_SIZE);
            CHECK_INT(st.bytes_fetched, OBJ_SIZE - off);
            CHECK(memcmp(out, obj + off, (size_t)(OBJ_SIZE - off)) == 0);
        }
    }
}

/* test_file_errors: the config errors a user can fix, named precisely. */
static void test_file_errors(void) {
    char path[512], want[600];
    di_error err;
    di_source_opts o = small_opts();
    snprintf(path, sizeof path, "%s/nope.csv", tmpdir);
    snprintf(want, sizeof want, "no such file: %s", path);
    CHECK(di_source_open(path, 0, &o, &err) == NULL);
    CHECK_INT(err.cls, DI_ERR_CONFIG);
    CHECK_STR(err.message, want);
    CHECK(di_source_open(tmpdir, 0, &o, &err) == NULL);
    CHECK_INT(err.cls, DI_ERR_CONFIG);
    CHECK(strstr(err.message, "directory") != NULL);
    snprintf(path, sizeof path, "%s/a b.csv", tmpdir);
    CHECK(di_source_open(path, -1, &o, &err) == NULL);
    CHECK_INT(err.cls, DI_ERR_CONFIG);
}

/* test_file_etag: the mtime-size tag pins a file across a resume. */
static void test_file_etag(void) {
    char path[512];
    di_error err;
    di_source_opts o = small_opts();
    snprintf(path, sizeof path, "%s/a b.csv", tmpdir);
    di_source *s = di_source_open(path, 0, &o, &err);
    CHECK(s != NULL);
    if (!s)
        return;
    char tag[256];
    snprintf(tag, sizeof tag, "%s", di_source_etag(s));
    CHECK(strlen(tag) > 0);
    CHECK_STR(di_source_display(s), path);
    di_source_close(s);
    o.etag = tag;
    s = di_source_open(path, 10, &o, &err);
    CHECK(s != NULL);
    di_source_close(s);
    o.etag = "\"not-it\"";
    CHECK(di_source_open(path, 10, &o, &err) == NULL);
    CHECK_INT(err.cls, DI_ERR_INPUT);
    CHECK(strstr(err.message, "changed") != NULL);
}

static const struct {
    const char *url;
    const char *want_msg; /* a substring */
} bad_urls[] = {
    {"gs://bucket/key", "unsupported source scheme \"gs\""},
    {"ftp://host/x", "unsupported source scheme \"ftp\""},
    {"file://otherhost/tmp/x", "bad file URL"},
    {"file:///tmp/%zz", "bad file URL"},
    {"file:///tmp/a%00b", "bad file URL"},
    {"file:///no/such/dir/x.csv", "no such file: /no/such/dir/x.csv"},
};

/* test_dispatch: unknown schemes and malformed file URLs are config errors. */
static void test_dispatch(void) {
    di_source_opts o = small_opts();
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        di_error err;
        di_error_clear(&err);
        CHECK(di_source_open(bad_urls[i].url, 0, &o, &err) == NULL);
        CHECK_INT(err.cls, DI_ERR_CONFIG);
        if (!strstr(err.message, bad_urls[i].want_msg))
            fprintf(stderr, "  %s: got \"%s\"\n", bad_urls[i].url, err.message);
        CHECK(strstr(err.message, bad_urls[i].want_msg) != NULL);
    }
}

/* ---- HTTP against a local Python server ---- */

/* The server serves ROOT/NAME at /MODE/NAME. Modes: ok (Range, ETag "v1",
 * If-Match), norange (200 only, no ETag: like python -m http.server), drop
 * (closes after 700000 body bytes), stall (the first request gets headers and
 * then silence), changed (ranged requests see ETag "v2": 412), changed2 (same,
 * but If-Match ignored), busy (503), forbidden (403), redirect/HOST/REST (302 to
 * http://HOST:same port/REST). */
static const char server_py[] =
    "import http.server, os, sys, time\n"
    "ROOT = sys.argv[1]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    stalled = False\n"
    "    def log_message(self, *a): pass\n"
    "    def do_GET(self):\n"
    "        try: self.serve()\n"
    "        except (BrokenPipeError, ConnectionResetError): pass\n"
    "    def serve(self):\n"
    "        _, mode, name = self.path.split('?')[0].split('/', 2)\n"
    "        if mode == 'busy': return self.send_error(503)\n"
    "        if mode == 'redirect':\n"
    "            host, rest = name.split('/', 1)\n"
    "            self.send_response(302)\n"
    "            self.send_header('Location', 'http://%s:%d/%s' % (host, "
    "self.server.server_address[1], rest))\n"
    "            self.send_header('Content-Length', '0'); self.end_headers(); return\n"
    "        if mode == 'forbidden': return self.send_error(403)\n"
    "        path = os.path.join(ROOT, name)\n"
    "        if not os.path.isfile(path): return self.send_error(404)\n"
    "        data = open(path, 'rb').read()\n"
    "        rng, im = self.headers.get('Range'), self.headers.get('If-Match')\n"
    "        etag = '\"v2\"' if mode.startswith('changed') and rng else '\"v1\"'\n"
    "        if im and im != etag and mode != 'changed2':\n"
    "            self.send_response(412); self.send_header('ETag', etag)\n"
    "            self.send_header('Content-Length', '0'); self.end_headers(); return\n"
    "        start = 0\n"
    "        if rng and mode != 'norange':\n"
    "            start = int(rng[len('bytes='):-1])\n"
    "            if start >= len(data):\n"
    "                self.send_response(416)\n"
    "                self.send_header('Content-Range', 'bytes */%d' % len(data))\n"
    "                self.send_header('Content-Length', '0'); self.end_headers(); return\n"
    "            self.send_response(206)\n"
    "            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(data) - 1, "
    "len(data)))\n"
    "        else:\n"
    "            self.send_response(200)\n"
    "        body = data[start:]\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        if mode != 'norange': self.send_header('ETag', etag)\n"
    "        self.end_headers()\n"
    "        if mode == 'stall' and not H.stalled:\n"
    "            H.stalled = True; self.wfile.flush(); time.sleep(5); return\n"
    "        if mode.startswith('drop') or mode.startswith('changed'):\n"
    "            self.close_connection = True; body = body[:700000]\n"
    "        self.wfile.write(body)\n"
    "class S(http.server.ThreadingHTTPServer):\n"
    "    daemon_threads = True\n"
    "    def handle_error(self, *a): pass\n"
    "s = S(('127.0.0.1', 0), H)\n"
    "open(sys.argv[2] + '.tmp', 'w').write(str(s.server_address[1]))\n"
    "os.rename(sys.argv[2] + '.tmp', sys.argv[2])\n"
    "s.serve_forever()\n";

/* start_server writes and runs the server; returns its port, 0 to skip. */
static int start_server(pid_t *pid) {
    char script[512], portfile[512];
    if (access("/usr/bin/python3", X_OK) != 0)
        return 0;
    snprintf(script, sizeof script, "%s/server.py", tmpdir);
    snprintf(portfile, sizeof portfile, "%s/port", tmpdir);
    FILE *f = fopen(script, "w");
    fputs(server_py, f);
    fclose(f);
    *pid = fork();
    if (*pid == 0) {
        execl("/usr/bin/python3", "python3", script, tmpdir, portfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *p = fopen(portfile, "r");
        int port = 0;
        if (p && fscanf(p, "%d", &port) == 1 && port > 0) {
            fclose(p);
            return port;
        }
        if (p)
            fclose(p);
        usleep(50 * 1000);
    }
    return 0;
}

static const struct {
    const char *name, *path;
    int64_t offset;
    const char *etag; /* opts.etag: the pin of a resumed job */
    di_class want;
    const char *want_msg; /* a substring of the error, or NULL */
    int min_requests;
} http_cases[] = {
    {"full read", "/ok/obj", 0, NULL, DI_ERR_NONE, NULL, 1},
    {"resume from offset", "/ok/obj", 1234567, NULL, DI_ERR_NONE, NULL, 1},
    {"resume at the end (416)", "/ok/obj", OBJ_SIZE, NULL, DI_ERR_NONE, NULL, 1},
    {"past the end", "/ok/obj", OBJ_SIZE + 1, NULL, DI_ERR_CONFIG, "past the end", 1},
    {"server ignores Range", "/norange/obj", 1234567, NULL, DI_ERR_NONE, NULL, 1},
    {"server ignores Range, at end", "/norange/obj", OBJ_SIZE, NULL, DI_ERR_NONE, NULL, 1},
    {"dropped connections", "/drop/obj", 0, NULL, DI_ERR_NONE, NULL, 5},
    {"dropped, from offset", "/drop/obj", 99, NULL, DI_ERR_NONE, NULL, 5},
    {"stalled connection", "/stall/obj", 0, NULL, DI_ERR_NONE, NULL, 2},
    {"changed (412)", "/changed/obj", 0, NULL, DI_ERR_INPUT,
     "changed during the import (ETag was \"v1\", now \"v2\")", 2},
    {"changed, If-Match ignored", "/changed2/obj", 0, NULL, DI_ERR_INPUT,
     "changed during the import (ETag was \"v1\", now \"v2\")", 2},
    {"pinned ETag differs", "/ok/obj", 10, "\"v0\"", DI_ERR_INPUT, "ETag was \"v0\"", 1},
    {"pinned ETag matches", "/ok/obj", 10, "\"v1\"", DI_ERR_NONE, NULL, 1},
    {"not found", "/ok/nothere", 0, NULL, DI_ERR_CONFIG, "not found (HTTP 404): http://", 1},
    {"forbidden", "/forbidden/obj", 0, NULL, DI_ERR_CONFIG, "access denied (HTTP 403)", 1},
    {"always 503", "/busy/obj", 0, NULL, DI_ERR_TRANSIENT, "gave up after 3 attempts: HTTP 503", 3},
};

/* run_http_case checks one row of http_cases. */
static void run_http_case(int port, size_t i, char *out) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, http_cases[i].path);
    di_source_opts o = small_opts();
    o.etag = http_cases[i].etag;
    di_error err;
    di_source_stats st = {0, 0, 0};
    int64_t size = -2, off = http_cases[i].offset;
    long long n = read_from(url, off, &o, out, OBJ_SIZE + 1, &st, &size, &err);
    if (err.cls != http_cases[i].want)
        fprintf(stderr, "  case \"%s\": %s\n", http_cases[i].name, err.message);
    CHECK_INT(err.cls, http_cases[i].want);
    if (http_cases[i].want_msg)
        CHECK(strstr(err.message, http_cases[i].want_msg) != NULL);
    if (http_cases[i].want == DI_ERR_NONE) {
        if (st.requests < http_cases[i].min_requests || n != OBJ_SIZE - off)
            fprintf(stderr, "  case \"%s\": %d requests, %lld bytes\n", http_cases[i].name,
                    st.requests, n);
        CHECK_INT(n, OBJ_SIZE - off);
        CHECK_INT(size, OBJ_SIZE);
        CHECK(n >= 0 && memcmp(out, obj + off, (size_t)n) == 0);
        CHECK(st.requests >= http_cases[i].min_requests);
    }
}

/* test_http_secrets: neither the password nor a signed query reaches a message. */
static void test_http_secrets(int port) {
    char url[256];
    snprintf(url, sizeof url,
             "http://user:hunter2@127.0.0.1:%d/ok/nothere?X-Amz-Signature=deadbeef", port);
    di_source_opts o = small_opts();
    di_error err;
    CHECK(di_source_open(url, 0, &o, &err) == NULL);
    CHECK_INT(err.cls, DI_ERR_CONFIG);
    CHECK(strstr(err.message, "hunter2") == NULL);
    CHECK(strstr(err.message, "deadbeef") == NULL);
    CHECK(strstr(err.message, "user") == NULL);
}

/* test_http_dead_port: nobody listening is transient and ends after the retries. */
static void test_http_dead_port(void) {
    di_source_opts o = small_opts();
    di_error err;
    CHECK(di_source_open("http://127.0.0.1:1/x", 0, &o, &err) == NULL);
    CHECK_INT(err.cls, DI_ERR_TRANSIENT);
    CHECK(strstr(err.message, "gave up after 3 attempts") != NULL);
}

/* An address check that allows one IPv4 address and counts its calls. */
typedef struct only_addr {
    const char *allowed; /* dotted IPv4, or NULL: refuse everything */
    int calls;
} only_addr;

/* check_only is a di_addr_check_fn over only_addr. */
static int check_only(void *ctx, const struct sockaddr *sa, char *why, size_t whysz) {
    only_addr *c = ctx;
    char ip[INET6_ADDRSTRLEN] = "?";
    c->calls++;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
    if (c->allowed && strcmp(ip, c->allowed) == 0)
        return 0;
    snprintf(why, whysz, "refusing to connect to %s (test)", ip);
    return -1;
}

static const struct {
    const char *name, *path, *allowed;
    di_class want;
    const char *want_msg; /* printf format with the port, or NULL */
    int want_calls;       /* check_addr calls: one per connection, never retried */
} check_cases[] = {
    {"allowed, redirect to the same address", "/redirect/127.0.0.1/ok/obj", "127.0.0.1",
     DI_ERR_NONE, NULL, 1},
    {"refused at once, not retried", "/ok/obj", NULL, DI_ERR_CONFIG,
     "refusing to connect to 127.0.0.1 (test) (host 127.0.0.1:%d): http://127.0.0.1:%d/ok/obj", 1},
    {"redirect to a refused address", "/redirect/127.0.0.2/ok/obj", "127.0.0.1", DI_ERR_CONFIG,
     "refusing to connect to 127.0.0.2 (test) (host 127.0.0.2:%d): http://127.0.0.1:%d/redirect/",
     2},
};

/* test_http_check_addr: opts.check_addr sees every connection, redirect hops
 * included, and its refusal is a config error that is not retried. */
static void test_http_check_addr(int port, char *out) {
    for (size_t i = 0; i < sizeof check_cases / sizeof check_cases[0]; i++) {
        char url[256], want[512];
        only_addr ctx = {check_cases[i].allowed, 0};
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, check_cases[i].path);
        di_source_opts o = small_opts();
        o.check_addr = check_only;
        o.check_ctx = &ctx;
        di_error err;
        di_source_stats st = {0, 0, 0};
        int64_t size = -2;
        long long n = read_from(url, 0, &o, out, OBJ_SIZE + 1, &st, &size, &err);
        if (err.cls != check_cases[i].want || ctx.calls != check_cases[i].want_calls)
            fprintf(stderr, "  case \"%s\": %d calls, %s\n", check_cases[i].name, ctx.calls,
                    err.message);
        CHECK_INT(err.cls, check_cases[i].want);
        CHECK_INT(ctx.calls, check_cases[i].want_calls);
        if (check_cases[i].want_msg) {
            snprintf(want, sizeof want, check_cases[i].want_msg, port, port);
            CHECK(strstr(err.message, want) == err.message);
        } else {
            CHECK_INT(n, OBJ_SIZE);
        }
    }
}

/* test_http runs every HTTP case against one server, then stops it. */
static void test_http(char *out) {
    pid_t pid = -1;
    int port = start_server(&pid);
    if (!port) {
        printf("test_source: no /usr/bin/python3 server, HTTP cases skipped\n");
        if (pid > 0)
            kill(pid, SIGTERM);
        return;
    }
    for (size_t i = 0; i < sizeof http_cases / sizeof http_cases[0]; i++)
        run_http_case(port, i, out);
    test_http_secrets(port);
    test_http_check_addr(port, out);
    test_http_dead_port();
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* cleanup_tmp removes the files this test made, by name. */
static void cleanup_tmp(void) {
    const char *names[] = {"a b.csv", "obj", "server.py", "port"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_source.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    make_object();
    write_file("a b.csv", OBJ_SIZE);
    write_file("obj", OBJ_SIZE);
    char *out = malloc(OBJ_SIZE + 1);
    test_redact();
    test_dispatch();
    test_file_offsets(out);
    test_file_errors();
    test_file_etag();
    test_http(out);
    free(out);
    free(obj);
    cleanup_tmp();
    return check_report();
}
