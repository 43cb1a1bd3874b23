"""A small HTTP/1.1 object server: the stand-in for S3/HTTP sources.

Why not http.server's SimpleHTTPRequestHandler: the import resumes with ranged GETs and
pins the object with If-Match, so the server must answer Range (206 + Content-Range),
give a strong ETag, answer 412 when If-Match differs, keep connections alive, and log
every request so a test can prove where a resumed run started reading.
"""
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def etag_for(path):
    """etag_for is a strong ETag derived from size and mtime: it changes when the file does."""
    st = os.stat(path)
    digest = hashlib.sha1(("%d-%d" % (st.st_size, st.st_mtime_ns)).encode()).hexdigest()
    return '"%s"' % digest[:20]


def parse_range(header, size):
    """parse_range turns a single `bytes=` range into (start, end_inclusive), or None if absent.

    Raises ValueError when the range cannot be satisfied (the caller answers 416)."""
    if not header:
        return None
    m = _RANGE_RE.match(header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise ValueError("bad range %r" % header)
    if m.group(1) == "":  # suffix range: the last N bytes
        n = int(m.group(2))
        if n == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise ValueError("unsatisfiable range %r for size %d" % (header, size))
    return start, min(end, size - 1)


def _asked_start(header):
    """_asked_start is the first byte a Range header asks for (None without one or if odd)."""
    m = _RANGE_RE.match((header or "").strip())
    return int(m.group(1)) if m and m.group(1) else None


class RequestLog:
    """RequestLog records each request per path, thread-safely, for tests to assert on."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []

    def add(self, entry):
        with self._lock:
            self._entries.append(entry)

    def entries(self, path=None, method=None):
        """entries returns the logged requests, optionally for one path and/or method."""
        with self._lock:
            out = list(self._entries)
        if path is not None:
            path = path if path.startswith("/") else "/" + path
            out = [e for e in out if e["path"] == path]
        if method is not None:
            out = [e for e in out if e["method"] == method]
        return out

    def range_starts(self, path):
        """range_starts lists the first byte asked by each GET of path (0 for a full GET)."""
        return [e["start"] if e["start"] is not None else 0
                for e in self.entries(path, "GET")]

    def clear(self):
        with self._lock:
            self._entries.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dsa-test-http/1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head):
        """_serve answers one GET/HEAD: 404, 412, 416, 200 or 206."""
        srv = self.server
        path = self.path.split("?", 1)[0]
        entry = {"method": self.command, "path": path, "range": self.headers.get("Range"),
                 "if_match": self.headers.get("If-Match"), "start": None, "end": None,
                 "status": None, "time": time.monotonic(), "sent": 0}
        entry["start"] = _asked_start(entry["range"])
        try:
            self._dispatch(srv, path, entry, head)
        finally:
            srv.log.add(entry)

    def _dispatch(self, srv, path, entry, head):
        forced = srv.take_forced_status(path)
        if forced is not None:
            return self._empty(entry, forced)
        fs_path = os.path.realpath(os.path.join(srv.root, path.lstrip("/")))
        if not fs_path.startswith(os.path.realpath(srv.root) + os.sep) or not os.path.isfile(fs_path):
            return self._empty(entry, 404)
        size = os.path.getsize(fs_path)
        etag = etag_for(fs_path)
        if_match = self.headers.get("If-Match")
        if if_match and if_match.strip() != "*" and etag not in [t.strip() for t in if_match.split(",")]:
            return self._empty(entry, 412, {"ETag": etag})
        try:
            rng = parse_range(self.headers.get("Range"), size)
        except ValueError:
            return self._empty(entry, 416, {"Content-Range": "bytes */%d" % size, "ETag": etag})
        start, end = rng if rng else (0, size - 1)
        entry["end"] = end if rng else None
        status = 206 if rng else 200
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(max(0, end - start + 1)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", self.date_time_string(int(os.path.getmtime(fs_path))))
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if not head:
            self._copy(fs_path, start, end - start + 1, entry)

    def _copy(self, fs_path, start, length, entry=None):
        """_copy streams length bytes from start; a client that goes away is not an error.

        entry["sent"] counts the body bytes handed to the socket (what the client may have
        received: a client that dies mid-body leaves it short of the asked range)."""
        try:
            with open(fs_path, "rb") as f:
                f.seek(start)
                while length > 0:
                    chunk = f.read(min(65536, length))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    length -= len(chunk)
                    if entry is not None:
                        entry["sent"] += len(chunk)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _empty(self, entry, status, headers=None):
        """_empty answers a status with an empty body (still keep-alive friendly)."""
        entry["status"] = status
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpServer:
    """HttpServer serves the files of a temp directory on 127.0.0.1:<free port>."""

    def __init__(self, root=None):
        self._own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="dsa-http-")
        self.log = RequestLog()
        self._forced = {}
        self._forced_lock = threading.Lock()
        self._httpd = None
        self._thread = None

    def start(self):
        """start binds a free port and serves in a background thread."""
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.root = self.root
        self._httpd.log = self.log
        self._httpd.take_forced_status = self._take_forced_status
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """stop shuts the server down and removes its directory if it made one."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def port(self):
        return self._httpd.server_address[1]

    def url(self, name, port=None):
        """url is the http:// address of a served file (through another port, e.g. a proxy)."""
        return "http://127.0.0.1:%d/%s" % (port or self.port, name.lstrip("/"))

    def put(self, name, data):
        """put stores bytes under name and returns the file's path."""
        path = os.path.join(self.root, name.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def path(self, name):
        return os.path.join(self.root, name.lstrip("/"))

    def force_status(self, name, statuses):
        """force_status makes the next requests of name answer these statuses, in order."""
        path = "/" + name.lstrip("/")
        with self._forced_lock:
            self._forced.setdefault(path, []).extend(statuses)

    def _take_forced_status(self, path):
        with self._forced_lock:
            queue = self._forced.get(path)
            return queue.pop(0) if queue else None
