"""The sub-resources of a page, found the way a browser finds them — by pushserve's own scanner
(``pushserve.scan``), the one the push manifest is inferred with, so the bench expects exactly
what the server announces: HTML as it arrives, CSS and JavaScript modules when they complete.

What counts, what is critical (must arrive before the page renders as intended) and what is left
out (icons, lazy images, ``<noscript>`` and ``disabled`` stylesheets, EOT fonts…) is the
scanner's rule, see ``pushserve/scan/markup.py`` and ``css.py``.  The loader talks to one
origin, so only same-origin URLs are kept; each URL once."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pushserve import scan
from pushserve.scan.urls import same_origin

KINDS = ("html", "css", "js", "font", "image", "other")
# The scanner's request destinations, in the bench's words.
_KIND_OF_TYPE = {"style": "css", "script": "js", "font": "font", "image": "image", "document": "html"}


@dataclass(frozen=True)
class Found:
    """A sub-resource: absolute ``url``, ``kind`` (one of KINDS), whether it is ``critical``, and
    the URL of the document that referenced it."""

    url: str
    kind: str
    critical: bool
    initiator: str


def kind_of(url: str) -> str:
    """The kind of a URL known only by its name (a hinted or pushed one)."""
    path = urlsplit(url).path.lower()
    for ext, kind in ((".css", "css"), (".js", "js"), (".mjs", "js"), (".woff2", "font"),
                      (".woff", "font"), (".ttf", "font"), (".otf", "font"), (".html", "html")):
        if path.endswith(ext):
            return kind
    if path.endswith("/"):
        return "html"
    if re.search(r"\.(png|jpe?g|gif|svg|webp|avif|ico)$", path):
        return "image"
    return "other"


def is_critical(kind: str) -> bool:
    return kind in ("css", "js", "font")


def _bench_found(found: scan.Found) -> Found:
    kind = _KIND_OF_TYPE.get(found.type, "other")
    return Found(found.url, kind, found.critical, found.referrer)


class HtmlScanner:
    """Feed it HTML text in pieces as it arrives; ``take()`` returns what was found since the last
    call, each URL once.  It keeps the page's import map for the modules the page loads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._page = scan.PageScanner(url)
        self._seen: set[str] = set()

    def feed(self, text: str) -> None:
        self._page.feed(text)

    def close(self) -> None:
        self._page.close()

    def take(self) -> list[Found]:
        return self._keep(self._page.take())

    def scan_body(self, kind: str, text: str, url: str) -> list[Found]:
        """What a stylesheet or module of this page references (modules through its import map)."""
        if kind == "css":
            return self._keep(scan.scan_stylesheet(text, url))
        if kind == "js":
            return self._keep(scan.scan_module(text, url, self._page.import_map))
        return []

    def _keep(self, found: list[scan.Found]) -> list[Found]:
        out = []
        for f in found:
            if f.url not in self._seen and same_origin(f.url, self.url):
                self._seen.add(f.url)
                out.append(_bench_found(f))
        return out


def css_refs(text: str, base: str) -> list[Found]:
    """Sub-resources of a stylesheet at ``base``."""
    return [_bench_found(f) for f in _unique(scan.scan_stylesheet(text, base)) if same_origin(f.url, base)]


def js_imports(text: str, base: str) -> list[Found]:
    """Static imports of an ES module at ``base`` (bare specifiers need the page's import map)."""
    return [_bench_found(f) for f in _unique(scan.scan_module(text, base)) if same_origin(f.url, base)]


def _unique(found: list[scan.Found]) -> list[scan.Found]:
    seen: set[str] = set()
    out = []
    for f in found:
        if f.url not in seen:
            seen.add(f.url)
            out.append(f)
    return out


def scan_body(kind: str, text: str, url: str, module: bool = True) -> list[Found]:
    """What a finished CSS file or JS module references (HTML is scanned while it streams)."""
    if kind == "css":
        return css_refs(text, url)
    if kind == "js" and module:
        return js_imports(text, url)
    return []


def crawl(page_url: str, html: str, fetch: Callable[[str], str | None]) -> list[Found]:
    """Everything the page needs, transitively, without a network: ``fetch(url)`` returns the
    text of a CSS/JS resource (or None).  Order: as a browser would discover them."""
    return [_bench_found(f) for f in scan.crawl(page_url, html, fetch) if same_origin(f.url, page_url)]
