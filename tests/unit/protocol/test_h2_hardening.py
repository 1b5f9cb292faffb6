"""H2Core in memory against the floods and edge cases of the hardening issue (#13): one bounded
control budget, input processed in bounded slices, a NO_ERROR reset that waits for the end of
the response, refused streams on their own budget, and flood limits checked per frame."""

from __future__ import annotations

from hpack import Encoder
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame

from pushserve.protocol.events import BodyReceived, ConnectionTerminated, RequestReceived, StreamReset
from pushserve.protocol.h2 import H2Core
from tests.unit.protocol.test_h2_core import PREFACE, parse_frames, raw_frame, receive_all, req_headers, terminated

HEADERS, RST, SETTINGS, PING, DATA = 0x1, 0x3, 0x4, 0x6, 0x0
END_STREAM, END_HEADERS = 0x1, 0x4
CALM, NO_ERROR, STREAM_CLOSED, REFUSED = 0xB, 0x0, 0x5, 0x7


class Client:
    """A hand-driven client: frames are built here, the server's answers parsed back."""

    def __init__(self, **server_kw: int) -> None:
        self.server = H2Core(**server_kw)
        self.server.initiate()
        self.encoder = Encoder()
        self.next_sid = 1
        assert self.server.receive_data(PREFACE + raw_frame(SETTINGS, 0, 0, b"")) == []
        self.read()

    def read(self) -> list[Frame]:
        return parse_frames(self.server.data_to_send())

    def headers(self, path: bytes = b"/", *, end: bool = True, method: bytes = b"GET",
                extra: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes]:
        sid = self.next_sid
        self.next_sid += 2
        block = self.encoder.encode(req_headers(path, method, extra))
        return sid, raw_frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, block)

    def open(self, path: bytes = b"/", **kw: object) -> int:
        sid, data = self.headers(path, **kw)  # type: ignore[arg-type]
        events = self.server.receive_data(data)
        assert [type(e) for e in events] == [RequestReceived], events
        return sid


def of_type(frames: list[Frame], kind: type[Frame]) -> list[Frame]:
    return [f for f in frames if isinstance(f, kind)]


# -- 1: one bounded control budget, bounded input per call ------------------------------------


def test_data_on_reset_streams_is_bounded_by_the_control_budget() -> None:
    """DATA on streams the client itself reset: each would be answered with RST_STREAM; the
    budget ends that with GOAWAY ENHANCE_YOUR_CALM after a bounded number of answers."""
    c = Client()
    sid = c.open(b"/up", end=False, method=b"POST")
    c.server.receive_data(raw_frame(RST, 0, sid, NO_ERROR.to_bytes(4, "big")))
    flood = raw_frame(DATA, 0, sid, b"x") * 20_000
    events = receive_all(c.server, flood)
    assert terminated(events).error_code == CALM
    frames = c.read()
    rsts = of_type(frames, RstStreamFrame)
    assert rsts and all(f.error_code == STREAM_CLOSED for f in rsts)
    assert len(rsts) <= 1000 + 100  # the base budget plus one stream's allowance
    assert [f.error_code for f in of_type(frames, GoAwayFrame)] == [CALM]


def test_answers_queued_for_a_peer_that_does_not_read_are_bounded() -> None:
    """A peer with many streams (a large budget) that sends PINGs and never reads: the queue of
    PING ACKs is capped, not just the total."""
    c = Client()
    for _ in range(30):
        c.open()
    codes: list[int] = []
    for _ in range(40):  # never calling data_to_send: the transport would be paused
        codes += [e.error_code for e in receive_all(c.server, raw_frame(PING, 0, 0, b"12345678") * 100)
                  if isinstance(e, ConnectionTerminated)]
        if codes:
            break
    assert codes == [CALM]
    assert len(of_type(c.read(), PingFrame)) <= 2000


def test_input_is_processed_in_bounded_slices() -> None:
    c = Client()
    assert c.server.receive_data(raw_frame(PING, 0, 0, b"12345678") * 900) == []
    assert c.server.pending_input
    first = len(of_type(c.read(), PingFrame))
    assert 0 < first < 900
    total = first
    rounds = 0
    while c.server.pending_input:
        assert c.server.resume() == []
        total += len(of_type(c.read(), PingFrame))
        rounds += 1
    assert total == 900 and rounds >= 1
    assert c.server.resume() == []  # nothing left: harmless
    # A request after the slices is served as usual.
    c.open(b"/after")


