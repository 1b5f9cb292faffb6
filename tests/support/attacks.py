"""Clients that hold a server's resources without using them, a polite client that measures how it
is served meanwhile, and a process's memory from /proc.  Shared by the availability tests
(tests/integration/test_availability.py) and the flood benchmark (benchmarks/floods.py), so both
play exactly the same attacks.

- ``IdleFlood``: TCP connections that never finish the TLS handshake: silent ones, ones that send
  half a ClientHello, ones that send a whole ClientHello and nothing after it.
- ``h2_unread``: HTTP/2 connections that ask for many streams with the largest windows allowed
  and never read a byte of the answers (CVE-2019-9517, "internal data buffering").
- ``Pipeliner``: an HTTP/1.1 connection that pipelines request after request and never reads.
- ``Polite``: new connections one after the other, each one GET checked byte for byte.

Every loop is bounded (a count, and a deadline or a socket timeout); every socket is closed by
``close()``/``stop()``."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.h2raw import RawH2, S, T, frame, u32

MAX_WINDOW = 2**31 - 1


def client_hello(alpn: tuple[str, ...] = ("h2", "http/1.1")) -> bytes:
    """The first flight of a real TLS client (one record holding a ClientHello), made by
    OpenSSL through memory buffers; nothing is sent anywhere."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) == 5 + int.from_bytes(hello[3:5], "big"), hello[:5]
    return hello


# -- idle TLS connections -------------------------------------------------------------------------

SILENT, HALF, WHOLE = "silent", "half", "whole"


@dataclass
class _Idle:
    kind: str
    sock: socket.socket
    payload: bytes
    connected: bool = False


