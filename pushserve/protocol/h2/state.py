"""What one HTTP/2 connection holds — streams, windows, the peer's settings, the counters of
the flood budgets — and the stream bookkeeping both directions share (window credit, a
stream's end, forgetting it).  output.Output adds the sending side, core.H2Core the receiving
side; see core.py for the invariants."""

from __future__ import annotations

from collections import deque

import pushserve.protocol.h2.frames as fr
from pushserve.protocol.events import Event, close_body
from pushserve.protocol.h2.fields import RequestDecoder
from pushserve.protocol.h2.streams import Stream

URGENCY_LEVELS = 8
LAST_STREAM_ID = 2**31 - 1
CLOSED_MEMORY = 512  # closed stream ids remembered (512 to 1024), to tell "closed" from "never opened"
BUFFER = (bytes, bytearray, memoryview)


class ConnectionState:
    """The state of one connection and the bookkeeping on it."""

    def __init__(self, *, max_concurrent_streams: int = 128, max_header_list_size: int = 65536,
                 initial_window_size: int = 1 << 20, max_push_per_connection: int = 100) -> None:
        self._max_streams = max_concurrent_streams
        self._max_header_list = max_header_list_size
        self._initial_window = initial_window_size
        self._credit_threshold = max(1, initial_window_size // 4)
        self._max_pushes = max_push_per_connection
        self._decoder = RequestDecoder(max_header_list_size)

        self._streams: dict[int, Stream] = {}
        # Recently closed stream id -> closed by our RST_STREAM (see _remember_closed).
        self._closed: dict[int, bool] = {}
        self._closed_before: dict[int, bool] = {}
        self._client_streams = 0  # streams of the peer in _streams (our limit applies to them)
        self._unfinished = 0  # streams in _streams whose response is not done
        self._last_client_sid = 0
        self._last_push_sid = 0
        self._next_push_sid = 2
        self._pushes = 0

        # Flow control.  _send_window: what the peer lets us send; _recv_window: what we let it.
        self._send_window = fr.DEFAULT_WINDOW
        self._recv_window = fr.DEFAULT_WINDOW
        self._conn_credit = 0
        # The peer's settings.
        self._peer_initial_window = fr.DEFAULT_WINDOW
        self._peer_max_frame = fr.DEFAULT_MAX_FRAME
        self._peer_enable_push = True
        self._peer_max_streams = LAST_STREAM_ID
        self._peer_table_size = 4096
        self._table_update_due = False  # the peer shrank its HPACK table: say "size 0" once

        self._buckets: list[deque[Stream]] = [deque() for _ in range(URGENCY_LEVELS)]
        self._out: list[bytes | memoryview] = []  # frames queued ahead of any DATA still to schedule
        self._pending: list[Event] = []  # StreamDrained and failed bodies found while sending

        self._terminated = False  # connection error / peer GOAWAY / EOF: nothing more to do
        self._draining = False  # first GOAWAY of a graceful close sent
        self._goaway_last_id: int | None = None  # final GOAWAY sent, naming this stream

        # Abuse accounting (budgets: see core.py).
        self._streams_opened = 0
        self._control = 0
        self._queued_control = 0  # answers queued since data_to_send last took the output
        self._window_updates = 0
        self._data_frames_sent = 0

    # -- flow control and stream bookkeeping ----------------------------------------------------

    def acknowledge_received(self, stream_id: int, length: int) -> None:
        st = self._streams.get(stream_id)
        if st is None or length <= 0:
            return
        n = min(length, st.unacked)
        if n:
            st.unacked -= n
            self._credit(st, n)

    def _credit(self, st: Stream | None, n: int) -> None:
        """Return ``n`` received bytes of window to the peer: the connection's, and the
        stream's while it still has body to send.  WINDOW_UPDATEs leave in batches."""
        if self._terminated or n <= 0:
            return
        self._conn_credit += n
        if self._conn_credit >= self._credit_threshold:
            self._out.append(fr.window_update(0, self._conn_credit))
            self._recv_window += self._conn_credit
            self._conn_credit = 0
        if st is not None and not st.request_done:
            st.credit += n
            if st.credit >= self._credit_threshold:
                self._out.append(fr.window_update(st.stream_id, st.credit))
                st.recv_window += st.credit
                st.credit = 0

    def _drop(self, st: Stream, *, by_us: bool) -> None:
        """The stream is over (reset either way): drop its queue and forget it."""
        self._clear_parts(st)
        self._set_response_done(st)
        st.request_done = True
        if st.unacked:  # body nobody will read still holds connection window
            n, st.unacked = st.unacked, 0
            self._credit(None, n)
        self._forget(st, by_us)

    def _finish(self, st: Stream, out: list[bytes | memoryview]) -> None:
        """END_STREAM has been queued in ``out``."""
        self._set_response_done(st)
        st.auto_ack = True
        if st.unacked:
            n, st.unacked = st.unacked, 0
            self._credit(st, n)
        if st.request_done:
            self._forget(st, False)
        elif st.reset_after >= 0:
            out.append(fr.rst_stream(st.stream_id, st.reset_after))
            self._drop(st, by_us=True)

    def _set_response_done(self, st: Stream) -> None:
        if not st.response_done:
            st.response_done = True
            self._unfinished -= 1

    def _forget(self, st: Stream, by_us: bool) -> None:
        if self._streams.pop(st.stream_id, None) is not None and not st.pushed:
            self._client_streams -= 1
        self._remember_closed(st.stream_id, by_us)

    def _remember_closed(self, sid: int, by_us: bool) -> None:
        # Two generations instead of evicting the oldest id one by one (deleting from the
        # front of a dict makes its iteration crawl over the holes).
        closed = self._closed
        closed[sid] = by_us
        if len(closed) >= CLOSED_MEMORY:
            self._closed_before, self._closed = closed, {}

    def _closed_by_us(self, sid: int) -> bool | None:
        """Whether a recently closed stream was closed by our RST_STREAM; None if not known."""
        by_us = self._closed.get(sid)
        return self._closed_before.get(sid) if by_us is None else by_us

    @staticmethod
    def _clear_parts(st: Stream) -> None:
        for part in st.parts:
            if not isinstance(part, BUFFER):
                close_body(part)
        st.parts.clear()
        st.queued = 0
        st.offset = 0
        st.end_pending = False

    def buffered(self, stream_id: int) -> int:
        st = self._streams.get(stream_id)
        return 0 if st is None else st.queued - st.offset

    # -- connection -----------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._terminated or (self._goaway_last_id is not None and self._unfinished == 0)

    @property
    def open_streams(self) -> int:
        return self._unfinished
