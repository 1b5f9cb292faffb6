"""``python -m bench throughput|pageload ...`` — see bench/README.md."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.procs import BenchError

# Kept here (not imported from bench.pageload) so --help does not import the loader stack.
MODES = ("h1", "h2-off", "h2-hints", "h2-push")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="pushserve benchmarks (loopback only)")
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput", help="requests/s for a 1 KB file: pushserve vs Hypercorn (+ nginx, h2o)")
    t.add_argument("--repeat", type=int, default=3, help="repetitions per server (3)")
    t.add_argument("--requests", type=int, default=50_000, help="h2load requests per run (50000)")
    t.add_argument("--duration", type=int, default=5, help="wrk seconds per run (5)")
    t.add_argument("--no-c", dest="include_c", action="store_false", help="skip nginx and h2o")
    t.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl = sub.add_parser("pageload", help="cold page loads (h1, h2 push off/hints/push) under an RTT")
    pl.add_argument("site", type=Path, help="the site folder pushserve serves")
    pl.add_argument("--page", default="/", help="the page to load (/)")
    pl.add_argument("--rtt", default="50ms", help="round-trip time added by the proxy (50ms)")
    pl.add_argument("--bandwidth", default="20mbit", help="per-direction limit, or 'none' (20mbit)")
    pl.add_argument("--runs", type=int, default=10, help="loads per mode (10)")
    pl.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl.add_argument("--html", type=Path, help="write an HTML report with waterfalls here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        if ns.mode == "throughput":
            from bench import throughput

            return throughput.main(ns.repeat, ns.requests, ns.duration, ns.json, ns.include_c)
        if ns.mode == "pageload":
            from bench import pageload
            from bench.proxy import parse_duration, parse_rate

            modes = [m.strip() for m in ns.modes.split(",") if m.strip()]
            unknown = [m for m in modes if m not in MODES]
            if unknown or not modes:
                raise BenchError(f"unknown mode(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODES)}")
            try:
                rtt, rate = parse_duration(ns.rtt), parse_rate(ns.bandwidth)
            except ValueError as e:
                raise BenchError(str(e)) from e
            return pageload.main(ns.site, ns.page, rtt, rate, ns.runs, ns.json, ns.html, modes)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
