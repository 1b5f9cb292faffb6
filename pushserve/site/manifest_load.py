"""The push manifest of a configured site: inferred from its pages (rendered when templates are
on), with the site's own push_manifest.json winning for the pages it lists."""

from __future__ import annotations

from pushserve.config import Config, ConfigError
from pushserve.site.manifest import ManifestError, PushManifest
from pushserve.site.templates import Templates

MANIFEST_FILE = "push_manifest.json"


def templates_for(config: Config, *, revalidate_after: float = 1.0) -> Templates | None:
    """The site's template environment, or None when templates are off."""
    if not config.templates:
        return None
    return Templates(config.site, site=config.site_vars, strict=config.strict_templates,
                     revalidate_after=revalidate_after)


def build_push_manifest(config: Config, templates: Templates | None = None) -> tuple[PushManifest, list[str]]:
    """A broken push_manifest.json is the user's mistake: ConfigError."""
    if templates is None:
        templates = templates_for(config)
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
