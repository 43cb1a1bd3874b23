"""The local S3 server for tests and the benchmark: npm's s3rver, started through
tests/s3/server.js on 127.0.0.1 with its own temp directory.

Why a launcher around s3rver: s3rver 3.7 does not check SigV4 signatures (it only looks the
access key up), and a test that a wrong secret is refused must run against a server that
really checks. server.js recomputes every signature, insists that a session token matches
and is signed, refuses expired temporary keys, can answer If-Match with 412 and every Nth
object GET with 503 SlowDown, and logs each request as a JSON line, read here into `log`.

The client side (put_object, create_bucket) signs its own requests with SigV4 in pure Python
(hashlib/hmac): it shares no code with dsa-ingest or curl, so the server check is independent.
"""
import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
S3_DIR = os.path.join(_REPO, "tests", "s3")
ADMIN_KEY = ("DSAADMINKEY", "dsa-admin-secret")


def availability():
    """availability is None when the server can run, else the reason it cannot.

    With node and npm present but tests/s3/node_modules missing, it runs `npm ci` (the
    lockfile pins s3rver) so a fresh clone needs no manual step."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return "node/npm are not installed (apt-get install nodejs npm; scripts/install-deps.sh does it)"
    if not os.path.isdir(os.path.join(S3_DIR, "node_modules", "s3rver")):
        proc = subprocess.run([npm, "ci", "--prefix", S3_DIR, "--no-audit", "--no-fund"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if proc.returncode != 0:
            return "npm ci --prefix tests/s3 failed: %s" % proc.stdout.decode(errors="replace")[-800:]
    return None


def uri_encode(s, keep_slash=True):
    """uri_encode is SigV4's UriEncode: all but A-Z a-z 0-9 - . _ ~ (and '/' in paths)."""
    return urllib.parse.quote(s, safe="/~" if keep_slash else "~")


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def sigv4_headers(method, host, path, payload, access, secret, token=None, region="us-east-1",
                  now=None):
    """sigv4_headers returns the headers of a SigV4-signed S3 request (path already encoded)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz[:8]
    headers = {"host": host, "x-amz-date": amz,
               "x-amz-content-sha256": hashlib.sha256(payload).hexdigest()}
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    canonical = "\n".join([method, path, "", "".join("%s:%s\n" % (n, headers[n]) for n in names),
                           ";".join(names), headers["x-amz-content-sha256"]])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    sig = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access, scope, ";".join(names), sig)
    return headers


class S3Server:
    """S3Server runs server.js; keys are the credentials it accepts (re-read on change)."""

    def __init__(self, buckets=("data",), if_match=False, slowdown_every=None):
        self.base = tempfile.mkdtemp(prefix="dsa-s3-")
        self.directory = os.path.join(self.base, "store")
        self.keys_path = os.path.join(self.base, "keys.json")
        self.buckets = list(buckets)
        self.if_match = if_match
        self.slowdown_every = slowdown_every
        self._keys = {}
        self._lock = threading.Lock()
        self.log = []
        self.port = None
        self._proc = None
        self._listening = threading.Event()
        self.add_key(*ADMIN_KEY)

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout=30):
        """start launches node and waits for its `listening` line."""
        os.makedirs(self.directory)
        cmd = ["node", os.path.join(S3_DIR, "server.js"), "--directory", self.directory,
               "--keys", self.keys_path]
        for b in self.buckets:
            cmd += ["--bucket", b]
        if self.if_match:
            cmd.append("--if-match")
        if self.slowdown_every:
            cmd += ["--slowdown-every", str(self.slowdown_every)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, cwd=S3_DIR)
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self._listening.wait(timeout) or self.port is None:
            err = self._proc.stderr.read1(4000).decode(errors="replace") if self._proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("the S3 server did not start: %s" % err)
        return self

    def _read_log(self):
        for raw in iter(self._proc.stdout.readline, b""):
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("event") == "listening":
                self.port = entry["port"]
                self._listening.set()
            else:
                with self._lock:
                    self.log.append(entry)
        self._listening.set()

    def stop(self):
        """stop ends the server (SIGTERM, then SIGKILL) and removes its files."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    # -- credentials -----------------------------------------------------------------

    def add_key(self, access, secret, token=None, expires=None):
        """add_key makes a credential valid (until `expires`, epoch seconds, if given)."""
        with self._lock:
            self._keys[access] = {"accessKeyId": access, "secretAccessKey": secret}
            if token:
                self._keys[access]["sessionToken"] = token
            if expires:
                self._keys[access]["expires"] = expires
            tmp = self.keys_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(list(self._keys.values()), f)
            os.replace(tmp, self.keys_path)

    # -- objects ---------------------------------------------------------------------

    def request(self, method, bucket, key="", body=b"", creds=ADMIN_KEY):
        """request sends one signed request straight to the server; returns (status, body)."""
        path = "/" + uri_encode(bucket) + ("/" + uri_encode(key) if key else "")
        host = "127.0.0.1:%d" % self.port
        headers = sigv4_headers(method, host, path, body, *creds)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def put_object(self, bucket, key, data):
        """put_object stores data (bytes) under key; returns its ETag as S3 reports it."""
        status, body = self.request("PUT", bucket, key, data)
        assert status == 200, "PUT %s/%s: HTTP %d %r" % (bucket, key, status, body[:300])
        return '"%s"' % hashlib.md5(data).hexdigest()

    def create_bucket(self, bucket):
        status, body = self.request("PUT", bucket)
        assert status == 200, "PUT bucket %s: HTTP %d %r" % (bucket, status, body[:300])

    # -- the request log -------------------------------------------------------------------

    def requests(self, key=None, method=None):
        """requests lists logged requests, optionally only those for one key (any bucket)."""
        with self._lock:
            entries = list(self.log)
        out = []
        for e in entries:
            path = urllib.parse.unquote(e["url"].split("?")[0])
            if key is not None and path.split("/", 2)[-1] != key:
                continue
            if method is not None and e["method"] != method:
                continue
            out.append(e)
        return out

    def wait_settled(self, seconds=0.3):
        """wait_settled gives the server a moment to log requests that just ended."""
        time.sleep(seconds)
