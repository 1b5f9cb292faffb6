"""H2Core driven by a real h2 client connection in memory (and by hand-made frames)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import h2.events as h2e
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.settings import SettingCodes, Settings
from hpack import Decoder, Encoder
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame

from pushserve.protocol.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    LocalProtocolError,
    RequestReceived,
    SizedBody,
    StreamDrained,
    StreamReset,
)
from pushserve.protocol.h2 import H2Core

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def req_headers(path: bytes = b"/", method: bytes = b"GET", extra: list[tuple[bytes, bytes]] | None = None,
                ) -> list[tuple[bytes, bytes]]:
    return [(b":method", method), (b":scheme", b"https"), (b":authority", b"example.test"),
            (b":path", path), *(extra or [])]


def receive_all(server: H2Core, data: bytes) -> list[Event]:
    """Feed ``data`` and process it to the end, slice by slice, as the connection does."""
    events = server.receive_data(data)
    while server.pending_input:
        events += server.resume()
    return events


class Pair:
    """A server core and an h2 client wired back to back in memory."""

    def __init__(self, *, enable_push: bool = True, client_validates: bool = True, **server_kw: int) -> None:
        self.server = H2Core(**server_kw)
        config = H2Configuration(client_side=True, header_encoding=None,
                                 validate_outbound_headers=client_validates,
                                 normalize_outbound_headers=client_validates)
        self.client = H2Connection(config=config)
        self.client.local_settings = Settings(
            client=True, initial_values={SettingCodes.ENABLE_PUSH: int(enable_push)},
        )
        self.server_events: list[Event] = []
        self.client_events: list[h2e.Event] = []
        self.server.initiate()
        self.client.initiate_connection()
        self.pump()

    def pump(self, limit: int = 256 * 1024) -> None:
        """Move bytes both ways until both sides are quiet."""
        while True:
            moved = False
            c2s = self.client.data_to_send()
            if c2s:
                moved = True
                self.server_events += receive_all(self.server, c2s)
            s2c = self.server.data_to_send(limit)
            if s2c:
                moved = True
                self.client_events += self.client.receive_data(s2c)
            if not moved:
                return

    def request(self, path: bytes = b"/", method: bytes = b"GET", *, end: bool = True,
                extra: list[tuple[bytes, bytes]] | None = None) -> int:
        sid: int = self.client.get_next_available_stream_id()
        self.client.send_headers(sid, req_headers(path, method, extra), end_stream=end)
        self.pump()
        return sid

    def take_server(self) -> list[Event]:
        events, self.server_events = self.server_events, []
        return events

    def take_client(self) -> list[h2e.Event]:
        events, self.client_events = self.client_events, []
        return events

    def body(self, sid: int) -> bytes:
        return b"".join(e.data for e in self.client_events
                        if isinstance(e, h2e.DataReceived) and e.stream_id == sid)

    def ack_all(self) -> None:
        """The client consumes everything it got so far (WINDOW_UPDATEs go out)."""
        for e in self.take_client():
            if isinstance(e, h2e.DataReceived) and e.flow_controlled_length:
                self.client.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            self.acked.append(e)

    acked: list[h2e.Event]

    def ended(self, sid: int, events: list[h2e.Event] | None = None) -> bool:
        return any(isinstance(e, h2e.StreamEnded) and e.stream_id == sid
                   for e in (self.client_events if events is None else events))


def parse_frames(data: bytes) -> list[Frame]:
    frames = []
    i = 0
    if data.startswith(PREFACE):
        i = len(PREFACE)
    while i < len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[i:i + 9]))
        frame.parse_body(memoryview(data[i + 9:i + 9 + length]))
        frames.append(frame)
        i += 9 + length
    return frames


def raw_frame(ftype: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream_id.to_bytes(4, "big")
            + payload)


def terminated(events: list[Event]) -> ConnectionTerminated:
    found = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert len(found) == 1, events
    return found[0]


def goaway_from_client(events: list[h2e.Event]) -> h2e.ConnectionTerminated:
    found = [e for e in events if isinstance(e, h2e.ConnectionTerminated)]
    assert found, events
    return found[-1]


# -- requests and responses -------------------------------------------------------------------


def test_simple_get() -> None:
    p = Pair()
    sid = p.request(b"/index.html?x=1", extra=[(b"accept", b"text/html"), (b"x-Mixed", b"v")])
    (req,) = p.take_server()
    assert req == RequestReceived(sid, b"GET", b"/index.html?x=1", b"example.test",
                                  [(b"accept", b"text/html"), (b"x-mixed", b"v")], "2", True)
    assert p.server.open_streams == 1
    p.server.send_response(sid, 200, [(b"content-type", b"text/plain"), (b"content-length", b"5")], b"hello")
    p.pump()
    resp = [e for e in p.client_events if isinstance(e, h2e.ResponseReceived)]
    assert resp[0].headers[0] == (b":status", b"200")
    assert (b"content-type", b"text/plain") in resp[0].headers
    assert p.body(sid) == b"hello"
    assert p.ended(sid)
    assert p.server.open_streams == 0
    assert not p.server.closing


def test_server_settings_and_connection_window() -> None:
    server = H2Core(max_concurrent_streams=77, initial_window_size=1 << 20)
    server.initiate()
    frames = parse_frames(server.data_to_send())
    settings = frames[0].settings  # type: ignore[attr-defined]
    assert settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 77
    assert settings[SettingCodes.INITIAL_WINDOW_SIZE] == 1 << 20
    assert settings[SettingCodes.MAX_HEADER_LIST_SIZE] == 65536
    assert SettingCodes.ENABLE_PUSH not in settings
    assert frames[1].stream_id == 0 and frames[1].window_increment == (1 << 20) - 65535  # type: ignore[attr-defined]


def test_fifty_concurrent_streams() -> None:
    p = Pair()
    p.client.increment_flow_control_window(1 << 24)  # 50 bodies exceed the 64 KB connection window
    sids = []
    for i in range(50):
        sid = p.client.get_next_available_stream_id()
        p.client.send_headers(sid, req_headers(b"/f%d" % i), end_stream=True)
        sids.append(sid)
    p.pump()
    reqs = p.take_server()
    assert [r.stream_id for r in reqs if isinstance(r, RequestReceived)] == sids
    assert len(reqs) == 50
    assert p.server.open_streams == 50
    for i, sid in enumerate(sids):
        p.server.send_response(sid, 200, [], b"body-%d-" % i * 300)
    p.pump()
    for i, sid in enumerate(sids):
        assert p.body(sid) == b"body-%d-" % i * 300
        assert p.ended(sid)
    assert p.server.open_streams == 0


def test_head_sends_no_body_and_closes_iterator() -> None:
    p = Pair()
    sid = p.request(b"/big", b"HEAD")
    p.take_server()
    closed = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            return self

        def __next__(self) -> bytes:
            raise AssertionError("a HEAD body must not be read")

        def close(self) -> None:
            closed.append(True)

    body = Body()
    p.server.send_response(sid, 200, [(b"content-length", b"1000")], body)
    p.pump()
    assert p.body(sid) == b""
    assert p.ended(sid)
    assert closed == [True]
    assert not any(isinstance(e, h2e.DataReceived) for e in p.client_events)
    assert p.server.open_streams == 0


def test_hop_by_hop_headers_are_dropped() -> None:
    p = Pair()
    sid = p.request()
    p.server.send_response(sid, 200, [(b"connection", b"close"), (b"transfer-encoding", b"chunked"),
                                      (b"x-ok", b"1")], b"ok")
    p.pump()
    (resp,) = [e for e in p.client_events if isinstance(e, h2e.ResponseReceived)]
    assert resp.headers == [(b":status", b"200"), (b"x-ok", b"1")]
    assert p.body(sid) == b"ok"


def test_early_hints_then_final_response() -> None:
    p = Pair()
    sid = p.request()
    link = (b"link", b"</style.css>; rel=preload; as=style")
    p.server.send_informational(sid, 103, [link])
    p.server.send_response(sid, 200, [], b"page")
    p.pump()
    kinds = [type(e) for e in p.client_events
             if isinstance(e, (h2e.InformationalResponseReceived, h2e.ResponseReceived))]
    assert kinds == [h2e.InformationalResponseReceived, h2e.ResponseReceived]
    info = next(e for e in p.client_events if isinstance(e, h2e.InformationalResponseReceived))
    assert info.headers == [(b":status", b"103"), link]
    assert p.body(sid) == b"page"


def test_streamed_response_and_drained() -> None:
    p = Pair()
    sid = p.request(b"/sse")
    p.server.send_response(sid, 200, [], None, end_stream=False)
    p.pump()
    p.server.send_data(sid, b"one")
    assert p.server.buffered(sid) == 3
    p.pump()
    assert p.server.buffered(sid) == 0
    assert p.server.next_events() == [StreamDrained(sid)]
    p.server.send_data(sid, b"two", end_stream=True)
    p.pump()
    assert p.body(sid) == b"onetwo"
    assert p.ended(sid)
    assert p.server.open_streams == 0


def test_request_body_paced_by_acknowledgement() -> None:
    p = Pair(initial_window_size=65535)
    sid = p.request(b"/upload", b"POST", end=False)
    p.take_server()
    payload = bytes(random.Random(1).randbytes(200_000))
    sent = 0
    received = bytearray()

    def push_client() -> None:
        nonlocal sent
        while sent < len(payload):
            n = min(p.client.local_flow_control_window(sid), p.client.max_outbound_frame_size,
                    len(payload) - sent)
            if n <= 0:
                return
            p.client.send_data(sid, payload[sent:sent + n], end_stream=sent + n == len(payload))
            sent += n

    push_client()
    p.pump()
    got = p.take_server()
    received += b"".join(e.data for e in got if isinstance(e, BodyReceived))
    assert len(received) == 65535  # the stream window, no more until acknowledged
    push_client()
    p.pump()
    assert p.take_server() == []  # still nothing: nothing was acknowledged
    while sent < len(payload) or not (got and isinstance(got[-1], BodyReceived) and got[-1].end_stream):
        p.server.acknowledge_received(sid, len(received))  # over-acknowledging is clamped
        p.pump()
        push_client()
        p.pump()
        got = p.take_server()
        received += b"".join(e.data for e in got if isinstance(e, BodyReceived))
    assert bytes(received) == payload


def test_unread_body_of_reset_stream_returns_connection_window() -> None:
    p = Pair(initial_window_size=65535)
    s1 = p.request(b"/a", b"POST", end=False)
    for _ in range(6):
        p.client.send_data(s1, b"x" * 10000)
    p.pump()
    p.client.reset_stream(s1, ErrorCodes.CANCEL)
    p.pump()
    assert isinstance(p.take_server()[-1], StreamReset)
    # Without the core acknowledging s1's unread 60000 bytes the connection window would be
    # stuck at 5535 bytes.
    s3 = p.request(b"/b", b"POST", end=False)
    for i in range(6):
        p.client.send_data(s3, b"y" * 10000, end_stream=i == 5)
    p.pump()
    body = b"".join(e.data for e in p.take_server() if isinstance(e, BodyReceived))
    assert body == b"y" * 60000


def test_trailers_are_accepted_and_ignored() -> None:
    p = Pair()
    sid = p.request(b"/up", b"POST", end=False)
    p.client.send_data(sid, b"abc")
    p.client.send_headers(sid, [(b"x-checksum", b"1")], end_stream=True)
    p.pump()
    events = p.take_server()
    assert events[1:] == [BodyReceived(sid, b"abc", False), BodyReceived(sid, b"", True)]


# -- outbound flow control and scheduling -----------------------------------------------------


def test_large_body_stalls_and_resumes_on_window_update() -> None:
    p = Pair()
    sid = p.request(b"/big")
    body = random.Random(5).randbytes(5 * 1024 * 1024)
    p.server.send_response(sid, 200, [], body)
    p.pump()
    assert len(p.body(sid)) == 65535  # client's default stream and connection window
    p.pump()
    assert len(p.body(sid)) == 65535  # stalled
    assert p.server.buffered(sid) == len(body) - 65535
    p.acked = []
    rounds = 0
    while not p.ended(sid, p.acked + p.client_events):
        p.ack_all()
        p.pump()
        rounds += 1
    got = b"".join(e.data for e in p.acked + p.client_events
                   if isinstance(e, h2e.DataReceived) and e.stream_id == sid)
    assert got == body
    assert rounds > 10  # it really went window by window
    assert p.server.buffered(sid) == 0


def test_resumes_when_client_raises_initial_window_size() -> None:
    p = Pair()
    p.client.increment_flow_control_window(1 << 30)  # only the stream window limits now
    sid = p.request(b"/big")
    body = random.Random(6).randbytes(5 * 1024 * 1024)
    p.server.send_response(sid, 200, [], body)
    p.pump()
    assert len(p.body(sid)) == 65535
    p.client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 8 * 1024 * 1024})
    p.pump()
    assert p.body(sid) == body
    assert p.ended(sid)


def test_iterator_body_is_pulled_lazily() -> None:
    p = Pair()
    sid = p.request(b"/file")
    pulls = 0
    closed = []

    def chunks() -> Iterator[bytes]:
        nonlocal pulls
        try:
            for i in range(64):
                pulls += 1
                yield bytes([i]) * 16384
        finally:
            closed.append(True)

    p.server.send_response(sid, 200, [], chunks())
    p.pump()
    # 65535 bytes of window take 4 chunks of 16384 (the 4th all but one byte): no 5th pull.
    assert pulls == 4
    assert p.server.buffered(sid) == 1
    p.acked = []
    while not p.ended(sid, p.acked + p.client_events):
        p.ack_all()
        p.pump()
    got = b"".join(e.data for e in p.acked + p.client_events
                   if isinstance(e, h2e.DataReceived) and e.stream_id == sid)
    assert got == b"".join(bytes([i]) * 16384 for i in range(64))
    assert pulls == 64 and closed == [True]


class CountedFile(SizedBody):
    """A sized body that records what it was asked for."""

    def __init__(self, size: int, fill: bytes) -> None:
        self.left = size
        self.fill = fill
        self.read_bytes = 0

    def read(self, n: int) -> bytes:
        n = min(n, self.left)
        self.left -= n
        self.read_bytes += n
        return self.fill * n


def test_sized_bodies_are_read_only_as_far_as_they_are_sent() -> None:
    """CVE-2019-9517: streams with huge windows whose peer never reads.  Whatever a write takes
    is read from the file in that write, and nothing more: no chunk waits per stream."""
    p = Pair()
    p.client.increment_flow_control_window((1 << 31) - 1 - 65535)
    p.client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: (1 << 31) - 1})
    p.pump()
    sids = [p.request(b"/file%d" % i) for i in range(50)]
    files = {sid: CountedFile(1 << 20, bytes([i])) for i, sid in enumerate(sids)}
    for sid, body in files.items():
        p.server.send_response(sid, 200, [], body)
    sent = 0
    for limit in (1, 16384, 100_000, 256 * 1024, 256 * 1024):  # a few writes, taking turns
        frames = parse_frames(p.server.data_to_send(limit))
        sent += sum(len(f.data) for f in frames if isinstance(f, DataFrame))
        assert sum(f.read_bytes for f in files.values()) == sent
        assert all(p.server.buffered(sid) == 0 for sid in files)
    assert sent > 256 * 1024


def test_a_body_leaves_in_full_frames_with_end_stream_on_its_last() -> None:
    p = Pair()
    p.client.increment_flow_control_window(1 << 30)
    p.client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 30})
    p.pump()
    sid = p.request(b"/file")
    body = bytes(range(256)) * 400  # 102,400 bytes
    p.server.send_response(sid, 200, [], body)
    out = p.server.data_to_send()
    data = [f for f in parse_frames(out) if isinstance(f, DataFrame)]
    assert [len(f.data) for f in data] == [16384] * 6 + [102_400 - 6 * 16384]
    assert [f for f in data if "END_STREAM" in f.flags] == [data[-1]]
    p.client_events += p.client.receive_data(out)
    assert p.body(sid) == body and p.ended(sid)


def test_data_to_send_respects_limit() -> None:
    p = Pair()
    p.client.increment_flow_control_window(1 << 30)
    p.client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 30})
    sid = p.request(b"/big")
    p.server.send_response(sid, 200, [], b"z" * (1 << 20))
    out = p.server.data_to_send(100_000)
    assert 100_000 <= len(out) < 100_000 + 16384 + 100
    assert p.server.buffered(sid) > (1 << 20) - 120_000


def test_round_robin_between_equal_urgency() -> None:
    p = Pair()
    p.client.increment_flow_control_window(1 << 30)
    p.client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 30})
    p.pump()
    big = p.request(b"/huge")
    small = p.request(b"/small")
    p.server.send_response(big, 200, [], b"B" * (4 << 20))
    p.server.send_response(small, 200, [], b"s" * 40000)
    p.pump(limit=64 * 1024)
    order = [e.stream_id for e in p.client_events if isinstance(e, h2e.DataReceived)]
    # The small file finishes within its first few turns, not after 4 MB of the big one.
    assert order.index(small) == 1
    last_small = len(order) - 1 - order[::-1].index(small)
    assert last_small < 8
    assert p.body(big) == b"B" * (4 << 20)


def test_push_with_urgency_zero_goes_first() -> None:
    p = Pair()
    p.client.increment_flow_control_window(1 << 30)
    p.pump()
    sid = p.request(b"/")
    promised = p.server.push_promise(sid, req_headers(b"/app.css"), urgency=0)
    assert promised == 2
    p.server.send_response(sid, 200, [], b"P" * 50000)
    p.server.send_response(promised, 200, [(b"content-type", b"text/css")], b"C" * 30000)
    p.pump()
    data_order = [e.stream_id for e in p.client_events if isinstance(e, h2e.DataReceived)]
    assert data_order[0] == promised
    assert data_order.index(sid) > max(i for i, s in enumerate(data_order) if s == promised)


# -- push ----------------------------------------------------------------------------------------


def test_push_promise_delivers_pushed_response() -> None:
    p = Pair()
    sid = p.request(b"/")
    assert p.server.push_enabled
    promised = p.server.push_promise(sid, req_headers(b"/style.css"))
    assert promised is not None and promised % 2 == 0
    assert p.server.open_streams == 2
    p.server.send_response(sid, 200, [], b"<html>")
    p.server.send_response(promised, 200, [(b"content-type", b"text/css")], b"body{}")
    p.pump()
    pushed = [e for e in p.client_events if isinstance(e, h2e.PushedStreamReceived)]
    assert len(pushed) == 1
    assert pushed[0].pushed_stream_id == promised and pushed[0].parent_stream_id == sid
    assert (b":path", b"/style.css") in (pushed[0].headers or [])
    assert p.body(promised) == b"body{}"
    assert p.body(sid) == b"<html>"
    assert p.server.open_streams == 0


def test_push_disabled_by_client() -> None:
    p = Pair(enable_push=False)
    sid = p.request(b"/")
    assert not p.server.push_enabled
    assert p.server.push_promise(sid, req_headers(b"/style.css")) is None


def test_push_refused_on_finished_parent_and_over_limits() -> None:
    p = Pair(max_push_per_connection=2)
    sid = p.request(b"/")
    assert p.server.push_promise(sid, req_headers(b"/a.css")) is not None
    assert p.server.push_promise(sid, req_headers(b"/b.css")) is not None
    assert p.server.push_promise(sid, req_headers(b"/c.css")) is None  # per-connection cap
    p2 = Pair()
    s = p2.request(b"/")
    p2.server.send_response(s, 200, [], b"done")
    p2.pump()
    with pytest.raises(LocalProtocolError):  # parent already ended: the caller's bug
        p2.server.push_promise(s, req_headers(b"/a.css"))
    p3 = Pair()
    p3.client.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    s = p3.request(b"/")
    assert p3.server.push_promise(s, req_headers(b"/a.css")) is not None
    assert p3.server.push_promise(s, req_headers(b"/b.css")) is None  # peer's stream limit


def test_client_reset_of_push_drops_it() -> None:
    p = Pair()
    sid = p.request(b"/")
    promised = p.server.push_promise(sid, req_headers(b"/a.css"))
    assert promised is not None
    p.server.send_response(promised, 200, [], b"c" * 200_000)
    p.pump()
    p.client.reset_stream(promised, ErrorCodes.CANCEL)
    p.pump()
    assert StreamReset(promised, ErrorCodes.CANCEL) in p.take_server()
    assert p.server.buffered(promised) == 0
    assert p.server.open_streams == 1


# -- resets -----------------------------------------------------------------------------------


def test_client_reset_drops_queue_and_stops_iterator() -> None:
    p = Pair()
    sid = p.request(b"/big")
    closed = []
    pulls = 0

    def chunks() -> Iterator[bytes]:
        nonlocal pulls
        try:
            while True:
                pulls += 1
                yield b"q" * 10000
        finally:
            closed.append(True)

    p.server.send_response(sid, 200, [], chunks())
    p.pump()
    p.take_server()
    before = len(p.body(sid))
    assert before == 65535
    p.client.reset_stream(sid, ErrorCodes.CANCEL)
    p.pump()
    assert p.take_server() == [StreamReset(sid, ErrorCodes.CANCEL)]
    assert closed == [True]
    assert p.server.buffered(sid) == 0
    assert p.server.open_streams == 0
    pulls_at_reset = pulls
    p.client.increment_flow_control_window(1 << 20)
    p.pump()
    assert len(p.body(sid)) == before
    assert pulls == pulls_at_reset
    # The connection is still fine for the next request.
    s2 = p.request(b"/next")
    p.server.send_response(s2, 200, [], b"fine")
    p.pump()
    assert p.body(s2) == b"fine"


def test_server_reset_stream() -> None:
    p = Pair()
    sid = p.request(b"/x")
    p.server.send_response(sid, 200, [], b"r" * 200_000)
    p.pump()
    p.server.reset_stream(sid)
    p.pump()
    resets = [e for e in p.client_events if isinstance(e, h2e.StreamReset)]
    assert resets[0].stream_id == sid and resets[0].error_code == ErrorCodes.CANCEL
    assert p.server.buffered(sid) == 0
    assert p.server.open_streams == 0
    p.server.acknowledge_received(sid, 100)  # harmless on a stream that's gone
    p.server.acknowledge_received(999, 100)


# -- protocol errors ------------------------------------------------------------------------------


def test_garbage_preface() -> None:
    server = H2Core()
    server.initiate()
    server.data_to_send()
    events = server.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert terminated(events).error_code == ErrorCodes.PROTOCOL_ERROR
    assert server.closing
    frames = parse_frames(server.data_to_send())
    goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert goaways and goaways[-1].error_code == ErrorCodes.PROTOCOL_ERROR
    assert server.receive_data(b"more") == []


def test_headers_on_stream_zero_is_connection_error() -> None:
    p = Pair()
    block = p.client.encoder.encode(req_headers())
    bad = raw_frame(0x1, 0x4 | 0x1, 0, block)
    events = p.server.receive_data(bad)
    assert terminated(events).error_code == ErrorCodes.PROTOCOL_ERROR
    assert p.server.closing
    p.client_events += p.client.receive_data(p.server.data_to_send())
    assert goaway_from_client(p.client_events).error_code == ErrorCodes.PROTOCOL_ERROR


def test_data_on_idle_stream_is_connection_error() -> None:
    p = Pair()
    frame = DataFrame(7, data=b"boo")
    events = p.server.receive_data(frame.serialize())
    assert terminated(events).error_code == ErrorCodes.PROTOCOL_ERROR
    frames = parse_frames(p.server.data_to_send())
    assert any(isinstance(f, GoAwayFrame) and f.error_code == ErrorCodes.PROTOCOL_ERROR for f in frames)


def test_missing_path_resets_only_that_stream() -> None:
    p = Pair(client_validates=False)
    p.client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"https"),
                              (b":authority", b"example.test")], end_stream=True)
    p.pump()
    assert p.take_server() == []
    resets = [e for e in p.take_client() if isinstance(e, h2e.StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(1, ErrorCodes.PROTOCOL_ERROR)]
    assert not p.server.closing
    sid = p.request(b"/ok")
    (req,) = p.take_server()
    assert isinstance(req, RequestReceived) and req.target == b"/ok"
    p.server.send_response(sid, 200, [], b"ok")
    p.pump()
    assert p.body(sid) == b"ok"


def test_connection_header_in_request_resets_stream() -> None:
    p = Pair(client_validates=False)
    p.client.send_headers(1, req_headers(extra=[(b"connection", b"keep-alive")]), end_stream=True)
    p.pump()
    assert p.take_server() == []
    assert any(isinstance(e, h2e.StreamReset) and e.error_code == ErrorCodes.PROTOCOL_ERROR
               for e in p.client_events)


def test_random_garbage_never_raises() -> None:
    rng = random.Random(42)
    for _ in range(200):
        p = Pair()
        blob = rng.randbytes(rng.randrange(1, 300))
        events = p.server.receive_data(blob)
        assert all(isinstance(e, (RequestReceived, BodyReceived, StreamReset, ConnectionTerminated))
                   for e in events)
        p.server.data_to_send()


def test_peer_goaway_terminates() -> None:
    p = Pair()
    sid = p.request(b"/")
    p.take_server()
    p.client.close_connection()
    events = p.server.receive_data(p.client.data_to_send())
    assert events[0] == StreamReset(sid, ErrorCodes.CANCEL)
    assert terminated(events).error_code == 0
    assert p.server.closing
    p.server.send_response(sid, 200, [], b"late")  # dropped: the connection is gone
    assert p.server.data_to_send() == b""


def test_eof() -> None:
    p = Pair()
    p.request(b"/")
    events = p.server.receive_data(b"")
    assert isinstance(events[0], StreamReset)
    assert terminated(events).error_code == 0
    assert p.server.closing


# -- abuse --------------------------------------------------------------------------------------


def test_rapid_reset_gets_enhance_your_calm() -> None:
    p = Pair()
    surfaced = 0
    end: ConnectionTerminated | None = None
    for _ in range(1000):
        sid = p.client.get_next_available_stream_id()
        p.client.send_headers(sid, req_headers(), end_stream=True)
        p.client.reset_stream(sid, ErrorCodes.CANCEL)
        events = p.server.receive_data(p.client.data_to_send())
        surfaced += sum(isinstance(e, RequestReceived) for e in events)
        found = [e for e in events if isinstance(e, ConnectionTerminated)]
        if found:
            end = found[0]
            break
    assert end is not None and end.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert surfaced == 0  # HEADERS+RST in one read never reach the layer above
    assert p.server.closing
    frames = parse_frames(p.server.data_to_send())
    assert any(isinstance(f, GoAwayFrame) and f.error_code == ErrorCodes.ENHANCE_YOUR_CALM for f in frames)


def test_rapid_reset_across_reads() -> None:
    p = Pair()
    codes = []
    for _ in range(1000):
        sid = p.client.get_next_available_stream_id()
        p.client.send_headers(sid, req_headers(), end_stream=True)
        p.server.receive_data(p.client.data_to_send())
        p.client.reset_stream(sid, ErrorCodes.CANCEL)
        codes += [e.error_code for e in p.server.receive_data(p.client.data_to_send())
                  if isinstance(e, ConnectionTerminated)]
        if codes:
            break
    assert codes == [ErrorCodes.ENHANCE_YOUR_CALM]


def test_answered_streams_with_occasional_resets_are_fine() -> None:
    p = Pair()
    for i in range(600):
        sid = p.request(b"/r%d" % i)
        if i % 3 == 0:
            p.client.reset_stream(sid, ErrorCodes.CANCEL)
            p.pump()
        else:
            p.server.send_response(sid, 200, [], b"ok")
            p.pump()
    assert not p.server.closing
    assert not any(isinstance(e, ConnectionTerminated) for e in p.server_events)


def test_ping_flood() -> None:
    p = Pair()
    for i in range(3000):
        p.client.ping(i.to_bytes(8, "big"))
    events = receive_all(p.server, p.client.data_to_send())
    assert terminated(events).error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_settings_and_empty_data_flood() -> None:
    p = Pair()
    for _ in range(1100):
        p.client.update_settings({SettingCodes.HEADER_TABLE_SIZE: 4096})
    assert terminated(receive_all(p.server, p.client.data_to_send())).error_code == \
        ErrorCodes.ENHANCE_YOUR_CALM
    p = Pair()
    sid = p.request(b"/up", b"POST", end=False)
    events = receive_all(p.server, b"".join(DataFrame(sid, data=b"").serialize() for _ in range(1200)))
    assert terminated(events).error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_continuation_flood_is_bounded() -> None:
    p = Pair()
    block = p.client.encoder.encode(req_headers())
    flood = raw_frame(0x1, 0x1, 1, block)  # HEADERS without END_HEADERS
    assert not p.server.receive_data(flood)
    assert p.server.awaiting_head
    events: list[Event] = []
    for _ in range(100):
        events = p.server.receive_data(raw_frame(0x9, 0, 1, b""))
        if events:
            break
    assert terminated(events).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert p.server.closing


def test_oversized_header_list() -> None:
    p = Pair(client_validates=False)
    p.client.send_headers(1, req_headers(extra=[(b"x-big", b"a" * 70000)]), end_stream=True)
    events = p.server.receive_data(p.client.data_to_send())
    assert terminated(events).error_code == ErrorCodes.ENHANCE_YOUR_CALM  # h2: DenialOfServiceError


# -- closing and bookkeeping -----------------------------------------------------------------------


def ping_ack_for(frames: list[Frame]) -> bytes:
    (ping,) = [f for f in frames if isinstance(f, PingFrame) and "ACK" not in f.flags]
    return raw_frame(0x6, 0x1, 0, ping.opaque_data)


def test_graceful_close_is_two_step_and_serves_streams_opened_in_between() -> None:
    """RFC 9113 §6.8: GOAWAY(2^31-1) + PING first; streams the client opens before it sees
    them are served; the PING's ACK brings the real GOAWAY, after which new streams are refused."""
    p = Pair()
    s1 = p.request(b"/slow")
    p.take_server()
    p.server.close()
    assert not p.server.closing
    assert not p.server.push_enabled
    first = p.server.data_to_send()
    frames = parse_frames(first)
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert [(g.last_stream_id, g.error_code) for g in goaway] == [(2**31 - 1, 0)]
    assert any(isinstance(f, PingFrame) and "ACK" not in f.flags for f in frames)
    # The client had not seen the GOAWAY yet and opens another stream: still served.
    s3 = p.client.get_next_available_stream_id()
    p.client.send_headers(s3, req_headers(b"/late"), end_stream=True)
    (req,) = p.server.receive_data(p.client.data_to_send())
    assert isinstance(req, RequestReceived) and req.stream_id == s3
    # The client acknowledges the PING (by hand: the h2 library drops its output once a
    # GOAWAY is in): the real GOAWAY follows.
    assert p.server.receive_data(ping_ack_for(frames)) == []
    frames = parse_frames(p.server.data_to_send())
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert [(g.last_stream_id, g.error_code) for g in goaway] == [(s3, 0)]
    # A stream opened after that is refused.
    late = raw_frame(0x1, 0x5, 7, Encoder().encode(req_headers(b"/later")))
    assert p.server.receive_data(late) == []
    p.server.send_response(s1, 200, [], b"finished")
    assert not p.server.closing
    p.server.send_response(s3, 200, [], b"also")
    frames = parse_frames(p.server.data_to_send())
    rst = [f for f in frames if isinstance(f, RstStreamFrame)]
    assert [(f.stream_id, f.error_code) for f in rst] == [(7, ErrorCodes.REFUSED_STREAM)]
    headers = [f for f in frames if isinstance(f, HeadersFrame)]
    assert [h.stream_id for h in headers] == [s1, s3]
    assert tuple(next(iter(Decoder().decode(headers[0].data, raw=True)))) == (b":status", b"200")
    data = [f for f in frames if isinstance(f, DataFrame)]
    assert b"".join(f.data for f in data) == b"finishedalso" and "END_STREAM" in data[-1].flags
    assert p.server.closing
    assert p.server.data_to_send() == b""


