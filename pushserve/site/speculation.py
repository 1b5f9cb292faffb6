"""Speculation Rules inferred from a page's links: which next pages a browser may fetch
(``prefetch``) or even render (``prerender``) before the click, written as the JSON rule set
Chromium reads from a ``Speculation-Rules`` response header.  Pure: no files, no network.

What a page's links give (each link a same-site URL with its element's attributes):

- a link to another page of the site (an ``.html`` file served at that URL; ``/a/`` is
  ``a/index.html``) is a **prefetch** target: the browser fetches that document when the pointer
  rests on the link (``eagerness: "moderate"``: about 200 ms of hover, or pointerdown), and uses
  the response when the link is followed;
- it is a **prerender** target instead when the site opts in: the mode is ``prerender``, or the
  link says ``data-prerender``;
- never speculated: a link marked ``rel=nofollow`` or ``data-no-speculate`` (the URL is left out
  for every link naming it: the author said a fetch may do something), ``download`` links,
  mounted apps' paths (a GET to an app may change state), pushserve's own ``/_pushserve/``,
  URLs that are not pages (files, missing paths, a folder without its ``/``), the page itself,
  and a URL with a query unless the page it names does not vary by its query — pushserve then
  says so with ``No-Vary-Search: params`` on that page, and the rule carries the same
  expectation (``expects_no_vary_search``).

The rules are document rules whose ``href_matches`` names each target exactly (its path, and its
query or none), so the browser acts on these links and nothing else, whatever else the page
grows at run time.  One rule set per page, served by pushserve at ``rules_path(page)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, unquote

from pushserve.config import SpeculationMode

RESERVED = "/_pushserve/"  # pushserve's own namespace: never a page of the site
RULES_PREFIX = "/_pushserve/speculation/"
CONTENT_TYPE = b"application/speculationrules+json"
NO_VARY_SEARCH = b"params"  # the page is the same whatever its query
EAGERNESS = "moderate"  # Chromium's documented default for document links: hover or pointerdown
MAX_TARGETS = 500  # a page of thousands of links (a sitemap) speculates on its first 500

# Characters with a meaning in a URL pattern (URLPattern syntax): escaped to match themselves.
_PATTERN_SPECIAL = frozenset(":*(){}+?\\")
_ACTIONS = ("prefetch", "prerender")


@dataclass(frozen=True, slots=True)
class Target:
    """A URL the rule set names: path and query, percent-encoded as the link's URL is."""

    url: str
    action: Literal["prefetch", "prerender"]

    @property
    def query(self) -> bool:
        return "?" in self.url


@dataclass(frozen=True, slots=True)
class PageRules:
    """What one page's rule set says, and why each other link of the page is left out."""

    targets: tuple[Target, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (URL, why), each URL once, in page order

    @property
    def empty(self) -> bool:
        return not self.targets

    def of(self, action: str) -> list[str]:
        return [t.url for t in self.targets if t.action == action]

    def json(self) -> bytes:
        """The rule set: per action, one document rule for the plain URLs and one for the URLs
        with a query (which expect ``No-Vary-Search: params``).  The same rules give the same bytes."""
        out: dict[str, list[dict[str, object]]] = {}
        for action in ("prefetch", "prerender"):
            rules = []
            for query in (False, True):
                urls = [t.url for t in self.targets if t.action == action and t.query == query]
                if not urls:
                    continue
                rule: dict[str, object] = {"source": "document",
                                           "where": {"href_matches": [url_pattern(u) for u in urls]},
                                           "eagerness": EAGERNESS}
                if query:
                    rule["expects_no_vary_search"] = NO_VARY_SEARCH.decode()
                rules.append(rule)
            if rules:
                out[action] = rules
        return (json.dumps(out, indent=1, ensure_ascii=True) + "\n").encode()

    def version(self) -> str:
        """A short digest of the rule set, for its URL: a new one whenever the rules change."""
        import hashlib  # here, on first use: importing it costs a worker ~0.6 MiB (OpenSSL digests)

        return hashlib.sha256(self.json()).hexdigest()[:12]


def url_pattern(url: str) -> dict[str, str]:
    """A URL pattern (URLPatternInit) that matches ``url`` exactly — its path, its query or no
    query, any fragment — on the rule set's origin."""
    path, _, query = url.partition("?")
    return {"pathname": _escape(path), "search": _escape(query)}


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _PATTERN_SPECIAL else c for c in text)


