"""HTTP/3 against a real pushserve process and aioquic's client: the same site over UDP as over
TCP, Alt-Svc, --no-http3, a UDP port that cannot be bound, and what a rolling restart and a
crashed worker do to open HTTP/3 connections."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioquic.h3.connection import ErrorCode

from tests.support.h2client import H2Client
from tests.support.h3attacks import lone_initial
from tests.support.h3client import H3Client
from tests.support.serverproc import SITE_EXAMPLE, Certs, ServerProcess, start

STREAMING_APP = '''
import asyncio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"x-http-version", scope["http_version"].encode())]})
    if scope["path"].endswith("/quick"):
        await send({"type": "http.response.body", "body": b"done\\n"})
        return
    for i in range(20):  # a 2-second streaming response of 1 MB, 0.1 s between chunks
        await send({"type": "http.response.body", "body": b"x" * 50_000 + b"chunk %02d\\n" % i, "more_body": True})
        await asyncio.sleep(0.1)
    await send({"type": "http.response.body", "body": b"done\\n"})
'''


def h3(srv: ServerProcess, **kw: object) -> H3Client:
    return H3Client("127.0.0.1", srv.port, ca_file=srv.certs.ca_file, **kw)  # type: ignore[arg-type]


def h2_get(srv: ServerProcess, path: str, headers: list[tuple[bytes, bytes]] | None = None):  # type: ignore[no-untyped-def]
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=False, timeout=10)
    try:
        return c.get(path, headers=headers or [])
    finally:
        c.close()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>h3</title><link rel=stylesheet href=/style.css>\n")
    (root / "style.css").write_text("body { color: #333 }\n" * 200)
    (root / "big.bin").write_bytes(os.urandom(2 << 20))
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "streaming.py").write_text(STREAMING_APP)
    return root


@pytest.fixture
def serve(certs: Certs, site: Path, tmp_path: Path) -> Iterator[object]:
    started: list[ServerProcess] = []

    def factory(*args: str) -> ServerProcess:
        s = start(certs, "--expose-worker", "--app-dir", str(tmp_path / "apps"), "--mount",
                  "/stream=streaming:app", *args, site=site)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(s.proc.pid, signal.SIGKILL)


def _comparable(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    drop = {b"date", b"x-pushserve-worker", b"alt-svc", b"server-timing"}
    return {k: v for k, v in headers if k not in drop}


def test_the_site_over_h3_is_the_site_over_h2(server: ServerProcess) -> None:
    with h3(server) as client:
        for path, headers in [("/", []), ("/css/site.css", []), ("/no/such/page", []),
                              ("/css/site.css", [(b"range", b"bytes=10-19")])]:
            over_h3 = client.get(path, headers=list(headers))
            over_h2 = h2_get(server, path, list(headers))
            assert over_h3.status == over_h2.status, path
            assert bytes(over_h3.body) == bytes(over_h2.body), path
            assert _comparable(over_h3.headers) == _comparable(over_h2.headers), path
        # Compressed: the same coding; the bytes may differ (a stronger level replaces the first
        # body once it is made), what they decode to may not.
        gz = [(b"accept-encoding", b"gzip")]
        over_h3, over_h2 = client.get("/css/site.css", headers=gz), h2_get(server, "/css/site.css", gz)
        assert over_h3.header(b"content-encoding") == over_h2.header(b"content-encoding") == b"gzip"
        assert gzip.decompress(bytes(over_h3.body)) == gzip.decompress(bytes(over_h2.body))
        etag = client.get("/css/site.css").header(b"etag")
        assert etag is not None
        assert client.get("/css/site.css", headers=[(b"if-none-match", etag)]).status == 304
        head = client.request("/css/site.css", method="HEAD")
        client.wait(lambda: client.replies[head].done)
        assert client.replies[head].status == 200 and not client.replies[head].body


def test_alt_svc_names_the_port(server: ServerProcess) -> None:
    assert "(h3, h2, http/1.1;" in server.output
    expected = f'h3=":{server.port}"; ma=86400'.encode()
    assert h2_get(server, "/").header(b"alt-svc") == expected
    with socket.create_connection((server.host, server.port), timeout=5) as raw, \
            server.certs.client_context(["http/1.1"]).wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert b"\r\nalt-svc: " + expected + b"\r\n" in data.split(b"\r\n\r\n")[0] + b"\r\n"
    with h3(server) as client:
        assert client.get("/").header(b"alt-svc") == expected  # keeps the alternative fresh


def test_an_asgi_mount_answers_over_h3(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve()
    with h3(srv) as client:
        reply = client.get("/stream/quick")
    assert reply.status == 200 and reply.header(b"x-http-version") == b"3" and bytes(reply.body) == b"done\n"


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


# Shared objects a worker maps once it has loaded HTTP/3: aioquic's own, QPACK's, and
# cryptography's Rust extension (aioquic's TLS); a worker serving TCP only maps none of them.
H3_OBJECTS = ("aioquic/_buffer", "pylsqpack/_binding", "cryptography/hazmat/bindings/_rust")


def test_http3_is_loaded_by_the_first_datagram_which_is_answered(serve) -> None:  # type: ignore[no-untyped-def]
    """A worker loads aioquic when its first QUIC datagram arrives, not before (it is ~16 MiB:
    server/quic_start.py), and answers that very datagram: the client's first flight is sent
    once and never again, and the server's answer to it still comes."""
    srv = serve()
    over_h2 = h2_get(srv, "/")
    worker = int(over_h2.header(b"x-pushserve-worker") or b"0")
    assert over_h2.header(b"alt-svc") == f'h3=":{srv.port}"; ma=86400'.encode()  # advertised from the start
    mapped = _mapped(worker)
    assert not [name for name in H3_OBJECTS if name in mapped]
    client = h3(srv, connect=False)
    try:
        client.datagrams = []
        client.quic.connect(client.addr, time.monotonic())
        client.transmit()  # the first flight (the Initial with the ClientHello) ...
        client.acknowledging = False  # ... once: no retransmission, whatever the timers say
        client.wait(lambda: client.received > 0)
        client.acknowledging = True
        for data in client.datagrams:  # what the server answered to that flight, handled now
            client.quic.receive_datagram(data, client.addr, time.monotonic())
        client.wait(lambda: client.quic._handshake_complete or client.terminated is not None)
        reply = client.get("/")
    finally:
        client.close()
    assert reply.status == 200 and bytes(reply.body) == bytes(over_h2.body)
    assert reply.header(b"x-pushserve-worker") == str(worker).encode()
    mapped = _mapped(worker)
    assert all(name in mapped for name in H3_OBJECTS), H3_OBJECTS
    assert srv.wait_for(r"h3: loaded on the first datagram \((\d+) ms\)")