def test_close_with_nothing_open_closes_after_ping_round_trip() -> None:
    p = Pair()
    p.server.close()
    assert not p.server.closing  # the client may have requests on the wire
    frames = parse_frames(p.server.data_to_send())
    assert p.server.receive_data(ping_ack_for(frames)) == []
    assert p.server.closing
    frames = parse_frames(p.server.data_to_send())
    assert [(f.last_stream_id, f.error_code) for f in frames if isinstance(f, GoAwayFrame)] == [(0, 0)]


def test_second_close_sends_final_goaway_at_once() -> None:
    p = Pair()
    sid = p.request(b"/")
    p.server.close()
    p.server.close()  # e.g. the drain grace ran out: no waiting for the PING
    frames = parse_frames(p.server.data_to_send())
    assert [f.last_stream_id for f in frames if isinstance(f, GoAwayFrame)] == [2**31 - 1, sid]
    assert not p.server.closing  # the open stream is still answered
    p.server.send_response(sid, 204, [])
    assert p.server.closing


def test_close_with_error_code_is_one_goaway() -> None:
    p = Pair()
    sid = p.request(b"/")
    p.server.close(ErrorCodes.INTERNAL_ERROR, "shutting down")
    frames = parse_frames(p.server.data_to_send())
    assert [(f.last_stream_id, f.error_code) for f in frames if isinstance(f, GoAwayFrame)] == [
        (sid, ErrorCodes.INTERNAL_ERROR)]


