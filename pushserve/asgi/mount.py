"""ASGI 3 mounts: apps that serve the requests under a path prefix, with lifespan events.

One ``AsgiMount`` per ``--mount``; each request to it becomes an ``AppRequest`` (request.py),
run as a task.  A page an app returns (200, text/html) is read once per route for the site
resources it links; later responses for that route announce them (push or 103 + Link) as site
pages do.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from typing import Any
from urllib.parse import unquote_to_bytes

from pushserve.asgi.load import import_apps
from pushserve.asgi.request import AppRequest, reply_plain
from pushserve.asgi.types import ASGIApp, Message, Scope
from pushserve.config import Config, ConfigError
from pushserve.exchange import Stream
from pushserve.site.manifest import PushResource
from pushserve.site.paths import SitePaths
from pushserve.site.responder import Responder

log = logging.getLogger("pushserve")

ROUTE_CACHE_MAX = 512  # routes whose resources are remembered (oldest forgotten first)
LIFESPAN_TIMEOUT = 10.0  # for an app to answer lifespan.startup / lifespan.shutdown
TASK_GRACE = 5.0  # app tasks still running at shutdown (background work) get this long

_HTTP_ASGI = {"version": "3.0", "spec_version": "2.4"}
_LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def load_mounts(config: Config, responder: Responder) -> list[AsgiMount]:
    """Import every mounted app; a broken one is a ConfigError naming the mount."""
    return [AsgiMount(m.prefix, app, config, responder, m.app)
            for m, app in zip(config.mounts, import_apps(config), strict=True)]


@functools.cache
def _cipher_ids() -> dict[str, int]:
    # The ASGI tls extension wants the IANA number; OpenSSL's id carries it in the low 16 bits.
    return {c["name"]: c["id"] & 0xFFFF for c in ssl.create_default_context().get_ciphers()}


@functools.lru_cache(maxsize=64)
def _tls_extension(version: str, cipher: str) -> dict[str, Any]:
    """The scope's "tls" extension; the same few (version, cipher) pairs serve every connection."""
    return {"server_cert": None, "client_cert_chain": [], "client_cert_name": None, "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(version), "cipher_suite": _cipher_ids().get(cipher)}


def _one_line(message: object) -> str:
    """Apps (Starlette) put a whole traceback in lifespan failure messages: keep the last line."""
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class AsgiMount:
    def __init__(self, prefix: str, app: ASGIApp, config: Config, responder: Responder, name: str = "") -> None:
        self.prefix = prefix.encode()
        self.root_path = prefix
        self.app = app
        self.name = name or repr(app)
        self.max_body = config.limits.max_body_size
        self.graceful = config.limits.graceful_timeout
        self.responder = responder
        self.site_paths = SitePaths(config.site)
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

    def drain(self) -> None:
        pass  # app responses end by themselves; the worker's drain waits for them

    # -- requests ---------------------------------------------------------------------------------

    def handle(self, stream: Stream) -> None:
        req = stream.request
        if not req.end_stream and self.max_body:
            for name, value in req.headers:
                if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                    reply_plain(self.responder, stream, 413, b"request body too large\n", "body over --max-body-size")
                    return
        handler = AppRequest(self, stream)
        stream.attach(handler)
        task = asyncio.get_running_loop().create_task(handler.run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def scope(self, stream: Stream) -> dict[str, Any]:
        req = stream.request
        raw_path, _, query = req.target.partition(b"?")
        path = (unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path).decode("utf-8", "replace")
        headers = req.headers  # the core made this list for this request alone
        if req.authority and not any(name == b"host" for name, _ in headers):
            headers = [(b"host", req.authority), *headers]  # HTTP/2's :authority
        info = stream.info
        extensions: dict[str, Any] = {"tls": _tls_extension(info.tls_version, info.cipher)}
        if stream.can_inform:  # neither on HTTP/1.0 nor on a pushed request
            extensions["http.response.early_hint"] = {}
        if stream.can_push:
            extensions["http.response.push"] = {}
        return {
            "type": "http",
            "asgi": _HTTP_ASGI,
            "http_version": stream.http_version,
            "method": req.method.decode("latin-1"),
            "scheme": "https",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": self.root_path,
            "headers": headers,
            "client": info.client,
            "server": info.server,
            "state": dict(self.state),
            "extensions": extensions,
        }

    def remember_route(self, key: tuple[bytes, bytes], resources: list[PushResource]) -> None:
        if len(self.routes) >= ROUTE_CACHE_MAX:
            del self.routes[next(iter(self.routes))]
        self.routes[key] = resources


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


