"""Protocol-neutral events and the interface both protocol cores offer.

The cores (h1.py, h2.py) are sans-IO: bytes go in through ``receive_data``, events come out, the
layer above answers through methods (``send_response``, ``send_data``…), and the bytes to write
come out of ``data_to_send``.  Neither core imports asyncio, opens a file or reads a clock: timers
and sockets belong to server/connection.py.

Events are values: nothing changes one after it is made.  They are plain slotted dataclasses,
not frozen ones, because a frozen dataclass costs four times as much to build (its __init__ goes
through object.__setattr__), and one is built for every request.

Every event names the stream it belongs to.  HTTP/1.1 numbers its requests 1, 3, 5… in arrival
order so the layer above can treat both protocols alike; responses on HTTP/1.1 still leave in
request order, whatever order the layer above answers in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol

# Header lists keep wire order and repeats.  Names are lower-case bytes.
Headers = list[tuple[bytes, bytes]]

# A response body: the whole of it, or an iterator the core pulls chunks from only when the
# peer can take them (flow-control window open, transport not paused), so a large file is
# never read whole into memory.
Body = bytes | Iterator[bytes]


class SizedBody:
    """A body that can hand out as many bytes as asked (a file): the cores ask for what leaves in
    the current write (a frame's worth, what the window and the batch allow), so nothing read
    waits in memory for a peer that does not read.  Iterating gives ``CHUNK``-sized pieces.

    An iterator by its methods, not by deriving from ``collections.abc.Iterator``: the cores ask
    ``isinstance(body, SizedBody)`` for every piece they send, and an ABC answers that through
    a Python-level ``__instancecheck__``."""

    __slots__ = ()
    CHUNK = 64 * 1024

    def __iter__(self) -> SizedBody:
        return self

    def read(self, n: int) -> bytes:
        """At most ``n`` (> 0) bytes; b"" once the body has ended."""
        raise NotImplementedError

    def __next__(self) -> bytes:
        data = self.read(self.CHUNK)
        if not data:
            raise StopIteration
        return data

# Fields about one connection, not the message: forbidden in HTTP/2 (RFC 9113 §8.2.2); on
# HTTP/1.1 the core frames messages itself.  Cores drop them from responses they are given.
CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                 b"upgrade"})


class LocalProtocolError(Exception):
    """The layer above asked for something the protocol forbids at this point (a second final
    response, body after the end, anything on a reset stream): a bug in the caller, raised as
    h11 raises it, so it shows up as an error with a traceback rather than a missing response."""


def close_body(body: object) -> None:
    """Release a body iterator that will not be read to its end (an open file, say); its
    cleanup failing must not break the connection."""
    close = getattr(body, "close", None)
    if callable(close):
        with suppress(Exception):
            close()


@dataclass(slots=True)
class RequestReceived:
    """A complete request head.  ``end_stream`` is True when no body follows."""

    stream_id: int
    method: bytes
    target: bytes  # path and query as sent (:path on HTTP/2, request-target on HTTP/1.1)
    authority: bytes  # :authority, else Host; b"" when the client sent neither
    headers: Headers  # regular headers only, names lower-case, no pseudo-headers
    http_version: str  # "2", "1.1" or "1.0"
    end_stream: bool


@dataclass(slots=True)
class BodyReceived:
    """A piece of request body.  ``end_stream`` marks the last piece (``data`` may be empty)."""

    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(slots=True)
class StreamReset:
    """The peer abandoned the stream (RST_STREAM; or an HTTP/1.1 connection lost mid-request),
    or the core reset it because its response body failed (``reason`` says why, one line for
    the log).  Any work for it should stop; anything still queued for it has been dropped."""

    stream_id: int
    error_code: int
    reason: str = ""


@dataclass(slots=True)
class StreamDrained:
    """Everything queued for the stream with ``send_data`` has left the core's buffers, so a
    producer (an ASGI app streaming a response) may queue more."""

    stream_id: int


@dataclass(slots=True)
class ConnectionTerminated:
    """The connection is ending: the peer sent GOAWAY, or its input broke the protocol.
    ``reason`` is one short line for the log.  Once ``data_to_send`` returns b"" the transport
    should be closed."""

    error_code: int
    reason: str


Event = RequestReceived | BodyReceived | StreamReset | StreamDrained | ConnectionTerminated


class ServerCore(Protocol):
    """What server/connection.py needs from a protocol core (h1.H1Core and h2.H2Core).

    Misuse raises LocalProtocolError and changes nothing: a call on a stream never opened or
    whose response has ended, data before the response head or after its end, a 1xx after the
    final head, a push on a pushed or ended stream, a status or field no response may carry
    (protocol/outgoing.py).  A stream that ended under the caller's feet (reset by the peer or
    by the core, the connection gone) takes late calls silently: the caller has been or will be
    told by a StreamReset.  ``reset_stream`` of a stream that ended, ``acknowledge_received``
    and ``buffered`` never raise for a stream that existed."""

    http_version: str  # "2" or "1.1"

    def initiate(self) -> None:
        """Queue the connection preface (HTTP/2 SETTINGS); nothing for HTTP/1.1."""

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the transport; returns what they meant.  b"" means end of input."""

    @property
    def pending_input(self) -> bool:
        """True while input already received waits unprocessed: ``receive_data`` handles a
        bounded slice per call, so one peer's flood cannot hold the event loop.  Call ``resume``
        (after letting other connections run) until it is False."""

    def resume(self) -> list[Event]:
        """Process the next bounded slice of the buffered input; what it meant, as
        ``receive_data`` returns."""

    def send_response(self, stream_id: int, status: int, headers: Headers, body: Body | None = None,
                      *, end_stream: bool = True) -> None:
        """Queue a final response.  ``body=None, end_stream=False`` starts a streamed response
        continued with ``send_data``.  For HEAD requests the core sends no body, whatever it
        is given.  The caller sets content-length when it knows it."""

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue more body for a streamed response."""

    def send_informational(self, stream_id: int, status: int, headers: Headers) -> None:
        """Queue a 1xx response (100 Continue, 103 Early Hints) ahead of the final one."""

    @property
    def push_enabled(self) -> bool:
        """True when the peer accepts server push (HTTP/2 with SETTINGS_ENABLE_PUSH not 0)."""

    def push_promise(self, stream_id: int, request_headers: Headers, *, urgency: int = 3) -> int | None:
        """Promise a pushed response on ``stream_id``; ``request_headers`` start with the
        pseudo-headers.  Returns the promised stream id, or None when the peer won't take more
        pushes.  The pushed response is then sent with send_response on that id.  Lower
        ``urgency`` is sent first (RFC 9218 scale, 0..7; requested streams default to 3)."""

    def acknowledge_received(self, stream_id: int, length: int) -> None:
        """The layer above has consumed ``length`` bytes of request body: HTTP/2 reopens that
        much flow-control window (so uploads go at the consumer's pace); HTTP/1.1 ignores it."""

    def reset_stream(self, stream_id: int, error_code: int = 0x8) -> None:
        """Abandon a stream (HTTP/2 RST_STREAM CANCEL; HTTP/1.1 closes the connection)."""

    def buffered(self, stream_id: int) -> int:
        """Bytes queued for the stream that have not yet left the core."""

    def next_events(self) -> list[Event]:
        """Events that arose while sending rather than receiving (StreamDrained; HTTP/1.1
        pipelined requests held back until earlier responses went out).  Call after data_to_send."""

    def data_to_send(self, limit: int = 256 * 1024) -> bytes:
        """Bytes to write now: at most about ``limit`` of body, pulled from queued bodies as
        flow control allows.  b"" when there is nothing to write until more input arrives."""

    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Begin a graceful close: HTTP/2 sends GOAWAY and takes no new streams, finishing open
        ones; HTTP/1.1 closes after the response in progress."""

    @property
    def closing(self) -> bool:
        """True once the transport should be closed as soon as ``data_to_send`` is empty."""

    @property
    def open_streams(self) -> int:
        """Requests received and not yet fully answered (for idle timers and draining)."""

    @property
    def awaiting_head(self) -> bool:
        """True while part of a request head has arrived but not all of it (header timeout)."""
