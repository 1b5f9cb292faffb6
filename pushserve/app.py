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
import logging

from pushserve.asgi.load import import_apps
from pushserve.asgi.mount import load_mounts
from pushserve.config import Config, ConfigError
from pushserve.exchange import App, Mount
from pushserve.site.content import SiteContent
from pushserve.site.manifest import PushManifest
from pushserve.site.manifest_load import MANIFEST_FILE, build_push_manifest, site_private, templates_for
from pushserve.site.paths import SitePaths, is_manifest_page
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
                        use_cookie=config.push_cookie)
    responder = Responder(content, policy, access_log_on=config.access_log)
    mounts: list[Mount] = list(load_mounts(config, responder)) if config.mounts else []
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
    lines: list[str] = []
    private = site_private(config)
    templates = templates_for(config, private=private)
    template_pages = 0
    if templates is not None:
        scan = templates.scan()
        template_pages = len(scan.pages)
        errors = templates.check_all(scan)
        if errors and not config.dev:
            count = f"{len(errors)} template error{'s' if len(errors) > 1 else ''}"
            raise ConfigError(count + ":\n" + "\n".join(f"  {e}" for e in errors))
        lines += [f"template error: {e}" for e in errors]
    explicit = config.site / MANIFEST_FILE
    if explicit.is_file():  # parsed now, so a broken one stops the start
        _manifest, warnings = build_push_manifest(config, templates, private=private, lazy=True)
        lines += [f"push manifest: {w}" for w in warnings]
    files = SitePaths(config.site, private).walk_files()
    pages = sum(1 for f in files if is_manifest_page(f) and f not in private)
    lines.append(f"site: {_plural(len(files), 'file')}, {_plural(pages, 'page')} "
                 f"({template_pages} rendered as templates), {_plural(len(private), 'private path')}")
    import_apps(config)
    return lines
