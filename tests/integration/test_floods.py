"""HTTP/2 floods and hostile clients against a real pushserve process: each test plays the attack on
one connection and checks the defence (the GOAWAY code, the reset, the connection still usable)
and that a polite client on another connection keeps getting correct answers.  Counts are the
smallest that show the defence; the large figures are in benchmarks/soak.py and the notes."""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.h2client import H2Client
from tests.support.h2raw import E, F, RawH2, S, T, frame, settings_payload, u32
from tests.support.serverproc import ServerProcess

CSS = b"p { color: green }\n"


@pytest.fixture
def srv(make_server: Callable[..., ServerProcess], tmp_path: Path) -> Iterator[ServerProcess]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>t</title><p>hello</p>\n")
    (site / "style.css").write_bytes(CSS)
    yield make_server("--no-access-log", site=site)


def polite(srv: ServerProcess) -> float:
    """One correct answer on a new connection; returns how long it took (for the notes)."""
    started = time.perf_counter()
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=False, timeout=10)
    try:
        reply = c.get("/style.css")
        assert reply.status == 200 and bytes(reply.body) == CSS
    finally:
        c.close()
    return time.perf_counter() - started


def raw(srv: ServerProcess, **kw: object) -> RawH2:
    return RawH2(srv.host, srv.port, srv.certs.client_context(), timeout=10, **kw)  # type: ignore[arg-type]


def blast(c: RawH2, data: bytes) -> None:
    """Send as much as the server takes; it may close the connection on us midway."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
        c.send(data)


def test_reset_flood_of_data_on_closed_streams_ends_in_enhance_your_calm(srv: ServerProcess) -> None:
    """CVE-2019-9514 family: DATA on streams the client itself reset, while it reads nothing.  Each
    frame would be answered with another RST_STREAM; the control budget ends it instead."""
    c = raw(srv)
    opened = []
    for _ in range(8):
        sid = c.new_stream()
        c.send_headers(sid, c.request_headers("/style.css", "POST"), end_stream=False)
        c.send_frame(T.RST_STREAM, 0, sid, u32(E.CANCEL))
        opened.append(sid)
    junk = b"".join(frame(T.DATA, 0, opened[i % len(opened)], b"x") for i in range(4000))
    blast(c, junk)
    assert polite(srv) >= 0  # served while the flood is being chewed through
    c.expect_goaway(E.ENHANCE_YOUR_CALM, allow_close=True)
    assert polite(srv) >= 0


def test_settings_flood_is_cut_per_frame_not_per_read(srv: ServerProcess) -> None:
    """The budget is checked on every frame: at most about the budget's worth of ACKs come back,
    however many SETTINGS arrive in one read."""
    c = raw(srv)
    blast(c, frame(T.SETTINGS, 0, 0, settings_payload([(S.INITIAL_WINDOW_SIZE, 65535)])) * 5000)
    acks = 0
    goaway = None
    with contextlib.suppress(Exception):
        while goaway is None:
            f = c.read_frame()
            if f.type == T.SETTINGS and f.flags & F.ACK:
                acks += 1
            elif f.type == T.GOAWAY:
                goaway = f
    assert goaway is not None and goaway.error_code == E.ENHANCE_YOUR_CALM
    assert acks <= 1100, acks  # the budget (1000 + 100 a stream), not the 5000 sent
    assert polite(srv) >= 0


def test_streams_over_the_limit_are_refused_without_losing_the_connection(srv: ServerProcess) -> None:
    """A client that opens ~100 streams more than MAX_CONCURRENT_STREAMS gets REFUSED_STREAM for
    those: the server's doing, not a rapid reset by the client."""
    c = raw(srv)
    limit = c.server_settings[S.MAX_CONCURRENT_STREAMS]
    ids = [c.new_stream() for _ in range(limit + 100)]
    # In one write (one TLS record), so the server sees them all before it answers any: a stream
    # answered (405) and closed early would free its place for one of the last 100, which a
    # loaded machine's scheduling would otherwise decide.
    c.send(b"".join(c.headers_frame(sid, c.request_headers("/style.css", "POST"), end_stream=False)
                    for sid in ids))
    refused = 0
    while refused < 100:
        f = c.read_frame()
        assert f.type != T.GOAWAY, f.describe()
        if f.type == T.RST_STREAM and f.stream_id in ids[:limit]:  # a 405 answered, its body not read
            assert f.error_code == E.NO_ERROR, f.describe()
        elif f.type == T.RST_STREAM:
            assert f.error_code == E.REFUSED_STREAM, f.describe()
            refused += 1
    for sid in ids[:limit]:  # the ones it took: finish them, the connection goes on
        c.send_frame(T.DATA, F.END_STREAM, sid, b"")
    c.assert_usable("/style.css")
    assert polite(srv) >= 0


def test_upload_after_an_early_405_is_reset_with_no_error(srv: ServerProcess) -> None:
    """An upload to a static file is answered 405 at once; the stream is then reset (NO_ERROR,
    RFC 9113 §8.1) so the client stops sending, instead of being read to the end."""
    c = raw(srv)
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/style.css", "PUT", [(b"content-length", b"50000000")]),
                   end_stream=False)
    c.send_frame(T.DATA, 0, sid, b"x" * 16384)
    reply = c.read_response(sid, window_updates=False)
    assert dict(reply.headers)[b":status"] == b"405"
    rst = c.expect_rst(sid, E.NO_ERROR)
    assert rst.stream_id == sid
    c.send_frame(T.DATA, 0, sid, b"x" * 16384)  # crossing the reset: dropped, the connection lives
    c.assert_usable("/style.css")
    assert polite(srv) >= 0


def test_rapid_reset_ends_in_enhance_your_calm(srv: ServerProcess) -> None:
    """CVE-2023-44487: HEADERS then RST_STREAM, over and over."""
    c = raw(srv)
    burst = b""
    for _ in range(3000):
        sid = c.new_stream()
        burst += c.headers_frame(sid, c.request_headers("/style.css")) + frame(T.RST_STREAM, 0, sid, u32(E.CANCEL))
    blast(c, burst)
    c.expect_goaway(E.ENHANCE_YOUR_CALM, allow_close=True)
    assert polite(srv) >= 0


def test_ping_flood_with_a_client_that_never_reads(srv: ServerProcess) -> None:
    c = raw(srv)
    blast(c, frame(T.PING, 0, 0, b"12345678") * 20000)
    c.expect_goaway(E.ENHANCE_YOUR_CALM, allow_close=True)
    assert polite(srv) >= 0


def test_continuation_flood_ends_the_connection(srv: ServerProcess) -> None:
    c = raw(srv)
    sid = c.new_stream()
    block = c.block(c.request_headers("/style.css"))
    blast(c, frame(T.HEADERS, F.END_STREAM, sid, block[:1])
          + b"".join(frame(T.CONTINUATION, 0, sid, b"\x40\x01a\x01b") for _ in range(20000)))
    goaway = c.expect_goaway(E.ENHANCE_YOUR_CALM, allow_close=True)
    assert goaway is None or goaway.error_code == E.ENHANCE_YOUR_CALM
    assert polite(srv) >= 0
