"""The server side of one HTTP/3 connection (RFC 9114) over QUIC (RFC 9000), sans-IO.

QUIC and HTTP/3 framing are aioquic's (with pushserve's limits: quic.py, http3.py); this class is
what the layer above sees, the same contract as the HTTP/1.1 and HTTP/2 cores
(``events.ServerCore``) where it fits: requests come out as ``RequestReceived`` and the other
events of events.py, answers go in through ``send_response``, ``send_data``,
``send_informational``, ``push_promise``, ``reset_stream``…  Where TCP cores take and give bytes,
this one takes datagrams (``receive_datagram``) and gives datagrams (``datagrams_to_send``), and
since QUIC runs its own timers (loss detection, acknowledgements, pacing, idle), ``timer`` says
when ``handle_timer`` is due.  Every call that needs the time is given it; nothing here reads a
clock, opens a socket or imports asyncio.

Bodies.  A response body is not handed to aioquic whole: aioquic keeps what it is given in the
stream's send buffer until it is acknowledged and sends buffered streams round-robin, so a
megabyte given at once would sit in memory and share the path equally with a stylesheet asked
for later.  Bodies wait here, per stream, and ``datagrams_to_send`` hands them over (``_feed``)
while a stream has less than ``_LOW`` bytes unsent in aioquic, most urgent first (RFC 9218
urgency from the ``priority`` header, updated by PRIORITY_UPDATE frames): a bucket of less
urgent streams is fed only once every stream of the more urgent ones has its whole body in
aioquic.  A small whole body (most static files) goes with its HEADERS at once.

Invariants:

* ``_streams`` holds every request stream the layer above was told about (and pushes, and
  requests refused after their head was decoded) until aioquic has finished with the QUIC stream;
  ``_unfinished`` counts those whose response has not been handed over to its end.
* Request body is credited back to the client only as the layer above acknowledges it
  (``acknowledge_received``; quic.py), so an upload goes at the consumer's pace.
* Closing is two-step (RFC 9114 §5.2): a GOAWAY naming the largest stream ID, then on a second
  ``close`` one naming the first request not processed; the connection closes once every stream
  below it is finished and acknowledged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import suppress

from aioquic.h3 import events as h3e
from aioquic.h3.connection import ErrorCode
from aioquic.h3.exceptions import NoAvailablePushIDError
from aioquic.quic import events as qe
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import END_STATES, NetworkAddress

from pushserve.protocol.events import (
    CONNECTION_SPECIFIC,
    Body,
    BodyReceived,
    ConnectionTerminated,
    Event,
    Headers,
    LocalProtocolError,
    RequestReceived,
    StreamDrained,
    StreamReset,
    close_body,
)
from pushserve.protocol.h2.fields import Malformed, parse_urgency, validate_request, validate_trailers
from pushserve.protocol.h3.http3 import ControlReader, ServerH3
from pushserve.protocol.h3.packets import ConnectionIds
from pushserve.protocol.h3.quic import ServerQuic

# A stream with less than _REFILL bytes unsent in aioquic is given more body, in DATA frames of
# up to _FRAME bytes, until it has _LOW unsent: large enough that aioquic never waits for us
# within one datagrams_to_send, and that bodies go in few large frames (each hand-over costs a
# frame head and a trip through aioquic's send path); small enough that a more urgent response
# is not queued behind much.
_LOW = 64 * 1024
_REFILL = _LOW // 2
_FRAME = 32 * 1024
# A body this small goes out with its HEADERS at once, without waiting for _feed.
_DIRECT = 16 * 1024
# Datagrams one datagrams_to_send call returns at most: the endpoint serves other connections
# between calls.
_MAX_DATAGRAMS = 256

# Rapid reset (the HTTP/3 form of CVE-2023-44487), counted per streams opened as in the HTTP/2
# core: more than _RESET_LIMIT client resets of unanswered requests among the last
# _RESET_WINDOW request streams ends the connection.
_RESET_WINDOW = 200
_RESET_LIMIT = 100
_EARLY_PRIORITIES = 64  # PRIORITY_UPDATEs kept for streams not opened yet
_GONE_KEPT = 1024

# The layer above speaks HTTP/2 error codes (events.ServerCore.reset_stream); their HTTP/3 twins.
_H3_ERRORS = {0x0: ErrorCode.H3_NO_ERROR, 0x2: ErrorCode.H3_INTERNAL_ERROR, 0x7: ErrorCode.H3_REQUEST_REJECTED,
              0x8: ErrorCode.H3_REQUEST_CANCELLED, 0xB: ErrorCode.H3_EXCESSIVE_LOAD}
_LAST_REQUEST_ID = (1 << 62) - 4


class _Stream:
    __slots__ = ("body", "drain_wanted", "end_pending", "fed_end", "headers_sent", "incremental", "method",
                 "parts", "pushed", "queued", "refused", "request_done", "response_done", "sid", "urgency")

    def __init__(self, sid: int, method: bytes, urgency: int, *, pushed: bool = False) -> None:
        self.sid = sid
        self.method = method
        self.urgency = urgency
        self.incremental = False
        self.pushed = pushed
        self.parts: deque[bytes | memoryview | Iterator[bytes]] = deque()
        self.queued = 0  # bytes in ``parts`` (iterators count once read)
        self.body = None
        self.end_pending = False  # the response ends once ``parts`` are handed over
        self.fed_end = False
        self.headers_sent = False
        self.response_done = False  # everything of the response is in aioquic
        self.request_done = pushed
        self.drain_wanted = False
        self.refused = False


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error 0x{code:x}"


def _incremental(value: bytes) -> bool:
    """The ``i`` parameter of an RFC 9218 Priority field value."""
    return any(item.strip() in (b"i", b"i=?1") for item in value.split(b","))


class H3Core:
    """Server side of one HTTP/3 connection: ``events.ServerCore`` with datagrams for bytes."""

    http_version = "3"
    pending_input = False  # a datagram is processed whole, and is small

    def __init__(self, configuration: QuicConfiguration, *, original_destination_connection_id: bytes,
                 retry_source_connection_id: bytes | None = None, cids: ConnectionIds,
                 max_concurrent_streams: int = 128, max_field_section_size: int = 65536,
                 max_push_per_connection: int = 100) -> None:
        self._quic = ServerQuic(configuration=configuration,
                                original_destination_connection_id=original_destination_connection_id,
                                retry_source_connection_id=retry_source_connection_id, cids=cids,
                                max_streams=max_concurrent_streams)
        self._max_field_section_size = max_field_section_size
        self._h3: ServerH3 | None = None
        self._streams: dict[int, _Stream] = {}
        self._unfinished = 0
        self._buckets: list[list[_Stream]] = [[] for _ in range(8)]  # streams with body to hand over
        self._queued_any = False
        self._ended: set[int] = set()  # streams answered to the end, until aioquic discards them
        self._drain_watch: set[int] = set()
        self._events: list[Event] = []  # arisen while sending: StreamDrained, StreamReset of a failed body
        self._taps: dict[int, ControlReader] = {}
        self._early_priorities: dict[int, bytes] = {}
        self._opened = 0  # request streams the client opened
        self._resets: deque[int] = deque()  # ``_opened`` at each client reset of an unanswered request
        self._fresh: set[int] = set()  # requests surfaced by the datagram being processed
        self._announced = False  # ConnectionTerminated said
        # Streams aioquic has finished with, the latest _GONE_KEPT: answered to the end (True)
        # or reset (False), so a late call on one is told apart from one on a stream never opened.
        self._gone: dict[int, bool] = {}
        self._last_request = -4
        self._goaway: int | None = None
        self._goaway_final = False
        self._terminated = False
        self._pushes = 0
        self._max_pushes = max_push_per_connection
        self.handshake_complete = False
        self.cipher = ""
        self.cids_issued: list[bytes] = [self._quic.host_cid]  # routes the endpoint should add ...
        self.cids_retired: list[bytes] = []  # ... and drop

    # -- datagrams and time -------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: NetworkAddress, now: float) -> list[Event]:
        if self._terminated:
            return []
        self._quic.receive_datagram(data, addr, now)
        return self._quic_events()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkAddress]]:
        quic = self._quic
        out: list[tuple[bytes, NetworkAddress]] = []
        while True:
            fed = self._feed() if self._queued_any else False
            got = quic.datagrams_to_send(now)
            out += got
            # Again only while the congestion window has room for what the next feed gives.
            if not (fed and got and self._queued_any and quic.window_open()) or len(out) >= _MAX_DATAGRAMS:
                break
        if self._ended:
            self._reap()
        if self._drain_watch:
            self._check_drained()
        return out

    def timer(self) -> float | None:
        """When ``handle_timer`` is due (None: never, until something else happens)."""
        return self._quic.get_timer()

    def handle_timer(self, now: float) -> list[Event]:
        self._quic.handle_timer(now)
        return self._quic_events()

    @property
    def peer_address(self) -> NetworkAddress | None:
        return self._quic.get_peer_address()

    @property
    def terminated(self) -> bool:
        """True once the connection is over: nothing more will be sent or received."""
        return self._terminated

    @property
    def handshake_pending(self) -> bool:
        return not self.handshake_complete and not self._terminated

    # -- QUIC and HTTP/3 events ---------------------------------------------------------------------

    def _quic_events(self) -> list[Event]:
        out: list[Event] = []
        quic = self._quic
        self._fresh.clear()
        while (event := quic.next_event()) is not None:
            kind = type(event)
            if kind is qe.StreamDataReceived:
                assert isinstance(event, qe.StreamDataReceived)
                sid = event.stream_id
                if sid & 3 == 2:  # a client's unidirectional stream: perhaps its control stream
                    tap = self._taps.get(sid)
                    if tap is None:
                        tap = self._taps[sid] = ControlReader()
                    if tap.active:
                        for pushed, element, value in tap.feed(event.data):
                            self._priority_update(pushed, element, value)
                self._h3_events(event, out)
            elif kind is qe.StreamReset or kind is qe.StopSendingReceived:
                assert isinstance(event, qe.StreamReset | qe.StopSendingReceived)
                self._h3_events(event, out)
                self._peer_reset(event.stream_id, event.error_code, out, stop=kind is qe.StopSendingReceived)
            elif kind is qe.ProtocolNegotiated:
                if self._h3 is None:
                    self._h3 = ServerH3(quic, max_field_section_size=self._max_field_section_size)
            elif kind is qe.HandshakeCompleted:
                self.handshake_complete = True
                schedule = quic.tls.key_schedule
                if schedule is not None:
                    self.cipher = "TLS_" + schedule.cipher_suite.name
            elif kind is qe.ConnectionIdIssued:
                assert isinstance(event, qe.ConnectionIdIssued)
                self.cids_issued.append(event.connection_id)
            elif kind is qe.ConnectionIdRetired:
                assert isinstance(event, qe.ConnectionIdRetired)
                self.cids_retired.append(event.connection_id)
            elif kind is qe.ConnectionTerminated:
                assert isinstance(event, qe.ConnectionTerminated)
                self._terminate(out, event.error_code, event.reason_phrase)
        return out

    def _h3_events(self, event: qe.QuicEvent, out: list[Event]) -> None:
        h3 = self._h3
        if h3 is None:
            return
        for h in h3.handle_event(event):
            if type(h) is h3e.DataReceived:
                assert isinstance(h, h3e.DataReceived)
                self._body(h.stream_id, h.data, h.stream_ended, out)
            elif type(h) is h3e.HeadersReceived:
                assert isinstance(h, h3e.HeadersReceived)
                self._headers(h.stream_id, h.headers, h.stream_ended, out)
        close = self._quic._close_event
        if h3._is_done and close is not None:
            # aioquic closed the connection for a protocol error: say it now, for the log.
            self._announce(out, close.error_code, close.reason_phrase or _code_name(close.error_code))

    def _headers(self, sid: int, fields: Headers, ended: bool, out: list[Event]) -> None:
        st = self._streams.get(sid)
        if st is not None:  # trailers (or anything after a refusal)
            if st.refused or st.request_done:
                return
            try:
                validate_trailers(fields)
            except Malformed:
                self._refuse(st, ErrorCode.H3_MESSAGE_ERROR)
                out.append(StreamReset(sid, ErrorCode.H3_MESSAGE_ERROR))
                return
            if ended:
                st.request_done = True
                out.append(BodyReceived(sid, b"", True))
            return
        self._last_request = max(self._last_request, sid)
        self._opened += 1
        try:
            req = validate_request(fields)
        except Malformed:
            req = None
        st = self._streams[sid] = _Stream(sid, req.method if req is not None else b"", 3)
        refusal = (ErrorCode.H3_MESSAGE_ERROR if req is None or req.method == b"CONNECT"
                   else ErrorCode.H3_REQUEST_REJECTED if self._goaway is not None and sid >= self._goaway else 0)
        if refusal or req is None:
            st.response_done = True  # never counted as unfinished
            self._refuse(st, refusal)
            return
        st.urgency = req.urgency
        priority = self._early_priorities.pop(sid, None)
        for name, value in req.headers:
            if name == b"priority":
                st.incremental = _incremental(value)
        if priority is not None:
            self._apply_priority(st, priority)
        st.request_done = ended
        self._unfinished += 1
        self._fresh.add(sid)
        out.append(RequestReceived(sid, req.method, req.target, req.authority, req.headers, "3", ended))

    def _body(self, sid: int, data: bytes, ended: bool, out: list[Event]) -> None:
        st = self._streams.get(sid)
        if st is None or st.refused or st.request_done:
            return  # nobody reads it: aioquic has credited it already
        if data:
            self._quic.body_received(sid, len(data))
        if ended:
            st.request_done = True
        if data or ended:
            out.append(BodyReceived(sid, data, ended))

    def _peer_reset(self, sid: int, code: int, out: list[Event], *, stop: bool) -> None:
        """The client reset its request (RESET_STREAM), or asked us to stop sending
        (STOP_SENDING: aioquic has reset our side already)."""
        self._quic.forget_body(sid)
        st = self._streams.get(sid)
        if st is None:
            if not stop and sid & 3 == 0 and sid > self._last_request:
                self._note_reset()  # reset before its head was complete
            return
        if st.refused:
            return
        if not stop:
            st.request_done = True
        if st.response_done:
            return
        if not st.pushed:
            self._note_reset()
        if not stop and st.headers_sent:
            # Only the request was cut short (an upload): the response goes on unless stopped.
            return
        self._drop(st)
        self._quic.reset_stream(sid, ErrorCode.H3_REQUEST_CANCELLED)
        if sid in self._fresh:  # reset in the same datagram as its head: the layer above never hears of it
            self._fresh.discard(sid)
            out[:] = [e for e in out if not (type(e) is RequestReceived and e.stream_id == sid)]
            return
        out.append(StreamReset(sid, code))

    def _note_reset(self) -> None:
        resets = self._resets
        resets.append(self._opened)
        while resets and resets[0] <= self._opened - _RESET_WINDOW:
            resets.popleft()
        if len(resets) > _RESET_LIMIT:
            self.close(0xB, f"rapid reset: {len(resets)} requests reset unanswered among the last {_RESET_WINDOW}")

    def _priority_update(self, pushed: bool, element: int, value: bytes) -> None:
        if pushed:
            return  # push IDs are not stream IDs, and no client both updates and takes pushes
        st = self._streams.get(element)
        if st is not None:
            self._apply_priority(st, value)
        elif element > self._last_request and len(self._early_priorities) < _EARLY_PRIORITIES:
            self._early_priorities[element] = value  # RFC 9218 §7.2: it may precede the request

    def _apply_priority(self, st: _Stream, value: bytes) -> None:
        urgency = parse_urgency(value, 3)
        st.incremental = _incremental(value)
        if urgency != st.urgency:
            bucket = self._buckets[st.urgency]
            if st in bucket:
                bucket.remove(st)
                self._buckets[urgency].append(st)
            st.urgency = urgency

    def _terminate(self, out: list[Event], code: int, reason: str) -> None:
        self._announce(out, code, reason)
        self._terminated = True

    def _announce(self, out: list[Event], code: int, reason: str) -> None:
        """The connection is ending (closed by us or the peer, or timed out): queued bodies
        are dropped, and the layer above hears it once."""
        if self._announced:
            return
        self._announced = True
        for st in self._streams.values():
            self._drop(st)
        out.append(ConnectionTerminated(code, reason))

    # -- answers (events.ServerCore) ----------------------------------------------------------------

    def initiate(self) -> None:
        """Nothing: HTTP/3's SETTINGS go out when the handshake has chosen the protocol."""

    def receive_data(self, data: bytes) -> list[Event]:
        raise TypeError("an HTTP/3 core takes datagrams: receive_datagram")

    def resume(self) -> list[Event]:
        return []

    def _sendable(self, stream_id: int, what: str) -> _Stream | None:
        """The stream ``what`` may go on; None when it was reset (by either side) or the
        connection is gone, so the late call is dropped; LocalProtocolError for a stream that was
        never opened or whose response has ended: a bug of the caller (as the other cores)."""
        if self._announced:
            return None
        st = self._streams.get(stream_id)
        if st is None:
            ended = self._gone.get(stream_id)
            if ended is False:
                return None
            raise LocalProtocolError(f"{what} on stream {stream_id}, "
                                     + ("whose response has ended" if ended else "which is not open"))
        return None if st.refused else st

    def send_response(self, stream_id: int, status: int, headers: Headers, body: Body | None = None,
                      *, end_stream: bool = True) -> None:
        st = self._sendable(stream_id, "a response")
        h3 = self._h3
        if st is None or h3 is None:
            if body is not None and not isinstance(body, bytes):
                close_body(body)
            return
        if st.headers_sent:
            raise LocalProtocolError(f"a second response on stream {stream_id}")
        if not 200 <= status <= 999:
            raise LocalProtocolError(f"a final response with status {status}")
        if st.method == b"HEAD":  # the head as the caller frames it, never a body
            if body is not None and not isinstance(body, bytes):
                close_body(body)
            body = None
        fields: Headers = [(b":status", b"%d" % status)]
        fields += [(k, v) for k, v in headers if k not in CONNECTION_SPECIFIC]
        st.headers_sent = True
        empty = body is None or (isinstance(body, bytes) and not body)
        if empty and end_stream:
            h3.send_headers(stream_id, fields, end_stream=True)
            self._answered(st)
            return
        if end_stream and type(body) is bytes and len(body) <= _DIRECT and not st.pushed:
            h3.send_headers(stream_id, fields)
            h3.send_data(stream_id, body, end_stream=True)
            self._answered(st)
            return
        h3.send_headers(stream_id, fields)
        if not empty:
            assert body is not None
            self._enqueue(st, body)
        st.end_pending = end_stream
        self._want_feed(st)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        st = self._sendable(stream_id, "body")
        if st is None:
            return
        if not st.headers_sent:
            raise LocalProtocolError(f"body before the response head on stream {stream_id}")
        if st.response_done or st.end_pending:
            raise LocalProtocolError(f"body after the end of the response on stream {stream_id}")
        if st.method == b"HEAD":
            data = b""
        if data:
            self._enqueue(st, data)
            st.drain_wanted = True
        if end_stream:
            st.end_pending = True
        if st.headers_sent:
            self._want_feed(st)

    def send_informational(self, stream_id: int, status: int, headers: Headers) -> None:
        if not 100 <= status < 200 or status == 101:  # HTTP/3 has no 101 (RFC 9114 §4.5)
            raise LocalProtocolError(f"an informational response with status {status}")
        st = self._sendable(stream_id, f"a {status} response")
        if st is None or self._h3 is None:
            return
        if st.headers_sent:
            raise LocalProtocolError(f"a {status} response after the final one on stream {stream_id}")
        fields: Headers = [(b":status", b"%d" % status)]
        fields += [(k, v) for k, v in headers if k not in CONNECTION_SPECIFIC]
        self._h3.send_headers(stream_id, fields)

    @property
    def push_enabled(self) -> bool:
        """True while the client accepts pushes (it sent MAX_PUSH_ID, no browser does)."""
        h3 = self._h3
        return (h3 is not None and h3.push_ids_left > 0 and self._pushes < self._max_pushes
                and self._goaway is None and not self._terminated)

    def push_promise(self, stream_id: int, request_headers: Headers, *, urgency: int = 3) -> int | None:
        parent = self._sendable(stream_id, "a push")
        h3 = self._h3
        if parent is None or h3 is None:
            return None
        if parent.pushed or parent.response_done:
            raise LocalProtocolError(f"a push on stream {stream_id}, "
                                     + ("itself pushed" if parent.pushed else "whose response has ended"))
        if not self.push_enabled:
            return None
        method = next((bytes(v) for k, v in request_headers if k == b":method"), b"GET")
        try:
            promised = h3.send_push_promise(stream_id, request_headers)
        except NoAvailablePushIDError:
            return None
        self._pushes += 1
        self._streams[promised] = _Stream(promised, method, min(max(urgency, 0), 7), pushed=True)
        self._unfinished += 1
        return promised

    def acknowledge_received(self, stream_id: int, length: int) -> None:
        self._quic.body_consumed(stream_id, length)

    def reset_stream(self, stream_id: int, error_code: int = 0x8) -> None:
        """Abandon a stream.  ``error_code`` 0 after a complete response means only "stop
        sending the request body" (STOP_SENDING H3_NO_ERROR, RFC 9114 §4.1): the response stays."""
        st = self._streams.get(stream_id)
        if st is None or st.refused or self._terminated:
            return
        code = _H3_ERRORS.get(error_code, ErrorCode.H3_REQUEST_CANCELLED)
        if error_code == 0 and (st.response_done or st.end_pending):
            if not st.request_done:
                self._stop_reading(stream_id, code)
                st.request_done = True
            return
        self._refuse(st, code)

    def buffered(self, stream_id: int) -> int:
        st = self._streams.get(stream_id)
        return (st.queued if st is not None else 0) + self._unsent(stream_id)

    def next_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def data_to_send(self, limit: int = 0) -> bytes:
        raise TypeError("an HTTP/3 core gives datagrams: datagrams_to_send")

    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Graceful with ``error_code`` 0: the two-step GOAWAY (module docstring); otherwise the
        connection closes at once with that error (HTTP/2 codes are translated)."""
        quic = self._quic
        if self._terminated or quic._state in END_STATES or quic._close_event is not None:
            return
        if error_code:
            code = _H3_ERRORS.get(error_code, ErrorCode.H3_INTERNAL_ERROR)
            quic.close(error_code=code, reason_phrase=reason)
            self._announce(self._events, code, reason)
            return
        h3 = self._h3
        if h3 is None:  # still in the handshake: nothing was asked for
            quic.close(error_code=ErrorCode.H3_NO_ERROR)
            return
        if self._goaway is None:
            self._goaway = _LAST_REQUEST_ID
            h3.send_goaway(self._goaway)
        elif not self._goaway_final:
            self._goaway_final = True
            self._goaway = self._last_request + 4
            h3.send_goaway(self._goaway)
        self._maybe_close()

    def abort(self, reason: str) -> None:
        """End the connection now (a timeout): one CONNECTION_CLOSE with ``reason``, no GOAWAY."""
        quic = self._quic
        if not self._terminated and quic._close_event is None and quic._state not in END_STATES:
            quic.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase=reason)
        self._announce(self._events, ErrorCode.H3_NO_ERROR, reason)

    def progress(self) -> int:
        """A number that changes whenever the connection moves: request bytes received, response
        bytes acknowledged (the sweep's test for a peer that stopped reading or acknowledging)."""
        quic = self._quic
        return int(quic._local_max_data.used) + sum(int(s.sender._buffer_start) for s in quic._streams.values())

    def _maybe_close(self) -> None:
        if self._goaway_final and not self._streams and self._quic._close_event is None:
            self._quic.close(error_code=ErrorCode.H3_NO_ERROR)

    @property
    def closing(self) -> bool:
        """True once the connection is closing: nothing more will be sent but its close."""
        return self._terminated or self._quic._close_event is not None

    @property
    def open_streams(self) -> int:
        return self._unfinished

    @property
    def awaiting_head(self) -> bool:
        """True while a request stream has begun and its head has not been decoded (checked by
        the once-a-second sweep, so it may look at aioquic's per-stream state)."""
        h3 = self._h3
        if h3 is None:
            return False
        return any(sid & 3 == 0 and sid not in self._streams and (s.buffer or s.frame_size is not None or s.blocked)
                   for sid, s in h3._stream.items())

    # -- sending bodies -------------------------------------------------------------------------------

    def _enqueue(self, st: _Stream, body: Body) -> None:
        if isinstance(body, bytes):
            st.parts.append(memoryview(body) if len(body) > _FRAME else body)
            st.queued += len(body)
        else:
            st.parts.append(body)

    def _want_feed(self, st: _Stream) -> None:
        bucket = self._buckets[st.urgency]
        if st not in bucket:
            bucket.append(st)
        self._queued_any = True

    def _unsent(self, sid: int) -> int:
        qs = self._quic._streams.get(sid)
        if qs is None:
            return 0
        sender = qs.sender
        return int(sender._buffer_stop - sender.highest_offset)

    def _feed(self) -> bool:
        """Hand queued body to aioquic, most urgent bucket first (module docstring); True if any."""
        h3 = self._h3
        assert h3 is not None
        fed = False
        for bucket in self._buckets:
            if not bucket:
                continue
            waiting = False
            for st in list(bucket):
                unsent = self._unsent(st.sid)
                if unsent >= _REFILL and st.parts:
                    waiting = True
                    continue
                room = _LOW - unsent
                turns = 0
                while room > 0 and st.parts and turns < 64:
                    turns += 1
                    chunk = self._take(st, min(room, _FRAME))
                    if not chunk:
                        continue
                    h3.send_data(st.sid, chunk, end_stream=False)
                    room -= len(chunk)
                    fed = True
                if st.refused:  # its body failed (a file cut short): reset and dropped by _take
                    fed = True
                    continue
                if not st.parts:
                    bucket.remove(st)
                    if st.end_pending:
                        h3.send_data(st.sid, b"", end_stream=True)
                        fed = True
                        self._answered(st)
                    elif st.drain_wanted:
                        self._drain_watch.add(st.sid)
                else:
                    waiting = True
            if waiting:
                break  # less urgent streams wait until these have their whole bodies in aioquic
        self._queued_any = any(self._buckets)
        return fed

    def _take(self, st: _Stream, size: int) -> bytes | None:
        """Up to ``size`` bytes of the stream's next part; None when a part ran out (the next
        call takes from the following one)."""
        part = st.parts[0]
        if isinstance(part, bytes | memoryview):
            if len(part) <= size:
                st.parts.popleft()
                st.queued -= len(part)
                return bytes(part)
            st.parts[0] = part[size:] if isinstance(part, memoryview) else memoryview(part)[size:]
            st.queued -= size
            return bytes(part[:size])
        try:
            chunk = next(part)
        except StopIteration:
            st.parts.popleft()
            return None
        except Exception as exc:  # a file cut short under us: the response cannot be completed
            st.parts.popleft()
            close_body(part)
            self._refuse(st, ErrorCode.H3_INTERNAL_ERROR)
            self._events.append(StreamReset(st.sid, ErrorCode.H3_INTERNAL_ERROR, f"response cut short: {exc}"))
            return None
        if len(chunk) > size:  # keep the rest in front of the iterator
            st.parts.appendleft(memoryview(chunk)[size:])
            st.queued += len(chunk) - size
            return chunk[:size]
        return chunk

    def _answered(self, st: _Stream) -> None:
        if not st.response_done:
            st.response_done = True
            self._unfinished -= 1
            self._ended.add(st.sid)
            self._drain_watch.discard(st.sid)  # an ended response has nothing more to be drained for

    def _check_drained(self) -> None:
        for sid in list(self._drain_watch):
            st = self._streams.get(sid)
            if st is None:
                self._drain_watch.discard(sid)
            elif not st.parts and self._unsent(sid) < _LOW:
                self._drain_watch.discard(sid)
                st.drain_wanted = False
                self._events.append(StreamDrained(sid))

    def _reap(self) -> None:
        """Forget streams aioquic has finished with (both sides done, the last data acknowledged)."""
        live = self._quic._streams
        for sid in [sid for sid in self._ended if sid not in live]:
            self._ended.discard(sid)
            st = self._streams.pop(sid, None)
            self._quic.forget_body(sid)
            if st is not None:
                self._gone[sid] = not st.refused
                if len(self._gone) > _GONE_KEPT:
                    del self._gone[next(iter(self._gone))]
        self._maybe_close()

    # -- refusing -------------------------------------------------------------------------------------

    def _refuse(self, st: _Stream, code: int) -> None:
        """Reset both halves of a stream with ``code``; what was queued for it is dropped."""
        sid = st.sid
        if not st.request_done:
            self._stop_reading(sid, code)
        self._quic.reset_stream(sid, code)
        self._drop(st)

    def _stop_reading(self, sid: int, code: int) -> None:
        with suppress(ValueError):  # aioquic has forgotten the stream already
            self._quic.stop_stream(sid, code)
        self._quic.forget_body(sid)

    def _drop(self, st: _Stream) -> None:
        """Nothing more will be sent on the stream: its queued body goes."""
        st.refused = True
        for part in st.parts:
            if not isinstance(part, bytes | memoryview):
                close_body(part)
        st.parts.clear()
        st.queued = 0
        bucket = self._buckets[st.urgency]
        if st in bucket:
            bucket.remove(st)
        if not st.response_done:
            st.response_done = True
            self._unfinished -= 1
        self._ended.add(st.sid)
        self._drain_watch.discard(st.sid)