def test_awaiting_head() -> None:
    server = H2Core()
    server.initiate()
    assert not server.awaiting_head
    client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    start = client.data_to_send()
    server.receive_data(start[:10])
    assert server.awaiting_head  # bytes arrived, no request yet
    client.send_headers(1, req_headers(), end_stream=True)
    rest = start[10:] + client.data_to_send()
    for i in range(len(rest)):  # split at every byte
        events = server.receive_data(rest[i:i + 1])
        if i < len(rest) - 1:
            assert server.awaiting_head
    assert isinstance(events[0], RequestReceived)
    assert not server.awaiting_head
    client.send_headers(3, req_headers(), end_stream=True)
    more = client.data_to_send()
    server.receive_data(more[:12])  # part of the next HEADERS frame
    assert server.awaiting_head
    server.receive_data(more[12:])
    assert not server.awaiting_head


def test_priority_header_sets_urgency() -> None:
    p = Pair()
    p.client.increment_flow_control_window(1 << 30)
    p.pump()
    low = p.request(b"/img", extra=[(b"priority", b"u=6")])
    high = p.request(b"/css", extra=[(b"priority", b"u=0")])
    p.server.send_response(low, 200, [], b"l" * 40000)
    p.server.send_response(high, 200, [], b"h" * 40000)
    p.pump()
    order = [e.stream_id for e in p.client_events if isinstance(e, h2e.DataReceived)]
    assert order[0] == high
    assert max(i for i, s in enumerate(order) if s == high) < order.index(low)


