"""The small objects the HTTP/2 core is composed of, each on its own: flow control, the flood
budgets, the header-block assembler, the memory of closed streams, the peer's settings, the
scheduler and the two stream tables (protocol/h2/*.py).  The core's own tests drive them
together through frames; these pin each rule where it lives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hyperframe.frame import DataFrame, Frame, WindowUpdateFrame

from pushserve.protocol.events import StreamDrained
from pushserve.protocol.h2.budget import (
    CONTROL_BASE,
    CONTROL_PER_STREAM,
    QUEUED_CONTROL_MAX,
    REFUSED_LIMIT,
    RESET_LIMIT,
    RESET_WINDOW,
    WINDOW_UPDATE_BASE,
    WINDOW_UPDATE_PER_DATA_FRAME,
    FloodBudget,
)
from pushserve.protocol.h2.closed import GENERATION, ClosedStreams
from pushserve.protocol.h2.errors import ConnectionFailure, StreamFailure
from pushserve.protocol.h2.flow import FlowControl
from pushserve.protocol.h2.frames import (
    CONTINUATION,
    DATA,
    DEFAULT_WINDOW,
    END_HEADERS,
    HEADERS,
    MAX_WINDOW,
    PRIORITY,
    RST_STREAM,
    WINDOW_UPDATE,
    ErrorCode,
    Setting,
)
from pushserve.protocol.h2.headerblock import MAX_CONTINUATIONS, HeaderBlockAssembler
from pushserve.protocol.h2.scheduler import Output, Scheduler
from pushserve.protocol.h2.settings import PeerSettings
from pushserve.protocol.h2.streams import (
    AWAITING_HEAD,
    CLOSED,
    ENDED,
    FORGOTTEN,
    HALF_CLOSED_LOCAL,
    HALF_CLOSED_REMOTE,
    IDLE,
    INFORM,
    LAYER_MAY,
    OPEN,
    PEER_MAY_SEND,
    PUSH,
    RESERVED_LOCAL,
    RESET_BY_PEER,
    RESET_BY_US,
    RESPOND,
    SEND,
    SENDING_BODY,
    STATE_NAMES,
    Stream,
)
from tests.unit.protocol.test_h2_core import parse_frames

CALM = ErrorCode.ENHANCE_YOUR_CALM


def stream(sid: int = 1, *, send: int = DEFAULT_WINDOW, recv: int = DEFAULT_WINDOW, urgency: int = 3) -> Stream:
    return Stream(sid, b"GET", urgency, send, recv)


def frames(out: Output) -> list[Frame]:
    return parse_frames(b"".join(out))


# -- flow control (flow.py) ---------------------------------------------------------------------


def test_opening_grows_the_connection_window_to_ours() -> None:
    flow = FlowControl(1 << 20)
    (update,) = frames(flow.opening())
    assert isinstance(update, WindowUpdateFrame) and update.stream_id == 0
    assert update.window_increment == (1 << 20) - DEFAULT_WINDOW
    assert flow.recv == 1 << 20
    assert FlowControl(DEFAULT_WINDOW).opening() == []


def test_receiving_beyond_a_window() -> None:
    flow = FlowControl(DEFAULT_WINDOW)
    flow.receive(DEFAULT_WINDOW - 10)
    with pytest.raises(ConnectionFailure) as conn_err:
        flow.receive(11)
    assert conn_err.value.code == ErrorCode.FLOW_CONTROL_ERROR
    st = stream(recv=100)
    flow.receive_on(st, 100)
    assert st.recv_window == 0
    with pytest.raises(StreamFailure) as stream_err:
        flow.receive_on(st, 1)
    assert stream_err.value.code == ErrorCode.FLOW_CONTROL_ERROR


def test_credit_goes_back_in_batches_of_a_quarter_window() -> None:
    flow = FlowControl(1 << 20)
    flow.opening()
    st = stream(recv=1 << 20)
    for _ in range(3):
        flow.receive(100_000)
        flow.receive_on(st, 100_000)
    out: Output = []
    flow.give_back(st, 100_000, out)
    flow.give_back(st, 100_000, out)
    assert out == []  # 200,000 < 262,144: the peer still has three quarters of its window
    flow.give_back(st, 100_000, out)
    assert [(f.stream_id, f.window_increment) for f in frames(out)] == [(0, 300_000), (1, 300_000)]
    assert flow.recv == st.recv_window == 1 << 20


def test_no_stream_credit_once_the_peer_has_ended_its_body() -> None:
    flow = FlowControl(4)
    st = stream()
    st.request_done = True
    out: Output = []
    flow.give_back(st, 10, out)
    assert [f.stream_id for f in frames(out)] == [0]
    flow.give_back(None, 0, out)
    assert len(out) == 1


def test_window_updates_and_their_errors() -> None:
    flow = FlowControl(DEFAULT_WINDOW)
    flow.grow(10)
    assert flow.send == DEFAULT_WINDOW + 10
    with pytest.raises(ConnectionFailure) as zero:
        flow.grow(0)
    assert zero.value.code == ErrorCode.PROTOCOL_ERROR
    with pytest.raises(ConnectionFailure) as over:
        flow.grow(MAX_WINDOW)
    assert over.value.code == ErrorCode.FLOW_CONTROL_ERROR
    st = stream()
    flow.grow_stream(st, 5)
    assert st.send_window == DEFAULT_WINDOW + 5
    with pytest.raises(StreamFailure) as stream_zero:
        flow.grow_stream(st, 0)
    assert stream_zero.value.code == ErrorCode.PROTOCOL_ERROR
    with pytest.raises(StreamFailure) as stream_over:
        flow.grow_stream(st, MAX_WINDOW)
    assert stream_over.value.code == ErrorCode.FLOW_CONTROL_ERROR


def test_initial_window_change_moves_every_stream_window_even_below_zero() -> None:
    flow = FlowControl(DEFAULT_WINDOW)
    a, b = stream(1, send=1000), stream(3, send=DEFAULT_WINDOW)
    flow.peer_initial_changed(0, [a, b])
    assert (a.send_window, b.send_window, flow.peer_initial) == (1000 - DEFAULT_WINDOW, 0, 0)
    flow.peer_initial_changed(MAX_WINDOW, [a, b])
    assert b.send_window == MAX_WINDOW
    c = stream(5, send=MAX_WINDOW - 10)  # grown by WINDOW_UPDATEs
    with pytest.raises(ConnectionFailure) as err:
        FlowControl(DEFAULT_WINDOW).peer_initial_changed(DEFAULT_WINDOW + 11, [c])
    assert err.value.code == ErrorCode.FLOW_CONTROL_ERROR


# -- flood budgets (budget.py) ------------------------------------------------------------------


def crossed(action: object, times: int) -> int:
    """How many calls of ``action`` went through before it raised ENHANCE_YOUR_CALM."""
    for i in range(times):
        try:
            action()  # type: ignore[operator]
        except ConnectionFailure as err:
            assert err.code == CALM, err
            return i
    return times


def test_control_frames_grow_with_the_streams_opened() -> None:
    budget = FloodBudget()
    assert crossed(lambda: budget.charge("PING"), 5000) == CONTROL_BASE
    budget = FloodBudget()
    budget.opened = 3
    assert crossed(lambda: budget.charge("PING"), 5000) == CONTROL_BASE + 3 * CONTROL_PER_STREAM


def test_answers_queued_for_a_peer_that_does_not_read() -> None:
    budget = FloodBudget()
    assert crossed(budget.answer, 5000) == QUEUED_CONTROL_MAX
    budget.queued = 0  # the output was taken
    budget.answer()


def test_window_updates_grow_with_the_data_frames_sent() -> None:
    budget = FloodBudget()
    budget.data_frames = 7
    assert crossed(budget.window_update, 5000) == WINDOW_UPDATE_BASE + 7 * WINDOW_UPDATE_PER_DATA_FRAME


def test_rapid_resets_count_among_the_last_streams_opened() -> None:
    budget = FloodBudget()

    def open_and_reset() -> None:
        budget.opened += 1
        budget.reset()

    assert crossed(open_and_reset, 1000) == RESET_LIMIT
    budget = FloodBudget()  # one reset every other stream: never more than half the window
    for _ in range(5 * RESET_WINDOW):
        budget.opened += 2
        budget.reset()


def test_refused_streams_have_their_own_larger_budget() -> None:
    budget = FloodBudget()

    def refuse() -> None:
        budget.opened += 1
        budget.refused()

    assert crossed(refuse, 5000) == REFUSED_LIMIT
    budget.reset()  # the reset budget is untouched


# -- header blocks over CONTINUATION frames (headerblock.py) -----------------------------------


def test_a_block_is_whole_at_end_headers() -> None:
    block = HeaderBlockAssembler(1000)
    block.start(3, 0x1, b"abc", self_dep=False)
    assert block.stream_id == 3
    assert block.add(CONTINUATION, 3, 0, b"de") is None
    assert block.add(CONTINUATION, 3, END_HEADERS, b"f") == b"abcdef"
    assert block.stream_id == 0 and block.flags == 0x1


@pytest.mark.parametrize(("ftype", "sid"), [(DATA, 3), (HEADERS, 3), (CONTINUATION, 5)])
def test_nothing_but_its_continuation_inside_a_block(ftype: int, sid: int) -> None:
    block = HeaderBlockAssembler(1000)
    block.start(3, 0, b"abc", self_dep=False)
    with pytest.raises(ConnectionFailure) as err:
        block.add(ftype, sid, END_HEADERS, b"")
    assert err.value.code == ErrorCode.PROTOCOL_ERROR


def test_blocks_are_bounded_before_they_are_decoded() -> None:
    block = HeaderBlockAssembler(1000)
    block.start(1, 0, b"", self_dep=False)
    assert crossed(lambda: block.add(CONTINUATION, 1, 0, b"x"), 100) == MAX_CONTINUATIONS
    block = HeaderBlockAssembler(1000)
    block.start(1, 0, b"x" * 600, self_dep=False)
    with pytest.raises(ConnectionFailure) as err:
        block.add(CONTINUATION, 1, 0, b"x" * 401)
    assert err.value.code == CALM
    with pytest.raises(ConnectionFailure):
        HeaderBlockAssembler(1000).start(0, 0, b"", self_dep=False)  # HEADERS on stream 0


# -- closed streams (closed.py) -----------------------------------------------------------------


def test_closed_streams_remember_how_they_closed_for_a_bounded_while() -> None:
    closed = ClosedStreams()
    closed.add(1, CLOSED)
    closed.add(3, RESET_BY_PEER)
    closed.add(5, RESET_BY_US)
    assert [closed.how(s) for s in (1, 3, 5, 7)] == [CLOSED, RESET_BY_PEER, RESET_BY_US, FORGOTTEN]
    for sid in range(101, 101 + 2 * GENERATION, 2):
        closed.add(sid, CLOSED)
    assert closed.how(101) == CLOSED  # at least GENERATION ids are always remembered
    for sid in range(10001, 10001 + 2 * GENERATION, 2):
        closed.add(sid, CLOSED)
    assert closed.how(1) == closed.how(101) == FORGOTTEN  # at most 2 * GENERATION


# -- the peer's settings (settings.py) ----------------------------------------------------------


def settings_payload(*pairs: tuple[int, int]) -> bytes:
    return b"".join(code.to_bytes(2, "big") + value.to_bytes(4, "big") for code, value in pairs)


@pytest.mark.parametrize(("code", "value", "error"), [
    (Setting.MAX_FRAME_SIZE, 16383, ErrorCode.PROTOCOL_ERROR),
    (Setting.MAX_FRAME_SIZE, 2**24, ErrorCode.PROTOCOL_ERROR),
    (Setting.ENABLE_PUSH, 2, ErrorCode.PROTOCOL_ERROR),
    (Setting.INITIAL_WINDOW_SIZE, 2**31, ErrorCode.FLOW_CONTROL_ERROR),
    (Setting.ENABLE_CONNECT_PROTOCOL, 2, ErrorCode.PROTOCOL_ERROR),
    (Setting.NO_RFC7540_PRIORITIES, 2, ErrorCode.PROTOCOL_ERROR),
])
def test_invalid_setting_values(code: int, value: int, error: int) -> None:
    with pytest.raises(ConnectionFailure) as err:
        PeerSettings().apply(settings_payload((code, value)), lambda v: None)
    assert err.value.code == error


def test_settings_apply_in_order_and_unknown_ones_are_ignored() -> None:
    peer = PeerSettings()
    windows: list[int] = []
    peer.apply(settings_payload((Setting.INITIAL_WINDOW_SIZE, 10), (0xFF, 7), (Setting.MAX_FRAME_SIZE, 2**24 - 1),
                                (Setting.ENABLE_PUSH, 0), (Setting.MAX_CONCURRENT_STREAMS, 5),
                                (Setting.INITIAL_WINDOW_SIZE, 20)), windows.append)
    assert windows == [10, 20]
    assert (peer.max_frame, peer.enable_push, peer.max_streams) == (2**24 - 1, False, 5)


def test_a_smaller_hpack_table_asks_for_a_size_update() -> None:
    peer = PeerSettings()
    peer.apply(settings_payload((Setting.HEADER_TABLE_SIZE, 8192)), lambda v: None)
    assert not peer.table_update_due
    peer.apply(settings_payload((Setting.HEADER_TABLE_SIZE, 100)), lambda v: None)
    assert peer.table_update_due


# -- the two stream tables (streams.py) ---------------------------------------------------------


def test_peer_may_send_has_a_rule_for_every_state() -> None:
    assert len(PEER_MAY_SEND) == len(STATE_NAMES)
    idle = PEER_MAY_SEND[IDLE]
    assert idle.allowed == {HEADERS, PRIORITY} and DATA in idle.fatal and idle.code == ErrorCode.PROTOCOL_ERROR
    for state in (OPEN, HALF_CLOSED_LOCAL, RESET_BY_US):  # everything comes in (and may be dropped)
        assert DATA in PEER_MAY_SEND[state].allowed
    # PRIORITY always; WINDOW_UPDATE and RST_STREAM may cross our END_STREAM or RST_STREAM.
    for state in (RESERVED_LOCAL, HALF_CLOSED_REMOTE, CLOSED, RESET_BY_PEER, FORGOTTEN):
        assert PEER_MAY_SEND[state].allowed == {PRIORITY, RST_STREAM, WINDOW_UPDATE}
    for state in (HALF_CLOSED_REMOTE, RESET_BY_PEER, FORGOTTEN):
        rule = PEER_MAY_SEND[state]
        assert not rule.fatal and rule.code == ErrorCode.STREAM_CLOSED
    closed = PEER_MAY_SEND[CLOSED]  # both sides ended: HEADERS ends the connection, DATA the stream
    assert HEADERS in closed.fatal and DATA not in closed.fatal and closed.code == ErrorCode.STREAM_CLOSED


def test_stream_state_follows_its_flags() -> None:
    st = stream()
    assert st.state == OPEN
    st.request_done = True
    assert st.state == HALF_CLOSED_REMOTE
    st.response_done = True
    assert st.state == CLOSED
    pushed = Stream(2, b"GET", 3, 0, 0, pushed=True, request_done=True, may=LAYER_MAY[1][AWAITING_HEAD])
    assert pushed.state == RESERVED_LOCAL
    pushed.enter(SENDING_BODY)
    assert pushed.state == HALF_CLOSED_REMOTE


def test_layer_may_follows_a_response_step_by_step() -> None:
    for row in LAYER_MAY:
        assert row[ENDED] == 0  # nothing after the end
        assert row[AWAITING_HEAD] & (INFORM | RESPOND) and not row[AWAITING_HEAD] & SEND
        assert row[SENDING_BODY] & SEND and not row[SENDING_BODY] & (INFORM | RESPOND)
    assert not any(may & PUSH for may in LAYER_MAY[1])  # nothing is promised on a pushed stream
    st = stream()
    assert st.may == LAYER_MAY[0][AWAITING_HEAD]
    st.enter(SENDING_BODY)
    assert st.may == SEND | PUSH


# -- the scheduler (scheduler.py) ---------------------------------------------------------------


class Sched:
    """A scheduler with the objects it needs, recording the streams it finished or failed."""

    def __init__(self, *, window: int = DEFAULT_WINDOW, max_frame: int = 16384) -> None:
        self.flow = FlowControl(DEFAULT_WINDOW)
        self.flow.send = window
        self.peer = PeerSettings()
        self.peer.max_frame = max_frame
        self.budget = FloodBudget()
        self.finished: list[int] = []
        self.failed: list[int] = []
        self.scheduler = Scheduler(self.flow, self.peer, self.budget, self.finish, self.fail)

    def finish(self, st: Stream, out: Output) -> None:
        st.response_done = True
        self.finished.append(st.stream_id)

    def fail(self, st: Stream, exc: Exception) -> None:
        st.response_done = True
        st.parts.clear()
        self.failed.append(st.stream_id)

    def queue(self, st: Stream, *parts: bytes | Iterator[bytes], end: bool = True) -> Stream:
        for part in parts:
            st.parts.append(part)
            if isinstance(part, bytes):
                st.queued += len(part)
        st.end_pending = end
        self.scheduler.schedule(st)
        return st

    def write(self, limit: int = 1 << 20) -> list[tuple[int, int]]:
        out: Output = []
        self.scheduler.write(out, limit)
        return [(f.stream_id, len(f.data)) for f in frames(out) if isinstance(f, DataFrame)]


def test_more_urgent_streams_send_first_and_equal_ones_take_turns() -> None:
    s = Sched(max_frame=100)
    s.queue(stream(1, urgency=3), b"a" * 200)
    s.queue(stream(3, urgency=3), b"b" * 200)
    s.queue(stream(5, urgency=0), b"c" * 150)
    assert s.write() == [(5, 100), (5, 50), (1, 100), (3, 100), (1, 100), (3, 100)]
    assert s.finished == [5, 1, 3] and s.scheduler.waiting == 0
    assert s.budget.data_frames == 6


def test_windows_bound_what_is_sent_and_iterators_are_pulled_only_when_they_may_send() -> None:
    pulled: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(3):
            pulled.append(i)
            yield b"x" * 100

    s = Sched(window=150)
    st = s.queue(stream(1), chunks())
    assert s.write() == [(1, 100), (1, 50)]
    assert pulled == [0, 1] and s.flow.send == 0 and st.send_window == DEFAULT_WINDOW - 150
    assert s.write() == []  # windows shut: nothing more pulled
    assert pulled == [0, 1]
    s.flow.send = 1000
    assert s.write() == [(1, 50), (1, 100), (1, 0)]
    assert s.finished == [1]


def test_a_failing_body_is_handed_back_and_a_drained_queue_says_so() -> None:
    def failing() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("disk went away")

    s = Sched()
    s.queue(stream(1), failing())
    streamed = stream(3)
    streamed.drain_wanted = True
    s.queue(streamed, b"chunk", end=False)
    assert s.write() == [(1, 7), (3, 5)]
    assert s.failed == [1] and s.finished == []
    assert s.scheduler.drained == [StreamDrained(3)]
    assert s.scheduler.waiting == 0  # stream 3 waits for more send_data, outside the buckets
