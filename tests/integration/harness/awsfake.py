"""A local stand-in for the AWS credential services, on 127.0.0.1: STS
AssumeRoleWithWebIdentity (XML), EC2 instance metadata IMDSv2 (token + JSON) and the
ECS/EKS container credentials endpoint (JSON), speaking their real wire formats.

Why: the credential chain's parsing, expiry and refresh must be exercised for real, and
nothing in a test may reach 169.254.169.254 or AWS. Each credential it issues is fresh
(new key id, secret and session token), lives `lifetime` seconds, and is handed to
`on_issue` (the S3 server registers it with that expiry), so a test can prove the importer
refreshed before expiry: more than one issue, and the S3 server accepting the new keys.
"""
import datetime
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
IMDS_CREDS = "/latest/meta-data/iam/security-credentials/"


def iso(t):
    """iso formats epoch seconds as AWS does: 2024-01-02T03:04:05Z."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AwsFake:
    """AwsFake serves STS, IMDSv2 and container credentials; counters say what was asked."""

    def __init__(self, lifetime=3600, on_issue=None, role_arn="arn:aws:iam::123456789012:role/dsa",
                 web_token="header.payload.signature", role_name="dsa-instance-role",
                 container_token=None):
        self.lifetime = lifetime
        self.on_issue = on_issue
        self.role_arn = role_arn
        self.web_token = web_token
        self.role_name = role_name
        self.container_token = container_token
        self.sts_error = None  # (http status, Code, Message) to refuse AssumeRoleWithWebIdentity
        self.issued = []       # [(service, access key id, expires)]
        self.calls = {"sts": 0, "imds_token": 0, "imds_role": 0, "imds_creds": 0, "container": 0,
                      "refused": 0}
        self.sessions = []     # RoleSessionName of each STS call
        self._imds_tokens = set()
        self._lock = threading.Lock()
        self._server = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        fake = self

        class Handler(_Handler):
            pass
        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    # -- issuing -----------------------------------------------------------------------

    def count(self, what):
        with self._lock:
            self.calls[what] += 1

    def issue(self, service):
        """issue makes a fresh credential, registers it and returns (ak, sk, token, expires)."""
        expires = int(time.time()) + self.lifetime
        ak = "ASIA" + secrets.token_hex(8).upper()
        sk = secrets.token_urlsafe(30)
        token = "FwoG" + secrets.token_urlsafe(96)
        with self._lock:
            self.issued.append((service, ak, expires))
        if self.on_issue:
            self.on_issue(ak, sk, token, expires)
        return ak, sk, token, expires

    def issued_keys(self, service=None):
        with self._lock:
            return [ak for s, ak, _ in self.issued if service is None or s == service]


class _Handler(BaseHTTPRequestHandler):
    """_Handler routes by method and path; `fake` is set on a per-server subclass."""
    fake = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the tests assert on counters instead
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # -- STS --------------------------------------------------------------------------

    def do_POST(self):
        form = urllib.parse.parse_qs(self._body().decode("utf-8"), keep_blank_values=True)
        if self.path.split("?")[0] != "/" or form.get("Action") != ["AssumeRoleWithWebIdentity"]:
            return self._send(404, "no such action")
        self.fake.count("sts")
        with self.fake._lock:
            self.fake.sessions.append((form.get("RoleSessionName") or [""])[0])
        if self.fake.sts_error:
            st, code, msg = self.fake.sts_error
            return self._sts_error(st, code, msg)
        if form.get("RoleArn") != [self.fake.role_arn]:
            return self._sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        if form.get("WebIdentityToken") != [self.fake.web_token]:
            return self._sts_error(400, "InvalidIdentityToken", "The web identity token is not valid")
        ak, sk, tok, exp = self.fake.issue("sts")
        xml = ('<AssumeRoleWithWebIdentityResponse xmlns="%s"><AssumeRoleWithWebIdentityResult>'
               "<SubjectFromWebIdentityToken>system:serviceaccount:dsa:worker</SubjectFromWebIdentityToken>"
               "<Credentials><SessionToken>%s</SessionToken><SecretAccessKey>%s</SecretAccessKey>"
               "<Expiration>%s</Expiration><AccessKeyId>%s</AccessKeyId></Credentials>"
               "<AssumedRoleUser><Arn>%s/x</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>"
               "</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId>"
               "</ResponseMetadata></AssumeRoleWithWebIdentityResponse>") % (
                   STS_NS, tok, sk, iso(exp), ak, self.fake.role_arn)
        self._send(200, xml, "text/xml")

    def _sts_error(self, status, code, msg):
        self.fake.count("refused")
        self._send(status, '<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code>'
                   "<Message>%s</Message></Error><RequestId>1</RequestId></ErrorResponse>" % (
                       STS_NS, code, msg), "text/xml")

    # -- IMDSv2 ---------------------------------------------------------------------------

    def do_PUT(self):
        self._body()
        if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._send(400, "bad token request", "text/plain")
        self.fake.count("imds_token")
        token = secrets.token_urlsafe(32)
        with self.fake._lock:
            self.fake._imds_tokens.add(token)
        self._send(200, token, "text/plain")

    def _imds_ok(self):
        with self.fake._lock:
            return self.headers.get("X-aws-ec2-metadata-token") in self.fake._imds_tokens

    def do_GET(self):
        if self.path.startswith("/latest/"):
            return self._imds_get()
        if self.path.startswith("/container/"):
            return self._container_get()
        self._send(404, "not found", "text/plain")

    def _imds_get(self):
        if not self._imds_ok():
            self.fake.count("refused")
            return self._send(401, "", "text/plain")  # IMDSv2 only: no token, no answer
        if self.path == IMDS_CREDS:
            self.fake.count("imds_role")
            return self._send(200, self.fake.role_name + "\n", "text/plain")
        if self.path == IMDS_CREDS + self.fake.role_name:
            self.fake.count("imds_creds")
            ak, sk, tok, exp = self.fake.issue("imds")
            return self._send(200, json.dumps({
                "Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC",
                "AccessKeyId": ak, "SecretAccessKey": sk, "Token": tok, "Expiration": iso(exp)}))
        self._send(404, "not found", "text/plain")

    # -- container credentials ---------------------------------------------------------------

    def _container_get(self):
        self.fake.count("container")
        if self.fake.container_token and self.headers.get("Authorization") != self.fake.container_token:
            self.fake.count("refused")
            return self._send(401, json.dumps({"message": "bad authorization token"}))
        ak, sk, tok, exp = self.fake.issue("container")
        self._send(200, json.dumps({"AccessKeyId": ak, "SecretAccessKey": sk, "Token": tok,
                                    "Expiration": iso(exp), "RoleArn": self.fake.role_arn}))
