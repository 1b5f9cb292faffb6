"""The push manifest: for each page, the sub-resources a browser will need to show it — inferred
from what the page makes the browser fetch (``pushserve.scan``), and its file format.

Announced without being asked (what the scanner calls critical): stylesheets for the screen and
what they ``@import``, the font each ``@font-face`` makes the browser fetch, scripts, module
scripts and their static import graph; and what the page asks for itself: ``<link rel=preload>``
of any type pushed (its ``as``), ``<img data-push>``, ``<img fetchpriority=high>`` (the page's LCP
image, first), and for an element other than an ``<img>`` marked ``data-push`` the background
image the page's first stylesheet gives it (an LCP image set in CSS).  Other origins the page
loads stylesheets, fonts and scripts from get a ``rel=preconnect``.

Not announced: other images, print-only, alternate and ``disabled`` stylesheets, anything inside
``<noscript>``, ``nomodule`` scripts, dynamic ``import()``, EOT and SVG fonts, anything marked
``nopush``, other origins (but their preconnect), and paths that are not files of the site
(private files included).

Order: preconnects, the LCP image, stylesheets, fonts, scripts, the rest — whatever the page's
order, so a font never waits for bandwidth before the stylesheet that needs it.  A query
(``pygments.css?v=4f6``) is kept in what is announced, since the browser matches a hint or a push
by the whole URL; URLs are percent-encoded as the browser encodes them; ``integrity`` and
``crossorigin`` are carried into the hint.  Module scripts are announced as ``rel=modulepreload``
— but on a page with an import map: a module a 103 makes the browser load early can race the
import map and fail to resolve its bare imports, leaving the page blank, so there they are
announced as ``rel=preload; as=script; crossorigin`` (fetched, not run).

The file format is that of Polymer's http2-push-manifest (``push_manifest.json``)::

    {"index.html": {"/css/site.css": {"type": "style", "weight": 1}, ...}, ...}

with additions: ``"crossorigin": true`` for resources fetched in CORS mode (fonts, module
scripts, fetches), whose preload hint must say so or the browser will not use it;
``"module": true`` for module scripts; ``"integrity": "sha384-…"``; and a resource key may carry
a query (``"/_static/a.css?v=2"``).  Keys are percent-encoded as announced; a hand-written key
(``"/css/estilo mañana.css"``) is encoded when read.

The manifest a worker serves from, inferred lazily and kept up to date, is ``manifest_store.py``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pushserve.scan import Found, ImportMap, PageScanner, follows
from pushserve.scan import found as via
from pushserve.scan.urls import SITE_ORIGIN, normalize_target, origin, path_and_query, site_url
from pushserve.site.paths import SitePaths, rel_path
from pushserve.site.reads import SiteReads

TYPES = ("document", "fetch", "font", "image", "script", "style")
PRECONNECT = "preconnect"  # a PushResource whose path is another origin: rel=preconnect
# Push order: preconnects (they cost no bandwidth), the page's LCP image, stylesheets, the fonts
# they name, scripts, the rest.  Python's sort is stable, so discovery order holds within a class.
_ORDER = {PRECONNECT: -2, "style": 0, "font": 1, "script": 2}
_HIGH_ORDER = -1
_OTHER_ORDER = 3
# Resources always fetched in CORS mode: their preloads need the crossorigin attribute.
_CORS_TYPES = frozenset({"font", "fetch"})
# What a page loads from another origin that is worth opening its connection for.
_PRECONNECT_TYPES = frozenset({"style", "font", "script", "fetch"})
_MAX_WEIGHT = 256
_T = TypeVar("_T")
_PIECE = 64 * 1024  # bytes of HTML read per step of a background inference


class ManifestError(Exception):
    """A push_manifest.json that cannot be used; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class PushResource:
    path: str  # absolute URL path on this site, percent-encoded: "/css/site.css"
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


# --- inference ---------------------------------------------------------------------------------

