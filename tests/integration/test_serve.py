"""`dsa-ingest serve` (issue 6): the import API, S3 event triggers and live progress, tested
with real processes — a `serve` and a `worker` against this test's PostgreSQL, the harness's
HTTP object server and (for S3 events) the local S3 server — and plain HTTP clients (Python's
http.client, curl for multipart) on 127.0.0.1 only.

What is proved: a JSON import is queued (202), run by the worker and its status shows the
completed job with exactly the source's rows; a multipart upload is spooled, imported and
its commit message kept; an upload over the limit is answered 413 — refused from its
Content-Length, or cut while streaming (chunked) — and nothing stays in the spool; tokens
(401 without or unknown, 403 without the scope, 200 with); malformed JSON, invalid UTF-8,
oversized bodies and headers, unknown routes and methods get their clean answers and the
server stays up; loopback, link-local and private sources, file:// and plain paths are
refused unless a network is allowed; the event stream shows progress then completion; each
of the four S3 event envelopes queues exactly one job even when delivered twice, an
unmatched one is counted and not queued; an SNS confirmation is fetched only from an allowed
host; /metrics parses as Prometheus text (strictly, and with promtool when installed).
"""
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import checks, gen, refreader
from harness.runner import timeout_factor
from harness.s3server import S3Server, availability

TOKEN = "test-token-all-0123456789abcdef"
READ_TOKEN = "test-token-read-0123456789abcdef"
EVENTS_TOKEN = "test-token-events-0123456789abcdef"
TOKENS = "%s,%s:read,%s:events" % (TOKEN, READ_TOKEN, EVENTS_TOKEN)
MAX_UPLOAD = 256 * 1024
MAX_BODY = 64 * 1024
BUCKET = "data"
S3_USER = ("AKIDSASERVE0000001", "serve-secret-key-0123456789")


# -- helpers --------------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(what, fn, timeout, interval=0.05, procs=()):
    deadline = time.monotonic() + timeout * timeout_factor()
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    logs = "\n".join("--- %s (exit %s)\n%s" % (" ".join(p.cmd[1:]), p.proc.poll(), p.stderr[-2500:])
                     for p in procs)
    pytest.fail("timed out after %ss waiting for %s\n%s" % (timeout, what, logs))


class Api:
    """Api talks HTTP/1.1 to one serve process."""

    def __init__(self, port, proc):
        self.port = port
        self.proc = proc
        self.base = "http://127.0.0.1:%d" % port

    def request(self, method, path, body=None, token=TOKEN, headers=None, timeout=30):
        """request returns (status, headers, body bytes)."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * timeout_factor())
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, token=TOKEN, **kw):
        status, headers, data = self.request(method, path, body, token, **kw)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            raise AssertionError("%s %s: %d, not JSON: %r" % (method, path, status, data[:500]))

    def status(self, job_id):
        return self.json("GET", "/jobs/%s/status" % job_id)

    def wait_job(self, job_id, want=("completed", "failed"), timeout=60, procs=()):
        def done():
            code, job = self.status(job_id)
            return job if code == 200 and job["status"] in want else None
        return wait_until("job %s to be %s" % (job_id, "/".join(want)), done, timeout,
                          interval=0.1, procs=procs or (self.proc,))

    def curl(self, *args, token=TOKEN):
        """curl runs curl against the server; returns (http status, body text)."""
        cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "60"]
        if token:
            cmd += ["-H", "Authorization: Bearer " + token]
        proc = subprocess.run(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=90 * timeout_factor())
        out = proc.stdout.decode(errors="replace")
        body, _, code = out.rpartition("\n")
        return int(code or 0), body, proc.stderr.decode(errors="replace")


@pytest.fixture
def spool(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    return str(d)


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([
        {"bucket": BUCKET, "prefix": "incoming/", "suffix": ".csv", "dataset": "events",
         "ref": "main", "mode": "snapshot"},
        {"bucket": BUCKET, "prefix": "staging/", "dataset": "staged", "ref": "staging"},
    ]))
    return str(path)


@pytest.fixture
def start_serve(migrated, spool, rules_file):
    """start_serve(**env) starts `serve` on a free port and waits for /healthz."""
    def start(extra_env=None, args=()):
        port = free_port()
        env = {"DSA_INGEST_API_TOKENS": TOKENS, "DSA_INGEST_SPOOL_DIR": spool,
               "DSA_INGEST_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
               "DSA_INGEST_MAX_BODY_BYTES": str(MAX_BODY),
               "DSA_INGEST_EVENT_RULES": rules_file,
               "DSA_INGEST_ALLOWED_NETWORKS": "127.0.0.1/32",
               "DSA_INGEST_SNS_ALLOWED_HOSTS": "", "DSA_INGEST_SPOOL_SWEEP_SECONDS": "1"}
        env.update(extra_env or {})
        proc = migrated.start("serve", "--listen", "127.0.0.1:%d" % port, *args, env=env)
        api = Api(port, proc)

        def healthy():
            try:
                return api.request("GET", "/healthz", token=None, timeout=2)[0] == 200
            except OSError:
                return False
        wait_until("serve /healthz", healthy, 20, procs=(proc,))
        return api
    return start


@pytest.fixture
def serve(start_serve):
    return start_serve()


@pytest.fixture
def worker(migrated):
    """worker(env, args) starts a worker; like serve it allows 127.0.0.1/32, since it checks
    every address it connects to for jobs from the API and events."""
    def start(extra_env=None, args=()):
        env = {"IMPORT_POLL_INTERVAL": "1", "IMPORT_BATCH_SIZE": "500",
               "DSA_INGEST_ALLOWED_NETWORKS": "127.0.0.1/32"}
        env.update(extra_env or {})
        return migrated.start("worker", "--concurrency", "2", *args, env=env)
    return start


def small_csv(n=1200, seed=7):
    return gen.csv_bytes(list(gen.people_rows(n, seed=seed)))


def assert_commit_exact(db, job, data):
    """assert_commit_exact: the job's commit is the ref's head and holds exactly data's rows."""
    summary = job["output_summary"]
    expected = refreader.read_records(data)
    assert summary["rows"] == len(expected), summary
    commit_id = summary["commit_id"].strip()
    checks.assert_matches_reference(db, commit_id, expected)
    return commit_id