@dataclass(slots=True)
class Site:
    """What inference asks of the site (each a callable, so tests give small tables)."""

    page_at: Callable[[str], str | None]  # URL path -> the page served there (site-relative), or None
    is_mounted: Callable[[str], bool]  # a URL path answered by a mounted app
    varies_by_query: Callable[[str], bool]  # a page whose content depends on its URL's query
    folder_page: Callable[[str], str | None] = field(default=lambda path: None)  # "/a" -> "/a/" when that is a page


def infer_rules(page: str, links: Iterable[tuple[str, Mapping[str, str]]], mode: SpeculationMode,
                site: Site) -> PageRules:
    """The rule set of ``page`` (site-relative) from its links, in document order: each a
    same-site URL (path and query, percent-encoded, no fragment) with its element's attributes
    (names lower case)."""
    if mode == "off":
        return PageRules()
    verdicts: dict[str, str] = {}  # URL -> "prefetch", "prerender", why it is left out, or "" (silently)
    marked: set[str] = set()
    for url, attrs in links:
        if url in marked:
            continue
        why = _marked(attrs)
        if why:
            marked.add(url)
            verdicts[url] = why
            continue
        known = verdicts.get(url)
        if known is None:
            reason = _not_speculated(url, page, site)
            if reason is not None:
                verdicts[url] = reason
                continue
        elif known not in _ACTIONS:
            continue
        prerender = mode == "prerender" or "data-prerender" in attrs or known == "prerender"
        verdicts[url] = "prerender" if prerender else "prefetch"
    targets: list[Target] = []
    skipped: list[tuple[str, str]] = []
    for url, verdict in verdicts.items():
        if verdict in _ACTIONS:
            if len(targets) < MAX_TARGETS:
                targets.append(Target(url, verdict))  # type: ignore[arg-type]
            else:
                skipped.append((url, f"more than {MAX_TARGETS} links speculated on this page"))
        elif verdict:
            skipped.append((url, verdict))
    return PageRules(tuple(targets), tuple(skipped))


def _marked(attrs: Mapping[str, str]) -> str:
    """Why the link's own markup keeps its URL out, or ""."""
    if "data-no-speculate" in attrs:
        return "marked data-no-speculate"
    if "nofollow" in attrs.get("rel", "").lower().split():
        return "marked rel=nofollow"
    if "download" in attrs:
        return "a download"
    return ""


def _not_speculated(url: str, page: str, site: Site) -> str | None:
    """Why a same-site URL is not speculated (it is not a page, or not a safe one); "" for the
    page itself (nothing to say about it); None when it may be."""
    path, _, query = url.partition("?")
    if path.startswith(RESERVED) or path == RESERVED.rstrip("/"):
        return "pushserve's own path"
    if site.is_mounted(path):
        return "a mounted app (a GET may change its state)"
    target = site.page_at(path)
    if target is None:
        folder = site.folder_page(path)
        return f"not a page (redirects to {folder})" if folder else "not a page of the site"
    if target == page and not query:
        return ""  # a link to this very page
    if query and site.varies_by_query(target):
        return "has a query, and the page reads it"
    return None


# -- where a page's rule set is served ---------------------------------------------------------

def rules_path(page: str) -> str:
    """The URL path of a page's rule set: ``features/index.html`` ->
    ``/_pushserve/speculation/features/index.html.json``."""
    return RULES_PREFIX + quote(page, safe="/") + ".json"


def rules_url(page: str, rules: PageRules) -> str:
    """``rules_path`` with the rules' version as a query, so a browser may keep each version for
    good and still sees a new one at once."""
    return f"{rules_path(page)}?v={rules.version()}"


def page_of_rules(path: str) -> str | None:
    """The page whose rule set ``path`` (a decoded or encoded URL path, no query) names, or None."""
    if not path.startswith(RULES_PREFIX) or not path.endswith(".json"):
        return None
    page = unquote(path[len(RULES_PREFIX):-len(".json")])
    return page or None


def header_value(url: str) -> bytes:
    """``Speculation-Rules: "/…"``: a list of strings (RFC 8941); pushserve's URLs hold no ``"``
    or ``\\`` (they are percent-encoded)."""
    return b'"' + url.encode("ascii") + b'"'
