"""Every option of a served site in one table, and the two places a user writes them.

A row (``Option``) names a setting once: ``--push-budget`` on the command line and
``push-budget = …`` in the [serve] table of SITE/pushserve.toml, any other place the file may set
it (``push`` at the top, ``[compress] codings``), the Config field it fills and how its value is
read (its ``Kind``).  Defaults are Config's own (config.py); the help shows them from there.

The command line (cli.py builds argparse from this table) and pushserve.toml (``read_site_file``)
each give values by option name with the place each was written (``Where``); ``make_config`` lays
the command line over the file over the defaults.  A value Config refuses is reported where the
user wrote it — ``--port 70000: must be 0..65535`` or ``site/pushserve.toml: [serve] port: 70000:
must be 0..65535`` — never under a flag the user did not type."""

from __future__ import annotations

import os
import tomllib
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from pushserve.config import (
    BEST_LEVELS,
    LOG_LEVELS,
    PUSH_MODES,
    SITE_TOML,
    BadValue,
    Compress,
    Config,
    ConfigError,
    Limits,
    Mount,
)

# -- kinds: how a value is read -------------------------------------------------------------------

class Kind:
    """Text (a string typed on the command line) or a TOML value -> the value Config takes.  A
    wrong shape is a BadValue whose reason the reader places (``must be a whole number``)."""

    metavar: str | None = None
    switch = False  # takes no value on the command line: --dev / --no-dev
    many = False  # repeatable on the command line, a list in the file

    def text(self, text: str) -> Any:
        return text

    def toml(self, value: object, site: Path) -> Any:
        if not isinstance(value, str):
            raise BadValue("must be a string")
        return self.text(value)

    def show(self, value: Any) -> str:
        return str(value)


class Text(Kind):
    def __init__(self, metavar: str | None = None, choices: tuple[str, ...] = ()) -> None:
        # Choices are checked by Config (one rule); here they only show in the help.
        self.metavar = "{" + ",".join(choices) + "}" if choices else metavar


