"""An HTTP/3 load client on aioquic, for the harness: Debian's h2load is built without QUIC.

Many streams on few connections, as h2load ``-c C -m M`` does: ``connections`` QUIC connections,
each keeping ``streams`` requests in flight, until ``requests`` answers came back, or for
``duration`` seconds (then the requests in flight are waited for; ``max_seconds`` bounds it all).
One process, one thread, a select loop over the connections' sockets;
every answer is checked (status 200 and the body's length), and the figures count only the time
from the first request to the last answer, not the handshakes.

    python -m benchmarks.h3load https://127.0.0.1:8443/tiny.txt -c 2 -m 32 -n 20000

The client is Python, like the servers it measures (both peers use aioquic): it costs about as
much CPU per request as a server does, so it runs pinned to the client CPU and a result near its
own ceiling says so (``client_cpu``, the share of its CPU it used).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import select
import socket
import ssl
import sys
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from aioquic.h3 import events as h3e
from aioquic.h3.connection import H3Connection
from aioquic.quic import events as qe
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection


@dataclass
class H3LoadRun:
    requests: int = 0  # answers received
    succeeded: int = 0  # 200 with the expected body length
    failed: int = 0
    body_bytes: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0  # CPU seconds of this process / wall seconds of the run
    errors: list[str] = field(default_factory=list)

    @property
    def req_per_s(self) -> float:
        return self.succeeded / self.seconds if self.seconds else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.body_bytes / self.seconds / (1 << 20) if self.seconds else 0.0

    def problem(self, expected: int) -> str | None:
        """Why the run does not count, or None."""
        if self.errors:
            return self.errors[0]
        if self.failed or self.succeeded < expected:
            return f"{self.failed} failed, {self.succeeded} of {expected} answered"
        return None


class _Connection:
    def __init__(self, host: str, port: int, server_name: str, window: int) -> None:
        config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name=server_name,
                                   verify_mode=ssl.CERT_NONE, max_stream_data=window, max_data=window * 64)
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # A receive buffer that holds bursts (a full congestion window): losses in the client's
        # own socket would measure the client.  SO_RCVBUFFORCE passes rmem_max where permitted.
        for option in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE, then the capped one
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, option, 8 << 20)
                break
            except OSError:
                continue
        self.sock.connect(self.addr)
        self.sock.setblocking(False)
        self.quic = QuicConnection(configuration=config)
        self.h3 = H3Connection(self.quic)
        self.h3._max_push_id = None  # no push
        self.open: dict[int, list[int]] = {}  # stream -> [status, body bytes]
        self.done = False
        self.quic.connect(self.addr, time.monotonic())

    def transmit(self, now: float) -> None:
        for data, _ in self.quic.datagrams_to_send(now):
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                self.sock.send(data)

    def request(self, authority: bytes, path: bytes) -> None:
        sid = self.quic.get_next_available_stream_id()
        self.h3.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority),
                                   (b":path", path)], end_stream=True)
        self.open[sid] = [0, 0]


def run(url: str, *, connections: int = 2, streams: int = 32, requests: int = 10_000, max_seconds: float = 60.0,
        duration: float | None = None, expect_bytes: int | None = None, window: int = 1 << 24) -> H3LoadRun:
    parts = urlsplit(url)
    host = socket.gethostbyname(parts.hostname or "127.0.0.1")
    port = parts.port or 443
    authority = (parts.netloc or "").encode()
    path = (parts.path or "/").encode() + (b"?" + parts.query.encode() if parts.query else b"")
    result = H3LoadRun()
    conns = [_Connection(host, port, parts.hostname or "localhost", window) for _ in range(connections)]
    by_fd = {c.sock.fileno(): c for c in conns}
    for c in conns:
        c.transmit(time.monotonic())
    deadline = time.monotonic() + max_seconds
    issued = 0
    started = cpu_start = 0.0
    ready = 0

    def pump(timeout: float) -> None:
        nonlocal issued, ready, started, cpu_start
        now = time.monotonic()
        timers = [t for c in conns if (t := c.quic.get_timer()) is not None]
        wait = max(0.0, min([timeout, *(t - now for t in timers)]))
        readable, _, _ = select.select(list(by_fd), [], [], wait)
        now = time.monotonic()
        for fd in readable:
            c = by_fd[fd]
            for _ in range(256):
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                c.quic.receive_datagram(data, c.addr, now)
        for c in conns:
            timer = c.quic.get_timer()
            if timer is not None and timer <= now:
                c.quic.handle_timer(now)
            while (event := c.quic.next_event()) is not None:
                if isinstance(event, qe.HandshakeCompleted):
                    ready += 1
                    if ready == len(conns):
                        started, cpu_start = time.monotonic(), _cpu()
                elif isinstance(event, qe.ConnectionTerminated):
                    c.done = True
                    result.errors.append(f"connection closed: {event.reason_phrase or hex(event.error_code)}")
                for h in c.h3.handle_event(event):
                    _answer(c, h)
            if ready == len(conns) and (duration is None or now - started < duration):
                while len(c.open) < streams and issued < requests and not c.done:
                    c.request(authority, path)
                    issued += 1
            c.transmit(now)

    def _answer(c: _Connection, h: h3e.H3Event) -> None:
        if isinstance(h, h3e.HeadersReceived):
            st = c.open.get(h.stream_id)
            if st is not None:
                st[0] = int(dict(h.headers).get(b":status", b"0"))
        elif isinstance(h, h3e.DataReceived):
            st = c.open.get(h.stream_id)
            if st is None:
                return
            st[1] += len(h.data)
            result.body_bytes += len(h.data)
        else:
            return
        if h.stream_ended and h.stream_id in c.open:
            status, size = c.open.pop(h.stream_id)
            result.requests += 1
            if status == 200 and (expect_bytes is None or size == expect_bytes):
                result.succeeded += 1
            else:
                result.failed += 1
                if len(result.errors) < 3:
                    result.errors.append(f"status {status}, {size} bytes")

    while time.monotonic() < deadline and not all(c.done for c in conns):
        if result.requests >= requests or (duration is not None and started
                                           and time.monotonic() - started >= duration
                                           and not any(c.open for c in conns)):
            break
        pump(0.05)
    result.seconds = time.monotonic() - started if started else 0.0
    result.client_cpu = (_cpu() - cpu_start) / result.seconds if result.seconds else 0.0
    for c in conns:
        c.quic.close()
        c.transmit(time.monotonic())
        c.sock.close()
    if duration is None and result.requests < requests and not result.errors:
        result.errors.append(f"only {result.requests} of {requests} answers within {max_seconds:g} s")
    return result


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.h3load", description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("-c", "--connections", type=int, default=2)
    p.add_argument("-m", "--streams", type=int, default=32, help="requests in flight per connection")
    p.add_argument("-n", "--requests", type=int, default=10_000)
    p.add_argument("-d", "--duration", type=float, default=None,
                   help="issue requests for this many seconds instead of -n (which then only caps)")
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--expect-bytes", type=int, default=None, help="the body length every answer must have")
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(argv)
    requests = ns.requests if ns.duration is None else 1 << 40
    result = run(ns.url, connections=ns.connections, streams=ns.streams, requests=requests,
                 max_seconds=ns.max_seconds, duration=ns.duration, expect_bytes=ns.expect_bytes)
    if ns.json:
        print(json.dumps({**asdict(result), "req_per_s": result.req_per_s, "mib_per_s": result.mib_per_s}))
    else:
        print(f"{result.succeeded} of {result.requests} in {result.seconds:.2f} s: {result.req_per_s:,.0f} req/s, "
              f"{result.mib_per_s:,.1f} MiB/s of bodies; client CPU {result.client_cpu:.0%}"
              + (f"; problem: {problem}" if (problem := result.problem(min(requests, result.requests))) else ""))
    return 0 if result.problem(min(requests, result.requests)) is None else 1


if __name__ == "__main__":
    sys.exit(main())