def test_failing_iterator_resets_only_its_stream() -> None:
    p = Pair()
    sid = p.request(b"/bad")

    def chunks() -> Iterator[bytes]:
        yield b"a" * 100
        raise OSError("disk gone")

    p.server.send_response(sid, 200, [(b"content-length", b"1000")], chunks())
    p.pump()
    assert any(isinstance(e, h2e.StreamReset) and e.stream_id == sid
               and e.error_code == ErrorCodes.INTERNAL_ERROR for e in p.client_events)
    assert not any(isinstance(e, h2e.StreamEnded) and e.stream_id == sid for e in p.client_events)
    # Reported to the layer above once, with a line for the log.
    assert p.server.next_events() == [StreamReset(sid, ErrorCodes.INTERNAL_ERROR, "response cut short: disk gone")]
    assert p.server.open_streams == 0
    s2 = p.request(b"/good")
    p.server.send_response(s2, 200, [], b"good")
    p.pump()
    assert p.body(s2) == b"good"


# -- misuse by the layer above raises; a stream that ended under its feet takes late calls ----


def misuse(call: object, *args: object, **kw: object) -> str:
    """The message of the LocalProtocolError that ``call(*args, **kw)`` raises."""
    with pytest.raises(LocalProtocolError) as err:
        call(*args, **kw)  # type: ignore[operator]
    return str(err.value)