def spool_files(spool):
    out = []
    for root, _dirs, files in os.walk(spool):
        out += [os.path.join(root, f) for f in files]
    return out


# -- 1. imports --------------------------------------------------------------------------

def test_json_import_runs_and_status_shows_it(serve, worker, db, store):
    data = small_csv()
    store.put("people.csv", data)
    code, body = serve.json("POST", "/datasets/people/refs/main/import",
                            {"source": store.url("people.csv"), "commit_message": "from the API"})
    assert code == 202, body
    assert body["status"] == "pending" and body["status_url"] == "/jobs/%s/status" % body["job_id"]
    job_id = body["job_id"]
    code, job = serve.status(job_id)
    assert code == 200 and job["id"] == job_id and job["status"] in ("pending", "running")
    assert job["run_parameters"]["source"] == store.url("people.csv")
    w = worker()
    job = serve.wait_job(job_id, procs=(serve.proc, w))
    assert job["status"] == "completed", job
    commit_id = assert_commit_exact(db, job, data)
    assert checks.ref_head(db, "people") == commit_id
    assert checks.commit(db, commit_id)["message"] == "from the API"
    # the dataset by numeric id, a ref that does not exist yet
    ds = checks.dataset_id(db, "people")
    code, body = serve.json("POST", "/datasets/%d/refs/dev/import" % ds,
                            {"source": store.url("people.csv"), "format": "csv"})
    assert code == 202, body
    job = serve.wait_job(body["job_id"], procs=(serve.proc, w))
    assert job["status"] == "completed" and checks.ref_head(db, "people", "dev")
    # an unknown numeric id is 404, and lists show jobs newest first
    code, body = serve.json("POST", "/datasets/99999/refs/main/import",
                            {"source": store.url("people.csv")})
    assert code == 404 and "no dataset with id 99999" in body["error"]
    code, jobs = serve.json("GET", "/jobs?limit=5")
    assert code == 200 and jobs[0]["id"] == job["id"]


def test_multipart_upload_is_spooled_and_imported(serve, worker, db, spool):
    data = small_csv(900, seed=11)
    path = os.path.join(spool, "..", "upload-src.csv")
    with open(path, "wb") as f:
        f.write(data)
    code, body, err = serve.curl("-F", "file=@%s;filename=../../evil/../sales 2024.csv" % path,
                                 "-F", "commit_message=uploaded by curl",
                                 serve.base + "/datasets/uploads/refs/main/import")
    assert code == 202, (body, err)
    job_id = json.loads(body)["job_id"]
    files = spool_files(spool)
    assert len(files) == 1 and files[0].endswith("/sales_2024.csv"), files
    assert os.path.realpath(files[0]).startswith(os.path.realpath(spool) + "/")
    with open(files[0], "rb") as f:
        assert f.read() == data
    w = worker()
    job = serve.wait_job(job_id, procs=(serve.proc, w))
    assert job["status"] == "completed", job
    assert job["run_parameters"]["source"] == files[0]
    assert job["run_parameters"]["filename"] == "sales_2024.csv"
    commit_id = assert_commit_exact(db, job, data)
    assert checks.commit(db, commit_id)["message"] == "uploaded by curl"
    # the job is done with it: the janitor removes the spooled file and its directory
    wait_until("the spool to be swept", lambda: os.listdir(spool) == [], 10, procs=(serve.proc,))


