"""Static files from the site folder: a per-process cache of stat results, ETags, prebuilt
headers and small bodies; conditional requests, single ranges, precompressed siblings.

Two dictionaries make up the cache:

- ``_routes``: the raw request path (bytes, before ``?``) -> what it resolved to (a file entry,
  a redirect, or an error).  A hit skips percent-decoding, validation and path joining, so the
  hot path for a cached small file is: dict lookup -> monotonic compare -> prebuilt headers and
  the body held in memory.
- ``_entries``: site-relative file path -> FileEntry, shared by all the spellings of a URL that
  reach the same file ("/" and "/index.html"), and what ``entry()`` hands the push layer.

Freshness: an entry is trusted for ``revalidate_after`` seconds (time.monotonic), then the file
and its siblings are stat()ed again; any change in size, mtime, inode or sibling set resolves the
path from scratch.  Negative answers (404, 301, 400) are cached for the same interval.

Safety: every path goes through site/paths.py (decoded once, no `..`, no private names, the
realpath guard), the same rules the push manifest uses.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pushserve.http import codings, conditional
from pushserve.http.dates import http_date
from pushserve.http.mime import content_type
from pushserve.http.ranges import UNSATISFIABLE, parse_range, unsatisfied_range
from pushserve.http.response import Response, plain_response
from pushserve.protocol.events import Headers, SizedBody, close_body
from pushserve.site.compress import WHOLE_LIMIT, Coded, Compressor
from pushserve.site.paths import PAGE_SUFFIXES, BadPath, PrivateFiles, SitePaths, decode_path, is_page, segments
from pushserve.site.template_files import TemplateError

log = logging.getLogger("pushserve")

CHUNK_SIZE = 64 * 1024
ALLOW = b"GET, HEAD, OPTIONS"

# Bounds on memory an unlucky or hostile request mix can make the cache use: every distinct
# raw path spelling gets a route, so the route table is simply emptied when it grows too big.
_MAX_ROUTES = 8192
_MAX_RENDERED_ETAGS = 256  # distinct rendered outputs remembered (pages x query strings)
_MAX_ACCEPT_ENCODINGS = 256

# Precompressed siblings, in the order preferred when the client weighs them equally.  They win
# over compressing on the fly while they are at least as new as their file.
_SIBLINGS: tuple[tuple[str, bytes], ...] = ((".br", b"br"), (".zst", b"zstd"), (".gz", b"gzip"))
_SIBLING_CODINGS = tuple(c for _, c in _SIBLINGS)
_warned_stale: set[str] = set()  # older siblings already warned about (once per path)

# Request headers the slow path looks at; everything else is skipped by one set lookup.
_VALIDATORS = frozenset((b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since"))
_WANTED = _VALIDATORS | {b"if-range", b"range", b"accept-encoding", b"available-dictionary"}


_HTML_TYPE = content_type("x.html")
_PLAIN_TYPE = b"text/plain; charset=utf-8"
_NOT_FOUND_BODY = b"404 Not Found\n"


@dataclass(frozen=True, slots=True)
class RenderRequest:
    """What a page renderer may know about the request."""

    path: str  # the decoded URL path ("/blog/")
    query: bytes  # raw query string, without "?"
    headers: Headers


@dataclass(slots=True, kw_only=True)
class Representation:
    """One set of bytes a URL can be answered with: the file itself or a precompressed sibling."""

    fs_path: str
    size: int
    mtime: float
    etag: bytes  # strong, quoted
    encoding: bytes = b""  # content-encoding; b"" for the file itself
    body: bytes | None = None  # the whole file when it is small
    headers: Headers = field(default_factory=list)  # complete header list of a 200
    headers_304: Headers = field(default_factory=list)
    # Headers after content-type/content-length, reused for 206 answers.
    tail: Headers = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class FileEntry(Representation):
    """A cached file: the identity representation plus what the push layer and the cache need."""

    rel_path: str  # site-relative, "/"-separated: "css/site.css"
    content_type: bytes
    real_path: str
    variants: tuple[Representation, ...] = ()  # .br / .gz siblings, in preference order
    rendered: bool = False  # an .html page answered through render_page
    compress: bool = False  # may be compressed on the fly (type, size, not rendered)
    dictionary: bool = False  # offered as a dictionary for its next versions (Use-As-Dictionary)
    checked_at: float = 0.0  # time.monotonic() of the last stat
    fingerprint: tuple[tuple[int, int, int, int] | None, ...] = ()


@dataclass(slots=True)
class _Route:
    """What a raw path resolved to.  Exactly one of ``entry`` / ``status`` is meaningful."""

    url_path: str  # decoded path, for RenderRequest and 404 pages; "" when undecodable
    entry: FileEntry | None = None
    status: int = 0  # 301, 400 or 404 when there is no entry
    note: str = ""
    expires: float = 0.0  # monotonic deadline, for negative answers
    pending: bool = False  # a page that cannot be answered yet (renders said None)


@dataclass(slots=True)
class Lookup:
    """A request target resolved against the site, with the request headers that matter here.

    A file's answer is made by ``lookup`` itself (the hot path: one call); a page is left for
    ``answer``, so the caller can announce what the page needs before the page is made, and so
    is every error (a 404 page may be a template)."""

    route: _Route
    raw: bytes  # the path as sent, before "?"
    query: bytes
    has_query: bool
    headers: Headers
    found: dict[bytes, bytes] | None  # the _WANTED headers, None when there are none
    page: str | None = None  # site-relative path of the HTML page this serves, else None
    response: Response | None = None  # the answer, when it is a file's (not a page, not an error)

    @property
    def pending(self) -> bool:
        """Not answerable yet: ask again once the site's survey is done (SiteContent.when_ready)."""
        return self.route.pending

    @property
    def conditional(self) -> bool:
        """A revalidation: its answer may be a 304, so nothing is announced ahead of it."""
        found = self.found
        return found is not None and (b"if-none-match" in found or b"if-modified-since" in found)


