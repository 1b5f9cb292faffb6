"""The wiring: from a Config to the app a worker runs, and the site's checks at startup.

The only module that imports the site, the ASGI adapter and dev mode together.  The supervisor
is handed the names of ``build`` and ``check`` (resolved in the worker and in a throwaway
child), so the master process never imports any of them.
"""

from __future__ import annotations

from pushserve.asgi.load import import_apps
from pushserve.asgi.mount import load_mounts
from pushserve.config import Config, ConfigError
from pushserve.exchange import App, Mount
from pushserve.site.content import SiteContent
from pushserve.site.manifest_load import build_push_manifest, templates_for
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
    lines: list[str] = []
    templates = templates_for(config)
    if templates is not None:
        errors = templates.check_all()
        if errors and not config.dev:
            count = f"{len(errors)} template error{'s' if len(errors) > 1 else ''}"
            raise ConfigError(count + ":\n" + "\n".join(f"  {e}" for e in errors))
        lines += [f"template error: {e}" for e in errors]
    manifest, warnings = build_push_manifest(config, templates)
    lines += [f"push manifest: {w}" for w in warnings]
    pages = manifest.as_dict()
    resources = sum(len(r) for r in pages.values())
    lines.append(f"push manifest: {len(pages)} page{'s' if len(pages) != 1 else ''}, "
                 f"{resources} resource{'s' if resources != 1 else ''}")
    import_apps(config)
    return lines
