"""Command line: ``pushserve SITE [options]`` serves; ``pushserve check SITE [options]`` checks
without serving; ``pushserve cert``, ``pushserve manifest``
and ``pushserve export`` are tools.

Every mistake ends in one line on stderr: a bad value (on the command line or in pushserve.toml)
exits 2, a problem of the machine (files, ports, certificates, apps, templates) exits 1.  The
options themselves are a table in pushserve/options.py, read here through argparse."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pushserve import __version__, lan, tls
from pushserve.config import BadValue, Config, ConfigError
from pushserve.options import OPTIONS, Given, Option, Where, make_config, read_text

if TYPE_CHECKING:
    from pushserve.certificates import CertInfo

log = logging.getLogger("pushserve")

SUBCOMMANDS = ("bench", "cert", "check", "export", "manifest", "serve")


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
    add_options(p, [o.name for o in OPTIONS])
    p.add_argument("--version", action="version", version=f"pushserve {__version__}")
    return p


class _Given(argparse.Action):
    """Keeps an option's text and the flag it was typed as (no default: what is not typed is
    left to pushserve.toml and Config).  A switch is true, or false as --no-NAME; an ``off`` flag
    gives its own value."""

    def __init__(self, option_strings: list[str], dest: str, option: Option, **kwargs: Any) -> None:
        self.option = option
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        flag = option_string or self.option_strings[0]
        if self.nargs == 0:
            values = self.const if self.const is not None else not flag.startswith("--no-")
        typed = (values, flag)
        setattr(namespace, self.dest, [*getattr(namespace, self.dest, []), typed] if self.option.kind.many else typed)


def add_options(p: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """The options of the table (pushserve/options.py) named, as argparse options."""
    for option in OPTIONS:
        if option.name not in names or not option.flag:
            continue
        flags = [f for f in (option.short, f"--{option.name}") if f]
        extra: dict[str, Any] = {"metavar": option.kind.metavar}
        if option.kind.switch:
            flags.append(f"--no-{option.name}")
            if option.default():  # the flag that changes something first
                flags.reverse()
            extra = {"nargs": 0}
        help_text = argparse.SUPPRESS if option.hidden else option.describe()
        p.add_argument(*flags, dest=option.dest, action=_Given, option=option, help=help_text, **extra)
        if option.off is not None:
            flag, value, help_text = option.off
            p.add_argument(flag, dest=option.dest, action=_Given, option=option, nargs=0, const=value, help=help_text)


def given_options(ns: argparse.Namespace) -> dict[str, Given]:
    """The options typed on the command line, read, each with the flag it was typed as."""
    given: dict[str, Given] = {}
    for option in OPTIONS:
        got = getattr(ns, option.dest, None)
        if got is None:
            continue
        if option.kind.many:
            values = tuple(read_text(option, raw, Where.flag(flag)) for raw, flag in got)
            given[option.name] = (values, Where.flag(got[-1][1]))
        else:
            raw, flag = got
            given[option.name] = (read_text(option, raw, Where.flag(flag)), Where.flag(flag))
    return given


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
    p.add_argument("--remove", action="append", default=[], metavar="NAME",
                   help="make the certificate again without NAME, a name added earlier (repeatable)")
    p.add_argument("--trust", action="store_true",
                   help="add the CA to $HOME/.pki/nssdb (Chromium, Firefox on Linux), needs certutil")
    p.add_argument("--untrust", action="store_true",
                   help="take the CA out of $HOME/.pki/nssdb again (the files stay), needs certutil")
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
    add_options(p, ["templates", "follow-symlinks"])
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
    p.add_argument("--root", metavar="DIR", help="the folder OUT/public will be served from on the server, "
                   "for the nginx, h2o and Caddy snippets (default: a placeholder to fill in)")
    add_options(p, ["max-age", "templates"])
    p.add_argument("--force", action="store_true", help="write over an earlier export in a non-empty OUT")
    return p


def parse_serve_args(argv: Sequence[str], parser: argparse.ArgumentParser | None = None) -> Config:
    """The command line over pushserve.toml over Config's defaults, as a Config."""
    ns = (parser or _serve_parser()).parse_args(argv)
    config = make_config(ns.site, given_options(ns))
    setup_logging(config.log_level)
    return config


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

    def certificate(port: int) -> tuple[Path, Path | None]:  # once the port is bound
        cert, key, lines, warnings = forked.call("pushserve.cli:resolve_certificate", config.with_(port=port))
        for line in lines:
            log.info("%s", line)
        for warning in warnings:
            log.warning("certificate: %s", warning)
        return cert, key

    return supervisor.run(config, certificate=certificate)