def test_upload_over_the_limit_is_413_and_nothing_is_kept(serve, spool, db, tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(small_csv(12000, seed=3))  # ~1.2 MB, over the 256 KiB limit
    assert big.stat().st_size > 4 * MAX_UPLOAD
    url = serve.base + "/datasets/big/refs/main/import"
    # with a Content-Length: refused from the headers
    code, body, err = serve.curl("-F", "file=@%s" % big, url)
    assert code == 413, (body, err)
    assert "over the limit" in json.loads(body)["error"]
    # chunked, so no length is known: cut while streaming, partial file removed
    code, body, err = serve.curl("-H", "Transfer-Encoding: chunked", "-F", "file=@%s" % big, url)
    assert code == 413, (body, err)
    assert "nothing was kept" in json.loads(body)["error"]
    assert spool_files(spool) == [] and os.listdir(spool) == []
    assert db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs") == 0
    # a file just under the limit still goes through
    ok = tmp_path / "ok.csv"
    ok.write_bytes(small_csv(1000, seed=4)[:MAX_UPLOAD - 1000].rsplit(b"\n", 1)[0] + b"\n")
    code, body, err = serve.curl("-H", "Transfer-Encoding: chunked", "-F", "file=@%s" % ok, url)
    assert code == 202, (body, err)
    text = serve.request("GET", "/metrics", token=None)[2].decode()
    assert 'dsa_ingest_uploads_total{outcome="too_large"} 2' in text
    assert 'dsa_ingest_uploads_total{outcome="accepted"} 1' in text


# -- 2. auth and bad requests -------------------------------------------------------------

def test_tokens_and_scopes(serve, store):
    store.put("a.csv", small_csv(10))
    body = {"source": store.url("a.csv")}
    path = "/datasets/auth/refs/main/import"
    code, headers, _ = serve.request("POST", path, json.dumps(body).encode(), token=None,
                                     headers={"Content-Type": "application/json"})
    assert code == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert serve.json("POST", path, body, token="wrong-token-0123456789abcdef")[0] == 401
    assert serve.json("POST", path, body, token=TOKEN[:-1])[0] == 401
    code, err = serve.json("POST", path, body, token=READ_TOKEN)
    assert code == 403 and "may not" in err["error"]
    assert serve.json("POST", "/events/s3", {"Records": []}, token=READ_TOKEN)[0] == 403
    assert serve.json("POST", path, body, token=EVENTS_TOKEN)[0] == 403
    code, queued = serve.json("POST", path, body, token=TOKEN)
    assert code == 202
    job = queued["job_id"]
    assert serve.json("GET", "/jobs/%s/status" % job, token=READ_TOKEN)[0] == 200
    assert serve.json("GET", "/jobs/%s/status" % job, token=None)[0] == 401
    assert serve.json("GET", "/jobs/%s/status?access_token=%s" % (job, READ_TOKEN), token=None)[0] == 200
    assert serve.json("GET", "/jobs/%s/status?access_token=nope-0123456789abcdef" % job,
                      token=None)[0] == 401
    # health, metrics and the page need no token; the token never reaches the log
    for route in ("/healthz", "/readyz", "/metrics", "/"):
        assert serve.request("GET", route, token=None)[0] == 200, route
    assert TOKEN not in serve.proc.stderr and READ_TOKEN not in serve.proc.stderr


def test_bad_requests_get_clean_answers_and_the_server_stays_up(serve, db):
    path = "/datasets/bad/refs/main/import"
    ct = {"Content-Type": "application/json"}
    code, _, data = serve.request("POST", path, b'{"source": "s3://data/x.csv",}', headers=ct)
    assert code == 400 and b"malformed JSON at byte 29" in data, data
    code, _, data = serve.request("POST", path, b'{"source": "s3://data/\xff.csv"}', headers=ct)
    assert code == 400 and b"not valid UTF-8 (byte 22)" in data, data
    code, err = serve.json("POST", path, {"commit_message": "no source"})
    assert code == 400 and "source" in err["error"]
    code, err = serve.json("POST", path, {"source": 7})
    assert code == 400 and "must be a string" in err["error"]
    code, err = serve.json("POST", path, {"source": "s3://data/x.csv", "mode": "merge"})
    assert code == 400 and "mode" in err["error"]
    code, err = serve.json("POST", path, {"source": "s3://data/x.csv", "delimiter": "§"})
    assert code == 400 and err["error"] == "delimiter must be one ASCII character", err
    code, _, data = serve.request("POST", path, b"source=x", headers={"Content-Type": "text/csv"})
    assert code == 415
    code, _, data = serve.request("POST", path, b"[" * (MAX_BODY + 10), headers=ct)
    assert code == 413, data
    code, err = serve.json("GET", "/nope")
    assert code == 404 and "no route" in err["error"]
    assert serve.json("GET", "/jobs/not-a-uuid/status")[0] == 404
    assert serve.json("GET", "/jobs/00000000-0000-0000-0000-000000000000/status")[0] == 404
    code, headers, _ = serve.request("DELETE", "/jobs")
    assert code == 405 and headers.get("Allow") == "GET"
    assert serve.json("GET", path)[0] == 405
    # huge headers: refused by the server, not a crash
    code, _, _ = serve.request("GET", "/healthz", token=None, headers={"X-Big": "a" * 100000})
    assert code in (413, 431), code
    assert db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs") == 0
    assert serve.proc.running()


def test_slow_clients_are_cut_and_do_not_block_others(start_serve, db):
    """Slow-loris: half a header, or a body dripped slower than the idle timeout, is cut; other
    clients are answered meanwhile; an open event stream is not cut for being quiet."""
    api = start_serve({"DSA_INGEST_IDLE_TIMEOUT_SECONDS": "2"})
    path = "/datasets/slow/refs/main/import"
    half_header = socket.create_connection(("127.0.0.1", api.port))
    half_header.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n")
    dripping = socket.create_connection(("127.0.0.1", api.port))
    dripping.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
                      % (path, TOKEN)).encode())
    assert api.request("GET", "/healthz", token=None)[0] == 200
    start = time.monotonic()
    for sock in (half_header, dripping):
        sock.settimeout(10 * timeout_factor())
        assert sock.recv(4096) == b"", "the server answered a request it never got whole"
        sock.close()
    assert time.monotonic() - start < 8 * timeout_factor()
    code, body = api.json("POST", "/datasets/slow/refs/main/import", {"source": "s3://data/x.csv"})
    assert code == 202
    stream = SseReader(api.port, "/jobs/%s/events" % body["job_id"])
    wait_until("the first event", lambda: stream.events, 10, procs=(api.proc,))
    time.sleep(4)  # twice the idle timeout with nothing to send
    assert not stream.ended.is_set(), "a quiet event stream was cut by the idle timeout"
    assert db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs") == 1
    assert api.proc.running()


