"""The HTTP/2 core as strict as the library it replaced (issue #21), in memory: frames on a closed
stream by the way it closed (RFC 9113 §5.1), WINDOW_UPDATE of 0 in any state (§6.9), a
content-length the DATA does not match (§8.1.1), and every frame of a read judged before any of
its requests reaches the layer above.  tests/integration/test_h2_conformance.py plays the same
against a running server."""

from __future__ import annotations

import pytest
from hyperframe.frame import Frame, GoAwayFrame, PingFrame, RstStreamFrame

from pushserve.protocol.events import BodyReceived, Event, RequestReceived, StreamReset
from pushserve.protocol.h2.closed import GENERATION
from tests.unit.protocol.test_h2_core import parse_frames, raw_frame, raw_server, receive_all, req_headers, terminated

DATA, HEADERS, RST_STREAM, PING, WINDOW_UPDATE = 0x0, 0x1, 0x3, 0x6, 0x8
END_STREAM, END_HEADERS = 0x1, 0x4
PROTOCOL_ERROR, STREAM_CLOSED, CANCEL = 0x1, 0x5, 0x8


class Client:
    def __init__(self) -> None:
        self.server, self.encoder = raw_server()
        self.next_sid = 1

    def headers(self, sid: int, path: bytes = b"/", *, end: bool = True, method: bytes = b"GET",
                extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
        self.next_sid = max(self.next_sid, sid + 2)
        block = self.encoder.encode(req_headers(path, method, extra))
        return raw_frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, block)

    def send(self, data: bytes) -> list[Event]:
        return receive_all(self.server, data)

    def read(self) -> list[Frame]:
        return parse_frames(self.server.data_to_send())

    def answer(self, sid: int) -> None:
        self.server.send_response(sid, 200, [], b"ok")

    def completed(self, path: bytes = b"/") -> int:
        """A request answered in full: both sides sent END_STREAM."""
        sid = self.next_sid
        (req,) = self.send(self.headers(sid, path))
        assert isinstance(req, RequestReceived)
        self.answer(sid)
        self.read()
        return sid


def resets(frames: list[Frame]) -> list[tuple[int, int]]:
    return [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)]


def goaways(frames: list[Frame]) -> list[int]:
    return [f.error_code for f in frames if isinstance(f, GoAwayFrame)]


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


# -- §5.1 closed: by the way the stream closed --------------------------------------------------


def test_headers_on_a_stream_both_sides_ended_are_a_connection_error() -> None:
    c = Client()
    sid = c.completed()
    assert terminated(c.send(c.headers(sid))).error_code == STREAM_CLOSED
    assert goaways(c.read()) == [STREAM_CLOSED]


def test_data_on_a_stream_both_sides_ended_is_a_stream_error() -> None:
    """§6.1: DATA on a stream not open MUST be a stream error STREAM_CLOSED (as h2 answered)."""
    c = Client()
    sid = c.completed()
    assert c.send(raw_frame(DATA, END_STREAM, sid, b"late")) == []
    assert resets(c.read()) == [(sid, STREAM_CLOSED)]
    assert not c.server.closing


@pytest.mark.parametrize("late", ["HEADERS", "DATA"])
def test_frames_after_the_peers_reset_are_a_stream_error(late: str) -> None:
    c = Client()
    sid = 1
    c.send(c.headers(sid, method=b"POST", end=False))
    assert c.send(raw_frame(RST_STREAM, 0, sid, u32(CANCEL))) == [StreamReset(sid, CANCEL)]
    frame = c.headers(sid, end=True) if late == "HEADERS" else raw_frame(DATA, END_STREAM, sid, b"late")
    assert c.send(frame) == []
    assert resets(c.read()) == [(sid, STREAM_CLOSED)]
    assert not c.server.closing


@pytest.mark.parametrize("late", ["HEADERS", "DATA", "WINDOW_UPDATE 0"])
def test_frames_after_our_reset_are_ignored(late: str) -> None:
    c = Client()
    sid = 1
    c.send(c.headers(sid, method=b"POST", end=False))
    c.server.reset_stream(sid)
    assert resets(c.read()) == [(sid, CANCEL)]
    frame = {"HEADERS": c.headers(sid), "DATA": raw_frame(DATA, 0, sid, b"crossed"),
             "WINDOW_UPDATE 0": raw_frame(WINDOW_UPDATE, 0, sid, u32(0))}[late]
    assert c.send(frame) == []
    assert c.read() == []
    assert not c.server.closing


def test_frames_on_a_stream_closed_long_ago() -> None:
    """Once forgotten, a closed stream's DATA is a stream error (it may be a late upload
    frame: never worth the connection); its HEADERS is a new stream id below the last one."""
    c = Client()
    first = c.completed()
    for _ in range(2 * GENERATION):
        c.completed()
    assert c.send(raw_frame(DATA, END_STREAM, first, b"late")) == []
    assert resets(c.read()) == [(first, STREAM_CLOSED)]
    assert terminated(c.send(c.headers(first + 2))).error_code == PROTOCOL_ERROR


# -- §6.9 WINDOW_UPDATE of 0 --------------------------------------------------------------------


def test_window_update_of_zero_in_the_requests_read_resets_it_before_it_surfaces() -> None:
    c = Client()
    events = c.send(c.headers(1, b"/css/site.css") + raw_frame(WINDOW_UPDATE, 0, 1, u32(0)))
    assert events == []
    assert resets(c.read()) == [(1, PROTOCOL_ERROR)]