def cmd_check(argv: Sequence[str]) -> int:
    """Check what serving would: options and pushserve.toml, templates, the push manifest, the
    certificate and the mounts, without binding a port (as ``nginx -t``): run it before a SIGHUP.
    0 and a summary, or 1 and every problem found."""
    from pushserve.app import run_checks

    parser = _serve_parser("pushserve check", "Check a site and its options as serving it would "
                           "(pushserve.toml, templates, the push manifest, the certificate, the mounts) "
                           "without serving it; exit 0 when it would start, 1 with every problem found. "
                           "Takes the same options as 'pushserve SITE'.")
    parser.add_argument("--broken-links-ok", action="store_true",
                        help="a link to a file the site does not have is a warning, not a problem (exit 0)")
    ns = parser.parse_args(argv)
    config = parse_serve_args(argv, parser).without_dev()
    lines, problems = run_checks(config, whole_site=True)
    if not problems:  # unlike a start (lazy), a check reads every page for the manifest
        from pushserve.site.broken_links import broken_links
        from pushserve.site.manifest_load import build_push_manifest

        try:
            manifest, _warnings = build_push_manifest(config)
            lines += manifest.summary()
            broken = [f"broken link: {link}" for link in broken_links(manifest)]
            lines += [f"warning: {note}" for note in manifest.notes() if "is not a file of the site" not in note]
            if ns.broken_links_ok:
                lines += [f"warning: {b}" for b in broken]
            else:
                problems += broken
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
    if ns.trust and ns.untrust:
        raise UsageError("pushserve cert: --trust or --untrust, not both")
    sans = {}
    for name in [*ns.names, *ns.remove]:  # a bad name is a usage mistake: say so before touching any file
        try:
            sans[name] = certificates.dev_name(name)
        except tls.CertError as e:
            raise UsageError(f"pushserve cert: {e}") from None
    both = sorted({sans[n] for n in ns.names} & {sans[n] for n in ns.remove})
    if both:
        raise UsageError(f"pushserve cert: {', '.join(both)}: added and removed at once")
    always = sorted({sans[n] for n in ns.remove} & set(certificates.BASE_SANS))
    if always:
        raise UsageError(f"pushserve cert: {', '.join(always)}: always in the development certificate")
    if ns.untrust:  # the CA as it is; nothing is made for this
        ca_file = tls.default_ca_file()
        if not ca_file.is_file():
            print(f"no development CA at {ca_file}: nothing to untrust")
            return 0
        print(certificates.untrust_ca(ca_file))
        return 0
    dev = certificates.ensure_dev_cert(ns.cert_dir, names=tuple(ns.names), remove=tuple(ns.remove))
    for name in ns.remove:
        print(f"removed {sans[name]}" if sans[name] in dev.removed else f"{sans[name]} was not in the certificate")
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
    # pushserve.toml as serving reads it; the mounts count: their apps' folders are private, so
    # never pages of the manifest.
    config = make_config(ns.site, given_options(ns)).without_dev()
    manifest, warnings = build_push_manifest(config)
    for w in warnings:  # every link that could not be announced, then the summary
        print(f"warning: {w}", file=sys.stderr)
    for line in manifest.summary():
        print(line, file=sys.stderr)
    sys.stdout.write(to_json(manifest.as_dict()))
    return 0


def cmd_export(argv: Sequence[str]) -> int:
    from pushserve.export.run import ExportError, check_base_url, export, parse_formats

    ns = _export_parser().parse_args(argv)
    try:
        formats, base_url = parse_formats(ns.format), check_base_url(ns.base_url)
        config = make_config(ns.site, given_options(ns))  # the export turns dev mode off itself
        export(config, ns.out, formats, base_url, force=ns.force, say=print, root=ns.root)
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
