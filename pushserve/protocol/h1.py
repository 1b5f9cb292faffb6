"""HTTP/1.1 server core over httptools (sans-IO).

Bytes go in through ``receive_data``; the httptools callbacks below turn them into events.  The
layer above answers through ``send_response`` / ``send_data`` / ``send_informational``, and
``data_to_send`` serialises the answers.

Invariants worth keeping in mind:

* Every parsed request becomes an ``_Exchange`` in ``self._exchanges``, in arrival order.  Only the
  exchange at the front may put bytes on the wire; a later one that is answered first waits.  An
  exchange leaves the queue once its whole response has gone out of ``data_to_send``.
* At most ``max_pipeline`` requests are *released* (announced with RequestReceived) and unanswered
  at any time.  Requests parsed beyond that wait in ``self._deferred`` (their events, in order), and
  once ``max_pipeline`` exchanges are queued, further input waits unparsed in ``self._inbuf``.  Both
  resume as responses complete.  Events produced that way (and StreamDrained) come out of the next
  ``receive_data`` or ``next_events`` call.
* After a protocol error the core answers once with its own tiny response, parses nothing more and
  reports one ConnectionTerminated; ``closing`` turns True once the last response has been handed
  out by ``data_to_send``.
* The connection's life is one ``State`` that only moves forward (OPEN → LAST → DRAINING →
  CLOSING), beside ``_reading`` (is input still parsed): a drain (``close()``) and a broken input
  are different things, and a response says ``Connection: close`` for the first, not the second.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator
from http import HTTPStatus
from typing import NoReturn

import httptools

from pushserve.protocol.events import (
    CONNECTION_SPECIFIC,
    Body,
    BodyReceived,
    ConnectionTerminated,
    Event,
    Headers,
    LocalProtocolError,
    RequestReceived,
    SizedBody,
    StreamDrained,
    StreamReset,
    close_body,
)
from pushserve.protocol.outgoing import FieldCache, check_field, check_status

# RFC 9110 renamed a few reason phrases; http.HTTPStatus still has the RFC 2616 ones.
_PHRASES = {413: "Content Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable",
            422: "Unprocessable Content"}
_STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, _PHRASES.get(s.value, s.phrase).encode("ascii"))
    for s in HTTPStatus
}

# Connection-specific headers are the core's business; a caller's copy would contradict framing.
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
_CLOSE = b"connection: close\r\n"
_KEEP_ALIVE = b"connection: keep-alive\r\n"
_CHUNKED_TE = b"transfer-encoding: chunked\r\n"
# The request fields the core itself reads (the rest are the layer above's).
_FRAMING_FIELDS = frozenset((b"host", b"content-length", b"transfer-encoding", b"expect"))
_CANCEL = 0x8  # StreamReset code for a request the client (or the core) abandoned
# Input is parsed in slices, and no further once max_pipeline requests wait for their answers:
# httptools parses whatever it is given, so a read of 256 KiB of pipelined GETs would otherwise
# become some 5,000 requests held in memory at once.  Request bodies go in larger slices.
_HEAD_SLICE = 4 * 1024
_BODY_SLICE = 64 * 1024

# Body framing of a response, decided when its head is serialised.
_NONE, _RAW, _CHUNKED = 0, 1, 2

_Item = bytes | memoryview | Iterator[bytes]


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:  # the reason phrase may be empty (RFC 9112 §4)
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def _line(name: bytes, value: bytes) -> bytes:
    check_field(name, value)
    name, value = bytes(name), bytes(value)
    if name in CONNECTION_SPECIFIC:  # the core frames messages itself
        return b""
    return b"%s: %s\r\n" % (name, value)


# (name, value) -> b"name: value\r\n": a head is a join of cached lines.
_LINES = FieldCache(_line)


def _head_lines(headers: Headers) -> tuple[bytes, bool]:
    """The head lines of ``headers``, joined, and whether one is content-length.  Raises
    LocalProtocolError for a field no response may carry."""
    lines = b"".join(_LINES.encode_all(headers))
    # A checked line is "name: value\r\n" with a lower-case token for a name and no CR or LF in
    # the value, so a content-length field is a line that starts so: one search in C, not a loop
    # (find, not ``in``: CPython 3.11's bytes ``in`` first tries the needle as an int and formats
    # a TypeError it then throws away, which costs three times the search).
    return lines, lines.startswith(b"content-length:") or lines.find(b"\ncontent-length:") >= 0


class _Reject(Exception):
    """Raised inside a parser callback to refuse the request."""

class State(enum.IntEnum):
    """Where the connection is in its life, as answers go; it only ever moves forward."""

    OPEN = 0  # taking requests
    LAST = 1  # close() found it idle: one more request is read and answered with Connection: close
    DRAINING = 2  # close() was called: finish the requests received, start no other
    CLOSING = 3  # close the transport once what is queued has been written

# Module-level names for the states: a global lookup is several times cheaper than an enum
# attribute (State.OPEN goes through the enum's metaclass), and the state is checked per request.
_OPEN, _LAST, _DRAINING, _CLOSING = State.OPEN, State.LAST, State.DRAINING, State.CLOSING

class _StopParsing(Exception):
    """Raised inside on_message_begin after close(): no new requests are read."""

class _Exchange:
    """One request and its response, from the head's arrival to the response's last byte."""

    __slots__ = ("bodiless", "body", "close_after", "ended", "expect_continue", "framing", "has_iter",
                 "has_length", "head_method", "head_sent", "info", "keep_alive", "lines", "queued", "released",
                 "request_complete", "status", "stream_id", "streamed", "version")

    def __init__(self, stream_id: int, version: str, head_method: bool, keep_alive: bool) -> None:
        self.stream_id = stream_id
        self.version = version
        self.head_method = head_method
        self.keep_alive = keep_alive
        self.expect_continue = False
        self.released = False
        self.request_complete = False
        self.status = 0  # 0 until the final response is queued
        self.bodiless = False  # the response carries no body (HEAD, 1xx, 204, 304), set with status
        self.lines = b""  # the response's header lines, joined (_head_lines)
        self.has_length = False  # ... one of them is content-length
        self.info: list[bytes] = []  # serialised 1xx heads waiting for their turn
        self.body: deque[_Item] = deque()
        self.queued = 0  # bytes held in ``body`` (iterators not counted)
        self.has_iter = False
        self.ended = False
        self.streamed = False
        self.head_sent = False
        self.framing = _NONE
        self.close_after = False

    def set_status(self, status: int) -> None:
        self.status = status
        self.bodiless = self.head_method or status < 200 or status == 204 or status == 304

    def discard_body(self) -> None:
        for item in self.body:
            if not isinstance(item, bytes | memoryview):
                close_body(item)
        self.body.clear()
        self.queued = 0

class H1Core:
    """The HTTP/1.1 side of ``ServerCore`` (see events.py)."""

    http_version = "1.1"

    def __init__(self, *, max_request_line: int = 8192, max_header_bytes: int = 65536,
                 max_headers: int = 100, max_pipeline: int = 16) -> None:
        self._max_request_line = max_request_line
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._max_pipeline = max(1, max_pipeline)
        self._parser = httptools.HttpRequestParser(self)
        self._next_id = 1
        self._exchanges: deque[_Exchange] = deque()
        self._streams: dict[int, _Exchange] = {}
        self._dropped: set[int] = set()  # streams dropped unanswered (reset, EOF, close): late calls are no misuse
        self._events: list[Event] = []
        self._deferred: deque[Event] = deque()
        self._active = 0  # released exchanges still in self._exchanges
        self._inbuf = bytearray()  # input held back while the pipeline is full
        self._cur: _Exchange | None = None  # the request whose body is being received
        self._upgrade_body_left = 0  # body bytes of an Upgrade request, which httptools skips
        self._state = _OPEN  # the connection's life, as answers go (only ever moves forward)
        # ServerCore.closing: the state is CLOSING.  A plain attribute (set by _advance): the
        # glue asks after every write.
        self.closing = False
        self._reading = True  # False once nothing more is parsed (error, reset, EOF, close)
        self._terminated = False  # ConnectionTerminated was reported (once)
        # Per-message parser state.
        self._in_head = False
        self._began = False  # on_message_begin ran during the current feed_data call
        self._head_bytes = 0
        self._url: list[bytes] = []
        self._url_len = 0
        self._headers: Headers = []
        self._header_count = 0
        self._header_bytes = 0
        self._rejection: tuple[int, str] | None = None

    # -- ServerCore: input ----------------------------------------------------------------------

    def initiate(self) -> None:
        """Nothing to send first on HTTP/1.1."""

    def receive_data(self, data: bytes) -> list[Event]:
        if not data:
            self._eof()
        elif not self._reading or self._state is _CLOSING:
            pass
        elif len(data) <= _HEAD_SLICE and not self._inbuf and (
                len(self._exchanges) < self._max_pipeline or not self._must_hold()):
            self._feed(data)  # the usual read: one request, or a piece of a body
        else:
            self._inbuf += data
            self._resume()
        events = self._events  # next_events(), without the call: this runs once per read
        self._events = []
        return events

    # httptools parses each read whole; pipelining is bounded by the glue.  A plain attribute, not a
    # property: the glue asks after every read.
    pending_input = False

    def resume(self) -> list[Event]:
        return []

    def next_events(self) -> list[Event]:
        """Events produced outside ``receive_data`` (requests released from the pipeline queue,
        StreamDrained).  ``receive_data`` returns them too; call this after ``data_to_send``."""
        events = self._events
        self._events = []
        return events

    def acknowledge_received(self, stream_id: int, length: int) -> None:
        """HTTP/1.1 has no flow-control window to reopen."""

    # -- ServerCore: output ---------------------------------------------------------------------

    def send_response(self, stream_id: int, status: int, headers: Headers, body: Body | None = None,
                      *, end_stream: bool = True) -> None:
        ex = self._streams.get(stream_id)
        try:
            if ex is None or ex.status:
                self._misuse(stream_id, ex, "a response")
                if body is not None and not isinstance(body, bytes):
                    close_body(body)
                return
            if type(status) is not int or not 200 <= status <= 599:
                check_status(status)
            ex.lines, ex.has_length = _head_lines(headers)
        except LocalProtocolError:
            if body is not None and not isinstance(body, bytes):
                close_body(body)
            raise
        ex.set_status(status)
        ex.ended = end_stream
        ex.streamed = not end_stream
        if body is None:
            return
        if ex.bodiless:
            if not isinstance(body, bytes):
                close_body(body)
        elif isinstance(body, bytes):
            if body:
                ex.body.append(body)
                ex.queued += len(body)
        else:
            ex.body.append(body)
            ex.has_iter = True

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        ex = self._streams.get(stream_id)
        if ex is None or not ex.status or ex.ended:
            self._misuse(stream_id, ex, "data")
            return
        ex.ended = end_stream
        if data and not ex.bodiless:
            ex.body.append(data)
            ex.queued += len(data)

    def send_informational(self, stream_id: int, status: int, headers: Headers) -> None:
        ex = self._streams.get(stream_id)
        if ex is None or ex.status:
            self._misuse(stream_id, ex, "an informational response")
            return
        check_status(status, informational=True)
        lines, _ = _head_lines(headers)
        if ex.version != "1.1":
            return  # an HTTP/1.0 client would take a 1xx for the final response
        if status == 100:
            if not ex.expect_continue:
                return  # not asked for, or already sent
            ex.expect_continue = False
        ex.info.append(b"".join((_status_line(status), lines, b"\r\n")))

    def _misuse(self, sid: int, ex: _Exchange | None, what: str) -> None:
        """A call out of turn: LocalProtocolError, unless the exchange was dropped under the
        caller's feet (reset, EOF, close: it has been or will be told by a StreamReset)."""
        if ex is not None:
            step = "awaits its response" if not ex.status else "has ended its response" if ex.ended \
                else "is sending its body"
            raise LocalProtocolError(f"{what} on stream {sid}, which {step}")
        if not isinstance(sid, int) or sid <= 0 or not sid & 1 or sid >= self._next_id:
            raise LocalProtocolError(f"{what} on stream {sid}, which was never opened")
        if sid not in self._dropped:
            raise LocalProtocolError(f"{what} on stream {sid}, which has ended its response")

    @property
    def push_enabled(self) -> bool:
        return False

    def push_promise(self, stream_id: int, request_headers: Headers, *, urgency: int = 3) -> int | None:
        ex = self._streams.get(stream_id)
        if ex is None or ex.ended:
            self._misuse(stream_id, ex, "a push promise")
        return None

    def reset_stream(self, stream_id: int, error_code: int = 0x8) -> None:
        """HTTP/1.1 cannot abandon one response and go on: drop it and everything after it, let
        the earlier responses finish, then close."""
        ex = self._streams.get(stream_id)
        if ex is None:  # resetting an answered or dropped stream is harmless; a stranger's is not
            if not isinstance(stream_id, int) or stream_id <= 0 or not stream_id & 1 or stream_id >= self._next_id:
                raise LocalProtocolError(f"a reset of stream {stream_id}, which was never opened")
            return
        self._stop_parsing()
        self._drop_from(self._exchanges.index(ex), notify_first=False)
        if self._exchanges:
            self._exchanges[-1].close_after = True
        else:
            self._advance(_CLOSING)

    def buffered(self, stream_id: int) -> int:
        ex = self._streams.get(stream_id)
        return 0 if ex is None else ex.queued

    def data_to_send(self, limit: int = 256 * 1024) -> bytes:
        out: list[bytes | memoryview] = []
        budget = limit
        exchanges = self._exchanges
        while exchanges and self._state is not _CLOSING:
            ex = exchanges[0]
            if not ex.head_sent:
                if ex.expect_continue and not ex.status and not ex.request_complete:
                    # The layer above has read the head and not refused it: ask for the body.
                    out.append(_CONTINUE)
                    ex.expect_continue = False
                if ex.info:
                    out.extend(ex.info)
                    ex.info.clear()
                if not ex.status:
                    break
                out.append(self._serialize_head(ex))
                ex.head_sent = True
            body = ex.body
            if body:
                item = body[0]
                if type(item) is bytes and len(body) == 1 and ex.framing == _RAW and not ex.streamed \
                        and len(item) <= budget:
                    # The usual response: its whole body, one piece that fits (what _pull_body
                    # would do, without its loop).
                    body.clear()
                    ex.queued -= len(item)
                    budget -= len(item)
                    out.append(item)
                else:
                    budget = self._pull_body(ex, out, budget)
                    if self._state is _CLOSING:  # a body iterator failed
                        break
            if body or not ex.ended:
                break  # out of budget, or waiting for send_data
            if ex.framing == _CHUNKED:
                out.append(_LAST_CHUNK)
            self._complete(ex)
        return b"".join(out)

    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Graceful: finish the requests received and close after the last one.  An idle
        connection is not closed under the client's feet (its next request may be on the wire):
        one more request is still read and answered with ``Connection: close``; the layer above
        bounds how long it waits for it (``idle_close``)."""
        if self._state is not _OPEN:
            return
        if not self._exchanges:
            self._advance(_LAST if self._reading else _CLOSING)
            return
        self._advance(_DRAINING)
        self._inbuf.clear()
        front = self._exchanges[0]
        if self._cur is not front:
            # Only the body of the request being answered is still worth reading.
            self._stop_parsing()
        self._drop_from(1)
        front.close_after = True

    def _advance(self, state: State) -> None:
        if state > self._state:
            self._state = state
            self.closing = state is _CLOSING

    def idle_close(self) -> None:
        """Close now if no request is in progress (after ``close()``'s grace, or when idle too long)."""
        if not self._exchanges and not (self._in_head and self._reading):
            self._stop_parsing()
            self._advance(_CLOSING)

    def request_timeout(self) -> None:
        """A request head began but did not finish in time: answer 408 (as Apache does), close."""
        if self._in_head and self._reading:
            self._fail(408, "request head timeout")

    @property
    def open_streams(self) -> int:
        return len(self._exchanges)

    @property
    def awaiting_head(self) -> bool:
        # Input held back by the pipeline bound is our doing, not a slow client.
        return self._in_head and self._reading and not self._inbuf

    # -- httptools callbacks (names fixed by httptools) -------------------------------------------

    def on_message_begin(self) -> None:
        if self._state is not _OPEN:
            if self._state is not _LAST:
                raise _StopParsing
            self._state = _DRAINING  # this one is answered, with Connection: close
        self._in_head = True
        self._began = True
        self._head_bytes = 0
        self._url = []
        self._url_len = 0
        self._headers = []
        self._header_count = 0
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        # httptools hands the URL over in pieces when it spans reads.
        self._url.append(url)
        self._url_len += len(url)
        if self._url_len + 13 > self._max_request_line:  # 13 = "GET " + " HTTP/1.1"
            line = len(self._parser.get_method()) + self._url_len + 10
            if line > self._max_request_line:
                self._reject(414, f"request line over {self._max_request_line} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        # Trailers of a chunked body come through here too; they count against the same limits.
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4
        if self._header_count > self._max_headers:
            self._reject(431, f"more than {self._max_headers} header fields")
        if self._header_bytes > self._max_header_bytes:
            self._reject(431, f"header fields over {self._max_header_bytes} bytes")
        if self._in_head:
            self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            self._reject(505, f"HTTP/{version} not supported")
        method: bytes = parser.get_method()
        url = self._url
        target = url[0] if len(url) == 1 else b"".join(url)
        host: bytes | None = None
        length = 0
        chunked = expect = False
        for name, value in self._headers:
            if name not in _FRAMING_FIELDS:  # most fields: one set lookup, not four compares
                continue
            if name == b"host":
                if host is not None:
                    self._reject(400, "more than one Host header")
                host = value
            elif name == b"content-length":
                length = int(value)  # httptools has checked the digits and refused repeats
            elif name == b"transfer-encoding":
                chunked = True  # httptools refuses a request body not ending in chunked
            else:
                expect = value.lower() == b"100-continue"
        if host is None and version == "1.1":
            self._reject(400, "missing Host header")
        authority = host or b""
        if target[:1] != b"/":
            if target == b"*" and method == b"OPTIONS":
                pass
            elif target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
                target, authority = self._split_absolute(target)
            else:
                self._reject(400, "invalid request target")
        upgrade = parser.should_upgrade()
        if upgrade and chunked:
            # httptools skips the body of an Upgrade request; we only re-frame a counted one.
            self._reject(400, "chunked body on an Upgrade request")
        has_body = chunked or length > 0
        ex = _Exchange(self._next_id, version, method == b"HEAD", parser.should_keep_alive())
        self._next_id += 2
        if has_body:
            self._cur = ex
            ex.expect_continue = expect and version == "1.1"
            if upgrade:
                self._upgrade_body_left = length
        else:
            ex.request_complete = True
        self._exchanges.append(ex)
        self._streams[ex.stream_id] = ex
        event = RequestReceived(ex.stream_id, method, target, authority, self._headers, version,
                                not has_body)
        if self._deferred or self._active >= self._max_pipeline:
            self._deferred.append(event)
        else:
            self._active += 1
            ex.released = True
            self._events.append(event)

    def on_body(self, body: bytes) -> None:
        ex = self._cur
        if ex is not None:
            self._emit(BodyReceived(ex.stream_id, body, False))

    def on_message_complete(self) -> None:
        ex = self._cur
        if ex is not None and not self._upgrade_body_left:
            self._end_body(ex)

    # -- parsing --------------------------------------------------------------------------------

    def _reject(self, status: int, reason: str) -> NoReturn:
        # httptools wraps callback exceptions in HttpParserCallbackError; keep ours at hand.
        self._rejection = (status, reason)
        raise _Reject(reason)

    def _split_absolute(self, target: bytes) -> tuple[bytes, bytes]:
        """``https://host/path?q`` → (``/path?q``, ``host``)."""
        rest = target[target.index(b"://") + 3:]
        end = len(rest)
        for sep in (b"/", b"?"):
            pos = rest.find(sep)
            if pos != -1 and pos < end:
                end = pos
        authority, path = rest[:end], rest[end:]
        if not authority or b"@" in authority:
            self._reject(400, "invalid absolute-form target")
        if not path.startswith(b"/"):
            path = b"/" + path
        return path, authority

    def _feed(self, data: bytes) -> None:
        while data and self._reading:
            if self._upgrade_body_left:
                data = self._feed_upgrade_body(data)
                continue
            self._began = False
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade as exc:
                # Upgrade (h2c, websocket) is not offered: serve the request as a plain one and
                # go on with a fresh parser after it.
                data = data[int(exc.args[0]):]
                self._parser = httptools.HttpRequestParser(self)
                continue
            except httptools.HttpParserError as exc:
                if self._state is not _OPEN and self._rejection is None and self._cur is None:
                    self._stop_parsing()  # _StopParsing: close() asked for no more requests
                else:
                    status, reason = self._rejection or (400, str(exc) or "malformed request")
                    self._fail(status, reason)
                return
            if self._in_head and not self._began:
                # httptools buffers a header line internally until it ends; bound that too.
                self._head_bytes += len(data)
                if self._head_bytes > self._max_request_line + self._max_header_bytes:
                    self._fail(431, "request head too large")
            return

    def _feed_upgrade_body(self, data: bytes) -> bytes:
        ex = self._cur
        n = min(self._upgrade_body_left, len(data))
        self._upgrade_body_left -= n
        if ex is not None:
            self._emit(BodyReceived(ex.stream_id, data[:n], False))
            if not self._upgrade_body_left:
                self._end_body(ex)
        return data[n:]

    def _end_body(self, ex: _Exchange) -> None:
        ex.request_complete = True
        self._cur = None
        # Mark the last piece as the end rather than adding an empty event when we can.
        queue: list[Event] | deque[Event] = self._deferred or self._events
        if queue:
            last = queue[-1]
            if type(last) is BodyReceived and last.stream_id == ex.stream_id:
                queue[-1] = BodyReceived(ex.stream_id, last.data, True)
                return
        self._emit(BodyReceived(ex.stream_id, b"", True))

    def _emit(self, event: Event) -> None:
        if self._deferred:
            self._deferred.append(event)
        else:
            self._events.append(event)

    def _must_hold(self) -> bool:
        """Leave input unparsed: the pipeline is full and no released request waits for body."""
        cur = self._cur
        return len(self._exchanges) >= self._max_pipeline and (cur is None or not cur.released)

    def _resume(self) -> None:
        inbuf = self._inbuf
        while inbuf and self._reading and self._state is not _CLOSING and not self._must_hold():
            size = _BODY_SLICE if self._cur is not None else _HEAD_SLICE
            chunk = bytes(inbuf[:size])
            del inbuf[:size]
            self._feed(chunk)

    def _release(self) -> None:
        deferred = self._deferred
        while deferred:
            event = deferred[0]
            if type(event) is RequestReceived:
                if self._active >= self._max_pipeline:
                    break
                self._active += 1
                ex = self._streams.get(event.stream_id)
                if ex is not None:
                    ex.released = True
            self._events.append(deferred.popleft())

    def _stop_parsing(self) -> None:
        self._reading = False
        self._inbuf.clear()
        self._in_head = False
        self._cur = None
        self._upgrade_body_left = 0

    def _fail(self, status: int, reason: str) -> None:
        """Answer bad input with a tiny response of our own (after the earlier responses), then
        close."""
        cur = self._cur
        self._stop_parsing()
        if cur is not None and cur in self._exchanges:
            # Its body is broken: whatever the layer above does with the request is moot.
            self._drop_from(self._exchanges.index(cur))
        if cur is None or not cur.head_sent:
            text = b"%d %s\n" % (status, _status_line(status)[13:-2])
            ex = _Exchange(0, "1.1", False, False)
            ex.set_status(status)
            ex.lines, ex.has_length = _head_lines([(b"content-type", b"text/plain; charset=utf-8"),
                                                   (b"content-length", b"%d" % len(text))])
            ex.body.append(text)
            ex.queued = len(text)
            ex.ended = ex.request_complete = ex.close_after = True
            self._exchanges.append(ex)
        elif self._exchanges:
            self._exchanges[-1].close_after = True
        else:
            self._advance(_CLOSING)
        self._terminate(status, reason)

    def _terminate(self, error_code: int, reason: str) -> None:
        if not self._terminated:
            self._terminated = True
            self._emit(ConnectionTerminated(error_code, reason))

    def _eof(self) -> None:
        if self._state is _CLOSING and self._terminated and not self._exchanges:
            return
        events = self._events
        for ex in self._exchanges:
            if ex.released:
                events.append(StreamReset(ex.stream_id, _CANCEL))
            ex.discard_body()
            self._dropped.add(ex.stream_id)
        for event in self._deferred:
            if type(event) is ConnectionTerminated:
                events.append(event)  # an error found before the EOF still gets reported
        self._deferred.clear()
        self._exchanges.clear()
        self._streams.clear()
        self._active = 0
        self._stop_parsing()
        self._advance(_CLOSING)
        self._terminate(0, "client closed")

    # -- responses ------------------------------------------------------------------------------

    def _drop_from(self, index: int, *, notify_first: bool = True) -> None:
        """Forget exchanges[index:]; tell the layer above about released ones it may be working on."""
        dropped: set[int] = set()
        while len(self._exchanges) > index:
            ex = self._exchanges.pop()
            ex.discard_body()
            if ex.stream_id:
                dropped.add(ex.stream_id)
                self._streams.pop(ex.stream_id, None)
            if ex.released:
                self._active -= 1
                if notify_first or len(self._exchanges) > index:
                    self._events.append(StreamReset(ex.stream_id, _CANCEL))
        self._dropped |= dropped
        if self._deferred and dropped:
            self._deferred = deque(
                e for e in self._deferred
                if not isinstance(e, RequestReceived | BodyReceived) or e.stream_id not in dropped)

    def _serialize_head(self, ex: _Exchange) -> bytes:
        # _status_line's table first, without its call: every response comes here.
        parts = [_STATUS_LINES.get(ex.status) or _status_line(ex.status), ex.lines]
        close = ex.close_after or not ex.keep_alive or self._state is not _OPEN or not ex.request_complete
        if ex.bodiless:
            ex.framing = _NONE
        elif ex.has_length:
            ex.framing = _RAW
        elif ex.ended and not ex.has_iter:
            # The whole body is already here: a length beats chunking.
            ex.framing = _RAW
            parts.append(b"content-length: %d\r\n" % ex.queued)
        elif ex.version == "1.1":
            ex.framing = _CHUNKED
            parts.append(_CHUNKED_TE)
        else:
            ex.framing = _RAW  # HTTP/1.0 without a length: the close delimits the body
            close = True
        if close:
            parts.append(_CLOSE)
        elif ex.version == "1.0":
            parts.append(_KEEP_ALIVE)
        parts.append(b"\r\n")
        ex.close_after = close
        return b"".join(parts)

    def _pull_body(self, ex: _Exchange, out: list[bytes | memoryview], budget: int) -> int:
        """Move up to ``budget`` body bytes of ``ex`` into ``out``; iterators are pulled only as
        far as the budget goes."""
        body = ex.body
        chunked = ex.framing == _CHUNKED
        had_queued = ex.queued > 0
        while body and budget > 0:
            item = body[0]
            if isinstance(item, bytes | memoryview):
                n = len(item)
                if n > budget:
                    view = memoryview(item)  # slices of a view copy nothing
                    piece: bytes | memoryview = view[:budget]
                    body[0] = view[budget:]
                    n = budget
                else:
                    body.popleft()
                    piece = item
                ex.queued -= n
            else:
                try:
                    if isinstance(item, SizedBody):
                        chunk = item.read(budget)  # what this write takes, none to keep for later
                        if not chunk:
                            raise StopIteration
                    else:
                        chunk = next(item)
                except StopIteration:
                    body.popleft()
                    continue
                except Exception as exc:
                    close_body(item)
                    self._abort_output(f"response cut short: {exc}")
                    return budget
                n = len(chunk)
                if not n:
                    continue
                if n > budget:
                    view = memoryview(chunk)
                    body.appendleft(view[budget:])
                    ex.queued += n - budget
                    piece = view[:budget]
                    n = budget
                else:
                    piece = chunk
            budget -= n
            if chunked:
                out.append(b"%x\r\n" % n)
                out.append(piece)
                out.append(b"\r\n")
            else:
                out.append(piece)
        if ex.streamed and had_queued and not ex.queued and not ex.has_iter:
            # Never behind deferred requests: those wait for this very response to finish.
            self._events.append(StreamDrained(ex.stream_id))
        return budget

    def _abort_output(self, reason: str) -> None:
        """A response cannot be finished: the client must see it cut short, so close now."""
        self._stop_parsing()
        self._drop_from(0)
        self._advance(_CLOSING)
        self._terminate(500, reason)

    def _complete(self, ex: _Exchange) -> None:
        """``ex``'s response has been handed out in full."""
        self._exchanges.popleft()
        if ex.stream_id:
            self._streams.pop(ex.stream_id, None)
        if ex.released:
            self._active -= 1
        if not ex.request_complete:
            # Answered before its body arrived: the body will not be read (we close below).
            if ex.released:
                self._events.append(StreamReset(ex.stream_id, _CANCEL))
            self._stop_parsing()
        if ex.close_after:
            self._stop_parsing()
            self._drop_from(0)
            self._advance(_CLOSING)
            return
        if self._deferred:
            self._release()
        if self._inbuf:
            self._resume()
        if self._state is not _OPEN and not self._exchanges:
            self._advance(_CLOSING)