def test_calls_on_a_stream_never_opened_raise() -> None:
    p = Pair()
    for sid in (41, 2, 0, -1):
        assert "never opened" in misuse(p.server.send_response, sid, 200, [], b"x")
        assert "never opened" in misuse(p.server.send_data, sid, b"x")
        assert "never opened" in misuse(p.server.send_informational, sid, 103, [])
        assert "never opened" in misuse(p.server.push_promise, sid, req_headers(b"/a.css"))
        assert "never opened" in misuse(p.server.reset_stream, sid)
    p.server.acknowledge_received(41, 10)  # body credit and queries stay harmless
    assert p.server.buffered(41) == 0
    p.pump()
    assert not p.server.closing


def test_calls_out_of_turn_raise_and_change_nothing() -> None:
    p = Pair()
    sid = p.request(b"/")
    assert "awaits its response" in misuse(p.server.send_data, sid, b"early")
    assert "invalid field name" in misuse(p.server.send_response, sid, 200, [(b"X-Upper", b"1")], b"x")
    assert "invalid value" in misuse(p.server.send_response, sid, 200, [(b"x-split", b"a\r\nset-cookie: b")])
    assert "invalid value" in misuse(p.server.send_response, sid, 200, [(b"x-space", b"trailing ")])
    assert "invalid field name" in misuse(p.server.send_response, sid, 200, [(b":status", b"204")])
    assert "not a final status" in misuse(p.server.send_response, sid, 103, [])
    assert "not a final status" in misuse(p.server.send_response, sid, 600, [])
    assert "not an informational" in misuse(p.server.send_informational, sid, 200, [])
    assert "not an informational" in misuse(p.server.send_informational, sid, 101, [])
    p.server.send_response(sid, 200, [], None, end_stream=False)  # the stream is as it was
    assert "is sending its body" in misuse(p.server.send_response, sid, 200, [], b"again")
    assert "is sending its body" in misuse(p.server.send_informational, sid, 103, [])
    p.server.send_data(sid, b"body", end_stream=True)
    assert "has ended its response" in misuse(p.server.send_data, sid, b"more")
    assert "has ended its response" in misuse(p.server.push_promise, sid, req_headers(b"/a.css"))
    p.pump()
    assert p.body(sid) == b"body" and p.ended(sid)
    # Answered and forgotten by the core: still known to have ended, not to have been reset.
    assert "has ended its response" in misuse(p.server.send_response, sid, 200, [], b"late")
    assert "has ended its response" in misuse(p.server.send_data, sid, b"late")
    p.server.reset_stream(sid)  # resetting an ended stream is harmless
    p.pump()
    assert not any(isinstance(e, h2e.StreamReset) for e in p.client_events)


