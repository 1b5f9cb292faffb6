"""ASGI 3 adapter: mounted apps serve the requests under their prefix, with lifespan events and
the ``http.response.push`` / ``http.response.early_hint`` extensions.

One ``AsgiMount`` per ``--mount``; one ``_AppRequest`` per request, which is both the app's
``receive``/``send`` pair and the connection's ``StreamHandler`` for that stream.

Flow control is end to end: request body is acknowledged to the protocol core only as the app
reads it (HTTP/2 uploads go at the app's pace; on HTTP/1.1 the transport stops reading while
more than ``RECV_HIGH_WATER`` waits unread), and ``send`` waits while more than
``SEND_HIGH_WATER`` of the app's response is still queued in the core.

A page an app returns (200, text/html) is read once per route for the site resources it links;
later responses for that route announce them (push or 103 + Link) as site pages do.

A text response the app did not encode itself is compressed in the coding the client prefers
(``[compress] apps``), as a stream flushed at every body message, so nothing an app streams is
held back; never an event stream, a 206, or a response marked ``Cache-Control: no-transform``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from pushserve.asgi_load import add_import_paths, import_app
from pushserve.config import Config, ConfigError
from pushserve.http import codings
from pushserve.http.conditional import is_conditional
from pushserve.http.response import plain_response
from pushserve.protocol.events import Headers, RequestReceived
from pushserve.site.compress.encoders import StreamEncoder
from pushserve.site.manifest import PushResource, SiteFiles, infer_page

if TYPE_CHECKING:
    from pushserve.server.connection import Connection
    from pushserve.server.responder import Announced

log = logging.getLogger("pushserve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SEND_HIGH_WATER = 256 * 1024  # send() waits while more than this is queued for the stream
RECV_HIGH_WATER = 1024 * 1024  # HTTP/1.1: stop reading the socket above this much unread body
INFER_MAX_BODY = 1024 * 1024  # HTML bodies larger than this are not read for resources
ROUTE_CACHE_MAX = 512  # routes whose resources are remembered (oldest forgotten first)
LIFESPAN_TIMEOUT = 10.0  # for an app to answer lifespan.startup / lifespan.shutdown
TASK_GRACE = 5.0  # app tasks still running at shutdown (background work) get this long

_HTTP_ASGI = {"version": "3.0", "spec_version": "2.4"}
_LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_NO_BODY_STATUS = frozenset({204, 304})
# Response fields _start takes note of: the type (HTML is learned from), a length (none to add),
# and fields pushserve adds itself (the app's own value wins).
_NOTED = frozenset({b"content-type", b"content-length", b"date", b"server", b"x-pushserve-worker"})
# RFC 9110 field names (lower-case tokens) and values without CR, LF or NUL: anything else from
# an app could split the response on HTTP/1.1.
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9a-z]")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
_NOT_CODED_STATUS = frozenset({204, 206, 304})


class ClientDisconnected(OSError):
    """Raised by ``send`` once the client has gone (ASGI spec 2.4: an OSError subclass), so a
    streaming app stops producing for nobody."""


def load_mounts(config: Config) -> list[AsgiMount]:
    """Import every mounted app; a broken one is a ConfigError naming the mount."""
    add_import_paths(config)
    return [AsgiMount(m.prefix, import_app(m.app, m.prefix), config, m.app) for m in config.mounts]


@functools.cache
def _cipher_ids() -> dict[str, int]:
    # The ASGI tls extension wants the IANA number; OpenSSL's id carries it in the low 16 bits.
    return {c["name"]: c["id"] & 0xFFFF for c in ssl.create_default_context().get_ciphers()}


def _address(info: object) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def _one_line(message: object) -> str:
    """Apps (Starlette) put a whole traceback in lifespan failure messages: keep the last line."""
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class AsgiMount:
    def __init__(self, prefix: str, app: ASGIApp, config: Config, name: str = "") -> None:
        self.prefix = prefix.encode()
        self.root_path = prefix
        self.app = app
        self.name = name or repr(app)
        self.max_body = config.limits.max_body_size
        self.graceful = config.limits.graceful_timeout
        self.site_files = SiteFiles(config.site)
        self.state: dict[str, Any] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        # (method, path) → site resources its HTML links; filled on the route's first page.
        self.routes: dict[tuple[bytes, bytes], list[PushResource]] = {}
        self.relearn = config.dev  # dev mode: pages and files change, so learn from every page
        compress = config.compress
        self.codings = tuple(c.encode() for c in compress.codings) if compress.apps else ()
        self.compress_threshold = compress.threshold
        self.compress_levels = {c.encode(): level for c, level in compress.fast_levels.items()}
        self._lifespan: _Lifespan | None = None

    # -- lifespan ---------------------------------------------------------------------------------

    async def startup(self) -> None:
        lifespan = _Lifespan(self.app, self.state)
        reply = await lifespan.exchange("lifespan.startup", LIFESPAN_TIMEOUT)
        if reply is None:
            if lifespan.task.done():
                # ASGI: an app that raises on (or returns from) the lifespan scope doesn't
                # support it; the app is served all the same.
                err = lifespan.error
                log.info("mount %s: %s does not support lifespan%s", self.root_path, self.name,
                         f" ({type(err).__name__}: {_one_line(err)})" if err else "")
            else:
                log.warning("mount %s: no answer to lifespan.startup within %.0fs; serving anyway",
                            self.root_path, LIFESPAN_TIMEOUT)
                self._lifespan = lifespan
            return
        if reply.get("type") == "lifespan.startup.failed":
            lifespan.task.cancel()
            raise ConfigError(f"mount {self.root_path}: {self.name} startup failed: "
                              f"{_one_line(reply.get('message'))}")
        self._lifespan = lifespan

    async def shutdown(self) -> None:
        if self.tasks:
            # Requests are drained by now; what is left is background work: give it a moment.
            await asyncio.wait(set(self.tasks), timeout=min(TASK_GRACE, self.graceful))
            for task in list(self.tasks):
                task.cancel()
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is None or lifespan.task.done():
            return
        reply = await lifespan.exchange("lifespan.shutdown", LIFESPAN_TIMEOUT)
        if reply is None and not lifespan.task.done():
            log.warning("mount %s: no answer to lifespan.shutdown within %.0fs", self.root_path,
                        LIFESPAN_TIMEOUT)
        elif reply is not None and reply.get("type") == "lifespan.shutdown.failed":
            log.error("mount %s: shutdown failed: %s", self.root_path, _one_line(reply.get("message")))
        if not lifespan.task.done():
            lifespan.task.cancel()

    # -- requests ---------------------------------------------------------------------------------

    def start(self, conn: Connection, req: RequestReceived) -> None:
        if not req.end_stream and self.max_body:
            for name, value in req.headers:
                if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                    _reply_plain(conn, req, 413, b"request body too large\n", "body over --max-body-size")
                    return
        handler = _AppRequest(self, conn, req)
        conn.handlers[req.stream_id] = handler
        task = conn.worker.loop.create_task(handler.run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def scope(self, conn: Connection, req: RequestReceived) -> dict[str, Any]:
        raw_path, _, query = req.target.partition(b"?")
        path = (unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path).decode("utf-8", "replace")
        headers = req.headers  # the core made this list for this request alone
        h2 = req.http_version == "2"
        if h2 and req.authority and not any(name == b"host" for name, _ in headers):
            headers = [(b"host", req.authority), *headers]
        base = conn.scope_base
        if base is None:  # what stays the same for every request on this connection
            transport = conn.transport
            base = conn.scope_base = {
                "client": _address(transport.get_extra_info("peername")) if transport else None,
                "server": _address(transport.get_extra_info("sockname")) if transport else None,
                "tls": {
                    "server_cert": None, "client_cert_chain": [], "client_cert_name": None,
                    "client_cert_error": None,
                    "tls_version": _TLS_VERSIONS.get(str(conn.tls.get("tls_version", ""))),
                    "cipher_suite": _cipher_ids().get(str(conn.tls.get("cipher", ""))),
                },
            }
        extensions: dict[str, Any] = {"tls": base["tls"]}
        pushed = h2 and req.stream_id % 2 == 0  # a pushed request cannot push or hint further
        if not pushed and req.http_version != "1.0":
            extensions["http.response.early_hint"] = {}
        if not pushed and conn.core.push_enabled:
            extensions["http.response.push"] = {}
        return {
            "type": "http",
            "asgi": _HTTP_ASGI,
            "http_version": req.http_version,
            "method": req.method.decode("latin-1"),
            "scheme": "https",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": self.root_path,
            "headers": headers,
            "client": base["client"],
            "server": base["server"],
            "state": dict(self.state),
            "extensions": extensions,
        }

    def remember_route(self, key: tuple[bytes, bytes], resources: list[PushResource]) -> None:
        if len(self.routes) >= ROUTE_CACHE_MAX:
            del self.routes[next(iter(self.routes))]
        self.routes[key] = resources


def _reply_plain(conn: Connection, req: RequestReceived, status: int, text: bytes, note: str) -> None:
    conn.worker.responder.respond(conn, req, plain_response(status, text, note=note, head=req.method == b"HEAD"))
    conn.flush()


class _Lifespan:
    """The app's lifespan scope, run as a task for the worker's lifetime."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.error: BaseException | None = None
        scope = {"type": "lifespan", "asgi": _LIFESPAN_ASGI, "state": state}
        self.task = asyncio.get_running_loop().create_task(self._run(app, scope))

    async def _run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self.inbox.get, self._send)
        except Exception as e:
            self.error = e

    async def _send(self, message: Message) -> None:
        await self.outbox.put(message)

    async def exchange(self, message_type: str, timeout: float) -> Message | None:
        """Send one event and wait for the app's answer; None if the app ended or timed out."""
        self.inbox.put_nowait({"type": message_type})
        reply = asyncio.ensure_future(self.outbox.get())
        await asyncio.wait({reply, self.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if reply.done():
            return reply.result()
        reply.cancel()
        return None


class _AppRequest:
    """One request to a mounted app: its receive/send, and the StreamHandler of its stream."""

    __slots__ = (
        "announced",
        "app_announced",
        "body",
        "body_waiter",
        "coding",
        "collect",
        "complete",
        "conn",
        "core",
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
        "stream_id",
    )

    def __init__(self, mount: AsgiMount, conn: Connection, req: RequestReceived) -> None:
        self.mount = mount
        self.conn = conn
        self.core = conn.core
        self.req = req
        self.stream_id = req.stream_id
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
            self.core.acknowledge_received(self.stream_id, len(data))
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
        if self.queued > RECV_HIGH_WATER and self.core.http_version != "2" and not self.paused_reading:
            # HTTP/1.1 has no window to hold the client back: stop reading the socket instead.
            self.paused_reading = True
            self.conn.pause_reading(f"asgi:{self.stream_id}")

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
            await mount.app(mount.scope(self.conn, self.req), self.receive, self.send)
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
                self.core.acknowledge_received(self.stream_id, len(data))
                self.conn.flush_soon()
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
            waiter = self.body_waiter = self.conn.worker.loop.create_future()
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
            responder = self.conn.worker.responder
            announced = responder.announce(self.conn, self.req, resources)
            self.extra_headers += announced.headers
            self.announced = announced.summary
            self.conn.flush()

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
        self.early = self.conn.worker.responder.announce(self.conn, req, resources)
        self.conn.flush()

    def _route_key(self) -> tuple[bytes, bytes]:
        # HEAD shares GET's entry: it never has a body to learn from, but its hints are the same.
        return b"GET", self.req.target.partition(b"?")[0]

    def _may_announce(self) -> bool:
        return not (self.req.http_version == "2" and self.stream_id % 2 == 0)

    async def _body(self, data: bytes, more: bool) -> None:
        core = self.core
        sid = self.stream_id
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
                core.send_response(sid, self.status, headers, None, end_stream=False)
                if data and not self.head:
                    core.send_data(sid, data)
            else:
                core.send_response(sid, self.status, headers, None if self.head else data)
        elif not self.head or not more:  # HEAD: no body, but the response must still end
            core.send_data(sid, b"" if self.head else data, end_stream=not more)
        self.sent += 0 if self.head else len(data)
        if not more:
            self.conn.flush_soon()
            self._finish()
            return
        self.conn.flush_soon()
        while core.buffered(sid) > SEND_HIGH_WATER and not self.gone:
            waiter = self.drain_waiter = self.conn.worker.loop.create_future()
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
        headers = self.conn.worker.responder.common_headers(self.conn)
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
        if not self.core.push_enabled:
            return
        self.app_announced = True
        self.pushed += len(self.conn.worker.responder.push(self.conn, self.req, [(path, 5)]))
        self.conn.flush()

    def _early_hint(self, links: Any) -> None:
        if self.headers_sent or not self._may_announce():
            return
        headers = [(b"link", bytes(link)) for link in links]
        if headers:
            self.app_announced = True
            self.core.send_informational(self.stream_id, 103, headers)
            self.conn.flush()

    def _finish(self) -> None:
        self.complete = True
        _wake(self.body_waiter)  # a receive() waiting now gets http.disconnect
        self._release()
        if self.collect is not None:
            key = self._route_key()
            resources, _warnings = infer_page(bytes(self.collect), key[1].decode("latin-1"),
                                              self.mount.site_files)
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
            _reply_plain(self.conn, self.req, 500, b"internal server error\n", why)
        else:
            self.gone = True
            self.core.reset_stream(self.stream_id)
            self.conn.flush()
            self._log(self.status, why)
        self._release()

    def _body_too_large(self) -> None:
        self.body.clear()
        self.queued = 0
        if not self.headers_sent:
            self.complete = True
            self.gone = True  # the app reads http.disconnect and its sends go nowhere
            _reply_plain(self.conn, self.req, 413, b"request body too large\n", "body over --max-body-size")
        else:
            self.gone = True
            self.core.reset_stream(self.stream_id)
            self.conn.flush()
            self._log(self.status, "body over --max-body-size")
        _wake(self.body_waiter)
        _wake(self.drain_waiter)
        self._release()

    def _release(self) -> None:
        """The stream needs this handler no more: unregister, let the socket read again."""
        handlers = self.conn.handlers
        if handlers.get(self.stream_id) is self:
            del handlers[self.stream_id]
        self.body.clear()
        self.queued = 0
        self._resume_reading()

    def _resume_reading(self) -> None:
        if self.paused_reading and self.queued <= RECV_HIGH_WATER // 2:
            self.paused_reading = False
            self.conn.resume_reading(f"asgi:{self.stream_id}")

    def _log(self, status: int, note: str, announced: str = "") -> None:
        responder = self.conn.worker.responder
        if responder.access_log_on:
            sent = self.sent if self.encoder is None else b"%d %s" % (self.sent, self.encoder.coding)
            responder.log(self.conn, self.req, status, sent, announced, note)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
