"""Bring a worker's view of the site up to date after a batch of changes, before anyone is told.

File caches forget the changed files, the push manifest re-infers the pages that depend on them
(or is rebuilt whole when push_manifest.json changed), and every template is checked again, so
the browser's reload gets fresh content, fresh pushes / hints, and the overlay the current
problems.
"""

from __future__ import annotations

import logging
import os
import re

from pushserve.config import ConfigError
from pushserve.dev.classify import Batch
from pushserve.dev.stylesheets import stylesheets_to_swap
from pushserve.site.broken_links import broken_links
from pushserve.site.content import SiteContent
from pushserve.site.error_page import Problem
from pushserve.site.manifest_load import MANIFEST_FILE, build_push_manifest
from pushserve.site.responder import Responder

log = logging.getLogger("pushserve")

_MANIFEST_WHERE = re.compile(r"^(?P<file>[^:]*push_manifest\.json)(?::(?P<line>\d+))?(?::\d+)?:\s*(?P<msg>.*)$")


def _manifest_line(warning: str) -> str:
    # Some manifest warnings carry the prefix already: say it once.
    return warning if warning.startswith("push manifest:") else f"push manifest: {warning}"


def manifest_problem(text: str) -> Problem:
    """A ConfigError about push_manifest.json as a Problem (file and line when the text names them)."""
    m = _MANIFEST_WHERE.match(text)
    if m is None:
        return Problem(MANIFEST_FILE, 0, text)
    return Problem(os.path.basename(m["file"]), int(m["line"] or 0), m["msg"])


class SiteUpdater:
    def __init__(self, site: SiteContent, responder: Responder) -> None:
        self.site = site
        self.responder = responder
        self.template_problems: list[Problem] = []
        self.manifest_problem: Problem | None = None

    @property
    def problems(self) -> list[Problem]:
        return [*([self.manifest_problem] if self.manifest_problem else []), *self.template_problems]

    def check_templates(self) -> None:
        templates = self.site.templates
        root = self.site.config.site
        self.template_problems = [Problem.of_template(e, root) for e in templates.check_all()] if templates else []

    def apply(self, batch: Batch) -> None:
        site_paths = [p for p in batch.paths() if not os.path.isabs(p)]
        for path in site_paths:
            self.site.static.invalidate(path)
        before = self.told()
        self.check_templates()
        self._update_manifest(site_paths)
        for line in sorted(self.told() - before):  # each new problem once, where it is written
            log.warning("%s", line)

    def stylesheets_to_swap(self, urls: list[str]) -> list[str]:
        """The changed stylesheets among ``urls`` and the stylesheets importing them (see
        dev/stylesheets.py), by what the push manifest knows of the site's stylesheets."""
        manifest = self.responder.policy.manifest
        resources = manifest.as_dict(build=False).values() if manifest is not None else ()
        sheets = {r.path for listed in resources for r in listed if r.type == "style"}
        paths = self.site.static.paths

        def read(url: str) -> str:
            try:
                return paths.read(url).decode("utf-8", "replace")
            except OSError:
                return ""

        return stylesheets_to_swap([u for u in urls if u.lower().endswith(".css")], sorted(sheets), read)

    def _update_manifest(self, paths: list[str]) -> None:
        policy = self.responder.policy
        if MANIFEST_FILE in paths or self.manifest_problem is not None or policy.manifest is None:
            # The explicit file changed (or was broken): build it all again; a broken file keeps
            # the old manifest in service and becomes a problem shown in the browser.
            try:
                policy.manifest, warnings = build_push_manifest(self.site.config, self.site.templates)
            except ConfigError as e:
                self.manifest_problem = manifest_problem(str(e))
                log.error("push manifest: %s", e)
                return
            self.manifest_problem = None
            for w in warnings:
                log.warning("%s", _manifest_line(w))
            return
        manifest = policy.manifest
        pages: set[str] = set()
        for path in paths:
            pages |= manifest.pages_depending_on(path)
        for page in sorted(pages):
            manifest.rebuild_page(page)
            # Broken links and template errors are told below, each once, where they are written.
            for kind, text in manifest.notes_of(page):
                if kind not in ("missing", "render"):
                    log.warning("%s", _manifest_line(text))

    def told(self) -> set[str]:
        """The template errors and broken links as the log tells them."""
        manifest = self.responder.policy.manifest
        lines = {f"template error: {p.file}:{p.line}: {p.message}" for p in self.template_problems}
        return lines | {f"broken link: {b.where}: {b.link}: {b.why}"
                        for b in (broken_links(manifest) if manifest is not None else [])}