def test_a_bad_push_raises() -> None:
    p = Pair()
    sid = p.request(b"/")
    promised = p.server.push_promise(sid, req_headers(b"/a.css"))
    assert promised is not None
    assert "push promise on stream 2" in misuse(p.server.push_promise, promised, req_headers(b"/b.css"))
    assert "pseudo-header" in misuse(p.server.push_promise, sid, [(b":status", b"200")])
    assert "invalid field name" in misuse(p.server.push_promise, sid, [*req_headers(b"/c.css"), (b"accept", b"*/*"),
                                                                  (b":late", b"x")])
    p.server.send_response(promised, 200, [], b"a{}")
    p.server.send_response(sid, 200, [], b"page")
    p.pump()
    assert p.body(promised) == b"a{}" and p.body(sid) == b"page"


def test_late_calls_on_a_stream_the_peer_reset_are_dropped() -> None:
    p = Pair()
    sid = p.request(b"/", b"POST", end=False)
    p.client.reset_stream(sid, ErrorCodes.CANCEL)
    p.pump()
    assert StreamReset(sid, ErrorCodes.CANCEL) in p.take_server()
    p.server.send_response(sid, 200, [], b"late")
    p.server.send_data(sid, b"late")
    p.server.send_informational(sid, 103, [])
    p.server.reset_stream(sid)
    assert p.server.push_promise(sid, req_headers(b"/a.css")) is None
    p.pump()
    assert p.body(sid) == b"" and not p.server.closing


