"""Jinja2 pages: one environment per worker process, rendered output cached per request shape.

A page is rendered with two names in scope: ``site`` (the ``[site]`` table of pushserve.toml)
and ``request`` (path, query, ``args``, ``headers``).  Its output is cached under (page, URL
path, query) for as long as every template file the render pulled in (the page, its layout,
partials, macro files; also names it looked for and did not find) is unchanged on disk.  The
check stats those files at most once every ``revalidate_after`` seconds (0 in dev mode: every
time).  A render that consulted request headers is not cached, since the key does not hold them.

Jinja2 itself (``jinja.py``: the environment, a loader that records each file a render pulls
in, a bytecode cache) is imported on the first page that is really rendered: which files are
templates is found by reading bytes, so a plain site's worker never loads it.

Every failure a template author can cause becomes a ``TemplateError`` naming the template file
(the included one, when the error is inside an include) and the line.

Which pages are templates (``mode``, from ``templates =`` in pushserve.toml or the command line):

- ``True`` (the site declares templates): every page with Jinja syntax (``{{``, ``{%``, ``{#``);
- ``"auto"`` (the default): a page that extends, includes or imports (``{% from … import %}``)
  a template file that exists in the site, by a constant name.  Generator output (Sphinx, MkDocs,
  Hugo…) has code samples with ``{{ … }}`` or even ``{% extends "x" %}`` written as text, and is
  served byte for byte; a template site's pages use layouts, so they are rendered;
- ``False``: none (no ``Templates`` at all).

The files template pages extend, include or import are template-only: private, never served as
files.  They are found by the pages that name them, so every HTML file must have been read once:
``survey_steps`` does that in small steps, in the background of a worker that already serves
(a start reads no page, whatever the size of the site), then every render adds what it pulled in.
Until the survey is done a page that may be a layout or partial with logic — one with a ``{%``
statement, or with any template syntax on a site that declares templates — is not answered
(``renders`` says so: the request waits a moment); other pages (generator output, whose code
samples may hold a ``{{``) are served at once: in ``auto`` mode they are no template pages, and
they hold no template logic to keep private.
"""

from __future__ import annotations

import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import parse_qsl

from pushserve.protocol.events import Headers
from pushserve.site.paths import PrivateFiles, iter_tree, page_url
from pushserve.site.template_files import Signature, TemplateError, file_signature, site_file, site_relative

if TYPE_CHECKING:
    from pushserve.site.jinja import Engine

TEMPLATE_SUFFIXES = (".html", ".htm")
CACHE_ENTRIES = 512
# A file without any of these renders to itself; it is served byte for byte, never through Jinja
# (which would normalise newlines and decode as UTF-8).
_JINJA_MARKERS = (b"{{", b"{%", b"{#")

# A reference by constant name: {% extends "x" %}, {% include 'x' %}, {% import "x" as m %},
# {% from "x" import m %} (whitespace control dashes allowed).
_REFERENCE = re.compile(rb"""\{%-?\s*(?:extends|include|import|from)\s+(?:"([^"{}%]+)"|'([^'{}%]+)')""")
TemplatesMode = bool | Literal["auto"]


class RequestLike(Protocol):
    """What a render needs from the request (static.RenderRequest has this shape)."""

    @property
    def path(self) -> str: ...
    @property
    def query(self) -> bytes: ...
    @property
    def headers(self) -> Headers: ...


def is_template_path(rel_path: str) -> bool:
    return rel_path.lower().endswith(TEMPLATE_SUFFIXES)


def has_template_syntax(source: bytes) -> bool:
    return any(marker in source for marker in _JINJA_MARKERS)


def template_references(source: bytes) -> list[str]:
    """Names a template extends, includes or imports by constant name, in order."""
    if b"{%" not in source:
        return []
    return [(m.group(1) or m.group(2)).decode("utf-8", "replace") for m in _REFERENCE.finditer(source)]


@dataclass(slots=True)
class TemplateScan:
    """What one read of the site's HTML files found."""

    pages: list[str]  # pages rendered as templates
    template_only: set[str]  # files they extend, include or import (transitively)
    files: int  # HTML files read


class HeaderLookup:
    """Case-insensitive, read-only view of the request headers for templates
    (``request.headers["user-agent"]``, ``request.headers.get("accept-language", "")``).
    It notes when it was consulted, so such renders are kept out of the cache."""

    __slots__ = ("_headers", "consulted")

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        self.consulted = False

    def get(self, name: str, default: str | None = None) -> str | None:
        self.consulted = True
        wanted = name.lower().encode("latin-1", "replace")
        values = [v.decode("latin-1") for k, v in self._headers if k == wanted]
        # Repeated headers read as one comma-joined value, as RFC 9110 allows for lists.
        return ", ".join(values) if values else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        self.consulted = True
        return iter(dict.fromkeys(k.decode("latin-1") for k, _ in self._headers))