class IdleFlood:
    """Connections that never finish a TLS handshake.  ``start`` opens them all (non-blocking
    connects, at most ``timeout`` seconds for the last to be established) and sends each its
    bytes; ``run_until`` then watches them from the calling thread and counts the ones the server
    closes, opening a new one of the same kind for each when ``reopen`` is set (an attacker who
    keeps up the pressure)."""

    def __init__(self, host: str, port: int, *, silent: int = 0, half: int = 0, whole: int = 0,
                 reopen: bool = False) -> None:
        self.host, self.port = host, port
        self.reopen = reopen
        hello = client_hello()
        self._payload = {SILENT: b"", HALF: hello[:len(hello) // 2], WHOLE: hello}
        self._wanted = {SILENT: silent, HALF: half, WHOLE: whole}
        self._poll = select.epoll()
        self._conns: dict[int, _Idle] = {}
        self.closed_by_server = {SILENT: 0, HALF: 0, WHOLE: 0}
        self.opened = 0
        self.failed_connects = 0

    @property
    def total(self) -> int:
        return sum(self._wanted.values())

    def _open(self, kind: str) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        # No lingering: closing thousands of sockets at the end must not send thousands of FINs
        # that the server then has to process while the next measurement starts.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        err = s.connect_ex((self.host, self.port))
        if err not in (0, 115):  # EINPROGRESS
            s.close()
            self.failed_connects += 1
            return
        self._conns[s.fileno()] = _Idle(kind, s, self._payload[kind])
        self._poll.register(s.fileno(), select.EPOLLOUT)
        self.opened += 1

    def launch(self) -> None:
        """Start every connection (non-blocking connects); ``watch`` completes them."""
        for kind, n in self._wanted.items():
            for _ in range(n):
                self._open(kind)

    def start(self, timeout: float = 30.0) -> int:
        """Open every connection and send each its bytes; returns how many were established
        within ``timeout``."""
        self.launch()
        deadline = time.monotonic() + timeout
        while self.established() < len(self._conns) and (left := deadline - time.monotonic()) > 0:
            for fd, _ in self._poll.poll(min(1.0, left)):
                self._event(fd)
        return self.established()

    def established(self) -> int:
        return sum(c.connected for c in self._conns.values())

    def _event(self, fd: int) -> None:
        c = self._conns.get(fd)
        if c is None:
            return
        if not c.connected:
            if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._lost(fd, c, by_server=False)
                return
            c.connected = True
            if c.payload:
                with contextlib.suppress(OSError):
                    c.sock.send(c.payload)
            self._poll.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
            return
        try:
            data = c.sock.recv(65536)  # the server's handshake flight, for WHOLE: read and ignored
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost(fd, c, by_server=True)

    def _lost(self, fd: int, c: _Idle, *, by_server: bool) -> None:
        self._poll.unregister(fd)
        del self._conns[fd]
        c.sock.close()
        if by_server:
            self.closed_by_server[c.kind] += 1
        else:
            self.failed_connects += 1
        if self.reopen:
            self._open(c.kind)

    def watch(self, timeout: float) -> None:
        """Process what happened on the connections for up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for fd, _ in self._poll.poll(min(max(0.0, deadline - time.monotonic()), 0.2)):
                self._event(fd)
            if time.monotonic() >= deadline:
                return

    def run_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.watch(0.2)

    def still_open(self) -> int:
        """Connections the server has not closed (after taking in what it did so far)."""
        self.watch(0.0)
        return len(self._conns)

    def close(self) -> None:
        for c in self._conns.values():
            c.sock.close()
        self._conns.clear()
        self._poll.close()


# -- readers that never read ----------------------------------------------------------------------


def h2_unread(host: str, port: int, ctx: ssl.SSLContext, *, connections: int, streams: int,
              path: str, timeout: float = 30.0) -> list[RawH2]:
    """``connections`` HTTP/2 connections, each asking for ``path`` on ``streams`` streams with
    windows of 2^31-1 (stream and connection), then never reading again.  The caller closes them."""
    conns = []
    try:
        for _ in range(connections):
            c = RawH2(host, port, ctx, settings=((S.ENABLE_PUSH, 0), (S.INITIAL_WINDOW_SIZE, MAX_WINDOW)),
                      timeout=timeout)
            conns.append(c)
            batch = frame(T.WINDOW_UPDATE, 0, 0, u32(MAX_WINDOW - 65535))
            for _ in range(streams):
                batch += c.headers_frame(c.new_stream(), c.request_headers(path))
            c.send(batch)
    except BaseException:
        for c in conns:
            c.sock.close()
        raise
    return conns


def tls_socket(host: str, port: int, ctx: ssl.SSLContext, alpn: str, timeout: float = 30.0) -> ssl.SSLSocket:
    ctx.set_alpn_protocols([alpn])
    raw = socket.create_connection((host, port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


class Pipeliner:
    """One HTTP/1.1 connection sending ``requests`` (request bytes, repeated) as fast as the server
    takes them, from a thread of its own, and never reading a byte.  It stops when everything is
    sent, when ``stop()`` is called, or when the server has taken nothing for ``stall`` seconds
    (a server that stopped reading: what a bound on pipelining should do)."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, requests: list[tuple[bytes, int]],
                 *, stall: float = 5.0) -> None:
        self.sock = tls_socket(host, port, ctx, "http/1.1")
        self.sent_requests = 0
        self.total = sum(n for _, n in requests)
        self.stalled = threading.Event()
        self._stop = threading.Event()
        self._requests = requests
        self._stall = stall
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def _send(self) -> None:
        self.sock.settimeout(self._stall)
        with contextlib.suppress(OSError):
            for request, count in self._requests:
                batch = max(1, 16384 // len(request))
                left = count
                while left and not self._stop.is_set():
                    n = min(batch, left)
                    self.sock.sendall(request * n)  # TimeoutError: the server stopped reading
                    left -= n
                    self.sent_requests += n
        self.stalled.set()

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(10)


def slow_readers(host: str, port: int, ctx: ssl.SSLContext, *, count: int, path: str, rate: int,
                 duration: float) -> int:
    """``count`` HTTP/1.1 downloads of ``path``, each read at ``rate`` bytes a second for
    ``duration`` seconds (a pace is the point of this attack); returns the bytes read in all."""
    socks = []
    got = 0
    try:
        for _ in range(count):
            s = tls_socket(host, port, ctx, "http/1.1")
            socks.append(s)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            s.setblocking(False)
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            tick = time.monotonic()
            for s in socks:
                with contextlib.suppress(ssl.SSLWantReadError, BlockingIOError):
                    got += len(s.recv(rate))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        for s in socks:
            s.close()
    return got


# -- the polite client -----------------------------------------------------------------------------


@dataclass
class Served:
    """What a polite client saw: one latency per answer, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    @property
    def worst(self) -> float:
        return max(self.latencies) if self.latencies else float("nan")


class Polite:
    """A well-behaved client: each ``once()`` opens a new TLS connection, asks for ``path`` over
    HTTP/1.1 (``Connection: close``) or HTTP/2 and checks the answer is a 200 with ``body``;
    ``run`` does that one after the other until ``stop`` is set.  A failure is recorded, never
    raised, so a measurement goes on."""

    def __init__(self, host: str, port: int, ctx_factory: Callable[[], ssl.SSLContext], path: str,
                 body: bytes, *, alpn: str = "http/1.1", timeout: float = 60.0) -> None:
        self.host, self.port = host, port
        self.ctx_factory = ctx_factory
        self.path, self.body, self.alpn, self.timeout = path, body, alpn, timeout
        self.served = Served()

    def once(self) -> float:
        started = time.perf_counter()
        try:
            status, body = self._h2() if self.alpn == "h2" else self._h1()
        except (OSError, ssl.SSLError, AssertionError) as e:
            self.served.failures.append(f"{type(e).__name__}: {e}")
            return -1.0
        took = time.perf_counter() - started
        if status != 200 or body != self.body:
            self.served.failures.append(f"status {status}, {len(body)} bytes")
            return -1.0
        self.served.latencies.append(took)
        return took

    def _h1(self) -> tuple[int, bytes]:
        with tls_socket(self.host, self.port, self.ctx_factory(), "http/1.1", self.timeout) as s:
            s.sendall(f"GET {self.path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            data = bytearray()
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
        return (int(m.group(1)) if m else 0), body

    def _h2(self) -> tuple[int, bytes]:
        c = RawH2(self.host, self.port, self.ctx_factory(), timeout=self.timeout)
        try:
            reply = c.get(self.path)
        finally:
            c.close()
        return int(dict(reply.headers)[b":status"]), reply.body

    def run(self, stop: threading.Event, pause: float = 0.0) -> None:
        """Requests one after the other until ``stop`` (``pause`` seconds apart: a measurement's
        pace, not a wait for readiness)."""
        while not stop.is_set():
            self.once()
            if pause:
                stop.wait(pause)


# -- memory from /proc -------------------------------------------------------------------------------


def _status_kib(pid: int, name: str) -> int:
    m = re.search(rf"^{name}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert m is not None, f"/proc/{pid}/status has no {name}"
    return int(m.group(1))


def rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def peak_kib(pid: int) -> int:
    """The largest RSS the process had since it started or since ``reset_peak``."""
    return _status_kib(pid, "VmHWM")


def reset_peak(pid: int) -> bool:
    """Start the peak over from the current RSS (Linux ≥ 4.0; needs the right to write the
    process's clear_refs).  False when not allowed: the peak then also covers the past."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
