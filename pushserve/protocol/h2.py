"""HTTP/2 server core (sans-IO) on top of ``h2.connection.H2Connection``.

h2 does the framing, HPACK and stream state machines; this module adds what a server needs on
top of it: request/response mapping to our protocol-neutral events, an outbound scheduler that
moves queued bodies into h2 only as flow control and the caller's ``limit`` allow (urgency
buckets, round-robin inside a bucket), server push, 1xx responses, a graceful GOAWAY, and
counters against the known HTTP/2 floods.

Invariants worth keeping in mind:

* ``self._streams`` holds only streams the layer above knows about (surfaced requests and our
  pushes).  Requests we refuse or reset before surfacing never enter it; their DATA is
  acknowledged at once so the connection window never leaks.
* A stream's ``unacked`` counts received body bytes the layer above has not acknowledged yet.
  Acknowledgements are clamped to it, so acknowledging twice (or after the core already did it
  for a finished/reset stream) is harmless.
* h2 moves its connection state machine to CLOSED as soon as a GOAWAY is *sent or received*,
  after which it refuses to send anything.  A graceful close must keep finishing open streams,
  so our graceful GOAWAY is serialised here with hyperframe and spliced into the byte stream
  between h2's (always whole-frame) outputs; h2 itself only ever sends a GOAWAY for errors.
* Header validation: h2 treats every malformed header block as a connection error, but RFC 9113
  §8.1.1 makes a malformed request a *stream* error.  So h2's inbound validation is switched
  off in its configuration and the very same h2 validator (``h2.utilities.validate_headers``)
  is run here per request; a failure resets only that stream.  HPACK errors and oversized
  header lists stay connection errors inside h2.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import NamedTuple

import h2.events as h2e
from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import DenialOfServiceError, H2Error, ProtocolError
from h2.settings import SettingCodes, Settings
from h2.utilities import HeaderValidationFlags, validate_headers
from hpack import HPACKError
from hyperframe.frame import GoAwayFrame, SettingsFrame

from pushserve.protocol.events import (
    CONNECTION_SPECIFIC,
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

_PROTOCOL_ERROR = int(ErrorCodes.PROTOCOL_ERROR)
_FRAME_SIZE_ERROR = int(ErrorCodes.FRAME_SIZE_ERROR)
_COMPRESSION_ERROR = int(ErrorCodes.COMPRESSION_ERROR)
_INTERNAL_ERROR = int(ErrorCodes.INTERNAL_ERROR)
_REFUSED_STREAM = int(ErrorCodes.REFUSED_STREAM)
_CANCEL = int(ErrorCodes.CANCEL)
_ENHANCE_YOUR_CALM = int(ErrorCodes.ENHANCE_YOUR_CALM)

_DEFAULT_URGENCY = 3  # RFC 9218 default for requests
_URGENCY_LEVELS = 8

# Rapid reset (CVE-2023-44487): without a clock we count per streams opened, not per second.
# More than _RESET_LIMIT peer-side resets of unanswered streams among the last
# _RESET_WINDOW streams the peer opened ends the connection.  A browser cancelling a page's
# images stays well below; a loop of HEADERS+RST_STREAM crosses it after ~100 streams.
_RESET_WINDOW = 200
_RESET_LIMIT = 100

# Frames that cost us work but move no request forward (PING, SETTINGS, PRIORITY, unknown
# frames, empty DATA without END_STREAM; CVE-2019-9512/9514/9515/9516/9518).  The allowance
# grows with the streams the peer opened, the way Envoy budgets PRIORITY frames per stream.
_CONTROL_BASE = 1000
_CONTROL_PER_STREAM = 100
# WINDOW_UPDATE frames are legitimate in proportion to the DATA frames we send them.
_WINDOW_UPDATE_BASE = 1000
_WINDOW_UPDATE_PER_DATA_FRAME = 10

_PRIORITY_UPDATE_FRAME = 0x10  # RFC 9218 §7.2; reaches us as an h2 UnknownFrameReceived

# h2 stops a header block at 64 CONTINUATION frames with PROTOCOL_ERROR; we stop earlier and
# call it what it is (CVE-2024-27316-style CONTINUATION floods).  32 x 16 KB is far above any
# real request head.
_MAX_CONTINUATIONS = 32

_H2_PREFACE_LEN = 24
_HEADERS, _SETTINGS, _PUSH_PROMISE, _GOAWAY, _CONTINUATION = 0x1, 0x4, 0x5, 0x7, 0x9
_END_HEADERS = 0x4
_ACK = 0x1

# h2 enforces SETTINGS_MAX_CONCURRENT_STREAMS as a connection error; RFC 9113 §5.1.2 makes it a
# stream error.  So h2 is told a limit it will never reach and ours is enforced in _on_request.
_H2_STREAM_LIMIT = 2**31 - 1

# Connection-specific header fields are forbidden in HTTP/2 (RFC 9113 §8.2.2); a handler that
# shares header lists with HTTP/1.1 may carry them, so they are dropped instead of failing.
_REQUEST_FLAGS = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False,
)
_TRAILER_FLAGS = HeaderValidationFlags(
    is_client=False, is_trailer=True, is_response_header=False, is_push_promise=False,
)


class _Violation(NamedTuple):
    """A connection error found by ``_scan`` before h2 saw the bytes."""

    offset: int  # where the offending frame starts in the chunk (0 if in an earlier chunk)
    code: int
    reason: str


@dataclass(eq=False, slots=True)
class _Stream:
    stream_id: int
    method: bytes
    urgency: int
    pushed: bool = False
    headers_sent: bool = False  # final (non-1xx) HEADERS are out
    response_done: bool = False  # END_STREAM sent, or the stream was reset
    request_done: bool = False  # the peer's END_STREAM arrived
    # Body still to send, in order: bytes (the first one possibly partly sent, see
    # ``offset``) or iterators pulled lazily when they reach the front.
    parts: deque[bytes | Iterator[bytes]] = field(default_factory=deque)
    offset: int = 0
    queued: int = 0  # bytes in ``parts`` not yet handed to h2
    end_pending: bool = False  # send END_STREAM once ``parts`` is empty
    drain_wanted: bool = False  # send_data queued data: emit StreamDrained when it has left
    scheduled: bool = False  # present in an urgency bucket
    unacked: int = 0  # body bytes received and not yet acknowledged
    auto_ack: bool = False  # response finished: acknowledge further body on arrival




def _parse_urgency(value: bytes, default: int) -> int:
    """The ``u`` parameter of an RFC 9218 Priority field value (``u=1, i``)."""
    for item in value.split(b","):
        item = item.strip()
        if item.startswith(b"u=") and len(item) == 3 and 48 <= item[2] <= 48 + 7:
            return item[2] - 48
    return default


class H2Core:
    """Server side of one HTTP/2 connection; implements ``events.ServerCore``."""

    http_version = "2"

    def __init__(self, *, max_concurrent_streams: int = 128, max_header_list_size: int = 65536,
                 initial_window_size: int = 1 << 20, max_push_per_connection: int = 100) -> None:
        config = H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=False,  # run per request in _on_request; see module doc
            normalize_inbound_headers=True,
            # Response headers come from our own code (or are cleaned by the ASGI adapter):
            # lower-case bytes, no connection-specific fields, so h2's per-response checks
            # would only cost time on the hot path.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._conn = H2Connection(config=config)
        self._settings = {
            SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: max_header_list_size,
            SettingCodes.INITIAL_WINDOW_SIZE: initial_window_size,
        }
        # Settings given as initial values count as in force at once: the peer can only send
        # less than they allow before it has seen them, never more.
        # h2 gets a stream limit it never reaches: see _H2_STREAM_LIMIT.  The SETTINGS frame
        # the peer sees is ours (initiate) and announces the real limit.
        self._conn.local_settings = Settings(client=False, initial_values={
            **self._settings, SettingCodes.MAX_CONCURRENT_STREAMS: _H2_STREAM_LIMIT,
        })
        self._max_streams = max_concurrent_streams
        self._conn.decoder.max_header_list_size = max_header_list_size
        self._initial_window_size = initial_window_size
        self._max_pushes = max_push_per_connection

        self._streams: dict[int, _Stream] = {}
        self._buckets: list[deque[_Stream]] = [deque() for _ in range(_URGENCY_LEVELS)]
        self._out = bytearray()  # bytes taken out of h2 to keep our own frames in order
        self._pending: list[Event] = []  # StreamDrained found while sending

        self._terminated = False  # connection error / peer GOAWAY / EOF: nothing more to do
        self._goaway_last_id: int | None = None  # set by our graceful close()
        self._pushes = 0

        # Abuse accounting.
        self._streams_opened = 0
        self._recent_resets: deque[int] = deque()
        self._control_frames = 0
        self._window_updates = 0
        self._data_frames_sent = 0

        # Input scanner for awaiting_head (see _scan).
        self._got_input = False
        self._got_request = False
        self._preface_left = _H2_PREFACE_LEN
        self._first_frame = True  # the next frame header is the first after the preface
        self._frame_head = bytearray()
        self._frame_left = 0
        self._in_head_frame = False
        self._head_block_open = False
        self._continuations = 0

    # -- connection start and input -----------------------------------------------------------

    def initiate(self) -> None:
        self._conn.initiate_connection()
        # h2 would announce every local setting, ENABLE_PUSH=0 included; a server has no
        # business sending that one, so our own SETTINGS frame replaces h2's (with our real
        # stream limit, see _H2_STREAM_LIMIT).
        self._conn.data_to_send()
        frame = SettingsFrame(0)
        for code, value in self._settings.items():
            frame.settings[int(code)] = value
        self._out += frame.serialize()
        growth = self._initial_window_size - 65535
        if growth > 0:  # the connection window is not covered by SETTINGS_INITIAL_WINDOW_SIZE
            self._conn.increment_flow_control_window(growth)

    def receive_data(self, data: bytes) -> list[Event]:
        if self._terminated:
            return []
        if not data:
            return self._terminate(0, "peer closed the connection", send_goaway=False)
        self._got_input = True
        violation = self._scan(data)
        if violation is None:
            return self._feed(data)
        # h2 still gets the frames before the bad one, so what they did is not lost.
        events = self._feed(data[:violation.offset]) if violation.offset > 0 else []
        if self._terminated:
            return events
        return events + self._terminate(violation.code, violation.reason)

    def _feed(self, data: bytes) -> list[Event]:
        """Hand input to h2 and translate what it found."""
        # h2's pending output goes out first, so that after an error ``data_to_send`` holds
        # only h2's answer to this input, GOAWAY included, which _h2_failed may amend.
        self._out += self._conn.data_to_send()
        try:
            h2_events = self._conn.receive_data(data)
        except ProtocolError as exc:
            return self._h2_failed(exc)
        except Exception as exc:  # never let a peer's bytes raise out of the core
            return self._terminate(_INTERNAL_ERROR, f"h2 failed on input: {_reason(exc)}")
        try:
            events = self._translate(h2_events)
        except (H2Error, ValueError) as exc:
            return self._terminate(_INTERNAL_ERROR, _reason(exc))
        if self._terminated:
            return events
        calm = self._flood_check()
        if calm:
            return self._terminate(_ENHANCE_YOUR_CALM, calm)
        if self._pending:
            events = self._pending + events
            self._pending = []
        return events

    def next_events(self) -> list[Event]:
        """StreamDrained events found while sending (``data_to_send``).  They also ride along
        with the next ``receive_data``, but a producer waiting for a drain should not depend
        on the peer sending something first, so the glue may collect them after a flush."""
        events, self._pending = self._pending, []
        return events

    def _h2_failed(self, exc: ProtocolError) -> list[Event]:
        """h2 met a connection error and queued its GOAWAY.  h2 calls an undecodable field
        block PROTOCOL_ERROR; RFC 9113 §4.3 wants COMPRESSION_ERROR, so the code is corrected
        in h2's output (it holds only frames answering this input, the GOAWAY last)."""
        code = int(exc.error_code)
        # An oversized header list also comes from hpack, but h2 rightly calls it
        # ENHANCE_YOUR_CALM (DenialOfServiceError): that one stays.
        if isinstance(exc.__cause__, HPACKError) and not isinstance(exc, DenialOfServiceError):
            code = _COMPRESSION_ERROR
            self._out += _recode_goaway(self._conn.data_to_send(), code)
        return self._terminate(code, _reason(exc))

    def _translate(self, h2_events: list[h2e.Event]) -> list[Event]:
        out: list[Event] = []
        # Streams the peer resets within this same batch are never surfaced: a HEADERS +
        # RST_STREAM pair then costs us no handler at all (the rapid-reset amplification).
        reset_now = {ev.stream_id for ev in h2_events if isinstance(ev, h2e.StreamReset)}
        for ev in h2_events:
            if isinstance(ev, h2e.DataReceived):
                self._on_data(ev, out)
            elif isinstance(ev, h2e.RequestReceived):
                self._on_request(ev, ev.stream_id in reset_now, out)
            elif isinstance(ev, h2e.StreamEnded):
                st = self._streams.get(ev.stream_id)
                if st is not None and not st.request_done:  # ended by trailers
                    st.request_done = True
                    out.append(BodyReceived(st.stream_id, b"", True))
                    self._maybe_forget(st)
            elif isinstance(ev, h2e.StreamReset):
                self._on_peer_reset(ev, out)
            elif isinstance(ev, h2e.TrailersReceived):
                # Trailers are accepted and ignored, but a malformed block is still malformed.
                try:
                    list(validate_headers(ev.headers, _TRAILER_FLAGS))
                except ProtocolError:
                    self._reject(ev.stream_id, _PROTOCOL_ERROR, out)
            elif isinstance(ev, h2e.WindowUpdated):
                self._window_updates += 1
            elif isinstance(ev, (h2e.PingReceived, h2e.PingAckReceived, h2e.RemoteSettingsChanged,
                                 h2e.PriorityUpdated, h2e.AlternativeServiceAvailable)):
                self._control_frames += 1
            elif isinstance(ev, h2e.UnknownFrameReceived):
                self._control_frames += 1
                self._on_unknown_frame(ev)
            elif isinstance(ev, h2e.ConnectionTerminated):
                code = int(ev.error_code or 0)
                detail = (ev.additional_data or b"")[:80].decode("ascii", "replace")
                return self._terminate(code, f"peer sent GOAWAY ({_code_name(code)}) {detail}".rstrip(),
                                       send_goaway=False)
        return out

    def _on_request(self, ev: h2e.RequestReceived, reset_in_batch: bool, out: list[Event]) -> None:
        sid = ev.stream_id
        self._streams_opened += 1
        if reset_in_batch:
            self._count_reset(sid)
            return
        if self._goaway_last_id is not None and sid > self._goaway_last_id:
            self._safe_reset(sid, _REFUSED_STREAM)  # after our GOAWAY: the client may retry
            return
        # Streams the peer holds open: every surfaced request not yet finished both ways
        # (pushes count against the peer's limit, not ours).  Over the limit is a stream error
        # (RFC 9113 §5.1.2); REFUSED_STREAM tells the client it may retry.
        if sum(1 for st in self._streams.values() if not st.pushed) >= self._max_streams:
            self._count_reset(sid)
            self._safe_reset(sid, _REFUSED_STREAM)
            return
        try:
            raw = list(validate_headers(ev.headers or [], _REQUEST_FLAGS))
        except ProtocolError:
            self._reject(sid, _PROTOCOL_ERROR, out)
            return
        method = target = authority = b""
        host = b""
        regular: Headers = []
        for name, value in raw:
            name = bytes(name)
            value = bytes(value)
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    target = value
                elif name == b":authority":
                    authority = value
            else:
                name = name.lower()
                if name == b"host":
                    host = value
                regular.append((name, value))
        urgency = _DEFAULT_URGENCY
        for name, value in regular:
            if name == b"priority":
                urgency = _parse_urgency(value, urgency)
        end = ev.stream_ended is not None
        st = _Stream(sid, method, urgency, request_done=end)
        self._streams[sid] = st
        self._got_request = True
        out.append(RequestReceived(sid, method, target, authority or host, regular, "2", end))

    def _on_data(self, ev: h2e.DataReceived, out: list[Event]) -> None:
        sid = ev.stream_id
        data = ev.data or b""
        flow_len = ev.flow_controlled_length or 0
        end = ev.stream_ended is not None
        if not data and not end:
            self._control_frames += 1  # empty DATA frame (CVE-2019-9518)
        st = self._streams.get(sid)
        if st is None or st.request_done:
            # Nobody will read it: hand the window straight back.
            if flow_len:
                self._ack(sid, flow_len)
            return
        padding = flow_len - len(data)
        if padding > 0:  # the layer above acknowledges len(data); padding is ours to return
            self._ack(sid, padding)
        if st.auto_ack:
            if data:
                self._ack(sid, len(data))
        else:
            st.unacked += len(data)
        if end:
            st.request_done = True
        out.append(BodyReceived(sid, data, end))
        if end:
            self._maybe_forget(st)

    def _on_peer_reset(self, ev: h2e.StreamReset, out: list[Event]) -> None:
        sid = ev.stream_id
        st = self._streams.get(sid)
        if st is None:
            return  # never surfaced (counted in _on_request) or long finished
        if not st.pushed and not st.response_done:
            self._count_reset(sid)
        self._drop(st)
        out.append(StreamReset(sid, int(ev.error_code or 0)))

    def _on_unknown_frame(self, ev: h2e.UnknownFrameReceived) -> None:
        frame = ev.frame
        if getattr(frame, "type", None) != _PRIORITY_UPDATE_FRAME:
            return
        body = bytes(getattr(frame, "body", b""))
        if len(body) < 4:
            return
        st = self._streams.get(int.from_bytes(body[:4], "big") & 0x7FFFFFFF)
        if st is not None and not st.pushed:
            st.urgency = _parse_urgency(body[4:], st.urgency)

    def _reject(self, sid: int, code: int, out: list[Event]) -> None:
        """Reset a stream because of what the peer sent on it (a stream error)."""
        self._count_reset(sid)
        st = self._streams.get(sid)
        self._safe_reset(sid, code)
        if st is not None:
            self._drop(st)
            out.append(StreamReset(sid, code))

    # -- abuse counters ---------------------------------------------------------------------

    def _count_reset(self, sid: int) -> None:
        # Recorded by ordinal of streams opened, not by id: ids may skip ahead, which would
        # let a client age its own resets out of an id-based window.
        self._recent_resets.append(self._streams_opened)

    def _flood_check(self) -> str:
        horizon = self._streams_opened - _RESET_WINDOW
        resets = self._recent_resets
        while resets and resets[0] <= horizon:
            resets.popleft()
        if len(resets) > _RESET_LIMIT:
            return f"rapid reset: {len(resets)} streams reset among the last {_RESET_WINDOW}"
        if self._control_frames > _CONTROL_BASE + _CONTROL_PER_STREAM * self._streams_opened:
            return f"control frame flood: {self._control_frames} for {self._streams_opened} streams"
        allowed = _WINDOW_UPDATE_BASE + _WINDOW_UPDATE_PER_DATA_FRAME * self._data_frames_sent
        if self._window_updates > allowed:
            return f"WINDOW_UPDATE flood: {self._window_updates} for {self._data_frames_sent} DATA frames"
        return ""

    # -- termination ----------------------------------------------------------------------

    def _terminate(self, code: int, reason: str, *, send_goaway: bool = True) -> list[Event]:
        """End the connection now: GOAWAY (unless the peer left), streams dropped."""
        events: list[Event] = []
        self._terminated = True
        for st in list(self._streams.values()):
            if not st.response_done:
                events.append(StreamReset(st.stream_id, _CANCEL))
            self._drop(st)
        self._streams.clear()
        self._pending.clear()
        if send_goaway and self._conn.state_machine.state != ConnectionState.CLOSED:
            # h2 queues a GOAWAY itself for errors met inside receive_data (state CLOSED);
            # a bad preface or our own verdicts (flood) still need one.
            try:
                self._conn.close_connection(error_code=code, additional_data=reason.encode()[:120])
            except Exception:
                self._out += self._conn.data_to_send()
                self._out += _goaway(self._conn.highest_inbound_stream_id, code, reason)
        events.append(ConnectionTerminated(code, reason))
        return events

    # -- outbound: responses ------------------------------------------------------------------

    def send_response(self, stream_id: int, status: int, headers: Headers, body: Body | None = None,
                      *, end_stream: bool = True) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.response_done or st.headers_sent:
            if body is not None and not isinstance(body, bytes):
                close_body(body)
            return
        head = st.method == b"HEAD"
        if head and body is not None and not isinstance(body, bytes):
            close_body(body)
        empty = head or body is None or body == b""
        finish = end_stream or head
        block = [(b":status", b"%d" % status), *_strip_hop_by_hop(headers)]
        if not self._send_headers(st, block, end_stream=empty and finish):
            return
        st.headers_sent = True
        if empty and finish:
            self._finish(st)
            return
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
        # h2 lets a server send any number of 1xx blocks before the final one.
        self._send_headers(st, [(b":status", b"%d" % status), *_strip_hop_by_hop(headers)],
                           end_stream=False)

    def _send_headers(self, st: _Stream, block: Headers, *, end_stream: bool) -> bool:
        try:
            self._conn.send_headers(st.stream_id, block, end_stream=end_stream)
        except (H2Error, ValueError, TypeError):
            # Invalid headers from the layer above, or a stream h2 has already closed.
            self.reset_stream(st.stream_id, _INTERNAL_ERROR)
            return False
        return True

    def _enqueue(self, st: _Stream, body: Body) -> None:
        st.parts.append(body)
        if isinstance(body, bytes):
            st.queued += len(body)

    # -- outbound: push ----------------------------------------------------------------------

    @property
    def push_enabled(self) -> bool:
        return (not self._terminated and self._goaway_last_id is None
                and bool(self._conn.remote_settings.enable_push))

    def push_promise(self, stream_id: int, request_headers: Headers, *, urgency: int = 3) -> int | None:
        if not self.push_enabled or self._pushes >= self._max_pushes:
            return None
        parent = self._streams.get(stream_id)
        if parent is None or parent.pushed or parent.response_done:
            return None
        # Promised streams that are not finished count against the peer's limit (reserved ones
        # too: they are about to open, and h2 would refuse the HEADERS otherwise).
        active = sum(1 for s in self._streams.values() if s.pushed and not s.response_done)
        if active >= self._conn.remote_settings.max_concurrent_streams:
            return None
        method = b"GET"
        for name, value in request_headers:
            if name == b":method":
                method = bytes(value)
        try:
            promised = self._conn.get_next_available_stream_id()
            self._conn.push_stream(stream_id, promised, request_headers)
        except (H2Error, ValueError, TypeError):
            return None
        self._pushes += 1
        self._streams[promised] = _Stream(promised, method, min(max(urgency, 0), 7), pushed=True,
                                          request_done=True)
        return promised

    # -- flow control and stream control -------------------------------------------------------

    def acknowledge_received(self, stream_id: int, length: int) -> None:
        st = self._streams.get(stream_id)
        if st is None or length <= 0:
            return
        n = min(length, st.unacked)
        if n:
            st.unacked -= n
            self._ack(stream_id, n)

    def _ack(self, stream_id: int, n: int) -> None:
        if self._terminated:
            return
        with suppress(H2Error, ValueError):  # a stream h2 already forgot: nothing to reopen
            self._conn.acknowledge_received_data(n, stream_id)

    def reset_stream(self, stream_id: int, error_code: int = 0x8) -> None:
        st = self._streams.get(stream_id)
        if st is None:
            return
        self._safe_reset(stream_id, error_code)
        self._drop(st)

    def _safe_reset(self, stream_id: int, code: int) -> None:
        with suppress(H2Error, ValueError):  # already closed on h2's side: nothing to reset
            self._conn.reset_stream(stream_id, code)

    def _drop(self, st: _Stream) -> None:
        """The stream is over (reset either way): drop its queue and forget it."""
        self._clear_parts(st)
        st.response_done = True
        st.request_done = True
        if st.unacked:  # body nobody will read still holds connection window
            n, st.unacked = st.unacked, 0
            self._ack(st.stream_id, n)
        self._streams.pop(st.stream_id, None)

    def _finish(self, st: _Stream) -> None:
        """END_STREAM has been sent."""
        st.response_done = True
        st.auto_ack = True
        if st.unacked:
            n, st.unacked = st.unacked, 0
            self._ack(st.stream_id, n)
        self._maybe_forget(st)

    def _maybe_forget(self, st: _Stream) -> None:
        if st.response_done and st.request_done:
            self._streams.pop(st.stream_id, None)

    @staticmethod
    def _clear_parts(st: _Stream) -> None:
        for part in st.parts:
            if not isinstance(part, bytes):
                close_body(part)
        st.parts.clear()
        st.queued = 0
        st.offset = 0
        st.end_pending = False

    def buffered(self, stream_id: int) -> int:
        st = self._streams.get(stream_id)
        return 0 if st is None else st.queued - st.offset

    # -- outbound: scheduling -----------------------------------------------------------------

    def _schedule(self, st: _Stream) -> None:
        if not st.scheduled and not st.response_done:
            st.scheduled = True
            self._buckets[st.urgency].append(st)

    def data_to_send(self, limit: int = 256 * 1024) -> bytes:
        out = self._out
        self._out = bytearray()
        out += self._conn.data_to_send()
        if not self._terminated:
            # No early exit on a closed connection window: an END_STREAM-only frame needs none.
            while len(out) < limit and self._send_next():
                out += self._conn.data_to_send()
        return bytes(out)

    def _send_next(self) -> bool:
        """Send one DATA frame from the most urgent stream that can take one; round-robin
        within an urgency so one large body does not starve the others.  False if none can."""
        for level, bucket in enumerate(self._buckets):
            for _ in range(len(bucket)):
                st = bucket.popleft()
                if st.response_done:
                    st.scheduled = False
                    continue
                if st.urgency != level:  # re-prioritised (PRIORITY_UPDATE) while queued
                    self._buckets[st.urgency].append(st)
                    continue
                sent = self._send_frame(st)
                if st.response_done or not (st.parts or st.end_pending):
                    st.scheduled = False  # finished, or waiting for send_data
                else:
                    bucket.append(st)  # back of the line: round-robin
                if sent:
                    return True
        return False

    def _send_frame(self, st: _Stream) -> bool:
        """At most one DATA frame for ``st``.  Returns whether anything was written."""
        sid = st.stream_id
        try:
            window = self._conn.local_flow_control_window(sid)
        except H2Error:
            self._drop(st)
            return False
        while st.parts:
            part = st.parts[0]
            if isinstance(part, bytes):
                break
            if window <= 0:
                return False  # pull nothing the peer cannot take yet
            try:
                chunk = next(part)
            except StopIteration:
                st.parts.popleft()
                close_body(part)
                continue
            except Exception:  # a failing body (file vanished…) ends only its stream
                self.reset_stream(sid, _INTERNAL_ERROR)
                return True
            if chunk:
                chunk = bytes(chunk)
                st.parts.appendleft(chunk)
                st.queued += len(chunk)
                break
        if not st.parts:
            if not st.end_pending:
                self._drained(st)
                return False
            return self._send_chunk(st, b"", end=True)
        if window <= 0:
            return False
        part = st.parts[0]
        assert isinstance(part, bytes)
        n = min(len(part) - st.offset, window, self._conn.max_outbound_frame_size)
        piece = part[st.offset:st.offset + n] if (st.offset or n < len(part)) else part
        st.offset += n
        if st.offset == len(part):
            st.parts.popleft()
            st.queued -= len(part)
            st.offset = 0
        last = not st.parts and st.end_pending
        return self._send_chunk(st, piece, end=last)

    def _send_chunk(self, st: _Stream, piece: bytes, *, end: bool) -> bool:
        try:
            self._conn.send_data(st.stream_id, piece, end_stream=end)
        except (H2Error, ValueError):
            self.reset_stream(st.stream_id, _INTERNAL_ERROR)
            return True
        self._data_frames_sent += 1
        if end:
            st.end_pending = False
            self._finish(st)
        elif not st.parts:
            self._drained(st)
        return True

    def _drained(self, st: _Stream) -> None:
        if st.drain_wanted:
            st.drain_wanted = False
            self._pending.append(StreamDrained(st.stream_id))

    # -- closing ----------------------------------------------------------------------------

    def close(self, error_code: int = 0, reason: str = "") -> None:
        if self._terminated or self._goaway_last_id is not None:
            return
        last = self._conn.highest_inbound_stream_id
        self._goaway_last_id = last
        # Built here, not with h2's close_connection: see the module docstring.
        self._out += self._conn.data_to_send()
        self._out += _goaway(last, error_code, reason)

    @property
    def closing(self) -> bool:
        return self._terminated or (self._goaway_last_id is not None and self.open_streams == 0)

    @property
    def open_streams(self) -> int:
        return sum(1 for st in self._streams.values() if not st.response_done)

    @property
    def awaiting_head(self) -> bool:
        # Choice: from the first bytes until the first complete request (preface, SETTINGS
        # and first HEADERS all count as "the head" for the header timeout), then whenever a
        # HEADERS/CONTINUATION frame or block is only partly in.
        if self._terminated:
            return False
        if self._got_input and not self._got_request:
            return True
        return self._head_block_open or (self._in_head_frame and self._frame_left > 0)

    def _scan(self, data: bytes) -> _Violation | None:
        """Follow frame boundaries in the input, just enough to know whether a header block
        is incomplete (h2 keeps that to itself), to catch CONTINUATION floods before h2
        buffers them, and to check what h2 does not: the preface's SETTINGS (RFC 9113 §3.4)
        and an ACK's empty payload (§6.5).  Returns the violation that must end the
        connection, if any."""
        i, size = 0, len(data)
        if self._preface_left:
            i = min(self._preface_left, size)
            self._preface_left -= i
        while i < size:
            if self._frame_left:
                step = min(self._frame_left, size - i)
                self._frame_left -= step
                i += step
                continue
            start = max(i - len(self._frame_head), 0)
            take = data[i:i + 9 - len(self._frame_head)]
            self._frame_head += take
            i += len(take)
            if len(self._frame_head) < 9:
                break
            length = int.from_bytes(self._frame_head[:3], "big")
            ftype, flags = self._frame_head[3], self._frame_head[4]
            self._frame_head.clear()
            self._frame_left = length
            self._in_head_frame = ftype in (_HEADERS, _CONTINUATION)
            if self._first_frame:
                self._first_frame = False
                if ftype != _SETTINGS or flags & _ACK:
                    return _Violation(start, _PROTOCOL_ERROR, "connection preface without SETTINGS")
            if ftype == _SETTINGS and flags & _ACK and length:
                return _Violation(start, _FRAME_SIZE_ERROR, f"SETTINGS ACK with a {length}-byte payload")
            if ftype in (_HEADERS, _PUSH_PROMISE, _CONTINUATION):
                self._head_block_open = not flags & _END_HEADERS
                self._continuations = self._continuations + 1 if ftype == _CONTINUATION else 0
                if self._continuations > _MAX_CONTINUATIONS:
                    return _Violation(start, _ENHANCE_YOUR_CALM,
                                      f"CONTINUATION flood: {self._continuations} frames in one header block")
        return None


def _strip_hop_by_hop(headers: Headers) -> Headers:
    # Names are lower-case by contract (events.Headers), so no per-field lower() here.
    return [(k, v) for k, v in headers if k not in CONNECTION_SPECIFIC]


def _recode_goaway(data: bytes, code: int) -> bytes:
    """``data`` (whole frames) with the error code of its GOAWAY frames set to ``code``."""
    out = bytearray(data)
    i = 0
    while i + 9 <= len(out):
        length = int.from_bytes(out[i:i + 3], "big")
        if out[i + 3] == _GOAWAY and length >= 8:
            out[i + 13:i + 17] = code.to_bytes(4, "big")
        i += 9 + length
    return bytes(out)


def _goaway(last_stream_id: int, code: int, reason: str) -> bytes:
    frame = GoAwayFrame(0)
    frame.last_stream_id = last_stream_id
    frame.error_code = code
    frame.additional_data = reason.encode("utf-8", "replace")[:120]
    data: bytes = frame.serialize()
    return data


def _code_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return hex(code)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