def test_late_calls_after_the_connection_ended_are_dropped() -> None:
    p = Pair()
    sid = p.request(b"/")
    p.server.receive_data(b"")
    p.server.send_response(sid, 200, [], b"late")
    p.server.send_response(41, 200, [], b"never opened, but the connection is gone anyway")
    p.server.reset_stream(41)
    assert p.server.data_to_send() == b""


def test_head_keeps_the_callers_framing_and_sends_no_body() -> None:
    p = Pair()
    sid = p.request(b"/stream", b"HEAD")
    p.server.send_response(sid, 200, [(b"content-type", b"text/plain")], None, end_stream=False)
    p.server.send_data(sid, b"dropped")
    assert p.server.buffered(sid) == 0
    p.pump()
    assert not p.ended(sid)
    p.server.send_data(sid, b"also dropped", end_stream=True)
    p.pump()
    assert p.ended(sid) and p.body(sid) == b""
    assert p.server.open_streams == 0


def test_priority_update_frame_reprioritises() -> None:
    p = Pair()
    p.client.increment_flow_control_window(1 << 30)
    p.pump()
    a = p.request(b"/a")
    b = p.request(b"/b")
    # RFC 9218 PRIORITY_UPDATE on stream 0: b becomes urgent before anything is sent.
    p.server.receive_data(raw_frame(0x10, 0, 0, b.to_bytes(4, "big") + b"u=0"))
    p.server.send_response(a, 200, [], b"a" * 40000)
    p.server.send_response(b, 200, [], b"b" * 40000)
    p.pump()
    order = [e.stream_id for e in p.client_events if isinstance(e, h2e.DataReceived)]
    assert order[0] == b and max(i for i, s in enumerate(order) if s == b) < order.index(a)
    assert p.body(a) == b"a" * 40000


