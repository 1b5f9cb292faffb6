"""Availability under clients that hold resources without using them (issue 21), against a real
process: connections that never finish the TLS handshake, HTTP/2 and HTTP/1.1 readers that never
read, pipelining that never reads.  In every case a polite client on other connections is served
throughout, and the worker's memory growth — its peak RSS from /proc (``VmHWM``, reset before the
attack) — stays within a bound.  No timing: each test waits for a condition (the flood established,
the attack's requests taken in, a polite answer) and asserts what happened.

The sizes are the smallest that tell the old behaviour from the new (the old code fails every
test here); ``PUSHSERVE_FUZZ=long`` plays the idle-handshake flood at the size of the issue (3,000
connections).  benchmarks/floods.py measures latencies and memory beside nginx and h2o."""

from __future__ import annotations

import os
import re
import resource
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fuzz.profile import LONG
from tests.support import attacks
from tests.support.attacks import SILENT, WHOLE, IdleFlood, Pipeliner, Polite
from tests.support.serverproc import ServerProcess

MIB = 1024 * 1024
SMALL = b"p { color: green }\n" * 20
KIB = 1024


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>t</title><p>hello\n")
    (root / "small.css").write_bytes(SMALL)
    (root / "p").write_bytes(b"x" * 100)
    (root / "big.bin").write_bytes(os.urandom(MIB))
    (root / "huge.bin").write_bytes(os.urandom(8 * MIB))
    return root


@pytest.fixture
def serve(make_server: Callable[..., ServerProcess], site: Path) -> Iterator[Callable[..., ServerProcess]]:
    def start(*args: str) -> ServerProcess:
        return make_server("--no-access-log", "--expose-worker", *args, site=site)

    yield start


def polite(srv: ServerProcess, alpn: str = "http/1.1") -> Polite:
    return Polite(srv.host, srv.port, srv.certs.client_context, "/small.css", SMALL, alpn=alpn, timeout=20)


def served(p: Polite, times: int = 3) -> None:
    """``times`` more answers, each on a new connection, each checked byte for byte."""
    for _ in range(times):
        p.once()
    assert not p.served.failures, p.served.failures


def worker_pid(srv: ServerProcess) -> int:
    with attacks.tls_socket(srv.host, srv.port, srv.certs.client_context(), "http/1.1", timeout=20) as s:
        s.sendall(b"GET /small.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    m = re.search(rb"\r\nx-pushserve-worker: (\d+)\r\n", data)
    assert m is not None, data[:300]
    return int(m.group(1))


class Memory:
    """The worker's RSS now, and later how far its peak rose above it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = attacks.rss_kib(pid)
        self.exact = attacks.reset_peak(pid)  # else VmHWM also covers the start: a looser check

    def growth_kib(self) -> int:
        return attacks.peak_kib(self.pid) - self.before


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_until(condition: Callable[[], bool], what: str, p: Polite, rounds: int = 600) -> None:
    """Poll ``condition`` between polite requests (each a round trip through the worker's loop),
    at most ``rounds`` times: the attack's requests are taken in meanwhile."""
    for _ in range(rounds):
        if condition():
            return
        p.once()
    raise AssertionError(f"never {what}")


# -- idle TLS handshakes -------------------------------------------------------------------------

# (silent, half a ClientHello, whole ClientHello): the flood in the long profile.
FLOOD = (2000, 900, 100) if LONG else (300, 100, 4)


def test_idle_handshake_flood_never_delays_a_client_that_sends_its_hello(
        serve: Callable[..., ServerProcess]) -> None:
    """Silent connections, half ClientHellos and stalled handshakes (fewer than the handshake
    places) are all held at once: a new client is served while every one of them is still open,
    so none had to give way (before, the new client waited in the kernel's queue behind them
    until they timed out or were dropped, 128 a second), and they cost little memory."""
    silent, half, whole = FLOOD
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * sum(FLOOD) + 512  # this process and the server (which inherits the limit) hold them all
    if soft < want:
        assert hard >= want, f"the flood needs {want} open files, the hard limit is {hard}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    srv = serve() if LONG else serve("--max-handshakes", "8")  # the default is 128
    p = polite(srv)
    memory = Memory(worker_pid(srv))
    flood = IdleFlood(srv.host, srv.port, silent=silent, half=half, whole=whole)
    try:
        assert flood.start() == flood.total
        served(p)
        assert flood.still_open() == flood.total, flood.closed_by_server
        growth = memory.growth_kib()
    finally:
        flood.close()
    # The goal is +20 MB for 3,000 such connections: 7 KB each (a socket waiting for its
    # ClientHello costs about 1 KB, a stalled handshake about 60 KB).
    assert growth <= 2 * KIB + 7 * flood.total, (growth, memory.exact)
    served(p)


def test_stalled_handshakes_beyond_the_places_give_way(serve: Callable[..., ServerProcess]) -> None:
    """More stalled handshakes (whole ClientHellos, then nothing) than places: the oldest give
    theirs to the connections queued for one, so the polite client is served; silent ones are
    left alone, there is room for them."""
    srv = serve("--max-handshakes", "4")
    p = polite(srv)
    flood = IdleFlood(srv.host, srv.port, silent=50, whole=12)
    try:
        assert flood.start() == flood.total
        served(p)
        srv.wait_for(r"dropped \d+ TLS handshakes? older than 1 s, for connections waiting for a place "
                     r"\(--max-handshakes 4\)")
        flood.watch(0)
        assert flood.closed_by_server[SILENT] == 0, flood.closed_by_server
    finally:
        flood.close()


def test_silent_connections_give_way_at_the_connection_limit(serve: Callable[..., ServerProcess]) -> None:
    """At --max-connections the oldest connection that has sent no ClientHello is closed for a
    newcomer; the stalled handshakes (they sent theirs) are not."""
    srv = serve("--max-connections", "60")
    p = polite(srv)
    flood = IdleFlood(srv.host, srv.port, silent=150, whole=5)
    try:
        assert flood.start() == flood.total
        wait_until(lambda: flood.still_open() <= 60, "closed the connections over the limit", p)
        served(p)
        srv.wait_for(r"closed \d+ connections? that sent no ClientHello, for newer ones \(--max-connections 60\)")
        assert flood.closed_by_server[WHOLE] == 0, flood.closed_by_server
    finally:
        flood.close()


def test_silent_connections_give_way_when_descriptors_run_out(serve: Callable[..., ServerProcess]) -> None:
    """Out of file descriptors is every place taken too: the oldest silent connection gives its
    descriptor to the newcomer instead of leaving it in the kernel's queue."""
    srv = serve()
    pid = worker_pid(srv)
    p = polite(srv)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_files(pid) + 60, open_files(pid) + 60))
    flood = IdleFlood(srv.host, srv.port, silent=200)
    try:
        assert flood.start() == flood.total
        served(p)
        srv.wait_for(r"out of file descriptors \(ulimit -n \d+\) with \d+ connections open: closed \d+ connections? "
                     r"that sent no ClientHello for new ones")
    finally:
        flood.close()
    served(p)


