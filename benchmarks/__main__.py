"""``python -m benchmarks throughput|pageload ...`` — see benchmarks/README.md.

``pageload`` is pushserve's own instrument (``pushserve bench``, in pushserve/bench/) with what only
this checkout has on top: ``--peers`` (nginx and h2o serving the same page with their own push
configuration) and ``--compare`` (the throughput table in the same report)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.throughput import C_SERVERS, SERVERS
from pushserve.bench.command import add_arguments
from pushserve.bench.procs import BenchError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    values = [_positive(part) for part in text.split(",")]
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a count given twice: {text!r}")
    return values


def _server_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown server {', '.join(unknown) or text!r}; "
                                         f"choose from {','.join(SERVERS)}")
    return names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="pushserve benchmarks (loopback only)")
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput", help="the throughput and memory table: pushserve vs Granian, Hypercorn, "
                                          "nginx, h2o (h2load -m10/-m1, 1 MiB over h2, wrk, RSS/PSS)")
    t.add_argument("--repeat", type=_positive, default=3, help="repetitions per server and load (3)")
    t.add_argument("--duration", type=_positive, default=3,
                   help="seconds per run: wrk's duration, and what h2load runs are sized to (3)")
    t.add_argument("--requests", type=_positive, default=1_000_000,
                   help="at most this many requests in one h2load run (1000000)")
    t.add_argument("--servers", type=_server_list, default=list(SERVERS),
                   help=f"comma-separated, in table order (default {','.join(SERVERS)})")
    t.add_argument("--no-c", dest="include_c", action="store_false", help="skip nginx and h2o")
    t.add_argument("--pushserve-workers", type=_int_list, default=[1, 4],
                   help="pushserve worker counts, one column each; ratios are to the first (1,4)")
    t.add_argument("--json", action="store_true", help="print JSON instead of the Markdown table")
    t.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                   help="also measure another pushserve checkout (a before/after in one run)")
    t.add_argument("--pushserve-option", action="append", default=[], metavar="OPTION",
                   help="pass this option to every pushserve started (repeatable; --pushserve-option=--no-http3)")
    pl = sub.add_parser("pageload", help="page loads (h1, h2 off/hints/push; cold and warm) under an RTT")
    add_arguments(pl)
    pl.add_argument("--peers", action="store_true", help="also load the page from nginx and h2o (if installed)")
    pl.add_argument("--compare", action="store_true",
                    help="also measure throughput and memory (pushserve, Granian, Hypercorn; nginx and h2o "
                         "with --peers) and add the table to the report")
    pl.add_argument("--compare-repeat", type=_positive, default=3, help="throughput repetitions with --compare (3)")
    pl.add_argument("--compare-requests", type=_positive, default=1_000_000,
                    help="at most this many requests in one h2load run (1000000)")
    pl.add_argument("--compare-duration", type=_positive, default=3, help="seconds per throughput run (3)")
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
        from benchmarks.throughput_report import html_table, markdown

        def sections() -> list[tuple[str, str]]:
            names = [n for n in SERVERS if ns.peers or n not in C_SERVERS]
            summary = throughput.run(ns.compare_repeat, ns.compare_duration, ns.compare_requests, names,
                                     (1,), log=_log)
            _log(markdown(summary))
            return [("Throughput and memory (medians)", html_table(summary))]

        extra["sections"] = sections
    return command.run(ns, **extra)


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        if ns.mode == "throughput":
            from benchmarks import throughput

            names = [n for n in ns.servers if ns.include_c or n not in C_SERVERS]
            return throughput.main(ns.repeat, ns.duration, ns.requests, names, ns.pushserve_workers, ns.json,
                                   ns.baseline, ns.pushserve_option)
        if ns.mode == "pageload":
            return _pageload(ns)
    except BenchError as e:
        from pushserve.bench.command import Usage

        print(f"bench: {e}", file=sys.stderr)
        return 2 if isinstance(e, Usage) else 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
