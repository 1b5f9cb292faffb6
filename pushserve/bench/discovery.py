"""Find the sub-resources of a page the way a browser would, from HTML as it arrives and from the
CSS and JavaScript modules it pulls in.

What counts (and what a browser would fetch during the initial load):

- HTML: ``<link rel=stylesheet>`` (a ``media=print`` sheet is fetched too, but it does not block
  rendering, so it is not critical), ``<link rel=preload as=...>``, ``<link rel=modulepreload>``,
  ``<script src>``, ``<img src>`` (not ``loading=lazy``: below the fold it waits for scrolling),
  inline ``<style>`` and inline module scripts.
- CSS: ``@import`` and every ``url()``; inside ``@font-face`` only the first ``src`` URL, because a
  browser stops at the first format it supports and the first is the preferred one.
- JS modules: static ``import``/``export ... from``; dynamic ``import()`` is left out (it runs
  later, on demand).  Classic scripts are not scanned.
- Icons (``rel=icon``) are left out: browsers fetch them after the load, off the critical path.

Only same-origin URLs are kept: the loader talks to one origin.  Critical = stylesheets that
apply to the screen, scripts and fonts: what must arrive before the page renders as intended."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

KINDS = ("html", "css", "js", "font", "image", "other")
_PRELOAD_AS = {"style": "css", "script": "js", "font": "font", "image": "image"}


@dataclass(frozen=True)
class Found:
    """A sub-resource: absolute ``url``, ``kind`` (one of KINDS), whether it is ``critical``, and
    the URL of the document that referenced it."""

    url: str
    kind: str
    critical: bool
    initiator: str


def kind_of(url: str) -> str:
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


def _resolve(base: str, ref: str) -> str | None:
    """Absolute same-origin URL without fragment, or None for data:, other origins, empty refs."""
    ref = ref.strip()
    if not ref or ref.startswith(("data:", "#", "javascript:", "mailto:", "blob:")):
        return None
    url = urldefrag(urljoin(base, ref)).url
    b, u = urlsplit(base), urlsplit(url)
    if (u.scheme, u.netloc) != (b.scheme, b.netloc):
        return None
    return url


class HtmlScanner(HTMLParser):
    """Feed it HTML text in pieces as it arrives; ``take()`` returns what was found since the last
    call, each URL once.  ``<base href>`` is honoured for the rest of the document."""

    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = url
        self.url = url
        self._seen: set[str] = set()
        self._new: list[Found] = []
        self._inline: str | None = None  # "css" or "js" while inside <style>/<script type=module>
        self._inline_text: list[str] = []

    def take(self) -> list[Found]:
        new, self._new = self._new, []
        return new

    def _add(self, ref: str | None, kind: str, critical: bool | None = None) -> None:
        if ref is None:
            return
        url = _resolve(self.base, ref)
        if url is None or url in self._seen:
            return
        self._seen.add(url)
        self._new.append(Found(url, kind, is_critical(kind) if critical is None else critical, self.url))

    def _extend(self, found: Iterable[Found]) -> None:
        for f in found:
            if f.url not in self._seen:
                self._seen.add(f.url)
                self._new.append(f)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        rel = set(a.get("rel", "").lower().split())
        if tag == "base" and "href" in a:
            self.base = urljoin(self.base, a["href"])
        elif tag == "link" and "href" in a:
            if "stylesheet" in rel:
                media = a.get("media", "all").lower()
                self._add(a["href"], "css", critical=media in ("", "all", "screen"))
            elif "modulepreload" in rel:
                self._add(a["href"], "js")
            elif "preload" in rel:
                self._add(a["href"], _PRELOAD_AS.get(a.get("as", "").lower(), "other"))
        elif tag == "script":
            if "src" in a:
                self._add(a["src"], "js")
            elif a.get("type", "").lower() == "module":
                self._inline, self._inline_text = "js", []
        elif tag == "style":
            self._inline, self._inline_text = "css", []
        elif tag == "img" and a.get("loading", "").lower() != "lazy" and "src" in a:
            self._add(a["src"], "image")

    def handle_data(self, data: str) -> None:
        if self._inline is not None:
            self._inline_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._inline is not None and tag in ("style", "script"):
            text = "".join(self._inline_text)
            scan = css_refs if self._inline == "css" else js_imports
            self._extend(scan(text, self.base))
            self._inline = None


_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?(["']?)([^"')\s;]+)\1""", re.I)
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')]+?)\1\s*\)""", re.I)
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.I)


def css_refs(text: str, base: str) -> list[Found]:
    """Sub-resources of a stylesheet at ``base``: imports first (they block), then the rest."""
    text = _CSS_COMMENT.sub("", text)
    found: list[Found] = []
    for m in _CSS_IMPORT.finditer(text):
        url = _resolve(base, m.group(2))
        if url:
            found.append(Found(url, "css", True, base))
    rest = _CSS_IMPORT.sub("", text)
    for block in _FONT_FACE.findall(rest):
        first = _CSS_URL.search(block)
        url = _resolve(base, first.group(2)) if first else None
        if url:
            found.append(Found(url, "font", True, base))
    for m in _CSS_URL.finditer(_FONT_FACE.sub("", rest)):
        url = _resolve(base, m.group(2))
        if url:
            kind = kind_of(url)
            found.append(Found(url, kind, is_critical(kind) and kind != "js", base))
    return _unique(found)


_JS_COMMENT = re.compile(r"/\*.*?\*/|(?<![:\"'])//[^\n]*", re.S)
_JS_IMPORT = re.compile(
    r"""(?:^|[;\s}])(?:import\s*(?:[\w*{}\s,$]+\s*from\s*)?|export\s*[\w*{}\s,$]+\s*from\s*)(["'])([^"'\n]+)\1""",
    re.M)


def js_imports(text: str, base: str) -> list[Found]:
    """Static imports of an ES module at ``base`` (relative or absolute specifiers only)."""
    text = _JS_COMMENT.sub("", text)
    found = []
    for m in _JS_IMPORT.finditer(text):
        spec = m.group(2)
        if not spec.startswith(("./", "../", "/")):
            continue  # a bare specifier needs an import map; not a URL
        url = _resolve(base, spec)
        if url:
            found.append(Found(url, "js", True, base))
    return _unique(found)


def _unique(found: list[Found]) -> list[Found]:
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
    scanner = HtmlScanner(page_url)
    scanner.feed(html)
    scanner.close()
    queue = scanner.take()
    seen = {f.url for f in queue}
    out: list[Found] = []
    while queue:
        f = queue.pop(0)
        out.append(f)
        if f.kind in ("css", "js"):
            text = fetch(f.url)
            for sub in scan_body(f.kind, text or "", f.url):
                if sub.url not in seen:
                    seen.add(sub.url)
                    queue.append(sub)
    return out