class PageRequest:
    """The ``request`` object templates see."""

    __slots__ = ("args", "headers", "path", "query")

    def __init__(self, request: RequestLike) -> None:
        self.path = request.path
        self.query = request.query.decode("utf-8", "replace")
        # First value wins for repeated keys, so ``request.args.x`` is always a plain string.
        args: dict[str, str] = {}
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            args.setdefault(key, value)
        self.args = args
        self.headers = HeaderLookup(request.headers)


@dataclass(frozen=True, slots=True)
class _StaticRequest:
    path: str
    query: bytes
    headers: Headers


@dataclass(slots=True)
class _Rendered:
    body: bytes
    deps: dict[str, Signature]  # absolute file path → signature at render time
    checked_at: float


class Templates:
    """Renders the site's pages.  One instance per worker process."""

    def __init__(
        self,
        root: Path,
        *,
        site: Mapping[str, object] | None = None,
        strict: bool = False,
        revalidate_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        mode: TemplatesMode = True,
        private: PrivateFiles | None = None,
    ) -> None:
        self.root = Path(os.path.realpath(root))
        self.mode = mode
        # Template-only files go here as they become known, so they are never served as files.
        self.private = private if private is not None else PrivateFiles()
        self.revalidate_after = revalidate_after
        self._clock = clock
        self._site = dict(site or {})
        self._strict = strict
        self._engine: Engine | None = None
        self._cache: OrderedDict[tuple[str, str, bytes], _Rendered] = OrderedDict()
        self._survey: TemplateScan | None = None  # once every HTML file was read
        self._waiting: list[Callable[[], None]] = []

    @property
    def engine(self) -> Engine:
        """Jinja2, loaded when a page first needs it (a plain site's worker never does)."""
        if self._engine is None:
            from pushserve.site.jinja import Engine

            self._engine = Engine(self.root, self._site, self._strict)
        return self._engine

    # -- rendering -------------------------------------------------------------------------

    def render(self, rel_path: str, request: RequestLike) -> bytes:
        key = (rel_path, request.path, request.query)
        entry = self._cache.get(key)
        if entry is not None:
            now = self._clock()
            fresh = now - entry.checked_at < self.revalidate_after
            if not fresh and self._unchanged(entry.deps):
                entry.checked_at, fresh = now, True
            if fresh:
                self._cache.move_to_end(key)
                return entry.body
            del self._cache[key]
        body, deps, cacheable = self._render_uncached(rel_path, request)
        if cacheable:
            self._cache[key] = _Rendered(body, deps, self._clock())
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return body

    def render_static(self, rel_path: str) -> bytes:
        """Render a page as for a plain GET of its URL (no query, no headers): what the push
        manifest reads."""
        return self.render(rel_path, _StaticRequest(page_url(rel_path), b"", []))

    def static_html(self, rel_path: str) -> bytes:
        """The HTML a plain GET of the page gets: rendered when it is a template, else the file's
        bytes (read, not kept: the push manifest reads every page once)."""
        filename = site_file(self.root, rel_path)
        if filename is None:
            raise TemplateError(rel_path, 0, "not a valid template path")
        try:
            with open(filename, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise TemplateError(rel_path, 0, f"cannot read: {e.strerror or e}") from None
        return self.render_static(rel_path) if self.is_template(raw) else raw

    def dependencies(self, rel_path: str) -> set[str]:
        """Site-relative paths of the template files the cached renders of ``rel_path`` used
        (the page itself included); empty when it has not been rendered."""
        found: set[str] = set()
        for (page, _, _), entry in self._cache.items():
            if page == rel_path:
                found.update(site_relative(self.root, filename) for filename in entry.deps)
        return found

    def clear(self) -> None:
        self._cache.clear()

    @property
    def cached(self) -> int:
        """Number of rendered pages held."""
        return len(self._cache)

    def _unchanged(self, deps: dict[str, Signature]) -> bool:
        return all(file_signature(filename) == signature for filename, signature in deps.items())

    def _render_uncached(
        self, rel_path: str, request: RequestLike
    ) -> tuple[bytes, dict[str, Signature], bool]:
        filename = site_file(self.root, rel_path)
        if filename is None:
            raise TemplateError(rel_path, 0, "not a valid template path")
        signature = file_signature(filename)
        try:
            with open(filename, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise TemplateError(rel_path, 0, f"cannot read: {e.strerror or e}") from None
        if not self.is_template(raw):
            return raw, {filename: signature}, True

        page_request = PageRequest(request)
        text, deps = self.engine.render(rel_path, page_request)
        self.private.update(site_relative(self.root, dep) for dep in deps if dep != filename)
        return text.encode("utf-8"), deps, not page_request.headers.consulted

    # -- which files are templates ---------------------------------------------------------

    def _exists(self, name: str) -> bool:
        filename = site_file(self.root, name)  # None: ".." and the like, not a name of the site
        return filename is not None and os.path.isfile(filename)

    def is_template(self, source: bytes) -> bool:
        """Whether a page with this source is rendered (see the module doc for the rule)."""
        if not has_template_syntax(source):
            return False
        if self.mode is True:
            return True
        return any(self._exists(name) for name in template_references(source))

    def renders(self, rel_path: str) -> bool | None:
        """Whether the page ``rel_path`` is answered through ``render``: True for a template,
        False for a plain file, None while that cannot be told yet (it has template syntax and the
        survey, which finds the template-only files, is not done)."""
        try:
            with open(os.path.join(self.root, rel_path), "rb") as f:
                raw = f.read()
        except OSError:
            return False  # vanished: the static layer answers 404
        if not has_template_syntax(raw):
            return False
        if self._survey is None and (self.mode is True or b"{%" in raw):
            return None
        return self.is_template(raw)

    @property
    def surveyed(self) -> bool:
        return self._survey is not None

    def when_surveyed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the survey is done (at once if it is)."""
        if self._survey is not None:
            callback()
        else:
            self._waiting.append(callback)

    def survey_steps(self) -> Iterator[None]:
        """Read every HTML file once, one per step: the template pages, and the template-only
        files they pull in (private from the moment they are found).  Then the requests that
        waited for it go on."""
        pages: list[str] = []
        template_only: set[str] = set()
        files = 0
        try:
            for rel_path in self.iter_template_files():
                files += 1
                try:
                    with open(os.path.join(self.root, rel_path), "rb") as f:
                        raw = f.read()
                except OSError:
                    continue
                if self.is_template(raw):
                    pages.append(rel_path)
                    self._pull_in(template_references(raw), template_only)
                yield
        finally:  # done, cancelled or failed: the requests waiting for it must not wait forever
            # A template-only file or one of a mounted app's templates is not a page of the site.
            self._survey = TemplateScan([p for p in pages if p not in template_only and p not in self.private],
                                        template_only, files)
            waiting, self._waiting = self._waiting, []
            for callback in waiting:
                callback()

    def _pull_in(self, names: list[str], template_only: set[str]) -> None:
        """The files named, their layouts and partials (transitively): template-only."""
        pending = list(names)
        while pending:
            name = pending.pop()
            if name in template_only or not self._exists(name):
                continue
            template_only.add(name)
            self.private.add(name)
            try:
                with open(os.path.join(self.root, name), "rb") as f:  # _exists checked the name
                    pending += template_references(f.read())
            except OSError:
                continue

    def scan(self) -> TemplateScan:
        """The survey, done at once (if it was not): what commands that read the whole site use."""
        if self._survey is None:
            for _ in self.survey_steps():
                pass
        assert self._survey is not None
        return self._survey

    # -- checking --------------------------------------------------------------------------

    def template_files(self) -> list[str]:
        """Site-relative paths of every template in the site, ``_`` folders included (dot
        folders such as .git are not the site's)."""
        return list(self.iter_template_files())

    def iter_template_files(self) -> Iterator[str]:
        return (rel for rel, _ in iter_tree(str(self.root)) if is_template_path(rel))

    def check_all(self, scan: TemplateScan | None = None) -> list[TemplateError]:
        """Compile every template (the template pages and what they pull in; with ``mode`` True
        every file with Jinja syntax) and check that the templates it names (extends, include,
        import with a constant name) exist; return every problem found."""
        errors: list[TemplateError] = []
        if scan is None:
            scan = self.scan()
        wanted = set(scan.pages) | scan.template_only
        for rel_path in self.template_files():
            if self.mode is not True and rel_path not in wanted:
                continue  # a plain page: served byte for byte
            try:
                with open(os.path.join(self.root, rel_path), "rb") as f:
                    if not has_template_syntax(f.read()):
                        continue  # served byte for byte, whatever its encoding
            except OSError as e:
                errors.append(TemplateError(rel_path, 0, f"cannot read: {e.strerror or e}"))
                continue
            errors.extend(self.engine.check(rel_path))
        return errors
