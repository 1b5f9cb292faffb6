"""``python -m benchmarks throughput|pageload ...`` — see benchmarks/README.md.

``pageload`` is pushserve's own instrument (``pushserve bench``, in pushserve/bench/) with what only
this checkout has on top: ``--peers`` (nginx and h2o serving the same page with their own push
configuration) and ``--compare`` (throughput vs Hypercorn, nginx, h2o in the same report)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pushserve.bench.command import add_arguments
from pushserve.bench.procs import BenchError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="pushserve benchmarks (loopback only)")
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput", help="requests/s for a 1 KB file: pushserve vs Hypercorn (+ nginx, h2o)")
    t.add_argument("--repeat", type=int, default=3, help="repetitions per server (3)")
    t.add_argument("--requests", type=int, default=50_000, help="h2load requests per run (50000)")
    t.add_argument("--duration", type=int, default=5, help="wrk seconds per run (5)")
    t.add_argument("--no-c", dest="include_c", action="store_false", help="skip nginx and h2o")
    t.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl = sub.add_parser("pageload", help="page loads (h1, h2 off/hints/push; cold and warm) under an RTT")
    add_arguments(pl)
    pl.add_argument("--peers", action="store_true", help="also load the page from nginx and h2o (if installed)")
    pl.add_argument("--compare", action="store_true",
                    help="also measure throughput (pushserve vs Hypercorn, and nginx/h2o with --peers) "
                         "and add it to the report")
    pl.add_argument("--compare-repeat", type=int, default=3, help="throughput repetitions with --compare (3)")
    pl.add_argument("--compare-requests", type=int, default=20_000, help="h2load requests per run (20000)")
    pl.add_argument("--compare-duration", type=int, default=3, help="wrk seconds per run (3)")
    return p


def _log(s: str) -> None:
    print(s, file=sys.stderr, flush=True)


def _pageload(ns: argparse.Namespace) -> int:
    from pushserve.bench import command

    extra: dict[str, Any] = {}
    if ns.peers:
        from benchmarks.pagepeers import peer_setup

        extra["extra"] = peer_setup(ns.site, ns.page, _log)
    if ns.compare:
        from benchmarks import throughput
        from pushserve.bench.report import table_html

        def sections() -> list[tuple[str, str]]:
            summary = throughput.run(ns.compare_repeat, ns.compare_requests, ns.compare_duration,
                                     include_c=ns.peers, log=_log)
            _log(throughput.format_table(summary))
            rows = summary["results"]
            assert isinstance(rows, list)
            cols = [("server", "server", "{}"), ("protocol", "protocol", "{}"), ("median", "median req/s", "{:.0f}")]
            body = table_html(rows, cols)
            ratios = summary["ratio_pushserve_hypercorn"]
            assert isinstance(ratios, dict)
            body += "<p>pushserve / Hypercorn: " + ", ".join(
                f"{proto} {r:.2f}x" if r else f"{proto} n/a" for proto, r in ratios.items()) + (
                f". h2 = h2load {summary['h2load']}, h1 = wrk {summary['wrk']}, on a "
                f"{summary['file_bytes']}-byte file.</p>")
            return [("Throughput (requests/s, medians)", body)]

        extra["sections"] = sections
    return command.run(ns, **extra)


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        if ns.mode == "throughput":
            from benchmarks import throughput

            return throughput.main(ns.repeat, ns.requests, ns.duration, ns.json, ns.include_c)
        if ns.mode == "pageload":
            return _pageload(ns)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
