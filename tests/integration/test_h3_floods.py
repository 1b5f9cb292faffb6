"""HTTP/3 floods and hostile clients against a real pushserve process, each built with aioquic's
client: a flood of Initials, a stream flood, a QPACK bomb, a rapid-reset loop, a client that
never acknowledges, and the anti-amplification limit.  Each plays the attack on its own
connection and checks the defence, and that a polite client on another connection is served.
Counts are the smallest that show the defence."""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aioquic.h3.connection import ErrorCode
from aioquic.quic.packet import QuicErrorCode

from pushserve.protocol.h3.packets import parse
from tests.support.h2client import H2Client
from tests.support.h3attacks import huge_headers_frame, is_retry, lone_initial, probe_until_reset, qpack_bomb
from tests.support.h3client import H3Client
from tests.support.serverproc import Certs, ServerProcess, start

CSS = b"p { color: green }\n" * 10
BIG = 2 << 20


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("h3floods") / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>t</title><p>hello</p>\n")
    (site / "style.css").write_bytes(CSS)
    (site / "big.bin").write_bytes(os.urandom(BIG))
    return site


@pytest.fixture(scope="module")
def srv(certs: Certs, site: Path) -> Iterator[ServerProcess]:
    """One server for the attacks that need no option of their own: each leaves it serving (the
    polite client checks), so the next one starts from a server that has just been attacked."""
    server = start(certs, "--no-access-log", site=site)
    yield server
    server.stop()


def h3(srv: ServerProcess, **kw: object) -> H3Client:
    return H3Client("127.0.0.1", srv.port, ca_file=srv.certs.ca_file, **kw)  # type: ignore[arg-type]


def polite(srv: ServerProcess, path: str = "/style.css") -> None:
    """A correct answer on a new connection."""
    with h3(srv) as c:
        reply = c.get(path)
        assert reply.status == 200 and len(reply.body) == (BIG if path == "/big.bin" else len(CSS))


def test_an_initial_flood_is_answered_with_retries_and_a_polite_client_connects(
        make_server: Callable[..., ServerProcess], site: Path) -> None:
    """Past half of --max-handshakes connections in their handshake, an Initial without a token
    gets a Retry and no state: forged addresses cost the server one small packet each.  A real
    client returns the token and is served."""
    srv = make_server("--no-access-log", "--max-handshakes", "8", site=site)
    # The worker loads HTTP/3 on its first datagram (server/quic_start.py): this one, so that the
    # flood meets the listener rather than queueing in the socket while aioquic is imported.
    polite(srv)
    flood = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    try:
        for s in flood:
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        for i in range(80):
            flood[i % len(flood)].sendto(lone_initial(), ("127.0.0.1", srv.port))
        retries = 0
        answers = 0
        deadline = time.monotonic() + 10
        while retries < 60 and time.monotonic() < deadline:  # the answers, as they come
            for s in select.select(flood, [], [], 0.2)[0]:
                while True:
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        break
                    answers += 1
                    retries += is_retry(data)
        polite(srv)
        srv.wait_for(r"h3: \d+ Initials answered with a Retry")
    finally:
        for s in flood:
            s.close()
    print(f"{retries} Retry packets among {answers} answers to 80 Initials")
    assert retries >= 60, (retries, answers)


def test_a_stream_flood_past_the_limit_ends_that_connection(srv: ServerProcess) -> None:
    """The server allows 128 concurrent request streams (MAX_STREAMS); a client that opens more
    (it ignores the limit it was given) is closed with STREAM_LIMIT_ERROR."""
    with h3(srv) as c:
        c.quic._remote_max_streams_bidi = 10_000  # pretend the server allowed it
        for _ in range(300):
            c.request("/style.css")
        c.wait(lambda: c.terminated is not None)
        assert c.terminated is not None and c.terminated.error_code == QuicErrorCode.STREAM_LIMIT_ERROR
        polite(srv)


def test_128_concurrent_requests_are_all_answered(srv: ServerProcess) -> None:
    with h3(srv) as c:
        sids = [c.request("/style.css") for _ in range(128)]
        c.wait(lambda: all(c.replies[s].done for s in sids))
        assert {c.replies[s].status for s in sids} == {200}


def test_a_qpack_bomb_is_refused_before_it_is_decoded(srv: ServerProcess) -> None:
    with h3(srv) as c:
        qpack_bomb(c.quic, c.h3, 60_000)  # 60 KB of references to a 4 KB entry: 240 MB decoded
        c.transmit()
        c.wait(lambda: c.terminated is not None)
        assert c.terminated is not None and c.terminated.error_code == ErrorCode.H3_EXCESSIVE_LOAD
    srv.wait_for(r"h3: more than 128 field lines in a header section")
    polite(srv)


