"""Command line: ``pushserve SITE [options]`` serves; ``pushserve check SITE [options]`` checks
without serving; ``pushserve cert``, ``pushserve manifest``
and ``pushserve export`` are tools.

Every mistake ends in one line on stderr: a bad value (on the command line or in pushserve.toml)
exits 2, a problem of the machine (files, ports, certificates, apps, templates) exits 1."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pushserve import __version__, lan, tls
from pushserve.config import (
    PUSH_MODES,
    SITE_TOML,
    BadValue,
    Compress,
    Config,
    ConfigError,
    Limits,
    Mount,
    TemplatesMode,
    parse_codings,
    read_site_toml,
)

if TYPE_CHECKING:
    from pushserve.certificates import CertInfo

log = logging.getLogger("pushserve")

SUBCOMMANDS = ("bench", "cert", "check", "export", "manifest", "serve")
LOG_LEVELS = ("debug", "info", "warning", "error")
_TEMPLATES_MODES: dict[str, TemplatesMode] = {"auto": "auto", "on": True, "off": False}
_DEFAULTS = Limits()


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _serve_parser(prog: str = "pushserve", description: str | None = None) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description=description or "Serve a static site over HTTP/2 (+ HTTP/1.1) on "
                "TLS, announcing each page's resources by server push or 103 Early Hints.",
                epilog="Every option can also be set in SITE/pushserve.toml, in a [serve] table, by its long "
                "name (port = 8443, push-budget = 500000, dev = true); the command line wins. "
                "Other commands: 'pushserve check SITE' (check without serving), 'pushserve cert' "
                "(development certificates), 'pushserve manifest SITE' (print the push manifest), "
                "'pushserve bench' (page-load measurements), 'pushserve export SITE OUT' (the site with its headers "
                "and hints for a CDN, nginx, h2o, Caddy).")
    p.add_argument("site", type=Path, help="the folder to serve")
    p.add_argument("--cert", type=Path, help="PEM certificate chain (may also hold the key); "
                   "default: a development certificate made for you")
    p.add_argument("--key", type=Path, help="PEM private key, if not in --cert")
    p.add_argument("--cert-dir", type=Path, metavar="DIR",
                   help="where the development certificate goes (default: beside the CA, see 'pushserve cert --help')")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8443, help="port (8443; 0 picks a free one)")
    p.add_argument("-b", "--bind", metavar="HOST:PORT",
                   help="address and port at once, as Hypercorn and Gunicorn take them: 0.0.0.0:8443, [::1]:8443")
    p.add_argument("-w", "--workers", default="1", help="worker processes (1; 0 or auto = one per CPU)")
    p.add_argument("--push", choices=PUSH_MODES, default=None,
                   help="announce resources by push where allowed, else hints (auto); hints only; off")
    p.add_argument("--no-push-cookie", dest="push_cookie", action="store_false",
                   help="don't remember in a cookie what a browser was already sent")
    _add_templates_options(p)
    p.add_argument("--strict-templates", action="store_true", help="undefined template variables are errors")
    p.add_argument("--mount", action="append", default=[], metavar="PREFIX=MODULE:APP",
                   help="mount an ASGI app at a path prefix (repeatable)")
    p.add_argument("--app-dir", type=Path, help="add this folder to sys.path for --mount apps")
    p.add_argument("--max-age", type=int, default=600, metavar="S",
                   help="Cache-Control max-age of assets; pages are always revalidated (600)")
    p.add_argument("--dev", action="store_true", help="development mode: live reload, no caching")
    p.add_argument("--reload", action="store_true", help="with --dev: restart when mounted apps' code changes")
    p.add_argument("--reload-dir", dest="reload_dirs", action="append", default=[], type=Path, metavar="DIR",
                   help="with --dev: watch this folder too (repeatable): a change reloads the open pages, "
                   "a .py file restarts the worker with --reload")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                   help="least important log lines shown (info; warning hides the access log; debug adds "
                   "the details of what the push manifest could not announce)")
    p.add_argument("--access-log", dest="access_log", action="store_true", default=True,
                   help="one log line per request (on)")
    p.add_argument("--no-access-log", dest="access_log", action="store_false", help="no access log")
    p.add_argument("--header-timeout", type=float, default=_DEFAULTS.header_timeout, metavar="S",
                   help="a TLS handshake and request head must arrive within S seconds (10)")
    p.add_argument("--idle-timeout", type=float, default=_DEFAULTS.idle_timeout, metavar="S",
                   help="close connections idle for S seconds, or with requests in flight but no bytes moving (60)")
    p.add_argument("--graceful-timeout", type=float, default=_DEFAULTS.graceful_timeout, metavar="S",
                   help="on SIGTERM/SIGHUP, in-flight requests may finish within S seconds (10)")
    p.add_argument("--worker-timeout", type=float, default=30.0, metavar="S",
                   help="replace a worker whose event loop is stuck for S seconds (30)")
    p.add_argument("--push-budget", type=int, default=_DEFAULTS.push_budget, metavar="BYTES",
                   help="push at most this many bytes for one page (1 MiB); the rest is hinted")
    p.add_argument("--max-body-size", type=int, default=_DEFAULTS.max_body_size, metavar="BYTES",
                   help="largest request body a mounted app accepts; 413 above it (100 MiB)")
    p.add_argument("--backlog", type=int, default=_DEFAULTS.backlog, metavar="N",
                   help="connections the kernel queues for each worker before it accepts them (1024)")
    p.add_argument("--max-connections", type=int, default=_DEFAULTS.max_connections, metavar="N",
                   help="open connections per worker; past it new ones get 503 (HTTP/1.1) or GOAWAY (HTTP/2) "
                   "and are closed (4096)")
    p.add_argument("--max-handshakes", type=int, default=_DEFAULTS.max_handshakes, metavar="N",
                   help="connections in the TLS handshake at once per worker; the rest wait in the backlog (128)")
    p.add_argument("--compress", metavar="CODINGS", default=None,
                   help="compress text responses on the fly with these codings, preferred first on ties "
                   "(zstd,br,gzip)")
    p.add_argument("--no-compress", dest="compress", action="store_const", const="",
                   help="send every body as it is on disk or as the app made it")
    p.add_argument("--dictionary-dir", type=Path, metavar="DIR",
                   help="where previous versions of JS/CSS are kept as compression dictionaries, shared by "
                   "the workers ($XDG_CACHE_HOME/pushserve/dictionaries/<site>)")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="serve what symlinks in the site lead to outside it, as nginx and Caddy do (off: they "
                   "answer 404, and the start and 'pushserve check' name them)")
    p.add_argument("--hints-http1", action="store_true",
                   help="send 103 Early Hints over HTTP/1.1 too (off: old clients and proxies mishandle 1xx)")
    p.add_argument("--bench-think", type=_duration, default=0.0, metavar="DURATION",
                   help="bench only: each page waits this long (200ms, 0.2s) after its 103 and before it is "
                   "produced, as a slow backend would; the case Early Hints exist for (0)")
    p.add_argument("--expose-worker", action="store_true", help=argparse.SUPPRESS)  # tests only
    p.add_argument("--version", action="version", version=f"pushserve {__version__}")
    return p


def _cert_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pushserve cert", formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Make (once) the local development CA and a certificate signed by it for "
                "localhost, 127.0.0.1, ::1 and any NAMEs, as mkcert does. 'pushserve SITE' without "
                "--cert uses the same certificate, so trusting the CA once covers every site.",
                epilog=f"files (the CA root is $PUSHSERVE_CAROOT, else $XDG_DATA_HOME/pushserve, else "
                f"~/.local/share/pushserve;\nhere: {tls.default_caroot()}):\n"
                f"  rootCA.pem, rootCA-key.pem         the CA (10 years; the key never leaves this machine)\n"
                f"  localhost.pem, localhost-key.pem   the certificate (leaf + CA) and its key, renewed "
                f"30 days\n                                     before expiry or when a name is missing\n"
                "examples:\n"
                "  pushserve cert --spki              pin for chromium --ignore-certificate-errors-spki-list=PIN\n"
                "  pushserve cert mybox.local 192.168.1.20   also valid for a phone on the LAN")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="extra host names or IP addresses the certificate must cover (kept when it is renewed); "
                   "serving on --host 0.0.0.0 adds this machine's names by itself")
    p.add_argument("--cert-dir", type=Path, metavar="DIR",
                   help="put the certificate and key in DIR instead of beside the CA (the CA stays in its root)")
    p.add_argument("--trust", action="store_true",
                   help="add the CA to $HOME/.pki/nssdb (Chromium, Firefox on Linux), needs certutil")
    p.add_argument("--spki", action="store_true",
                   help="print only the CA's SPKI pin (base64 SHA-256) for Chromium's "
                   "--ignore-certificate-errors-spki-list; it accepts every certificate the CA signs, "
                   "from any folder, and survives renewals")
    return p


def _manifest_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pushserve manifest", description="Print the push manifest of a site as JSON "
                "(push_manifest.json format): for each page, the resources a visit is sent, in order. "
                "Save it as SITE/push_manifest.json to edit it; that file then wins over what is inferred.")
    p.add_argument("site", type=Path, help="the site folder")
    _add_templates_options(p)
    p.add_argument("--follow-symlinks", action="store_true",
                   help="announce what symlinks lead to outside the site, as a server started with it serves")
    return p


def _export_parser() -> argparse.ArgumentParser:
    from pushserve.export.run import FORMATS

    p = _Parser(prog="pushserve export", description="Write the site as plain files (pages rendered, "
                ".br/.zst/.gz siblings) with its headers and hints, for a CDN or for nginx, h2o and Caddy: "
                "OUT/public, OUT/public/_headers, OUT/nginx.conf, OUT/h2o.conf, OUT/Caddyfile.")
    p.add_argument("site", type=Path)
    p.add_argument("out", type=Path, help="the folder to write (outside the site)")
    p.add_argument("--format", default=",".join(FORMATS), help=f"what to write ({','.join(FORMATS)})")
    p.add_argument("--base-url", metavar="URL", help="the site's origin, e.g. https://example.com, for "
                   "the server names in the snippets")
    p.add_argument("--max-age", type=int, default=600, metavar="S",
                   help="Cache-Control max-age of assets, as given to 'pushserve SITE' (600)")
    _add_templates_options(p)
    p.add_argument("--force", action="store_true", help="write over an earlier export in a non-empty OUT")
    return p


def _add_templates_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--templates", choices=("auto", "on", "off"), default=None,
                   help="render pages as Jinja2 templates: auto = pages that extend/include/import a template "
                   "of the site (default, or pushserve.toml's templates =); on = every page with {{ {%% {#; off = none")
    p.add_argument("--no-templates", dest="templates", action="store_const", const="off",
                   help="same as --templates off: .html files as they are")


def templates_mode(ns: argparse.Namespace, settings: dict[str, object]) -> TemplatesMode:
    """--templates, else pushserve.toml's templates =, else auto."""
    if ns.templates is not None:
        return _TEMPLATES_MODES[ns.templates]
    value = settings.get("templates", "auto")
    return value if value in (True, False, "auto") else "auto"


