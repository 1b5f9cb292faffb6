"""Overload against a real process: the connection cap, the bound on TLS handshakes and the memory
a connection flood leaves behind.  Each test also checks that a polite client on another
connection keeps getting correct answers.  Counts are the smallest that show the defence; the
large figures are in the benchmark harness's soak script."""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.h2client import H2Client
from tests.support.serverproc import ServerProcess


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>t</title><p>hello</p>\n")
    (root / "style.css").write_text("p { color: green }\n")
    return root


def polite_get(srv: ServerProcess, path: str = "/style.css") -> int:
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), timeout=10)
    try:
        reply = c.get(path)
        assert reply.body == (b"p { color: green }\n" if path == "/style.css" else reply.body)
        return reply.status
    finally:
        c.close()


def tls_connect(srv: ServerProcess, alpn: str) -> ssl.SSLSocket:
    ctx = srv.certs.client_context([alpn])
    raw = socket.create_connection((srv.host, srv.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_all(s: ssl.SSLSocket) -> bytes:
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    return data


def worker_pid(srv: ServerProcess) -> int:
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), timeout=10)
    try:
        value = c.get("/style.css").header(b"x-pushserve-worker")
    finally:
        c.close()
    assert value is not None
    return int(value)


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert m is not None
    return int(m.group(1))


@pytest.fixture
def serve(make_server: Callable[..., ServerProcess], site: Path) -> Iterator[Callable[..., ServerProcess]]:
    def start(*args: str) -> ServerProcess:
        return make_server("--no-access-log", "--expose-worker", *args, site=site)

    yield start


def test_connections_over_the_cap_are_turned_away_and_the_others_served(
        serve: Callable[..., ServerProcess]) -> None:
    srv = serve("--max-connections", "3")
    with ExitStack() as stack:
        held = [stack.enter_context(tls_connect(srv, "http/1.1")) for _ in range(2)]
        polite = H2Client(srv.host, srv.port, srv.certs.client_context(), timeout=10)
        stack.callback(polite.close)
        assert polite.get("/style.css").status == 200  # the third connection: at the cap, served

        over_h1 = tls_connect(srv, "http/1.1")
        answer = read_all(over_h1)
        over_h1.close()
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer[:60]
        assert b"\r\nretry-after: 1\r\n" in answer.lower() and b"connection: close" in answer.lower()

        over_h2 = H2Client(srv.host, srv.port, srv.certs.client_context(), timeout=10)
        over_h2.read_until_closed()
        over_h2.close()
        assert over_h2.goaway is not None
        assert (over_h2.goaway.last_stream_id, over_h2.goaway.error_code) == (0, 0)  # nothing processed

        # The established connections keep being served.
        assert polite.get("/style.css").status == 200
        held[0].sendall(b"GET /style.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert read_all(held[0]).startswith(b"HTTP/1.1 200 ")
    srv.wait_for(r"turned away \d+ connections?: \d+ open, --max-connections 3")
    assert polite_get(srv) == 200  # and room again once they closed


def test_connection_flood_leaves_no_memory_behind(serve: Callable[..., ServerProcess]) -> None:
    """Rounds of TCP connections that close before sending a TLS byte, and of full TLS
    connections; the worker's memory comes back near where it started."""
    srv = serve("--max-handshakes", "32")
    pid = worker_pid(srv)
    before = rss_kib(pid)
    ctx = srv.certs.client_context(["http/1.1"])
    for _ in range(3):
        socks = [socket.create_connection((srv.host, srv.port), timeout=10) for _ in range(300)]
        for s in socks:
            s.close()
        assert polite_get(srv) == 200  # served between the rounds, whatever is still queued
    with ExitStack() as stack:
        for _ in range(150):
            raw = stack.enter_context(socket.create_connection((srv.host, srv.port), timeout=10))
            stack.enter_context(ctx.wrap_socket(raw, server_hostname="localhost"))
        assert polite_get(srv) == 200
    # The flood is over: the next sweep that sees the connection count fall gives memory back.
    srv.wait_for(r"connections fell from \d+ to \d+: memory given back to the OS", timeout=30)
    after = rss_kib(pid)
    print(f"worker RSS: {before} KiB before, {after} KiB after the flood")
    assert after < before + 20 * 1024, (before, after)
    assert polite_get(srv) == 200
