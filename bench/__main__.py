"""``python -m bench throughput|pageload ...`` — see bench/README.md."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench.procs import BenchError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="pushserve benchmarks (loopback only)")
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput", help="requests/s for a 1 KB file: pushserve vs Hypercorn (+ nginx, h2o)")
    t.add_argument("--repeat", type=int, default=3, help="repetitions per server (3)")
    t.add_argument("--requests", type=int, default=50_000, help="h2load requests per run (50000)")
    t.add_argument("--duration", type=int, default=5, help="wrk seconds per run (5)")
    t.add_argument("--no-c", dest="include_c", action="store_false", help="skip nginx and h2o")
    t.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        if ns.mode == "throughput":
            from bench import throughput

            return throughput.main(ns.repeat, ns.requests, ns.duration, ns.json, ns.include_c)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
