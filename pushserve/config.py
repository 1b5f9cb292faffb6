"""Configuration: frozen dataclasses validated once.  No I/O here beyond reading pushserve.toml
when asked to, and no sys.exit: errors are ConfigError with one readable line."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

PushMode = Literal["auto", "hints", "off"]
# True: every page with Jinja syntax is a template; "auto": pages that extend/include/import a
# template of the site; False: none (see site/templates.py).
TemplatesMode = bool | Literal["auto"]
PUSH_MODES: tuple[PushMode, ...] = ("auto", "hints", "off")
SITE_TOML = "pushserve.toml"


class ConfigError(Exception):
    """A mistake in the command line or in pushserve.toml; str() is one line for the user."""


@dataclass(frozen=True, slots=True)
class Mount:
    prefix: str  # "/api": no trailing slash; "" never (the site owns "/")
    app: str  # "module:attr" or "module:factory()"

    @classmethod
    def parse(cls, text: str) -> Mount:
        prefix, sep, app = text.partition("=")
        if not sep or not app:
            raise ConfigError(f"--mount {text!r}: expected PREFIX=MODULE:ATTR, e.g. /api=myapp:app")
        return cls.make(prefix, app)

    @classmethod
    def make(cls, prefix: str, app: str) -> Mount:
        prefix = prefix.strip().rstrip("/")
        if not prefix.startswith("/") or any(c in prefix for c in "?#% "):
            raise ConfigError(f"mount prefix {prefix or '/'!r}: must be a path like /api (not the site root)")
        if not re.fullmatch(r"[\w.]+:[\w.]+(\(\))?", app.strip()):
            raise ConfigError(f"mount {prefix}: app {app!r} is not MODULE:ATTR or MODULE:FACTORY()")
        return cls(prefix, app.strip())


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float = 10.0  # a request head must arrive within this
    idle_timeout: float = 60.0  # a connection with no open request is closed after this
    graceful_timeout: float = 10.0  # in-flight requests may finish within this on shutdown
    max_concurrent_streams: int = 128
    max_body_size: int = 100 * 1024 * 1024  # for mounted apps; 413 above it
    push_budget: int = 1024 * 1024  # bytes pushed for one page at most
    backlog: int = 1024  # the kernel's queue of connections not yet accepted, per worker
    max_connections: int = 4096  # per worker; past it new connections are turned away (503 / GOAWAY)
    max_handshakes: int = 128  # connections in the TLS handshake at once, per worker

    def __post_init__(self) -> None:
        for name in ("header_timeout", "idle_timeout", "graceful_timeout"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} {value}: must be a number of seconds above 0")
        if self.max_concurrent_streams < 1:
            raise ConfigError("max concurrent streams must be at least 1")
        for name in ("backlog", "max_connections", "max_handshakes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be 1 or more")
        for name in ("max_body_size", "push_budget"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be 0 or more bytes")


@dataclass(frozen=True, slots=True)
class Config:
    site: Path
    host: str = "127.0.0.1"
    port: int = 8443
    cert: Path | None = None
    key: Path | None = None
    cert_dir: Path | None = None  # None: beside the development CA (tls.default_caroot())
    workers: int = 1
    push: PushMode = "auto"
    push_cookie: bool = True
    templates: TemplatesMode = "auto"
    strict_templates: bool = False
    access_log: bool = True
    max_age: int = 600  # Cache-Control max-age of assets (not pages)
    dev: bool = False
    reload: bool = False
    mounts: tuple[Mount, ...] = ()
    app_dir: Path | None = None
    site_vars: dict[str, Any] = field(default_factory=dict)  # the [site] table of pushserve.toml
    limits: Limits = field(default_factory=Limits)
    worker_timeout: float = 30.0
    # Test mode: responses carry x-pushserve-worker (the worker's pid); never for production.
    expose_worker: bool = False

    def __post_init__(self) -> None:
        if not self.site.is_dir():
            what = "does not exist" if not self.site.exists() else "is not a folder"
            raise ConfigError(f"site folder {str(self.site)!r} {what}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port}: must be 0..65535")
        if self.workers < 0:
            raise ConfigError(f"--workers {self.workers}: must be 0 (one per core) or more")
        if not math.isfinite(self.worker_timeout) or self.worker_timeout <= 0:
            raise ConfigError(f"--worker-timeout {self.worker_timeout}: must be a number of seconds above 0")
        if self.key is not None and self.cert is None:
            raise ConfigError("--key needs --cert (the development certificate has its own key)")
        if self.max_age < 0:
            raise ConfigError(f"--max-age {self.max_age}: must be 0 or more seconds")
        if self.templates not in (True, False, "auto"):
            raise ConfigError(f"templates {self.templates!r}: choose true, false or \"auto\"")
        if self.push not in PUSH_MODES:
            raise ConfigError(f"--push {self.push!r}: choose one of {', '.join(PUSH_MODES)}")
        prefixes = [m.prefix for m in self.mounts]
        if len(set(prefixes)) != len(prefixes):
            raise ConfigError(f"mount prefixes repeat: {', '.join(sorted(prefixes))}")

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def with_(self, **changes: Any) -> Config:
        return replace(self, **changes)


_TOML_KEYS = {"site", "mounts", "push", "templates"}


def read_site_toml(site: Path) -> tuple[dict[str, Any], tuple[Mount, ...], dict[str, Any]]:
    """Read SITE/pushserve.toml: ([site] table, mounts, other settings).  Unknown keys are errors,
    so a misspelling is not silently ignored."""
    path = site / SITE_TOML
    if not path.is_file():
        return {}, (), {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    unknown = set(data) - _TOML_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(sorted(_TOML_KEYS))}")
    site_vars = data.get("site", {})
    if not isinstance(site_vars, dict):
        raise ConfigError(f"{path}: [site] must be a table")
    raw_mounts = data.get("mounts", {})
    if not isinstance(raw_mounts, dict) or not all(isinstance(v, str) for v in raw_mounts.values()):
        raise ConfigError(f'{path}: [mounts] must map prefixes to "module:attr" strings')
    mounts = tuple(Mount.make(prefix, app) for prefix, app in raw_mounts.items())
    settings: dict[str, Any] = {}
    if "push" in data:
        settings["push"] = data["push"]
    # `templates = …` at the top or in [site]; both must agree.
    chosen = [table["templates"] for table in (data, site_vars) if "templates" in table]
    for value in chosen:
        if not (isinstance(value, bool) or value == "auto"):
            raise ConfigError(f'{path}: templates must be true, false or "auto"')
    if len(set(chosen)) > 1:
        raise ConfigError(f"{path}: templates is set twice (top level and [site]) to different values")
    if chosen:
        settings["templates"] = chosen[0]
    return site_vars, mounts, settings


def config_field_names() -> set[str]:
    return {f.name for f in fields(Config)}