class FileChanged(OSError):
    """A file ended before the bytes its response promised: it was truncated (or rewritten in
    place) while being sent.  The protocol layer cuts the response off (closes the HTTP/1.1
    connection, resets the HTTP/2 or HTTP/3 stream) rather than let the client take short bytes
    for whole."""


class FileChunks(SizedBody):
    """A file body read as it is sent, for files too big to keep in memory.

    The file is opened here (so a vanished file is noticed while the response can still be a
    404) and closed once ``length`` bytes are read, on ``close()`` (a reset stream), or when it
    ends too early (FileChanged).
    """

    __slots__ = ("_end", "_file", "_path", "_remaining")
    CHUNK = CHUNK_SIZE

    def __init__(self, path: str, start: int = 0, length: int | None = None) -> None:
        self._file: io.FileIO | None = None  # set first: __del__ runs even when open() fails
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - lifetime is the iterator's
        try:
            if start:
                f.seek(start)
            self._remaining = os.fstat(f.fileno()).st_size - start if length is None else length
        except BaseException:
            f.close()
            raise
        self._file = f
        self._path = path
        self._end = start + self._remaining

    def read(self, n: int) -> bytes:
        f = self._file
        if f is None:
            return b""
        if self._remaining <= 0:
            self.close()
            return b""
        data = f.read(min(n, self._remaining))
        if not data:  # the file shrank under us
            self.close()
            raise FileChanged(f"{self._path} ended at byte {self._end - self._remaining} of "
                              f"{self._end}: it changed while being sent (deploy by renaming files "
                              f"into place)")
        self._remaining -= len(data)
        if self._remaining <= 0:
            self.close()
        return data

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()

    def __del__(self) -> None:
        self.close()


class _Vanished(Exception):
    pass


class _NoDescriptor(Exception):
    """A file could not be opened for want of a file descriptor: 503, not 404."""


def _open_failed(e: OSError) -> Exception:
    return _NoDescriptor() if e.errno in (errno.EMFILE, errno.ENFILE) else _Vanished()


