"""One request to a mounted ASGI app: its ``receive``/``send`` pair, and the ``StreamHandler``
of its stream, with the ``http.response.push`` / ``http.response.early_hint`` extensions.

Flow control is end to end: request body is acknowledged on the stream only as the app reads
it (on a multiplexed connection uploads go at the app's pace; on one that carries a request at a
time the stream stops reading while more than ``RECV_HIGH_WATER`` waits unread), and ``send``
waits while more than ``SEND_HIGH_WATER`` of the app's response is still queued.

A text response the app did not encode itself is compressed in the coding the client prefers
(``[compress] apps``), as a stream flushed at every body message, so nothing an app streams is
held back; never an event stream, a 206, or a response marked ``Cache-Control: no-transform``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from typing import Any, Protocol

from pushserve.asgi.types import ASGIApp, Message
from pushserve.exchange import Stream
from pushserve.http import codings
from pushserve.http.conditional import is_conditional
from pushserve.http.response import plain_response
from pushserve.protocol.events import Headers
from pushserve.site.compress.encoders import StreamEncoder
from pushserve.site.manifest import PushResource, infer_page
from pushserve.site.paths import SitePaths
from pushserve.site.responder import Announced, Responder

log = logging.getLogger("pushserve")

SEND_HIGH_WATER = 256 * 1024  # send() waits while more than this is queued for the stream
RECV_HIGH_WATER = 1024 * 1024  # not multiplexed: stop reading the socket above this much unread body
INFER_MAX_BODY = 1024 * 1024  # HTML bodies larger than this are not read for resources

_NO_BODY_STATUS = frozenset({204, 304})
# Response fields _start takes note of: the type (HTML is learned from), a length (none to add),
# and fields pushserve adds itself (the app's own value wins).
_NOTED = frozenset({b"content-type", b"content-length", b"date", b"server", b"x-pushserve-worker"})
# RFC 9110 field names (lower-case tokens) and values without CR, LF or NUL: anything else from
# an app could split the response on HTTP/1.1.
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9a-z]")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
_NOT_CODED_STATUS = frozenset({204, 206, 304})


class AppMount(Protocol):
    """What a request needs of the mount it came in on (mount.AsgiMount)."""

    app: ASGIApp
    name: str
    root_path: str
    responder: Responder
    max_body: int
    site_paths: SitePaths
    routes: dict[tuple[bytes, bytes], list[PushResource]]  # (method, path) → resources its HTML links
    relearn: bool  # learn from every page (dev mode), not only the route's first
    codings: tuple[bytes, ...]  # content codings for app responses, preferred first; () = none
    compress_threshold: int
    compress_levels: dict[bytes, int]

    def scope(self, stream: Stream) -> dict[str, Any]: ...

    def remember_route(self, key: tuple[bytes, bytes], resources: list[PushResource]) -> None: ...


class ClientDisconnected(OSError):
    """Raised by ``send`` once the client has gone (ASGI spec 2.4: an OSError subclass), so a
    streaming app stops producing for nobody."""


def reply_plain(responder: Responder, stream: Stream, status: int, text: bytes, note: str) -> None:
    responder.reply(stream, plain_response(status, text, note=note))
    stream.flush()


class AppRequest:
    """One request to a mounted app: its receive/send, and the StreamHandler of its stream."""

    __slots__ = (
        "announced",
        "app_announced",
        "body",
        "body_waiter",
        "coding",
        "collect",
        "complete",
        "drain_waiter",
        "early",
        "encoder",
        "extra_headers",
        "final_sent",
        "gone",
        "has_length",
        "head",
        "headers_sent",
        "more_body",
        "mount",
        "own_common",
        "paused_reading",
        "pushed",
        "queued",
        "received",
        "req",
        "sent",
        "status",
        "stream",
    )

    def __init__(self, mount: AppMount, stream: Stream) -> None:
        self.mount = mount
        self.stream = stream
        self.req = req = stream.request
        self.head = req.method == b"HEAD"
        # Request body: chunks the app has not read yet.
        self.body: deque[bytes] = deque()
        self.queued = 0
        self.received = 0
        self.more_body = not req.end_stream
        self.final_sent = False  # the app was given more_body=False
        self.body_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.paused_reading = False
        # Response.
        self.status = 0  # set by http.response.start
        self.extra_headers: Headers = []  # app headers, then Link headers from announce()
        self.headers_sent = False
        self.complete = False
        self.gone = False  # stream reset or connection lost
        self.sent = 0
        self.pushed = 0
        self.app_announced = False  # the app sent its own push or early hint
        self.announced = ""
        self.early: Announced | None = None  # announced when the request arrived
        self.has_length = False  # the app gave a content-length
        self.own_common = False  # the app set a field pushserve adds to every response
        self.collect: bytearray | None = None  # HTML kept to infer the route's resources
        self.coding: bytes | None = None  # the coding the response may get, decided at its start
        self.encoder: StreamEncoder | None = None  # ... and the compressor, once it does

    # -- StreamHandler (called by the connection) -------------------------------------------------

    def on_body(self, data: bytes, end_stream: bool) -> None:
        if self.gone or self.complete:
            self.stream.ack(len(data))
            return
        self.received += len(data)
        if self.mount.max_body and self.received > self.mount.max_body:
            self._body_too_large()
            return
        if data:
            self.body.append(data)
            self.queued += len(data)
        if end_stream:
            self.more_body = False
        _wake(self.body_waiter)
        if self.queued > RECV_HIGH_WATER and not self.stream.multiplexed and not self.paused_reading:
            # No stream window holds the client back (and pausing a multiplexed connection would
            # stall its other streams): stop reading the socket instead.
            self.paused_reading = True
            self.stream.pause_reading(f"asgi:{self.req.stream_id}")

    def on_reset(self) -> None:
        if self.gone or self.complete:
            return
        self.gone = True
        self.body.clear()
        _wake(self.body_waiter)
        _wake(self.drain_waiter)
        self._log(499 if not self.headers_sent else self.status, "reset by client")

    def on_drained(self) -> None:
        _wake(self.drain_waiter)

    # -- the app ---------------------------------------------------------------------------------

    async def run(self) -> None:
        mount = self.mount
        self._announce_early()
        try:
            await mount.app(mount.scope(self.stream), self.receive, self.send)
        except asyncio.CancelledError:
            self._abandon("cancelled")
            raise
        except Exception as e:
            if self.gone:
                log.debug("mount %s: app ended after disconnect: %r", mount.root_path, e)
            else:
                log.error("mount %s: exception in %s for %s %s", mount.root_path, mount.name,
                          self.req.method.decode("latin-1"), self.req.target.decode("latin-1"),
                          exc_info=e)
                self._abandon(f"app raised {type(e).__name__}")
        else:
            if not self.complete and not self.gone:
                log.error("mount %s: %s returned without completing the response to %s %s",
                          mount.root_path, mount.name, self.req.method.decode("latin-1"),
                          self.req.target.decode("latin-1"))
                self._abandon("incomplete response")
        finally:
            self._release()

    async def receive(self) -> Message:
        while True:
            if self.gone:
                return {"type": "http.disconnect"}
            if self.body:
                data = self.body.popleft() if len(self.body) == 1 else b"".join(self.body)
                self.body.clear()
                self.queued = 0
                self.stream.ack(len(data))
                self.stream.flush_soon()
                self._resume_reading()
                if not self.more_body:
                    self.final_sent = True
                return {"type": "http.request", "body": data, "more_body": self.more_body}
            if not self.more_body and not self.final_sent:
                self.final_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.complete:
                # Body all read and response sent: the next thing to happen is the disconnect.
                return {"type": "http.disconnect"}
            waiter = self.body_waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self.body_waiter = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.gone:
            raise ClientDisconnected(f"client went away ({kind} not sent)")
        if self.complete:
            raise RuntimeError(f"ASGI message {kind!r} after the response was complete")
        if kind == "http.response.body":
            if not self.status:
                raise RuntimeError("http.response.body before http.response.start")
            body = message.get("body", b"")
            await self._body(body if type(body) is bytes else bytes(body), bool(message.get("more_body", False)))
        elif kind == "http.response.start":
            if self.status:
                raise RuntimeError("http.response.start sent twice")
            self._start(int(message["status"]), message.get("headers", ()))
        elif kind == "http.response.push":
            self._push(str(message.get("path", "")))
        elif kind == "http.response.early_hint":
            self._early_hint(message.get("links", ()))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an http scope")

    # -- response -------------------------------------------------------------------------------

    def _start(self, status: int, raw_headers: Any) -> None:
        if not 200 <= status <= 599:
            raise RuntimeError(f"http.response.start with status {status}")
        headers: Headers = []
        html = False
        for raw_name, raw_value in raw_headers:
            name, value = bytes(raw_name).lower(), bytes(raw_value)
            if not name or _BAD_NAME.search(name) or _BAD_VALUE.search(value):
                raise RuntimeError(f"invalid response header {name!r}: {value!r}")
            headers.append((name, value))  # lower-cased: the cores drop connection-specific ones
            if name in _NOTED:
                if name == b"content-type":
                    html = value[:9].lower() == b"text/html"
                elif name == b"content-length":
                    self.has_length = True
                else:
                    self.own_common = True
        self.status = status
        self.extra_headers = headers
        if self.mount.codings and status not in _NOT_CODED_STATUS:
            self._plan_coding()
        if not html or status != 200 or self.req.method not in (b"GET", b"HEAD"):
            return
        resources = self.mount.routes.get(self._route_key())
        if (resources is None or self.mount.relearn) and not self.head:
            self.collect = bytearray()  # the route's first page (dev mode: every page) teaches it
        if self.early is not None:
            self.extra_headers += self.early.headers
            self.announced = self.early.summary
        elif resources and not self.app_announced and self._may_announce():
            responder = self.mount.responder
            announced = responder.announce(self.stream, resources)
            self.extra_headers += announced.headers
            self.announced = announced.summary
            self.stream.flush()

    def _announce_early(self) -> None:
        """A route whose HTML taught us its resources gets them announced as the request arrives,
        so the client fetches them while the app works: the case 103 Early Hints exist for.
        Conditional requests wait for the app's answer (no pushes ahead of a 304)."""
        routes = self.mount.routes
        resources = routes.get(self._route_key()) if routes else None
        req = self.req
        if (not resources or self.mount.relearn or req.method != b"GET" or not self._may_announce()
                or is_conditional(req.headers)):
            return
        self.early = self.mount.responder.announce(self.stream, resources)
        self.stream.flush()

    def _route_key(self) -> tuple[bytes, bytes]:
        # HEAD shares GET's entry: it never has a body to learn from, but its hints are the same.
        return b"GET", self.req.target.partition(b"?")[0]

    def _may_announce(self) -> bool:
        return not self.stream.promised  # nobody asked for a pushed response: nothing to announce

    async def _body(self, data: bytes, more: bool) -> None:
        stream = self.stream
        if self.collect is not None:
            if len(self.collect) + len(data) > INFER_MAX_BODY:
                self.collect = None
                self.mount.remember_route(self._route_key(), [])
            else:
                self.collect += data
        if self.coding is not None and not self.headers_sent and (more or len(data) >= self.mount.compress_threshold):
            self._start_coding()
        if self.encoder is not None:
            data = self.encoder.write(data) if more else self.encoder.finish(data)
        if not self.headers_sent:
            self.headers_sent = True
            headers = self._head_headers(data, more)
            if more:
                stream.respond(self.status, headers, None, end=False, defaults=False)
                if data and not self.head:
                    stream.send(data)
            else:
                stream.respond(self.status, headers, None if self.head else data, defaults=False)
        elif not self.head or not more:  # HEAD: no body, but the response must still end
            stream.send(b"" if self.head else data, end=not more)
        self.sent += 0 if self.head else len(data)
        if not more:
            stream.flush_soon()
            self._finish()
            return
        stream.flush_soon()
        while stream.buffered > SEND_HIGH_WATER and not self.gone:
            waiter = self.drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self.drain_waiter = None
        if self.gone:
            raise ClientDisconnected("client went away while the response was streamed")

    def _plan_coding(self) -> None:
        """Whether the response may be compressed, and in which coding; Vary says it depends on
        Accept-Encoding whenever it could."""
        headers = self.extra_headers
        fields = {k: v for k, v in headers if k in (b"content-type", b"content-encoding", b"content-range",
                                                      b"cache-control", b"content-length", b"vary")}
        if (b"content-encoding" in fields or b"content-range" in fields
                or not codings.compressible(fields.get(b"content-type", b""))
                or codings.no_transform(fields.get(b"cache-control"))):
            return
        length = fields.get(b"content-length")
        if length is not None and length.isdigit() and int(length) < self.mount.compress_threshold:
            return
        vary = codings.merge_vary(fields.get(b"vary"), codings.VARY_CODING)
        self.extra_headers = [h for h in headers if h[0] != b"vary"] + [(b"vary", vary)]
        accept = b", ".join(v for k, v in self.req.headers if k == b"accept-encoding")
        self.coding = codings.choose(accept, self.mount.codings) if accept else None

    def _start_coding(self) -> None:
        """The first body message is here and worth compressing: the headers say so."""
        coding = self.coding
        assert coding is not None
        self.encoder = StreamEncoder(coding, self.mount.compress_levels[coding])
        headers: Headers = []
        for k, v in self.extra_headers:
            if k == b"content-length":
                continue  # the coded length is known only at the end (or for a single message)
            headers.append((k, codings.coded_etag(v, coding) if k == b"etag" else v))
        headers.append((b"content-encoding", coding))
        self.extra_headers = headers
        self.has_length = False

    def _head_headers(self, first: bytes, more: bool) -> Headers:
        app = self.extra_headers
        headers = self.stream.default_headers()
        if self.own_common:  # the app set its own date or server: it wins
            names = {k for k, _ in app}
            headers = [h for h in headers if h[0] not in names]
        headers += app
        # A response given whole gets its length, so HTTP/1.1 needs no chunked framing for it.
        if not more and not self.head and not self.has_length and self.status not in _NO_BODY_STATUS:
            headers.append((b"content-length", b"%d" % len(first)))
        return headers

    def _push(self, path: str) -> None:
        if self.headers_sent or not path.startswith("/") or not self._may_announce():
            return
        if not self.stream.can_push:
            return
        self.app_announced = True
        self.pushed += len(self.mount.responder.push_paths(self.stream, [(path, 5)]))
        self.stream.flush()

    def _early_hint(self, links: Any) -> None:
        if self.headers_sent or not self.stream.can_inform:
            return
        headers = [(b"link", bytes(link)) for link in links]
        if headers:
            self.app_announced = True
            self.stream.inform(103, headers)
            self.stream.flush()

    def _finish(self) -> None:
        self.complete = True
        _wake(self.body_waiter)  # a receive() waiting now gets http.disconnect
        self._release()
        if self.collect is not None:
            key = self._route_key()
            resources, _warnings = infer_page(bytes(self.collect), key[1].decode("latin-1"),
                                              self.mount.site_paths)
            self.collect = None
            self.mount.remember_route(key, resources)
        announced = self.announced
        if self.pushed:
            announced = f"app-push={self.pushed}" + (f" {announced}" if announced else "")
        self._log(self.status, "", announced)

    def _abandon(self, why: str) -> None:
        """The app failed or left the response unfinished: 500 if nothing was sent yet, else the
        stream is reset (HTTP/1.1: the connection closed) so the client sees a broken response,
        never a truncated one passing for whole."""
        if self.complete or self.gone:
            return
        if not self.headers_sent:
            self.complete = True
            _wake(self.body_waiter)
            reply_plain(self.mount.responder, self.stream, 500, b"internal server error\n", why)
        else:
            self.gone = True
            self.stream.reset()
            self.stream.flush()
            self._log(self.status, why)
        self._release()

    def _body_too_large(self) -> None:
        self.body.clear()
        self.queued = 0
        if not self.headers_sent:
            self.complete = True
            self.gone = True  # the app reads http.disconnect and its sends go nowhere
            reply_plain(self.mount.responder, self.stream, 413, b"request body too large\n",
                        "body over --max-body-size")
        else:
            self.gone = True
            self.stream.reset()
            self.stream.flush()
            self._log(self.status, "body over --max-body-size")
        _wake(self.body_waiter)
        _wake(self.drain_waiter)
        self._release()

    def _release(self) -> None:
        """The stream needs this handler no more: unregister, let the socket read again."""
        self.stream.detach(self)
        self.body.clear()
        self.queued = 0
        self._resume_reading()

    def _resume_reading(self) -> None:
        if self.paused_reading and self.queued <= RECV_HIGH_WATER // 2:
            self.paused_reading = False
            self.stream.resume_reading(f"asgi:{self.req.stream_id}")

    def _log(self, status: int, note: str, announced: str = "") -> None:
        responder = self.mount.responder
        if responder.access_log_on:
            sent = self.sent if self.encoder is None else b"%d %s" % (self.sent, self.encoder.coding)
            responder.log(self.stream, status, sent, announced, note)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
