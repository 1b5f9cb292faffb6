"""The ``pushserve bench`` command line: arguments → pageload.main, mistakes → one line.

A mistake in a value (an unknown mode, ``--rtt 50 ms``, ``--runs 0``) is a usage error: exit 2,
before anything starts.  A problem of the machine (no such site folder, an output folder that
does not exist, a browser that is not installed) is exit 1 — and every one that can be seen
before the first load is checked then, so no run is lost at the end to a typo."""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pushserve.bench.procs import BenchError


class Usage(BenchError):
    """A mistake in the command line: exit 2."""


class Unsupported(Usage):
    """An option the server being benched does not offer: a usage mistake (exit 2)."""

if TYPE_CHECKING:
    from pushserve.bench.series import Settings

# Kept in step with pageload.MODES / ENGINES and network.SHAPERS (no import: fast --help).
MODES = ("h1", "h2-off", "h2-hints", "h2-push", "h3-off", "h3-hints")
DEFAULT_MODES = MODES[:4]  # h3 is asked for: it needs the packet shaper and a browser
ENGINES = ("loader", "chromium", "firefox")
SHAPERS = ("auto", "packet", "proxy")
# Enough to resolve one RTT (50 ms) between h2-off and h2-hints on site_example in both
# browsers: see benchmarks/README.md, "How many runs".
DEFAULT_RUNS = 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise Usage(f"{message} (see --help)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("site", type=Path, help="the site folder pushserve serves")
    p.add_argument("--page", default="/", help="the page to load (/)")
    p.add_argument("--engine", default=None, metavar="LIST",
                   help=f"comma-separated engines: {', '.join(ENGINES)} (loader: the bench's browser-like client; "
                        "chromium needs chromium + chromium-driver, firefox needs firefox-esr + certutil) (loader)")
    p.add_argument("--browser", action="store_true",
                   help="also load the page in headless Chromium: the same as adding chromium to --engine")
    p.add_argument("--no-control", dest="control", action="store_false",
                   help="skip Chromium's control rows (loads with no DevTools Network domain attached)")
    p.add_argument("--rtt", default="50ms", help="round-trip time the network adds (50ms)")
    p.add_argument("--bandwidth", default="20mbit",
                   help="per-direction limit: a number with bit, kbit, mbit or gbit (bits per second) or "
                   "bps, kbps, mbps (bytes per second), e.g. 20mbit, 500kbit, 2mbps; or 'none' (20mbit)")
    p.add_argument("--loss", default="0", help="packets lost per direction, in percent: 1%%, 0.5 (0; packet shaper)")
    p.add_argument("--jitter", default="0ms", help="± on each one-way delay, uniform: 5ms (0ms; packet shaper)")
    p.add_argument("--shaper", default="auto",
                   help="packet: the server in a network namespace, every packet shaped (needs root); proxy: a "
                        "latency proxy on loopback (TCP only); auto: packet where possible; packet,proxy: both, "
                        "the same rows through each, interleaved, compared (auto)")
    p.add_argument("--runs", default=str(DEFAULT_RUNS),
                   help=f"loads per row, interleaved across rows ({DEFAULT_RUNS}: resolves one RTT on site_example)")
    p.add_argument("--warmup", default="1", metavar="N",
                   help="rounds loaded before the measured ones and not counted: server caches, browsers (1)")
    p.add_argument("--modes", default=",".join(DEFAULT_MODES),
                   help=f"comma-separated subset of {','.join(MODES)} (h3: browsers, packet shaper) "
                        f"({','.join(DEFAULT_MODES)})")
    p.add_argument("--no-warm", dest="warm", action="store_false",
                   help="skip the loader's returning visits (warm cache + cookie) after each cold load")
    p.add_argument("--warm-page", default=None, metavar="PATH",
                   help="the page the returning visit loads (default: --page)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--html", type=Path, metavar="FILE", help="write an HTML report with waterfalls here")
    p.add_argument("--har", type=Path, metavar="DIR",
                   help="write every load as HAR 1.2 (ROW-runN.har, ROW-median.har) into DIR")
    p.add_argument("--think", metavar="DURATION",
                   help="server think time before each page (passed to pushserve as --bench-think)")


def parser(prog: str = "pushserve bench") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Page loads of one page of SITE under a shaped network (RTT, bandwidth, "
                "loss, jitter): HTTP/1.1, HTTP/2 without announcements, with 103 Early Hints, with server push; "
                "HTTP/3 without announcements and with hints (browsers); "
                "in the bench's loader, headless Chromium and Firefox; with verdicts and their confidence.")
    add_arguments(p)
    return p


def _list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in items if x not in allowed]
    if unknown or not items:
        raise Usage(f"unknown {what}(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def parse_loss(text: str) -> float:
    """``"1%"`` or ``"1"`` → 0.01."""
    m = re.fullmatch(r"\s*([\d.]+)\s*%?\s*", text)
    if not m or float(m.group(1)) >= 100:
        raise ValueError(f"not a loss rate: {text!r} (try 1%)")
    return float(m.group(1)) / 100


def engines_from(ns: argparse.Namespace) -> list[str]:
    engines = _list(ns.engine, ENGINES, "engine") if ns.engine is not None else ["loader"]
    if ns.browser and "chromium" not in engines:
        engines.append("chromium")
    return engines


def settings_from(ns: argparse.Namespace) -> tuple[Settings, list[str]]:
    """(Settings, modes) from parsed arguments; Usage for values that make no sense."""
    from pushserve.bench.proxy import parse_duration, parse_rate
    from pushserve.bench.series import Settings

    modes = _list(ns.modes, MODES, "mode")
    try:
        rtt, rate = parse_duration(ns.rtt), parse_rate(ns.bandwidth)
        think = parse_duration(ns.think) if ns.think else None
        loss, jitter = parse_loss(ns.loss), parse_duration(ns.jitter)
    except ValueError as e:
        raise Usage(str(e)) from e
    if not re.fullmatch(r"\d+", ns.runs.strip()) or int(ns.runs) < 1:
        raise Usage(f"--runs {ns.runs}: a whole number of at least 1")
    if not re.fullmatch(r"\d+", ns.warmup.strip()):
        raise Usage(f"--warmup {ns.warmup}: a whole number")
    if not ns.page.startswith("/") or (ns.warm_page is not None and not ns.warm_page.startswith("/")):
        raise Usage("--page and --warm-page are paths starting with /")
    shapers = _list(ns.shaper, SHAPERS, "shaper")
    if "auto" in shapers and len(shapers) > 1:
        raise Usage("--shaper auto stands alone; to compare, name them: --shaper packet,proxy")
    if (loss or jitter) and "proxy" in shapers:
        raise Usage("--loss and --jitter need the packet shaper (--shaper packet or auto)")
    h3 = [m for m in modes if m.startswith("h3")]
    if h3 and "proxy" in shapers:
        raise Usage(f"--modes {','.join(h3)}: HTTP/3 is UDP, which --shaper proxy cannot carry; use --shaper packet")
    if think:
        from pushserve.bench.pageload import server_supports

        if not server_supports("--bench-think"):
            raise Unsupported("--think: this pushserve does not support --bench-think (no server think time)")
    return Settings(page=ns.page, rtt=rtt, bits_per_s=rate, runs=int(ns.runs), warm=ns.warm,
                    warm_page=ns.warm_page, think=think, loss=loss, jitter=jitter, shaper=",".join(shapers),
                    warmup=int(ns.warmup)), modes


def run(ns: argparse.Namespace, **extra: Any) -> int:
    """Run the page-load bench for parsed arguments; ``extra`` goes to pageload.main (the repo
    harness passes its peer servers and report sections)."""
    from pushserve.bench import pageload

    engines = engines_from(ns)
    settings, modes = settings_from(ns)
    return pageload.main(ns.site, settings, modes, engines=tuple(engines), control=ns.control, as_json=ns.json,
                         html=ns.html, har=ns.har, **extra)


class Terminated(BaseException):
    """SIGTERM: unwound like Ctrl-C, so servers, browsers and namespaces are taken down."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None, prog: str = "pushserve bench") -> int:
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return run(parser(prog).parse_args(argv))
    except BenchError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2 if isinstance(e, Usage) else 1
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
