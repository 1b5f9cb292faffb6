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
``<base href>`` moves the references after it, as in a browser.

The markup is read by a small tokenizer of regular expressions, not html.parser: it looks only
at the few elements that matter (and at comments and raw-text elements — ``<script>``,
``<style>``, ``<textarea>``… — whose content is no markup), so the engine skips the rest of a
page at its own speed; a 30 KB documentation page is read in well under a millisecond, where
html.parser takes about 20.  It never raises on bad markup.  The tests hold it to html.parser on
the pages of the fixtures and on malformed markup (tests/support/html_oracle.py).
"""

from __future__ import annotations

import re

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
# Elements whose content is text to the HTML parser, up to their end tag (<noscript> too, in a
# browser that runs scripts); <plaintext> runs to the end of the document.
RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"})
_ELEMENTS = "link|script|img|base|style|template|plaintext|" + "|".join(sorted(RAW_TEXT - {"script", "style"}))
# Where something may begin that matters: a comment, a <template> boundary, an element of ours.
_CANDIDATE = re.compile(rf"<(?:!--|/template[\s/>]|(?:{_ELEMENTS})[\s/>])", re.I)
_CANDIDATE_LINKS = re.compile(rf"<(?:!--|/template[\s/>]|(?:{_ELEMENTS}|a|area)[\s/>])", re.I)
# … and, on a page that has the word, any element marked data-push.
_CANDIDATE_MARKED = re.compile(
    rf"<(?:!--|/template[\s/>]|(?:{_ELEMENTS}|a|area)[\s/>]|[a-zA-Z][^\s/>]*+(?=[^<>]*?\sdata-push))", re.I)
# A whole start tag, as the HTML tokenizer reads one (quoted values may hold ">").
_START_TAG = re.compile(
    r"""<([a-zA-Z][^\s/>]*+)((?:[\s/]++|=?[^\s/>="'][^\s/>=]*+(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>"'][^\s>]*+)?)?+)*+)>""")
_ATTR = re.compile(r"""(=?[^\s/>=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"'][^\s>]*))?""")
_END_TAGS: dict[str, re.Pattern[str]] = {}


def _end_tag(name: str) -> re.Pattern[str]:
    pattern = _END_TAGS.get(name)
    if pattern is None:
        pattern = _END_TAGS[name] = re.compile(rf"</{re.escape(name)}[\s/>]", re.I)
    return pattern


def _enclosing_tag(buf: str, pos: int, start: int) -> tuple[int, int | None]:
    """The nearest start tag that began between ``pos`` and ``start`` (up to 4 KB back), and
    where it ends: past ``start`` when "<link" was written inside ``title="… <link …>"`` (no
    element, then), None while it is unfinished; ``(start, start)`` when there is none."""
    low = max(pos, start - 4096)
    lt = buf.rfind("<", low, start)
    while lt >= 0 and not buf[lt + 1:lt + 2].isalpha():
        lt = buf.rfind("<", low, lt)
    if lt < 0:
        return start, start
    tag = _START_TAG.match(buf, lt)
    return lt, tag.end() if tag is not None else None


def _unfinished(buf: str, pos: int) -> int:
    """Where the end of ``buf`` begins a tag (or comment) that the next piece may complete: kept
    for then.  ``len(buf)`` when nothing is unfinished."""
    last = buf.rfind("<", pos)
    keep = last if last >= 0 and ">" not in buf[last:] else len(buf)
    low = max(pos, len(buf) - 4096)
    lt = buf.rfind("<", low, keep)
    while lt >= 0 and not buf[lt + 1:lt + 2].isalpha():
        lt = buf.rfind("<", low, lt)
    if lt >= 0 and _START_TAG.match(buf, lt) is None:
        keep = lt  # a tag whose quoted value goes on: "<link" in it must be known as text
    return keep


def _attributes(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, value in _ATTR.findall(text):
        if value[:1] in ("'", '"'):
            value = value[1:-1]
        if "&" in value:
            from html import unescape  # here: html.entities is ~0.3 MiB, and most values have no "&"

            value = unescape(value)
        attrs.setdefault(name.lower(), value)
    return attrs


class PageScanner:
    """Feed it a page's text in pieces, as it arrives; ``take()`` returns what was found since
    its last call.  Stylesheets and modules the page loads are the caller's to fetch and read
    (``scan_stylesheet``, ``scan_module``): a scanner has no network and no files.
    ``links``: also collect the navigation links (``<a href>``, ``<area href>``)."""

    def __init__(self, url: str, *, links: bool = False) -> None:
        self.url = url
        self.base = url
        self._base_set = False
        self.import_map: ImportMap | None = None
        self.links: list[Link] = []
        # ".hero", "#banner": elements marked data-push that are not <img>: their CSS
        # background image is the page's own word on what to announce.
        self.marked: list[str] = []
        self._new: list[Found] = []
        self._want_links = links
        self._buffer = ""
        self._raw: tuple[str, dict[str, str]] | None = None  # the raw-text element we are in
        self._template = 0  # depth inside <template>: nothing there is fetched
        self._plaintext = False

    def take(self) -> list[Found]:
        new, self._new = self._new, []
        return new

    def feed(self, text: str) -> None:
        self._buffer += text
        self._run(final=False)

    def close(self) -> None:
        self._run(final=True)
        self._buffer = ""

    def found_all(self) -> list[Found]:
        """Close the document and return everything not taken yet."""
        self.close()
        return self.take()

    # -- the tokenizer ---------------------------------------------------------------------

    def _run(self, *, final: bool) -> None:
        buf, pos = self._buffer, 0
        candidate = _CANDIDATE_MARKED if "data-push" in buf else _CANDIDATE_LINKS if self._want_links else _CANDIDATE
        while not self._plaintext:
            if self._raw is not None:  # inside <script>, <style>…: up to its end tag
                name, attrs = self._raw
                end = _end_tag(name).search(buf, pos)
                if end is None and not final:
                    break
                stop = end.start() if end is not None else len(buf)
                self._raw = None
                if not self._template:
                    self.raw_text(name, attrs, buf[pos:stop])
                pos = stop
                continue
            m = candidate.search(buf, pos)
            if m is None:
                pos = len(buf) if final else _unfinished(buf, pos)
                break
            start = m.start()
            lt, enclosing = _enclosing_tag(buf, pos, start)
            if enclosing is None and not final:  # a tag not finished yet may hold this: wait
                pos = lt
                break
            if enclosing is not None and enclosing > start:  # inside a tag's attribute value: text
                pos = enclosing
                continue
            if buf.startswith("<!--", start):
                end_comment = buf.find("-->", start + 4)
                if end_comment < 0:
                    pos = start if not final else len(buf)
                    break
                pos = end_comment + 3
                continue
            if buf[start + 1] == "/":  # </template>
                self._template = max(0, self._template - 1)
                pos = m.end()
                continue
            tag = _START_TAG.match(buf, start)
            if tag is None:
                if not final and ">" not in buf[start:]:
                    pos = start
                    break
                pos = start + 1  # not a tag after all ("<a" of "<abc"?), or one that never ends
                continue
            pos = tag.end()
            name = tag.group(1).lower()
            attrs = _attributes(tag.group(2))
            if name == "template":
                self._template += 1
            elif name == "plaintext":
                self._plaintext = True
            elif not self._template:
                self.element(name, attrs)
            if name in RAW_TEXT:
                self._raw = (name, attrs)
        self._buffer = buf[pos:] if not self._plaintext else ""

    # -- elements --------------------------------------------------------------------------

    def element(self, tag: str, a: dict[str, str]) -> None:
        """A start tag outside inert content (attribute names lower case, values unescaped)."""
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
        elif tag in ("a", "area") and "href" in a and self._want_links:
            url = resolve(a["href"], self.base)
            if url is not None:
                self.links.append(Link(url, tuple(a.items())))
        if tag != "img" and "data-push" in a:
            self.marked += [f".{c}" for c in a.get("class", "").split()]
            if a.get("id"):
                self.marked.append(f"#{a['id']}")

    def raw_text(self, tag: str, a: dict[str, str], text: str) -> None:
        """The text content of a raw-text element (outside inert content)."""
        if tag == "style":
            self._new += scan_stylesheet(text, self.base, critical=True, inline_in=self.url)
        elif tag == "script":
            kind = a.get("type", "").strip().lower()
            if kind == "module" and not a.get("src"):
                self._new += scan_module(text, self.base, self.import_map, inline_in=self.url)
            elif kind == "importmap":
                if self.import_map is None:
                    self.import_map = ImportMap()
                self.import_map.add(text, self.base)

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
        if kind == "module":
            if a.get("src"):
                self._add(a["src"], "script", SCRIPT, a, critical=True, module=True)
        elif kind in _CLASSIC_SCRIPT_TYPES and "nomodule" not in a and a.get("src"):
            self._add(a["src"], "script", SCRIPT, a, critical=True)
        # else: an import map or data block (read as raw text), or a legacy bundle modern browsers skip


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