def test_request_split_across_slices_is_not_lost() -> None:
    c = Client()
    sid, head = c.headers(b"/late")
    events = c.server.receive_data(raw_frame(PING, 0, 0, b"12345678") * 900 + head)
    while c.server.pending_input:
        events += c.server.resume()
    assert [(type(e), e.stream_id) for e in events] == [(RequestReceived, sid)]  # type: ignore[union-attr]


# -- 4: RST_STREAM(NO_ERROR) after a complete response ----------------------------------------


def test_no_error_reset_leaves_after_the_last_data_and_credits_the_window() -> None:
    c = Client(initial_window_size=65535)
    sid = c.open(b"/static.css", end=False, method=b"POST")
    c.server.receive_data(raw_frame(DATA, 0, sid, b"u" * 16384))
    # The layer above answers 405 with a body the client's window holds back in part.
    c.server.send_response(sid, 405, [(b"content-length", b"70000")], b"n" * 70000)
    c.server.reset_stream(sid, NO_ERROR)
    frames = c.read()
    assert not of_type(frames, RstStreamFrame)  # the response is not out yet
    assert sum(len(f.data) for f in of_type(frames, DataFrame)) == 65535
    # Upload DATA in flight is dropped, not surfaced; the client opens our window again.
    assert c.server.receive_data(raw_frame(DATA, 0, sid, b"u" * 16384)) == []
    c.server.receive_data(raw_frame(0x8, 0, 0, (1 << 20).to_bytes(4, "big"))
                          + raw_frame(0x8, 0, sid, (1 << 20).to_bytes(4, "big")))
    frames = c.read()
    data = of_type(frames, DataFrame)
    assert sum(len(f.data) for f in data) == 70000 - 65535 and "END_STREAM" in data[-1].flags
    kinds = [type(f) for f in frames]
    assert kinds.index(RstStreamFrame) > max(i for i, k in enumerate(kinds) if k is DataFrame)
    assert [(f.stream_id, f.error_code) for f in of_type(frames, RstStreamFrame)] == [(sid, NO_ERROR)]
    assert c.server.open_streams == 0
    # More of the upload that crossed our RST_STREAM: ignored, no answer, window credited.
    assert c.server.receive_data(raw_frame(DATA, 0, sid, b"u" * 16384) * 2) == []
    assert not of_type(c.read(), RstStreamFrame)
    # The connection window is whole again: a new upload of a full window goes through.
    s2 = c.open(b"/up2", end=False, method=b"POST")
    upload = raw_frame(DATA, 0, s2, b"v" * 16384) * 3 + raw_frame(DATA, END_STREAM, s2, b"v" * 16383)
    events = c.server.receive_data(upload)
    assert sum(len(e.data) for e in events if isinstance(e, BodyReceived)) == 65535
    assert not any(isinstance(e, ConnectionTerminated) for e in events)


def test_no_error_reset_after_response_already_sent_goes_at_once() -> None:
    c = Client()
    sid = c.open(b"/x", end=False, method=b"POST")
    c.server.send_response(sid, 405, [], b"no")
    c.read()
    c.server.reset_stream(sid, NO_ERROR)
    assert [(f.stream_id, f.error_code) for f in of_type(c.read(), RstStreamFrame)] == [(sid, NO_ERROR)]


def test_no_error_reset_not_needed_when_the_request_ends_first() -> None:
    c = Client(initial_window_size=65535)
    sid = c.open(b"/x", end=False, method=b"POST")
    c.server.send_response(sid, 405, [], b"n" * 70000)
    c.server.reset_stream(sid, NO_ERROR)
    assert c.server.receive_data(raw_frame(DATA, END_STREAM, sid, b"last")) == []
    c.server.receive_data(raw_frame(0x8, 0, 0, (1 << 20).to_bytes(4, "big"))
                          + raw_frame(0x8, 0, sid, (1 << 20).to_bytes(4, "big")))
    frames = c.read()
    assert not of_type(frames, RstStreamFrame)
    assert "END_STREAM" in of_type(frames, DataFrame)[-1].flags


