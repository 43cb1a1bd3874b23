"""A TCP fault proxy between the binary and the HTTP server.

Why TCP level: the faults worth testing are the network's, not HTTP's — a connection
that dies mid-body, one that goes silent, a slow link, a server that is gone. The proxy
forwards requests untouched and applies faults to the response direction only, counting
what it did so a test can prove the fault really happened (a test that passes because
the fault never fired proves nothing).

Faults (all adjustable while running, via configure()):
  cut_every     close each connection after this many response bytes
  max_cuts      stop cutting after this many cuts (None: no limit)
  cut_at_total  once, cut whichever connection carries the response byte number N overall
                (a truncation that does not depend on how the client uses connections)
  stall_after   once, after this many response bytes in total, stop forwarding ...
  stall_seconds ... for this long (keeping the connection open)
  throttle      forward at most this many bytes per second per connection
  down          accept and immediately reset every new connection
  down_after_cuts  go down (as above) right after this many cuts: a server that dies
"""
import socket
import struct
import threading
import time


class FaultProxy:
    """FaultProxy listens on 127.0.0.1:<free port> and forwards to (host, port)."""

    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets = set()
        self.cut_every = None
        self.max_cuts = None
        self.cut_at_total = None
        self.stall_after = None
        self.stall_seconds = 0.0
        self.throttle = None
        self.down = False
        self.down_after_cuts = None
        self.reset_counters()
        self._listener = None
        self._thread = None

    # -- configuration and counters -------------------------------------------------

    def configure(self, **faults):
        """configure sets fault attributes (see the module docstring); unknown names fail."""
        with self._lock:
            for key, value in faults.items():
                if not hasattr(self, key) or key.startswith("_"):
                    raise AttributeError("unknown fault %r" % key)
                setattr(self, key, value)
            if "stall_after" in faults:
                self._stalled = False
            if "cut_at_total" in faults:
                self._total_cut = False

    def reset_counters(self):
        """reset_counters zeroes the counters the tests assert on."""
        with self._lock:
            self.connections = 0
            self.refused = 0
            self.bytes_forwarded = 0
            self.cuts = 0
            self.stalls = 0
            self.stall_started_at = None
            self._stalled = False
            self._total_cut = False

    def counters(self):
        """counters is a snapshot dict of what the proxy did."""
        with self._lock:
            return {"connections": self.connections, "refused": self.refused,
                    "bytes_forwarded": self.bytes_forwarded, "cuts": self.cuts,
                    "stalls": self.stalls}

    # -- lifecycle ----------------------------------------------------------------

    def start(self):
        """start binds a free loopback port and accepts in a background thread."""
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """stop closes the listener and every open connection; stalls end at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            socks = list(self._sockets)
        for s in socks:
            _close(s)

    @property
    def port(self):
        return self._listener.getsockname()[1]

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.port, name.lstrip("/"))

    # -- forwarding ---------------------------------------------------------------

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                down = self.down
                if down:
                    self.refused += 1
                else:
                    self.connections += 1
            if down:
                _reset(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        """_serve connects upstream and runs both directions until either side ends."""
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.update((client, upstream))
        threading.Thread(target=self._pump_requests, args=(client, upstream), daemon=True).start()
        try:
            self._pump_responses(upstream, client)
        finally:
            _close(client)
            _close(upstream)
            with self._lock:
                self._sockets.difference_update((client, upstream))

    def _pump_requests(self, client, upstream):
        """_pump_requests copies client → upstream untouched."""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            try:
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _pump_responses(self, upstream, client):
        """_pump_responses copies upstream → client, applying the faults piece by piece."""
        sent = 0
        try:
            while not self._stop.is_set():
                data = upstream.recv(self._piece_size())
                if not data:
                    return
                while data:
                    n = self._allowed(sent, len(data))
                    if n > 0:
                        client.sendall(data[:n])
                        self._account(n)
                        sent += n
                        self._pace(n)
                        data = data[n:]
                    if self._should_cut(sent):
                        return
                    self._maybe_stall()
        except OSError:
            return

    def _piece_size(self):
        """_piece_size keeps pieces small when throttling so the rate is smooth."""
        rate = self.throttle
        if rate:
            return max(512, min(16384, int(rate) // 20))
        return 65536

    def _allowed(self, sent, want):
        """_allowed is how many of want bytes may go before the next cut or stall point."""
        n = want
        with self._lock:
            if self.cut_every and (self.max_cuts is None or self.cuts < self.max_cuts):
                n = min(n, self.cut_every - sent)
            if self.stall_after is not None and not self._stalled:
                n = min(n, max(0, self.stall_after - self.bytes_forwarded))
            if self.cut_at_total is not None and not self._total_cut:
                n = min(n, max(0, self.cut_at_total - self.bytes_forwarded))
        return n

    def _account(self, n):
        with self._lock:
            self.bytes_forwarded += n

    def _pace(self, n):
        rate = self.throttle
        if rate:
            self._stop.wait(n / float(rate))

    def _should_cut(self, sent):
        """_should_cut counts and signals a cut when this connection reached cut_every."""
        with self._lock:
            if (self.cut_at_total is not None and not self._total_cut
                    and self.bytes_forwarded >= self.cut_at_total):
                self._total_cut = True
                return self._count_cut()
            if not self.cut_every or sent < self.cut_every:
                return False
            if self.max_cuts is not None and self.cuts >= self.max_cuts:
                return False
            return self._count_cut()

    def _count_cut(self):
        """_count_cut counts a cut (lock held) and takes the server down if configured to."""
        self.cuts += 1
        if self.down_after_cuts is not None and self.cuts >= self.down_after_cuts:
            self.down = True
        return True

    def _maybe_stall(self):
        """_maybe_stall holds the connection silent once, when the stall point is reached."""
        with self._lock:
            due = (self.stall_after is not None and not self._stalled
                   and self.bytes_forwarded >= self.stall_after)
            if due:
                self._stalled = True
                self.stalls += 1
                self.stall_started_at = time.monotonic()
                seconds = self.stall_seconds
        if due:
            self._stop.wait(seconds)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _reset(sock):
    """_reset closes with SO_LINGER 0 so the peer sees a connection reset, as from a dead server."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