def test_priority_frame_flood() -> None:
    p = Pair()
    for i in range(1200):
        p.client.prioritize(2 * i + 101, weight=16)
    events = receive_all(p.server, p.client.data_to_send())
    assert terminated(events).error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_reset_ids_skipping_ahead_still_count() -> None:
    p = Pair()
    codes = []
    sid = 1
    for _ in range(300):
        p.client.send_headers(sid, req_headers(), end_stream=True)
        p.client.reset_stream(sid, ErrorCodes.CANCEL)
        codes += [e.error_code for e in p.server.receive_data(p.client.data_to_send())
                  if isinstance(e, ConnectionTerminated)]
        if codes:
            break
        sid += 1000  # skipped ids are legal; they must not age resets out of the window
    assert codes == [ErrorCodes.ENHANCE_YOUR_CALM]


# -- conformance fixes (RFC 9113 §3.4, §4.3, §5.1.2, §6.5; see tests/integration/test_h2_conformance.py)


def raw_server(**server_kw: int) -> tuple[H2Core, Encoder]:
    """A server that has had a valid preface from a hand-driven client, and that client's encoder."""
    server = H2Core(**server_kw)
    server.initiate()
    server.data_to_send()
    assert server.receive_data(PREFACE + raw_frame(0x4, 0, 0, b"")) == []
    server.data_to_send()
    return server, Encoder()


@pytest.mark.parametrize(("ftype", "flags", "payload"), [(0x6, 0, b"12345678"), (0x4, 0x1, b"")],
                         ids=["PING", "SETTINGS-ACK"])
def test_preface_must_be_followed_by_settings(ftype: int, flags: int, payload: bytes) -> None:
    server = H2Core()
    server.initiate()
    server.data_to_send()
    events = server.receive_data(PREFACE + raw_frame(ftype, flags, 0, payload))
    assert terminated(events).error_code == ErrorCodes.PROTOCOL_ERROR
    goaways = [f for f in parse_frames(server.data_to_send()) if isinstance(f, GoAwayFrame)]
    assert [g.error_code for g in goaways] == [ErrorCodes.PROTOCOL_ERROR]


def test_preface_and_settings_split_byte_by_byte() -> None:
    server = H2Core()
    server.initiate()
    data = PREFACE + raw_frame(0x4, 0, 0, b"\x00\x02\x00\x00\x00\x00") + raw_frame(0x6, 0, 0, b"12345678")
    for i in range(len(data)):
        assert server.receive_data(data[i:i + 1]) == []
    assert not server.closing
    frames = parse_frames(server.data_to_send())
    assert any(isinstance(f, PingFrame) and "ACK" in f.flags for f in frames)


def test_settings_ack_with_payload_is_frame_size_error() -> None:
    p = Pair()
    events = p.server.receive_data(raw_frame(0x4, 0x1, 0, b"\x00\x02\x00\x00\x00\x00"))
    assert terminated(events).error_code == ErrorCodes.FRAME_SIZE_ERROR
    p.client_events += p.client.receive_data(p.server.data_to_send())
    assert goaway_from_client(p.client_events).error_code == ErrorCodes.FRAME_SIZE_ERROR


def test_a_read_that_ends_in_a_connection_error_surfaces_no_request_of_its_own() -> None:
    """The frames before the violation are processed (the PING is answered), but the request
    the read opened never reaches the layer above: the connection is over before anything could
    answer it, and the GOAWAY names the last request that did (so the client may retry this
    one).  A request of an earlier read hears of the end by StreamReset."""
    server, enc = raw_server()
    (first,) = server.receive_data(raw_frame(0x1, 0x4 | 0x1, 1, enc.encode(req_headers(b"/first"))))
    assert isinstance(first, RequestReceived)
    data = (raw_frame(0x1, 0x4 | 0x1, 3, enc.encode(req_headers(b"/second")))
            + raw_frame(0x6, 0, 0, b"pingpong") + raw_frame(0x4, 0x1, 0, b"\x00\x02\x00\x00\x00\x00"))
    events = server.receive_data(data)
    assert events[:1] == [StreamReset(1, ErrorCodes.CANCEL)]
    assert terminated(events).error_code == ErrorCodes.FRAME_SIZE_ERROR
    assert not any(isinstance(e, RequestReceived) for e in events)
    frames = parse_frames(server.data_to_send())
    assert isinstance(frames[0], PingFrame) and "ACK" in frames[0].flags
    goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert [(g.error_code, g.last_stream_id) for g in goaways] == [(ErrorCodes.FRAME_SIZE_ERROR, 1)]


@pytest.mark.parametrize("block", [b"\x80", b"\x00\x0aab", b"\x3f\xe2\x1f"],
                         ids=["index-0", "truncated", "table-size-too-large"])
def test_hpack_decoding_error_is_compression_error(block: bytes) -> None:
    server, _ = raw_server()
    # A PING in the same read: its ACK must survive the GOAWAY's correction.
    events = server.receive_data(raw_frame(0x6, 0, 0, b"pingpong") + raw_frame(0x1, 0x5, 1, block))
    assert terminated(events).error_code == ErrorCodes.COMPRESSION_ERROR
    frames = parse_frames(server.data_to_send())
    assert isinstance(frames[0], PingFrame) and frames[0].opaque_data == b"pingpong"
    goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert [g.error_code for g in goaways] == [ErrorCodes.COMPRESSION_ERROR]


def test_exceeding_concurrent_streams_refuses_only_that_stream() -> None:
    server, enc = raw_server(max_concurrent_streams=2)

    def open_stream(sid: int) -> list[Event]:
        return server.receive_data(raw_frame(0x1, 0x4 | 0x1, sid, enc.encode(req_headers(b"/%d" % sid))))

    assert [type(e) for e in open_stream(1) + open_stream(3)] == [RequestReceived, RequestReceived]
    assert open_stream(5) == []  # over the limit: never surfaced
    frames = parse_frames(server.data_to_send())
    assert [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)] == [
        (5, ErrorCodes.REFUSED_STREAM)]
    assert not server.closing and server.open_streams == 2
    server.send_response(1, 204, [])  # stream 1 is done: room for one more
    server.data_to_send()
    (req,) = open_stream(7)
    assert isinstance(req, RequestReceived) and req.stream_id == 7
