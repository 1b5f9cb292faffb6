"""An HTML page read as a browser's preload scanner reads it, as it arrives: the fetches its
elements cause, in document order, its navigation links, its import map and the elements it
marks ``data-push``.

What a current browser fetches while it loads a page, and so what is found:

- ``<link rel=stylesheet>`` — not ``alternate`` ones, nor ``disabled`` ones (alternate themes);
  a print-only ``media`` is fetched but is not critical;
- ``<link rel=preload as=…>`` and ``<link rel=modulepreload>``;
- ``<script src>``, classic or module; not ``nomodule`` (modern browsers skip those), not data
  blocks (``type=application/json``…); ``<script type=importmap>`` is read as the page's import
  map, which module imports are resolved through;
- ``<img src>`` but ``loading=lazy`` ones (they wait for scrolling);
- inline ``<style>`` (its imports, fonts and urls) and inline module scripts (their imports);
- nothing inside ``<noscript>`` (a browser running scripts reads it as text) or ``<template>``
  (inert until a script clones it).

Icons, prefetches and preconnects are left out: they are not part of the load.
``<base href>`` moves the references after it, as in a browser.  html.parser never raises on bad
markup: it reports what it can make sense of.
"""

from __future__ import annotations

from html.parser import HTMLParser

from pushserve.scan.css import media_of, scan_css
from pushserve.scan.found import (
    CRITICAL_TYPES,
    CSS_URL,
    FONT,
    IMG,
    IMPORT,
    MODULE_IMPORT,
    MODULEPRELOAD,
    PRELOAD,
    SCRIPT,
    STYLESHEET,
    Found,
    Link,
    print_only,
)
from pushserve.scan.importmap import ImportMap, resolve_specifier
from pushserve.scan.modules import module_imports
from pushserve.scan.urls import resolve

_CLASSIC_SCRIPT_TYPES = frozenset({
    "", "text/javascript", "application/javascript", "application/ecmascript", "text/ecmascript",
})
# Where nothing is fetched while the page loads.
_INERT = frozenset({"noscript", "template"})


