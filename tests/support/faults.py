"""Faults that are nobody's attack (issue 22), played the same way by the tests
(tests/integration/test_faults.py) and the benchmark beside nginx and h2o
(benchmarks/faults.py): a polite client that says what it saw, and a file cut short under a
download over HTTP/1.1 (with a pipelined request behind it) and HTTP/2."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.h2client import H2Client
from tests.support.h2raw import F, RawH2, T, u32

BIG = 64 * 1024 * 1024
PATTERN = bytes(range(251)) * (BIG // 251 + 1)  # a byte's value tells its offset: a splice shows
GOAWAY = 0  # the status fetch() gives a connection turned away with a GOAWAY before any stream
H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 8: "CANCEL"}


@dataclass(frozen=True)
class Target:
    """Where a server listens, and the TLS context its clients use (given the ALPN to offer)."""

    host: str
    port: int
    context: Callable[[list[str]], ssl.SSLContext]

    def connect(self, alpn: list[str], timeout: float) -> ssl.SSLSocket:
        raw = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            return self.context(alpn).wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise


def fetch(target: Target, i: int, path: str, timeout: float = 10) -> tuple[int, int]:
    """(status, the x-pushserve-worker pid or 0) of a GET on a new connection: HTTP/2 for odd
    ``i``, else HTTP/1.1.  An HTTP/2 connection the server turns away before any stream (GOAWAY
    naming stream 0: nothing processed, retry) counts as status GOAWAY."""
    if i % 2:
        c = H2Client(target.host, target.port, target.context(["h2"]), timeout=timeout)
        try:
            reply = c.get(path)
        except AssertionError:
            if c.goaway is not None and c.goaway.error_code == 0 and c.goaway.last_stream_id == 0:
                return GOAWAY, 0
            raise
        finally:
            c.close()
        return reply.status, int(reply.header(b"x-pushserve-worker") or 0)
    with target.connect(["http/1.1"], timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        with contextlib.suppress(ConnectionResetError):  # after the whole answer (a peer's abort)
            while chunk := s.recv(65536):
                data += chunk
    if not data:
        raise ConnectionError("closed without a response")
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    m = re.search(r"(?im)^x-pushserve-worker: (\d+)\r?$", head)
    return int(head.split(" ", 2)[1]), int(m.group(1)) if m else 0


@dataclass
class Seen:
    """What a polite client saw: statuses, the workers that answered, failures, request times."""

    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    workers: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def add(self, other: Seen) -> None:
        self.statuses += other.statuses
        self.workers += other.workers
        self.failures += other.failures
        self.times += other.times

    def __str__(self) -> str:
        statuses = ", ".join(f"{'GOAWAY' if k == GOAWAY else k}: {v}" for k, v in sorted(self.statuses.items()))
        kinds = collections.Counter(f.split(":", 1)[0] for f in self.failures)
        failed = f"; {len(self.failures)} failed ({', '.join(f'{k} x{v}' for k, v in kinds.items())})" \
            if self.failures else ""
        slow = sum(1 for t in self.times if t > 1.0)
        return (f"{len(self.times)} requests ({statuses}){failed}; {slow} over 1 s, "
                f"slowest {max(self.times, default=0):.2f} s")


class PoliteClient:
    """One request after another, each on a new connection (HTTP/2 and HTTP/1.1 taking turns),
    each given ``timeout`` seconds, in a thread, until stopped (or 20,000 requests, or three
    minutes).  A request that fails is tried again after 50 ms, as a client would."""

    def __init__(self, target: Target, path: str, timeout: float = 10) -> None:
        self.target, self.path, self.timeout = target, path, timeout
        self.seen = Seen()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.between = threading.Lock()  # held during each request: paused() waits for the gap
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PoliteClient:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No request of this client in flight meanwhile (for a kill that loses what is in flight)."""
        with self.between:
            yield

    def count(self) -> int:
        with self.lock:
            return len(self.seen.times)

    def take(self) -> Seen:
        """What was seen since the last take."""
        with self.lock:
            seen, self.seen = self.seen, Seen()
        return seen

    def wait_for(self, n: int) -> None:
        """Until ``n`` more requests have ended (bounded: the client's own limits end it)."""
        wait_for_all([self], n)

    def _run(self) -> None:
        deadline = time.monotonic() + 180
        for i in range(20_000):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            started = time.monotonic()
            try:
                with self.between:
                    status, pid = fetch(self.target, i, self.path, self.timeout)
            except Exception as e:
                with self.lock:
                    self.seen.failures.append(f"{type(e).__name__}: {e}")
                    self.seen.times.append(time.monotonic() - started)
                self.stop.wait(0.05)
                continue
            with self.lock:
                self.seen.statuses[status] += 1
                self.seen.workers[pid] += 1
                self.seen.times.append(time.monotonic() - started)


