"""The wiring: from a Config to the app a worker runs, and the site's checks at startup.

The only module that imports the site, the ASGI adapter and dev mode together.  The supervisor
is handed the names of ``build`` and ``check`` (resolved in the worker and in a throwaway
child), so the master process never imports any of them.

Startup does not grow with the number of pages beyond one walk of the folder (and one read of
each HTML file to tell template pages from plain ones): a worker infers a page's push manifest
entry when the page is first asked for, and the rest in the background, a page at a time between
requests; once done it logs a few summary lines (details at --log-level debug).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Collection

from pushserve.config import Config, ConfigError
from pushserve.exchange import App, Mount
from pushserve.site.content import SiteContent
from pushserve.site.manifest import PushManifest
from pushserve.site.manifest_load import (
    MANIFEST_FILE,
    build_push_manifest,
    configured_paths,
    site_private,
    templates_for,
)
from pushserve.site.paths import SitePaths, is_manifest_page, is_page
from pushserve.site.push import PushPolicy
from pushserve.site.responder import Responder
from pushserve.site.router import Router

log = logging.getLogger("pushserve")


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
        for _ in self.manifest.build_steps():
            await asyncio.sleep(0)  # a page at a time: requests go first
        for line in self.manifest.summary():
            log.info("%s", line)
        if self.manifest.missing_links():
            log.info("push manifest: `pushserve check SITE` names each broken link, file and line "
                     "(so does /_pushserve/ in dev mode)")
        if log.isEnabledFor(logging.DEBUG):
            for note in self.manifest.notes():
                log.debug("push manifest: %s", note)


def build(config: Config) -> App:
    """Mounts, site, push manifest and policy, and in dev mode the dev routes and live reload."""
    page_filter = None
    if config.dev:
        from pushserve.dev.inject import inject

        page_filter = inject
    content = SiteContent(config, page_filter=page_filter)
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
    """Check the site once at startup; returns lines for the log (counts, warnings).
    Broken templates, a broken push_manifest.json or a mount that does not import are errors,
    listed together (in dev mode template errors are only reported: the page shows them).
    Pages are not read for the manifest here: workers do that lazily."""
    lines, problems = run_checks(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return lines


def run_checks(config: Config) -> tuple[list[str], list[str]]:
    """Every check, each one run whatever the others found: (lines for the log, problems).  A
    problem is one line, but for the template errors: a count and one indented line each."""
    lines: list[str] = []
    problems: list[str] = []
    private = site_private(config)
    templates = templates_for(config, private=private)
    template_pages: list[str] = []
    if templates is not None:
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
    paths = SitePaths(config.site, private)
    files = paths.walk_files()
    explicit = config.site / MANIFEST_FILE
    if explicit.is_file():  # parsed now, so a broken one stops the start
        try:
            _manifest, warnings = build_push_manifest(config, templates, private=private, lazy=True)
        except ConfigError as e:
            problems.append(str(e))
        else:
            lines += ["warning: " + with_prefix("push manifest", w) for w in warnings]
            lines += missing_manifest_pages(config, set(paths.walk_pages()))
    lines.append(site_line(files, private, template_pages))
    try:
        from pushserve.asgi.load import import_apps

        import_apps(config)
    except ConfigError as e:
        problems.append(str(e))
    return lines, problems


def keys_in_site(config: Config) -> list[str]:
    """A warning for each private key the configuration keeps inside the site folder: it is never
    served nor exported, but one mistake (another server on the folder, a copy of it) publishes it."""
    site = SitePaths(config.site)
    return [f"warning: {c.what} {c.path} lies inside the site folder: it is never served or exported, "
            "but a private key belongs outside the folder you publish"
            for c in configured_paths(config) if c.secret and site.real_name(c.path)]


def site_line(files: list[str], private: Collection[str], template_pages: list[str]) -> str:
    """``site: 29 files, 2 pages (both rendered as templates) and a 404 page, 6 private paths``."""
    pages = [f for f in files if is_manifest_page(f) and f not in private]
    rendered = len(set(template_pages) & set(pages))
    how = "" if not rendered else " (rendered as a template)" if len(pages) == 1 else \
        " (both rendered as templates)" if rendered == len(pages) == 2 else \
        " (all rendered as templates)" if rendered == len(pages) else f" ({rendered} rendered as templates)"
    not_found = sum(1 for f in files if is_page(f) and not is_manifest_page(f) and f not in private)
    extra = "" if not not_found else " and a 404 page" if not_found == 1 else f" and {not_found} 404 pages"
    return (f"site: {_plural(len(files), 'file')}, {_plural(len(pages), 'page')}{how}{extra}, "
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
