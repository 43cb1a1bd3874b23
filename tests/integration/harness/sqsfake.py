"""A local SQS queue for the `worker --sqs-queue-url` tests: the AWS JSON 1.0 protocol
(X-Amz-Target: AmazonSQS.ReceiveMessage / DeleteMessage), long polling, a visibility timeout,
and a full SigV4 check of every request.

Why a fake of our own: no SQS server is packaged for Debian, and what the worker must get
right is small and checkable here — the signature (recomputed independently from the raw
request, with the service name `sqs`), long polls that end when a message arrives, and a
message deleted only after the worker handled it (undeleted ones come back once their
visibility timeout passes). The log lists every call.
"""
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def check_sigv4(method, path, headers, body, keys):
    """check_sigv4 recomputes an AWS4-HMAC-SHA256 signature; returns None or the reason."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 Authorization header"
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    access, date, region, service, term = parts["Credential"].split("/")
    if service != "sqs" or term != "aws4_request":
        return "credential scope %s/%s, expected sqs/aws4_request" % (service, term)
    if access not in keys:
        return "unknown access key"
    signed = parts["SignedHeaders"].split(";")
    canon_headers = "".join("%s:%s\n" % (h, " ".join(headers.get(h, "").split())) for h in signed)
    canonical = "\n".join([method, path, "", canon_headers, parts["SignedHeaders"],
                           hashlib.sha256(body).hexdigest()])
    amz_date = headers.get("x-amz-date", "")
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join([date, region, service, term]),
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = _sign(("AWS4" + keys[access]).encode(), date)
    for part in (region, service, term):
        k = _sign(k, part)
    want = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(want, parts["Signature"]) else "signature mismatch"


class SqsFake:
    """SqsFake is one queue on 127.0.0.1:<free port>."""

    def __init__(self, keys, visibility=2.0):
        self.keys = dict(keys)
        self.visibility = visibility
        self.messages = []  # dicts: id, body, receipt, visible_at, receives
        self.deleted = []   # message ids, in order
        self.log = []       # (action, status)
        self.cond = threading.Condition()
        self._httpd = None

    @property
    def queue_url(self):
        return "http://127.0.0.1:%d/000000000000/events" % self._httpd.server_address[1]

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["Authorization"] = self.headers.get("Authorization", "")
                action = headers.get("x-amz-target", "").replace("AmazonSQS.", "")
                why = check_sigv4("POST", self.path, headers, body, fake.keys)
                if why:
                    status, answer = 403, {"__type": "InvalidSignatureException", "message": why}
                else:
                    status, answer = fake.dispatch(action, json.loads(body or b"{}"))
                fake.log.append((action, status))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def send(self, body):
        """send queues one message (its body a string) and returns its id."""
        with self.cond:
            mid = str(uuid.uuid4())
            self.messages.append({"id": mid, "body": body, "receipt": None, "visible_at": 0,
                                  "receives": 0})
            self.cond.notify_all()
            return mid

    def dispatch(self, action, req):
        if action == "ReceiveMessage":
            return 200, {"Messages": self._receive(int(req.get("MaxNumberOfMessages", 1)),
                                                   float(req.get("WaitTimeSeconds", 0)))}
        if action == "DeleteMessage":
            with self.cond:
                for m in self.messages:
                    if m["receipt"] and m["receipt"] == req.get("ReceiptHandle"):
                        self.messages.remove(m)
                        self.deleted.append(m["id"])
                        return 200, {}
            return 400, {"__type": "ReceiptHandleIsInvalid", "message": "no such receipt"}
        return 400, {"__type": "InvalidAction", "message": action}

    def _receive(self, most, wait):
        deadline = time.monotonic() + wait
        with self.cond:
            while True:
                now = time.monotonic()
                ready = [m for m in self.messages if m["visible_at"] <= now][:most]
                if ready or now >= deadline:
                    break
                self.cond.wait(min(0.1, deadline - now))
            out = []
            for m in ready:
                m["receipt"] = str(uuid.uuid4())
                m["visible_at"] = now + self.visibility
                m["receives"] += 1
                out.append({"MessageId": m["id"], "ReceiptHandle": m["receipt"], "Body": m["body"]})
            return out

    def pending(self):
        with self.cond:
            return [m["id"] for m in self.messages]