def test_window_update_of_zero_after_the_response_is_still_an_error() -> None:
    """The response may well be out before the frame arrives (it came in a later read): the
    frame is answered all the same, on the closed stream."""
    c = Client()
    sid = c.completed()
    assert c.send(raw_frame(WINDOW_UPDATE, 0, sid, u32(0))) == []
    assert resets(c.read()) == [(sid, PROTOCOL_ERROR)]
    assert c.send(raw_frame(WINDOW_UPDATE, 0, sid, u32(0))) == []  # an answer, not a reset: still closed
    assert resets(c.read()) == [(sid, PROTOCOL_ERROR)]
    assert terminated(c.send(c.headers(sid))).error_code == STREAM_CLOSED
    assert not any(isinstance(f, RstStreamFrame) for f in c.read())


def test_window_update_of_zero_on_an_idle_stream_or_the_connection() -> None:
    c = Client()
    assert terminated(c.send(raw_frame(WINDOW_UPDATE, 0, 5, u32(0)))).error_code == PROTOCOL_ERROR
    c = Client()
    assert terminated(c.send(raw_frame(WINDOW_UPDATE, 0, 0, u32(0)))).error_code == PROTOCOL_ERROR


# -- §8.1.1 content-length against the DATA -----------------------------------------------------


@pytest.mark.parametrize("bodies", [[b"test"], [b"t", b"e"], [b"", b""]], ids=["long", "long-in-two", "short"])
def test_content_length_mismatch_in_the_requests_read_never_surfaces(bodies: list[bytes]) -> None:
    c = Client()
    declared = b"1" if bodies[0] else b"3"
    data = c.headers(1, b"/css/site.css", method=b"POST", end=False, extra=[(b"content-length", declared)])
    for n, body in enumerate(bodies, 1):
        data += raw_frame(DATA, END_STREAM if n == len(bodies) else 0, 1, body)
    assert c.send(data) == []
    assert resets(c.read()) == [(1, PROTOCOL_ERROR)]
    assert not c.server.closing


def test_content_length_mismatch_in_a_later_read_resets_the_surfaced_request() -> None:
    c = Client()
    (req,) = c.send(c.headers(1, method=b"POST", end=False, extra=[(b"content-length", b"1")]))
    assert isinstance(req, RequestReceived)
    assert c.send(raw_frame(DATA, END_STREAM, 1, b"test")) == [StreamReset(1, PROTOCOL_ERROR)]
    assert resets(c.read()) == [(1, PROTOCOL_ERROR)]


@pytest.mark.parametrize("value", [b"x", b"-1", b"1,2", b"1 2", b"9" * 19, b"", b"0x1", b"\xd9\xa1"])
def test_a_malformed_content_length_is_a_stream_error(value: bytes) -> None:
    """A fuzz finding of the h2-based core: it ended the whole connection (§8.1.1 asks for a
    stream error, and the connection serves the next request)."""
    c = Client()
    assert c.send(c.headers(1, method=b"POST", end=False, extra=[(b"content-length", value)])) == []
    assert resets(c.read()) == [(1, PROTOCOL_ERROR)]
    assert [type(e) for e in c.send(c.headers(3))] == [RequestReceived]


# -- a read is judged whole before its requests are answered ---------------------------------


def test_a_read_longer_than_a_slice_is_judged_whole_before_its_requests_surface() -> None:
    """The input is still processed 512 frames per call (``resume`` for the rest), but what a
    read means reaches the layer above only once all of it is judged: a content-length mismatch
    600 frames after the request's HEADERS still withdraws the request."""
    c = Client()
    pings = raw_frame(PING, 0, 0, b"12345678") * 600
    data = (c.headers(1, b"/ok") + c.headers(3, b"/upload", method=b"POST", end=False,
                                                extra=[(b"content-length", b"1")])
            + pings + raw_frame(DATA, END_STREAM, 3, b"test"))
    assert c.server.receive_data(data) == []  # first slice: nothing surfaces yet
    assert c.server.pending_input
    events = c.server.resume()
    assert not c.server.pending_input
    assert [(type(e), e.stream_id) for e in events] == [(RequestReceived, 1)]
    frames = c.read()
    assert resets(frames) == [(3, PROTOCOL_ERROR)]
    assert sum(isinstance(f, PingFrame) for f in frames) == 600


def test_body_and_end_of_a_read_come_together() -> None:
    c = Client()
    data = c.headers(1, method=b"POST", end=False) + raw_frame(DATA, 0, 1, b"ab") + raw_frame(DATA, END_STREAM, 1, b"c")
    events = c.send(data)
    assert [type(e) for e in events] == [RequestReceived, BodyReceived, BodyReceived]
    assert isinstance(events[2], BodyReceived) and events[2].end_stream


def test_eof_in_the_middle_of_a_read_surfaces_nothing_of_it() -> None:
    server, enc = raw_server()
    block = enc.encode(req_headers())
    data = raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, block) + raw_frame(PING, 0, 0, b"12345678") * 600
    assert server.receive_data(data) == []
    events = server.receive_data(b"")
    assert terminated(events).error_code == 0
    assert [type(e) for e in events] == [type(terminated(events))]

