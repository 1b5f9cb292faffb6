"""Push policy: for one page response on one connection, what to push, what to hint, what to skip.

Pure decisions, no I/O: site/responder.py carries a Plan out on the protocol core.

- ``auto``: push to HTTP/2 clients that allow it; hint (103 + Link) the rest.
- ``hints``: 103 + Link only.  ``off``: nothing, the baseline for comparisons.

A 103 is sent where a browser acts on it (Chromium's docs/early-hints.md): only the first 103 of a
top-level navigation over HTTP/2 or later counts, so it goes to requests with ``Sec-Fetch-Dest:
document`` (``Sec-Fetch-Mode: navigate`` is true for iframes too) or with no ``Sec-Fetch-*`` at all
(tools like nghttp and curl), on streams that may carry a 1xx (``can_inform``); where unasked-for
1xx are mishandled (``inform_opt_in``: HTTP/1.1's old clients and proxies) only when the site asked
for it (``--hints-http1``).  The Link headers on the 200 stay either way.

A page fetched ahead of a click (``Sec-Purpose: prefetch``, Speculation Rules) gets its Link
headers on the 200 and nothing else: Chromium ignores a 103 on a prefetch and fetches nothing the
prefetched page needs until it is shown (at the click, from those Link headers), so neither a 103
nor a push would be used, and the cookie must not learn of resources the browser may never fetch
(a prefetch is often not followed).  A prerender (``prefetch;prerender``) loads the page whole,
like a visit.

Cache awareness (after h2o's CASPer): a cookie holds short digests of (path, ETag) for what this
browser was already pushed or hinted, so a returning visitor is not sent it again; a changed file
has a new ETag, so it is announced again.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from pushserve.config import PushMode
from pushserve.http.response import Response
from pushserve.protocol.events import Headers, RequestReceived
from pushserve.site.manifest import PRECONNECT, PushResource
from pushserve.site.manifest_store import PushManifest
from pushserve.site.static import StaticSite

COOKIE_NAME = b"pushserve-cache"
_DIGEST_BYTES = 4
_COOKIE_MAX_ENTRIES = 64  # 64 x 4 bytes → a cookie of about 350 characters
_COOKIE_MAX_AGE = 7 * 24 * 3600

# RFC 9218 urgency (lower first; requested streams are 3): the page's own DATA goes first, then
# styles and fonts, then scripts, then the rest.
_URGENCY = {"style": 4, "font": 4, "script": 5}
_OTHER_URGENCY = 6
_HIGH_URGENCY = 4  # <img fetchpriority=high>, the page's LCP image: with the styles


@dataclass(frozen=True, slots=True)
class Planned:
    path: str
    urgency: int
    link: bytes  # its Link value, should the client take no more pushes
    digest: bytes  # for the push cookie, once it was really pushed


@dataclass(slots=True)
class Plan:
    pushes: list[Planned] = field(default_factory=list)
    link_headers: Headers = field(default_factory=list)
    early_hints: bool = False
    hinted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    use_cookie: bool = False
    known: list[bytes] = field(default_factory=list)  # digests the request's cookie carried
    hinted_digests: list[bytes] = field(default_factory=list)

    def not_pushed(self, planned: Planned) -> None:
        """The client refused a planned push (its stream limit): announce it with Link instead."""
        self.link_headers.append((b"link", planned.link))
        self.hinted += 1
        self.hinted_digests.append(planned.digest)

    def cookie(self, pushed: list[Planned]) -> bytes | None:
        """Set-Cookie value remembering what this response really pushed or hinted, or None."""
        sent = self.hinted_digests + [p.digest for p in pushed]
        if not self.use_cookie or not sent:
            return None
        return cookie_header([d for d in self.known if d not in sent] + sent)

    def summary(self, pushed: int) -> str:
        parts = [f"push={pushed}", f"hint={self.hinted}"]
        if self.skipped:
            parts.append("skip=" + ",".join(f"{why}:{n}" for why, n in sorted(self.skipped.items())))
        return " ".join(parts)


class Client(Protocol):
    """What the policy asks of the stream a page goes out on (an exchange.Stream is one)."""

    @property
    def request(self) -> RequestReceived: ...

    @property
    def can_push(self) -> bool: ...

    @property
    def can_inform(self) -> bool: ...

    @property
    def inform_opt_in(self) -> bool: ...

    @property
    def pushed(self) -> set[str]: ...


@dataclass(frozen=True, slots=True)
class Visit:
    """A client planned for without a stream (the dev overview, export): by default a first
    visit from a browser on a multiplexed protocol, which refuses push and takes 103s."""

    request: RequestReceived
    can_push: bool = False
    can_inform: bool = True
    inform_opt_in: bool = False
    pushed: set[str] = field(default_factory=set)


def link_value(res: PushResource) -> bytes:
    """The Link value announcing a resource, in the fetch mode its element will use (else the
    browser does not reuse the hinted response and fetches it again).  A module script is a
    ``modulepreload``: always CORS mode, and the browser may parse it early.  Another origin the
    page loads from is a ``preconnect`` (``crossorigin`` for the CORS-mode connection pool)."""
    if res.type == PRECONNECT:
        return f"<{res.path}>; rel=preconnect{'; crossorigin' if res.crossorigin else ''}".encode()
    if res.module:
        value = f"<{res.url}>; rel=modulepreload"
        if res.credentials:
            value += "; crossorigin=use-credentials"
    else:
        value = f"<{res.url}>; rel=preload; as={res.type}"
        if res.credentials:
            value += "; crossorigin=use-credentials"
        elif res.crossorigin:
            value += "; crossorigin"
    if res.integrity:
        value += f'; integrity="{res.integrity}"'
    if res.priority:
        value += f"; fetchpriority={res.priority}"
    return value.encode()


def prefetch_only(headers: Headers) -> bool:
    """A page fetched ahead of a click to keep until it is shown, not rendered: ``Sec-Purpose:
    prefetch`` (a prerender says ``prefetch;prerender``)."""
    for name, value in headers:
        if name == b"sec-purpose":
            return value.strip() == b"prefetch"
    return False


def _digest(path: str, etag: bytes) -> bytes:
    import hashlib  # here, on first use: importing it costs a worker ~0.6 MiB (OpenSSL digests)

    return hashlib.blake2s(path.encode() + b"\0" + etag, digest_size=_DIGEST_BYTES).digest()


def read_cookie_digests(headers: Headers) -> list[bytes]:
    """Digests from the push cookie, oldest first; an unreadable cookie counts as empty."""
    prefix = COOKIE_NAME + b"="
    for name, value in headers:
        if name != b"cookie":
            continue
        for part in value.split(b";"):
            part = part.strip()
            if part.startswith(prefix):
                raw = part[len(prefix):]
                try:
                    blob = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
                except ValueError:
                    return []
                return [blob[i:i + _DIGEST_BYTES] for i in range(0, len(blob) - _DIGEST_BYTES + 1, _DIGEST_BYTES)]
    return []


def cookie_header(digests: list[bytes]) -> bytes:
    blob = b"".join(digests[-_COOKIE_MAX_ENTRIES:])
    value = base64.urlsafe_b64encode(blob).rstrip(b"=")
    return (COOKIE_NAME + b"=" + value + b"; Path=/; Max-Age=" + str(_COOKIE_MAX_AGE).encode()
            + b"; Secure; HttpOnly; SameSite=Lax")


class PushPolicy:
    def __init__(self, mode: PushMode, manifest: PushManifest | None, static: StaticSite, *,
                 budget: int, use_cookie: bool, hints_http1: bool = False) -> None:
        self.mode = mode
        self.hints_http1 = hints_http1
        self.manifest = manifest
        self.static = static
        self.budget = budget
        self.use_cookie = use_cookie

    def resources_for(self, response: Response) -> list[PushResource]:
        """The manifest's resources for a page response of the site (none for anything else)."""
        if response.status != 200 or response.source is None:
            return []
        return self.resources_for_page(response.source)

    def resources_for_page(self, page: str) -> list[PushResource]:
        if self.mode == "off" or self.manifest is None:
            return []
        self.manifest.refresh(page, time.monotonic())
        return self.manifest.resources_for(page)

    def plan(self, client: Client, resources: list[PushResource]) -> Plan:
        req = client.request
        if self.mode == "off" or not resources or req.method not in (b"GET", b"HEAD"):
            return Plan()
        prefetch = prefetch_only(req.headers)
        may_push = self.mode == "auto" and client.can_push and req.method == b"GET" and not prefetch
        pushed = client.pushed
        # HEAD fetches no page, so it teaches the cookie nothing; nor does a prefetch (see above).
        use_cookie = self.use_cookie and req.method == b"GET"
        known = read_cookie_digests(req.headers) if use_cookie else []
        known_set = set(known)
        plan = Plan(use_cookie=use_cookie and not prefetch, known=known)
        spent = 0
        for res in resources:
            if res.type == PRECONNECT:  # not a file: a hint in the 103 and on the 200, never pushed
                plan.link_headers.append((b"link", link_value(res)))
                plan.hinted += 1
                continue
            entry = self.static.entry(res.path)
            if entry is None:
                plan.skipped["missing"] += 1
                continue
            digest = _digest(res.url, entry.etag)
            if digest in known_set:
                plan.skipped["cached"] += 1
                continue
            link = link_value(res)
            if may_push:
                if res.url in pushed:
                    plan.skipped["already-sent"] += 1
                    continue
                if spent + entry.size <= self.budget:
                    spent += entry.size
                    # Pushed under the URL the page will ask for, query included, or it is not matched.
                    urgency = _HIGH_URGENCY if res.priority == "high" else _URGENCY.get(res.type, _OTHER_URGENCY)
                    plan.pushes.append(Planned(res.url, urgency, link, digest))
                    continue
                plan.skipped["over-budget"] += 1
            plan.link_headers.append((b"link", link))
            plan.hinted += 1
            plan.hinted_digests.append(digest)
        # A 103 only where the client cannot take pushes: a pushing connection gets Link headers
        # on the 200 for what did not fit the budget, nothing earlier.
        plan.early_hints = (bool(plan.link_headers) and not may_push and not prefetch
                            and self.early_hints_help(client))
        return plan

    def early_hints_help(self, client: Client) -> bool:
        """Whether a 103 for this request can be acted on (see the module's docstring)."""
        if not client.can_inform or (client.inform_opt_in and not self.hints_http1):
            return False
        fetch_headers = False
        for name, value in client.request.headers:
            if name.startswith(b"sec-fetch-"):
                if name == b"sec-fetch-dest":
                    return value == b"document"
                fetch_headers = True
        return not fetch_headers
