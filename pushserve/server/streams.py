"""The Stream a handler is given (pushserve/exchange.py), over a sans-IO protocol core, and the one
table of what each protocol can do.

A handler asks its stream what it may do — push, send a 1xx, what an unread request body costs —
and never which protocol it is talking to: the answers are written down once, here, one row per
protocol (``CAPABILITIES``).  A new protocol is one more row and a core with the methods of
``events.ServerCore``; no handler changes.

``CoreStream`` keeps the one rule of a response's life: nothing sent (``_OPEN``: 1xx allowed) →
a streamed response started (``_STREAMING``) → ended (``_DONE``), or reset (``_RESET``: by us,
or by the peer as the attached handler was told).  A verb out of turn raises
``LocalProtocolError``; an exception out of a handler becomes a 500 while nothing was sent,
else a reset, and one log line with the traceback (``fail``).

The stream is also the ``StreamHandler`` the connection routes the stream's events to once a
handler is attached: it notes a reset, then passes each event on, so the handler's own errors
are caught in the same place.  ``EventRouting`` is that routing, the same for every connection
(server/connection.py's TCP ``Connection``, server/quic_session.py's ``QuicSession``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from pushserve.exchange import App, ConnectionInfo, StreamHandler, UnreadBody
from pushserve.protocol.events import (
    Body,
    BodyReceived,
    ConnectionTerminated,
    Event,
    Headers,
    LocalProtocolError,
    RequestReceived,
    ServerCore,
    StreamDrained,
    StreamReset,
)

log = logging.getLogger("pushserve")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """One protocol's row of the table (see exchange.Stream for what each means to a handler)."""

    protocol: str  # label for log lines: "h1", "h2"
    push: bool  # server push exists (the peer may still refuse it: SETTINGS_ENABLE_PUSH=0)
    inform: bool  # a 1xx may precede the final response
    inform_opt_in: bool  # … but unasked-for 1xx are mishandled by old clients and proxies
    multiplexed: bool  # many streams share one connection and its flow-control window
    unread_body: UnreadBody  # a body no handler reads: reset after the response, or close


# protocol by capability, by the request's HTTP version (RequestReceived.http_version).  HTTP/3
# (RFC 9114) has push (a client enables it with MAX_PUSH_ID; no browser does), 1xx, and multiplexed
# streams whose unread request body is stopped with STOP_SENDING H3_NO_ERROR after the response
# (§4.1: protocol/h3/core.py maps the "reset" of a complete response to that).
CAPABILITIES: dict[str, Capabilities] = {
    "1.0": Capabilities("h1", push=False, inform=False, inform_opt_in=True, multiplexed=False, unread_body="close"),
    "1.1": Capabilities("h1", push=False, inform=True, inform_opt_in=True, multiplexed=False, unread_body="close"),
    "2": Capabilities("h2", push=True, inform=True, inform_opt_in=False, multiplexed=True, unread_body="reset"),
    "3": Capabilities("h3", push=True, inform=True, inform_opt_in=False, multiplexed=True, unread_body="reset"),
}


class Worker(Protocol):
    """What a stream needs of the worker its connection belongs to."""

    @property
    def app(self) -> App: ...

    def default_fields(self) -> Headers:
        """Date, server and extra_headers, as a list the caller must not change."""


class StreamHost(Protocol):
    """What a stream needs of its connection (server/connection.py's Connection)."""

    @property
    def core(self) -> ServerCore: ...

    @property
    def worker(self) -> Worker: ...

    @property
    def info(self) -> ConnectionInfo: ...

    @property
    def pushed(self) -> set[str]: ...

    @property
    def received_at(self) -> float: ...

    @property
    def handlers(self) -> dict[int, StreamHandler]: ...

    @property
    def closed(self) -> bool: ...

    def flush(self) -> None: ...

    def flush_soon(self) -> None: ...

    def pause_reading(self, reason: str) -> None: ...

    def resume_reading(self, reason: str) -> None: ...


# A response's life (module-level ints: compared on every verb).
_OPEN, _STREAMING, _DONE, _RESET = range(4)
_STATE_NAMES = ("open", "streaming", "ended", "reset")

_NO_ERROR = 0  # RST_STREAM code that stops an upload without calling the response broken
_FAILED_TEXT = b"internal server error\n"