class PageScanner(HTMLParser):
    """Feed it a page's text in pieces, as it arrives; ``take()`` returns what was found since
    its last call.  Stylesheets and modules the page loads are the caller's to fetch and read
    (``scan_stylesheet``, ``scan_module``): a scanner has no network and no files."""

    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.url = url
        self.base = url
        self._base_set = False
        self.import_map: ImportMap | None = None
        self.links: list[Link] = []
        # ".hero", "#banner": elements marked data-push that are not <img>: their CSS
        # background image is the page's own word on what to announce.
        self.marked: list[str] = []
        self._new: list[Found] = []
        self._inert = 0  # depth inside <noscript>/<template>
        self._in: str | None = None  # "style", "module" or "importmap" while inside one
        self._buffer: list[str] = []

    def take(self) -> list[Found]:
        new, self._new = self._new, []
        return new

    def found_all(self) -> list[Found]:
        """Close the document and return everything not taken yet."""
        self.close()
        return self.take()

    # -- elements --------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INERT:
            self._inert += 1
            return
        if self._inert:
            return
        a = {name: (value or "") for name, value in attrs}
        if tag == "base":
            if not self._base_set and "href" in a:
                self._base_set = True
                self.base = resolve(a["href"], self.url) or self.base
        elif tag == "link":
            self._link(a)
        elif tag == "script":
            self._script(a)
        elif tag == "img":
            if a.get("src") and a.get("loading", "").strip().lower() != "lazy":
                marked = "data-push" in a or _high(a)
                self._add(a["src"], "image", IMG, a, marked=marked)
        elif tag == "style":
            self._in, self._buffer = "style", []
        elif tag in ("a", "area") and "href" in a:
            url = resolve(a["href"], self.base)
            if url is not None:
                self.links.append(Link(url, tuple(a.items())))
        if tag != "img" and "data-push" in a:
            self.marked += [f".{c}" for c in a.get("class", "").split()]
            if a.get("id"):
                self.marked.append(f"#{a['id']}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INERT:
            return  # <noscript/>: nothing inside
        if tag in ("style", "script"):
            if tag == "script" and not self._inert:
                self._script({name: (value or "") for name, value in attrs})
            self._in = None
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _INERT:
            self._inert = max(0, self._inert - 1)
            return
        if self._in is None or tag not in ("style", "script"):
            return
        text, kind = "".join(self._buffer), self._in
        self._in, self._buffer = None, []
        if kind == "style" and tag == "style":
            self._new += scan_stylesheet(text, self.base, critical=True, inline_in=self.url)
        elif kind == "module" and tag == "script":
            self._new += scan_module(text, self.base, self.import_map, inline_in=self.url)
        elif kind == "importmap" and tag == "script":
            if self.import_map is None:
                self.import_map = ImportMap()
            self.import_map.add(text, self.base)

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._buffer.append(data)

    # -- what elements name ---------------------------------------------------------------

    def _add(self, ref: str, type_: str, via: str, a: dict[str, str], *, critical: bool = False,
             module: bool = False, cors: bool = False, marked: bool = False, media: str = "") -> None:
        url = resolve(ref, self.base)
        if url is None:
            return
        crossorigin = a.get("crossorigin")
        self._new.append(Found(
            url, type_, via, self.url, critical=critical, module=module,
            cors=cors or module or crossorigin is not None or type_ in ("font", "fetch"),
            credentials=(crossorigin or "").strip().lower() == "use-credentials",
            integrity=a.get("integrity", "").strip(), priority="high" if _high(a) else "",
            marked=marked, nopush="nopush" in a, media=media))

    def _link(self, a: dict[str, str]) -> None:
        href = a.get("href", "")
        rel = a.get("rel", "").lower().split()
        if not href:
            return
        if "stylesheet" in rel:
            if "alternate" not in rel and "disabled" not in a:
                media = a.get("media", "")
                self._add(href, "style", STYLESHEET, a, critical=not print_only(media), media=media)
        elif "modulepreload" in rel:
            self._add(href, "script", MODULEPRELOAD, a, critical=True, module=True)
        elif "preload" in rel:
            kind = a.get("as", "").strip().lower()
            self._add(href, kind, PRELOAD, a, critical=kind in CRITICAL_TYPES)

    def _script(self, a: dict[str, str]) -> None:
        kind = a.get("type", "").strip().lower()
        if kind == "importmap":
            self._in, self._buffer = "importmap", []
        elif kind == "module":
            if a.get("src"):
                self._add(a["src"], "script", SCRIPT, a, critical=True, module=True)
            else:
                self._in, self._buffer = "module", []
        elif kind in _CLASSIC_SCRIPT_TYPES and "nomodule" not in a and a.get("src"):
            self._add(a["src"], "script", SCRIPT, a, critical=True)
        # else: a data block, or a legacy bundle modern browsers skip


def _high(a: dict[str, str]) -> bool:
    return a.get("fetchpriority", "").strip().lower() == "high"


def scan_stylesheet(text: str, url: str, *, critical: bool = True, inline_in: str = "") -> list[Found]:
    """What a stylesheet at ``url`` (or an inline ``<style>`` of the page at ``inline_in``, whose
    references resolve against the page's base ``url``) makes the browser fetch.  ``critical``:
    whether the stylesheet itself is (a print sheet's imports and fonts are not)."""
    out: list[Found] = []
    referrer = inline_in or url
    for ref in scan_css(text):
        target = resolve(ref.ref, url)
        if target is None:
            continue
        if ref.kind == "import":
            media = media_of(ref.media)
            out.append(Found(target, "style", IMPORT, referrer, critical=critical and not print_only(media),
                             media=ref.media))
        elif ref.kind == "font":
            out.append(Found(target, "font", FONT, referrer, critical=critical, cors=True))
        else:
            out.append(Found(target, "image", CSS_URL, referrer, selector=ref.selector, property=ref.property))
    return out


def scan_module(source: str, url: str, import_map: ImportMap | None = None, *, inline_in: str = "") -> list[Found]:
    """The modules an ES module at ``url`` (or an inline module of the page at ``inline_in``)
    imports statically, resolved through the page's import map."""
    out: list[Found] = []
    referrer = inline_in or url
    for specifier in module_imports(source):
        target = resolve_specifier(specifier, url, import_map)
        if target is not None:
            out.append(Found(target, "script", MODULE_IMPORT, referrer, critical=True, module=True, cors=True))
    return out
