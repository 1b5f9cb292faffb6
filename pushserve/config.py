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
    """Something the server cannot start with (a file, a port, a mount, a template); str() is one
    line for the user.  The command line exits 1."""


class BadValue(ConfigError):
    """A value on the command line or in pushserve.toml that is wrong on any machine: a usage
    mistake, exit 2 (as argparse's own)."""


@dataclass(frozen=True, slots=True)
class Mount:
    prefix: str  # "/api": no trailing slash; "" never (the site owns "/")
    app: str  # "module:attr" or "module:factory()"

    @classmethod
    def parse(cls, text: str) -> Mount:
        prefix, sep, app = text.partition("=")
        if not sep or not app:
            raise BadValue(f"--mount {text!r}: expected PREFIX=MODULE:ATTR, e.g. /api=myapp:app")
        return cls.make(prefix, app)

    @classmethod
    def make(cls, prefix: str, app: str) -> Mount:
        prefix = prefix.strip().rstrip("/")
        if not prefix.startswith("/") or any(c in prefix for c in "?#% "):
            raise BadValue(f"mount prefix {prefix or '/'!r}: must be a path like /api (not the site root)")
        if not re.fullmatch(r"[\w.]+:[\w.]+(\(\))?", app.strip()):
            raise BadValue(f"mount {prefix}: app {app!r} is not MODULE:ATTR or MODULE:FACTORY()")
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
                raise BadValue(f"--{name.replace('_', '-')} {value}: must be a number of seconds above 0")
        if self.max_concurrent_streams < 1:
            raise BadValue("max concurrent streams must be at least 1")
        for name in ("backlog", "max_connections", "max_handshakes"):
            if getattr(self, name) < 1:
                raise BadValue(f"--{name.replace('_', '-')} {getattr(self, name)}: must be 1 or more")
        for name in ("max_body_size", "push_budget"):
            if getattr(self, name) < 0:
                raise BadValue(f"--{name.replace('_', '-')} {getattr(self, name)}: must be 0 or more bytes")


CODINGS = ("zstd", "br", "gzip")
# The level a file's kept body is made at (in a thread), and the level used until then and for
# bodies made per response (rendered pages, app responses).
BEST_LEVELS = {"zstd": 19, "br": 11, "gzip": 9}
FAST_LEVELS = {"zstd": 3, "br": 4, "gzip": 6}
_LEVEL_RANGE = {"zstd": (1, 22), "br": (0, 11), "gzip": (1, 9)}


@dataclass(frozen=True, slots=True)
class Compress:
    """On-the-fly compression and Compression Dictionary Transport (pushserve/site/compress)."""

    codings: tuple[str, ...] = CODINGS  # preference order on ties; () = off
    threshold: int = 512  # bodies smaller than this go as they are (Caddy's default)
    levels: dict[str, int] = field(default_factory=lambda: dict(BEST_LEVELS))
    fast_levels: dict[str, int] = field(default_factory=lambda: dict(FAST_LEVELS))
    cache_bytes: int = 32 * 1024 * 1024  # compressed bodies kept per worker
    apps: bool = True  # mounted apps' text responses too
    dictionaries: bool = True  # RFC 9842: previous versions of JS/CSS as dictionaries
    dictionary_dir: Path | None = None  # shared by the workers; None: no store, no dcz
    dictionary_max_age: int = 60  # dev mode: freshness of dictionary-bearing assets

    def __post_init__(self) -> None:
        for c in self.codings:
            if c not in CODINGS:
                raise ConfigError(f"--compress {c!r}: choose from {', '.join(CODINGS)}")
        if len(set(self.codings)) != len(self.codings):
            raise ConfigError(f"--compress {','.join(self.codings)}: a coding is named twice")
        if self.threshold < 0 or self.cache_bytes < 0:
            raise ConfigError("compress threshold and cache size must be 0 or more bytes")
        for table in (self.levels, self.fast_levels):
            for c, level in table.items():
                lo, hi = _LEVEL_RANGE.get(c, (0, -1))
                if isinstance(level, bool) or not isinstance(level, int) or not lo <= level <= hi:
                    raise ConfigError(f"compress level {c} = {level!r}: must be {lo}..{hi}"
                                      if c in _LEVEL_RANGE else f"compress level for unknown coding {c!r}")

    @property
    def on(self) -> bool:
        return bool(self.codings)