# -- readers that never read ------------------------------------------------------------------------


def test_h2_streams_never_read_pin_little(serve: Callable[..., ServerProcess]) -> None:
    """CVE-2019-9517: connections ask for a 1 MiB file on 100 streams each with the largest windows
    and never read.  Before, every stream held a 64 KiB chunk read ahead of the socket (+25 MB
    for these 4 connections); now a file is read as it is sent."""
    srv = serve()
    pid = worker_pid(srv)
    p = polite(srv, "h2")
    served(p, 1)
    memory = Memory(pid)
    files = open_files(pid)
    conns = attacks.h2_unread(srv.host, srv.port, srv.certs.client_context(), connections=4, streams=100,
                              path="/big.bin")
    try:
        # Every stream's file is open: all 400 requests were taken in and answered.
        wait_until(lambda: open_files(pid) >= files + 4 + 400, "opened every stream's file", p)
        served(p)
        growth = memory.growth_kib()
    finally:
        for c in conns:
            c.close()
    assert growth <= 6 * KIB, (growth, memory.exact)
    served(p)


def test_downloads_never_read_pin_little(serve: Callable[..., ServerProcess]) -> None:
    """Downloads whose client never reads (the slowest reader).  Before, each connection wrote
    256 KiB at once and OpenSSL's output buffer kept that size (~450 KB a connection); now
    it writes a TLS record's worth until the peer shows that it reads."""
    srv = serve()
    pid = worker_pid(srv)
    p = polite(srv)
    served(p, 1)
    memory = Memory(pid)
    files = open_files(pid)
    readers = []
    try:
        for _ in range(20):
            s = attacks.tls_socket(srv.host, srv.port, srv.certs.client_context(), "http/1.1", timeout=20)
            readers.append(s)
            s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        wait_until(lambda: open_files(pid) >= files + 2 * len(readers), "answered every download", p)
        served(p)
        growth = memory.growth_kib()
    finally:
        for s in readers:
            s.close()
    # A stalled connection holds what the kernel refused: uvloop's socket buffer (64 KiB and a
    # write) and a TLS record's worth, ~160 KB with the connection itself (it was ~1.4 MB).
    assert growth <= 2 * KIB + 200 * len(readers), (growth, memory.exact)
    served(p)


def test_pipelining_that_never_reads_is_not_parsed_ahead(serve: Callable[..., ServerProcess]) -> None:
    """One HTTP/1.1 connection pipelines tiny GETs and never reads.  Before,
    every read was parsed whole: a 256 KiB read became ~7,000 requests held in memory; now input
    is parsed no further than 16 requests waiting for their answers."""
    srv = serve()
    pid = worker_pid(srv)
    p = polite(srv)
    served(p, 1)
    memory = Memory(pid)
    tiny = b"GET /p HTTP/1.1\r\nHost: l\r\n\r\n"
    pipeliner = Pipeliner(srv.host, srv.port, srv.certs.client_context(), [(tiny, 200_000)], stall=60.0)
    try:
        # 1 MB of requests handed to the kernel: the server has had reads of up to 256 KiB.
        wait_until(lambda: pipeliner.sent_requests * len(tiny) >= MIB, "sent 1 MB of requests", p)
        served(p)
        growth = memory.growth_kib()
    finally:
        pipeliner.stop()
    # The connection's read buffers (a 256 KiB read in uvloop, OpenSSL and the core) are ~1.3 MB.
    assert growth <= 4 * KIB, (growth, memory.exact)
    served(p)


def test_socket_helpers_close_what_they_open() -> None:
    """The flood closes every socket it opened (a test must leave no descriptor behind)."""
    before = len(os.listdir("/proc/self/fd"))
    server = socket.create_server(("127.0.0.1", 0))
    try:
        flood = IdleFlood("127.0.0.1", server.getsockname()[1], silent=5, half=5)
        assert flood.start() == 10
        flood.close()
    finally:
        server.close()
    assert len(os.listdir("/proc/self/fd")) == before