def _duration(text: str) -> float:
    """Seconds from "200ms", "0.2s" or "0.2"."""
    value = text.strip().lower()
    scale = 1.0
    if value.endswith("ms"):
        value, scale = value[:-2], 0.001
    elif value.endswith("s"):
        value = value[:-1]
    try:
        return float(value) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 200ms or 0.2s") from None


def _parse_workers(text: str) -> int:
    if text == "auto":
        return 0
    try:
        return int(text)
    except ValueError:
        raise BadValue(f"--workers {text!r}: expected a number or 'auto'") from None


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (the default host)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise BadValue(f"--bind {text!r}: expected HOST:PORT, e.g. 0.0.0.0:8443 or [::1]:8443")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise BadValue(f"--bind {text!r}: put an IPv6 address in brackets: [{host}]:{port}")
    return host or "127.0.0.1", int(port)


# Options with no [serve] key: the site is where the file is, mounts have their [mounts] table.
_NOT_IN_TOML = frozenset({"help", "version", "site", "mount", "expose_worker"})


def toml_defaults(parser: argparse.ArgumentParser, table: dict[str, Any], site: Path) -> dict[str, Any]:
    """The [serve] table of pushserve.toml as argparse defaults (so the command line wins): keys
    are long option names, values checked as the option's own; relative paths are relative to the
    site folder.  An unknown key or a wrong value is a BadValue naming the file and key."""
    where = f"{site / SITE_TOML}: [serve]"
    actions: dict[str, list[argparse.Action]] = {}  # key (the long option, "no-" dropped) -> its actions
    for action in parser._actions:
        if action.dest in _NOT_IN_TOML:
            continue
        for option in action.option_strings:
            if option.startswith("--"):
                name = option[2:]
                if isinstance(action, argparse._StoreFalseAction):
                    name = name.removeprefix("no-")
                actions.setdefault(name, []).append(action)
    defaults: dict[str, Any] = {}
    for key, value in table.items():
        if key not in actions:
            raise BadValue(f"{where} {key!r} is not an option (known: {', '.join(sorted(actions))})")
        defaults[actions[key][0].dest] = _toml_value(actions[key], f"{where} {key} = {value!r}", value, site)
    return defaults


