"""The push manifest, templates and private files of a configured site: inferred from its pages
(rendered when they are templates), with the site's own push_manifest.json winning for the pages
it lists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from pushserve import tls
from pushserve.config import SITE_TOML, Config, ConfigError
from pushserve.site.manifest import ManifestError
from pushserve.site.manifest_store import PushManifest
from pushserve.site.paths import PrivateFiles, SitePaths
from pushserve.site.templates import Templates

MANIFEST_FILE = "push_manifest.json"


class ConfiguredPath(NamedTuple):
    what: str  # for a log line: "the TLS key"
    path: Path
    secret: bool  # holds a private key


def configured_paths(config: Config) -> list[ConfiguredPath]:
    """The files and folders the configuration names: none of them is content, wherever it
    lies.  (The development certificate's folder and the CA's hold private keys.)"""
    dev = config.cert is None
    named = [
        ConfiguredPath("the TLS certificate" if config.key is not None else "the TLS certificate and key",
                       config.cert, config.key is None) if config.cert is not None else None,
        ConfiguredPath("the TLS key", config.key, True) if config.key is not None else None,
        ConfiguredPath("the development certificate's folder", config.cert_dir, True)
        if dev and config.cert_dir is not None else None,
        ConfiguredPath("the development CA's folder", tls.default_caroot(), True) if dev else None,
        ConfiguredPath("the compression dictionary folder", config.compress.dictionary_dir, False)
        if config.compress.dictionary_dir is not None else None,
        ConfiguredPath("the mounted apps' folder", config.app_dir, False) if config.app_dir is not None else None,
        *(ConfiguredPath("a reload folder", folder, False) for folder in config.reload_dirs),
    ]
    return [c for c in named if c is not None]


def site_private(config: Config) -> PrivateFiles:
    """The files of this site that are never served nor exported, as far as the configuration
    tells: pushserve.toml, every file or folder the configuration names that lies in the site
    (certificate, key, dictionary and reload folders, the mounted apps' folder), and the
    packages or modules mounted apps are imported from.  Template-only files are added by
    ``Templates`` as it finds them."""
    private = PrivateFiles([SITE_TOML])
    site = SitePaths(config.site)
    for configured in configured_paths(config):
        name = site.real_name(configured.path)
        if name:  # in the site, and not the site itself
            private.add(name)
    root = site.real_root
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
            templates.static_html if templates is not None else None,
            explicit if explicit.is_file() else None,
            template_deps=templates.dependencies if templates is not None else None,
            private=private, lazy=lazy, follow_symlinks=config.follow_symlinks,
        )
    except ManifestError as e:
        raise ConfigError(str(e)) from None