@dataclass(slots=True)
class Inference:
    resources: list[PushResource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # the UNANNOUNCED kind of each warning
    # Site-relative paths the result depends on: CSS and JS files read, and referenced paths
    # that were missing (their appearance should trigger a rebuild too).
    depends_on: set[str] = field(default_factory=set)
    import_map: bool = False  # the page has one: its modules are announced as preload, not modulepreload
    # Links to no file of the site: (what names it — the page or a stylesheet or module,
    # site-relative —, the URL path).  site/broken_links.py says where each is written.
    missing: list[tuple[str, str]] = field(default_factory=list)


class _Inferrer:
    def __init__(self, site: SitePaths, page: str, page_url: str, reads: SiteReads | None) -> None:
        self.reads = reads if reads is not None else SiteReads(site)
        self.page = page
        self.page_url = page_url  # absolute
        self.result = Inference()
        self.import_map: ImportMap | None = None
        self._announced: set[str] = set()
        self._preconnects: set[tuple[str, bool]] = set()
        self._read: set[str] = set()
        self._warned: set[str] = set()

    def warn(self, kind: str, text: str) -> None:
        self.result.warnings.append(text)
        self.result.kinds.append(kind)

    def referrer(self, found: Found) -> str:
        path = path_and_query(found.referrer)[0]
        return self.page if found.referrer == self.page_url else path.lstrip("/") or self.page

    def consider(self, found: Found) -> None:
        """Announce what the page needs of what it fetches; follow stylesheets and modules."""
        if found.nopush:
            return
        kind = found.via
        if kind == via.PRELOAD:
            if found.type not in TYPES:
                self.warn("type", f"{self.page}: preload as={found.type or '(none)'} of "
                          f"{_shown(found.url)} is not a pushable type")
                return
        elif kind == via.IMG:
            if not found.marked:
                return
        elif kind == via.CSS_URL or not found.critical:
            return  # print stylesheets; CSS images (but the marked background)
        self.announce(found)

    def announce(self, found: Found) -> None:
        if origin(found.url) != SITE_ORIGIN:
            if found.type in _PRECONNECT_TYPES:
                # A stylesheet, font or script on another host: its connection can be opened early.
                cors = found.cors or found.type in _CORS_TYPES
                key = (origin(found.url), cors)
                if key not in self._preconnects:
                    self._preconnects.add(key)
                    self.result.resources.append(PushResource(key[0], PRECONNECT, crossorigin=cors))
            return
        path, query = path_and_query(found.url)
        if self.reads.resolve(path) is None:
            if path not in self._warned:
                self._warned.add(path)
                self.warn("missing", f"{self.referrer(found)}: {_shown(path)} is not a file of the site; not pushed")
                self.result.missing.append((self.referrer(found), path))
            self.result.depends_on.add(rel_path(path))
            return
        if path not in self._announced:
            self._announced.add(path)
            # On a page with an import map a module is hinted as a plain script fetch (see above).
            module = found.module and self.import_map is None
            self.result.resources.append(PushResource(
                path, found.type, crossorigin=found.cors or found.type in _CORS_TYPES, query=query,
                module=module, integrity=found.integrity, credentials=found.credentials,
                priority=found.priority))
        if follows(found) and path not in self._read:
            self._read.add(path)
            self.result.depends_on.add(rel_path(path))
            more = (self.reads.module(path, self.import_map) if found.module
                    else self.reads.stylesheet(path, found.critical))
            for item in more:
                self.consider(item)

    def marked_backgrounds(self, found: list[Found], marked: list[str]) -> None:
        """The background images that the page's first stylesheet gives the elements marked
        data-push: the case of an LCP image set in CSS, which the browser finds only once that
        stylesheet has arrived and been applied (measured in Chromium: announced, it painted about
        one round trip sooner)."""
        first = next((f for f in found if f.type == "style" and f.critical and f.via in (via.STYLESHEET, via.PRELOAD)
                      and origin(f.url) == SITE_ORIGIN), None)
        if first is None:
            return
        path = path_and_query(first.url)[0]
        tokens = [_selector_token(m) for m in marked]
        for item in self.reads.stylesheet(path, True):
            if (item.via == via.CSS_URL and item.property in ("background", "background-image")
                    and any(token(item.selector) for token in tokens)):
                self.announce(Found(item.url, "image", via.IMG, item.referrer, priority="high", marked=True))


def _selector_token(mark: str) -> Callable[[str], bool]:
    """Whether a selector names a class or id (".hero", "#banner") as a whole."""
    rx = re.compile(re.escape(mark) + r"(?![\w-])")
    return lambda selector: rx.search(selector) is not None


def _shown(url: str) -> str:
    return url.removeprefix(SITE_ORIGIN)


def infer(html: bytes, page_url: str, site: SitePaths, page: str | None = None,
          reads: SiteReads | None = None) -> Inference:
    """What the page at ``page_url`` (a URL path such as ``/features/``) needs announced, with
    the files the result depends on.  Never raises."""
    return finish(infer_steps(html, page_url, site, page, reads))


def finish(steps: Generator[None, None, _T]) -> _T:
    """What a generator of steps returns, all steps run at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: _T = done.value
            return result


def infer_steps(html: bytes, page_url: str, site: SitePaths, page: str | None = None,
                reads: SiteReads | None = None) -> Generator[None, None, Inference]:
    """``infer`` in small steps (a piece of the page's HTML, or one of its fetches each), for a
    worker that infers in the background between requests: a page of megabytes never holds the
    event loop for long."""
    page = page or page_url.lstrip("/") or "index.html"
    inferrer = _Inferrer(site, page, site_url(page_url), reads)
    scanner = PageScanner(inferrer.page_url)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        for start in range(0, len(html), _PIECE):
            scanner.feed(decoder.decode(html[start:start + _PIECE]))
            yield
        scanner.feed(decoder.decode(b"", final=True))
        scanner.close()
    except Exception as e:  # the tokenizer never raises; this only guards against the unforeseen
        inferrer.warn("html", f"{page}: HTML not fully read ({e})")
    found = scanner.take()
    inferrer.import_map = scanner.import_map
    inferrer.result.import_map = scanner.import_map is not None
    for item in found:
        inferrer.consider(item)
        yield
    if scanner.marked:
        inferrer.marked_backgrounds(found, scanner.marked)
    resources = inferrer.result.resources
    resources.sort(key=lambda r: _HIGH_ORDER if r.priority == "high" else _ORDER.get(r.type, _OTHER_ORDER))
    return inferrer.result


def infer_page(html: bytes, page_url: str, site: SitePaths) -> tuple[list[PushResource], list[str]]:
    """The resources a browser will fetch for the page at ``page_url``, and warnings about
    references that lead nowhere.  Never raises."""
    result = infer(html, page_url, site)
    return result.resources, result.warnings


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
        if (_origin_of(url) != url or set(spec) - {"type", "crossorigin"}
                or not isinstance(spec.get("crossorigin", False), bool)):
            raise ManifestError(f"{where}: a preconnect is an origin such as \"https://fonts.example.com\" "
                                "with {\"type\": \"preconnect\"} and an optional \"crossorigin\"")
        return PushResource(url, PRECONNECT, crossorigin=bool(spec.get("crossorigin", False)))
    if not url.startswith("/") or url.startswith("//"):
        raise ManifestError(f"{where}: resource paths must start with a single '/'")
    path, _, query = normalize_target(url).partition("?")
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


def _origin_of(url: str) -> str | None:
    """``https://host[:port]`` when ``url`` is just that, else None."""
    if not url.startswith(("https://", "http://")):
        return None
    try:
        return origin(url)
    except ValueError:
        return None


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