def _toml_value(actions: list[argparse.Action], what: str, value: Any, site: Path) -> Any:
    takes = [a for a in actions if a.nargs != 0]
    if not takes:  # a switch (--dev, --no-push-cookie): true or false
        if not isinstance(value, bool):
            raise BadValue(f"{what}: must be true or false")
        return value
    action = takes[0]
    if isinstance(action, argparse._AppendAction):
        if not isinstance(value, list):
            raise BadValue(f"{what}: must be a list")
        return [_toml_scalar(action, what, v, site) for v in value]
    return _toml_scalar(action, what, value, site)


def _toml_scalar(action: argparse.Action, what: str, value: Any, site: Path) -> Any:
    kind = action.type
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadValue(f"{what}: not a {'number' if kind in (int, float) else 'string'}")
    if kind is int and not isinstance(value, int):
        raise BadValue(f"{what}: must be a whole number")
    if kind is float and isinstance(value, str):
        raise BadValue(f"{what}: must be a number")
    if kind is Path:
        if not isinstance(value, str):
            raise BadValue(f"{what}: must be a path (a string)")
        return site / value  # an absolute value stays absolute
    converted: Any = value if kind in (int, float) else str(value)  # int/float: checked above
    if kind is float:
        converted = float(value)
    if action.choices is not None and converted not in action.choices:
        raise BadValue(f"{what}: choose one of {', '.join(map(str, action.choices))}")
    return converted


