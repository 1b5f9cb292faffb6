"""What a request handler is given: a ``Stream`` — one request, the verbs to answer it, and
what the protocol underneath allows — and nothing more.

``server/streams.py`` implements ``Stream`` over the sans-IO cores; handlers (the site's
responder, mounted ASGI apps, dev mode) receive one with each request and never see the core,
the transport, the worker or the event loop behind it.  So they import this module, never
``server/``, and are driven in tests through in-memory connections around the real cores
(tests/support/memory.py), the same test body for every protocol.

A worker runs one ``App`` (``handle`` each request; ``startup``/``drain``/``shutdown`` around its
life); a router holds ``Mount``s, apps that answer the paths under a prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pushserve.protocol.events import Body, Headers, RequestReceived


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
    """What reads a request stream's events after its head arrived (a mounted app's request, a
    live-reload event stream): attached with ``Stream.attach``."""

    def on_body(self, data: bytes, end_stream: bool) -> None: ...

    def on_reset(self) -> None: ...

    def on_drained(self) -> None: ...


# What becomes of a request body a handler answered without reading (``Stream.decline_body``):
# "reset" — once the response is complete the client is told to stop sending (HTTP/2: RST_STREAM
# NO_ERROR, RFC 9113 §8.1); "close" — the connection closes after the response (HTTP/1.1 cannot
# skip a body it did not read).  Either way what arrives is read and dropped meanwhile.
UnreadBody = Literal["reset", "close"]


class Stream(Protocol):
    """One request and its response, as a handler sees it: what ``App.handle`` is given.

    A handler asks the stream what it may do (the capabilities below, decided once by the
    protocol side: ``server/streams.py`` holds the table "protocol by capability"), never which
    protocol it is talking to.  Misuse raises ``LocalProtocolError`` (a second final response,
    body before the head or after the end, anything on a reset stream); an exception out of a
    handler becomes a 500 when nothing was sent yet, else a reset, and one log line with the
    traceback.
    """

    request: RequestReceived  # method, target, authority, headers; end_stream: no body follows

    @property
    def received_at(self) -> float:
        """perf_counter() when the connection's latest bytes arrived (request timing in logs)."""

    @property
    def info(self) -> ConnectionInfo:
        """The connection's facts (peer, TLS version and cipher, ALPN), fixed at the handshake."""

    @property
    def pushed(self) -> set[str]:
        """Paths pushed on this connection (the connection's push memo: a path is pushed at most
        once); the handler that pushes adds to it."""

    # -- capabilities -------------------------------------------------------------------------

    @property
    def can_push(self) -> bool:
        """``push`` may promise: the protocol has push, the peer takes pushes, and this stream is
        not itself a pushed one."""

    @property
    def can_inform(self) -> bool:
        """A 1xx (``inform``) may go ahead of the final response: not on HTTP/1.0, not on a
        pushed stream."""

    @property
    def inform_opt_in(self) -> bool:
        """A 1xx the client did not ask for is mishandled by some clients and proxies of this
        protocol (HTTP/1.1), so a policy sends one only when the site opted in."""

    @property
    def promised(self) -> bool:
        """A pushed stream: nobody asked for it, so nothing is announced for it and it is not
        logged as a request."""

    @property
    def multiplexed(self) -> bool:
        """Streams share the connection (and its flow-control window) and finish in any order."""

    @property
    def unread_body(self) -> UnreadBody:
        """What becomes of a request body a handler declined (see ``UnreadBody``)."""

    @property
    def protocol(self) -> str:
        """"h1" or "h2" (later "h3"): a label for log lines, never a branch."""

    @property
    def http_version(self) -> str:
        """"1.0", "1.1" or "2": handed on as it is (the ASGI scope), never compared."""

    # -- state ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the stream was reset (by either side, as far as this stream was told) or the
        connection is gone: nothing sent now reaches the peer."""

    @property
    def buffered(self) -> int:
        """Bytes of the response queued for this stream that have not left yet."""

    # -- verbs ----------------------------------------------------------------------------------

    def respond(self, status: int, headers: Headers, body: Body | None = None, *, end: bool = True,
                defaults: bool = True) -> None:
        """The final response: ``body`` whole (bytes, or an iterator pulled as the peer takes it),
        or ``end=False`` to start a response continued with ``send``.  The stream's default
        fields (date, server) go first unless ``defaults=False`` (the handler put them in
        ``headers`` itself).  A HEAD response carries no body, whatever it is given.  Once only."""

    def inform(self, status: int, headers: Headers) -> None:
        """A 1xx (103 Early Hints) ahead of the final response; only where ``can_inform``."""

    def push(self, target: bytes, headers: Headers, *, urgency: int = 3) -> Stream | None:
        """Promise a GET of ``target`` (path and query) with these request ``headers`` (no
        pseudo-headers), before this stream's response has ended.  The promised request goes to
        the worker's app like one the client sent (the site or the mounted app that owns the
        path answers it) and its stream is returned; None when the client takes no (more)
        pushes.  Lower ``urgency`` is sent first (RFC 9218, 0..7; requests are 3)."""

    def send(self, data: bytes, end: bool = False) -> None:
        """More of a response started with ``respond(..., end=False)``; ``end`` finishes it."""

    def decline_body(self) -> None:
        """The handler answered without reading the request body and never will: once the
        response is complete, the client is told to stop sending where the protocol can
        (``unread_body``).  What arrives meanwhile, with no handler attached, is acknowledged and
        dropped."""

    def ack(self, length: int) -> None:
        """``length`` bytes of request body were consumed: the peer may send that much more
        (flow-control credit where the protocol has it)."""

    def reset(self) -> None:
        """Abandon the stream: the peer sees the response broken off, never passing for whole
        (HTTP/1.1: the connection closes after the responses before it)."""

    def flush(self) -> None:
        """Write what is queued, now."""

    def flush_soon(self) -> None:
        """Write once the tasks that are ready now have run (several responses finished in one
        loop turn leave in one write where the protocol multiplexes)."""

    def pause_reading(self, reason: str) -> None:
        """Stop reading from the peer until every reason given is withdrawn."""

    def resume_reading(self, reason: str) -> None: ...

    def default_headers(self) -> Headers:
        """Fields every response carries (date, server, and the worker id when asked for)."""

    def attach(self, handler: StreamHandler) -> None:
        """Route the stream's body, reset and drain events to ``handler``."""

    def detach(self, handler: StreamHandler) -> None:
        """Stop routing them to ``handler`` (no-op if another took over)."""


class App(Protocol):
    """What a worker runs: every request of every connection goes to ``handle``."""

    def handle(self, stream: Stream) -> None:
        """Answer ``stream.request`` (at once, or by attaching a handler and starting a task)."""

    async def startup(self) -> None:
        """Once per worker, before it accepts connections; raise to refuse to start."""

    def drain(self) -> None:
        """The worker stops accepting: end responses that never end by themselves."""

    async def shutdown(self) -> None:
        """Once per worker, after its connections are closed."""


class StatelessApp:
    """An App with nothing to start, end or stop: its subclasses write ``handle`` alone."""

    async def startup(self) -> None:
        pass

    def drain(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class Mount(App, Protocol):
    """An app that answers the requests under ``prefix`` (b"/api": /api, /api/…, /api?…)."""

    prefix: bytes
