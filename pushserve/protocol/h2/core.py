"""The server side of one HTTP/2 connection (RFC 9113), sans-IO; implements ``events.ServerCore``.

The connection is composed of small objects, each with its own rules and tests:

* ``flow.FlowControl`` — the windows both ways (§6.9);
* ``budget.FloodBudget`` — the flood budgets, checked per frame;
* ``headerblock.HeaderBlockAssembler`` — a header block spread over CONTINUATION frames;
* ``closed.ClosedStreams`` — how recently closed streams ended;
* ``settings.PeerSettings`` — what the peer told us in SETTINGS;
* ``scheduler.Scheduler`` — response bodies into DATA frames, by urgency (RFC 9218);
* ``streams`` — the stream record, and the two tables of what the peer may send in each state
  and what the layer above may do at each step of a response;
* ``fields.RequestDecoder`` — HPACK and the request field rules.

This class holds the streams and ties those together: input is cut into frames by hand
(frames.HEAD), each frame handled by one method; what the layer above asks for is checked
against the stream's step and queued.  Output is a list of byte strings joined once per
``data_to_send``: control frames and header blocks are queued in ``_out`` as they arise, bodies
wait in per-stream queues for the scheduler.

Invariants worth keeping in mind:

* ``_streams`` holds only streams the layer above knows about (surfaced requests and our
  pushes).  Requests refused or reset before surfacing never enter it; DATA for streams not in
  it is credited back to the connection window at once, so the window never leaks.
* A stream's ``unacked`` counts received body bytes the layer above has not acknowledged yet;
  acknowledgements are clamped to it, so acknowledging twice is harmless.
* Input is processed in slices of at most ``SLICE_FRAMES`` frames; the rest stays buffered until
  ``resume`` (``pending_input`` says there is more), so one connection's flood cannot hold the
  event loop.  Flood budgets are checked per frame, so nothing overshoots them.
* Closing is two-step (§6.8): a PING and a GOAWAY naming 2^31-1, then on the PING's ACK (or a
  second ``close``) the real GOAWAY naming the last stream processed.  Clients built on the h2
  library never answer that PING (they drop their output once a GOAWAY is in), so the glue
  should call ``close`` again after a short grace.
* A small whole body (one frame, windows open, nothing else queued, not a push) leaves right
  behind its HEADERS instead of going through the scheduler: the common static-file case.
"""

from __future__ import annotations

from collections.abc import Callable

import pushserve.protocol.h2.frames as fr
from pushserve.protocol.events import (
    Body,
    BodyReceived,
    ConnectionTerminated,
    Event,
    Headers,
    LocalProtocolError,
    RequestReceived,
    StreamReset,
    close_body,
)
from pushserve.protocol.h2.budget import FloodBudget
from pushserve.protocol.h2.closed import CLOSED, FORGOTTEN, RESET_BY_PEER, RESET_BY_US, ClosedStreams
from pushserve.protocol.h2.errors import ConnectionFailure, StreamFailure, calm, frame_size_error, protocol_error
from pushserve.protocol.h2.fields import (
    Malformed,
    RequestDecoder,
    encode_fields,
    encode_pseudo,
    encode_status,
    parse_urgency,
    validate_trailers,
)
from pushserve.protocol.h2.flow import FlowControl
from pushserve.protocol.h2.frames import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PADDED,
    PRIORITY,
    PRIORITY_FLAG,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    ErrorCode,
    code_name,
)
from pushserve.protocol.h2.headerblock import HeaderBlockAssembler
from pushserve.protocol.h2.hpack_decoder import HeaderListTooLarge
from pushserve.protocol.h2.scheduler import BUFFER, Output, Scheduler
from pushserve.protocol.h2.settings import PeerSettings
from pushserve.protocol.h2.streams import (
    AWAITING_HEAD,
    ENDED,
    IDLE,
    INFORM,
    LAYER_MAY,
    PEER_MAY_SEND,
    PHASE_NAMES,
    PUSH,
    RESPOND,
    SEND,
    SENDING_BODY,
    STATE_NAMES,
    VERB_NAMES,
    Stream,
)
from pushserve.protocol.outgoing import check_status

