"""Assemble what a worker serves from a Config: mounts, site, push manifest, push policy."""

from __future__ import annotations

import os

from pushserve.config import Config, ConfigError
from pushserve.server.responder import Responder
from pushserve.site.manifest import ManifestError, PushManifest
from pushserve.site.push import PushPolicy
from pushserve.site.router import MountedApp, Site
from pushserve.site.templates import Templates

MANIFEST_FILE = "push_manifest.json"


def build_push_manifest(config: Config, templates: Templates | None = None) -> tuple[PushManifest, list[str]]:
    """Infer the manifest from the site's pages (rendered), with push_manifest.json winning for the
    pages it lists.  A broken push_manifest.json is the user's mistake: ConfigError."""
    if templates is None and config.templates:
        templates = Templates(config.site, site=config.site_vars, strict=config.strict_templates)

    explicit = config.site / MANIFEST_FILE
    try:
        return PushManifest.build(
            config.site,
            templates.render_static if templates is not None else None,
            explicit if explicit.is_file() else None,
            template_deps=templates.dependencies if templates is not None else None,
        )
    except ManifestError as e:
        raise ConfigError(str(e)) from None


def check_site(config: Config) -> list[str]:
    """Check the site once at startup; returns lines for the log (the manifest summary, warnings).
    Broken templates or a broken push_manifest.json are errors, listed together (in dev mode
    template errors are only reported: the page shows them)."""
    lines: list[str] = []
    templates = None
    if config.templates:
        templates = Templates(config.site, site=config.site_vars, strict=config.strict_templates)
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
    return lines


def load_mounts(config: Config) -> list[MountedApp]:
    if not config.mounts:
        return []
    from pushserve.asgi import load_mounts as load

    return list(load(config))


def build_site(config: Config) -> tuple[Site, Responder, list[MountedApp]]:
    mounts = load_mounts(config)
    site = Site(config, mounts)
    manifest, _warnings = build_push_manifest(config, site.templates)
    policy = PushPolicy(config.push, manifest, site.static, budget=config.limits.push_budget,
                        use_cookie=config.push_cookie)
    responder = Responder(policy, access_log_on=config.access_log,
                          expose_worker=str(os.getpid()).encode() if config.expose_worker else None)
    if config.dev:  # dev mode: /_pushserve/ routes, file watcher and live reload (pushserve/dev)
        from pushserve.dev.endpoints import DevServer

        mounts = [*mounts, DevServer.install(config, site, responder)]
    return site, responder, mounts


