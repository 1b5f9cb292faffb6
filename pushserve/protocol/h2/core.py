"""The server side of one HTTP/2 connection (RFC 9113), sans-IO; implements ``events.ServerCore``.

Input is cut into frames by hand (frames.HEAD), each frame checked against the stream-state
table of streams.py and handled by one method; header blocks go through fields.py.  Output is a
list of byte strings joined once per ``data_to_send``: control frames and header blocks are
queued in ``_out`` as they arise, response bodies wait in per-stream queues that the scheduler
turns into DATA frames as flow control and the caller's ``limit`` allow (RFC 9218 urgency
buckets, round-robin inside a bucket).

Invariants worth keeping in mind:

* ``_streams`` holds only streams the layer above knows about (surfaced requests and our
  pushes).  Requests refused or reset before surfacing never enter it; DATA for streams not in
  it is credited back to the connection window at once, so the window never leaks.
* A stream's ``unacked`` counts received body bytes the layer above has not acknowledged yet;
  acknowledgements are clamped to it, so acknowledging twice is harmless.
* Window credit is returned in WINDOW_UPDATEs once a quarter of the window has collected, not
  per DATA frame: the peer always keeps three quarters of the window it may use.
* Input is processed in slices of at most ``_SLICE_FRAMES`` frames; the rest stays buffered
  until ``resume`` (``pending_input`` says there is more), so one connection's flood cannot hold
  the event loop.  Flood budgets are checked per frame, so nothing overshoots them.
* Closing is two-step (RFC 9113 §6.8): a GOAWAY naming 2^31-1 and a PING, then on the PING's
  ACK (or a second ``close``) the real GOAWAY naming the last stream processed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from hpack import OversizedHeaderListError

from pushserve.protocol.events import (
    Body,
    BodyReceived,
    ConnectionTerminated,
    Event,
    Headers,
    RequestReceived,
    StreamDrained,
    StreamReset,
    close_body,
)
from pushserve.protocol.h2 import frames as fr
from pushserve.protocol.h2.fields import (
    Malformed,
    RequestDecoder,
    encode_fields,
    encode_status,
    parse_urgency,
    validate_trailers,
)
from pushserve.protocol.h2.frames import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    MAX_WINDOW,
    PADDED,
    PRIORITY,
    PRIORITY_FLAG,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    ErrorCode,
    Setting,
    code_name,
)
from pushserve.protocol.h2.streams import CLOSED, IDLE, PEER_MAY_SEND, STATE_NAMES, Stream

_URGENCY_LEVELS = 8

# Rapid reset (CVE-2023-44487): without a clock we count per streams opened, not per second.
# More than _RESET_LIMIT peer-side resets of unanswered streams among the last _RESET_WINDOW
# streams the peer opened ends the connection.  A browser cancelling a page's images stays well
# below; a loop of HEADERS+RST_STREAM crosses it after ~100 streams.
_RESET_WINDOW = 200
_RESET_LIMIT = 100
# Streams refused for going over SETTINGS_MAX_CONCURRENT_STREAMS are the server's doing, not
# the client's reset: they have their own, larger budget, so a client that overshoots by a
# hundred keeps its connection while a loop of nothing but refused streams does not.
_REFUSED_WINDOW = 1000
_REFUSED_LIMIT = 500

# Frames that cost us work but move no request forward, most of them answered with a control
# frame of ours (PING, SETTINGS, PRIORITY, unknown frames, empty DATA, anything on a closed
# stream; CVE-2019-9512/9514/9515/9516/9518).  The allowance grows with the streams the peer
# opened, the way Envoy budgets PRIORITY frames per stream.
_CONTROL_BASE = 1000
_CONTROL_PER_STREAM = 100
# Answers of ours (ACKs, RST_STREAM) queued and not yet taken by data_to_send: a peer that sends
# while not reading would otherwise make this grow without bound.
_QUEUED_CONTROL_MAX = 2000
# WINDOW_UPDATE frames are legitimate in proportion to the DATA frames we send them.
_WINDOW_UPDATE_BASE = 1000
_WINDOW_UPDATE_PER_DATA_FRAME = 10

# A header block of more than 32 CONTINUATION frames (CVE-2024-27316-style floods) or of more
# compressed bytes than the header list may hold is refused before it is decoded.
_MAX_CONTINUATIONS = 32

_SLICE_FRAMES = 512  # frames processed per receive_data / resume call
_CLOSED_MEMORY = 512  # closed stream ids remembered (512 to 1024), to tell "closed" from "never opened"
_DRAIN_PING = b"gracegon"  # opaque data of the PING of the two-step GOAWAY
_LAST_STREAM_ID = 2**31 - 1

_BUFFER = (bytes, bytearray, memoryview)
_unpack_head = fr.HEAD.unpack_from
_head = fr.head


class _ConnectionError(Exception):
    """A connection error found while processing input: ends the connection with GOAWAY
    (unless the peer itself went away)."""

    def __init__(self, code: int, reason: str, *, send_goaway: bool = True) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.send_goaway = send_goaway


def _protocol(reason: str) -> _ConnectionError:
    return _ConnectionError(ErrorCode.PROTOCOL_ERROR, reason)


def _frame_size(reason: str) -> _ConnectionError:
    return _ConnectionError(ErrorCode.FRAME_SIZE_ERROR, reason)


def _calm(reason: str) -> _ConnectionError:
    return _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, reason)


def _u31(payload: bytes, at: int = 0) -> int:
    return int.from_bytes(payload[at:at + 4], "big") & 0x7FFFFFFF


class H2Core:
    """Server side of one HTTP/2 connection; implements ``events.ServerCore``."""

    http_version = "2"

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
        self._peer_max_streams = _LAST_STREAM_ID
        self._peer_table_size = 4096
        self._table_update_due = False  # the peer shrank its HPACK table: say "size 0" once

        self._buckets: list[deque[Stream]] = [deque() for _ in range(_URGENCY_LEVELS)]
        self._out: list[bytes | memoryview] = []  # frames queued ahead of any DATA still to schedule
        self._pending: list[Event] = []  # StreamDrained found while sending
        self._events: list[Event] = []  # events of the slice being processed
        self._fresh: list[Stream] = []  # streams surfaced in that slice

        self._terminated = False  # connection error / peer GOAWAY / EOF: nothing more to do
        self._draining = False  # first GOAWAY of a graceful close sent
        self._goaway_last_id: int | None = None  # final GOAWAY sent, naming this stream

        # Input.
        self._inbuf = b""
        self._inpos = 0
        self._more = False  # a slice stopped at its budget with frames left
        self._preface_left = len(fr.PREFACE)
        self._first_frame = True
        self._got_input = False
        self._got_request = False
        # An open header block (HEADERS without END_HEADERS): its stream, flags, pieces.
        self._block_sid = 0
        self._block_flags = 0
        self._block_self_dep = False
        self._block: list[bytes] = []
        self._block_len = 0
        self._continuations = 0

        # Abuse accounting.
        self._streams_opened = 0
        self._recent_resets: deque[int] = deque()
        self._recent_refusals: deque[int] = deque()
        self._control = 0
        self._queued_control = 0
        self._window_updates = 0
        self._data_frames_sent = 0

        self._handlers: dict[int, Callable[[int, int, bytes], None]] = {
            PRIORITY: self._on_priority,
            RST_STREAM: self._on_rst_stream,
            SETTINGS: self._on_settings,
            fr.PUSH_PROMISE: self._on_push_promise,
            fr.PING: self._on_ping,
            fr.GOAWAY: self._on_goaway,
            WINDOW_UPDATE: self._on_window_update,
            CONTINUATION: self._on_stray_continuation,
            fr.PRIORITY_UPDATE: self._on_priority_update,
        }

    # -- connection start and input ----------------------------------------------------------

    def initiate(self) -> None:
        # ENABLE_PUSH is a client's setting: a server has no business sending it.
        self._out.append(fr.settings({
            Setting.MAX_CONCURRENT_STREAMS: self._max_streams,
            Setting.MAX_HEADER_LIST_SIZE: self._max_header_list,
            Setting.INITIAL_WINDOW_SIZE: self._initial_window,
        }))
        # Settings count as in force at once: until the peer has seen them it can only send
        # less than they allow, never more.  The connection window is not covered by
        # SETTINGS_INITIAL_WINDOW_SIZE and grows with a WINDOW_UPDATE.
        growth = self._initial_window - fr.DEFAULT_WINDOW
        if growth > 0:
            self._out.append(fr.window_update(0, growth))
            self._recv_window += growth

    def receive_data(self, data: bytes) -> list[Event]:
        if self._terminated:
            return []
        if not data:
            return self._terminate(0, "peer closed the connection", send_goaway=False)
        self._got_input = True
        if self._inpos >= len(self._inbuf):
            self._inbuf = bytes(data)
        else:
            self._inbuf = self._inbuf[self._inpos:] + data
        self._inpos = 0
        return self._slice()

    @property
    def pending_input(self) -> bool:
        """Input is buffered that ``resume`` would process (a slice stopped at its budget)."""
        return self._more and not self._terminated

    def resume(self) -> list[Event]:
        """Process the next bounded slice of buffered input."""
        if not self.pending_input:
            return []
        return self._slice()

    def next_events(self) -> list[Event]:
        """StreamDrained events found while sending (``data_to_send``).  They also ride along
        with the next ``receive_data``, but a producer waiting for a drain should not depend
        on the peer sending something first, so the glue may collect them after a flush."""
        events, self._pending = self._pending, []
        return events

    def _slice(self) -> list[Event]:
        out: list[Event] = []
        self._events = out
        buf, pos = self._inbuf, self._inpos
        end = len(buf)
        self._more = False
        try:
            if self._preface_left:
                pos = self._check_preface(buf, pos)
            budget = _SLICE_FRAMES
            handle = self._frame
            while end - pos >= 9:
                if not budget:
                    self._more = True
                    break
                hi, lo, ftype, flags, sid = _unpack_head(buf, pos)
                length = hi << 16 | lo
                if length > fr.DEFAULT_MAX_FRAME:  # our SETTINGS_MAX_FRAME_SIZE is the default
                    raise _frame_size(f"{length}-byte frame over the 16384-byte maximum")
                stop = pos + 9 + length
                if stop > end:
                    break
                budget -= 1
                handle(ftype, flags, sid & 0x7FFFFFFF, buf[pos + 9:stop])
                pos = stop
        except _ConnectionError as err:
            self._end_slice()
            return out + self._terminate(err.code, err.reason, send_goaway=err.send_goaway)
        except Exception as exc:  # never let a peer's bytes raise out of the core
            self._end_slice()
            return out + self._terminate(ErrorCode.INTERNAL_ERROR, f"failed on input: {type(exc).__name__}: {exc}")
        if pos >= end:
            self._inbuf, self._inpos = b"", 0
        else:
            self._inpos = pos
        self._end_slice()
        if self._pending:
            out[:0] = self._pending
            self._pending = []
        return out

    def _end_slice(self) -> None:
        for st in self._fresh:
            st.fresh = False
        self._fresh.clear()
        self._events = []

    def _check_preface(self, buf: bytes, pos: int) -> int:
        done = len(fr.PREFACE) - self._preface_left
        got = buf[pos:pos + self._preface_left]
        if got != fr.PREFACE[done:done + len(got)]:
            raise _protocol("invalid connection preface")
        self._preface_left -= len(got)
        return pos + len(got)

    def _frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if self._block_sid:  # a header block is open: only its CONTINUATION may come (§6.10)
            if ftype != CONTINUATION or sid != self._block_sid:
                raise _protocol(f"frame type {ftype} inside the header block of stream {self._block_sid}")
            self._on_continuation(flags, payload)
            return
        if self._first_frame:
            if ftype != SETTINGS or flags & ACK:
                raise _protocol("connection preface without SETTINGS")
            self._first_frame = False
        if ftype == DATA:
            self._on_data(flags, sid, payload)
        elif ftype == HEADERS:
            self._on_headers(flags, sid, payload)
        else:
            handler = self._handlers.get(ftype)
            if handler is not None:
                handler(flags, sid, payload)
            else:
                self._charge("unknown frame")  # §5.5: ignored

    # -- stream states (RFC 9113 §5.1) ----------------------------------------------------------

    def _admit(self, ftype: int, sid: int) -> tuple[bool, Stream | None]:
        """Check a frame on stream ``sid`` against ``PEER_MAY_SEND``.  Returns whether to go on
        with it, and the stream if we hold it.  Connection errors raise; stream errors are
        answered here."""
        st = self._streams.get(sid)
        if st is not None:
            state = st.state
        elif sid & 1:
            state = IDLE if sid > self._last_client_sid else CLOSED
        else:
            state = IDLE if sid > self._last_push_sid else CLOSED
        if st is None and state == CLOSED:
            by_us = self._closed_by_us(sid)
            if by_us:  # it may have crossed our RST_STREAM: ignored (§5.1 "closed")
                self._charge("frame on a stream we reset")
                return False, None
            if by_us is None and ftype == HEADERS:
                raise _protocol(f"HEADERS on stream {sid}, below the last opened {self._last_client_sid}")
        rule = PEER_MAY_SEND[state]
        if ftype in rule.allowed:
            return True, st
        if rule.connection_error:
            raise _ConnectionError(rule.code, f"frame type {ftype} on {STATE_NAMES[state]} stream {sid}")
        self._stream_error(sid, rule.code, st)
        return False, st

    def _stream_error(self, sid: int, code: int, st: Stream | None) -> None:
        """Reset a stream because of what the peer sent on it."""
        self._answer(fr.rst_stream(sid, code))
        if st is not None:
            self._drop(st, by_us=True)
            if st.fresh:
                self._unsurface(sid)
            else:
                self._events.append(StreamReset(sid, code))
        else:
            self._remember_closed(sid, True)
        self._charge("stream error")

    def _reject(self, sid: int, code: int, st: Stream | None = None) -> None:
        """A stream error on a request the peer got wrong: counts as one of its resets."""
        self._stream_error(sid, code, st)
        self._count_reset()

    # -- frame handlers ----------------------------------------------------------------------

    def _on_data(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid:
            raise _protocol("DATA on stream 0")
        flen = len(payload)
        data = payload
        if flags & PADDED:
            if not flen or payload[0] >= flen:
                raise _protocol("DATA padding as long as the frame")
            data = payload[1:flen - payload[0]]
        # The connection window counts every DATA frame, whatever its stream's state (§6.9).
        if flen > self._recv_window:
            raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self._recv_window -= flen
        st = self._streams.get(sid)
        if st is None or st.request_done or st.pushed:
            self._credit(None, flen)
            self._admit(DATA, sid)  # never goes on: DATA is allowed only where st is open
            return
        if flen > st.recv_window:
            self._credit(None, flen)
            self._stream_error(sid, ErrorCode.FLOW_CONTROL_ERROR, st)
            return
        st.recv_window -= flen
        end = flags & END_STREAM
        if not data and not end:
            self._charge("empty DATA frame")
        if st.swallow:  # a reset is queued behind our response: no more body wanted
            self._credit(None, flen)
            if end:  # the request ended first after all: no reset needed
                st.request_done = True
            return
        if flen != len(data):  # padding: ours to return, the layer above acknowledges data
            self._credit(st, flen - len(data))
        st.received += len(data)
        if st.content_length >= 0 and (st.received > st.content_length
                                       or (end and st.received != st.content_length)):
            self._credit(None, len(data))
            self._reject(sid, ErrorCode.PROTOCOL_ERROR, st)
            return
        if st.auto_ack:
            self._credit(st, len(data))
        else:
            st.unacked += len(data)
        if end:
            st.request_done = True
        self._events.append(BodyReceived(sid, data, bool(end)))
        if end and st.response_done:
            self._forget(st, False)

    def _on_headers(self, flags: int, sid: int, payload: bytes) -> None:
        self_dep = False
        if flags & (PADDED | PRIORITY_FLAG):
            start, stop = 0, len(payload)
            if flags & PADDED:
                if not payload or payload[0] > stop - 1:
                    raise _protocol("HEADERS padding longer than the frame")
                start, stop = 1, stop - payload[0]
            if flags & PRIORITY_FLAG:
                if stop - start < 5:
                    raise _frame_size("HEADERS too short for its priority fields")
                self_dep = _u31(payload, start) == sid
                start += 5
            payload = payload[start:stop]
        if not flags & END_HEADERS:
            if not sid:
                raise _protocol("HEADERS on stream 0")
            self._block_sid, self._block_flags, self._block_self_dep = sid, flags, self_dep
            self._block = [payload]
            self._block_len = len(payload)
            self._continuations = 0
            return
        self._header_block(sid, flags, payload, self_dep)

    def _on_continuation(self, flags: int, payload: bytes) -> None:
        self._continuations += 1
        if self._continuations > _MAX_CONTINUATIONS:
            raise _calm(f"CONTINUATION flood: {self._continuations} frames in one header block")
        self._block.append(payload)
        self._block_len += len(payload)
        if self._block_len > self._max_header_list:
            raise _calm(f"header block of over {self._max_header_list} bytes")
        if flags & END_HEADERS:
            block = b"".join(self._block)
            sid, self._block_sid = self._block_sid, 0
            self._block = []
            self._header_block(sid, self._block_flags, block, self._block_self_dep)

    def _on_stray_continuation(self, flags: int, sid: int, payload: bytes) -> None:
        raise _protocol("CONTINUATION without an open header block")

    def _header_block(self, sid: int, flags: int, block: bytes, self_dep: bool) -> None:
        if not sid:
            raise _protocol("HEADERS on stream 0")
        if sid & 1 and sid > self._last_client_sid:
            self._open(sid, flags & END_STREAM, block, self_dep)
            return
        # Not a new stream.  The block is decoded all the same: it may change the HPACK table.
        fields = self._decode(block)
        go_on, st = self._admit(HEADERS, sid)
        if not go_on:
            return
        if st is None:  # an idle even id: clients open odd streams only (§5.1.1)
            raise _protocol(f"HEADERS on stream {sid}, which the client cannot open")
        if self_dep:
            self._reject(sid, ErrorCode.PROTOCOL_ERROR, st)
            return
        # Trailers (§8.1): they end the request, carry no pseudo-header and nothing malformed.
        try:
            if not flags & END_STREAM:
                raise Malformed("trailers without END_STREAM")
            validate_trailers(fields)
        except Malformed:
            self._reject(sid, ErrorCode.PROTOCOL_ERROR, st)
            return
        if st.content_length >= 0 and st.received != st.content_length:
            self._reject(sid, ErrorCode.PROTOCOL_ERROR, st)
            return
        st.request_done = True
        if not st.swallow:
            self._events.append(BodyReceived(sid, b"", True))
        if st.response_done:
            self._forget(st, False)

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return self._decoder.decode(block)[0]
        except Exception as exc:
            raise self._hpack_failed(exc) from None

    @staticmethod
    def _hpack_failed(exc: Exception) -> _ConnectionError:
        if isinstance(exc, OversizedHeaderListError):
            return _calm(f"header list too large: {exc}")
        return _ConnectionError(ErrorCode.COMPRESSION_ERROR, f"HPACK: {type(exc).__name__}: {exc}")

    def _open(self, sid: int, end: int, block: bytes, self_dep: bool) -> None:
        """A HEADERS block opening a new stream."""
        self._last_client_sid = sid
        self._streams_opened += 1
        try:
            req = self._decoder.request(block)
        except Malformed:
            self._reject(sid, ErrorCode.PROTOCOL_ERROR)
            return
        except Exception as exc:
            raise self._hpack_failed(exc) from None
        if self._goaway_last_id is not None:  # after our final GOAWAY: the client may retry
            self._answer(fr.rst_stream(sid, ErrorCode.REFUSED_STREAM))
            self._remember_closed(sid, True)
            self._charge("stream after GOAWAY")
            return
        if self_dep or (end and req.content_length > 0):
            self._reject(sid, ErrorCode.PROTOCOL_ERROR)
            return
        # Over our limit is a stream error (§5.1.2); REFUSED_STREAM tells the client it may retry.
        if self._client_streams >= self._max_streams:
            self._answer(fr.rst_stream(sid, ErrorCode.REFUSED_STREAM))
            self._remember_closed(sid, True)
            self._count(self._recent_refusals, _REFUSED_WINDOW, _REFUSED_LIMIT, "refused streams")
            return
        st = Stream(sid, req.method, req.urgency, self._peer_initial_window, self._initial_window,
                    request_done=bool(end), content_length=req.content_length, fresh=True)
        self._streams[sid] = st
        self._client_streams += 1
        self._unfinished += 1
        self._fresh.append(st)
        self._got_request = True
        self._events.append(RequestReceived(sid, req.method, req.target, req.authority, list(req.headers),
                                            "2", bool(end)))

    def _on_rst_stream(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid:
            raise _protocol("RST_STREAM on stream 0")
        if len(payload) != 4:
            raise _frame_size(f"RST_STREAM of {len(payload)} octets")
        go_on, st = self._admit(RST_STREAM, sid)
        if not go_on:
            return
        if st is None:  # crossed our END_STREAM or RST_STREAM
            self._charge("RST_STREAM on a closed stream")
            return
        unanswered = not st.pushed and not st.response_done
        self._drop(st, by_us=False)
        if st.fresh:
            # HEADERS and RST_STREAM in one slice: the request never reaches the layer above,
            # so a HEADERS + RST_STREAM pair costs no handler (the rapid-reset amplification).
            self._unsurface(sid)
        else:
            self._events.append(StreamReset(sid, int.from_bytes(payload, "big")))
        if unanswered:
            self._count_reset()

    def _unsurface(self, sid: int) -> None:
        self._events[:] = [e for e in self._events
                           if not (isinstance(e, (RequestReceived, BodyReceived)) and e.stream_id == sid)]

    def _on_settings(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise _protocol("SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise _frame_size(f"SETTINGS ACK with a {len(payload)}-byte payload")
            return
        if len(payload) % 6:
            raise _frame_size(f"SETTINGS of {len(payload)} octets")
        self._charge("SETTINGS")
        for i in range(0, len(payload), 6):
            self._apply_setting(int.from_bytes(payload[i:i + 2], "big"), int.from_bytes(payload[i + 2:i + 6], "big"))
        self._answer(fr.SETTINGS_ACK)

    def _apply_setting(self, code: int, value: int) -> None:
        if code == Setting.INITIAL_WINDOW_SIZE:
            if value > MAX_WINDOW:
                raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, f"INITIAL_WINDOW_SIZE {value}")
            delta = value - self._peer_initial_window
            self._peer_initial_window = value
            for st in self._streams.values():  # §6.9.2: applies to open streams, maybe negative
                st.send_window += delta
                if st.send_window > MAX_WINDOW:
                    raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE overflows a window")
        elif code == Setting.MAX_FRAME_SIZE:
            if not fr.DEFAULT_MAX_FRAME <= value <= 2**24 - 1:
                raise _protocol(f"MAX_FRAME_SIZE {value}")
            self._peer_max_frame = value
        elif code == Setting.ENABLE_PUSH:
            if value > 1:
                raise _protocol(f"ENABLE_PUSH {value}")
            self._peer_enable_push = bool(value)
        elif code == Setting.MAX_CONCURRENT_STREAMS:
            self._peer_max_streams = value
        elif code == Setting.HEADER_TABLE_SIZE:
            if value < self._peer_table_size:
                self._table_update_due = True
            self._peer_table_size = value
        elif code in (Setting.ENABLE_CONNECT_PROTOCOL, Setting.NO_RFC7540_PRIORITIES) and value > 1:
            raise _protocol(f"setting {code:#x} = {value}")
        # MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored (§6.5.2).

    def _on_ping(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise _protocol("PING on a stream")
        if len(payload) != 8:
            raise _frame_size(f"PING of {len(payload)} octets")
        self._charge("PING")
        if not flags & ACK:
            self._answer(fr.ping(payload, ack=True))
        elif payload == _DRAIN_PING and self._draining and self._goaway_last_id is None:
            self._final_goaway(0, "")

    def _on_goaway(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise _protocol("GOAWAY on a stream")
        if len(payload) < 8:
            raise _frame_size(f"GOAWAY of {len(payload)} octets")
        code = int.from_bytes(payload[4:8], "big")
        detail = payload[8:88].decode("ascii", "replace")
        raise _ConnectionError(code, f"peer sent GOAWAY ({code_name(code)}) {detail}".rstrip(), send_goaway=False)

    def _on_window_update(self, flags: int, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _frame_size(f"WINDOW_UPDATE of {len(payload)} octets")
        increment = _u31(payload)
        if not sid:
            if not increment:
                raise _protocol("connection WINDOW_UPDATE of 0")
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window over 2^31-1")
        else:
            go_on, st = self._admit(WINDOW_UPDATE, sid)
            if not go_on:
                return
            if st is None:
                self._charge("WINDOW_UPDATE on a closed stream")
                return
            if not increment:
                self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, st)
                return
            st.send_window += increment
            if st.send_window > MAX_WINDOW:
                self._stream_error(sid, ErrorCode.FLOW_CONTROL_ERROR, st)
                return
        self._window_updates += 1
        if self._window_updates > _WINDOW_UPDATE_BASE + _WINDOW_UPDATE_PER_DATA_FRAME * self._data_frames_sent:
            raise _calm(f"WINDOW_UPDATE flood: {self._window_updates} for {self._data_frames_sent} DATA frames")

    def _on_priority(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid:
            raise _protocol("PRIORITY on stream 0")
        if len(payload) != 5:
            raise _frame_size(f"PRIORITY of {len(payload)} octets")
        self._charge("PRIORITY")
        if _u31(payload) == sid:  # §5.3.1: a stream cannot depend on itself
            go_on, st = self._admit(PRIORITY, sid)
            if not go_on:
                return
            if st is None and (sid > self._last_client_sid if sid & 1 else sid > self._last_push_sid):
                raise _protocol(f"stream {sid} depends on itself")
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, st)

    def _on_push_promise(self, flags: int, sid: int, payload: bytes) -> None:
        raise _protocol("PUSH_PROMISE from a client")

    def _on_priority_update(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise _protocol("PRIORITY_UPDATE on a stream")  # RFC 9218 §7.1
        if len(payload) < 4:
            raise _frame_size("PRIORITY_UPDATE shorter than 4 octets")
        self._charge("PRIORITY_UPDATE")
        st = self._streams.get(_u31(payload))
        if st is not None and not st.pushed:
            st.urgency = parse_urgency(payload[4:], st.urgency)

    # -- abuse counters ----------------------------------------------------------------------

    def _charge(self, what: str) -> None:
        """One frame that moved no request forward (see _CONTROL_BASE)."""
        self._control += 1
        if self._control > _CONTROL_BASE + _CONTROL_PER_STREAM * self._streams_opened:
            raise _calm(f"control frame flood: {self._control} for {self._streams_opened} streams (last: {what})")

    def _answer(self, frame: bytes) -> None:
        """Queue a control frame that answers the peer's input."""
        if self._queued_control >= _QUEUED_CONTROL_MAX:
            raise _calm(f"{self._queued_control} control frames queued for a peer that does not read")
        self._out.append(frame)
        self._queued_control += 1

    def _count_reset(self) -> None:
        self._count(self._recent_resets, _RESET_WINDOW, _RESET_LIMIT, "rapid reset")

    def _count(self, recent: deque[int], window: int, limit: int, what: str) -> None:
        # Recorded by ordinal of streams opened, not by id: ids may skip ahead, which would
        # let a client age its own resets out of an id-based window.
        recent.append(self._streams_opened)
        horizon = self._streams_opened - window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if len(recent) > limit:
            raise _calm(f"{what}: {len(recent)} streams among the last {window}")

    # -- termination ---------------------------------------------------------------------------

    def _terminate(self, code: int, reason: str, *, send_goaway: bool = True) -> list[Event]:
        """End the connection now: GOAWAY (unless the peer left), streams dropped."""
        events: list[Event] = []
        self._terminated = True
        for st in list(self._streams.values()):
            if not st.response_done:
                events.append(StreamReset(st.stream_id, ErrorCode.CANCEL))
            self._clear_parts(st)
        self._streams.clear()
        self._client_streams = self._unfinished = 0
        for bucket in self._buckets:
            bucket.clear()
        self._pending.clear()
        self._inbuf, self._inpos, self._more = b"", 0, False
        if send_goaway:
            self._out.append(fr.goaway(self._last_client_sid, code, reason.encode("utf-8", "replace")[:120]))
        events.append(ConnectionTerminated(code, reason))
        return events

    # -- outbound: responses -----------------------------------------------------------------

    def send_response(self, stream_id: int, status: int, headers: Headers, body: Body | None = None,
                      *, end_stream: bool = True) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.response_done or st.headers_sent:
            if body is not None and not isinstance(body, _BUFFER):
                close_body(body)
            return
        if st.method == b"HEAD":
            if body is not None and not isinstance(body, _BUFFER):
                close_body(body)
            body = None
            end_stream = True
        empty = body is None or (isinstance(body, _BUFFER) and not body)
        try:
            block = encode_fields(encode_status(status), headers)
        except Exception:  # invalid headers from the layer above
            self.reset_stream(stream_id, ErrorCode.INTERNAL_ERROR)
            return
        st.headers_sent = True
        if empty and end_stream:
            self._write_headers(stream_id, block, END_STREAM)
            self._finish(st, self._out)
            return
        if end_stream and type(body) is bytes and not st.pushed and not any(self._buckets):
            # A small whole body that the windows take now (most static files), with no other
            # body waiting that urgency might put first: its DATA frame goes right behind the
            # HEADERS, without a trip through the scheduler.  (Pushed bodies always wait for
            # the scheduler: they must not overtake the page they were pushed for.)
            n = len(body)
            if n <= self._peer_max_frame and n <= st.send_window and n <= self._send_window:
                self._write_headers(stream_id, block, 0)
                self._out += (_head(n, DATA, END_STREAM, stream_id), body)
                st.send_window -= n
                self._send_window -= n
                self._data_frames_sent += 1
                self._finish(st, self._out)
                return
        self._write_headers(stream_id, block, 0)
        if not empty:
            assert body is not None
            self._enqueue(st, body)
        st.end_pending = st.end_pending or end_stream
        self._schedule(st)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.response_done or st.end_pending:
            return
        if data:
            self._enqueue(st, data)
            st.drain_wanted = True
        if end_stream:
            st.end_pending = True
        if st.headers_sent:
            self._schedule(st)

    def send_informational(self, stream_id: int, status: int, headers: Headers) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.response_done or st.headers_sent or not 100 <= status < 200:
            return
        try:
            block = encode_fields(encode_status(status), headers)
        except Exception:
            self.reset_stream(stream_id, ErrorCode.INTERNAL_ERROR)
            return
        self._write_headers(stream_id, block, 0)

    def _write_headers(self, sid: int, block: bytes, flags: int) -> None:
        if self._table_update_due:  # RFC 7541 §4.2: we use no table, so "size 0" always fits
            block = b"\x20" + block
            self._table_update_due = False
        if len(block) <= self._peer_max_frame:
            self._out += (_head(len(block), HEADERS, flags | END_HEADERS, sid), block)
        else:
            self._out += fr.header_block(HEADERS, flags, sid, block, self._peer_max_frame)

    def _enqueue(self, st: Stream, body: Body) -> None:
        st.parts.append(body)
        if isinstance(body, _BUFFER):
            st.queued += len(body)

    # -- outbound: push ------------------------------------------------------------------------

    @property
    def push_enabled(self) -> bool:
        return not self._terminated and not self._draining and self._peer_enable_push

    def push_promise(self, stream_id: int, request_headers: Headers, *, urgency: int = 3) -> int | None:
        if not self.push_enabled or self._pushes >= self._max_pushes:
            return None
        parent = self._streams.get(stream_id)
        if parent is None or parent.pushed or parent.response_done:
            return None
        # Promised streams not finished count against the peer's limit (reserved ones too).
        active = sum(1 for s in self._streams.values() if s.pushed and not s.response_done)
        if active >= self._peer_max_streams or self._next_push_sid > _LAST_STREAM_ID:
            return None
        method = b"GET"
        for name, value in request_headers:
            if name == b":method":
                method = bytes(value)
        try:
            block = encode_fields(b"", request_headers)
        except Exception:
            return None
        promised = self._next_push_sid
        self._next_push_sid += 2
        self._last_push_sid = promised
        self._pushes += 1
        if self._table_update_due:
            block = b"\x20" + block
            self._table_update_due = False
        self._out += fr.header_block(fr.PUSH_PROMISE, 0, stream_id, block, self._peer_max_frame,
                                     fr.u32(promised))
        self._streams[promised] = Stream(promised, method, min(max(urgency, 0), 7), self._peer_initial_window, 0,
                                         pushed=True, request_done=True)
        self._unfinished += 1
        return promised

    # -- flow control and stream control -----------------------------------------------------

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

    def reset_stream(self, stream_id: int, error_code: int = 0x8) -> None:
        st = self._streams.get(stream_id)
        if st is None:
            return
        if not error_code and st.end_pending and not st.request_done:
            # The response is complete but still queued while the request body keeps coming:
            # the RST_STREAM(NO_ERROR) that stops the upload leaves right after the response's
            # last DATA (RFC 9113 §8.1).  Body arriving meanwhile is credited and dropped.
            st.reset_after = 0
            st.auto_ack = st.swallow = True
            if st.unacked:
                n, st.unacked = st.unacked, 0
                self._credit(None, n)
            return
        self._out.append(fr.rst_stream(stream_id, error_code))
        self._drop(st, by_us=True)

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
        if len(closed) >= _CLOSED_MEMORY:
            self._closed_before, self._closed = closed, {}

    def _closed_by_us(self, sid: int) -> bool | None:
        """Whether a recently closed stream was closed by our RST_STREAM; None if not known."""
        by_us = self._closed.get(sid)
        return self._closed_before.get(sid) if by_us is None else by_us

    @staticmethod
    def _clear_parts(st: Stream) -> None:
        for part in st.parts:
            if not isinstance(part, _BUFFER):
                close_body(part)
        st.parts.clear()
        st.queued = 0
        st.offset = 0
        st.end_pending = False

    def buffered(self, stream_id: int) -> int:
        st = self._streams.get(stream_id)
        return 0 if st is None else st.queued - st.offset

    # -- outbound: scheduling ------------------------------------------------------------------

    def _schedule(self, st: Stream) -> None:
        if not st.scheduled and not st.response_done:
            st.scheduled = True
            self._buckets[st.urgency].append(st)

    def data_to_send(self, limit: int = 256 * 1024) -> bytes:
        out = self._out
        self._out = []
        self._queued_control = 0
        if not self._terminated:
            sent = 0
            # No early exit on a closed connection window: an END_STREAM-only frame needs none.
            while sent < limit:
                n = self._send_next(out, limit - sent)
                if n < 0:
                    break
                sent += n
            if self._out:  # resets and credits queued while sending (reset_after, failing bodies)
                out += self._out
                self._out = []
        if not out:
            return b""
        return b"".join(out)

    def _send_next(self, out: list[bytes | memoryview], room: int) -> int:
        """DATA from the most urgent stream that can send; round-robin within an urgency so one
        large body does not starve the others (one frame a turn, unless the stream is alone
        in its bucket).  Returns the body bytes sent, -1 if no stream could send."""
        for level, bucket in enumerate(self._buckets):
            for _ in range(len(bucket)):
                st = bucket.popleft()
                if st.response_done:
                    st.scheduled = False
                    continue
                if st.urgency != level:  # re-prioritised (PRIORITY_UPDATE) while queued
                    self._buckets[st.urgency].append(st)
                    continue
                sent = self._send_frames(st, out, room if not bucket else 1)
                if st.response_done or not (st.parts or st.end_pending):
                    st.scheduled = False  # finished, or waiting for send_data
                else:
                    bucket.append(st)  # back of the line: round-robin
                if sent >= 0:
                    return sent
        return -1

    def _send_frames(self, st: Stream, out: list[bytes | memoryview], room: int) -> int:
        """DATA frames for ``st``, until ``room`` body bytes are out (at least one frame), the
        windows close or the queue runs dry.  Returns the bytes sent, -1 if nothing was."""
        sid = st.stream_id
        parts = st.parts
        sent = -1
        while True:
            window = min(st.send_window, self._send_window)
            while parts and not isinstance(parts[0], _BUFFER):
                if window <= 0:
                    return sent  # pull nothing the peer cannot take yet
                source = parts[0]
                try:
                    chunk = next(source)
                except StopIteration:
                    parts.popleft()
                    close_body(source)
                    continue
                except Exception:  # a failing body (file vanished…) ends only its stream
                    self.reset_stream(sid, ErrorCode.INTERNAL_ERROR)
                    return max(sent, 0)
                if chunk:
                    parts.appendleft(chunk)
                    st.queued += len(chunk)
            if not parts:
                if not st.end_pending:
                    self._drained(st)
                    return sent
                out.append(_head(0, DATA, END_STREAM, sid))
                self._data_frames_sent += 1
                st.end_pending = False
                self._finish(st, out)
                return max(sent, 0)
            if window <= 0:
                return sent
            part = parts[0]
            size = len(part)  # type: ignore[arg-type]
            offset = st.offset
            n = min(size - offset, window, self._peer_max_frame)
            if offset == 0 and n == size:
                piece: bytes | memoryview = part  # type: ignore[assignment]
            else:
                piece = memoryview(part)[offset:offset + n]  # type: ignore[arg-type]
            offset += n
            if offset == size:
                parts.popleft()
                st.queued -= size
                st.offset = 0
            else:
                st.offset = offset
            last = not parts and st.end_pending
            out += (_head(n, DATA, END_STREAM if last else 0, sid), piece)
            st.send_window -= n
            self._send_window -= n
            self._data_frames_sent += 1
            sent = n if sent < 0 else sent + n
            if last:
                st.end_pending = False
                self._finish(st, out)
                return sent
            if not parts:
                self._drained(st)
                return sent
            if sent >= room:
                return sent

    def _drained(self, st: Stream) -> None:
        if st.drain_wanted:
            st.drain_wanted = False
            self._pending.append(StreamDrained(st.stream_id))

    # -- closing -------------------------------------------------------------------------------

    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Graceful close, in two steps (RFC 9113 §6.8): a PING and a GOAWAY naming the largest
        stream id; once the PING comes back (streams the client opened meanwhile are still
        served), or on a second call, the GOAWAY naming the last stream processed.  With an
        error code the final GOAWAY goes at once."""
        if self._terminated or self._goaway_last_id is not None:
            return
        if error_code or self._draining:
            self._final_goaway(error_code, reason)
            return
        self._draining = True
        # The PING goes first: clients built on the h2 library stop answering anything once a
        # GOAWAY is in; sent in one write, the ACK still cannot come back before the client
        # has read the GOAWAY.
        self._out += (fr.ping(_DRAIN_PING, ack=False),
                      fr.goaway(_LAST_STREAM_ID, 0, reason.encode("utf-8", "replace")[:120]))

    def _final_goaway(self, code: int, reason: str) -> None:
        self._draining = True
        self._goaway_last_id = self._last_client_sid
        self._out.append(fr.goaway(self._last_client_sid, code, reason.encode("utf-8", "replace")[:120]))

    @property
    def closing(self) -> bool:
        return self._terminated or (self._goaway_last_id is not None and self._unfinished == 0)

    @property
    def open_streams(self) -> int:
        return self._unfinished

    @property
    def awaiting_head(self) -> bool:
        # From the first bytes until the first complete request (preface, SETTINGS and first
        # HEADERS all count as "the head" for the header timeout), then whenever a header
        # block or a HEADERS/CONTINUATION frame is only partly in.
        if self._terminated:
            return False
        if self._got_input and not self._got_request:
            return True
        if self._block_sid:
            return True
        rest = len(self._inbuf) - self._inpos
        return rest >= 4 and self._inbuf[self._inpos + 3] in (HEADERS, CONTINUATION)