def test_private_and_local_sources_are_refused_by_default(start_serve, db, store):
    api = start_serve({"DSA_INGEST_ALLOWED_NETWORKS": ""})
    store.put("p.csv", small_csv(10))
    path = "/datasets/ssrf/refs/main/import"
    refused = {
        store.url("p.csv"): "loopback",
        "http://localhost:1/x.csv": "loopback",
        "http://2130706433/x.csv": "loopback",
        "http://169.254.169.254/latest/meta-data/": "link-local",
        "http://10.1.2.3/x.csv": "private",
        "http://[::1]/x.csv": "loopback",
        "http://[::ffff:192.168.0.1]/x.csv": "private",
        "file:///etc/passwd": "file:// is not allowed",
        "/etc/passwd": "must be a URL",
        "gopher://1.1.1.1/": "not allowed",
    }
    for source, why in refused.items():
        code, err = api.json("POST", path, {"source": source})
        assert code == 400 and why in err["error"], (source, code, err)
    assert db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs") == 0
    # the allow-list opens exactly the network named (the default fixture allows 127.0.0.1/32)
    api2 = start_serve({"DSA_INGEST_ALLOWED_NETWORKS": "127.0.0.1/32",
                        "DSA_INGEST_ALLOWED_BUCKETS": "data"})
    assert api2.json("POST", path, {"source": store.url("p.csv")})[0] == 202
    assert api2.json("POST", path, {"source": "http://127.0.0.2/x.csv"})[0] == 400
    assert api2.json("POST", path, {"source": "s3://data/x.csv"})[0] == 202
    code, err = api2.json("POST", path, {"source": "s3://secrets/x.csv"})
    assert code == 400 and "bucket secrets is not allowed" in err["error"]


class _Redirector(http.server.BaseHTTPRequestHandler):
    """_Redirector answers every GET with a 302 to the server's `location`."""

    def do_GET(self):
        self.server.hits += 1
        self.send_response(302)
        self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class _Files(http.server.BaseHTTPRequestHandler):
    """_Files serves the server's `data` at any path and counts the requests."""

    def do_GET(self):
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.data)))
        self.end_headers()
        self.wfile.write(self.server.data)

    def log_message(self, *args):
        pass


def tiny_server(handler, host, **attrs):
    """tiny_server serves handler on host (any port) in a thread; attrs go on the server."""
    srv = http.server.ThreadingHTTPServer((host, 0), handler)
    srv.hits = 0
    for k, v in attrs.items():
        setattr(srv, k, v)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return srv


def test_worker_checks_every_address_it_connects_to(serve, worker, migrated, db, store):
    """SSRF at fetch time: serve accepts http://127.0.0.1:P/ (127.0.0.1/32 is allowed), but the
    answer redirects to 127.0.0.2 — loopback too, and NOT allowed. The worker refuses to connect
    there (never even dials it), fails the job at once with the reason, and keeps no rows; the
    same URL imported from the CLI (no origin) follows the redirect. A worker that allows less
    than serve did (a name resolving elsewhere by fetch time: DNS rebinding) refuses as well."""
    data = small_csv(40, seed=5)
    files = tiny_server(_Files, "127.0.0.2", data=data)
    redirect = tiny_server(_Redirector, "127.0.0.1",
                           location="http://127.0.0.2:%d/r.csv" % files.server_address[1])
    try:
        url = "http://127.0.0.1:%d/r.csv" % redirect.server_address[1]
        code, body = serve.json("POST", "/datasets/ssrf/refs/main/import", {"source": url})
        assert code == 202, body
        w = worker()
        job = serve.wait_job(body["job_id"], procs=(serve.proc, w))
        assert job["status"] == "failed", job
        assert job["run_parameters"]["origin"] == "api"
        assert ("refusing to connect to 127.0.0.2 (loopback): not allowed for jobs submitted "
                "through the API") in job["error_message"], job["error_message"]
        assert "(host 127.0.0.2:%d)" % files.server_address[1] in job["error_message"]
        assert job["attempts"] == 1, "a refused address was retried: %r" % job
        assert redirect.hits == 1 and files.hits == 0
        assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows") == 0
        w.signal(signal.SIGTERM)
        assert w.wait(timeout=30).code == 0
        # the CLI's jobs have no origin: the same redirect is followed
        res = migrated.run("import", url, "--dataset", "cli", timeout=60)
        assert res.code == 0, res.stderr[-2000:]
        assert files.hits == 1
        assert db.scalar("SELECT count(*) FROM dsa_core.commit_rows") == 40
        # a worker that allows nothing refuses even the address serve accepted
        store.put("direct.csv", data)
        code, body = serve.json("POST", "/datasets/ssrf/refs/main/import",
                                {"source": store.url("direct.csv")})
        assert code == 202, body
        strict = worker({"DSA_INGEST_ALLOWED_NETWORKS": ""})
        job = serve.wait_job(body["job_id"], procs=(serve.proc, strict))
        assert job["status"] == "failed", job
        assert "refusing to connect to 127.0.0.1 (loopback)" in job["error_message"], job
        assert store.requests("direct.csv") == []
    finally:
        redirect.shutdown()
        files.shutdown()


# -- 3. live progress ----------------------------------------------------------------------