class Whole(Kind):
    def __init__(self, metavar: str = "N") -> None:
        self.metavar = metavar

    def text(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise BadValue("must be a whole number") from None

    def toml(self, value: object, site: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue("must be a whole number")
        return value


class Bytes(Whole):
    def show(self, value: Any) -> str:
        mib, rest = divmod(value, 1024 * 1024)
        return f"{mib} MiB" if mib and not rest else str(value)


class Seconds(Kind):
    metavar = "S"

    def text(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise BadValue("must be a number of seconds") from None

    def toml(self, value: object, site: Path) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadValue("must be a number of seconds")
        return float(value)

    def show(self, value: Any) -> str:
        return f"{value:g}"


class Duration(Seconds):
    """Seconds from "200ms", "0.2s" or "0.2"."""

    metavar = "DURATION"

    def text(self, text: str) -> float:
        value, scale = text.strip().lower(), 1.0
        if value.endswith("ms"):
            value, scale = value[:-2], 0.001
        elif value.endswith("s"):
            value = value[:-1]
        try:
            return float(value) * scale
        except ValueError:
            raise BadValue("is not a duration like 200ms or 0.2s") from None

    def toml(self, value: object, site: Path) -> float:
        return self.text(value) if isinstance(value, str) else super().toml(value, site)


class Switch(Kind):
    switch = True

    def toml(self, value: object, site: Path) -> bool:
        if not isinstance(value, bool):
            raise BadValue("must be true or false")
        return value

    def show(self, value: Any) -> str:
        return "on" if value else "off"


class FilePath(Kind):
    """A path: on the command line as typed (from the working folder), in the file relative to
    the site folder (an absolute one stays absolute)."""

    def __init__(self, metavar: str | None = None) -> None:
        self.metavar = metavar

    def text(self, text: str) -> Path:
        return Path(text)

    def toml(self, value: object, site: Path) -> Any:
        if not isinstance(value, str):
            raise BadValue("must be a path (a string)")
        return site / value


class Paths(FilePath):
    many = True

    def toml(self, value: object, site: Path) -> Any:
        if not isinstance(value, list):
            raise BadValue("must be a list of paths")
        return tuple(FilePath.toml(self, v, site) for v in value)


class Workers(Kind):
    metavar = "N"

    def text(self, text: str) -> int:
        if text == "auto":
            return 0
        try:
            return int(text)
        except ValueError:
            raise BadValue("expected a number or 'auto'") from None

    def toml(self, value: object, site: Path) -> int:
        if isinstance(value, str):
            return self.text(value)
        return Whole().toml(value, site)


class Bind(Kind):
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (the default host) -> (host, port)."""

    metavar = "HOST:PORT"

    def text(self, text: str) -> tuple[str, int]:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise BadValue("expected HOST:PORT, e.g. 0.0.0.0:8443 or [::1]:8443")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise BadValue(f"put an IPv6 address in brackets: [{host}]:{port}")
        return host or default_of("host"), int(port)


class Codings(Kind):
    """``zstd,br,gzip`` on the command line; that text or a list in the file; false or "" for none."""

    metavar = "CODINGS"

    def text(self, text: str) -> tuple[str, ...]:
        return tuple(c.strip().lower() for c in text.split(",") if c.strip())

    def toml(self, value: object, site: Path) -> tuple[str, ...]:
        if value is False:
            return ()
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise BadValue('must be a list like ["zstd", "br", "gzip"]')
        return tuple(c.strip().lower() for c in value)

    def show(self, value: Any) -> str:
        return ",".join(value)


class Templates(Kind):
    metavar = "{auto,on,off}"
    _TEXT: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}

    def text(self, text: str) -> bool | str:
        if text not in self._TEXT:
            raise BadValue("choose auto, on or off")
        return self._TEXT[text]

    def toml(self, value: object, site: Path) -> bool | str:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in self._TEXT:
            return self._TEXT[value]
        raise BadValue('must be true, false or "auto"')

    def show(self, value: Any) -> str:
        return {True: "on", False: "off"}.get(value, str(value))


class Levels(Kind):
    """[compress] level = { zstd = 19, br = 11 }: the others keep their best level."""

    def toml(self, value: object, site: Path) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BadValue("must be a table like { zstd = 19, br = 11 }")
        return {**BEST_LEVELS, **value}


class Mounts(Kind):
    metavar = "PREFIX=MODULE:APP"
    many = True

    def text(self, text: str) -> Mount:
        return Mount.parse(text)


# -- the table ------------------------------------------------------------------------------------

Place = tuple[str, str]  # (table, key) in pushserve.toml; table "" is the top level


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # --NAME on the command line, NAME = … in [serve]
    field: str  # Config's field: "port", "limits.backlog", "compress.codings"; "host,port" for two
    kind: Kind
    help: str  # "{default}" shows Config's default
    places: tuple[Place, ...] | None = None  # in pushserve.toml; None: [serve] NAME
    short: str = ""  # -b, -w
    off: tuple[str, Any, str] | None = None  # a flag that turns it off, its value, its help
    flag: bool = True  # False: pushserve.toml only
    hidden: bool = False  # for tests: not in --help

    @property
    def where_in_file(self) -> tuple[Place, ...]:
        return (("serve", self.name),) if self.places is None else self.places

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def default(self) -> Any:
        return default_of(self.field)

    def describe(self) -> str:
        if "{default}" not in self.help:
            return self.help
        return self.help.replace("{default}", self.kind.show(self.default()))


SECONDS, WHOLE, BYTES, SWITCH, DIR = Seconds(), Whole(), Bytes("BYTES"), Switch(), FilePath("DIR")

OPTIONS: tuple[Option, ...] = (
    Option("cert", "cert", FilePath(), "PEM certificate chain (may also hold the key); default: a development "
           "certificate made for you"),
    Option("key", "key", FilePath(), "PEM private key, if not in --cert"),
    Option("cert-dir", "cert_dir", DIR, "where the development certificate goes (default: beside the CA, "
           "see 'pushserve cert --help')"),
    Option("host", "host", Text(), "address to listen on ({default})"),
    Option("port", "port", Whole("PORT"), "port ({default}; 0 picks a free one)"),
    Option("bind", "host,port", Bind(), "address and port at once, as Hypercorn and Gunicorn take them: "
           "0.0.0.0:8443, [::1]:8443", short="-b"),
    Option("workers", "workers", Workers(), "worker processes ({default}; 0 or auto = one per CPU)", short="-w"),
    Option("push", "push", Text(choices=PUSH_MODES), "announce resources by push where allowed, else hints "
           "(auto); hints only; off", places=(("", "push"), ("serve", "push"))),
    Option("push-cookie", "push_cookie", SWITCH, "remember in a cookie what a browser was already sent "
           "({default})"),
    Option("templates", "templates", Templates(), "render pages as Jinja2 templates: auto = pages that "
           "extend/include/import a template of the site (default); on = every page with {{ {%% {#; off = none",
           places=(("", "templates"), ("site", "templates"), ("serve", "templates")),
           off=("--no-templates", "off", "same as --templates off: .html files as they are")),
    Option("strict-templates", "strict_templates", SWITCH, "undefined template variables are errors "
           "(on with --dev)"),
    Option("mount", "mounts", Mounts(), "mount an ASGI app at a path prefix (repeatable; pushserve.toml: "
           "[mounts])", places=()),
    Option("app-dir", "app_dir", DIR, "add this folder to sys.path for --mount apps"),
    Option("max-age", "max_age", Whole("S"), "Cache-Control max-age of assets; pages are always "
           "revalidated ({default})"),
    Option("dev", "dev", SWITCH, "development mode: live reload, nothing cached, strict templates"),
    Option("reload", "reload", SWITCH, "with --dev: restart when mounted apps' code changes"),
    Option("reload-dir", "reload_dirs", Paths("DIR"), "with --dev: watch this folder too (repeatable): a "
           "change reloads the open pages, a .py file restarts the worker with --reload"),
    Option("log-level", "log_level", Text(choices=LOG_LEVELS), "least important log lines shown "
           "({default}; warning hides the access log; debug adds the details of what the push manifest "
           "could not announce)"),
    Option("access-log", "access_log", SWITCH, "one log line per request ({default})"),
    Option("header-timeout", "limits.header_timeout", SECONDS, "a TLS handshake and request head must "
           "arrive within S seconds ({default})"),
    Option("idle-timeout", "limits.idle_timeout", SECONDS, "close connections idle for S seconds, or with "
           "requests in flight but no bytes moving ({default})"),
    Option("graceful-timeout", "limits.graceful_timeout", SECONDS, "on SIGTERM/SIGHUP, in-flight requests "
           "may finish within S seconds ({default})"),
    Option("worker-timeout", "worker_timeout", SECONDS, "replace a worker whose event loop is stuck for S "
           "seconds ({default})"),
    Option("push-budget", "limits.push_budget", BYTES, "push at most this many bytes for one page "
           "({default}); the rest is hinted"),
    Option("max-body-size", "limits.max_body_size", BYTES, "largest request body a mounted app accepts; "
           "413 above it ({default})"),
    Option("backlog", "limits.backlog", WHOLE, "connections the kernel queues for each worker before it "
           "accepts them ({default})"),
    Option("max-connections", "limits.max_connections", WHOLE, "connections per worker, those not yet "
           "through their handshake included; at the limit a newcomer takes the place of the oldest that "
           "sent no ClientHello, or else gets 503 (HTTP/1.1) or GOAWAY (HTTP/2) and is closed ({default})"),
    Option("max-handshakes", "limits.max_handshakes", WHOLE, "connections in the TLS handshake at once per "
           "worker; the rest queue, and a handshake older than 1 s gives its place to them ({default})"),
    Option("compress", "compress.codings", Codings(), "compress text responses on the fly with these "
           "codings, preferred first on ties ({default})",
           places=(("serve", "compress"), ("compress", "codings")),
           off=("--no-compress", "", "send every body as it is on disk or as the app made it")),
    Option("dictionary-dir", "compress.dictionary_dir", DIR, "where previous versions of JS/CSS are kept "
           "as compression dictionaries, shared by the workers ($XDG_CACHE_HOME/pushserve/dictionaries/<site>)"),
    Option("follow-symlinks", "follow_symlinks", SWITCH, "serve what symlinks in the site lead to outside it, "
           "as nginx and Caddy do ({default}: they answer 404, and the start and 'pushserve check' name them)"),
    Option("http3", "http3", SWITCH, "HTTP/3 (QUIC) on the same port number over UDP, announced by Alt-Svc "
           "({default}; --no-http3: TCP only)"),
    Option("hints-http1", "hints_http1", SWITCH, "send 103 Early Hints over HTTP/1.1 too ({default}: old "
           "clients and proxies mishandle 1xx)"),
    Option("bench-think", "bench_think", Duration(), "bench only: each page waits this long (200ms, 0.2s) "
           "after its 103 and before it is produced, as a slow backend would; the case Early Hints exist "
           "for ({default})"),
    Option("expose-worker", "expose_worker", SWITCH, "", places=(), hidden=True),
    # pushserve.toml only: [compress]
    Option("compress-threshold", "compress.threshold", BYTES, "", places=(("compress", "threshold"),),
           flag=False),
    Option("compress-level", "compress.levels", Levels(), "", places=(("compress", "level"),), flag=False),
    Option("compress-apps", "compress.apps", SWITCH, "", places=(("compress", "apps"),), flag=False),
    Option("compress-dictionaries", "compress.dictionaries", SWITCH, "",
           places=(("compress", "dictionaries"),), flag=False),
)
BY_NAME = {option.name: option for option in OPTIONS}
_PARTS: dict[str, type] = {"limits": Limits, "compress": Compress}


def default_of(path: str) -> Any:
    """Config's default for a field ("port", "limits.backlog")."""
    cls: type = Config
    *parts, name = path.split(".")
    for part in parts:
        cls = _PARTS[part]
    [f] = [f for f in fields(cls) if f.name == name]
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None if f.default is MISSING else f.default


# -- where a value was written, and what each reader gives ----------------------------------------

@dataclass(frozen=True, slots=True)
class Where:
    """A flag as typed (``--port``, ``-w``) or a key of pushserve.toml (``FILE: [serve] port``)."""

    text: str
    in_file: bool

    @classmethod
    def flag(cls, flag: str) -> Where:
        return cls(flag, False)

    @classmethod
    def key(cls, path: Path, table: str, key: str) -> Where:
        return cls(f"{path}: " + (f"[{table}] {key}" if table else key).rstrip(), True)

    def error(self, e: ConfigError) -> ConfigError:
        """The same error, told at this place."""
        return type(e)(e.at(self.text, ": " if self.in_file else " "))


Given = tuple[Any, Where]  # a value read, and where


def read_text(option: Option, raw: Any, where: Where) -> Any:
    """One command-line value (text; a bool for a switch) as the option's value."""
    if option.kind.switch or not isinstance(raw, str):
        return raw
    try:
        return option.kind.text(raw)
    except BadValue as e:
        raise where.error(BadValue(e.reason, value=raw)) from None


def read_toml(option: Option, value: object, where: Where, site: Path) -> Any:
    try:
        return option.kind.toml(value, site)
    except BadValue as e:
        raise where.error(BadValue(e.reason, value=value if isinstance(value, (str, int, float)) else None)) \
            from None


@dataclass(frozen=True, slots=True)
class SiteFile:
    """What SITE/pushserve.toml says: the [site] table (template variables), the [mounts], and
    options by name with where each was written."""

    path: Path
    site_vars: dict[str, Any] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    values: dict[str, Given] = field(default_factory=dict)
    mounts_where: Where | None = None


_FREE_TABLES = ("site", "mounts")  # tables whose keys are the user's own


def read_site_file(site: Path) -> SiteFile:
    """Read SITE/pushserve.toml (an empty SiteFile when there is none).  Every mistake — TOML
    syntax, an unknown key or table, a value of the wrong shape, a setting given twice — is a
    BadValue naming the file, the table and the key."""
    path = site / SITE_TOML
    if not path.is_file():
        return SiteFile(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadValue(f"{path}: {e}") from None
    places = {place: option for option in OPTIONS for place in option.where_in_file}
    tables = sorted({table for table, _ in places if table} | set(_FREE_TABLES))
    top = sorted(key for table, key in places if not table)
    for key, value in data.items():
        if key in tables:
            if not isinstance(value, dict):
                raise BadValue(f"{path}: [{key}]: must be a table")
        elif key not in top:
            raise BadValue(f"{path}: {key}: not a setting (known: {', '.join(top + [f'[{t}]' for t in tables])})")
    for table in tables:
        if table in _FREE_TABLES:
            continue
        for key in data.get(table, {}):
            if (table, key) not in places:
                known = sorted(k for t, k in places if t == table)
                raise BadValue(f"{path}: [{table}] {key}: not an option (known: {', '.join(known)})")
    values: dict[str, Given] = {}
    for (table, key), option in places.items():
        source = data.get(table, {}) if table else data
        if key not in source:
            continue
        where = Where.key(path, table, key)
        value = read_toml(option, source[key], where, site)
        if option.name in values and values[option.name][0] != value:
            other = values[option.name][1].text.removeprefix(f"{path}: ")
            raise where.error(BadValue(f"also set as {other}, to a different value"))
        values[option.name] = (value, where)
    mounts = []
    for prefix, app in data.get("mounts", {}).items():
        where = Where.key(path, "mounts", repr(prefix))
        if not isinstance(app, str):
            raise where.error(BadValue('must be an app as "module:attr"'))
        try:
            mounts.append(Mount.make(prefix, app))
        except BadValue as e:
            raise where.error(e) from None
    return SiteFile(path, dict(data.get("site", {})), tuple(mounts), values,
                    Where.key(path, "mounts", "") if mounts else None)


# -- both readers into one Config ----------------------------------------------------------------

def make_config(site: Path, given: Mapping[str, Given] | None = None, file: SiteFile | None = None) -> Config:
    """The Config of ``site``: Config's defaults, under its pushserve.toml (read here unless
    given), under ``given`` (the command line's values).  Mounts add up: the file's, then the
    command line's."""
    if file is None:
        file = read_site_file(site) if site.is_dir() else SiteFile(site / SITE_TOML)
    values: dict[str, Any] = {}
    wheres: dict[str, Where] = {}
    # The file, then the command line over it; within each, table order (-b after --host and
    # --port, so it wins over them, but a --port typed wins over the file's bind).
    for source in (file.values, given or {}):
        for option in OPTIONS:
            if option.name not in source:
                continue
            value, where = source[option.name]
            names = option.field.split(",")
            for name, one in zip(names, value if len(names) > 1 else (value,), strict=True):
                values[name], wheres[name] = one, where
    values["mounts"] = file.mounts + tuple(values.get("mounts", ()))
    if "mounts" not in wheres and file.mounts_where is not None:
        wheres["mounts"] = file.mounts_where
    values["site_vars"] = file.site_vars
    if "compress.dictionary_dir" not in values:
        values["compress.dictionary_dir"] = default_dictionary_dir(site)

    def part(prefix: str) -> dict[str, Any]:
        return {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}

    with _told_where_written(wheres, "limits."):
        limits = Limits(**part("limits."))
    with _told_where_written(wheres, "compress."):
        compress = Compress(**part("compress."))
    with _told_where_written(wheres, ""):
        return Config(site=site, limits=limits, compress=compress,
                      **{k: v for k, v in values.items() if "." not in k})


@contextmanager
def _told_where_written(wheres: Mapping[str, Where], prefix: str) -> Iterator[None]:
    """An error about one field is told where that field's value was written."""
    try:
        yield
    except ConfigError as e:
        where = wheres.get(prefix + e.field) if e.field else None
        if where is None:
            raise
        raise where.error(e) from None


def default_dictionary_dir(site: Path) -> Path:
    """$XDG_CACHE_HOME/pushserve/dictionaries/<site folder's name>-<CRC-32 of its real path>: one
    store per site, shared by its workers and kept across restarts.  (A CRC, not SHA-256: hashlib
    would load OpenSSL into the master for a folder name, about 3.5 MB.)"""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    real = os.path.realpath(site)
    return base / "pushserve" / "dictionaries" / f"{Path(real).name}-{zlib.crc32(real.encode()):08x}"

