"""The watchfiles loop: raw file events → one coalesced Batch per burst of writes.

watchfiles (Rust, inotify on Linux) groups changes itself: it yields once no new change has come
for ``STEP_MS`` after the first, and never waits more than ``DEBOUNCE_MS``.  That covers an
editor's save-rename-write and a build tool writing 50 files in a row; ``coalesce`` then folds
what arrived into one Batch (each path once, junk dropped).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import watchfiles

from pushserve.config import Config
from pushserve.dev.classify import Batch, coalesce

log = logging.getLogger("pushserve")

STEP_MS = 50
DEBOUNCE_MS = 1600


def code_roots(config: Config) -> list[str]:
    """Folders holding the mounted apps' Python code (watched with --reload): the folder of each
    app's top-level package, or of the module itself, whichever it was imported from.  Call after
    the apps were imported."""
    roots: set[str] = set()
    for mount in config.mounts:
        top = mount.app.split(":", 1)[0].split(".", 1)[0]
        module = sys.modules.get(top)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        roots.add(str(path.parent.parent if path.name == "__init__.py" else path.parent))
    if config.app_dir is not None:
        roots.add(str(config.app_dir.resolve()))
    return sorted(roots)


def watched_paths(config: Config, roots: list[str]) -> list[str]:
    site = str(Path(config.site).resolve())
    # A root inside the site is watched already (the site is watched recursively).
    extra = [r for r in roots if not (r + os.sep).startswith(site + os.sep)]
    return [site, *extra]


async def watch(config: Config, on_batch: Callable[[Batch], None], stop: asyncio.Event) -> None:
    """Call ``on_batch`` for every burst of relevant changes until ``stop`` is set.

    The inotify watches exist once this coroutine first suspends (awatch sets them up before its
    first await), so a caller that lets the task take one step knows no later write is missed."""
    roots = code_roots(config) if config.reload else []
    extra = [str(d.resolve()) for d in config.reload_dirs]
    paths = watched_paths(config, list(dict.fromkeys([*roots, *extra])))
    site = paths[0]
    log.info("dev: watching %s for changes", ", ".join(paths))
    async for changes in watchfiles.awatch(*paths, step=STEP_MS, debounce=DEBOUNCE_MS, stop_event=stop,
                                           rust_timeout=1000, yield_on_timeout=False):
        # The final state on disk decides "deleted", whatever order the events came in.
        raw = [(path, os.path.exists(path)) for path in sorted(_with_new_folders(changes))]
        batch = coalesce(raw, site=site, code_roots=roots, reload_code=config.reload, extra_roots=extra)
        if not batch:
            continue
        try:
            on_batch(batch)
        except Exception:  # one bad update must not end live reload for the session
            log.exception("dev: applying a change failed")


def _with_new_folders(changes: set[tuple[watchfiles.Change, str]]) -> set[str]:
    """Add the files inside folders that appeared: inotify watches a new folder only once it has
    seen it created, so files written into it right away (a build tool's output folder) would
    otherwise go unnoticed."""
    found = {path for _, path in changes}
    for change, path in changes:
        if change == watchfiles.Change.added and os.path.isdir(path) and not os.path.islink(path):
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                found.update(os.path.join(dirpath, name) for name in filenames)
    return found
