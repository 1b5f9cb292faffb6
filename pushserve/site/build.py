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
    """Problems worth one line each at startup.  Broken templates are errors outside dev mode."""
    problems: list[str] = []
    if config.templates:
        errors = Templates(config.site, site=config.site_vars, strict=config.strict_templates).check_all()
        if errors and not config.dev:
            listed = "; ".join(str(e) for e in errors)
            raise ConfigError(f"{len(errors)} template error{'s' if len(errors) > 1 else ''}: {listed}")
        problems += [f"template error: {e}" for e in errors]
    return problems


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
    return site, responder, mounts