def test_a_certificate_quic_cannot_load_leaves_tcp_served_without_alt_svc(  # type: ignore[no-untyped-def]
        serve, certs: Certs, tmp_path: Path) -> None:
    """A pair OpenSSL serves but aioquic cannot read (key and certificate in one file, the key
    first after a blank line: aioquic looks for the certificates before the key) fails when the
    first datagram loads HTTP/3: one error line, and that worker serves TCP only, no longer
    advertising HTTP/3."""
    pem = tmp_path / "key-first.pem"
    pem.write_bytes(b"\n" + (certs.cert_dir / "localhost-key.pem").read_bytes()
                    + (certs.cert_dir / "localhost.pem").read_bytes())
    srv = serve("--cert", str(pem))
    assert h2_get(srv, "/").header(b"alt-svc") is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(lone_initial(), ("127.0.0.1", srv.port))
    srv.wait_for(r"h3: cannot serve HTTP/3 \(IndexError: .*\); this worker serves TCP only")
    reply = h2_get(srv, "/")
    assert reply.status == 200 and reply.header(b"alt-svc") is None


def test_no_http3_serves_tcp_only(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve("--no-http3")
    assert "(h2, http/1.1;" in srv.output
    assert h2_get(srv, "/").header(b"alt-svc") is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", srv.port))  # nobody holds the UDP port


def _udp_port_with_tcp_free(taken: socket.socket) -> int:
    """Bind ``taken`` to a UDP port whose TCP port is free too (on a shared machine another
    process may hold the TCP port of a random UDP one)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        with contextlib.suppress(OSError):
            taken.bind(("127.0.0.1", port))
            return port
    raise AssertionError("no port free on both TCP and UDP")


def test_a_busy_udp_port_is_one_warning_and_tcp_is_served(certs: Certs, site: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        port = _udp_port_with_tcp_free(taken)
        srv = start(certs, "--port", str(port), site=site)
        try:
            warnings = [line for line in srv.lines if "HTTP/3" in line]
            assert len(warnings) == 1
            assert f"HTTP/3 is off: UDP port {port} on 127.0.0.1 is already in use" in warnings[0]
            assert "(h2, http/1.1;" in srv.output
            reply = h2_get(srv, "/")
            assert reply.status == 200 and reply.header(b"alt-svc") is None
        finally:
            srv.stop()


# -- workers and restarts -----------------------------------------------------------------------------

def test_h3_connections_spread_over_the_workers_and_each_stays_on_its_own(serve) -> None:  # type: ignore[no-untyped-def]
    """Each worker reads its slot's UDP socket, the kernel hashes new clients over them; every
    request of a connection is answered by the worker that took it (the connection's own
    socket).  16 connections all on one of two workers would happen once in 30,000 runs."""
    srv = serve("--workers", "2", "--no-access-log")
    seen = set()
    for _ in range(16):
        with h3(srv) as client:
            first = client.get("/style.css").header(b"x-pushserve-worker")
            assert {client.get(path).header(b"x-pushserve-worker") for path in ("/", "/style.css")} == {first}
            seen.add(first)
    assert len(seen) == 2


def test_a_rolling_restart_finishes_the_open_h3_streams_then_closes(serve) -> None:  # type: ignore[no-untyped-def]
    """The old worker keeps its connections' own sockets while it drains, so their packets keep
    reaching it after its successor reads the slot socket: the streaming response in flight (a
    megabyte: it needs the client's acknowledgements to go on) ends whole, then the connection
    closes with H3_NO_ERROR once its last stream is acknowledged, not at the graceful timeout;
    new connections go to the new worker."""
    srv = serve("--workers", "1")
    with h3(srv, timeout=30) as client:
        old = int(client.get("/style.css").header(b"x-pushserve-worker") or 0)
        sid = client.request("/stream/")
        reply = client.replies[sid]
        client.wait(lambda: b"chunk 02" in reply.body)
        mark = len(srv.lines)
        srv.proc.send_signal(signal.SIGHUP)
        client.wait(lambda: reply.done)
        assert reply.status == 200 and bytes(reply.body).endswith(b"chunk 19\ndone\n") and reply.reset is None
        srv.wait_for(r"reloaded: workers", start=mark)
        client.wait(lambda: client.terminated is not None)
        assert client.terminated is not None and client.terminated.error_code == ErrorCode.H3_NO_ERROR
        assert client.terminated.reason_phrase == ""  # not "graceful timeout"
    with h3(srv) as fresh:
        new = int(fresh.get("/style.css").header(b"x-pushserve-worker") or 0)
    assert new and new != old


def test_a_crashed_workers_h3_connection_is_reset_statelessly(serve) -> None:  # type: ignore[no-untyped-def]
    """A worker killed with SIGKILL takes its connections' sockets along: the client's next
    packets fall back to the port's group, the replacement worker does not know their
    connection ID and answers with a Stateless Reset, so the client learns at once (instead of
    retransmitting until its idle timeout).  A new connection is served."""
    srv = serve("--workers", "1")
    with h3(srv) as client:
        victim = int(client.get("/style.css").header(b"x-pushserve-worker") or 0)
        mark = len(srv.lines)
        os.kill(victim, signal.SIGKILL)
        srv.wait_for(r"worker \d+ \(slot 0\) ready", start=mark)
        token = client.reset_token()
        client.datagrams = []
        client.request("/style.css")
        client.wait(lambda: any(d.endswith(token) for d in client.datagrams or []))
    with h3(srv) as fresh:
        reply = fresh.get("/style.css")
    assert reply.status == 200 and int(reply.header(b"x-pushserve-worker") or 0) != victim


def test_dev_mode_live_reload_over_h3(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The live-reload event stream (server-sent events that never end by themselves) over
    HTTP/3: the hello, then a change event when a stylesheet changes."""
    site = tmp_path / "dev-site"
    shutil.copytree(SITE_EXAMPLE, site)
    srv = make_server("--dev", site=site)
    with h3(srv, timeout=30) as client:
        sid = client.request("/_pushserve/events")
        reply = client.replies[sid]

        def events() -> list[tuple[str, str]]:
            found = []
            for block in bytes(reply.body).split(b"\n\n"):
                fields = dict(line.split(": ", 1) for line in block.decode().split("\n") if ": " in line
                              and not line.startswith(":"))
                if "event" in fields:
                    found.append((fields["event"], fields.get("data", "")))
            return found

        client.wait(lambda: any(e == "hello" for e, _ in events()))
        assert reply.status == 200 and (reply.header(b"content-type") or b"").startswith(b"text/event-stream")
        css = site / "css" / "site.css"
        css.write_text(css.read_text() + "\n/* changed */\n")
        client.wait(lambda: any(e == "change" and "/css/site.css" in d for e, d in events()))
        assert not reply.done


def test_hints_on_a_navigation_and_push_to_a_client_that_takes_it(server: ServerProcess) -> None:
    """The announcing rules of HTTP/2 over HTTP/3: a navigation of a client that takes no push
    gets a 103 with the page's preloads (and the same Link fields on the 200); aioquic's client,
    which sends MAX_PUSH_ID, is pushed them instead."""
    navigation = [(b"sec-fetch-dest", b"document"), (b"accept", b"text/html")]
    with h3(server) as client:
        page = client.get("/", headers=navigation)
        assert page.status == 200 and len(page.informational) == 1
        hints = [v for k, v in page.informational[0] if k == b"link"]
        assert b"</css/site.css>; rel=preload; as=style" in hints and set(hints) <= set(page.all(b"link"))
        asset = client.get("/css/site.css", headers=[(b"sec-fetch-dest", b"style")])
        assert asset.informational == []  # not a navigation
    with h3(server, push=True) as pushing:
        sid = pushing.request("/", headers=navigation)
        pushing.wait(lambda: pushing.replies[sid].done and bool(pushing.pushes)
                     and all(p.done for p in pushing.pushes.values()))
        page = pushing.replies[sid]
        assert page.status == 200 and page.informational == []
        pushed = {p.path: p for p in pushing.pushes.values()}
        assert b"/css/site.css" in pushed
        css = pushed[b"/css/site.css"]
        assert css.status == 200 and bytes(css.body) == (SITE_EXAMPLE / "css" / "site.css").read_bytes()
