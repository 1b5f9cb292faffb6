"""Configuration: frozen dataclasses validated once, holding every setting's default.  No I/O
here beyond asking whether folders exist, and no sys.exit: errors are ConfigError with one
readable line.  The command line and pushserve.toml are read into these by pushserve/options.py."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
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
    line for the user.  The command line exits 1.

    Raised about one setting (``field``, as Config names it, and the ``value`` it had), the
    message is rendered where the value came from: ``--port 70000: must be 0..65535`` on the
    command line, ``site/pushserve.toml: [serve] port: 70000: must be 0..65535`` from the file
    (pushserve/options.py); ``reason`` is the part after the value."""

    def __init__(self, reason: str, *, field: str = "", value: object = None) -> None:
        super().__init__(reason)
        self.reason, self.field, self.value = reason, field, value

    def __str__(self) -> str:
        return self.at(self.field.replace("_", "-"), " ") if self.field else self.reason

    def at(self, where: str, sep: str = ": ") -> str:
        """The message for a value found at ``where`` (``--port``, ``FILE: [serve] port``); ``sep``
        goes between ``where`` and the value (a flag is followed by its value as it was typed)."""
        if self.value is None:
            return f"{where}: {self.reason}"
        return f"{where}{sep}{show_value(self.value)}: {self.reason}"


class BadValue(ConfigError):
    """A value on the command line or in pushserve.toml that is wrong on any machine: a usage
    mistake, exit 2 (as argparse's own)."""


def show_value(value: object) -> str:
    """A value as a user wrote it: numbers bare, text quoted, true/false, lists with commas."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return repr(str(value))
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "''"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True, slots=True)
class Mount:
    prefix: str  # "/api": no trailing slash; "" never (the site owns "/")
    app: str  # "module:attr" or "module:factory()"

    @classmethod
    def parse(cls, text: str) -> Mount:
        """``PREFIX=MODULE:ATTR``, as --mount takes it."""
        prefix, sep, app = text.partition("=")
        if not sep or not app:
            raise BadValue("expected PREFIX=MODULE:ATTR, e.g. /api=myapp:app")
        return cls.make(prefix, app)

    @classmethod
    def make(cls, prefix: str, app: str) -> Mount:
        prefix = prefix.strip().rstrip("/")
        if not prefix.startswith("/") or any(c in prefix for c in "?#% "):
            raise BadValue(f"prefix {prefix or '/'!r} must be a path like /api (not the site root)")
        if not re.fullmatch(r"[\w.]+:[\w.]+(\(\))?", app.strip()):
            raise BadValue(f"app {app!r} is not MODULE:ATTR or MODULE:FACTORY()")
        return cls(prefix, app.strip())


def _bad(field: str, value: object, reason: str) -> BadValue:
    return BadValue(reason, field=field, value=value)


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
                raise _bad(name, value, "must be a number of seconds above 0")
        for name in ("max_concurrent_streams", "backlog", "max_connections", "max_handshakes"):
            if getattr(self, name) < 1:
                raise _bad(name, getattr(self, name), "must be 1 or more")
        for name in ("max_body_size", "push_budget"):
            if getattr(self, name) < 0:
                raise _bad(name, getattr(self, name), "must be 0 or more bytes")


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

    def __post_init__(self) -> None:
        for c in self.codings:
            if c not in CODINGS:
                raise _bad("codings", c, f"choose from {', '.join(CODINGS)}")
        if len(set(self.codings)) != len(self.codings):
            raise _bad("codings", self.codings, "a coding is named twice")
        for name in ("threshold", "cache_bytes"):
            if getattr(self, name) < 0:
                raise _bad(name, getattr(self, name), "must be 0 or more bytes")
        for name in ("levels", "fast_levels"):
            for c, level in getattr(self, name).items():
                lo, hi = _LEVEL_RANGE.get(c, (0, -1))
                if c not in _LEVEL_RANGE:
                    raise _bad(name, None, f"{c} is not a coding (choose from {', '.join(CODINGS)})")
                if isinstance(level, bool) or not isinstance(level, int) or not lo <= level <= hi:
                    raise _bad(name, None, f"{c} = {show_value(level)}: must be {lo}..{hi}")

    @property
    def on(self) -> bool:
        return bool(self.codings)


LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of a served site, with its default: the one place defaults are written
    (the command line and pushserve.toml read into this through pushserve/options.py)."""

    site: Path
    host: str = "127.0.0.1"
    port: int = 8443
    cert: Path | None = None
    key: Path | None = None
    cert_dir: Path | None = None  # None: beside the development CA (tls.default_caroot())
    workers: int = 1  # 0: one per CPU
    push: PushMode = "auto"
    push_cookie: bool = True
    templates: TemplatesMode = "auto"
    strict_templates: bool | None = None  # undefined variables are errors; None: in dev mode
    access_log: bool = True
    log_level: str = "info"
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
    http3: bool = True  # HTTP/3 on the same port over UDP, where that port can be bound
    bench_think: float = 0.0  # seconds a page waits after its 103 and before it is produced (bench only)

    def __post_init__(self) -> None:
        if not self.site.is_dir():
            what = "does not exist" if not self.site.exists() else "is not a folder"
            raise ConfigError(f"site folder {str(self.site)!r} {what}")
        if not 0 <= self.port <= 65535:
            raise _bad("port", self.port, "must be 0..65535")
        if self.workers < 0:
            raise _bad("workers", self.workers, "must be 0 (one per core) or more")
        if self.dev and self.workers != 1:
            raise _bad("workers", self.workers, "dev mode runs one worker (its file watcher and "
                       "live-reload streams live in it)")
        if not math.isfinite(self.worker_timeout) or self.worker_timeout <= 0:
            raise _bad("worker_timeout", self.worker_timeout, "must be a number of seconds above 0")
        if self.key is not None and self.cert is None:
            raise _bad("key", None, "needs a certificate to go with it (the development certificate "
                       "has its own key)")
        if not math.isfinite(self.bench_think) or not 0 <= self.bench_think <= 60:
            raise _bad("bench_think", self.bench_think, "must be 0 to 60 seconds")
        if self.max_age < 0:
            raise _bad("max_age", self.max_age, "must be 0 or more seconds")
        if self.templates not in (True, False, "auto"):
            raise _bad("templates", self.templates, 'choose true, false or "auto"')
        if self.push not in PUSH_MODES:
            raise _bad("push", self.push, f"choose one of {', '.join(PUSH_MODES)}")
        if self.log_level not in LOG_LEVELS:
            raise _bad("log_level", self.log_level, f"choose one of {', '.join(LOG_LEVELS)}")
        if self.reload and not self.dev:
            raise _bad("reload", None, "works in dev mode only")
        if self.reload_dirs and not self.dev:
            raise _bad("reload_dirs", None, "works in dev mode only")
        for folder in self.reload_dirs:
            if not folder.is_dir():
                raise ConfigError("no such folder", field="reload_dirs", value=folder)
        prefixes = [m.prefix for m in self.mounts]
        if len(set(prefixes)) != len(prefixes):
            raise _bad("mounts", None, f"a prefix is mounted twice: {', '.join(sorted(prefixes))}")

    @property
    def strict(self) -> bool:
        """Whether an undefined template variable is an error (it is in dev mode, unless told not)."""
        return self.dev if self.strict_templates is None else self.strict_templates

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def with_(self, **changes: Any) -> Config:
        return replace(self, **changes)

    def without_dev(self) -> Config:
        """The same site as production serves it (for check, manifest and export)."""
        return self.with_(dev=False, reload=False, reload_dirs=()) if self.dev else self
