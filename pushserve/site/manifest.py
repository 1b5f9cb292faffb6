"""The push manifest: for each page, the sub-resources a browser will need to show it.

Inferred by reading the page's HTML (after templates) and the CSS and JavaScript it loads:

- ``<link rel=stylesheet>`` (style; its ``@import``s and ``@font-face`` fonts too),
  ``<link rel=preload as=…>`` (type from ``as``), ``<link rel=modulepreload>`` (script);
- ``<script src>``; for module scripts, their static ``import``/``export … from`` graph;
- ``<img data-push src>`` — images are opt-in, since a page may show only a few of many; an
  ``<img fetchpriority=high>`` (the page's LCP image) needs no mark; an element other than an
  ``<img>`` marked ``data-push`` has its background image announced, from the page's first
  stylesheet (an LCP image set in CSS);
- other origins the page loads stylesheets, fonts and scripts from: ``rel=preconnect``.

Not pushed: images referenced from CSS (but the marked backgrounds above), dynamic ``import()``,
``nomodule`` scripts, alternate stylesheets, print stylesheets (``media="print"``), anything
marked ``nopush``, other origins (but their preconnect), and paths that are not files of the site
(private files included).

Links are taken as generators write them: relative to the page or to ``<base href>``; a query
(``pygments.css?v=4f6``) is kept in what is announced, since the browser matches a hint or a
push by the whole URL, while the file is found by the path; ``integrity`` and ``crossorigin``
are carried into the hint, so the browser reuses the hinted response instead of fetching twice;
module scripts are announced as ``rel=modulepreload``.

Lazily: a worker infers a page's entry when the page is first asked for (or in the background,
``build_steps``), and keeps it while the files it was inferred from are unchanged.

The file format is that of Polymer's http2-push-manifest (``push_manifest.json``)::

    {"index.html": {"/css/site.css": {"type": "style", "weight": 1}, ...}, ...}

with additions: ``"crossorigin": true`` for resources fetched in CORS mode (fonts, module
scripts, fetches), whose preload hint must say so or the browser will not use it;
``"module": true`` for module scripts; ``"integrity": "sha384-…"``; and a resource key may carry
a query (``"/_static/a.css?v=2"``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from pushserve.site.paths import PrivateFiles, SitePaths, is_manifest_page, page_url, rel_path

TYPES = ("document", "fetch", "font", "image", "script", "style")
# Push order: what blocks rendering first (styles, and the fonts they name), then scripts, then
# the rest.  Python's sort is stable, so discovery order holds within a class.
# Preconnects first (they cost no bandwidth), then the page's LCP image (fetchpriority=high),
# styles and fonts, scripts, the rest.
_ORDER = {"preconnect": -2, "style": 0, "font": 0, "script": 1}
_HIGH_ORDER = -1
PRECONNECT = "preconnect"  # a PushResource whose path is another origin: rel=preconnect
_OTHER_ORDER = 2
# Resources always fetched in CORS mode: their preloads need the crossorigin attribute.
_CORS_TYPES = frozenset({"font", "fetch"})
_CLASSIC_SCRIPT_TYPES = frozenset({
    "", "text/javascript", "application/javascript", "application/ecmascript", "text/ecmascript",
    "module",
})
_MAX_WEIGHT = 256
_FAKE_ORIGIN = "https://pushserve.invalid"  # to resolve URL paths with urljoin


class ManifestError(Exception):
    """A push_manifest.json that cannot be used; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class PushResource:
    path: str  # absolute URL path on this site: "/css/site.css"
    type: str  # one of TYPES
    weight: int = 1
    crossorigin: bool = False
    query: str = ""  # as the page wrote it ("v=4f6"): part of the URL announced
    module: bool = False  # a module script: announced as rel=modulepreload
    integrity: str = ""  # the element's integrity attribute, carried into the hint
    credentials: bool = False  # crossorigin="use-credentials"
    priority: str = ""  # "high" for <img fetchpriority=high>: announced first, with fetchpriority

    @property
    def url(self) -> str:
        """The URL the browser will ask for: what is hinted or pushed."""
        return f"{self.path}?{self.query}" if self.query else self.path


# Kinds of links that could not be announced, for the startup summary (one line per kind).
UNANNOUNCED = {
    "missing": "links to paths that are not files of the site",
    "type": "preloads of a type that is not pushed",
    "render": "pages not rendered (template errors)",
    "html": "pages whose HTML was not fully read",
}


Manifest = dict[str, list[PushResource]]


# --- URL resolution --------------------------------------------------------------------------

def resolve_url(ref: str, base_url: str) -> str | None:
    """Resolve a reference found in a page or stylesheet against the URL path it was found at.
    Returns the absolute path without query or fragment, or None for references that are not
    same-origin paths (other hosts, ``data:``, ``blob:``, fragments, empty)."""
    resolved = resolve_url_query(ref, base_url)
    return resolved[0] if resolved is not None else None