def wait_for_all(clients: list[PoliteClient], n: int) -> None:
    """Until the clients together have ended ``n`` more requests (bounded by their own limits)."""
    goal = sum(c.count() for c in clients) + n
    while sum(c.count() for c in clients) < goal and any(c.thread.is_alive() for c in clients):
        time.sleep(0.01)


# -- a file cut short under a download -------------------------------------------------------------

@dataclass
class CutShort:
    """How a download of ``big.bin`` (BIG bytes of PATTERN) went when the file was truncated to
    1 MiB after the first 256 KiB arrived."""

    head: bytes  # HTTP/1.1: the response head
    body: int  # body bytes received
    intact: bool  # they are the file's first bytes
    spliced_at: int  # HTTP/1.1: where a response's status line appeared inside the body, or -1
    ended: str  # "closed", "still open", "RST_STREAM INTERNAL_ERROR", "END_STREAM", ...
    after: float  # seconds from the truncate to that end

    def __str__(self) -> str:
        splice = f"; the pipelined response spliced in at byte {self.spliced_at:,}" if self.spliced_at >= 0 else ""
        wrong = "" if self.intact else "; the bytes are not the file's"
        return f"{self.body:,} of {BIG:,} bytes, {self.ended} {self.after:.2f} s after the truncate{splice}{wrong}"


def write_big(path: Path) -> None:
    path.write_bytes(PATTERN[:BIG])


def h1_download_cut_short(target: Target, big: Path, next_path: str, timeout: float = 15) -> CutShort:
    """GET big.bin with a GET of ``next_path`` pipelined behind it; truncate the file under it;
    read until the server closes (or ``timeout`` passes without a byte)."""
    with target.connect(["http/1.1"], timeout) as s:
        s.sendall(b"GET /" + big.name.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  b"GET " + next_path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 256 * 1024:
            data += s.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        os.truncate(big, 1024 * 1024)
        truncated = time.monotonic()
        ended = "closed"
        try:
            while chunk := s.recv(65536):
                body += chunk
        except TimeoutError:
            ended = f"still open after {timeout:g} s"
        except OSError as e:
            ended = type(e).__name__
        after = time.monotonic() - truncated
    spliced = body.find(b"HTTP/1.1 ")
    clean = body if spliced < 0 else body[:spliced]
    return CutShort(head, len(body), clean == PATTERN[:len(clean)], spliced, ended, after)


def h2_download_cut_short(target: Target, big: Path, timeout: float = 15) -> tuple[CutShort, RawH2]:
    """The same on HTTP/2: read until the stream ends (RST_STREAM or END_STREAM), the
    connection ends, or ``timeout`` passes without a frame.  The connection is returned open."""
    c = RawH2(target.host, target.port, target.context(["h2"]), timeout=timeout)
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/" + big.name))
    got, truncated, ended, intact = 0, 0.0, f"no end within {timeout:g} s", True
    while True:
        try:
            f = c.read_frame()
        except TimeoutError:
            break
        if f.type == T.DATA and f.stream_id == sid:
            intact = intact and f.payload == PATTERN[got:got + len(f.payload)]
            got += len(f.payload)
            if not truncated and got >= 256 * 1024:
                os.truncate(big, 1024 * 1024)
                truncated = time.monotonic()
            if f.flags & F.END_STREAM:
                ended = "END_STREAM (a short body ended as if whole)"
                break
            c.send_frame(T.WINDOW_UPDATE, 0, 0, u32(len(f.payload)))
            c.send_frame(T.WINDOW_UPDATE, 0, sid, u32(len(f.payload)))
        elif f.type == T.RST_STREAM and f.stream_id == sid:
            ended = f"RST_STREAM {H2_ERRORS.get(f.error_code, hex(f.error_code))}"
            break
        elif f.type == T.GOAWAY:
            ended = f"GOAWAY {H2_ERRORS.get(f.error_code, hex(f.error_code))}"
            break
    after = time.monotonic() - truncated if truncated else 0.0
    return CutShort(b"", got, intact, -1, ended, after), c