def parse_serve_args(argv: Sequence[str], parser: argparse.ArgumentParser | None = None) -> Config:
    """The command line, with pushserve.toml's [serve] table as its defaults, as a Config."""
    parser = parser or _serve_parser()
    ns = parser.parse_args(argv)
    toml = read_site_toml(ns.site) if ns.site.is_dir() else ({}, (), {})
    table = toml[2].get("serve")
    if table:
        parser.set_defaults(**toml_defaults(parser, table, ns.site))
        ns = parser.parse_args(argv)
    setup_logging(ns.log_level)
    try:
        return config_from_args(ns, toml)
    except BadValue as e:  # a value the Config refused may have come from the file: say so
        for key in table or {}:
            given = any(a == f"--{key}" or a.startswith(f"--{key}=") for a in argv)
            if str(e).startswith(f"--{key} ") and not given:
                raise BadValue(f"{e} (set in {ns.site / SITE_TOML}, [serve] {key})") from None
        raise


def config_from_args(ns: argparse.Namespace,
                     toml: tuple[dict[str, Any], tuple[Mount, ...], dict[str, Any]] | None = None) -> Config:
    site = ns.site
    if ns.reload and not ns.dev:
        raise BadValue("--reload works with --dev")
    if ns.dev and str(ns.workers) != "1":
        raise BadValue("--dev runs one worker (its file watcher and live-reload streams live in it); "
                       "drop --workers")
    if toml is None:
        toml = read_site_toml(site) if site.is_dir() else ({}, (), {})
    site_vars, toml_mounts, settings = toml
    host, port = parse_bind(ns.bind) if ns.bind else (ns.host, ns.port)
    mounts = tuple(toml_mounts) + tuple(Mount.parse(m) for m in ns.mount)
    limits = Limits(header_timeout=ns.header_timeout, idle_timeout=ns.idle_timeout,
                    graceful_timeout=ns.graceful_timeout, push_budget=ns.push_budget,
                    max_body_size=ns.max_body_size, backlog=ns.backlog, max_connections=ns.max_connections,
                    max_handshakes=ns.max_handshakes)
    templates = templates_mode(ns, settings)
    compress_args = dict(settings.get("compress", {}))
    if ns.compress is not None:
        compress_args["codings"] = parse_codings(ns.compress)
    compress_args["dictionary_dir"] = ns.dictionary_dir or default_dictionary_dir(site)
    return Config(
        site=site, host=host, port=port, cert=ns.cert, key=ns.key, cert_dir=ns.cert_dir,
        workers=_parse_workers(str(ns.workers)), push=ns.push or settings.get("push", "auto"),
        push_cookie=ns.push_cookie, templates=templates, strict_templates=ns.strict_templates,
        access_log=ns.access_log, max_age=ns.max_age, dev=ns.dev, reload=ns.reload,
        reload_dirs=tuple(ns.reload_dirs), mounts=mounts, app_dir=ns.app_dir,
        site_vars=site_vars, limits=limits, worker_timeout=ns.worker_timeout,
        expose_worker=ns.expose_worker, hints_http1=ns.hints_http1, bench_think=ns.bench_think,
        compress=Compress(**compress_args), follow_symlinks=ns.follow_symlinks,
    )


