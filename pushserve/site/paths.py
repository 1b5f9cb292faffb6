"""The one place that decides which URL paths reach which files of the site, and what a page is.

Used by the static files and by the push manifest alike, so a resource is announced only when
a request for it would be served.  The rules:

- a request path is percent-decoded exactly once; encoded slashes, backslashes, NUL, CR, LF and
  invalid UTF-8 are refused (400); any other character may name a file, a tab as well
  (``tab%09x.txt``), as nginx serves it;
- ``.`` segments are dropped (``/./index.html`` is ``/index.html``, as in nginx); ``..`` segments
  and dotfiles (names starting with ``.``) are never served (404), except the ``.well-known/``
  folder (ACME challenges, ``security.txt``); every other name is served whatever its first
  character, so generator output (``_static/``, ``_next/``, ``_astro/``, ``_app/``) works;
- the site's own private files are never served either (404): ``pushserve.toml``, every file or
  folder the configuration names (certificate, key, dictionary and reload folders...), the
  package folders of mounted apps, and template-only files (layouts and partials pages extend,
  include or import); the owner of a ``SitePaths`` fills ``private`` (site/manifest_load.py's
  ``site_private``);
- a file's realpath must lie under the realpath of the root, so a symlink pointing out of the
  site answers 404, never its contents — unless the site's owner trusts the tree
  (``--follow-symlinks``, nginx's and Caddy's default); the start and ``pushserve check`` name the
  symlinks that lead out, so a refused one never fails in silence; nor may its realpath be
  private (a symlink to a private file is as private as the file);
- a page is an ``.html`` or ``.htm`` file that may be served; ``404.html`` is rendered like a page
  (it answers for missing paths) but is never navigated to, so it has no manifest entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote

_HEX = frozenset(b"0123456789abcdefABCDEF")
PAGE_SUFFIXES = (".html", ".htm")
NOT_FOUND_PAGE = "404.html"
WELL_KNOWN = ".well-known"


class BadPath(Exception):
    """A request path that is refused: ``status`` 400 (malformed) or 404 (not servable)."""

    def __init__(self, status: int, note: str, url_path: str = "") -> None:
        super().__init__(note)
        self.status = status
        self.note = note
        self.url_path = url_path


def decode_path(raw: bytes) -> str:
    """Percent-decode a request path once and check it; raises BadPath."""
    if not raw.startswith(b"/"):
        raise BadPath(400, "bad path")
    if b"%" in raw:
        parts = raw.split(b"%")
        out = bytearray(parts[0])
        for part in parts[1:]:
            if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
                raise BadPath(400, "bad percent-encoding")
            byte = int(part[:2], 16)
            if byte == 0x2F:  # %2f would turn one segment into two after decoding
                raise BadPath(400, "encoded slash")
            out.append(byte)
            out += part[2:]
        decoded = bytes(out)
    else:
        decoded = raw
    if b"\\" in decoded:
        raise BadPath(400, "backslash")
    if b"\0" in decoded or b"\r" in decoded or b"\n" in decoded:
        # NUL: C strings end there, no file name holds one; CR and LF: never a header's, anywhere.
        raise BadPath(400, "control character")
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath(400, "invalid utf-8") from None


def is_private(name: str) -> bool:
    """A file or folder name that is never served, whatever the site: dotfiles (``.git``,
    ``.env``), but not ``.well-known``."""
    return name.startswith(".") and name != WELL_KNOWN


class PrivateFiles:
    """Site-relative files and folders of one site that are never served.  A set the owner
    updates (template-only files become known as templates are read); a folder covers all under it."""

    __slots__ = ("_paths", "version")

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._paths: set[str] = {p.strip("/") for p in paths if p.strip("/")}
        self.version = 0  # grows with each path added, so caches of answers know to drop them

    def add(self, rel_path: str) -> None:
        path = rel_path.strip("/")
        if path and path not in self._paths:
            self._paths.add(path)
            self.version += 1

    def update(self, rel_paths: Iterable[str]) -> None:
        for rel_path in rel_paths:
            self.add(rel_path)

    def __contains__(self, rel_path: object) -> bool:
        """True for a listed path and for anything under a listed folder."""
        if not isinstance(rel_path, str) or not self._paths:
            return False
        path = rel_path.strip("/")
        while path:
            if path in self._paths:
                return True
            path = path.rpartition("/")[0]
        return False

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._paths))


def segments(url_path: str) -> list[str]:
    """The decoded path's segments, empty and ``.`` ones dropped; raises BadPath for ``..`` and
    private names."""
    segs = [s for s in url_path.split("/") if s and s != "."]
    for s in segs:
        if s == "..":
            raise BadPath(404, "traversal", url_path)
        if is_private(s):
            raise BadPath(404, "hidden", url_path)
    return segs


def _parts(rel_path: str) -> list[str]:
    return [part for part in rel_path.split("/") if part and part != "."]


def is_page(rel_path: str) -> bool:
    """A site-relative path of an HTML page that may be served (404.html included).  Name only."""
    if not rel_path.lower().endswith(PAGE_SUFFIXES):
        return False
    parts = _parts(rel_path)
    return bool(parts) and not any(part == ".." or is_private(part) for part in parts)


def is_manifest_page(rel_path: str) -> bool:
    """A page a browser navigates to, so the push manifest has an entry for it."""
    return is_page(rel_path) and rel_path.rstrip("/").rpartition("/")[2] != NOT_FOUND_PAGE


def page_url(rel_path: str) -> str:
    """The URL path a page is served at: ``index.html`` → ``/``, ``a/index.html`` → ``/a/``."""
    parts = _parts(rel_path)
    if parts and parts[-1] == "index.html":
        return "/" + "".join(part + "/" for part in parts[:-1])
    return "/" + "/".join(parts)


def rel_path(url_path: str) -> str:
    """Site-relative path of a URL path ("/css/a%20b.css" → "css/a b.css"), for dependency
    bookkeeping only (serving goes through ``SitePaths.resolve``)."""
    return unquote(url_path.split("?", 1)[0]).lstrip("/")


class SitePaths:
    """The root of a site and the guard that keeps every file lookup under it."""

    def __init__(self, root: Path | str, private: PrivateFiles | None = None, *,
                 follow_symlinks: bool = False) -> None:
        self.root = os.path.abspath(root)
        self.real_root = os.path.realpath(root)
        self.private = private if private is not None else PrivateFiles()
        self.follow_symlinks = follow_symlinks

    def servable(self, rel_path: str, fs_path: str | None = None) -> bool:
        """False for the site's own private files (the name rule is ``segments``'s), by their
        site-relative path and, given the file's ``fs_path``, by its real name too (a symlink to
        the key is as private as the key)."""
        if rel_path in self.private:
            return False
        name = self.real_name(fs_path) if fs_path is not None else None
        return name is None or name not in self.private

    def real_name(self, path: str | Path) -> str | None:
        """``path``'s site-relative name ("/"-separated) after symlinks: "" for the root itself,
        None when it lies outside the site."""
        real = os.path.realpath(path)
        root = self.real_root
        if real != root and os.path.commonpath((root, real)) != root:
            # The site folder may be a symlink a deploy has just switched (site -> releases/42):
            # the root is where it points now.
            now = os.path.realpath(self.root)
            if now == root:
                return None
            self.real_root = root = now
            if real != root and os.path.commonpath((root, real)) != root:
                return None
        return "" if real == root else os.path.relpath(real, root).replace(os.sep, "/")

    def inside(self, fs_path: str) -> bool:
        """True when ``fs_path`` (after symlinks) lies under the root, or symlinks are followed."""
        return self.follow_symlinks or self.real_name(fs_path) is not None

    def resolve(self, url_path: str) -> Path | None:
        """The file a GET of ``url_path`` (query and fragment ignored) would serve, or None when
        no servable file of the site answers it.  Directories are not followed to index.html."""
        path = url_path.split("#", 1)[0].split("?", 1)[0]
        try:
            segs = segments(decode_path(path.encode("utf-8")))
        except (BadPath, UnicodeEncodeError):
            return None
        fs_path = os.path.join(self.root, *segs)
        if not segs or not self.servable("/".join(segs), fs_path):
            return None
        if not self.inside(fs_path) or not os.path.isfile(fs_path):
            return None
        return Path(os.path.realpath(fs_path))

    def exists(self, url_path: str) -> bool:
        return self.resolve(url_path) is not None

    def read(self, url_path: str) -> bytes:
        path = self.resolve(url_path)
        if path is None:
            raise FileNotFoundError(url_path)
        return path.read_bytes()

    def walk_pages(self) -> list[str]:
        """Site-relative paths of the pages a browser navigates to, sorted."""
        return list(self.iter_pages())

    def iter_pages(self) -> Iterator[str]:
        """``walk_pages`` a directory at a time."""
        return (rel for rel in self.iter_files() if is_manifest_page(rel) and self.servable(rel))

    def walk_files(self) -> list[str]:
        """Site-relative paths of every file under the root outside dot folders, sorted (one
        directory walk; ``.well-known`` holds no pages, so it is skipped too)."""
        return list(self.iter_files())

    def iter_files(self) -> Iterator[str]:
        """``walk_files`` a directory at a time."""
        return (rel for rel, entry in iter_tree(self.root) if _is_file(entry))


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def iter_tree(root: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(site-relative path, directory entry) of everything under ``root`` but folders and dot
    names, sorted by path, one directory read at a time: files, and symlinks whatever they point
    at (a symlinked folder is not entered, as ``os.walk`` does not)."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        folders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if folder:
                folders.append(rel)
            else:
                yield rel, entry
        stack.extend(reversed(folders))