class CoreStream:
    """A ``Stream`` (exchange.py) over a ``ServerCore``; also the ``StreamHandler`` the
    connection routes the stream's events to while a handler is attached."""

    # Four fields: one is made per request, and each costs.
    __slots__ = ("conn", "handler", "request", "state")

    promised = False  # PromisedStream says True

    def __init__(self, conn: StreamHost, request: RequestReceived) -> None:
        self.conn = conn
        self.request = request
        self.state = _OPEN
        self.handler: StreamHandler | None = None

    def __repr__(self) -> str:
        req = self.request
        return (f"<stream {req.stream_id} {self.caps.protocol} {req.method.decode('latin-1')} "
                f"{req.target.decode('latin-1')} {_STATE_NAMES[self.state]}>")

    # -- facts and capabilities ---------------------------------------------------------------------

    @property
    def core(self) -> ServerCore:
        return self.conn.core

    @property
    def caps(self) -> Capabilities:
        return CAPABILITIES[self.request.http_version]

    @property
    def info(self) -> ConnectionInfo:
        return self.conn.info

    @property
    def pushed(self) -> set[str]:
        return self.conn.pushed

    @property
    def received_at(self) -> float:
        return self.conn.received_at

    @property
    def can_push(self) -> bool:
        return self.caps.push and not self.promised and self.core.push_enabled

    @property
    def can_inform(self) -> bool:
        return self.caps.inform and not self.promised

    @property
    def inform_opt_in(self) -> bool:
        return self.caps.inform_opt_in

    @property
    def multiplexed(self) -> bool:
        return self.caps.multiplexed

    @property
    def unread_body(self) -> UnreadBody:
        return self.caps.unread_body

    @property
    def protocol(self) -> str:
        return self.caps.protocol

    @property
    def http_version(self) -> str:
        return self.request.http_version

    @property
    def closed(self) -> bool:
        return self.state == _RESET or self.conn.closed

    @property
    def buffered(self) -> int:
        return self.core.buffered(self.request.stream_id)

    # -- verbs --------------------------------------------------------------------------------------

    def respond(self, status: int, headers: Headers, body: Body | None = None, *, end: bool = True,
                defaults: bool = True) -> None:
        if self.state != _OPEN:
            raise self._misuse("a final response")
        if defaults:
            headers = self.conn.worker.default_fields() + headers
        self.conn.core.send_response(self.request.stream_id, status, headers, body, end_stream=end)
        self.state = _DONE if end else _STREAMING

    def inform(self, status: int, headers: Headers) -> None:
        if self.state != _OPEN:
            raise self._misuse(f"a {status} response")
        if not self.can_inform:
            raise LocalProtocolError(f"a {status} response where no 1xx may go ({self!r})")
        self.core.send_informational(self.request.stream_id, status, headers)

    def push(self, target: bytes, headers: Headers, *, urgency: int = 3) -> CoreStream | None:
        if self.state > _STREAMING:
            raise self._misuse("a push")
        if not self.can_push:
            return None
        req = self.request
        promised_id = self.core.push_promise(
            req.stream_id, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", req.authority),
                            (b":path", target), *headers], urgency=urgency)
        if promised_id is None:
            return None
        pushed = PromisedStream(self.conn, RequestReceived(promised_id, b"GET", target, req.authority,
                                                           list(headers), req.http_version, True))
        try:  # answered by whoever answers the path: the site, or the mounted app that owns it
            self.conn.worker.app.handle(pushed)
        except Exception as e:
            pushed.fail(e)
        return pushed

    def send(self, data: bytes, end: bool = False) -> None:
        if self.state != _STREAMING:
            raise self._misuse("body" if self.state != _OPEN else "body before the response head")
        self.core.send_data(self.request.stream_id, data, end)
        if end:
            self.state = _DONE

    def ack(self, length: int) -> None:
        self.core.acknowledge_received(self.request.stream_id, length)

    def reset(self) -> None:
        if self.state != _RESET:
            self.state = _RESET
            self.core.reset_stream(self.request.stream_id)

    def flush(self) -> None:
        self.conn.flush()

    def flush_soon(self) -> None:
        self.conn.flush_soon()

    def pause_reading(self, reason: str) -> None:
        self.conn.pause_reading(reason)

    def resume_reading(self, reason: str) -> None:
        self.conn.resume_reading(reason)

    def default_headers(self) -> Headers:
        return list(self.conn.worker.default_fields())  # the handler's own copy

    def attach(self, handler: StreamHandler) -> None:
        self.handler = handler
        self.conn.handlers[self.request.stream_id] = self

    def detach(self, handler: StreamHandler) -> None:
        if self.handler is handler:
            self.handler = None
            handlers = self.conn.handlers
            if handlers.get(self.request.stream_id) is self:
                del handlers[self.request.stream_id]

    def decline_body(self) -> None:
        if self.handler is None and self.state == _DONE and self.caps.unread_body == "reset":
            # The RST_STREAM leaves after the response's last DATA (the core holds it back).
            self.core.reset_stream(self.request.stream_id, _NO_ERROR)

    # -- what the connection calls -------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """A handler raised ``exc``: one log line with the traceback, then a 500 if nothing was
        sent yet, else a reset, so the client never takes a broken response for a whole one."""
        req = self.request
        log.error("%s %s: %s %s: %s: %s", self.conn.info.peer, self.caps.protocol, req.method.decode("latin-1"),
                  req.target.decode("latin-1"), type(exc).__name__, exc, exc_info=exc)
        if self.handler is not None:
            self.detach(self.handler)
        if self.state == _OPEN:
            try:
                self.respond(500, [(b"content-type", b"text/plain; charset=utf-8"),
                                   (b"content-length", b"%d" % len(_FAILED_TEXT)), (b"cache-control", b"no-store")],
                             _FAILED_TEXT)
            except LocalProtocolError:  # the core knows the stream no more (reset meanwhile)
                self.state = _RESET
        elif self.state == _STREAMING:
            self.reset()
        self.conn.flush_soon()

    def _misuse(self, what: str) -> LocalProtocolError:
        why = ("", " after the response started", " after the response ended", " on a reset stream")[self.state]
        return LocalProtocolError(f"{what}{why} ({self!r})")

    # -- StreamHandler: the connection routes the stream's events here while a handler is attached --

    def on_body(self, data: bytes, end_stream: bool) -> None:
        handler = self.handler
        if handler is None:
            self.ack(len(data))
            return
        try:
            handler.on_body(data, end_stream)
        except Exception as e:
            self.fail(e)

    def on_reset(self) -> None:
        self.state = _RESET
        handler, self.handler = self.handler, None  # the connection has let go of us already
        if handler is not None:
            try:
                handler.on_reset()
            except Exception as e:
                self.fail(e)

    def on_drained(self) -> None:
        handler = self.handler
        if handler is not None:
            try:
                handler.on_drained()
            except Exception as e:
                self.fail(e)


class PromisedStream(CoreStream):
    """A pushed stream: nobody asked for it, so it may neither push nor inform."""

    __slots__ = ()

    promised = True


class EventRouting:
    """What a connection does with its core's events, whatever the protocol: each request goes to
    the worker's app as a ``CoreStream``; a stream's body, drain and reset go to the handler
    attached to it (body nobody reads is acknowledged and dropped); the end of the connection to
    ``connection_ended``."""

    core: ServerCore
    handlers: dict[int, StreamHandler]
    served_any: bool
    worker: Worker

    def handle_events(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, RequestReceived):
                self.served_any = True
                stream = CoreStream(self, ev)  # type: ignore[arg-type]  # a subclass is a StreamHost
                try:
                    self.worker.app.handle(stream)
                except Exception as e:
                    stream.fail(e)
            elif isinstance(ev, BodyReceived):
                handler = self.handlers.get(ev.stream_id)
                if handler is not None:
                    handler.on_body(ev.data, ev.end_stream)
                else:
                    self.core.acknowledge_received(ev.stream_id, len(ev.data))
            elif isinstance(ev, StreamDrained):
                handler = self.handlers.get(ev.stream_id)
                if handler is not None:
                    handler.on_drained()
            elif isinstance(ev, StreamReset):
                handler = self.handlers.pop(ev.stream_id, None)
                if handler is not None:
                    handler.on_reset()
                if ev.reason:  # the core reset it because its body failed (a file cut short)
                    self.stream_failed(ev.reason)
            elif isinstance(ev, ConnectionTerminated):
                self.connection_ended(ev)

    def connection_ended(self, ev: ConnectionTerminated) -> None:
        """The core says the connection is ending (the peer's GOAWAY, a protocol error, a
        timeout): one log line where it is worth one."""

    def stream_failed(self, reason: str) -> None:
        """The core reset a stream because its response failed (a file cut short under the
        download): one log line with ``reason``."""