def default_dictionary_dir(site: Path) -> Path:
    """$XDG_CACHE_HOME/pushserve/dictionaries/<site folder's name>-<CRC-32 of its real path>: one
    store per site, shared by its workers and kept across restarts.  (A CRC, not SHA-256: hashlib
    would load OpenSSL into the master for a folder name, about 3.5 MB.)"""
    import zlib

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    real = os.path.realpath(site)
    return base / "pushserve" / "dictionaries" / f"{Path(real).name}-{zlib.crc32(real.encode()):08x}"


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pushserve[%(process)d] %(message)s"))
    root = logging.getLogger("pushserve")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def checked_certificate(config: Config) -> tuple[Path, Path | None, list[str], CertInfo]:
    """The certificate and key to serve (the user's, or the development one, made when missing)
    once checked, the lines to log about them, and what the certificate says.  Imports
    ``cryptography``."""
    from pushserve import certificates

    lines: list[str] = []
    if config.cert is not None:
        cert, key = config.cert, config.key
    else:
        dev = certificates.ensure_dev_cert(config.cert_dir, names=lan.lan_names(config.host))
        cert, key = dev.cert_file, dev.key_file
        if dev.created:
            lines.append(f"made a development certificate {dev.cert_file} for {' '.join(dev.sans)} "
                         f"(CA {dev.ca_file})")
            url = f"https://localhost:{config.port}/" if config.port else "https://localhost:PORT/ (the port below)"
            lines += [f"  {line}" for line in certificates.trust_instructions(dev.ca_file, url).splitlines()]
    certificates.check_pair(cert, key)
    return cert, key, lines, certificates.describe_certificate(cert)


def resolve_certificate(config: Config) -> tuple[Path, Path | None, list[str], tuple[str, ...]]:
    """``checked_certificate`` for the server, which calls it in a throwaway child
    (``forked.call``): only plain values come back, so the master never loads ``cryptography``;
    the last is the warnings (expired, expiring soon, no subjectAltName)."""
    cert, key, lines, info = checked_certificate(config)
    return cert, key, lines, info.warnings


def cmd_serve(argv: Sequence[str]) -> int:
    from pushserve.server import forked, supervisor

    config = parse_serve_args(argv)
    cert, key, lines, warnings = forked.call("pushserve.cli:resolve_certificate", config)
    for line in lines:
        log.info("%s", line)
    for warning in warnings:
        log.warning("certificate: %s", warning)
    return supervisor.run(config, cert_files=(cert, key))


def cmd_check(argv: Sequence[str]) -> int:
    """Check what serving would: options and pushserve.toml, templates, the push manifest, the
    certificate and the mounts, without binding a port (as ``nginx -t``): run it before a SIGHUP.
    0 and a summary, or 1 and every problem found."""
    from pushserve.app import run_checks

    parser = _serve_parser("pushserve check", "Check a site and its options as serving it would "
                           "(pushserve.toml, templates, the push manifest, the certificate, the mounts) "
                           "without serving it; exit 0 when it would start, 1 with every problem found. "
                           "Takes the same options as 'pushserve SITE'.")
    config = parse_serve_args(argv, parser)
    lines, problems = run_checks(config.with_(dev=False), whole_site=True)
    if not problems:  # unlike a start (lazy), a check reads every page for the manifest
        from pushserve.site.manifest_load import build_push_manifest

        try:
            manifest, _warnings = build_push_manifest(config)
            lines += manifest.summary()
        except ConfigError as e:
            problems.append(str(e))
    try:
        cert, _key, made, info = checked_certificate(config)
        for line in made:
            log.info("%s", line)
        lines.append(f"certificate: {cert}: {' '.join(info.sans) or info.subject}, valid until "
                     f"{info.not_after:%Y-%m-%d}")
        lines += [f"warning: certificate: {w}" for w in info.warnings]
    except tls.CertError as e:
        problems.append(str(e))
    if config.mounts:
        lines.append("mounts: " + ", ".join(f"{m.prefix}={m.app}" for m in config.mounts) + " import")
    for line in lines:
        print(line)
    if problems:
        for problem in problems:
            print(f"pushserve check: {problem}", file=sys.stderr)
        print(f"pushserve check: {config.site}: {len(problems)} problem{'s' if len(problems) > 1 else ''}",
              file=sys.stderr)
        return 1
    print(f"pushserve check: {config.site} is OK")
    return 0


