"""The wiring: from a Config to the app a worker runs, and the site's checks at startup.

The only module that imports the site, the ASGI adapter and dev mode together.  The supervisor
is handed the names of ``build`` and ``check`` (resolved in the worker and in a throwaway
child), so the master process never imports any of them.
"""

from __future__ import annotations

import json
import re

from pushserve.asgi.load import import_apps
from pushserve.asgi.mount import load_mounts
from pushserve.config import Config, ConfigError
from pushserve.exchange import App, Mount
from pushserve.site.content import SiteContent
from pushserve.site.manifest_load import MANIFEST_FILE, build_push_manifest, templates_for
from pushserve.site.push import PushPolicy
from pushserve.site.responder import Responder
from pushserve.site.router import Router


def build(config: Config) -> App:
    """Mounts, site, push manifest and policy, and in dev mode the dev routes and live reload."""
    page_filter = None
    if config.dev:
        from pushserve.dev.inject import inject

        page_filter = inject
    content = SiteContent(config, page_filter=page_filter)
    manifest, _warnings = build_push_manifest(config, content.templates)
    policy = PushPolicy(config.push, manifest, content.static, budget=config.limits.push_budget,
                        use_cookie=config.push_cookie, hints_http1=config.hints_http1)
    responder = Responder(content, policy, access_log_on=config.access_log, think=config.bench_think)
    mounts: list[Mount] = list(load_mounts(config, responder)) if config.mounts else []
    if config.dev:  # /_pushserve/ routes, file watcher and live reload
        from pushserve.dev.mount import DevServer

        mounts.append(DevServer(config, content, responder))
    return Router(responder, mounts)


def check(config: Config) -> list[str]:
    """Check the site once at startup; returns lines for the log (the manifest summary, warnings).
    Broken templates, a broken push_manifest.json or a mount that does not import are errors,
    listed together (in dev mode template errors are only reported: the page shows them)."""
    lines, problems = run_checks(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return lines


def run_checks(config: Config) -> tuple[list[str], list[str]]:
    """Every check, each one run whatever the others found: (lines for the log, problems).  A
    problem is one line, but for the template errors: a count and one indented line each."""
    lines: list[str] = []
    problems: list[str] = []
    templates = templates_for(config)
    if templates is not None:
        errors = templates.check_all()
        if errors and not config.dev:
            count = f"{len(errors)} template error{'s' if len(errors) > 1 else ''}"
            problems.append(count + ":\n" + "\n".join(f"  {e}" for e in errors))
        else:
            lines += [f"template error: {e}" for e in errors]
    if not (config.site / "index.html").is_file():
        lines.append(f"warning: {config.site} has no index.html: / answers 404")
    try:
        manifest, warnings = build_push_manifest(config, templates)
    except ConfigError as e:
        problems.append(str(e))
    else:
        lines += ["warning: " + with_prefix("push manifest", w) for w in warnings]
        lines += missing_manifest_pages(config, set(manifest.site.walk_pages()))
        pages = manifest.as_dict()
        resources = sum(len(r) for r in pages.values())
        lines.append(f"push manifest: {len(pages)} page{'s' if len(pages) != 1 else ''}, "
                     f"{resources} resource{'s' if resources != 1 else ''}")
    try:
        import_apps(config)
    except ConfigError as e:
        problems.append(str(e))
    return lines, problems


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
