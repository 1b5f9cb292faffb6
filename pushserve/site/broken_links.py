"""Links that lead to no file of the site, named where they are written.

The push manifest notes each link it could not follow with what named it (a page, a stylesheet,
a module) and the URL.  A page's HTML may come from a layout, so the link is looked for in the
page's own file and then in the templates it is made from: a stylesheet missing from a layout is
one problem at ``_layouts/base.html:7``, carried by every page that extends it, not one per page.
``pushserve check``, the dev overview ``/_pushserve/`` and the log all report these the same way,
from here: add a new reason a link is broken to ``why_broken``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote

from pushserve.site.manifest_store import PushManifest
from pushserve.site.paths import BadPath, SitePaths, decode_path, segments


@dataclass(frozen=True, slots=True)
class BrokenLink:
    file: str  # site-relative: where the link is written
    line: int  # 1-based; 0 when the text of the link was not found in the file
    link: str  # the URL path it leads to
    why: str  # "no such file", "a private file (never served)", …
    pages: tuple[str, ...]  # the pages that carry it

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        shown = "" if self.pages == (self.file,) else \
            f" (on {', '.join(self.pages[:3])}{f' and {len(self.pages) - 3} more' if len(self.pages) > 3 else ''})"
        return f"{self.where}: {self.link}: {self.why}{shown}"


def broken_links(manifest: PushManifest) -> list[BrokenLink]:
    """Every link to no file of the site in the pages the manifest has read, each once, by file
    and line."""
    site = manifest.site
    found: dict[tuple[str, int, str], list[str]] = {}
    for (referrer, url), pages in manifest.missing_links().items():
        # Named by a page (or an inline <style> or module of one): the page and its templates.
        own = referrer in pages or not os.path.isfile(os.path.join(site.root, referrer))
        sources = manifest.sources_of(pages[0]) if own else [referrer]
        file, line = locate(site, sources, url)
        found.setdefault((file, line, url), []).extend(pages)
    return [BrokenLink(file, line, url, why_broken(site, url), tuple(dict.fromkeys(pages)))
            for (file, line, url), pages in sorted(found.items())]


def why_broken(site: SitePaths, url: str) -> str:
    """Why a URL path of the site answers no file."""
    try:
        segs = segments(decode_path(url.encode("utf-8")))
    except (BadPath, UnicodeEncodeError):
        return "not a path the server answers"
    rel = "/".join(segs)
    path = os.path.join(site.root, *segs)
    if os.path.islink(path) and not os.path.exists(path):
        return "a symlink to nothing"
    if os.path.exists(path) and not site.inside(path):
        return "a symlink out of the site (never served)"
    if os.path.isdir(path):
        return "a folder, not a file"
    if os.path.isfile(path) and not site.servable(rel, path):
        return "a private file (never served)"
    return "no such file"


def locate(site: SitePaths, files: list[str], url: str) -> tuple[str, int]:
    """The first of ``files`` (site-relative) whose text names ``url``, and the line: the link
    as written may be relative, so its path from the root, then without the leading slash, then
    its last segment are looked for.  The first file and line 0 when none is found."""
    name = unquote(url.rstrip("/").rsplit("/", 1)[-1])
    needles = list(dict.fromkeys(n for n in (url, url.lstrip("/"), unquote(url), name) if n))
    texts = []
    for rel in files:
        try:
            with open(os.path.join(site.root, rel), encoding="utf-8", errors="replace") as f:
                texts.append((rel, f.read()))
        except OSError:
            continue
    for needle in needles:
        for rel, text in texts:
            at = text.find(needle)
            if at >= 0:
                return rel, text.count("\n", 0, at) + 1
    return (files[0] if files else ""), 0