# -- 5: refused streams have their own budget -------------------------------------------------


def test_hundred_streams_over_the_limit_keep_the_connection() -> None:
    c = Client(max_concurrent_streams=10)
    data = b"".join(c.headers(b"/%d" % i)[1] for i in range(110))
    events = receive_all(c.server, data)
    assert sum(isinstance(e, RequestReceived) for e in events) == 10
    assert not any(isinstance(e, ConnectionTerminated) for e in events)
    rsts = of_type(c.read(), RstStreamFrame)
    assert len(rsts) == 100 and {f.error_code for f in rsts} == {REFUSED}
    for e in events:
        c.server.send_response(e.stream_id, 204, [])  # type: ignore[union-attr]
    assert isinstance(c.server.receive_data(c.headers(b"/next")[1])[0], RequestReceived)


def test_flood_of_refused_streams_ends_the_connection() -> None:
    c = Client(max_concurrent_streams=1)
    c.open(b"/held", end=False)
    codes: list[int] = []
    for _ in range(30):
        data = b"".join(c.headers(b"/over")[1] for _ in range(100))
        codes += [e.error_code for e in receive_all(c.server, data) if isinstance(e, ConnectionTerminated)]
        if codes:
            break
    assert codes == [CALM]


# -- 6: flood limits per frame ----------------------------------------------------------------


def test_settings_flood_gets_no_more_acks_than_the_budget() -> None:
    c = Client()
    events = receive_all(c.server, raw_frame(SETTINGS, 0, 0, b"") * 3000)
    assert terminated(events).error_code == CALM
    acks = [f for f in of_type(c.read(), SettingsFrame) if "ACK" in f.flags]
    assert 990 <= len(acks) <= 1000


def test_empty_data_flood_is_checked_per_frame() -> None:
    c = Client()
    sid = c.open(b"/up", end=False, method=b"POST")
    events = receive_all(c.server, raw_frame(DATA, 0, sid, b"") * 5000)
    assert terminated(events).error_code == CALM
    # The budget is 1000 + 100 for the one stream: the flood stopped right there.
    assert c.server.closing


# -- the rapid-reset counter and the stream-state table -----------------------------------------


def test_headers_and_reset_in_one_slice_are_never_surfaced_even_between_others() -> None:
    c = Client()
    a, ha = c.headers(b"/a")
    b, hb = c.headers(b"/b")
    d, hd = c.headers(b"/d")
    events = c.server.receive_data(ha + hb + raw_frame(RST, 0, b, (8).to_bytes(4, "big")) + hd)
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [a, d]
    assert not any(isinstance(e, StreamReset) for e in events)
    assert c.server.open_streams == 2


def test_window_update_on_reserved_push_is_allowed_data_is_not() -> None:
    c = Client()
    sid = c.open(b"/")
    promised = c.server.push_promise(sid, req_headers(b"/a.css"))
    assert promised == 2
    c.read()
    assert c.server.receive_data(raw_frame(0x8, 0, 2, (100).to_bytes(4, "big"))) == []
    events = c.server.receive_data(raw_frame(DATA, 0, 2, b"nope"))
    assert terminated(events).error_code == 0x1  # reserved (local): PROTOCOL_ERROR


def test_window_updates_coalesce() -> None:
    """Acknowledged body returns window in a few WINDOW_UPDATEs, not one per DATA frame."""
    c = Client()
    sid = c.open(b"/up", end=False, method=b"POST")
    for _ in range(64):
        for e in c.server.receive_data(raw_frame(DATA, 0, sid, b"z" * 1000)):
            assert isinstance(e, BodyReceived)
            c.server.acknowledge_received(sid, len(e.data))
    updates = of_type(c.read(), WindowUpdateFrame)
    assert not updates  # 64 KB of a 1 MiB window: nothing to return yet
    for _ in range(200):
        for e in c.server.receive_data(raw_frame(DATA, 0, sid, b"z" * 1000)):
            c.server.acknowledge_received(sid, len(e.data))  # type: ignore[union-attr]
    updates = of_type(c.read(), WindowUpdateFrame)
    assert {f.stream_id for f in updates} == {0, sid} and len(updates) == 2
    assert all(f.window_increment >= (1 << 20) // 4 for f in updates)
