"""The ``pushserve bench`` command line: arguments → pageload.main, mistakes → one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pushserve.bench.procs import BenchError


class Unsupported(BenchError):
    """An option the server being benched does not offer: a usage mistake (exit 2)."""

if TYPE_CHECKING:
    from pushserve.bench.series import Settings

MODES = ("h1", "h2-off", "h2-hints", "h2-push")  # kept in step with pageload.MODES (no import: fast --help)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise BenchError(f"{message} (see --help)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("site", type=Path, help="the site folder pushserve serves")
    p.add_argument("--page", default="/", help="the page to load (/)")
    p.add_argument("--rtt", default="50ms", help="round-trip time added by the proxy (50ms)")
    p.add_argument("--bandwidth", default="20mbit",
                   help="per-direction limit: a number with bit, kbit, mbit or gbit (bits per second) or "
                   "bps, kbps, mbps (bytes per second), e.g. 20mbit, 500kbit, 2mbps; or 'none' (20mbit)")
    p.add_argument("--runs", type=int, default=10, help="loads per mode (10)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    p.add_argument("--no-warm", dest="warm", action="store_false",
                   help="skip the returning visits (warm cache + cookie) after each cold load")
    p.add_argument("--warm-page", default=None, metavar="PATH",
                   help="the page the returning visit loads (default: --page)")
    p.add_argument("--browser", action="store_true",
                   help="also load the page in headless Chromium (--push off and hints): paint metrics, "
                        "filmstrip, Speed Index; needs chromium, chromedriver")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--html", type=Path, metavar="FILE", help="write an HTML report with waterfalls here")
    p.add_argument("--har", type=Path, metavar="DIR",
                   help="write every load as HAR 1.2 (ROW-runN.har, ROW-median.har) into DIR")
    p.add_argument("--think", metavar="DURATION",
                   help="server think time before each page (passed to pushserve as --bench-think)")


def parser(prog: str = "pushserve bench") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Page loads of one page of SITE through a latency proxy: HTTP/1.1, "
                "HTTP/2 without announcements, with 103 Early Hints, with server push; cold and warm cache.")
    add_arguments(p)
    return p


def settings_from(ns: argparse.Namespace) -> tuple[Settings, list[str]]:
    """(Settings, modes) from parsed arguments; BenchError for values that make no sense."""
    from pushserve.bench.proxy import parse_duration, parse_rate
    from pushserve.bench.series import Settings

    modes = [m.strip() for m in ns.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise BenchError(f"unknown mode(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODES)}")
    try:
        rtt, rate = parse_duration(ns.rtt), parse_rate(ns.bandwidth)
        think = parse_duration(ns.think) if ns.think else None
    except ValueError as e:
        raise BenchError(str(e)) from e
    if think:
        from pushserve.bench.pageload import server_supports

        if not server_supports("--bench-think"):
            raise Unsupported("--think: this pushserve does not support --bench-think (no server think time)")
    return Settings(page=ns.page, rtt=rtt, bits_per_s=rate, runs=ns.runs, warm=ns.warm,
                    warm_page=ns.warm_page, think=think), modes


def run(ns: argparse.Namespace, **extra: Any) -> int:
    """Run the page-load bench for parsed arguments; ``extra`` goes to pageload.main (the repo
    harness passes its peer servers and report sections)."""
    from pushserve.bench import pageload

    settings, modes = settings_from(ns)
    return pageload.main(ns.site, settings, modes, browser=ns.browser, as_json=ns.json, html=ns.html, har=ns.har,
                         **extra)


def main(argv: Sequence[str] | None = None, prog: str = "pushserve bench") -> int:
    try:
        return run(parser(prog).parse_args(argv))
    except BenchError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2 if isinstance(e, Unsupported) else 1
    except KeyboardInterrupt:
        return 130