def resolve_url_query(ref: str, base_url: str) -> tuple[str, str] | None:
    """``resolve_url`` and the reference's query (without ``?``; "" when none)."""
    ref = ref.strip()
    if not ref or ref.startswith("#"):
        return None
    try:
        split = urlsplit(ref)
        if split.scheme or split.netloc:
            return None  # another origin, or data:/blob:/javascript: — not ours to push
        joined = urlsplit(urljoin(_FAKE_ORIGIN + base_url, ref))
    except ValueError:  # e.g. "http://[broken" — not a URL the browser could fetch either
        return None
    return joined.path or "/", joined.query


_PRECONNECT_KINDS = frozenset({"style", "font", "script", "module", "fetch"})


def other_origin(ref: str) -> str | None:
    """``https://host[:port]`` of an absolute (or scheme-relative, taken as https) reference to
    another origin; None for anything else (paths, data:, blob:, broken URLs)."""
    ref = ref.strip()
    try:
        split = urlsplit("https:" + ref if ref.startswith("//") else ref)
    except ValueError:
        return None
    if split.scheme not in ("http", "https") or not split.hostname:
        return None
    port = f":{split.port}" if split.port else ""
    return f"{split.scheme}://{split.hostname}{port}"


_CSS_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_BACKGROUND = re.compile(r"background(?:-image)?\s*:([^;]*)", re.I)


def css_background_images(css: str, marked: list[str]) -> list[str]:
    """The url()s of background declarations in rules whose selector names one of ``marked``
    (".hero", "#banner") as a whole class or id."""
    css = _CSS_COMMENT.sub("", css)
    tokens = [re.compile(re.escape(m) + r"(?![\w-])") for m in marked]
    urls: list[str] = []
    for rule in _CSS_RULE.finditer(css):
        selector, body = rule.group(1), rule.group(2)
        if any(tok.search(selector) for tok in tokens):
            for decl in _BACKGROUND.finditer(body):
                urls += [_first_group(m) for m in _CSS_URL.finditer(decl.group(1))]
    return urls


def print_only(media: str) -> bool:
    """A stylesheet's ``media`` that screens never apply (``print``, ``only print``)."""
    queries = [q.strip().lower().removeprefix("only ").strip() for q in media.split(",")]
    return bool(media.strip()) and all(q == "print" or q.startswith("print ") for q in queries)


# --- CSS ---------------------------------------------------------------------------------------

_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_IMPORT = re.compile(
    r"""@import\s+(?:url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)|"([^"]*)"|'([^']*)')""", re.I)
_FONT_FACE = re.compile(r"@font-face\s*\{([^}]*)\}", re.I)
_FONT_SRC = re.compile(r"(?:^|;)\s*src\s*:([^;]*)", re.I)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.I)


def _first_group(match: re.Match[str]) -> str:
    return next((g for g in match.groups() if g is not None), "")


def css_references(css: str) -> tuple[list[str], list[str]]:
    """(``@import``ed stylesheets, ``@font-face`` fonts) named by a stylesheet, as written.
    Per @font-face only the first ``url()`` of ``src`` counts: browsers take the first format
    they support and modern ones list woff2 first, so pushing the fallbacks would waste bytes
    (and when the first is an inline ``data:`` font, nothing is fetched at all)."""
    css = _CSS_COMMENT.sub(" ", css)
    imports = [_first_group(m) for m in _CSS_IMPORT.finditer(css)]
    fonts: list[str] = []
    for face in _FONT_FACE.finditer(css):
        # Mask url(…) first: a data: URL or a quoted path may hold a ";".
        urls: list[str] = []

        def mask(match: re.Match[str], urls: list[str] = urls) -> str:
            urls.append(_first_group(match))
            return f"url({len(urls) - 1})"

        body = _CSS_URL.sub(mask, face.group(1))
        src = _FONT_SRC.search(body)
        first = _CSS_URL.search(src.group(1)) if src is not None else None
        if first is not None:
            ref = urls[int(_first_group(first))]
            if not ref.startswith("data:"):
                fonts.append(ref)
    return imports, fonts


# --- JavaScript modules ------------------------------------------------------------------------

