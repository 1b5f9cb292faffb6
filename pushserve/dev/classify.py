"""What a batch of file changes means for an open page.  Pure: no watching, no clock.

The watcher hands over raw changes (created / modified / deleted, absolute paths) that arrived
close together; ``coalesce`` folds them into one ``Batch``: each path once, editor droppings
(swap files, ``file~`` backups, vim's ``4913`` probe) dropped, and each path given a kind:

- ``css``     a stylesheet: swapped in place by the client, no reload;
- ``image``   an image: refreshed in place;
- ``reload``  a page, a template, a script, a font, pushserve.toml or push_manifest.json;
- ``restart`` Python code of a mounted app, with ``--reload``: the worker must be replaced.

Anything else (a README, a data file no page declares) is of no interest and left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

Kind = Literal["css", "image", "reload", "restart"]

CSS_SUFFIXES = frozenset({".css"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".svg", ".ico", ".bmp"})
RELOAD_SUFFIXES = frozenset({".html", ".htm", ".js", ".mjs", ".woff", ".woff2", ".ttf", ".otf"})
RELOAD_NAMES = frozenset({"pushserve.toml", "push_manifest.json"})


def _is_junk(name: str) -> bool:
    """Temporary files editors and tools write next to the real one during a save."""
    return (name.endswith(("~", ".swp", ".swo", ".swx", ".tmp", ".part", ".crdownload"))
            or name.startswith((".#", "#")) or name == "4913" or name.startswith(".goutputstream"))


@dataclass(frozen=True, slots=True)
class Changed:
    path: str  # site-relative ("css/site.css"), or absolute for files outside the site
    kind: Kind
    deleted: bool


@dataclass(slots=True)
class Batch:
    """One coalesced update: what the browser is told about in a single event."""

    changes: list[Changed] = field(default_factory=list)

    @property
    def kind(self) -> Kind | None:
        """The strongest kind in the batch: restart > reload > css/image; None when empty."""
        kinds = {c.kind for c in self.changes}
        if "restart" in kinds:
            return "restart"
        if "reload" in kinds:
            return "reload"
        if kinds == {"image"}:
            return "image"
        return "css" if kinds else None

    def paths(self, *kinds: Kind) -> list[str]:
        return [c.path for c in self.changes if not kinds or c.kind in kinds]

    def __bool__(self) -> bool:
        return bool(self.changes)


def classify(rel_path: str, *, reload_code: bool) -> Kind | None:
    """The kind of a site-relative path (or a path outside the site, for app code)."""
    name = PurePosixPath(rel_path).name
    suffix = PurePosixPath(name).suffix.lower()
    if name in RELOAD_NAMES:
        return "reload"
    if suffix == ".py":
        return "restart" if reload_code else None
    if any(part.startswith(".") for part in PurePosixPath(rel_path).parts):
        return None  # .git, .cache…: never served, never a template
    if suffix in CSS_SUFFIXES:
        return "css"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in RELOAD_SUFFIXES:
        return "reload"
    return None


def _relative(path: str, site: str) -> str:
    """Site-relative "/"-separated path, or the absolute path for files outside the site."""
    try:
        rel = os.path.relpath(path, site)
    except ValueError:
        return path
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return path
    return rel.replace(os.sep, "/")


def _is_visible_under(path: str, root: str) -> bool:
    rel = _relative(path, root)
    return not os.path.isabs(rel) and not any(part.startswith(".") for part in rel.split("/"))


def coalesce(raw: Iterable[tuple[str, bool]], *, site: str, code_roots: Sequence[str] = (),
             reload_code: bool = False, extra_roots: Sequence[str] = ()) -> Batch:
    """Fold raw changes ``(absolute path, exists now)`` into a Batch, in first-seen order.

    A path changed several times counts once; whether it was deleted is decided by the last
    change seen (an editor's save-by-rename deletes then recreates the same name: modified).
    Python files count only under ``code_roots`` or the site, and only with ``reload_code``; any
    other file under ``extra_roots`` (--reload-dir) reloads the page."""
    last: dict[str, bool] = {}  # insertion order is first-sighting order
    for path, exists in raw:
        last[path] = exists
    order = list(last)
    batch = Batch()
    for path in order:
        if _is_junk(os.path.basename(path)):
            continue
        rel = _relative(path, site)
        kind: Kind | None
        if not os.path.isabs(rel):
            kind = classify(rel, reload_code=reload_code)
        elif rel.endswith(".py"):
            under = any(_relative(path, r) != path for r in (*code_roots, *extra_roots))
            kind = "restart" if under and reload_code else None
        elif any(_is_visible_under(path, r) for r in extra_roots):
            kind = "reload"
        else:
            continue  # outside the site and not app code
        if kind is not None:
            batch.changes.append(Changed(rel, kind, deleted=not last[path]))
    return batch
