"""Each page's Speculation Rules, kept up to date in a worker and served: the headers a page goes
out with (``Speculation-Rules: "/_pushserve/speculation/…json?v=…"`` naming its rule set, and
``No-Vary-Search: params`` when its content does not depend on its query) and the rule set
itself, answered under ``/_pushserve/speculation/`` (``RuleSetMount``).

A rule set's URL is the page's (so any worker can answer it, inferring the page if it has not
yet) with the rules' version as a query: the browser may keep each version for good
(``immutable``) and still sees a new one as soon as the page's links change, since the page itself
is always revalidated.  A worker answers with the rules it has now, whatever version was asked
for: a page (or another worker) a moment older may have named the version before.  In dev mode
nothing is kept (``no-cache``), as for every other response there.

Rules are inferred from the links the push manifest read in the page (site/speculation.py), again
after a second (``revalidate_after``; at once in dev mode) since pages named by the links may have
appeared or gone."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from urllib.parse import quote

from pushserve.config import SpeculationMode
from pushserve.exchange import StatelessApp, Stream
from pushserve.http.response import Response, plain_response
from pushserve.protocol.events import Headers
from pushserve.site.manifest_store import PushManifest
from pushserve.site.paths import SitePaths, is_manifest_page, rel_path
from pushserve.site.speculation import (
    CONTENT_TYPE,
    NO_VARY_SEARCH,
    RULES_PREFIX,
    PageRules,
    Site,
    header_value,
    infer_rules,
    page_of_rules,
    rules_url,
)

CACHE_CONTROL = b"public, max-age=31536000, immutable"  # a rule set's URL changes with its rules


class RuleSets:
    """The rule sets of one site in one worker."""

    def __init__(self, mode: SpeculationMode, manifest: PushManifest, paths: SitePaths, *,
                 mounts: Sequence[str] = (), varies_by_query: Callable[[str], bool] = lambda page: False,
                 dev: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.mode = mode
        self.manifest = manifest
        self.paths = paths
        self.dev = dev
        self.revalidate_after = 0.0 if dev else 1.0
        self._clock = clock
        self._varies = varies_by_query
        self._mounts = tuple(m.rstrip("/") for m in mounts)
        self._site = Site(self.page_at, self.is_mounted, varies_by_query, self.folder_page)
        # page -> (when inferred, the links it was inferred from, the rules)
        self._kept: dict[str, tuple[float, object, PageRules]] = {}

    @property
    def on(self) -> bool:
        return self.mode != "off"

    # -- what inference asks of the site -------------------------------------------------------

    def page_at(self, url_path: str) -> str | None:
        """The page a GET of ``url_path`` serves (``/a/`` is ``a/index.html``), or None."""
        path = url_path + "index.html" if url_path.endswith("/") else url_path
        if self.paths.resolve(path) is None:
            return None
        rel = rel_path(path)
        return rel if is_manifest_page(rel) else None

    def folder_page(self, url_path: str) -> str | None:
        """``/a/`` when ``/a`` is a folder with a page (pushserve answers ``/a`` with a redirect)."""
        return url_path + "/" if self.page_at(url_path + "/") is not None else None

    def is_mounted(self, url_path: str) -> bool:
        return any(url_path == m or url_path.startswith(m + "/") for m in self._mounts)

    # -- rules -----------------------------------------------------------------------------------

    def rules(self, page: str) -> PageRules:
        """The page's rules as its current links give them."""
        if not self.on:
            return PageRules()
        now = self._clock()
        self.manifest.refresh(page, now)  # inferred now if it never was
        links = self.manifest.links_of(page)
        kept = self._kept.get(page)
        if kept is not None and kept[1] is links and now - kept[0] < self.revalidate_after:
            return kept[2]
        rules = infer_rules(page, links, self.mode, self._site)
        if len(self._kept) > 4096:
            self._kept.clear()
        self._kept[page] = (now, links, rules)
        return rules

    def page_headers(self, page: str) -> Headers:
        """What a page's response says about speculation: where its rules are, and whether it is
        the same page whatever its query."""
        if not self.on or not is_manifest_page(page):  # the 404 page is no page one navigates to
            return []
        headers: Headers = []
        rules = self.rules(page)
        if not rules.empty:
            headers.append((b"speculation-rules", header_value(rules_url(page, rules))))
        if not self._varies(page):
            headers.append((b"no-vary-search", NO_VARY_SEARCH))
        return headers

    def answer(self, method: bytes, target: bytes, headers: Headers) -> Response:
        """The response to a request for a rule set (``/_pushserve/speculation/PAGE.json``)."""
        head = method == b"HEAD"
        if method not in (b"GET", b"HEAD"):
            return plain_response(405, b"405 Method Not Allowed\n", extra=[(b"allow", b"GET, HEAD")], head=head)
        raw = target.partition(b"?")[0]
        page = page_of_rules(raw.decode("latin-1"))
        if (not self.on or page is None or not is_manifest_page(page)
                or self.paths.resolve("/" + quote(page)) is None):
            return plain_response(404, b"404 Not Found\n", head=head)
        rules = self.rules(page)
        etag = f'"{rules.version()}"'.encode()
        out: Headers = [(b"content-type", CONTENT_TYPE), (b"etag", etag),
                        (b"cache-control", b"no-cache" if self.dev else CACHE_CONTROL)]
        if any(k == b"if-none-match" and etag in v for k, v in headers):
            return Response(304, out, None, source=page)
        body = rules.json()
        out.append((b"content-length", b"%d" % len(body)))
        return Response(200, out, None if head else body, source=page)


class RuleSetMount(StatelessApp):
    """``/_pushserve/speculation/``: the rule sets, answered in every mode (dev mode's own routes
    are under the shorter ``/_pushserve``, so this one wins)."""

    prefix = RULES_PREFIX.rstrip("/").encode()

    def __init__(self, rule_sets: RuleSets, reply: Callable[[Stream, Response], None]) -> None:
        self.rule_sets = rule_sets
        self._reply = reply

    def handle(self, stream: Stream) -> None:
        req = stream.request
        self._reply(stream, self.rule_sets.answer(req.method, req.target, req.headers))
        if not req.end_stream:
            stream.decline_body()  # a rule set is only ever read
        stream.flush()