def _fingerprint(st: os.stat_result | None) -> tuple[int, int, int, int] | None:
    return None if st is None else (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _stat_file(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if stat.S_ISREG(st.st_mode) else None


class StaticSite:
    """Answers GET/HEAD/OPTIONS for the files under ``root``."""

    def __init__(self, root: Path, *, render_page: Callable[[str, RenderRequest], bytes] | None = None,
                 renders: Callable[[str], bool | None] | None = None,
                 small_file_limit: int = 256 * 1024, revalidate_after: float = 1.0,
                 cache_control: bytes = b"no-cache", page_cache_control: bytes = b"no-cache",
                 compressor: Compressor | None = None, private: PrivateFiles | None = None,
                 follow_symlinks: bool = False,
                 render_error: Callable[[TemplateError], Response] | None = None) -> None:
        if not os.path.isdir(root):
            raise ValueError(f"site folder {root} is not a directory")
        self.paths = SitePaths(root, private, follow_symlinks=follow_symlinks)
        self.root = self.paths.root
        self.render_page = render_page
        # Which pages go through render_page (None: every page, when there is one): True, False,
        # or None for "not known yet" (the request waits, see Lookup.pending).
        self.renders = renders
        self.render_error = render_error  # the page answering a template that does not render
        self.small_file_limit = small_file_limit
        self.revalidate_after = revalidate_after
        self.cache_control = cache_control
        # HTML pages are revalidated on every visit (cheap: ETag → 304) while the assets they link
        # may be cached: a browser only profits from Early Hints when the hinted responses are fresh
        # in its cache by the time the page asks for them.
        self.page_cache_control = page_cache_control
        self.compressor = compressor
        self._etags: dict[bytes, bytes] = {}  # rendered output → its ETag
        self._routes: dict[bytes, _Route] = {}
        self._entries: dict[str, FileEntry] = {}
        self._accept: dict[bytes, tuple[bytes, ...]] = {}
        self._private_version = self.paths.private.version

    # -- public -------------------------------------------------------------------------------

    def serve(self, method: bytes, target: bytes, headers: Headers) -> Response:
        """The answer to a request, in one call (for callers that announce nothing)."""
        lookup = self.lookup(method, target, headers)
        return lookup.response if lookup.response is not None else self.answer(method, lookup)

    def lookup(self, method: bytes, target: bytes, headers: Headers) -> Lookup:
        """Resolve a request target (one cache lookup), pick out the request headers that matter
        here (one pass over them; usually none is present) and, for a file, answer it."""
        q = target.find(b"?")
        raw, query = (target, b"") if q < 0 else (target[:q], target[q + 1:])
        found: dict[bytes, bytes] | None = None
        for name, value in headers:
            if name in _WANTED:
                if found is None:
                    found = {}
                prev = found.get(name)
                found[name] = value if prev is None else prev + b", " + value
        route = self._route(raw, time.monotonic())
        lookup = Lookup(route, raw, query, q >= 0, headers, found)
        entry = route.entry
        if entry is not None:
            if entry.rendered or entry.content_type.startswith(b"text/html"):
                lookup.page = entry.rel_path
            else:
                lookup.response = self.answer(method, lookup)
        return lookup

    def answer(self, method: bytes, lookup: Lookup) -> Response:
        """The response to a looked-up request; a template that fails to render is answered with
        ``render_error``'s page when one was given."""
        try:
            if method != b"GET" and method != b"HEAD":
                if method == b"OPTIONS":
                    return Response(204, [(b"allow", ALLOW)])
                return Response(405, [(b"allow", ALLOW), (b"content-length", b"0")], b"",
                                note="method not allowed")
            route, query, headers, found = lookup.route, lookup.query, lookup.headers, lookup.found
            entry = route.entry
            if entry is None:
                if route.pending:  # only a push or an in-memory caller gets here: a browser waits
                    return Response(503, [(b"retry-after", b"1"), (b"content-length", b"0")], b"",
                                    note="not ready")
                if route.status == 301:
                    # One leading slash: "//docs/" would send the browser to the host "docs".
                    location = b"/" + lookup.raw.lstrip(b"/") + b"/" + (b"?" + query if lookup.has_query else b"")
                    return Response(301, [(b"location", location), (b"content-length", b"0")],
                                    None if method == b"HEAD" else b"", note=route.note)
                if route.status == 400:
                    return _plain(method, 400, b"400 Bad Request\n", route.note)
                if route.status == 503:
                    return _unavailable(method, route.note)
                return self._not_found(method, route.url_path, query, headers, route.note)
            if entry.rendered:
                return self._serve_rendered(method, entry, route.url_path, query, headers, found)
            rep: Representation = entry
            try:
                if found is None:  # the hot path
                    body = rep.body  # _body(rep)'s first rule, without its call (hot path)
                    return Response(200, list(rep.headers), None if method == b"HEAD" else
                                    body if body is not None else self._body(rep), source=entry.rel_path)
                ae = found.get(b"accept-encoding")
                if ae is not None:
                    if entry.variants:
                        rep = self._negotiate(entry, ae)
                    # Range gets identity bytes, so a 206 is a slice of the file itself.
                    if rep is entry and entry.compress and (method != b"GET" or b"range" not in found):
                        assert self.compressor is not None
                        coded = self.compressor.choose(
                            ae, entry.etag, found.get(b"available-dictionary") if entry.dictionary else None)
                        if coded is not None:
                            return self._serve_coded(method, entry, coded, found)
                return self._serve_conditional(method, entry, rep, found)
            except _Vanished:
                # A large file removed inside the revalidation interval: forget it, answer 404.
                self.invalidate(entry.fs_path)
                return self._not_found(method, route.url_path, query, headers, "vanished")
            except _NoDescriptor:
                return _unavailable(method, "out of file descriptors")
        except TemplateError as e:
            if self.render_error is None:
                raise
            return self.render_error(e)

    def entry(self, url_path: str) -> FileEntry | None:
        """The fresh cache entry a URL path ("/css/site.css", "/docs/") serves, or None."""
        raw = url_path.partition("?")[0].encode("utf-8")
        return self._route(raw, time.monotonic()).entry

    def invalidate(self, path: str | Path | None = None) -> None:
        """Forget cached state: everything, or what concerns one file (absolute, or relative to
        the root).  Negative answers are dropped too, since a new file may now satisfy them."""
        if path is None:
            self._routes.clear()
            self._entries.clear()
            return
        p = os.path.join(self.root, path)  # an absolute `path` replaces the root
        gone = {os.path.abspath(p), os.path.realpath(p)}
        for suffix, _ in _SIBLINGS:  # a changed sibling changes its file's entry
            gone |= {g.removesuffix(suffix) for g in gone}

        def stale(e: FileEntry) -> bool:
            return e.fs_path in gone or e.real_path in gone

        self._entries = {k: e for k, e in self._entries.items() if not stale(e)}
        self._routes = {k: r for k, r in self._routes.items() if r.entry is not None and not stale(r.entry)}

    # -- lookup -------------------------------------------------------------------------------

    def _route(self, raw: bytes, now: float) -> _Route:
        if self.paths.private.version != self._private_version:  # a file became private (a new layout)
            self._private_version = self.paths.private.version
            self._routes.clear()
        route = self._routes.get(raw)
        if route is not None:
            entry = route.entry
            if entry is None:
                if now < route.expires:
                    return route
            elif now - entry.checked_at < self.revalidate_after:
                return route
            elif self._still_fresh(entry):
                entry.checked_at = now
                return route
        route = self._resolve(raw, now)
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        self._routes[raw] = route
        return route

    def _still_fresh(self, entry: FileEntry) -> bool:
        """Whether the file and its siblings look as they did when the entry was built."""
        return self._stat_all(entry.fs_path) == entry.fingerprint

    def _stat_all(self, fs_path: str) -> tuple[tuple[int, int, int, int] | None, ...]:
        main = _stat_file(fs_path)
        if main is None:
            return (None,)
        if self.render_page is not None and self.renders is None and fs_path.lower().endswith(PAGE_SUFFIXES):
            return (_fingerprint(main),)  # rendered pages never use siblings
        return (_fingerprint(main), *(_fingerprint(_stat_file(fs_path + s)) for s, _ in _SIBLINGS))

    def _resolve(self, raw: bytes, now: float) -> _Route:
        expires = now + self.revalidate_after
        try:
            url_path = decode_path(raw)
            segs = segments(url_path)
        except BadPath as e:
            return _Route(e.url_path, status=e.status, note=e.note, expires=expires)
        fs_path = os.path.join(self.root, *segs)
        if not self.paths.servable("/".join(segs), fs_path):
            return _Route(url_path, status=404, note="private", expires=expires)
        if not self.paths.inside(fs_path):
            return _Route(url_path, status=404, note="outside root", expires=expires)
        try:
            st = os.stat(fs_path)
        except (OSError, ValueError):
            return self._missing(url_path, expires)
        if stat.S_ISDIR(st.st_mode):
            segs.append("index.html")
            fs_path = os.path.join(fs_path, "index.html")
            if not self.paths.servable("/".join(segs), fs_path):
                return _Route(url_path, status=404, note="private", expires=expires)
            if not self.paths.inside(fs_path):  # index.html itself may be a symlink
                return _Route(url_path, status=404, note="outside root", expires=expires)
            if not url_path.endswith("/"):
                # /css -> /css/ only where /css/ answers: a folder without an index is a 404 at once.
                if _stat_file(fs_path) is None:
                    return _Route(url_path, status=404, note="folder without index.html", expires=expires)
                return _Route(url_path, status=301, note="directory", expires=expires)
        elif url_path.endswith("/"):  # nginx: a file does not answer with a trailing slash
            return _Route(url_path, status=404, expires=expires)
        rel_path = "/".join(segs)
        rendered = self.render_page is not None and is_page(rel_path)
        if rendered and self.renders is not None:
            kind = self.renders(rel_path)
            if kind is None:
                return _Route(url_path, pending=True, expires=now)
            rendered = kind
        try:
            entry = self._load(fs_path, rel_path, now, rendered)
        except _NoDescriptor:
            return _Route(url_path, status=503, note="out of file descriptors", expires=now)
        if entry is None:
            return self._missing(url_path, expires)
        return _Route(url_path, entry=entry)

    def _missing(self, url_path: str, expires: float) -> _Route:
        """No such file: 404, unless the whole site folder is gone (deleted, or a deploy is
        swapping it), which is the server's trouble and a passing one: 503."""
        if not os.path.isdir(self.root):
            return _Route(url_path, status=503, note="site folder missing", expires=expires)
        return _Route(url_path, status=404, expires=expires)

    def _load(self, fs_path: str, rel_path: str, now: float, rendered: bool) -> FileEntry | None:
        """The entry for a file: the cached one while it matches the disk, else a new one."""
        fingerprint = self._stat_all(fs_path)
        if fingerprint[0] is None:
            return None
        cached = self._entries.get(rel_path)
        if (cached is not None and cached.fingerprint == fingerprint and cached.fs_path == fs_path
                and cached.rendered == rendered):
            cached.checked_at = now
            return cached
        try:
            entry = self._build(fs_path, rel_path, fingerprint, now, rendered)
        except OSError as e:  # vanished or unreadable between stat and open
            if e.errno in (errno.EMFILE, errno.ENFILE):
                raise _NoDescriptor from None
            return None
        self._entries[rel_path] = entry
        return entry

    def _build(self, fs_path: str, rel_path: str,
               fingerprint: tuple[tuple[int, int, int, int] | None, ...], now: float, rendered: bool) -> FileEntry:
        ctype = content_type(rel_path)
        real = os.path.realpath(fs_path)
        if rendered:
            st = os.stat(fs_path)
            return FileEntry(fs_path=fs_path, real_path=real, rel_path=rel_path, content_type=ctype,
                             size=st.st_size, mtime=st.st_mtime, etag=_etag(st), rendered=True,
                             checked_at=now, fingerprint=fingerprint)
        main_fp = fingerprint[0]
        assert main_fp is not None
        siblings = [(fs_path + suffix, encoding)
                    for (suffix, encoding), fp in zip(_SIBLINGS, fingerprint[1:], strict=True)
                    if fp is not None and _sibling_current(fs_path + suffix, fp, main_fp)]
        size = main_fp[0]
        compressor = self.compressor
        compress = compressor is not None and compressor.applies(ctype, size)
        dictionary = compressor is not None and compressor.offers_dictionary(ctype, size)
        vary = compressor.vary(ctype, size) if compressor is not None else None
        if siblings and vary is None:
            vary = codings.VARY_CODING
        variants: list[Representation] = []
        for sibling, encoding in siblings:
            try:
                variants.append(self._representation(sibling, encoding, ctype, vary))
            except OSError:
                continue
        main = self._representation(fs_path, b"", ctype, vary, dictionary=dictionary, url_path="/" + rel_path)
        entry = FileEntry(fs_path=fs_path, real_path=real, rel_path=rel_path, content_type=ctype,
                          size=main.size, mtime=main.mtime, etag=main.etag, body=main.body,
                          headers=main.headers, headers_304=main.headers_304, tail=main.tail,
                          variants=tuple(variants), compress=compress, dictionary=dictionary,
                          checked_at=now, fingerprint=fingerprint)
        if dictionary:
            assert compressor is not None
            compressor.remember(entry.fs_path, entry.etag, entry.body, self._loader(entry))
        return entry

    def _representation(self, fs_path: str, encoding: bytes, ctype: bytes, vary: bytes | None, *,
                        dictionary: bool = False, url_path: str = "") -> Representation:
        with open(fs_path, "rb") as f:
            # fstat on the open file, so the metadata describes the bytes actually read.
            st = os.fstat(f.fileno())
            body = f.read() if st.st_size <= self.small_file_limit else None
        size = st.st_size if body is None else len(body)
        etag = _etag(st, encoding)
        cache_control = self.page_cache_control if ctype.startswith(b"text/html") else self.cache_control
        validators: Headers = [(b"etag", etag), (b"last-modified", http_date(st.st_mtime)),
                               (b"cache-control", cache_control)]
        if vary:
            validators.append((b"vary", vary))
        tail: Headers = [(b"accept-ranges", b"bytes"), *validators]
        if encoding:
            tail.insert(0, (b"content-encoding", encoding))
        headers: Headers = [(b"content-type", ctype), (b"content-length", b"%d" % size), *tail]
        if dictionary:
            assert self.compressor is not None
            headers.append((b"use-as-dictionary", self.compressor.dictionary_header(url_path, etag)))
        return Representation(fs_path=fs_path, size=size, mtime=st.st_mtime, etag=etag,
                              encoding=encoding, body=body, headers=headers,
                              headers_304=validators, tail=tail)

    # -- answers ------------------------------------------------------------------------------

    def _negotiate(self, entry: FileEntry, accept_encoding: bytes) -> Representation:
        prefs = self._accept.get(accept_encoding)
        if prefs is None:
            prefs = codings.preferences(accept_encoding, _SIBLING_CODINGS)
            if len(self._accept) >= _MAX_ACCEPT_ENCODINGS:
                self._accept.clear()
            self._accept[accept_encoding] = prefs
        for enc in prefs:
            for v in entry.variants:
                if v.encoding == enc:
                    return v
        return entry

    def _body(self, rep: Representation, start: int = 0, length: int | None = None) -> bytes | FileChunks:
        if rep.body is not None:
            return rep.body if length is None else rep.body[start:start + length]
        try:
            return FileChunks(rep.fs_path, start, rep.size - start if length is None else length)
        except OSError as e:
            raise _open_failed(e) from None

    @staticmethod
    def _preconditions(method: bytes, etag: bytes, mtime: float, found: dict[bytes, bytes],
                       headers_304: Headers, source: str) -> Response | None:
        """The 304 or 412 the request's validators call for, or None."""
        status = conditional.evaluate(
            method, etag=etag, last_modified=mtime,
            if_match=found.get(b"if-match"), if_none_match=found.get(b"if-none-match"),
            if_modified_since=found.get(b"if-modified-since"),
            if_unmodified_since=found.get(b"if-unmodified-since"))
        if status == 304:
            return Response(304, list(headers_304), source=source)
        if status == 412:
            return _plain(method, 412, b"412 Precondition Failed\n", "precondition failed")
        return None

    def _serve_conditional(self, method: bytes, entry: FileEntry, rep: Representation,
                           found: dict[bytes, bytes]) -> Response:
        if not _VALIDATORS.isdisjoint(found):  # most requests carry none (accept-encoding only)
            answer = self._preconditions(method, rep.etag, rep.mtime, found, rep.headers_304, entry.rel_path)
            if answer is not None:
                return answer
        range_value = found.get(b"range")
        # Range is defined for GET only (RFC 9110 §14.2); HEAD and friends get the whole 200.
        if range_value is not None and method == b"GET":
            if_range = found.get(b"if-range")
            if if_range is None or conditional.if_range_matches(if_range, etag=rep.etag,
                                                                last_modified=rep.mtime):
                r = parse_range(range_value, rep.size)
                if r is UNSATISFIABLE:
                    return Response(416, [(b"content-range", unsatisfied_range(rep.size)),
                                          (b"content-length", b"0")], b"", note="range not satisfiable")
                if r is not None:
                    headers = [(b"content-type", entry.content_type), (b"content-length", b"%d" % r.length),
                               (b"content-range", r.content_range(rep.size)), *rep.tail]
                    return Response(206, headers, self._body(rep, r.start, r.length), source=entry.rel_path)
        body = rep.body  # as above: h2load's accept-encoding alone brings every request here
        return Response(200, list(rep.headers), None if method == b"HEAD" else
                        body if body is not None else self._body(rep), source=entry.rel_path)

    def _serve_coded(self, method: bytes, entry: FileEntry, coded: Coded, found: dict[bytes, bytes]) -> Response:
        """A file compressed on the fly: its own ETag (so 304s work per coding), the identity's
        other validators, no ranges."""
        assert self.compressor is not None
        validators: Headers = [(b"etag", coded.etag), *(h for h in entry.headers_304 if h[0] != b"etag")]
        answer = self._preconditions(method, coded.etag, entry.mtime, found, validators, entry.rel_path)
        if answer is not None:
            return answer
        headers: Headers = [(b"content-type", entry.content_type), (b"content-encoding", coded.coding)]
        body: bytes | Iterator[bytes]
        if entry.body is None and entry.size > WHOLE_LIMIT:
            try:  # length unknown: chunked on HTTP/1.1
                body = self.compressor.stream(coded.coding, FileChunks(entry.fs_path))
            except OSError as e:
                raise _open_failed(e) from None
        else:
            try:
                body = self.compressor.body(coded, entry.fs_path, self._loader(entry))
            except OSError as e:
                raise _open_failed(e) from None
            headers.append((b"content-length", b"%d" % len(body)))
        headers += validators
        headers += (h for h in entry.headers if h[0] == b"use-as-dictionary")
        if method == b"HEAD" and not isinstance(body, bytes):
            close_body(body)
        return Response(200, headers, None if method == b"HEAD" else body, source=entry.rel_path)

    @staticmethod
    def _loader(entry: FileEntry) -> Callable[[], bytes]:
        """The file's bytes: held ones, or read when asked (in a thread, for the store)."""
        held = entry.body
        if held is not None:
            return lambda: held

        def read() -> bytes:
            with open(entry.fs_path, "rb") as f:
                return f.read()
        return read

    def _serve_rendered(self, method: bytes, entry: FileEntry, url_path: str, query: bytes,
                        headers: Headers, found: dict[bytes, bytes] | None) -> Response:
        assert self.render_page is not None
        body = self.render_page(entry.rel_path, RenderRequest(url_path, query, headers))
        etag = self._rendered_etag(body)
        coded = None
        compressor = self.compressor
        vary = compressor.vary(entry.content_type, len(body)) if compressor is not None else None
        if vary is not None and found is not None:
            assert compressor is not None
            ae = found.get(b"accept-encoding")
            coded = compressor.choose(ae, etag) if ae is not None else None
            if coded is not None:
                etag = coded.etag
        validators: Headers = [(b"etag", etag), (b"cache-control", self.page_cache_control)]
        if vary is not None:
            validators.append((b"vary", codings.VARY_CODING))
        if found is not None:
            status = conditional.evaluate(
                method, etag=etag, last_modified=None,
                if_match=found.get(b"if-match"), if_none_match=found.get(b"if-none-match"))
            if status == 304:
                return Response(304, validators, source=entry.rel_path)
            if status == 412:
                return _plain(method, 412, b"412 Precondition Failed\n", "precondition failed")
        if coded is not None:
            assert compressor is not None
            # Once per rendering: the template layer keeps its output while it is valid.
            page = body
            body = compressor.body(coded, entry.rel_path, lambda: page, keep_best=False)
            validators.append((b"content-encoding", coded.coding))
        out: Headers = [(b"content-type", entry.content_type), (b"content-length", b"%d" % len(body)),
                        *validators]
        return Response(200, out, None if method == b"HEAD" else body, source=entry.rel_path)

    def _rendered_etag(self, body: bytes) -> bytes:
        """The ETag has to follow the output, which depends on more than the template file.  The
        template layer hands out the same bytes object while its cached output is valid, and a
        bytes object keeps its hash, so a page is digested once per rendering, not per request."""
        etag = self._etags.get(body)
        if etag is None:
            if len(self._etags) >= _MAX_RENDERED_ETAGS:
                self._etags.clear()
            import hashlib  # here, on first use: importing it costs a worker ~0.6 MiB (OpenSSL digests)

            etag = self._etags[body] = b'"r%s"' % hashlib.blake2b(body, digest_size=12).hexdigest().encode()
        return etag

    def _not_found(self, method: bytes, url_path: str, query: bytes, headers: Headers,
                   note: str) -> Response:
        page = self._route(b"/404.html", time.monotonic()).entry
        body: bytes | None = None
        ctype = _HTML_TYPE
        source = None
        if page is not None:
            source = page.rel_path
            if page.rendered and self.render_page is not None:
                body = self.render_page(page.rel_path, RenderRequest(url_path, query, headers))
            elif page.body is not None:
                body = page.body
            else:
                try:
                    with open(page.fs_path, "rb") as f:
                        body = f.read()
                except OSError:
                    body = None
        if body is None:
            body, ctype, source = _NOT_FOUND_BODY, _PLAIN_TYPE, None
        out: Headers = [(b"content-type", ctype), (b"content-length", b"%d" % len(body)),
                        (b"cache-control", b"no-cache")]
        return Response(404, out, None if method == b"HEAD" else body, source=source, note=note)


def _sibling_current(path: str, sibling: tuple[int, int, int, int], main: tuple[int, int, int, int]) -> bool:
    """A hand-made .br/.gz/.zst is used while it is at least as new as its file; an older one
    would send stale content, so it is ignored (and the user told, once)."""
    if sibling[1] >= main[1]:
        return True
    if path not in _warned_stale:
        _warned_stale.add(path)
        log.warning("%s is older than its file: ignored (compressing on the fly instead)", path)
    return False


def _etag(st: os.stat_result, encoding: bytes = b"") -> bytes:
    """Strong ETag from size and mtime: no hashing, and it changes whenever the file does."""
    suffix = b"-" + encoding if encoding else b""
    return b'"%x-%x%s"' % (st.st_mtime_ns, st.st_size, suffix)


def _plain(method: bytes, status: int, text: bytes, note: str) -> Response:
    return plain_response(status, text, note=note, head=method == b"HEAD")


def _unavailable(method: bytes, note: str) -> Response:
    return plain_response(503, b"503 Service Unavailable: retry shortly\n", note=note, head=method == b"HEAD",
                          extra=[(b"retry-after", b"1")])