def parse_codings(text: str) -> tuple[str, ...]:
    """``zstd,br,gzip`` -> ("zstd", "br", "gzip")."""
    return tuple(c.strip().lower() for c in text.split(",") if c.strip())


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
    reload_dirs: tuple[Path, ...] = ()  # dev mode: folders watched besides the site
    mounts: tuple[Mount, ...] = ()
    app_dir: Path | None = None
    site_vars: dict[str, Any] = field(default_factory=dict)  # the [site] table of pushserve.toml
    limits: Limits = field(default_factory=Limits)
    compress: Compress = field(default_factory=Compress)
    worker_timeout: float = 30.0
    # Test mode: responses carry x-pushserve-worker (the worker's pid); never for production.
    expose_worker: bool = False
    hints_http1: bool = False  # 103 Early Hints over HTTP/1.1 too (old clients and proxies mishandle 1xx)
    follow_symlinks: bool = False  # serve files symlinks lead to outside the site (a tree the owner trusts)
    bench_think: float = 0.0  # seconds a page waits after its 103 and before it is produced (bench only)

    def __post_init__(self) -> None:
        if not self.site.is_dir():
            what = "does not exist" if not self.site.exists() else "is not a folder"
            raise ConfigError(f"site folder {str(self.site)!r} {what}")
        if not 0 <= self.port <= 65535:
            raise BadValue(f"--port {self.port}: must be 0..65535")
        if self.workers < 0:
            raise BadValue(f"--workers {self.workers}: must be 0 (one per core) or more")
        if not math.isfinite(self.worker_timeout) or self.worker_timeout <= 0:
            raise BadValue(f"--worker-timeout {self.worker_timeout}: must be a number of seconds above 0")
        if self.key is not None and self.cert is None:
            raise BadValue("--key needs --cert (the development certificate has its own key)")
        if not math.isfinite(self.bench_think) or not 0 <= self.bench_think <= 60:
            raise BadValue(f"--bench-think {self.bench_think}: must be 0 to 60 seconds")
        if self.max_age < 0:
            raise BadValue(f"--max-age {self.max_age}: must be 0 or more seconds")
        if self.templates not in (True, False, "auto"):
            raise BadValue(f"templates {self.templates!r}: choose true, false or \"auto\"")
        if self.push not in PUSH_MODES:
            raise BadValue(f"--push {self.push!r}: choose one of {', '.join(PUSH_MODES)}")
        if self.reload_dirs and not self.dev:
            raise BadValue("--reload-dir works with --dev")
        for folder in self.reload_dirs:
            if not folder.is_dir():
                raise ConfigError(f"--reload-dir {str(folder)!r}: no such folder")
        prefixes = [m.prefix for m in self.mounts]
        if len(set(prefixes)) != len(prefixes):
            raise BadValue(f"mount prefixes repeat: {', '.join(sorted(prefixes))}")

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def with_(self, **changes: Any) -> Config:
        return replace(self, **changes)


_TOML_KEYS = {"site", "mounts", "push", "templates", "compress", "serve"}
_COMPRESS_KEYS = {"codings", "threshold", "level", "apps", "dictionaries"}


def read_site_toml(site: Path) -> tuple[dict[str, Any], tuple[Mount, ...], dict[str, Any]]:
    """Read SITE/pushserve.toml: ([site] table, mounts, other settings).  Unknown keys are errors,
    so a misspelling is not silently ignored."""
    path = site / SITE_TOML
    if not path.is_file():
        return {}, (), {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadValue(f"{path}: {e}") from None
    unknown = set(data) - _TOML_KEYS
    if unknown:
        raise BadValue(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(sorted(_TOML_KEYS))}")
    site_vars = data.get("site", {})
    if not isinstance(site_vars, dict):
        raise BadValue(f"{path}: [site] must be a table")
    raw_mounts = data.get("mounts", {})
    if not isinstance(raw_mounts, dict) or not all(isinstance(v, str) for v in raw_mounts.values()):
        raise BadValue(f'{path}: [mounts] must map prefixes to "module:attr" strings')
    mounts = tuple(Mount.make(prefix, app) for prefix, app in raw_mounts.items())
    settings: dict[str, Any] = {}
    if "push" in data:
        settings["push"] = data["push"]
    # `templates = …` at the top or in [site]; both must agree.
    chosen = [table["templates"] for table in (data, site_vars) if "templates" in table]
    for value in chosen:
        if not (isinstance(value, bool) or value == "auto"):
            raise BadValue(f'{path}: templates must be true, false or "auto"')
    if len(set(chosen)) > 1:
        raise BadValue(f"{path}: templates is set twice (top level and [site]) to different values")
    if chosen:
        settings["templates"] = chosen[0]
    if "compress" in data:
        settings["compress"] = _compress_table(path, data["compress"])
    if "serve" in data:  # the command line's options; the CLI checks them against its own
        if not isinstance(data["serve"], dict):
            raise BadValue(f"{path}: [serve] must be a table of command-line options")
        settings["serve"] = data["serve"]
    return site_vars, mounts, settings


def _compress_table(path: Path, table: object) -> dict[str, Any]:
    """[compress] of pushserve.toml -> keyword arguments of Compress (checked there)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [compress] must be a table")
    unknown = set(table) - _COMPRESS_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in [compress]: {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(sorted(_COMPRESS_KEYS))}")
    out: dict[str, Any] = {}
    codings = table.get("codings")
    if codings is not None:
        if not isinstance(codings, list) or not all(isinstance(c, str) for c in codings):
            raise ConfigError(f'{path}: [compress] codings must be a list like ["zstd", "br", "gzip"]')
        out["codings"] = tuple(c.lower() for c in codings)
    threshold = table.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise ConfigError(f"{path}: [compress] threshold must be a number of bytes")
        out["threshold"] = threshold
    level = table.get("level")
    if level is not None:
        if not isinstance(level, dict):
            raise ConfigError(f"{path}: [compress] level must be a table like {{ zstd = 19, br = 11 }}")
        out["levels"] = {**BEST_LEVELS, **level}
    for flag in ("apps", "dictionaries"):
        if flag in table:
            if not isinstance(table[flag], bool):
                raise ConfigError(f"{path}: [compress] {flag} must be true or false")
            out[flag] = table[flag]
    return out


def config_field_names() -> set[str]:
    return {f.name for f in fields(Config)}