def cmd_cert(argv: Sequence[str]) -> int:
    from pushserve import certificates

    ns = _cert_parser().parse_args(argv)
    for name in ns.names:  # a bad name is a usage mistake: say so before touching any file
        try:
            certificates.dev_name(name)
        except tls.CertError as e:
            raise UsageError(f"pushserve cert: {e}") from None
    dev = certificates.ensure_dev_cert(ns.cert_dir, names=tuple(ns.names))
    if ns.spki:
        print(certificates.spki_sha256_b64(dev.ca_file))
        return 0
    print(f"{'made' if dev.created else 'kept'} {dev.cert_file} and {dev.key_file}")
    print(f"  for {' '.join(dev.sans)}")
    print(f"CA: {dev.ca_file}")
    if ns.trust:
        print(certificates.trust_ca(dev.ca_file))
    else:
        print(certificates.trust_instructions(dev.ca_file))
    return 0


def cmd_manifest(argv: Sequence[str]) -> int:
    from pushserve.site.manifest import to_json
    from pushserve.site.manifest_load import build_push_manifest

    ns = _manifest_parser().parse_args(argv)
    site_vars, mounts, settings = read_site_toml(ns.site) if ns.site.is_dir() else ({}, (), {})
    templates = templates_mode(ns, settings)
    # The mounts count: their apps' folders are private, so never pages of the manifest.
    config = Config(site=ns.site, templates=templates, site_vars=site_vars, mounts=mounts,
                    follow_symlinks=ns.follow_symlinks or _follows_symlinks(settings))
    manifest, warnings = build_push_manifest(config)
    for w in warnings:  # every link that could not be announced, then the summary
        print(f"warning: {w}", file=sys.stderr)
    for line in manifest.summary():
        print(line, file=sys.stderr)
    sys.stdout.write(to_json(manifest.as_dict()))
    return 0


def _follows_symlinks(settings: dict[str, Any]) -> bool:
    """``follow-symlinks = true`` in pushserve.toml's [serve] (what a server started there does)."""
    serve = settings.get("serve", {})
    return isinstance(serve, dict) and serve.get("follow-symlinks") is True


def cmd_export(argv: Sequence[str]) -> int:
    from pushserve.export.run import ExportError, check_base_url, export, parse_formats

    ns = _export_parser().parse_args(argv)
    try:
        formats, base_url = parse_formats(ns.format), check_base_url(ns.base_url)
        site_vars, mounts, settings = read_site_toml(ns.site) if ns.site.is_dir() else ({}, (), {})
        templates = templates_mode(ns, settings)
        config = Config(site=ns.site, templates=templates, site_vars=site_vars, mounts=mounts,
                        push=settings.get("push", "auto"), max_age=ns.max_age,
                        compress=Compress(**settings.get("compress", {})), follow_symlinks=_follows_symlinks(settings))
        export(config, ns.out, formats, base_url, force=ns.force, say=print)
    except ExportError as e:
        if e.usage:
            raise UsageError(f"pushserve export: {e}") from None
        raise ConfigError(f"export: {e}") from None
    except OSError as e:
        raise ConfigError(f"export: {e.strerror or e}: {e.filename}") from None
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    # The instrument parses its own arguments and turns its mistakes into one line and exit 1.
    from pushserve.bench.command import main as bench_main

    return bench_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    command = args[0] if args and args[0] in SUBCOMMANDS else "serve"
    if args and args[0] in SUBCOMMANDS:
        args = args[1:]
    handler = {"serve": cmd_serve, "check": cmd_check, "cert": cmd_cert, "manifest": cmd_manifest,
               "bench": cmd_bench,
               "export": cmd_export}[command]
    try:
        return handler(args)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except BadValue as e:
        print(f"pushserve: {e}", file=sys.stderr)
        return 2
    except (ConfigError, tls.CertError) as e:
        print(f"pushserve: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os._exit(1)