def test_rapid_reset_ends_the_connection(srv: ServerProcess) -> None:
    """HEADERS and RESET_STREAM in one packet, over and over (CVE-2023-44487 over HTTP/3): the
    requests never reach a handler, and the reset budget closes the connection."""
    with h3(srv) as c:
        for _ in range(150):
            sid = c.quic.get_next_available_stream_id()
            c.h3.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
                                    (b":path", b"/style.css")], end_stream=True)
            c.quic.stop_stream(sid, ErrorCode.H3_REQUEST_CANCELLED)
            c.quic.reset_stream(sid, ErrorCode.H3_REQUEST_CANCELLED)
            c.transmit()
            c.poll(0)
            if c.terminated is not None:
                break
        c.wait(lambda: c.terminated is not None)
        assert c.terminated is not None and c.terminated.error_code == ErrorCode.H3_EXCESSIVE_LOAD
    srv.wait_for(r"h3: rapid reset")
    polite(srv)


def test_a_client_that_never_acknowledges_holds_little_and_is_dropped(
        make_server: Callable[..., ServerProcess], site: Path) -> None:
    """It asks for 2 MiB and then falls silent: the server sends what its congestion window
    allows (far less than the file), a polite client downloads the file meanwhile, and the
    silent connection is forgotten at the idle timeout (a probe then gets a Stateless Reset)."""
    srv = make_server("--no-access-log", "--idle-timeout", "2", site=site)
    silent = h3(srv)
    try:
        silent.request("/big.bin")
        silent.acknowledging = False  # from now on it sends nothing at all
        polite(srv, "/big.bin")
        seen = probe_until_reset(silent.sock, silent.addr, silent.quic._peer_cid.cid)
        sent_unacknowledged = silent.received_bytes + sum(len(d) for d in seen[:-1])
        print(f"sent to the silent client: {sent_unacknowledged} bytes of a {BIG}-byte file")
        assert sent_unacknowledged < BIG // 8
    finally:
        silent.sock.close()
    polite(srv)


def test_an_unvalidated_client_gets_at_most_three_times_what_it_sent(
        make_server: Callable[..., ServerProcess], site: Path) -> None:
    """RFC 9000 §8.1: one Initial, and the server's certificate flight, retransmissions included,
    stays within three times the bytes received until the address is validated (never, here:
    the client is silent).  The half-open connection ends at the handshake timeout."""
    srv = make_server("--no-access-log", "--header-timeout", "1", site=site)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        initial = lone_initial()
        s.sendto(initial, ("127.0.0.1", srv.port))
        s.settimeout(10)
        first = s.recv(65536)
        server_cid = parse(first)
        assert server_cid is not None and server_cid.long
        started = time.monotonic()
        seen = [first, *probe_until_reset(s, ("127.0.0.1", srv.port), server_cid.scid)]
        probes = (len(seen) + int((time.monotonic() - started) / 0.2) + 1) * 33
    flight = sum(len(d) for d in seen[:-1])
    print(f"server flight {flight} bytes for {len(initial)} + {probes} bytes received")
    assert flight <= 3 * (len(initial) + probes), (flight, len(initial), probes)
    polite(srv)


def test_a_request_head_that_never_ends_is_cut_at_the_header_timeout(
        make_server: Callable[..., ServerProcess], site: Path) -> None:
    """Slowloris over HTTP/3: a HEADERS frame begun and never finished.  The connection is
    closed at --header-timeout; a polite client meanwhile is served."""
    srv = make_server("--no-access-log", "--header-timeout", "1", site=site)
    with h3(srv) as slow:
        huge_headers_frame(slow.quic, 200)  # announces 200 bytes, sends 100
        slow.transmit()
        polite(srv)
        slow.wait(lambda: slow.terminated is not None, timeout=20)
        assert slow.terminated is not None and slow.terminated.reason_phrase == "request head timeout"


def test_connections_over_the_limit_are_refused_and_tcp_counts_too(
        make_server: Callable[..., ServerProcess], site: Path) -> None:
    """--max-connections counts a worker's TCP and QUIC connections together; a QUIC connection
    over the limit gets CONNECTION_REFUSED in its first Initial (a browser then uses TCP).  Once
    one of them ends, a new one is taken."""
    srv = make_server("--no-access-log", "--max-connections", "2", site=site)
    tcp = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=False, timeout=30)
    try:
        assert tcp.get("/style.css").status == 200
        with h3(srv) as quic:
            assert quic.get("/style.css").status == 200
            with pytest.raises(ConnectionError, match="0x2"):
                h3(srv)  # the third: one TCP, one QUIC are open
    finally:
        tcp.close()
    srv.wait_for(r"turned away 1 connection")
    for _ in range(50):  # the server hears of the two closes in its own time: until it has
        try:
            polite(srv)
            break
        except ConnectionError:
            continue
    else:
        raise AssertionError("no room again after both connections closed")