SLICE_FRAMES = 512  # frames processed per receive_data / resume call
LAST_STREAM_ID = 2**31 - 1
DRAIN_PING = b"gracegon"  # opaque data of the PING of the two-step GOAWAY
_PUSHED_MAY = LAYER_MAY[1][AWAITING_HEAD]
_unpack_head = fr.HEAD.unpack_from
_pack_head = fr.HEAD.pack  # fr.head without its call, for the frames of every response


def _u31(payload: bytes, at: int = 0) -> int:
    return int.from_bytes(payload[at:at + 4], "big") & 0x7FFFFFFF


class H2Core:
    """Server side of one HTTP/2 connection; implements ``events.ServerCore``."""

    http_version = "2"

    def __init__(self, *, max_concurrent_streams: int = 128, max_header_list_size: int = 65536,
                 initial_window_size: int = 1 << 20, max_push_per_connection: int = 100) -> None:
        self._max_streams = max_concurrent_streams
        self._max_header_list = max_header_list_size
        self._max_pushes = max_push_per_connection
        self._decoder = RequestDecoder(max_header_list_size)
        self._flow = FlowControl(initial_window_size)
        self._budget = FloodBudget()
        self._block = HeaderBlockAssembler(max_header_list_size)
        self._closed = ClosedStreams()
        self._peer = PeerSettings()
        self._scheduler = Scheduler(self._flow, self._peer, self._budget, self._finish, self._body_failed)

        self._streams: dict[int, Stream] = {}
        self._client_streams = 0  # streams of the peer in _streams (our limit applies to them)
        self._unfinished = 0  # streams in _streams whose response is not done
        self._last_client_sid = 0  # the highest stream id the peer opened
        self._last_surfaced = 0  # ... that reached the layer above (a connection error's GOAWAY names it)
        self._last_push_sid = 0
        self._next_push_sid = 2
        self._pushes = 0

        self._out: Output = []  # frames queued ahead of any DATA still to schedule
        self._terminated = False  # connection error / peer GOAWAY / EOF: nothing more to do
        self._draining = False  # first GOAWAY of a graceful close sent
        self._goaway_last_id: int | None = None  # final GOAWAY sent, naming this stream

        # Input.
        self._events: list[Event] = []  # events of the read being judged (its slices)
        self._fresh: list[Stream] = []  # streams opened by that read
        self._withdrawn: set[int] = set()  # ... and reset in it: never surfaced
        self._inbuf = b""
        self._inpos = 0
        self._more = False  # a slice stopped at its budget with frames left
        self._preface_left = len(fr.PREFACE)
        self._first_frame = True
        self._got_input = False
        self._got_request = False
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
            fr.Setting.MAX_CONCURRENT_STREAMS: self._max_streams,
            fr.Setting.MAX_HEADER_LIST_SIZE: self._max_header_list,
            fr.Setting.INITIAL_WINDOW_SIZE: self._flow.initial,
        }))
        self._out += self._flow.opening()

    def receive_data(self, data: bytes) -> list[Event]:
        if self._terminated:
            return []
        if not data:
            return self._read_failed(0, "peer closed the connection", send_goaway=False)
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
        """StreamDrained events (and failed bodies' StreamReset) found while sending
        (``data_to_send``).  They also ride along with the next ``receive_data``, but a producer
        waiting for a drain should not depend on the peer sending something first, so the glue
        may collect them after a flush."""
        drained = self._scheduler.drained
        if not drained:
            return []
        events: list[Event] = list(drained)
        drained.clear()
        return events

    def _slice(self) -> list[Event]:
        buf, pos = self._inbuf, self._inpos
        end = len(buf)
        self._more = False
        try:
            if self._preface_left:
                pos = self._check_preface(buf, pos)
            budget = SLICE_FRAMES
            handle = self._frame
            while end - pos >= 9:
                if not budget:
                    self._more = True
                    break
                hi, lo, ftype, flags, sid = _unpack_head(buf, pos)
                length = hi << 16 | lo
                if length > fr.DEFAULT_MAX_FRAME:  # our SETTINGS_MAX_FRAME_SIZE is the default
                    raise frame_size_error(f"{length}-byte frame over the 16384-byte maximum")
                stop = pos + 9 + length
                if stop > end:
                    break
                budget -= 1
                handle(ftype, flags, sid & 0x7FFFFFFF, buf[pos + 9:stop])
                pos = stop
        except ConnectionFailure as err:
            return self._read_failed(err.code, err.reason, send_goaway=err.send_goaway)
        except Exception as exc:  # never let a peer's bytes raise out of the core
            return self._read_failed(ErrorCode.INTERNAL_ERROR, f"failed on input: {type(exc).__name__}: {exc}")
        if pos >= end:
            self._inbuf, self._inpos = b"", 0
        else:
            self._inpos = pos
        if self._more:  # the rest of this read is judged first: its requests wait until then
            return self.next_events()
        return self._end_read()

    def _end_read(self) -> list[Event]:
        """Every frame of the read has been judged: what it meant goes to the layer above."""
        events = self._events
        self._events = []
        withdrawn = self._withdrawn
        fresh = self._fresh
        if fresh:
            for st in fresh:
                st.fresh = False
                if st.stream_id not in withdrawn:
                    self._last_surfaced = st.stream_id
            fresh.clear()
        if withdrawn:
            events = [e for e in events
                      if not (isinstance(e, RequestReceived | BodyReceived) and e.stream_id in withdrawn)]
            withdrawn.clear()
        drained = self._scheduler.drained
        if drained:
            events[:0] = drained
            drained.clear()
        return events

    def _read_failed(self, code: int, reason: str, *, send_goaway: bool = True) -> list[Event]:
        """The read ended in a connection error: requests it opened never reach the layer above
        (nor any reset of theirs); streams surfaced before hear of the end by StreamReset."""
        for st in self._fresh:
            self._withdrawn.add(st.stream_id)
            self._streams.pop(st.stream_id, None)
        events = self._end_read()
        return events + self._terminate(code, reason, send_goaway=send_goaway)

    def _check_preface(self, buf: bytes, pos: int) -> int:
        done = len(fr.PREFACE) - self._preface_left
        got = buf[pos:pos + self._preface_left]
        if got != fr.PREFACE[done:done + len(got)]:
            raise protocol_error("invalid connection preface")
        self._preface_left -= len(got)
        return pos + len(got)

    def _frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        block = self._block
        if block.stream_id:  # a header block is open: only its CONTINUATION may come (§6.10)
            whole = block.add(ftype, sid, flags, payload)
            if whole is not None:
                self._header_block(sid, block.flags, whole, block.self_dep)
            return
        if self._first_frame:
            if ftype != SETTINGS or flags & ACK:
                raise protocol_error("connection preface without SETTINGS")
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
                self._budget.charge("unknown frame")  # §5.5: ignored

    # -- stream states (RFC 9113 §5.1) ----------------------------------------------------------

    def _state(self, sid: int) -> tuple[int, Stream | None]:
        """The state of stream ``sid`` (streams.py's constants), and its record if we hold it."""
        st = self._streams.get(sid)
        if st is not None:
            return st.state, st
        if sid > (self._last_client_sid if sid & 1 else self._last_push_sid):
            return IDLE, None
        return self._closed.how(sid), None

    def _admit(self, ftype: int, sid: int) -> tuple[bool, Stream | None]:
        """Check a frame on stream ``sid`` against ``PEER_MAY_SEND``.  Returns whether to go on
        with it, and the stream if we hold it.  Connection errors raise; stream errors are
        answered here; frames on a stream we reset are taken in and dropped (§5.1 "closed")."""
        state, st = self._state(sid)
        if state == RESET_BY_US:
            self._budget.charge("frame on a stream we reset")
            return False, None
        if state == FORGOTTEN and ftype == HEADERS:
            raise protocol_error(f"HEADERS on stream {sid}, below the last opened {self._last_client_sid}")
        rule = PEER_MAY_SEND[state]
        if ftype in rule.allowed:
            return True, st
        if ftype in rule.fatal:
            raise ConnectionFailure(rule.code, f"frame type {ftype} on {STATE_NAMES[state]} stream {sid}")
        self._stream_error(sid, rule.code, st)
        return False, st

    def _stream_error(self, sid: int, code: int, st: Stream | None) -> None:
        """Reset a stream because of what the peer sent on it."""
        self._answer(fr.rst_stream(sid, code))
        if st is not None:
            self._drop(st, RESET_BY_US)
            if st.fresh:
                self._unsurface(sid)
            else:
                self._events.append(StreamReset(sid, code))
        elif self._closed.how(sid) == FORGOTTEN:
            # A stream we know nothing of now: answered once, then ignored (a late upload frame
            # is followed by more).  A stream remembered as closed keeps how it closed.
            self._closed.add(sid, RESET_BY_US)
        self._budget.charge("stream error")

    def _reject(self, sid: int, code: int, st: Stream | None = None) -> None:
        """A stream error on a request the peer got wrong: counts as one of its resets."""
        self._stream_error(sid, code, st)
        self._budget.reset()

    # -- stream bookkeeping ---------------------------------------------------------------------

    def _drop(self, st: Stream, how: int) -> None:
        """The stream is over (reset either way): drop its queue and forget it."""
        self._clear_parts(st)
        self._set_response_done(st)
        st.request_done = True
        if st.unacked:  # body nobody will read still holds connection window
            n, st.unacked = st.unacked, 0
            self._give_back(None, n)
        self._forget(st, how)

    def _finish(self, st: Stream, out: Output) -> None:
        """END_STREAM has been queued in ``out``."""
        self._set_response_done(st)
        st.auto_ack = True
        if st.unacked:
            n, st.unacked = st.unacked, 0
            self._give_back(st, n)
        if st.request_done:
            self._forget(st, CLOSED)
        elif st.reset_after >= 0:
            out.append(fr.rst_stream(st.stream_id, st.reset_after))
            self._drop(st, RESET_BY_US)

    def _set_response_done(self, st: Stream) -> None:
        if not st.response_done:
            st.response_done = True
            self._unfinished -= 1

    def _forget(self, st: Stream, how: int) -> None:
        if self._streams.pop(st.stream_id, None) is not None and not st.pushed:
            self._client_streams -= 1
        self._closed.add(st.stream_id, how)

    def _give_back(self, st: Stream | None, n: int) -> None:
        if not self._terminated:
            self._flow.give_back(st, n, self._out)

    @staticmethod
    def _clear_parts(st: Stream) -> None:
        for part in st.parts:
            if not isinstance(part, BUFFER):
                close_body(part)
        st.parts.clear()
        st.queued = 0
        st.offset = 0
        st.end_pending = False

    def _body_failed(self, st: Stream, exc: Exception) -> None:
        self.reset_stream(st.stream_id, ErrorCode.INTERNAL_ERROR)
        # The layer above hears of it like a peer's reset, with the reason for its one log line.
        self._scheduler.drained.append(StreamReset(st.stream_id, ErrorCode.INTERNAL_ERROR,
                                                   f"response cut short: {exc}"))

    # -- frame handlers -------------------------------------------------------------------------

    def _on_data(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid:
            raise protocol_error("DATA on stream 0")
        flen = len(payload)
        data = payload
        if flags & PADDED:
            if not flen or payload[0] >= flen:
                raise protocol_error("DATA padding as long as the frame")
            data = payload[1:flen - payload[0]]
        self._flow.receive(flen)  # the connection window counts every DATA frame (§6.9)
        st = self._streams.get(sid)
        if st is None or st.request_done or st.pushed:
            self._give_back(None, flen)
            self._admit(DATA, sid)  # never goes on: DATA is allowed only where st is open
            return
        try:
            self._flow.receive_on(st, flen)
        except StreamFailure as err:
            self._give_back(None, flen)
            self._stream_error(sid, err.code, st)
            return
        end = flags & END_STREAM
        if not data and not end:
            self._budget.charge("empty DATA frame")
        if st.swallow:  # a reset is queued behind our response: no more body wanted
            self._give_back(None, flen)
            if end:  # the request ended first after all: no reset needed
                st.request_done = True
            return
        if flen != len(data):  # padding: ours to return, the layer above acknowledges data
            self._give_back(st, flen - len(data))
        st.received += len(data)
        if st.content_length >= 0 and (st.received > st.content_length
                                       or (end and st.received != st.content_length)):
            self._give_back(None, len(data))
            self._reject(sid, ErrorCode.PROTOCOL_ERROR, st)
            return
        if st.auto_ack:
            self._give_back(st, len(data))
        else:
            st.unacked += len(data)
        if end:
            st.request_done = True
        self._events.append(BodyReceived(sid, data, bool(end)))
        if end and st.response_done:
            self._forget(st, CLOSED)

    def _on_headers(self, flags: int, sid: int, payload: bytes) -> None:
        self_dep = False
        if flags & (PADDED | PRIORITY_FLAG):
            start, stop = 0, len(payload)
            if flags & PADDED:
                if not payload or payload[0] > stop - 1:
                    raise protocol_error("HEADERS padding longer than the frame")
                start, stop = 1, stop - payload[0]
            if flags & PRIORITY_FLAG:
                if stop - start < 5:
                    raise frame_size_error("HEADERS too short for its priority fields")
                self_dep = _u31(payload, start) == sid
                start += 5
            payload = payload[start:stop]
        if not flags & END_HEADERS:
            self._block.start(sid, flags, payload, self_dep)
            return
        self._header_block(sid, flags, payload, self_dep)

    def _on_stray_continuation(self, flags: int, sid: int, payload: bytes) -> None:
        raise protocol_error("CONTINUATION without an open header block")

    def _header_block(self, sid: int, flags: int, block: bytes, self_dep: bool) -> None:
        if not sid:
            raise protocol_error("HEADERS on stream 0")
        if sid & 1 and sid > self._last_client_sid:
            self._open(sid, flags & END_STREAM, block, self_dep)
            return
        # Not a new stream.  The block is decoded all the same: it may change the HPACK table.
        fields = self._decode(block)
        go_on, st = self._admit(HEADERS, sid)
        if not go_on:
            return
        if st is None:  # an idle even id: clients open odd streams only (§5.1.1)
            raise protocol_error(f"HEADERS on stream {sid}, which the client cannot open")
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
            self._forget(st, CLOSED)

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return self._decoder.decode(block)[0]
        except Exception as exc:
            raise self._hpack_failed(exc) from None

    @staticmethod
    def _hpack_failed(exc: Exception) -> ConnectionFailure:
        if isinstance(exc, HeaderListTooLarge):
            return calm(f"header list too large: {exc}")
        return ConnectionFailure(ErrorCode.COMPRESSION_ERROR, f"HPACK: {type(exc).__name__}: {exc}")

    def _open(self, sid: int, end: int, block: bytes, self_dep: bool) -> None:
        """A HEADERS block opening a new stream."""
        self._last_client_sid = sid
        self._budget.opened += 1
        try:
            req = self._decoder.request(block)
        except Malformed:
            self._reject(sid, ErrorCode.PROTOCOL_ERROR)
            return
        except Exception as exc:
            raise self._hpack_failed(exc) from None
        if self._goaway_last_id is not None:  # after our final GOAWAY: the client may retry
            self._answer(fr.rst_stream(sid, ErrorCode.REFUSED_STREAM))
            self._closed.add(sid, RESET_BY_US)
            self._budget.charge("stream after GOAWAY")
            return
        if self_dep or (end and req.content_length > 0):
            self._reject(sid, ErrorCode.PROTOCOL_ERROR)
            return
        # Over our limit is a stream error (§5.1.2); REFUSED_STREAM tells the client it may retry.
        if self._client_streams >= self._max_streams:
            self._answer(fr.rst_stream(sid, ErrorCode.REFUSED_STREAM))
            self._closed.add(sid, RESET_BY_US)
            self._budget.refused()
            return
        st = Stream(sid, req.method, req.urgency, self._flow.peer_initial, self._flow.initial,
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
            raise protocol_error("RST_STREAM on stream 0")
        if len(payload) != 4:
            raise frame_size_error(f"RST_STREAM of {len(payload)} octets")
        go_on, st = self._admit(RST_STREAM, sid)
        if not go_on:
            return
        if st is None:  # crossed our END_STREAM or RST_STREAM
            self._budget.charge("RST_STREAM on a closed stream")
            return
        unanswered = not st.pushed and not st.response_done
        self._drop(st, RESET_BY_PEER)
        if st.fresh:
            # HEADERS and RST_STREAM in one slice: the request never reaches the layer above,
            # so a HEADERS + RST_STREAM pair costs no handler (the rapid-reset amplification).
            self._unsurface(sid)
        else:
            self._events.append(StreamReset(sid, int.from_bytes(payload, "big")))
        if unanswered:
            self._budget.reset()

    def _unsurface(self, sid: int) -> None:
        """A request of this read is withdrawn before it reaches the layer above (its events
        are filtered out once, at the end of the read)."""
        self._withdrawn.add(sid)

    def _on_settings(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise protocol_error("SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise frame_size_error(f"SETTINGS ACK with a {len(payload)}-byte payload")
            return
        if len(payload) % 6:
            raise frame_size_error(f"SETTINGS of {len(payload)} octets")
        self._budget.charge("SETTINGS")
        self._peer.apply(payload, self._peer_initial_window)
        self._answer(fr.SETTINGS_ACK)

    def _peer_initial_window(self, value: int) -> None:
        self._flow.peer_initial_changed(value, self._streams.values())

    def _on_ping(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise protocol_error("PING on a stream")
        if len(payload) != 8:
            raise frame_size_error(f"PING of {len(payload)} octets")
        self._budget.charge("PING")
        if not flags & ACK:
            self._answer(fr.ping(payload, ack=True))
        elif payload == DRAIN_PING and self._draining and self._goaway_last_id is None:
            self._final_goaway(0, "")

    def _on_goaway(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise protocol_error("GOAWAY on a stream")
        if len(payload) < 8:
            raise frame_size_error(f"GOAWAY of {len(payload)} octets")
        code = int.from_bytes(payload[4:8], "big")
        detail = payload[8:88].decode("ascii", "replace")
        raise ConnectionFailure(code, f"peer sent GOAWAY ({code_name(code)}) {detail}".rstrip(), send_goaway=False)

    def _on_window_update(self, flags: int, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise frame_size_error(f"WINDOW_UPDATE of {len(payload)} octets")
        increment = _u31(payload)
        if not sid:
            self._flow.grow(increment)
        else:
            go_on, st = self._admit(WINDOW_UPDATE, sid)
            if not go_on:
                return
            if st is None:  # it may cross our END_STREAM; an increment of 0 is an error all the same
                if not increment:
                    self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, None)
                else:
                    self._budget.charge("WINDOW_UPDATE on a closed stream")
                return
            try:
                self._flow.grow_stream(st, increment)
            except StreamFailure as err:
                self._stream_error(sid, err.code, st)
                return
        self._budget.window_update()

    def _on_priority(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid:
            raise protocol_error("PRIORITY on stream 0")
        if len(payload) != 5:
            raise frame_size_error(f"PRIORITY of {len(payload)} octets")
        self._budget.charge("PRIORITY")
        if _u31(payload) == sid:  # §5.3.1: a stream cannot depend on itself
            go_on, st = self._admit(PRIORITY, sid)
            if not go_on:
                return
            if st is None and (sid > self._last_client_sid if sid & 1 else sid > self._last_push_sid):
                raise protocol_error(f"stream {sid} depends on itself")
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, st)

    def _on_push_promise(self, flags: int, sid: int, payload: bytes) -> None:
        raise protocol_error("PUSH_PROMISE from a client")

    def _on_priority_update(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise protocol_error("PRIORITY_UPDATE on a stream")  # RFC 9218 §7.1
        if len(payload) < 4:
            raise frame_size_error("PRIORITY_UPDATE shorter than 4 octets")
        self._budget.charge("PRIORITY_UPDATE")
        st = self._streams.get(_u31(payload))
        if st is not None and not st.pushed:
            st.urgency = parse_urgency(payload[4:], st.urgency)

    def _answer(self, frame: bytes) -> None:
        """Queue a control frame that answers the peer's input."""
        self._budget.answer()
        self._out.append(frame)

    # -- responses ------------------------------------------------------------------------------

    def send_response(self, stream_id: int, status: int, headers: Headers, body: Body | None = None,
                      *, end_stream: bool = True) -> None:
        st = self._streams.get(stream_id)
        if st is None or not st.may & RESPOND:
            if body is not None and not isinstance(body, BUFFER):
                close_body(body)
            self._misuse(stream_id, st, RESPOND)
            return
        try:
            if type(status) is not int or not 200 <= status <= 599:
                check_status(status)
            block = encode_fields(encode_status(status), headers)
        except LocalProtocolError:
            if body is not None and not isinstance(body, BUFFER):
                close_body(body)
            raise
        if st.method == b"HEAD":  # no content, whatever the layer above gives (RFC 9110 §9.3.2)
            if body is not None and not isinstance(body, BUFFER):
                close_body(body)
            body = None
        empty = body is None or (isinstance(body, BUFFER) and not body)
        if empty and end_stream:
            st.phase, st.may = ENDED, 0
            self._write_headers(stream_id, block, END_STREAM)
            self._finish(st, self._out)
            return
        if end_stream and type(body) is bytes and not st.pushed and not self._scheduler.waiting:
            # A small whole body that the windows take now (most static files), with no other
            # body waiting that urgency might put first: its DATA frame goes right behind the
            # HEADERS, without a trip through the scheduler.  (Pushed bodies always wait for
            # the scheduler: they must not overtake the page they were pushed for.)
            n = len(body)
            flow = self._flow
            if n <= self._peer.max_frame and n <= st.send_window and n <= flow.send:
                st.phase, st.may = ENDED, 0
                self._write_headers(stream_id, block, 0)
                self._out += (_pack_head(n >> 16, n & 0xFFFF, DATA, END_STREAM, stream_id), body)
                st.send_window -= n
                flow.send -= n
                self._budget.data_frames += 1
                self._finish(st, self._out)
                return
        st.enter(ENDED if end_stream else SENDING_BODY)
        self._write_headers(stream_id, block, 0)
        if not empty:
            assert body is not None
            self._enqueue(st, body)
        st.end_pending = end_stream
        self._scheduler.schedule(st)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        st = self._streams.get(stream_id)
        if st is None or not st.may & SEND:
            self._misuse(stream_id, st, SEND)
            return
        if data and st.method != b"HEAD":
            self._enqueue(st, data)
            st.drain_wanted = True
        if end_stream:
            st.end_pending = True
            st.enter(ENDED)
        self._scheduler.schedule(st)

    def send_informational(self, stream_id: int, status: int, headers: Headers) -> None:
        st = self._streams.get(stream_id)
        if st is None or not st.may & INFORM:
            self._misuse(stream_id, st, INFORM)
            return
        check_status(status, informational=True)
        self._write_headers(stream_id, encode_fields(encode_status(status), headers), 0)

    def _misuse(self, sid: int, st: Stream | None, verb: int) -> None:
        """A call the stream's step does not allow.  Raises LocalProtocolError, except where
        the stream ended under the caller's feet (reset by either side, or the connection
        ended): the caller has been or will be told by a StreamReset, and the call is dropped."""
        what = VERB_NAMES[verb]
        if st is not None:
            raise LocalProtocolError(f"{what} on stream {sid}, which {PHASE_NAMES[st.phase]}")
        if self._terminated:
            return
        state = self._state(sid)[0] if sid > 0 else IDLE
        if state == IDLE:
            raise LocalProtocolError(f"{what} on stream {sid}, which was never opened")
        if state == CLOSED:
            raise LocalProtocolError(f"{what} on stream {sid}, which {PHASE_NAMES[ENDED]}")

    def _write_headers(self, sid: int, block: bytes, flags: int) -> None:
        peer = self._peer
        if peer.table_update_due:  # RFC 7541 §4.2: we use no table, so "size 0" always fits
            block = b"\x20" + block
            peer.table_update_due = False
        n = len(block)
        if n <= peer.max_frame:
            self._out += (_pack_head(n >> 16, n & 0xFFFF, HEADERS, flags | END_HEADERS, sid), block)
        else:
            self._out += fr.header_block(HEADERS, flags, sid, block, peer.max_frame)

    @staticmethod
    def _enqueue(st: Stream, body: Body) -> None:
        st.parts.append(body)
        if isinstance(body, BUFFER):
            st.queued += len(body)

    # -- push -----------------------------------------------------------------------------------

    @property
    def push_enabled(self) -> bool:
        return not self._terminated and not self._draining and self._peer.enable_push

    def push_promise(self, stream_id: int, request_headers: Headers, *, urgency: int = 3) -> int | None:
        parent = self._streams.get(stream_id)
        if parent is None or not parent.may & PUSH:
            self._misuse(stream_id, parent, PUSH)
            return None
        n = 0  # pseudo-header fields first (RFC 9113 §8.3); one later on fails the field check
        while n < len(request_headers) and request_headers[n][0][:1] == b":":
            n += 1
        pseudo = request_headers[:n]
        block = encode_fields(encode_pseudo(pseudo), request_headers[n:])
        if not self.push_enabled or self._pushes >= self._max_pushes or self._next_push_sid > LAST_STREAM_ID:
            return None
        # Promised streams not finished count against the peer's limit (reserved ones too).
        active = sum(1 for s in self._streams.values() if s.pushed and not s.response_done)
        if active >= self._peer.max_streams:
            return None
        method = dict(pseudo).get(b":method", b"GET")
        promised = self._next_push_sid
        self._next_push_sid += 2
        self._last_push_sid = promised
        self._pushes += 1
        peer = self._peer
        if peer.table_update_due:
            block = b"\x20" + block
            peer.table_update_due = False
        self._out += fr.header_block(fr.PUSH_PROMISE, 0, stream_id, block, peer.max_frame, fr.u32(promised))
        self._streams[promised] = Stream(promised, bytes(method), min(max(urgency, 0), 7), self._flow.peer_initial,
                                         0, pushed=True, may=_PUSHED_MAY, request_done=True)
        self._unfinished += 1
        return promised

    # -- flow control, resets -------------------------------------------------------------------

    def acknowledge_received(self, stream_id: int, length: int) -> None:
        st = self._streams.get(stream_id)
        if st is None or length <= 0:
            return
        n = min(length, st.unacked)
        if n:
            st.unacked -= n
            self._give_back(st, n)

    def reset_stream(self, stream_id: int, error_code: int = 0x8) -> None:
        st = self._streams.get(stream_id)
        if st is None:  # resetting a stream that ended (either way) is harmless; a stranger's is not
            if not self._terminated and (stream_id <= 0 or self._state(stream_id)[0] == IDLE):
                raise LocalProtocolError(f"a reset of stream {stream_id}, which was never opened")
            return
        if not error_code and st.end_pending and not st.request_done:
            # The response is complete but still queued while the request body keeps coming:
            # the RST_STREAM(NO_ERROR) that stops the upload leaves right after the response's
            # last DATA (RFC 9113 §8.1).  Body arriving meanwhile is credited and dropped.
            st.reset_after = 0
            st.auto_ack = st.swallow = True
            if st.unacked:
                n, st.unacked = st.unacked, 0
                self._give_back(None, n)
            return
        self._out.append(fr.rst_stream(stream_id, error_code))
        self._drop(st, RESET_BY_US)

    def buffered(self, stream_id: int) -> int:
        st = self._streams.get(stream_id)
        return 0 if st is None else st.queued - st.offset

    # -- output ---------------------------------------------------------------------------------

    def data_to_send(self, limit: int = 256 * 1024) -> bytes:
        out = self._out
        self._out = []
        self._budget.queued = 0
        if not self._terminated and self._scheduler.waiting:
            self._scheduler.write(out, limit)
            if self._out:  # resets and credits queued while sending (reset_after, failing bodies)
                out += self._out
                self._out = []
        if not out:
            return b""
        return b"".join(out)

    # -- closing --------------------------------------------------------------------------------

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
        self._out += (fr.ping(DRAIN_PING, ack=False),
                      fr.goaway(LAST_STREAM_ID, 0, reason.encode("utf-8", "replace")[:120]))

    def _final_goaway(self, code: int, reason: str) -> None:
        self._draining = True
        self._goaway_last_id = self._last_client_sid
        self._out.append(fr.goaway(self._last_client_sid, code, reason.encode("utf-8", "replace")[:120]))

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
        self._scheduler.clear()
        self._inbuf, self._inpos, self._more = b"", 0, False
        if send_goaway:  # naming the last request processed: those after it are safe to retry
            self._out.append(fr.goaway(self._last_surfaced, code, reason.encode("utf-8", "replace")[:120]))
        events.append(ConnectionTerminated(code, reason))
        return events

    def stream_state(self, stream_id: int) -> str:
        """The RFC 9113 §5.1 state of a stream, as streams.STATE_NAMES names it (a closed
        stream says how it closed), for tests and debugging."""
        if stream_id <= 0:
            raise ValueError(f"no stream {stream_id}")
        return STATE_NAMES[self._state(stream_id)[0]]

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
        if self._block.stream_id:
            return True
        rest = len(self._inbuf) - self._inpos
        return rest >= 4 and self._inbuf[self._inpos + 3] in (HEADERS, CONTINUATION)
