"""The site's answer to a request, carried out on its stream: 103 Early Hints, push promises, the
final response, and the access-log line.  What to announce is decided by site/push.py; this
module carries the decision out.

``announce`` and ``push_paths`` are shared by pages of the site and by mounted apps (which call them
when their response starts, and through the ASGI push/early-hint extensions).  A pushed request
goes to the worker's app like any other (``Stream.push``), so the site or the mounted app that
owns the path answers it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from pushserve.exchange import Stream
from pushserve.http.response import Response
from pushserve.protocol.events import Headers
from pushserve.site.content import SiteContent
from pushserve.site.manifest import PushResource
from pushserve.site.push import PushPolicy
from pushserve.site.rule_sets import RuleSets
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


class Responder:
    def __init__(self, content: SiteContent, policy: PushPolicy, *, access_log_on: bool,
                 think: float = 0.0, rule_sets: RuleSets | None = None) -> None:
        self.content = content
        self.rule_sets = rule_sets  # Speculation Rules: what a page's response says of them
        self.static = content.static
        self.think = think  # --bench-think: seconds a page waits after its 103
        self.policy = policy
        self.access_log_on = access_log_on

    def handle(self, stream: Stream) -> None:
        """Answer a request for the site.  A file is answered by the lookup itself (the hot path:
        one call into static.py, one into the stream).  A page's resources are announced before
        the page is produced (a 103 is flushed at once, so the client starts on them while we
        render); only a conditional request waits to see a 200 first, so a 304 is not preceded
        by pushes."""
        req = stream.request
        self._answer(stream, self.static.lookup(req.method, req.target, req.headers))
        if not req.end_stream:
            stream.decline_body()  # the site reads no request body (405 for an upload, say)

    def _answer(self, stream: Stream, lookup: Lookup) -> None:
        response = lookup.response
        if response is not None:  # a file: the hot path
            stream.respond(response.status, response.headers, response.body)
            if self.access_log_on and not stream.promised:
                self.log(stream, response.status, _wire_size(response.headers), "", response.note)
        elif lookup.pending:  # a page with template syntax, seconds after the start: see site/templates.py
            self.content.when_ready(lambda: self._answer_later(stream))
        else:
            self._page(stream, lookup)

    def _answer_later(self, stream: Stream) -> None:
        if not stream.closed:
            req = stream.request
            self._answer(stream, self.static.lookup(req.method, req.target, req.headers))
            stream.flush()

    def _page(self, stream: Stream, lookup: Lookup) -> None:
        """A page (or an error, which may be a page too)."""
        req = stream.request
        page = lookup.page
        announced = None
        early = page is not None and req.method == b"GET" and not lookup.conditional and not stream.promised
        if early:
            assert page is not None
            resources = self.policy.resources_for_page(page)
            if resources:
                announced = self.announce(stream, resources)
                if announced.early_hints:
                    # The 103 leaves now.  Pushes do not: their data would go out ahead of a
                    # page not yet queued, where urgency should put the page's own data first.
                    stream.flush()
            if self.think:
                # A slow backend, for the bench: the page is produced later, without holding the loop.
                asyncio.get_running_loop().call_later(self.think, self._produce, stream, lookup, announced)
                return
        self._produce(stream, lookup, announced, early)

    def _produce(self, stream: Stream, lookup: Lookup, announced: Announced | None, early: bool = True) -> None:
        if stream.closed:
            return
        page = lookup.page
        started = time.perf_counter() if page is not None else 0.0
        response = self.static.answer(stream.request.method, lookup)
        if page is not None:
            # Server-Timing (as h2o's): where a page's time went, for DevTools and Resource Timing.
            timing = b"render;dur=%.1f" % ((time.perf_counter() - started) * 1000)
            if self.think:
                timing = b"think;dur=%.0f, " % (self.think * 1000) + timing
            response.headers.append((b"server-timing", timing))
            if self.rule_sets is not None and response.status in (200, 304):
                response.headers += self.rule_sets.page_headers(page)
        if not early and not stream.promised:
            resources = self.policy.resources_for(response)
            if resources:
                announced = self.announce(stream, resources)
        self.reply(stream, response, announced)
        if self.think:
            stream.flush()

    def reply(self, stream: Stream, response: Response, announced: Announced | None = None) -> None:
        """Send a complete response, with the headers of what was announced for it."""
        headers = response.headers
        if announced is not None:
            headers = headers + announced.headers
        stream.respond(response.status, headers, response.body)
        if self.access_log_on and not stream.promised:
            self.log(stream, response.status, _wire_size(response.headers),
                     announced.summary if announced else "", response.note)

    def announce(self, stream: Stream, resources: list[PushResource]) -> Announced:
        """Push what the client takes, hint (103) the rest; returns headers for the final response."""
        plan = self.policy.plan(stream, resources)
        if plan.early_hints:
            stream.inform(103, list(plan.link_headers))
        promised = self.push_paths(stream, [(p.path, p.urgency) for p in plan.pushes])
        pushed = [p for p in plan.pushes if p.path in promised]
        for planned in plan.pushes:
            if planned.path not in promised:
                plan.not_pushed(planned)
        headers = list(plan.link_headers)
        cookie = plan.cookie(pushed)
        if cookie is not None:
            headers.append((b"set-cookie", cookie))
        return Announced(headers, plan.summary(len(pushed)), plan.early_hints)

    def push_paths(self, stream: Stream, paths: list[tuple[str, int]]) -> set[str]:
        """Promise each path (a file of the site, or a route of a mounted app) at most once per
        connection, until the client takes no more; returns the paths promised.  Each promised
        request is answered by whoever answers its path (``Stream.push``)."""
        copied = [(k, v) for k, v in stream.request.headers if k in _COPIED_TO_PUSH]
        promised: set[str] = set()
        memo = stream.pushed
        for path, urgency in paths:
            if path in memo:
                continue
            if stream.push(path.encode(), copied, urgency=urgency) is None:
                break
            memo.add(path)
            promised.add(path)
        return promised

    def log(self, stream: Stream, status: int, length: bytes | int, announced: str = "", note: str = "") -> None:
        req = stream.request
        took = (time.perf_counter() - stream.received_at) * 1000
        access_log.info(
            '%s %s "%s %s" %d %s%s%s%s %.1fms',
            stream.info.peer, stream.protocol, req.method.decode("latin-1"),
            req.target.decode("latin-1"), status,
            length if isinstance(length, int) else length.decode("latin-1"),
            f" {announced}" if announced else "", f" ({note})" if note else "", _purpose(req.headers), took,
        )


def _purpose(headers: Headers) -> str:
    """`` [prefetch]`` / `` [prefetch;prerender]`` for a speculative request (``Sec-Purpose``, sent
    by a browser acting on Speculation Rules), else ""."""
    for name, value in headers:
        if name == b"sec-purpose":
            return f" [{value.decode('latin-1')}]"
    return ""


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
