"""Running the dsa-ingest binary from tests: foreground with a timeout, or in the
background so a test can watch the database and kill -9 it at a chosen moment.

Why a reader thread on stderr: the job id is printed at start (`job <uuid>`), and a
background test needs it before the process ends; reading stderr continuously also
keeps a chatty child from blocking on a full pipe.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time

JOB_RE = re.compile(r"\bjob ([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})")
_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def default_binary():
    """default_binary is $DSA_INGEST_BIN, else build/dsa-ingest in the repo."""
    return os.environ.get("DSA_INGEST_BIN") or os.path.join(_REPO, "build", "dsa-ingest")


def scale():
    """scale is DSA_TEST_SCALE (default 1.0): data sizes are multiplied by it (ASan runs use <1)."""
    try:
        return max(0.01, float(os.environ.get("DSA_TEST_SCALE", "1")))
    except ValueError:
        return 1.0


def timeout_factor():
    """timeout_factor stretches timeouts (DSA_TEST_TIMEOUT_FACTOR, or 4 under ASan)."""
    if os.environ.get("DSA_TEST_TIMEOUT_FACTOR"):
        return float(os.environ["DSA_TEST_TIMEOUT_FACTOR"])
    return 4.0 if os.environ.get("ASAN_OPTIONS") is not None else 1.0


class Result:
    """Result is a finished run: exit code, output, wall time and the parsed job id/JSON."""

    def __init__(self, args, code, stdout, stderr, elapsed):
        self.args = args
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        m = JOB_RE.search(stderr)
        self.job_id = m.group(1).lower() if m else None

    def json(self):
        """json parses stdout as the single JSON object `--json` prints."""
        text = self.stdout.strip()
        try:
            return json.loads(text)
        except ValueError as e:
            raise AssertionError("stdout is not one JSON object (%s): %r" % (e, text[-2000:]))

    def __repr__(self):
        return "<exit %s after %.1fs: %s\nstdout: %s\nstderr: %s>" % (
            self.code, self.elapsed, " ".join(self.args), self.stdout[-3000:], self.stderr[-3000:])


class Runner:
    """Runner runs the binary with a base environment (DATABASE_URL etc.) plus extras."""

    def __init__(self, binary=None, env=None):
        self.binary = binary or default_binary()
        self.env = dict(env or {})
        self._background = []

    def _env(self, extra):
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra or {})
        return {k: str(v) for k, v in env.items() if v is not None}

    def run(self, *args, env=None, timeout=300, cwd=None):
        """run executes the binary to completion; a run past timeout is killed and fails."""
        cmd = [self.binary] + [str(a) for a in args]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self._env(env), timeout=timeout * timeout_factor(),
                                  cwd=cwd, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("timed out after %ss: %s\nstderr: %s" % (
                timeout, " ".join(cmd), (e.stderr or b"")[-3000:].decode(errors="replace")))
        return Result(cmd, proc.returncode, proc.stdout.decode(errors="replace"),
                      proc.stderr.decode(errors="replace"), time.monotonic() - start)

    def start(self, *args, env=None):
        """start launches the binary in the background; kill_all() reaps it at teardown."""
        bg = Background([self.binary] + [str(a) for a in args], self._env(env))
        self._background.append(bg)
        return bg

    def kill_all(self):
        """kill_all SIGKILLs every background process this runner started that still runs."""
        for bg in self._background:
            bg.kill()
        self._background.clear()


class Background:
    """Background is one running binary: its job id as soon as printed, kill -9, wait."""

    def __init__(self, cmd, env):
        self.cmd = cmd
        self.start_time = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=env)
        self._stderr = []
        self._stdout = []
        self._job = threading.Event()
        self.job_id = None
        self._threads = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for t in self._threads:
            t.start()

    def _read_err(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode(errors="replace")
            self._stderr.append(line)
            m = JOB_RE.search(line)
            if m and self.job_id is None:
                self.job_id = m.group(1).lower()
                self._job.set()
        self._job.set()

    def _read_out(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self._stdout.append(raw.decode(errors="replace"))

    def wait_job_id(self, timeout=30):
        """wait_job_id returns the job id once printed; fails if the process ends without one."""
        self._job.wait(timeout * timeout_factor())
        if self.job_id is None:
            raise AssertionError("no `job <uuid>` on stderr of %s; exit %s; stderr: %s" % (
                " ".join(self.cmd), self.proc.poll(), self.stderr[-3000:]))
        return self.job_id

    @property
    def stderr(self):
        return "".join(self._stderr)

    @property
    def stdout(self):
        return "".join(self._stdout)

    def running(self):
        return self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        """signal sends sig (SIGTERM, SIGSTOP, SIGCONT …) if the process still runs."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def wait_for_stderr(self, pattern, timeout=30):
        """wait_for_stderr waits until a stderr line matches the regex; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * timeout_factor()
        while True:
            for line in list(self._stderr):
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() >= deadline or (self.proc.poll() is not None
                                                and not self._threads[0].is_alive()):
                raise AssertionError("no stderr line matching %r from %s (exit %s); stderr: %s" % (
                    pattern, " ".join(self.cmd), self.proc.poll(), self.stderr[-3000:]))
            time.sleep(0.02)

    def kill(self):
        """kill sends SIGKILL (like an OOM kill or a lost node) and reaps the process."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for t in self._threads:
            t.join(timeout=5)

    def wait(self, timeout=300):
        """wait waits for a normal exit and returns a Result."""
        try:
            self.proc.wait(timeout=timeout * timeout_factor())
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("timed out: %s\nstderr: %s" % (" ".join(self.cmd), self.stderr[-3000:]))
        for t in self._threads:
            t.join(timeout=5)
        return Result(self.cmd, self.proc.returncode, self.stdout, self.stderr,
                      time.monotonic() - self.start_time)