class SseReader:
    """SseReader reads one event stream in a thread: (event, data) pairs as they come."""

    def __init__(self, port, path):
        self.events = []
        self.ended = threading.Event()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.request("GET", path, headers={"Authorization": "Bearer " + READ_TOKEN,
                                                "Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event, data = "message", []
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        self.events.append((event, json.loads("\n".join(data))))
                    event, data = "message", []
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
        except (OSError, ValueError):
            pass
        self.ended.set()


def test_event_stream_shows_progress_then_completion(serve, worker, db, store, proxy):
    data = gen.csv_bytes(list(gen.people_rows(30000, seed=21)))  # ~2.6 MB
    store.put("slow.csv", data)
    proxy.configure(throttle=len(data) / 3.0)  # about three seconds of download
    code, body = serve.json("POST", "/datasets/live/refs/main/import",
                            {"source": store.url("slow.csv", port=proxy.port)})
    assert code == 202
    job_id = body["job_id"]
    stream = SseReader(serve.port, "/jobs/%s/events" % job_id)
    assert stream.resp.status == 200
    assert stream.resp.getheader("Content-Type") == "text/event-stream"
    wait_until("the first event", lambda: stream.events, 10, procs=(serve.proc,))
    assert stream.events[0][0] == "progress" and stream.events[0][1]["status"] == "pending"
    w = worker({"IMPORT_BATCH_SIZE": "1000"})
    assert stream.ended.wait(90 * timeout_factor()), "the stream did not end: %r" % stream.events[-3:]
    names = [e for e, _ in stream.events]
    assert names[-1] == "completed", names
    rows = [d["run_parameters"].get("progress", {}).get("rows_processed", 0)
            for e, d in stream.events if e == "progress" and d["status"] == "running"]
    assert len(rows) >= 3, "expected several progress events, got %r" % names
    assert rows == sorted(rows) and rows[-1] > rows[0]
    final = stream.events[-1][1]
    assert final["status"] == "completed" and final["output_summary"]["rows"] == 30000
    assert_commit_exact(db, checks.job(db, job_id), data)
    text = serve.request("GET", "/metrics", token=None)[2].decode()
    assert "dsa_ingest_sse_clients 0" in text
    assert w.running()


def test_event_stream_of_unknown_job_is_404(serve):
    code, _, _ = serve.request("GET", "/jobs/00000000-0000-0000-0000-000000000001/events",
                               token=READ_TOKEN)
    assert code == 404


def test_page_lists_jobs_and_follows_them(serve):
    code, headers, page = serve.request("GET", "/", token=None)
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    text = page.decode()
    assert "EventSource" in text and "/jobs?limit=" in text and "textContent" in text
    assert "innerHTML = job" not in text  # data never written as HTML


# -- 4. S3 events ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3():
    reason = availability()
    if reason:
        pytest.skip("S3 event tests need the local S3 server: %s" % reason)
    server = S3Server(buckets=[BUCKET]).start()
    server.add_key(*S3_USER)
    try:
        yield server
    finally:
        server.stop()


def s3_env(s3):
    return {"AWS_ENDPOINT_URL": s3.endpoint, "AWS_ACCESS_KEY_ID": S3_USER[0],
            "AWS_SECRET_ACCESS_KEY": S3_USER[1], "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": None, "AWS_SESSION_TOKEN": None,
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}


def records_event(key, etag, version=None, name="ObjectCreated:Put", source="aws:s3"):
    obj = {"key": key, "size": 10, "eTag": etag, "sequencer": "00A1"}
    if version:
        obj["versionId"] = version
    return {"Records": [{"eventVersion": "2.1", "eventSource": source, "eventName": name,
                         "s3": {"bucket": {"name": BUCKET}, "object": obj}}]}


def eventbridge_event(key, etag):
    return {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": BUCKET},
                       "object": {"key": key, "size": 10, "etag": etag, "sequencer": "01"}}}


def minio_event(key, etag):
    body = records_event(key, etag, name="s3:ObjectCreated:Put", source="minio:s3")
    body.update({"EventName": "s3:ObjectCreated:Put", "Key": BUCKET + "/" + key})
    return body


def sns_envelope(message):
    return {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": json.dumps(message), "Timestamp": "2026-11-24T10:00:00Z"}


def test_s3_events_queue_one_job_each_even_when_redelivered(start_serve, worker, db, s3, store):
    api = start_serve()
    wport = free_port()
    w = worker(s3_env(s3), args=("--listen", "127.0.0.1:%d" % wport))
    shapes = {  # key as stored → (envelope, key as the event spells it)
        "incoming/plain one.csv": lambda k, e: records_event(k.replace(" ", "+"), e),
        "incoming/bridge+two.csv": lambda k, e: eventbridge_event(k.replace("+", "%2B"), e),
        "incoming/mini three.csv": lambda k, e: minio_event(k.replace(" ", "%20"), e),
        "incoming/sns four.csv": lambda k, e: sns_envelope(records_event(k.replace(" ", "+"), e)),
    }
    datas, jobs = {}, {}
    for i, (key, shape) in enumerate(shapes.items()):
        data = small_csv(300 + 10 * i, seed=40 + i)
        etag = s3.put_object(BUCKET, key, data).strip('"')
        datas[key] = data
        body = shape(key, etag)
        first = api.json("POST", "/events/s3", body, token=EVENTS_TOKEN)
        again = api.json("POST", "/events/s3", body, token=EVENTS_TOKEN)
        assert first[0] == 200 and first[1]["queued"] == 1, first
        assert again[0] == 200 and again[1]["duplicate"] == 1 and again[1]["queued"] == 0, again
        result = first[1]["results"][0]
        assert result["key"] == key and result["outcome"] == "queued", result
        assert again[1]["results"][0]["job_id"] == result["job_id"]
        jobs[key] = result["job_id"]
    assert db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs") == 4
    assert db.scalar("SELECT count(*) FROM dsa_ingest.s3_events") == 4
    # an unmatched object and a deletion: counted, not queued
    code, body = api.json("POST", "/events/s3", records_event("elsewhere/x.csv", "e0"),
                          token=EVENTS_TOKEN)
    assert code == 200 and body["unmatched"] == 1 and body["queued"] == 0
    code, body = api.json("POST", "/events/s3",
                          records_event("incoming/x.csv", "e1", name="ObjectRemoved:Delete"),
                          token=EVENTS_TOKEN)
    assert code == 200 and body["ignored"] == 1
    # a new version of an object is a new delivery: one more job
    code, body = api.json("POST", "/events/s3", records_event("incoming/plain+one.csv", "e2", "v2"),
                          token=EVENTS_TOKEN)
    assert body["queued"] == 1
    assert db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs") == 5
    for key, job_id in jobs.items():
        job = api.wait_job(job_id, timeout=90, procs=(api.proc, w))
        assert job["status"] == "completed", job
        assert job["run_parameters"]["source"] == "s3://%s/%s" % (BUCKET, key)
        assert_commit_exact(db, job, datas[key])
    text = api.request("GET", "/metrics", token=None)[2].decode()
    assert 'dsa_ingest_events_total{outcome="queued"} 5' in text
    assert 'dsa_ingest_events_total{outcome="duplicate"} 4' in text
    assert 'dsa_ingest_events_total{outcome="unmatched"} 1' in text
    assert 'dsa_ingest_events_total{outcome="ignored"} 1' in text
    # the worker counted its S3 GETs by status (the first GET of an object is a 200)
    code, _, data = Api(wport, w).request("GET", "/metrics", token=None)
    assert code == 200
    families = parse_exposition(data.decode())
    assert families["dsa_ingest_s3_requests_total"] == "counter"
    ok = re.search(r'^dsa_ingest_s3_requests_total\{code="200"\} (\d+)$', data.decode(), re.M)
    assert ok and int(ok.group(1)) >= 4, data.decode()


def test_sns_subscription_confirmed_only_for_allowed_hosts(start_serve, store, db):
    store.put("confirm", b"<ConfirmSubscriptionResponse/>")
    confirm_url = store.url("confirm") + "?Action=ConfirmSubscription&Token=t"
    envelope = {"Type": "SubscriptionConfirmation", "MessageId": "m",
                "TopicArn": "arn:aws:sns:us-east-1:1:t", "Token": "t",
                "SubscribeURL": confirm_url}
    refusing = start_serve()
    code, err = refusing.json("POST", "/events/s3", envelope, token=EVENTS_TOKEN)
    assert code == 400 and "not an SNS host" in err["error"]
    assert store.requests("confirm") == []
    allowing = start_serve({"DSA_INGEST_SNS_ALLOWED_HOSTS": "127.0.0.1"})
    code, body = allowing.json("POST", "/events/s3", envelope, token=EVENTS_TOKEN)
    assert code == 200 and body["confirmed"] is True, body
    # the test server logs a request after writing its response: the client can be faster
    deadline = time.monotonic() + 10
    while not store.requests("confirm", "GET") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(store.requests("confirm", "GET")) == 1
    # SNS sends text/plain and may authenticate with Basic (the token as password)
    import base64
    basic = base64.b64encode(("sns:" + EVENTS_TOKEN).encode()).decode()
    code, _, data = allowing.request("POST", "/events/s3", json.dumps(sns_envelope(
        records_event("elsewhere/y.csv", "e9"))).encode(), token=None,
        headers={"Authorization": "Basic " + basic, "Content-Type": "text/plain; charset=UTF-8",
                 "x-amz-sns-message-type": "Notification"})
    assert code == 200 and json.loads(data)["unmatched"] == 1


# -- 5. metrics ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                     r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? (\S+)$')


def parse_exposition(text):
    """parse_exposition checks the Prometheus text format strictly: every sample belongs to a
    family declared with HELP and TYPE before it, values are numbers, histograms are
    cumulative and end in +Inf equal to _count. Returns {family: type}."""
    assert text.endswith("\n")
    families, helps, samples = {}, set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helps, "HELP twice for %s" % name
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in families, "TYPE twice for %s" % name
            families[name] = kind
        else:
            m = _SAMPLE.match(line)
            assert m, "not a sample line: %r" % line
            name, value = m.group(1), m.group(5)
            float(value)
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            fam = name if name in families else base
            assert fam in families and fam in helps, "sample %s without HELP/TYPE" % name
            if families[fam] == "histogram":
                assert name != fam, "bare histogram sample %s" % name
            samples.setdefault(fam, []).append((name, m.group(3) or "", float(value)))
    for fam, kind in families.items():
        if kind != "histogram":
            continue
        buckets = [v for n, labels, v in samples[fam] if n.endswith("_bucket")]
        assert buckets == sorted(buckets), "%s buckets not cumulative" % fam
        inf = [v for n, labels, v in samples[fam] if 'le="+Inf"' in labels]
        count = [v for n, _, v in samples[fam] if n.endswith("_count")]
        assert inf and count and inf[0] == count[0], fam
    return families


def test_metrics_parse_and_name_everything(serve, worker, store):
    store.put("m.csv", small_csv(50))
    code, body = serve.json("POST", "/datasets/m/refs/main/import", {"source": store.url("m.csv")})
    w = worker()
    serve.wait_job(body["job_id"], procs=(serve.proc, w))
    serve.request("GET", "/nope")
    code, headers, data = serve.request("GET", "/metrics", token=None)
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = data.decode()
    families = parse_exposition(text)
    for name in ("dsa_ingest_http_requests_total", "dsa_ingest_events_total",
                 "dsa_ingest_uploads_total", "dsa_ingest_queue_jobs",
                 "dsa_ingest_imported_rows_total", "dsa_ingest_imported_bytes_total",
                 "dsa_ingest_job_retries_total", "dsa_ingest_job_duration_seconds",
                 "dsa_ingest_sse_clients", "dsa_ingest_database_up"):
        assert name in families, name
    assert families["dsa_ingest_job_duration_seconds"] == "histogram"
    assert 'dsa_ingest_queue_jobs{status="completed"} 1' in text
    assert "dsa_ingest_imported_rows_total 50" in text
    assert 'dsa_ingest_http_requests_total{route="import",code="202"} 1' in text
    assert 'dsa_ingest_http_requests_total{route="none",code="404"} 1' in text
    assert "dsa_ingest_database_up 1" in text
    promtool = shutil.which("promtool")
    if promtool:
        proc = subprocess.run([promtool, "check", "metrics"], input=data, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=30)
        assert proc.returncode == 0, proc.stdout.decode()


# -- 6. shutdown ----------------------------------------------------------------------------------

def test_sigterm_ends_open_streams_and_exits_cleanly(serve, store, tmp_path):
    """SIGTERM ends open event streams and in-flight requests; the process exits 0 (under ASan
    this is where leaks and errors are reported)."""
    store.put("t.csv", small_csv(20))
    code, body = serve.json("POST", "/datasets/t/refs/main/import", {"source": store.url("t.csv")})
    assert code == 202
    stream = SseReader(serve.port, "/jobs/%s/events" % body["job_id"])
    wait_until("the first event", lambda: stream.events, 10, procs=(serve.proc,))
    small = tmp_path / "s.csv"
    small.write_bytes(small_csv(30))
    assert serve.curl("-F", "file=@%s" % small, serve.base + "/datasets/t/refs/up/import")[0] == 202
    serve.request("POST", "/events/s3", b"{bad", token=EVENTS_TOKEN)
    serve.request("GET", "/metrics", token=None)
    serve.proc.signal(signal.SIGTERM)
    res = serve.proc.wait(timeout=30)
    assert res.code == 0, res
    assert stream.ended.wait(10), "the event stream stayed open after SIGTERM"
    assert "Sanitizer" not in res.stderr, res.stderr[-3000:]


def test_openapi_names_every_route(serve):
    """docs/openapi.yaml documents exactly the routes the server answers."""
    yaml = pytest.importorskip("yaml")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "docs", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    job = "00000000-0000-0000-0000-000000000000"
    routes = {"/": "get", "/healthz": "get", "/readyz": "get", "/metrics": "get", "/jobs": "get",
              "/jobs/{id}/status": "get", "/jobs/{id}/events": "get", "/events/s3": "post",
              "/datasets/{id}/refs/{ref}/import": "post"}
    assert {p: list(v) for p, v in spec["paths"].items()} == {p: [m] for p, m in routes.items()}
    for path, method in routes.items():
        concrete = path.replace("{id}/refs", "1/refs").replace("{ref}", "main").replace("{id}", job)
        code = serve.request(method.upper(), concrete, b"{}" if method == "post" else None,
                             headers={"Content-Type": "application/json"})[0]
        assert code != 405 and not (code == 404 and "job" not in path and "datasets" not in path), \
            (path, code)


# -- 7. SQS ------------------------------------------------------------------------------------

FAIL_EVENTS_SQL = """
CREATE TABLE public.fail_events (on_ boolean);
CREATE FUNCTION public.fail_events_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.fail_events) THEN
        RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fail_events_trg BEFORE INSERT ON dsa_ingest.s3_events
    FOR EACH ROW EXECUTE FUNCTION public.fail_events_fn();
INSERT INTO public.fail_events VALUES (true);
"""


def test_sqs_messages_queue_jobs_and_are_deleted_only_after_commit(migrated, db, s3, rules_file):
    from harness.sqsfake import SqsFake
    fake = SqsFake({S3_USER[0]: S3_USER[1]}).start()
    try:
        datas = {}
        for i, key in enumerate(["incoming/sqs one.csv", "incoming/sqs two.csv",
                                 "incoming/sqs three.csv"]):
            datas[key] = small_csv(200 + i, seed=60 + i)
            datas[key + "#etag"] = s3.put_object(BUCKET, key, datas[key]).strip('"')
        one = json.dumps(records_event("incoming/sqs+one.csv", datas["incoming/sqs one.csv#etag"]))
        two = json.dumps(sns_envelope(eventbridge_event("incoming/sqs%20two.csv",
                                                        datas["incoming/sqs two.csv#etag"])))
        fake.send(one)
        fake.send(one)  # delivered twice
        fake.send(two)
        fake.send("not json at all")
        fake.send(json.dumps(records_event("elsewhere/x.csv", "e0")))
        env = s3_env(s3)
        env.update({"DSA_INGEST_SQS_WAIT_SECONDS": "1", "IMPORT_POLL_INTERVAL": "1",
                    "DSA_INGEST_ALLOWED_NETWORKS": "127.0.0.1/32"})
        w = migrated.start("worker", "--concurrency", "1", "--sqs-queue-url", fake.queue_url,
                           "--event-rules", rules_file, env=env)
        wait_until("every message deleted", lambda: fake.pending() == [], 30, procs=(w,))
        assert len(fake.deleted) == 5
        assert ("ReceiveMessage", 403) not in fake.log, "a request failed the SigV4 check"
        rows = db.query("SELECT id::text AS id, run_parameters->>'source' AS source"
                        " FROM dsa_jobs.analysis_runs ORDER BY created_at")
        assert [r["source"] for r in rows] == ["s3://data/incoming/sqs one.csv",
                                                "s3://data/incoming/sqs two.csv"]
        # a database failure keeps the message: it comes back and is deleted once it commits
        db.query(FAIL_EVENTS_SQL)
        mid = fake.send(json.dumps(records_event("incoming/sqs+three.csv",
                                                 datas["incoming/sqs three.csv#etag"])))
        wait_until("the message to be received twice",
                   lambda: any(m["id"] == mid and m["receives"] >= 2 for m in fake.messages), 20,
                   procs=(w,))
        assert mid not in fake.deleted
        assert db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs") == 2
        db.query("DELETE FROM public.fail_events")
        wait_until("the message to be deleted", lambda: mid in fake.deleted, 20, procs=(w,))
        assert db.scalar("SELECT count(*) FROM dsa_jobs.analysis_runs") == 3
        assert "kept for redelivery" in w.stderr and "is not an S3 event" in w.stderr
        for r in db.query("SELECT id::text AS id FROM dsa_jobs.analysis_runs"):
            job = wait_until("job %s" % r["id"], lambda: (lambda j: j if j["status"] in (
                "completed", "failed") else None)(checks.job(db, r["id"])), 60, procs=(w,))
            assert job["status"] == "completed", job
            key = job["run_parameters"]["source"][len("s3://data/"):]
            assert_commit_exact(db, job, datas[key])
        w.signal(signal.SIGTERM)
        assert w.wait(timeout=30).code == 0
    finally:
        fake.stop()


# -- 8. the page in a real browser ---------------------------------------------------------------

class Browser:
    """Browser is headless Chromium driven over the DevTools protocol (websocket-client)."""

    def __init__(self, url, profile):
        import websocket
        self.port = free_port()
        self.proc = subprocess.Popen(
            [shutil.which("chromium"), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-extensions", "--user-data-dir=" + str(profile),
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % self.port,
             "--window-size=1200,700", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        deadline = time.monotonic() + 30 * timeout_factor()
        while time.monotonic() < deadline and self.ws is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/json")
                pages = [t for t in json.loads(conn.getresponse().read()) if t["type"] == "page"]
                if pages:
                    self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                                          timeout=10, suppress_origin=True)
            except (OSError, ValueError):
                time.sleep(0.2)
        assert self.ws is not None, "chromium did not start its DevTools endpoint"
        self.seq = 0

    def call(self, method, **params):
        self.seq += 1
        self.ws.send(json.dumps({"id": self.seq, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.seq:
                assert "error" not in msg, msg
                return msg["result"]

    def eval(self, expression):
        return self.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.kill()
            self.proc.wait(timeout=10)


def test_page_in_chromium_shows_a_progress_bar_advancing(serve, worker, db, store, proxy, tmp_path):
    """The page lists a queued job and its bar advances live (EventSource) while a worker runs
    it, to 100% and `completed`; a screenshot is kept (DSA_TEST_ARTIFACTS, else tmp_path)."""
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed")
    pytest.importorskip("websocket")
    data = gen.csv_bytes(list(gen.people_rows(40000, seed=77)))  # ~3.5 MB
    store.put("page.csv", data)
    proxy.configure(throttle=len(data) / 5.0)
    code, body = serve.json("POST", "/datasets/page/refs/main/import",
                            {"source": store.url("page.csv", port=proxy.port)})
    job_id = body["job_id"]
    browser = Browser(serve.base + "/#token=" + READ_TOKEN, tmp_path / "chromium")
    try:
        probe = ("(() => { const t = document.getElementById('job-%s');"
                 " return t ? [t.className, Number(t.dataset.percent)] : null; })()" % job_id)
        wait_until("the job on the page", lambda: browser.eval(probe), 20, procs=(serve.proc,))
        w = worker({"IMPORT_BATCH_SIZE": "1000"})
        seen = []

        def sample():
            v = browser.eval(probe)
            if v and (not seen or v != seen[-1]):
                seen.append(v)
            return v and v[0] == "completed"
        wait_until("the bar to reach completed", sample, 90, interval=0.2, procs=(serve.proc, w))
        running = [p for status, p in seen if status == "running"]
        midway = [p for p in running if 0 < p < 100]
        assert len(set(midway)) >= 2, "the bar did not move while running: %r" % seen
        assert running == sorted(running), seen
        assert seen[-1] == ["completed", 100], seen
        shot = browser.call("Page.captureScreenshot", format="png")["data"]
        out = os.environ.get("DSA_TEST_ARTIFACTS") or str(tmp_path)
        os.makedirs(out, exist_ok=True)
        import base64
        with open(os.path.join(out, "serve-page.png"), "wb") as f:
            f.write(base64.b64decode(shot))
        assert checks.job(db, job_id)["status"] == "completed"
    finally:
        browser.close()
