"""The push manifest, templates and private files of a configured site: inferred from its pages
(rendered when they are templates), with the site's own push_manifest.json winning for the pages
it lists."""

from __future__ import annotations

import os

from pushserve.config import SITE_TOML, Config, ConfigError
from pushserve.site.manifest import ManifestError, PushManifest
from pushserve.site.paths import PrivateFiles
from pushserve.site.templates import Templates

MANIFEST_FILE = "push_manifest.json"


def site_private(config: Config) -> PrivateFiles:
    """The files of this site that are never served, as far as the configuration tells:
    pushserve.toml, and the folders (or modules) mounted apps are imported from when they lie in
    the site.  Template-only files are added by ``Templates`` as it finds them."""
    private = PrivateFiles([SITE_TOML])
    root = os.path.realpath(config.site)
    if config.app_dir is not None:
        app_dir = os.path.realpath(config.app_dir)
        if app_dir != root and os.path.commonpath((root, app_dir)) == root:
            private.add(os.path.relpath(app_dir, root).replace(os.sep, "/"))
    for mount in config.mounts:
        top = mount.app.partition(":")[0].split(".")[0]  # "_app.search:app" → the _app package
        for name in (top, top + ".py"):
            if os.path.exists(os.path.join(root, name)):
                private.add(name)
    return private


def templates_for(config: Config, *, revalidate_after: float = 1.0,
                  private: PrivateFiles | None = None) -> Templates | None:
    """The site's template environment, or None when templates are off."""
    if config.templates is False:
        return None
    return Templates(config.site, site=config.site_vars, strict=config.strict,
                     revalidate_after=revalidate_after, mode=config.templates,
                     private=private if private is not None else site_private(config))


def build_push_manifest(config: Config, templates: Templates | None = None, *,
                        private: PrivateFiles | None = None, lazy: bool = False) -> tuple[PushManifest, list[str]]:
    """A broken push_manifest.json is the user's mistake: ConfigError.  ``lazy``: pages are
    inferred when first asked for (see PushManifest)."""
    if private is None:
        private = templates.private if templates is not None else site_private(config)
    if templates is None:
        templates = templates_for(config, private=private)
        if templates is not None:
            templates.scan()
    explicit = config.site / MANIFEST_FILE
    try:
        return PushManifest.build(
            config.site,
            templates.render_static if templates is not None else None,
            explicit if explicit.is_file() else None,
            template_deps=templates.dependencies if templates is not None else None,
            private=private, lazy=lazy,
        )
    except ManifestError as e:
        raise ConfigError(str(e)) from None
