"""The site's answer to a request, carried out on the exchange's protocol core: 103 Early Hints,
push promises and pushed responses, the final response, and the access-log line.  What to
announce is decided by site/push.py; this module carries the decision out.

``announce`` and ``push`` are shared by pages of the site and by mounted apps (which call them
when their response starts, and through the ASGI push/early-hint extensions).  A pushed path that
belongs to a mounted app is handed to ``mount_for``'s answer, which the router sets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pushserve.exchange import Exchange, Mount
from pushserve.http.response import Response
from pushserve.protocol.events import Headers, RequestReceived
from pushserve.site.content import SiteContent
from pushserve.site.manifest import PushResource
from pushserve.site.push import PushPolicy
from pushserve.site.static import Lookup

access_log = logging.getLogger("pushserve.access")

# Request headers of the page request that a browser would also send for its sub-resources,
# so pushed responses are chosen (encoding, language) as a direct request's would be.
_COPIED_TO_PUSH = (b"accept-encoding", b"accept-language", b"user-agent", b"cookie")


@dataclass(slots=True)
class Announced:
    """What announce() did, for the final response's headers and the access log."""

    headers: Headers  # Link and Set-Cookie headers for the final response
    summary: str
    early_hints: bool = False  # a 103 was queued


def _no_mount(target: bytes) -> Mount | None:
    return None


class Responder:
    def __init__(self, content: SiteContent, policy: PushPolicy, *, access_log_on: bool,
                 think: float = 0.0) -> None:
        self.content = content
        self.think = think  # --bench-think: seconds a page waits after its 103
        self.policy = policy
        self.access_log_on = access_log_on
        # The mounted app that answers a pushed path, if any (set by the router).
        self.mount_for: Callable[[bytes], Mount | None] = _no_mount

    def serve(self, ex: Exchange, req: RequestReceived) -> bool:
        """Answer a request for the site; False when the answer comes later (--bench-think).  A
        page's resources are announced before the page is produced (a 103 is flushed at once, so
        the client starts on them while we render); only a conditional request waits to see a
        200 first, so a 304 is not preceded by pushes."""
        lookup = self.content.static.lookup(req.target, req.headers)
        if lookup.pending:  # a page with template syntax, seconds after the start: see site/templates.py
            self.content.when_ready(lambda: self._serve_later(ex, req))
            return False
        announced = None
        early = req.method == b"GET" and not lookup.conditional
        page = lookup.page
        if early and page is not None:
            resources = self.policy.resources_for_page(page)
            if resources:
                announced = self.announce(ex, req, resources)
                if announced.early_hints:
                    # The 103 leaves now.  Pushes do not: their data would go out ahead of a
                    # page not yet queued, where urgency should put the page's own data first.
                    ex.flush()
        if early and page is not None and self.think:
            # A slow backend, for the bench: the page is produced later, without holding the loop.
            asyncio.get_running_loop().call_later(self.think, self._produce, ex, req, lookup, announced, early)
            return False
        self._produce(ex, req, lookup, announced, early)
        return True

    def _serve_later(self, ex: Exchange, req: RequestReceived) -> None:
        if not ex.closed:
            self.serve(ex, req)
            ex.flush()

    def _produce(self, ex: Exchange, req: RequestReceived, lookup: Lookup, announced: Announced | None,
                 early: bool) -> None:
        if ex.closed:
            return
        page = lookup.page
        started = time.perf_counter() if page is not None else 0.0
        response = self.content.answer(req, lookup)
        if page is not None:
            # Server-Timing (as h2o's): where a page's time went, for DevTools and Resource Timing.
            timing = b"render;dur=%.1f" % ((time.perf_counter() - started) * 1000)
            if self.think:
                timing = b"think;dur=%.0f, " % (self.think * 1000) + timing
            response.headers.append((b"server-timing", timing))
        if not early:
            resources = self.policy.resources_for(response)
            if resources:
                announced = self.announce(ex, req, resources)
        self.respond(ex, req, response, announced)
        if self.think:
            ex.flush()

    def respond(self, ex: Exchange, req: RequestReceived, response: Response,
                announced: Announced | None = None) -> None:
        """Send a complete response, with the headers of what was announced for it."""
        headers = ex.default_headers()
        headers += response.headers
        if announced is not None:
            headers += announced.headers
        ex.core.send_response(req.stream_id, response.status, headers,
                              None if req.method == b"HEAD" else response.body)
        if self.access_log_on:
            self.log(ex, req, response.status, _wire_size(response.headers),
                     announced.summary if announced else "", response.note)

    def announce(self, ex: Exchange, req: RequestReceived, resources: list[PushResource]) -> Announced:
        """Push what the client takes, hint (103) the rest; returns headers for the final response."""
        core = ex.core
        plan = self.policy.plan(req, resources, push_enabled=core.push_enabled, pushed=ex.pushed)
        if plan.early_hints:
            core.send_informational(req.stream_id, 103, list(plan.link_headers))
        promised = self.push(ex, req, [(p.path, p.urgency) for p in plan.pushes])
        pushed = [p for p in plan.pushes if p.path in promised]
        for planned in plan.pushes:
            if planned.path not in promised:
                plan.not_pushed(planned)
        headers = list(plan.link_headers)
        cookie = plan.cookie(pushed)
        if cookie is not None:
            headers.append((b"set-cookie", cookie))
        return Announced(headers, plan.summary(len(pushed)), plan.early_hints)

    def push(self, ex: Exchange, req: RequestReceived, paths: list[tuple[str, int]]) -> set[str]:
        """Promise and send each path (a file of the site, or a route of a mounted app) at most
        once per connection, until the client takes no more; returns the paths promised."""
        core = ex.core
        copied = [(k, v) for k, v in req.headers if k in _COPIED_TO_PUSH]
        promised: set[str] = set()
        for path, urgency in paths:
            if path in ex.pushed:
                continue
            target = path.encode()
            request_headers: Headers = [(b":method", b"GET"), (b":scheme", b"https"),
                                        (b":authority", req.authority), (b":path", target), *copied]
            promised_id = core.push_promise(req.stream_id, request_headers, urgency=urgency)
            if promised_id is None:
                break
            ex.pushed.add(path)
            promised.add(path)
            pushed_req = RequestReceived(promised_id, b"GET", target, req.authority, list(copied), "2", True)
            mount = self.mount_for(target)
            if mount is not None:
                mount.handle(ex, pushed_req)
                continue
            response = self.content.serve(pushed_req)
            headers = ex.default_headers()
            headers += response.headers
            core.send_response(promised_id, response.status, headers, response.body)
        return promised

    def log(self, ex: Exchange, req: RequestReceived, status: int, length: bytes | int,
            announced: str = "", note: str = "") -> None:
        took = (time.perf_counter() - ex.received_at) * 1000
        access_log.info(
            '%s %s "%s %s" %d %s%s%s %.1fms',
            ex.info.peer, "h2" if req.http_version == "2" else "h1", req.method.decode("latin-1"),
            req.target.decode("latin-1"), status,
            length if isinstance(length, int) else length.decode("latin-1"),
            f" {announced}" if announced else "", f" ({note})" if note else "", took,
        )


def _wire_size(headers: Headers) -> bytes:
    """For the access log: the body's bytes on the wire, and its content coding if it has one
    ("1295 zstd"); "-" for a length not known up front."""
    length, coding = b"-", b""
    for k, v in headers:
        if k == b"content-length":
            length = v
        elif k == b"content-encoding":
            coding = b" " + v
    return length + coding