_JS_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)
    | (?P<template>`(?:[^`\\]|\\.)*`?)
    | (?P<name>[A-Za-z_$][\w$]*)
    | (?P<number>\d[\w.]*)
    | (?P<punct>\.\.\.|[{}()\[\];,.*=<>+\-!~?:&|^%@#])
    | (?P<slash>/)
    | (?P<other>.)
    """,
    re.S | re.X,
)
# After these a "/" starts a regular expression literal, not a division.
_REGEX_AFTER_NAMES = frozenset({
    "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do",
    "else", "yield", "await",
})
_REGEX_LITERAL = re.compile(r"/(?:[^/\\\n\[]|\\.|\[(?:[^\]\\\n]|\\.)*\])+/[a-z]*")


def _js_tokens(source: str) -> list[tuple[str, str]]:
    """A rough tokenizer, just enough to tell code from strings, comments, template literals and
    regular expressions, so that an ``import`` inside any of those is not taken for real."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        match = _JS_TOKEN.match(source, pos)
        if match is None:  # cannot happen ("other" takes any char); guards the loop all the same
            break
        kind = match.lastgroup or "other"
        text = match.group()
        if kind == "slash":
            prev = tokens[-1] if tokens else ("punct", ";")
            if (prev[0] == "punct" and prev[1] not in (")", "]", "}")) or (
                    prev[0] == "name" and prev[1] in _REGEX_AFTER_NAMES):
                regex = _REGEX_LITERAL.match(source, pos)
                if regex is not None:
                    tokens.append(("regex", regex.group()))
                    pos = regex.end()
                    continue
            tokens.append(("punct", "/"))
        elif kind not in ("ws", "comment"):
            tokens.append((kind, text))
        pos = match.end()
    return tokens


_JS_ESCAPE = re.compile(r"\\(.)", re.S)


def _string_value(token: str) -> str | None:
    if len(token) < 2 or token[0] != token[-1]:
        return None  # unterminated
    # Specifiers are plain paths; an escaped character stands for itself.
    return _JS_ESCAPE.sub(lambda m: m.group(1), token[1:-1])


def module_imports(source: str) -> list[str]:
    """Specifiers of the static imports of an ES module, in order: ``import … from "x"``,
    ``import "x"``, ``export … from "x"``.  Dynamic ``import("x")`` and ``import.meta`` are not
    imports the browser fetches before running the module, so they are left out."""
    tokens = _js_tokens(source)
    found: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        prev = tokens[i - 1][1] if i else ";"
        if kind != "name" or text not in ("import", "export") or prev == ".":
            i += 1
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("punct", ";")
        if text == "import" and nxt[0] == "string":
            value = _string_value(nxt[1])
            if value is not None:
                found.append(value)
            i += 2
            continue
        if text == "import" and nxt[1] in ("(", "."):
            i += 1  # dynamic import() or import.meta
            continue
        # Walk the clause up to `from "x"`; a statement end or a nested `import` means there is
        # no from-clause (`export const x = …;`, `export { a };`).
        j, depth = i + 1, 0
        while j < len(tokens):
            k, t = tokens[j]
            if t in ("{", "(", "["):
                depth += 1
            elif t in ("}", ")", "]"):
                depth -= 1
                if depth < 0:
                    break
            elif depth == 0 and (t == ";" or (k == "name" and t in ("import", "export", "function", "class",
                                                                         "const", "let", "var", "default"))):
                break
            elif depth == 0 and k == "name" and t == "from" and j + 1 < len(tokens) \
                    and tokens[j + 1][0] == "string":
                value = _string_value(tokens[j + 1][1])
                if value is not None:
                    found.append(value)
                j += 1
                break
            j += 1
        # A statement that ended at a keyword (no semicolon) is followed by that keyword: look
        # at it again, it may be the next import.
        ended_at_keyword = j < len(tokens) and tokens[j][0] == "name" and tokens[j][1] != "from"
        i = j if ended_at_keyword and j > i else j + 1
    return found


def _is_relative_specifier(spec: str) -> bool:
    # Bare specifiers ("lodash") need an import map; URLs to other origins are not ours.
    return spec.startswith(("/", "./", "../"))


# --- HTML --------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Found:
    kind: str  # "style" | "font" | "script" | "module" | other types
    ref: str
    crossorigin: bool = False
    follow: bool = False  # read it for more references (CSS imports, module imports)
    integrity: str = ""
    credentials: bool = False
    priority: str = ""


def _found(kind: str, ref: str, a: dict[str, str], *, follow: bool = False, cors: bool = False) -> _Found:
    """A reference with its element's fetch-mode attributes (``cors``: CORS mode regardless)."""
    priority = "high" if a.get("fetchpriority", "").strip().lower() == "high" else ""
    return _Found(kind, ref, cors or "crossorigin" in a, follow, a.get("integrity", "").strip(),
                  a.get("crossorigin", "").strip().lower() == "use-credentials", priority)


class _PageParser(HTMLParser):
    """Collects the references of one page in document order.  html.parser never raises on bad
    markup: it reports what it can make sense of."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[_Found] = []
        self.base: str | None = None
        self.inline_styles: list[str] = []
        self.inline_modules: list[str] = []
        # ".hero", "#banner": elements marked data-push that are not <img>: their CSS background
        # image (in the page's first stylesheet) is the image to announce.
        self.marked: list[str] = []
        self._in: str | None = None  # "style" or "module" while inside such an element
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: (value or "") for name, value in attrs}
        if tag == "base" and self.base is None and a.get("href"):
            self.base = a["href"]
        elif tag == "link":
            self._link(a)
        elif tag == "script":
            self._script(a)
        elif tag == "img" and ("data-push" in a or a.get("fetchpriority", "").lower() == "high") and a.get("src"):
            # Opt-in, or the page's own word that this is the image that matters (the LCP image).
            self.found.append(_found("image", a["src"], a))
        elif tag == "style":
            self._in, self._buffer = "style", []
        if tag != "img" and "data-push" in a:
            self.marked += [f".{c}" for c in a.get("class", "").split()]
            if a.get("id"):
                self.marked.append(f"#{a['id']}")

    def _link(self, a: dict[str, str]) -> None:
        href = a.get("href", "")
        rel = a.get("rel", "").lower().split()
        if not href or "nopush" in a:
            return
        if "stylesheet" in rel and "alternate" not in rel:
            if not print_only(a.get("media", "")):
                self.found.append(_found("style", href, a, follow=True))
        elif "modulepreload" in rel:
            self.found.append(_found("module", href, a, follow=True, cors=True))
        elif "preload" in rel:
            kind = a.get("as", "").lower()
            if kind in TYPES:
                # A preloaded stylesheet is about to be applied: its imports and fonts follow.
                self.found.append(_found(kind, href, a, follow=kind == "style"))
            else:
                self.found.append(_Found("?" + kind, href))

    def _script(self, a: dict[str, str]) -> None:
        kind = a.get("type", "").strip().lower()
        if kind not in _CLASSIC_SCRIPT_TYPES or ("nomodule" in a and kind != "module"):
            return  # data blocks, import maps, and legacy bundles modern browsers skip
        if kind == "module":
            if a.get("src"):
                self.found.append(_found("module", a["src"], a, follow=True, cors=True))
            else:
                self._in, self._buffer = "module", []
        elif a.get("src"):
            self.found.append(_found("script", a["src"], a))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("style", "script"):
            self.handle_starttag(tag, attrs)
        elif tag == "script":
            self._script({name: (value or "") for name, value in attrs})
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._in == "style" and tag == "style":
            self.inline_styles.append("".join(self._buffer))
        elif self._in == "module" and tag == "script":
            self.inline_modules.append("".join(self._buffer))
        else:
            return
        self._in = None


# --- inference ---------------------------------------------------------------------------------

@dataclass(slots=True)
class Inference:
    resources: list[PushResource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # the UNANNOUNCED kind of each warning
    # Site-relative paths the result depends on: CSS and JS files read, and referenced paths
    # that were missing (their appearance should trigger a rebuild too).
    depends_on: set[str] = field(default_factory=set)
    # Links to no file of the site: (what names it — the page or a stylesheet or module,
    # site-relative —, the URL path).  site/broken_links.py says where each is written.
    missing: list[tuple[str, str]] = field(default_factory=list)


class SiteReads:
    """What inference reads of the site, remembered across pages (500 pages of one theme name
    the same stylesheets): whether a URL is a file, for ``ttl`` seconds; a file's text for as
    long as its size and mtime stay the same."""

    _MAX_TEXTS = 1024

    def __init__(self, site: SitePaths, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.site = site
        self.ttl = ttl
        self._clock = clock
        self._resolved: dict[str, tuple[float, Path | None]] = {}
        self._texts: dict[tuple[str, int, int], str] = {}

    def resolve(self, url: str) -> Path | None:
        now = self._clock()
        cached = self._resolved.get(url)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        path = self.site.resolve(url)
        if len(self._resolved) > 4 * self._MAX_TEXTS:
            self._resolved.clear()
        self._resolved[url] = (now, path)
        return path

    def forget(self) -> None:
        """Ask the disk again (file texts stay: they are keyed by size and mtime)."""
        self._resolved.clear()

    def text(self, url: str) -> str:
        path = self.resolve(url)
        try:
            if path is None:
                raise FileNotFoundError(url)
            st = os.stat(path)
            key = (str(path), st.st_size, st.st_mtime_ns)
            text = self._texts.get(key)
            if text is None:
                text = path.read_bytes().decode("utf-8", "replace")
                if len(self._texts) >= self._MAX_TEXTS:
                    self._texts.clear()
                self._texts[key] = text
            return text
        except OSError:
            return ""


class _Inferrer:
    def __init__(self, site: SitePaths, page: str, reads: SiteReads | None = None) -> None:
        self.site = site
        self.reads = reads if reads is not None else SiteReads(site)
        self.page = page
        self.result = Inference()
        self._preconnects: set[tuple[str, bool]] = set()
        self._seen: set[str] = set()
        self._read: set[str] = set()
        self._warned: set[str] = set()

    def warn(self, kind: str, text: str) -> None:
        self.result.warnings.append(text)
        self.result.kinds.append(kind)

    def warn_missing(self, url: str, referrer: str) -> None:
        if url not in self._warned:
            self._warned.add(url)
            self.warn("missing", f"{referrer}: {url} is not a file of the site; not pushed")
            self.result.missing.append((referrer, url))
        self.result.depends_on.add(rel_path(url))

    def add(self, ref: str, base: str, kind: str, referrer: str, *, crossorigin: bool = False,
            follow: bool = False, integrity: str = "", credentials: bool = False, priority: str = "") -> None:
        resolved = resolve_url_query(ref, base)
        if resolved is None:
            origin = other_origin(ref)
            if origin is not None and kind in _PRECONNECT_KINDS:
                # A stylesheet, font or script on another host: its connection can be opened early.
                cors = crossorigin or kind == "module" or kind in _CORS_TYPES
                if (origin, cors) not in self._preconnects:
                    self._preconnects.add((origin, cors))
                    self.result.resources.append(PushResource(origin, PRECONNECT, crossorigin=cors))
            return
        url, query = resolved
        if self.reads.resolve(url) is None:
            self.warn_missing(url, referrer)
            return
        module = kind == "module"
        rtype = "script" if module else kind
        if url not in self._seen:
            self._seen.add(url)
            self.result.resources.append(PushResource(
                url, rtype, crossorigin=crossorigin or module or rtype in _CORS_TYPES, query=query,
                module=module, integrity=integrity, credentials=credentials, priority=priority))
        if follow and url not in self._read:
            self._read.add(url)
            self.result.depends_on.add(rel_path(url))
            text = self.reads.text(url)
            if module:
                self.follow_module(text, url)
            else:
                self.follow_css(text, url)

    def follow_css(self, css: str, base: str) -> None:
        imports, fonts = css_references(css)
        referrer = base.lstrip("/") or self.page
        for ref in imports:
            self.add(ref, base, "style", referrer, follow=True)
        for ref in fonts:
            self.add(ref, base, "font", referrer)

    def marked_backgrounds(self, stylesheet: str, base: str, marked: list[str]) -> None:
        """The background images that the page's first stylesheet gives the elements marked
        data-push: the case of an LCP image set in CSS, which the browser finds only once that
        stylesheet has arrived and been applied (measured in Chromium: announced, it painted about
        one round trip sooner)."""
        resolved = resolve_url(stylesheet, base)
        if resolved is None or self.reads.resolve(resolved) is None:
            return
        for url in css_background_images(self.reads.text(resolved), marked):
            self.add(url, resolved, "image", resolved.lstrip("/"), priority="high")

    def follow_module(self, source: str, base: str) -> None:
        referrer = base.lstrip("/") or self.page
        for spec in module_imports(source):
            if _is_relative_specifier(spec):
                self.add(spec, base, "module", referrer, follow=True)


def infer(html: bytes, page_url: str, site: SitePaths, page: str | None = None,
          reads: SiteReads | None = None) -> Inference:
    """``infer_page`` with the files the result depends on."""
    page = page or page_url.lstrip("/") or "index.html"
    inferrer = _Inferrer(site, page, reads)
    parser = _PageParser()
    try:
        parser.feed(html.decode("utf-8", "replace"))
        parser.close()
    except Exception as e:  # html.parser is lenient; this only guards against the unforeseen
        inferrer.warn("html", f"{page}: HTML not fully read ({e})")
    base: str | None = page_url
    if parser.base is not None:
        # A <base> on another origin sends every relative reference there: nothing to push.
        base = resolve_url(parser.base, page_url)
    if base is not None:
        for item in parser.found:
            if item.kind.startswith("?"):
                inferrer.warn("type", f"{page}: preload as={item.kind[1:] or '(none)'} of {item.ref} "
                              "is not a pushable type")
                continue
            inferrer.add(item.ref, base, item.kind, page, crossorigin=item.crossorigin, follow=item.follow,
                         integrity=item.integrity, credentials=item.credentials, priority=item.priority)
        for css in parser.inline_styles:
            inferrer.follow_css(css, base)
        for module in parser.inline_modules:
            inferrer.follow_module(module, base)
        first_css = next((item.ref for item in parser.found if item.kind == "style"), None)
        if parser.marked and first_css is not None:
            inferrer.marked_backgrounds(first_css, base, parser.marked)
    resources = inferrer.result.resources
    resources.sort(key=lambda r: _HIGH_ORDER if r.priority == "high" else _ORDER.get(r.type, _OTHER_ORDER))
    return inferrer.result


def infer_page(html: bytes, page_url: str, site: SitePaths) -> tuple[list[PushResource], list[str]]:
    """The resources a browser will fetch for the page at ``page_url`` (a URL path such as
    ``/features/``), and warnings about references that lead nowhere.  Never raises."""
    result = infer(html, page_url, site)
    return result.resources, result.warnings


# --- whole site --------------------------------------------------------------------------------

def _read_page(root: Path, rel_path: str, render: Callable[[str], bytes] | None) -> bytes:
    if render is not None:
        return render(rel_path)
    return (root / rel_path).read_bytes()


def build_manifest(root: Path, render: Callable[[str], bytes] | None,
                   private: PrivateFiles | None = None) -> tuple[Manifest, list[str]]:
    """Infer the manifest of every page of the site.  ``render`` turns a page into the HTML it
    serves (templates); without it pages are read as they are.  A page that fails to render
    becomes a warning, not an error."""
    manifest = PushManifest(root, render, private=private)
    warnings = manifest.rebuild()
    return manifest.inferred(), warnings


# --- the file format ---------------------------------------------------------------------------

def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ManifestError(f"key {key!r} appears twice")
        result[key] = value
    return result


def parse_manifest(text: str, source: str = "push_manifest.json") -> Manifest:
    """Parse and validate the JSON text of a push manifest."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{source}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except ManifestError as e:
        raise ManifestError(f"{source}: {e}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: the top level must be an object mapping pages to resources")
    manifest: Manifest = {}
    for page, resources in data.items():
        where = f"{source}: page {page!r}"
        if not page or page.startswith("/"):
            raise ManifestError(f"{where}: pages are site-relative paths such as 'index.html'")
        if not isinstance(resources, dict):
            raise ManifestError(f"{where}: must map resource paths to {{\"type\": …}} objects")
        manifest[page] = [_parse_resource(f"{where}, resource {path!r}", path, spec)
                          for path, spec in resources.items()]
    return manifest


_RESOURCE_KEYS = ("type", "weight", "crossorigin", "module", "integrity", "priority")


def _parse_resource(where: str, url: str, spec: object) -> PushResource:
    if isinstance(spec, dict) and spec.get("type") == PRECONNECT:
        origin = other_origin(url)
        if origin != url or set(spec) - {"type", "crossorigin"} or not isinstance(spec.get("crossorigin", False), bool):
            raise ManifestError(f"{where}: a preconnect is an origin such as \"https://fonts.example.com\" "
                                "with {\"type\": \"preconnect\"} and an optional \"crossorigin\"")
        return PushResource(url, PRECONNECT, crossorigin=bool(spec.get("crossorigin", False)))
    if not url.startswith("/") or url.startswith("//"):
        raise ManifestError(f"{where}: resource paths must start with a single '/'")
    path, _, query = url.partition("?")
    if not isinstance(spec, dict):
        raise ManifestError(f"{where}: must be an object like {{\"type\": \"style\", \"weight\": 1}}")
    unknown = set(spec) - set(_RESOURCE_KEYS)
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(_RESOURCE_KEYS)}")
    rtype = spec.get("type")
    if not isinstance(rtype, str):
        raise ManifestError(f"{where}: \"type\" is required and must be a string")
    if rtype not in TYPES:
        raise ManifestError(f"{where}: type {rtype!r} is not one of {', '.join(TYPES)}")
    weight = spec.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= _MAX_WEIGHT:
        raise ManifestError(f"{where}: weight must be an integer from 1 to {_MAX_WEIGHT}")
    module = spec.get("module", False)
    if not isinstance(module, bool) or (module and rtype != "script"):
        raise ManifestError(f"{where}: module must be true or false, and true only for a script")
    cors = spec.get("crossorigin", rtype in _CORS_TYPES or module)
    if not isinstance(cors, bool):
        raise ManifestError(f"{where}: crossorigin must be true or false")
    integrity = spec.get("integrity", "")
    if not isinstance(integrity, str) or any(c in integrity for c in '"\r\n'):
        raise ManifestError(f"{where}: integrity must be a string such as \"sha384-…\"")
    priority = spec.get("priority", "")
    if priority not in ("", "high"):
        raise ManifestError(f"{where}: priority must be \"high\" (or left out)")
    return PushResource(path, rtype, weight, cors, query=query, module=module, integrity=integrity,
                        priority=priority)


def load_manifest_file(path: Path | str) -> Manifest:
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    return parse_manifest(text, str(path))


def merge(inferred: Mapping[str, list[PushResource]], explicit: Mapping[str, list[PushResource]]) -> Manifest:
    """Inferred pages, with every page the explicit manifest names replaced wholesale by its list
    (an explicit empty list means: push nothing for that page)."""
    merged = {page: list(resources) for page, resources in inferred.items()}
    merged.update({page: list(resources) for page, resources in explicit.items()})
    return merged


def to_json_obj(manifest: Mapping[str, list[PushResource]]) -> dict[str, dict[str, dict[str, object]]]:
    """The manifest as push_manifest.json data: pages sorted, resources kept in push order."""
    data: dict[str, dict[str, dict[str, object]]] = {}
    for page in sorted(manifest):
        entries: dict[str, dict[str, object]] = {}
        for res in manifest[page]:
            entry: dict[str, object] = {"type": res.type}
            if res.type != PRECONNECT:
                entry["weight"] = res.weight
            if res.crossorigin:
                entry["crossorigin"] = True
            if res.module:
                entry["module"] = True
            if res.integrity:
                entry["integrity"] = res.integrity
            if res.priority:
                entry["priority"] = res.priority
            entries[res.url] = entry
        data[page] = entries
    return data


def to_json(manifest: Mapping[str, list[PushResource]]) -> str:
    """push_manifest.json text.  Resource order is push order, so it is kept, not sorted."""
    return json.dumps(to_json_obj(manifest), indent=2) + "\n"


# --- per worker --------------------------------------------------------------------------------

class PushManifest:
    """The manifest one worker serves from.  The caller decides when files changed and asks
    ``pages_depending_on`` which pages to ``rebuild_page``."""

    def __init__(
        self,
        root: Path,
        render: Callable[[str], bytes] | None = None,
        *,
        explicit: Mapping[str, list[PushResource]] | None = None,
        template_deps: Callable[[str], Iterable[str]] | None = None,
        private: PrivateFiles | None = None,
    ) -> None:
        self.site = SitePaths(root, private)
        self.root = Path(self.site.root)
        self._render = render
        self._explicit = {page: list(res) for page, res in (explicit or {}).items()}
        # Site-relative template files a page's HTML came from (when templates are in use).
        self._template_deps = template_deps
        self._inferred: Manifest = {}
        self._deps: dict[str, set[str]] = {}
        self._stamps: dict[str, tuple[tuple[str, int, int], ...]] = {}
        self._checked: dict[str, float] = {}
        # What each page's entry could not announce: (UNANNOUNCED kind, detail).
        self._notes: dict[str, list[tuple[str, str]]] = {}
        self._missing: dict[str, list[tuple[str, str]]] = {}  # page -> Inference.missing
        # One object per distinct resource and dependency name, however many pages share it.
        self._interned: dict[PushResource, PushResource] = {}
        self._reads = SiteReads(self.site)
        self.revalidate_after = 1.0

    @classmethod
    def build(
        cls,
        root: Path,
        render: Callable[[str], bytes] | None = None,
        explicit: Path | Mapping[str, list[PushResource]] | None = None,
        *,
        template_deps: Callable[[str], Iterable[str]] | None = None,
        private: PrivateFiles | None = None,
        lazy: bool = False,
    ) -> tuple[PushManifest, list[str]]:
        """Infer every page (``lazy``: none yet, each when first asked for); ``explicit`` (a
        push_manifest.json path, or its parsed form) wins for the pages it lists.  Raises
        ManifestError for a broken explicit file."""
        if isinstance(explicit, (str, Path)):
            explicit = load_manifest_file(explicit)
        manifest = cls(root, render, explicit=explicit, template_deps=template_deps, private=private)
        warnings = [] if lazy else manifest.rebuild()
        for page, resources in manifest._explicit.items():
            warnings.extend(f"push manifest: {page}: {res.path} is not a file of the site"
                            for res in resources if not manifest.site.exists(res.path))
        return manifest, warnings

    def rebuild(self) -> list[str]:
        """Infer every page again; returns the warnings (each once)."""
        self._inferred.clear()
        self._deps.clear()
        self._stamps.clear()
        self._notes.clear()
        self._missing.clear()
        warnings: list[str] = []
        self._reads.forget()
        for page in self.site.walk_pages():
            warnings.extend(self._infer(page))
        return list(dict.fromkeys(warnings))

    def build_steps(self) -> Iterator[str]:
        """Infer the pages not inferred yet, one per step (yields the page), so a worker can
        build its manifest in the background between requests."""
        for page in self.site.walk_pages():
            if page not in self._stamps and page not in self._explicit:
                self._infer(page)
                yield page

    def unannounced(self) -> Counter[str]:
        """How many links of each UNANNOUNCED kind the pages inferred so far could not announce."""
        return Counter(kind for notes in self._notes.values() for kind, _ in notes)

    def notes(self) -> list[str]:
        """The details behind ``unannounced``, each once, page by page."""
        return list(dict.fromkeys(text for page in sorted(self._notes) for _, text in self._notes[page]))

    def summary(self) -> list[str]:
        """A few lines for the log: counts, and one line per kind of link not announced."""
        pages = len(self._stamps.keys() | self._explicit.keys())
        resources = sum(len(r) for r in self.as_dict(build=False).values())
        lines = [f"push manifest: {pages} page{'s' if pages != 1 else ''}, "
                 f"{resources} resource{'s' if resources != 1 else ''} announced"]
        lines += [f"push manifest: not announced: {n} {UNANNOUNCED[kind]}"
                  for kind, n in sorted(self.unannounced().items())]
        return lines

    def rebuild_page(self, rel_path: str) -> list[str]:
        """Infer one page again (after its file or one it depends on changed); a page that no
        longer exists is dropped."""
        self._reads.forget()  # something changed: what was remembered of the files may be stale
        return self._infer(rel_path)

    def _infer(self, rel_path: str) -> list[str]:
        rel_path = rel_path.lstrip("/")
        if not (is_manifest_page(rel_path) and self.site.servable(rel_path) and (self.root / rel_path).is_file()):
            for table in (self._inferred, self._deps, self._stamps, self._notes, self._missing):
                table.pop(rel_path, None)
            return []
        deps = {rel_path}
        try:
            html = _read_page(self.root, rel_path, self._render)
        except Exception as e:  # a template error in one page must not take the manifest down
            text = f"{rel_path}: not rendered, nothing inferred: {e}"
            self._store(rel_path, [], deps | self._templates_of(rel_path), [("render", text)])
            self._missing.pop(rel_path, None)
            return [text]
        result = infer(html, page_url(rel_path), self.site, rel_path, self._reads)
        self._store(rel_path, result.resources, deps | result.depends_on | self._templates_of(rel_path),
                    list(zip(result.kinds, result.warnings, strict=True)))
        if result.missing:
            self._missing[rel_path] = result.missing
        else:
            self._missing.pop(rel_path, None)
        return result.warnings

    def _store(self, page: str, resources: list[PushResource], deps: set[str],
               notes: list[tuple[str, str]]) -> None:
        self._inferred[page] = [self._interned.setdefault(r, r) for r in resources]
        self._deps[page] = {sys.intern(d) for d in deps}
        self._stamps[page] = self._stamp(page)
        if notes:
            self._notes[page] = notes
        else:
            self._notes.pop(page, None)

    def _stamp(self, page: str) -> tuple[tuple[str, int, int], ...]:
        """Size and mtime of every file the page's entry was inferred from (-1 for missing ones)."""
        stamp = []
        for dep in sorted(self._deps.get(page, ())):
            try:
                st = os.stat(self.root / dep)
                stamp.append((dep, st.st_size, st.st_mtime_ns))
            except OSError:
                stamp.append((dep, -1, -1))
        return tuple(stamp)

    def refresh(self, page: str, now: float) -> None:
        """Rebuild a page's entry if a file it was inferred from changed: checked at most every
        ``revalidate_after`` seconds per page, so a server that is not watching files (outside dev
        mode) still follows edits to a page, its templates, its CSS and its modules."""
        if page not in self._stamps:
            if page not in self._explicit:
                self._infer(page)  # first asked for: inferred now (lazily)
                self._checked[page] = now
            return
        if now - self._checked.get(page, 0.0) < self.revalidate_after:
            return
        self._checked[page] = now
        if self._stamp(page) != self._stamps[page]:
            self.rebuild_page(page)

    def notes_of(self, page: str) -> list[tuple[str, str]]:
        """What a page's entry could not announce: (UNANNOUNCED kind, detail)."""
        return list(self._notes.get(page, ()))

    def missing_links(self) -> dict[tuple[str, str], list[str]]:
        """Links to no file of the site in the pages inferred so far: (what names it, the URL
        path) -> the pages that carry it."""
        out: dict[tuple[str, str], list[str]] = {}
        for page in sorted(self._missing):
            for link in self._missing[page]:
                out.setdefault(link, []).append(page)
        return out

    def sources_of(self, page: str) -> list[str]:
        """The files a page's HTML comes from: the page, then the templates it extends, includes
        or imports."""
        return [page, *sorted(self._templates_of(page) - {page})]

    def _templates_of(self, rel_path: str) -> set[str]:
        return set(self._template_deps(rel_path)) if self._template_deps is not None else set()

    def resources_for(self, page_rel_path: str) -> list[PushResource]:
        explicit = self._explicit.get(page_rel_path)
        if explicit is not None:
            return explicit
        return self._inferred.get(page_rel_path, [])

    def pages_depending_on(self, changed_path: str) -> set[str]:
        """Pages whose manifest entry may change because ``changed_path`` (site-relative) was
        created, modified or deleted."""
        changed = changed_path.lstrip("/")
        pages = {page for page, deps in self._deps.items() if changed in deps}
        if is_manifest_page(changed) and self.site.servable(changed):
            pages.add(changed)  # a new page, or one of ours
        elif self._template_deps is None and changed.lower().endswith((".html", ".htm")) \
                and changed in self.site.private:
            # A layout or partial, and nobody told us who includes it: any page may.
            pages.update(self._deps)
        return pages

    def pages(self) -> list[str]:
        return sorted(set(self._inferred) | set(self._explicit))

    def inferred(self) -> Manifest:
        return {page: list(res) for page, res in sorted(self._inferred.items())}

    def as_dict(self, *, build: bool = True) -> Manifest:
        """Every page's entry (``build``: inferring the pages not inferred yet first)."""
        if build:
            for _ in self.build_steps():
                pass
        return merge(self._inferred, self._explicit)

    def to_json_obj(self) -> dict[str, dict[str, dict[str, object]]]:
        return to_json_obj(self.as_dict())

    def to_json(self) -> str:
        return to_json(self.as_dict())
