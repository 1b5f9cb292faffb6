"""The wiring: from a Config to the app a worker runs, and the site's checks at startup.

The only module that imports the site, the ASGI adapter and dev mode together.  The supervisor
is handed the names of ``build`` and ``check`` (resolved in the worker and in a throwaway
child), so the master process never imports any of them.

A start reads no page, whatever the size of the site: the check looks at the folder (counts,
symlinks that lead out, at most ``START_WALK`` entries of it), a worker tells a page's template
status and infers its push manifest entry when the page is first asked for.  The rest happens in
the worker's background, in slices of at most ``SLICE`` seconds between requests: the templates'
survey (every HTML file read once, to find the template-only files), then the push manifest of
every page; once done it logs a few summary lines (details at --log-level debug).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Collection, Iterator

from pushserve.config import Config, ConfigError
from pushserve.exchange import App, Mount
from pushserve.site.content import SiteContent
from pushserve.site.manifest_load import (
    MANIFEST_FILE,
    build_push_manifest,
    configured_paths,
    site_private,
    templates_for,
)
from pushserve.site.manifest_store import PushManifest
from pushserve.site.paths import PAGE_SUFFIXES, SitePaths, is_manifest_page, is_page, iter_tree
from pushserve.site.push import PushPolicy
from pushserve.site.responder import Responder
from pushserve.site.router import Router

log = logging.getLogger("pushserve")

SLICE = 0.002  # seconds of background work (survey, manifest) between two looks at the requests
START_WALK = 100_000  # folder entries a start looks at for its counts and symlinks
SHOWN_LINKS = 5  # symlinks leading out, named at a start (pushserve check names all)


class SiteApp(Router):
    """The Router, plus the background build of the push manifest in each worker."""

    def __init__(self, responder: Responder, mounts: list[Mount], manifest: PushManifest) -> None:
        super().__init__(responder, mounts)
        self.manifest = manifest
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        await super().startup()
        self._task = asyncio.get_running_loop().create_task(self._build_manifest())

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await super().shutdown()

    async def _build_manifest(self) -> None:
        started = time.monotonic()
        try:
            await in_slices(self.responder.content.survey_steps())
            await in_slices(self.manifest.build_steps())
        except Exception:  # pages are still inferred when asked for; say what broke
            log.exception("push manifest: the background build stopped")
            return
        lines = self.manifest.summary()
        lines[0] += f" (in the background: {time.monotonic() - started:.1f} s)"
        for line in lines:
            log.info("%s", line)
        for note in self.manifest.notes("render"):  # template errors: worth more than debug
            log.warning("push manifest: %s", note)
        if self.manifest.missing_links():
            log.info("push manifest: `pushserve check SITE` names each broken link, file and line "
                     "(so does /_pushserve/ in dev mode)")
        if log.isEnabledFor(logging.DEBUG):
            for note in self.manifest.notes():
                log.debug("push manifest: %s", note)


async def in_slices(steps: Iterator[object], budget: float = SLICE) -> None:
    """Run ``steps`` to the end, giving the event loop a turn whenever ``budget`` seconds went
    by: requests that arrive meanwhile wait at most one step past it."""
    deadline = time.perf_counter() + budget
    for _ in steps:
        if time.perf_counter() >= deadline:
            await asyncio.sleep(0)
            deadline = time.perf_counter() + budget


def build(config: Config) -> App:
    """Mounts, site, push manifest and policy, and in dev mode the dev routes and live reload."""
    if not config.site.is_dir():  # gone since the start (a deploy swapping it): said plainly
        raise ConfigError(f"site folder {config.site} is missing")
    page_filter = None
    if config.dev:
        from pushserve.dev.inject import inject

        page_filter = inject
    content = SiteContent(config, page_filter=page_filter, lazy=True)
    manifest, _warnings = build_push_manifest(config, content.templates, private=content.private, lazy=True)
    policy = PushPolicy(config.push, manifest, content.static, budget=config.limits.push_budget,
                        use_cookie=config.push_cookie, hints_http1=config.hints_http1)
    responder = Responder(content, policy, access_log_on=config.access_log, think=config.bench_think)
    mounts: list[Mount] = []
    if config.mounts:  # the ASGI adapter is imported by the workers that run apps, like dev mode
        from pushserve.asgi.mount import load_mounts

        mounts += load_mounts(config, responder)
    if config.dev:  # /_pushserve/ routes, file watcher and live reload
        from pushserve.dev.mount import DevServer

        mounts.append(DevServer(config, content, responder))
    return SiteApp(responder, mounts, manifest)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def check(config: Config) -> list[str]:
    """Check the site once at startup; returns lines for the log (counts, warnings).  A broken
    push_manifest.json or a mount that does not import are errors, listed together.  Pages are
    not read here (templates and the manifest: workers do that, in the background); ``pushserve
    check`` reads them all."""
    lines, problems = run_checks(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return lines


def run_checks(config: Config, *, whole_site: bool = False) -> tuple[list[str], list[str]]:
    """Every check, each one run whatever the others found: (lines for the log, problems).  A
    problem is one line, but for lists (template errors, symlinks): a count and one indented line
    each.  ``whole_site`` (``pushserve check``): also read every page for templates, and look at
    every file."""
    lines: list[str] = []
    problems: list[str] = []
    private = site_private(config)
    templates = templates_for(config, private=private)
    template_pages: list[str] = []
    if whole_site and templates is not None:
        scan = templates.scan()
        template_pages = scan.pages
        errors = templates.check_all(scan)
        if errors and not config.dev:
            count = f"{len(errors)} template error{'s' if len(errors) > 1 else ''}"
            problems.append(count + ":\n" + "\n".join(f"  {e}" for e in errors))
        else:
            lines += [f"template error: {e}" for e in errors]
    if not (config.site / "index.html").is_file():
        lines.append(f"warning: {config.site} has no index.html: / answers 404")
    lines += keys_in_site(config)
    survey = _walk(config, SitePaths(config.site, private), None if whole_site else START_WALK)
    explicit = config.site / MANIFEST_FILE
    if explicit.is_file():  # parsed now, so a broken one stops the start
        try:
            _manifest, warnings = build_push_manifest(config, templates, private=private, lazy=True)
        except ConfigError as e:
            problems.append(str(e))
        else:
            lines += ["warning: " + with_prefix("push manifest", w) for w in warnings]
            if survey.complete:
                lines += missing_manifest_pages(config, {p for p in survey.pages if is_manifest_page(p)})
    if whole_site:  # the templates were read: the layouts and partials are known, not pages
        lines.append(site_line(survey.files, survey.pages, private, template_pages))
    else:  # which HTML files are templates is found in the background
        files = f"{survey.files:,} files" if survey.complete else f"the first {survey.files:,} files (of more)"
        lines.append(f"site: {files}, {len(survey.pages):,} .html, {_plural(len(private), 'private path')}")
    lines += _symlink_lines(config, survey, problems if whole_site else None)
    try:
        from pushserve.asgi.load import import_apps

        import_apps(config)
    except ConfigError as e:
        problems.append(str(e))
    return lines, problems


class _Walk:
    def __init__(self) -> None:
        self.files = 0
        self.pages: set[str] = set()  # .html and .htm files (the pages, and templates' files)
        self.outside: list[tuple[str, str]] = []  # symlinks leading out: (path, target)
        self.complete = True


def _walk(config: Config, paths: SitePaths, limit: int | None) -> _Walk:
    """One look at the folder (``limit`` entries at most): files, pages, symlinks that lead out."""
    walk = _Walk()
    for seen, (rel, entry) in enumerate(iter_tree(paths.root)):
        if limit is not None and seen >= limit:
            walk.complete = False
            break
        try:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if os.path.exists(target) and paths.real_name(target) is None:
                    walk.outside.append((rel, target))
            if not entry.is_file():
                continue
        except OSError:
            continue
        walk.files += 1
        if rel.endswith(PAGE_SUFFIXES):
            walk.pages.add(rel)
    return walk


def _symlink_lines(config: Config, walk: _Walk, problems: list[str] | None) -> list[str]:
    """Symlinks that lead out of the site: followed (--follow-symlinks), or refused and named —
    the first few at a start, all of them as a problem of ``pushserve check``."""
    if not walk.outside:
        return []
    n = _plural(len(walk.outside), "symlink")
    if config.follow_symlinks:
        return [f"site: {n} lead{'s' if len(walk.outside) == 1 else ''} out of the site, followed (--follow-symlinks)"]
    head = (f"{n} lead{'s' if len(walk.outside) == 1 else ''} out of the site and answer"
            f"{'s' if len(walk.outside) == 1 else ''} 404 (--follow-symlinks serves them)")
    if problems is not None:
        problems.append(head + ":\n" + "\n".join(f"  {rel} -> {target}" for rel, target in walk.outside))
        return []
    shown = ", ".join(rel for rel, _ in walk.outside[:SHOWN_LINKS])
    more = f" and {len(walk.outside) - SHOWN_LINKS} more (pushserve check lists all)" \
        if len(walk.outside) > SHOWN_LINKS else ""
    return [f"warning: {head}: {shown}{more}"]


def keys_in_site(config: Config) -> list[str]:
    """A warning for each private key the configuration keeps inside the site folder: it is never
    served nor exported, but one mistake (another server on the folder, a copy of it) publishes it."""
    site = SitePaths(config.site)
    return [f"warning: {c.what} {c.path} lies inside the site folder: it is never served or exported, "
            "but a private key belongs outside the folder you publish"
            for c in configured_paths(config) if c.secret and site.real_name(c.path)]


def site_line(files: int, html: Collection[str], private: Collection[str], template_pages: list[str]) -> str:
    """``site: 29 files, 2 pages (both rendered as templates) and a 404 page, 6 private paths``."""
    pages = [f for f in sorted(html) if is_manifest_page(f) and f not in private]
    rendered = len(set(template_pages) & set(pages))
    how = "" if not rendered else " (rendered as a template)" if len(pages) == 1 else \
        " (both rendered as templates)" if rendered == len(pages) == 2 else \
        " (all rendered as templates)" if rendered == len(pages) else f" ({rendered} rendered as templates)"
    not_found = sum(1 for f in html if is_page(f) and not is_manifest_page(f) and f not in private)
    extra = "" if not not_found else " and a 404 page" if not_found == 1 else f" and {not_found} 404 pages"
    return (f"site: {_plural(files, 'file')}, {_plural(len(pages), 'page')}{how}{extra}, "
            f"{_plural(len(private), 'private path')}")


def with_prefix(prefix: str, text: str) -> str:
    """``prefix: text``, unless the text starts with it already (no "push manifest: push manifest:")."""
    return text if text.startswith(prefix + ":") else f"{prefix}: {text}"


def missing_manifest_pages(config: Config, pages: set[str]) -> list[str]:
    """A warning, as ``push_manifest.json:LINE``, for each page the file lists that the site does
    not have (a typo, or a page since renamed): its entry would never be used."""
    path = config.site / MANIFEST_FILE
    try:
        text = path.read_text("utf-8")
        listed = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError):
        return []  # no file, or a broken one (reported by the manifest build)
    if not isinstance(listed, dict):
        return []
    warnings: list[str] = []
    for page in listed:
        if page in pages:
            continue
        m = re.search(re.escape(json.dumps(page)) + r"\s*:", text)
        line = text.count("\n", 0, m.start()) + 1 if m else 0
        warnings.append(f"warning: {path}:{line}: page {page!r} is not a page of the site "
                        "(its resources are never announced)")
    return warnings
