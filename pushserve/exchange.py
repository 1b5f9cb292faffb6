"""What a request handler may do with the connection its request arrived on — and nothing more.

The asyncio glue (``server/connection.py``) implements ``Exchange``; handlers (the site's
responder, mounted ASGI apps, dev mode) receive one with each request and never see the
transport, the worker or the event loop behind it.  So they import this module, never
``server/``, and can be driven in tests by an in-memory exchange around a real protocol core.

A worker runs one ``App`` (``handle`` each request; ``startup``/``drain``/``shutdown`` around its
life); a router holds ``Mount``s, apps that answer the paths under a prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pushserve.protocol.events import Headers, RequestReceived, ServerCore


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Facts about a connection, fixed once the TLS handshake is done."""

    peer: str  # "127.0.0.1:50312" or "[::1]:50312", for log lines
    client: tuple[str, int] | None  # the peer's address (ASGI scope "client")
    server: tuple[str, int] | None  # our address (ASGI scope "server")
    tls_version: str = ""  # "TLSv1.3"
    cipher: str = ""  # OpenSSL's cipher name
    alpn: str = ""  # "h2", "http/1.1", or "" when the client offered nothing


class StreamHandler(Protocol):
    """What owns a request stream after its head arrived (a mounted app's request, a live-reload
    event stream, or the discard handler for bodies nobody reads)."""

    def on_body(self, data: bytes, end_stream: bool) -> None: ...

    def on_reset(self) -> None: ...

    def on_drained(self) -> None: ...


class Exchange(Protocol):
    """One connection, as a handler sees it."""

    core: ServerCore  # the sans-IO protocol core: send_response, push_promise, send_data…
    info: ConnectionInfo
    pushed: set[str]  # paths pushed on this connection (a path is pushed at most once)
    received_at: float  # perf_counter() when the latest bytes arrived (request timing in logs)

    @property
    def closed(self) -> bool:
        """True once the connection is gone: nothing sent now reaches the peer."""

    def attach(self, stream_id: int, handler: StreamHandler) -> None:
        """Route the stream's body, reset and drain events to ``handler``."""

    def detach(self, stream_id: int, handler: StreamHandler) -> None:
        """Stop routing the stream's events to ``handler`` (no-op if another took over)."""

    def flush(self) -> None:
        """Write what the core has queued, now."""

    def flush_soon(self) -> None:
        """Write once the tasks that are ready now have run (HTTP/2: one write for several
        responses finished in the same loop turn); HTTP/1.1 flushes at once."""

    def pause_reading(self, reason: str) -> None:
        """Stop reading from the peer until every reason given is withdrawn."""

    def resume_reading(self, reason: str) -> None: ...

    def default_headers(self) -> Headers:
        """Fields every response carries (date, server, and the worker id when asked for)."""


class DiscardBody:
    """A request body nobody reads (sent to a static file, say): read and dropped, keeping
    HTTP/2 windows open; the handler detaches itself once the body has ended."""

    __slots__ = ("exchange", "stream_id")

    def __init__(self, exchange: Exchange, stream_id: int) -> None:
        self.exchange = exchange
        self.stream_id = stream_id

    def on_body(self, data: bytes, end_stream: bool) -> None:
        self.exchange.core.acknowledge_received(self.stream_id, len(data))
        if end_stream:
            self.exchange.detach(self.stream_id, self)

    def on_reset(self) -> None:
        pass

    def on_drained(self) -> None:
        pass


class App(Protocol):
    """What a worker runs: every request of every connection goes to ``handle``."""

    def handle(self, exchange: Exchange, request: RequestReceived) -> None:
        """Answer the request (at once, or by attaching a handler and starting a task)."""

    async def startup(self) -> None:
        """Once per worker, before it accepts connections; raise to refuse to start."""

    def drain(self) -> None:
        """The worker stops accepting: end responses that never end by themselves."""

    async def shutdown(self) -> None:
        """Once per worker, after its connections are closed."""


class Mount(App, Protocol):
    """An app that answers the requests under ``prefix`` (b"/api": /api, /api/…, /api?…)."""

    prefix: bytes
