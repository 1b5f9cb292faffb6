"""Flow control (RFC 9113 §6.9): the connection's two windows, and the rules for the stream
windows each stream record keeps (``send_window``, ``recv_window``, ``credit``).

Receiving.  A DATA frame's whole length, padding included, comes off the connection's window and
its stream's.  It is given back once the layer above has consumed the bytes (at once for body
nobody reads: a reset or finished stream), so an upload goes at the consumer's pace.  Credit is
returned in WINDOW_UPDATEs once a quarter of the initial window has collected, not per DATA
frame: the peer always keeps three quarters of the window it may use.  A stream's credit is
returned only while the peer still has body to send on it.

Sending.  The peer's WINDOW_UPDATEs grow what we may send, its SETTINGS_INITIAL_WINDOW_SIZE
shifts every stream's window, maybe below zero (§6.9.2); a window above 2^31-1 is an error of the
stream or of the connection it belongs to (§6.9.1).  The scheduler spends the windows.

The stream windows live on the stream records rather than in objects of their own: a request is
a few microseconds of work, and two more objects per stream would be a measurable part of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pushserve.protocol.h2.errors import ConnectionFailure, StreamFailure, protocol_error
from pushserve.protocol.h2.frames import DEFAULT_WINDOW, MAX_WINDOW, ErrorCode, window_update


class Windows(Protocol):
    """The flow-control fields of a stream record (streams.Stream)."""

    stream_id: int
    send_window: int  # what we may still send on the stream
    recv_window: int  # what the peer may still send us on it
    credit: int  # consumed bytes not yet given back with a WINDOW_UPDATE
    request_done: bool  # the peer sent END_STREAM: its window matters no more


class FlowControl:
    """One connection's flow control."""

    __slots__ = ("credit", "initial", "peer_initial", "recv", "send", "threshold")

    def __init__(self, initial_window: int) -> None:
        self.initial = initial_window  # our SETTINGS_INITIAL_WINDOW_SIZE: a new stream's recv_window
        self.peer_initial = DEFAULT_WINDOW  # the peer's: a new stream's send_window
        self.send = DEFAULT_WINDOW  # what the peer lets us send on the connection
        self.recv = DEFAULT_WINDOW  # what we let the peer send on the connection
        self.credit = 0  # connection bytes consumed, not yet given back
        self.threshold = max(1, initial_window // 4)

    def opening(self) -> list[bytes]:
        """The WINDOW_UPDATE that grows the connection's receive window to ours, sent with our
        SETTINGS: SETTINGS_INITIAL_WINDOW_SIZE does not cover the connection (§6.9.2)."""
        growth = self.initial - DEFAULT_WINDOW
        if growth <= 0:
            return []
        self.recv += growth
        return [window_update(0, growth)]

    # -- receiving ------------------------------------------------------------------------------

    def receive(self, length: int) -> None:
        """A DATA frame of ``length`` octets arrived, on whatever stream: the connection window
        counts it (§6.9)."""
        if length > self.recv:
            raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self.recv -= length

    @staticmethod
    def receive_on(st: Windows, length: int) -> None:
        """The same frame, against its stream's window (after ``receive``)."""
        if length > st.recv_window:
            raise StreamFailure(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the stream window")
        st.recv_window -= length

    def give_back(self, st: Windows | None, n: int, out: list[bytes | memoryview]) -> None:
        """``n`` received bytes are done with: credit the connection, and ``st`` (None: only the
        connection) while the peer still sends on it.  WINDOW_UPDATEs go to ``out`` in batches."""
        if n <= 0:
            return
        credit = self.credit + n
        if credit >= self.threshold:
            out.append(window_update(0, credit))
            self.recv += credit
            credit = 0
        self.credit = credit
        if st is not None and not st.request_done:
            credit = st.credit + n
            if credit >= self.threshold:
                out.append(window_update(st.stream_id, credit))
                st.recv_window += credit
                credit = 0
            st.credit = credit

    # -- sending --------------------------------------------------------------------------------

    def grow(self, increment: int) -> None:
        """A WINDOW_UPDATE on the connection."""
        if not increment:
            raise protocol_error("connection WINDOW_UPDATE of 0")
        self.send += increment
        if self.send > MAX_WINDOW:
            raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "connection window over 2^31-1")

    @staticmethod
    def grow_stream(st: Windows, increment: int) -> None:
        """A WINDOW_UPDATE on a stream we hold."""
        if not increment:
            raise StreamFailure(ErrorCode.PROTOCOL_ERROR, "stream WINDOW_UPDATE of 0")
        st.send_window += increment
        if st.send_window > MAX_WINDOW:
            raise StreamFailure(ErrorCode.FLOW_CONTROL_ERROR, "stream window over 2^31-1")

    def peer_initial_changed(self, value: int, streams: Iterable[Windows]) -> None:
        """The peer's SETTINGS_INITIAL_WINDOW_SIZE became ``value`` (checked by settings.py):
        every stream's send window moves by the difference (§6.9.2), perhaps below zero."""
        delta = value - self.peer_initial
        self.peer_initial = value
        if delta:
            for st in streams:
                st.send_window += delta
                if st.send_window > MAX_WINDOW:
                    raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE overflows a window")
