"""The server side of one HTTP/2 connection (RFC 9113), sans-IO; implements ``events.ServerCore``.
This module is the receiving side; output.py sends, state.py holds what both share.

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
* Closing is two-step (RFC 9113 §6.8): a PING and a GOAWAY naming 2^31-1, then on the PING's
  ACK (or a second ``close``) the real GOAWAY naming the last stream processed.  Clients built
  on the h2 library never answer that PING (they drop their output once a GOAWAY is in), so the
  glue should call ``close`` again after a short grace.
* A small whole body (one frame, windows open, nothing else queued, not a push) leaves right
  behind its HEADERS instead of going through the scheduler: the common static-file case.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pushserve.protocol.h2.frames as fr
from pushserve.protocol.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    RequestReceived,
    StreamReset,
)
from pushserve.protocol.h2.fields import (
    Malformed,
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
from pushserve.protocol.h2.hpack_decoder import HeaderListTooLarge
from pushserve.protocol.h2.output import DRAIN_PING, Output
from pushserve.protocol.h2.streams import CLOSED, IDLE, PEER_MAY_SEND, STATE_NAMES, Stream

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
_unpack_head = fr.HEAD.unpack_from


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


class H2Core(Output):
    """Server side of one HTTP/2 connection; implements ``events.ServerCore``.  This class is
    the receiving side; sending is output.Output, the shared state state.ConnectionState."""

    http_version = "2"

    def __init__(self, *, max_concurrent_streams: int = 128, max_header_list_size: int = 65536,
                 initial_window_size: int = 1 << 20, max_push_per_connection: int = 100) -> None:
        super().__init__(max_concurrent_streams=max_concurrent_streams, max_header_list_size=max_header_list_size,
                         initial_window_size=initial_window_size, max_push_per_connection=max_push_per_connection)
        self._events: list[Event] = []  # events of the slice being processed
        self._fresh: list[Stream] = []  # streams surfaced in that slice
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
        self._recent_resets: deque[int] = deque()
        self._recent_refusals: deque[int] = deque()
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

    # -- connection start and input -------------------------------------------------------------

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

    # -- frame handlers -------------------------------------------------------------------------

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
        if isinstance(exc, HeaderListTooLarge):
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
        elif payload == DRAIN_PING and self._draining and self._goaway_last_id is None:
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

    # -- abuse counters -------------------------------------------------------------------------

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

    # -- termination ----------------------------------------------------------------------------

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
