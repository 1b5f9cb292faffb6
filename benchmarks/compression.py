"""``python -m benchmarks.compression``: what on-the-fly compression buys and costs.

- ``pageload``: bytes on the wire and page-load time for a site (default site_example) with and
  without compression, at 50 ms RTT and 5 Mbit/s (the instrument's latency proxy and loader; the
  loader accepts gzip, as browsers do, so the compressed rows are gzip).
- ``throughput``: requests/s for one compressible ~100 KB script asked for with
  ``accept-encoding: gzip`` over HTTP/2 (h2load): pushserve (the compressed body is cached, made
  at gzip level 9), nginx with ``gzip on`` (level 6, compressed per request), Granian with
  Starlette's GZipMiddleware (level 6, per request) and Granian's own file server (identity; it
  does not compress) in the same run, in rotated order.

Loopback only; server pinned to CPU 0 and clients to CPU 1 when there are two.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import httpx

from benchmarks import servers
from benchmarks.loadtools import h2load
from pushserve.bench import pageload
from pushserve.bench.certs import make_cert
from pushserve.bench.procs import LOOPBACK, BenchError, Place, Starter, can_pin

REPO = Path(__file__).resolve().parent.parent
GZIP_HEADER = "accept-encoding: gzip"
_NGINX_GZIP = ("types { text/javascript js; text/css css; text/html html; } gzip on; gzip_comp_level 6; "
               "gzip_min_length 512; gzip_types text/javascript text/css;")


def _log(s: str) -> None:
    print(s, file=sys.stderr, flush=True)


def script(size: int = 100_000) -> bytes:
    """A compressible ES module of about ``size`` bytes (typical minified-ish code: repeated
    identifiers, varying numbers), the same every run."""
    rng = random.Random(15)
    words = ["push", "stream", "frame", "window", "header", "value", "cache", "render", "token", "node"]
    out, n = [], 0
    while n < size:
        line = (f"export function f{len(out)}(a, b) {{ return a.{rng.choice(words)}(b, "
                f"'{rng.choice(words)}{rng.randint(0, 9999)}') + {rng.randint(0, 99999)}; }}\n")
        out.append(line)
        n += len(line)
    return "".join(out).encode()


@contextmanager
def _pushserve_base(spec: servers.ServeSpec, extra: tuple[str, ...], place: Place) -> Iterator[str]:
    """A page-load starter: pushserve with hints on loopback (the proxy shapes), its base URL."""
    if place != LOOPBACK:
        raise BenchError("the compression comparison runs behind the latency proxy only")
    with servers.pushserve(spec, "hints", 1, extra) as served:
        yield served.base


def run_pageload(site: Path, runs: int, rtt: float, bits_per_s: float) -> str:
    settings = pageload.Settings("/", rtt, bits_per_s, runs, warm=False)
    with tempfile.TemporaryDirectory(prefix="bench-cz-") as tmp:
        spec = servers.ServeSpec(site, make_cert(Path(tmp)), Path(tmp))
        starters: dict[str, Starter] = {
            name: functools.partial(_pushserve_base, spec, extra)
            for name, extra in (("compressed", ()), ("identity", ("--no-compress",)))}
        variants = [pageload.Variant(name, mode, name) for mode in ("h2-hints", "h1")
                    for name in ("compressed", "identity")]
        series = pageload.run(starters, variants, settings, spec.cert, _log)
    return pageload.format_table(pageload.summarise(series, rtt), settings)


def run_throughput(repeat: int, requests: int) -> str:
    if not can_pin():
        _log("note: taskset or a second CPU missing; server and client are not pinned")
    with tempfile.TemporaryDirectory(prefix="bench-cz-") as tmp, ExitStack() as stack:
        docroot = Path(tmp) / "site"
        docroot.mkdir()
        body = script()
        (docroot / "app.js").write_bytes(body)
        spec = servers.ServeSpec(docroot, make_cert(Path(tmp)), Path(tmp))
        peers: list[tuple[str, Callable[[], AbstractContextManager[servers.Served]], str]] = [
            ("pushserve", functools.partial(servers.pushserve, spec), "/app.js")]
        if servers.nginx_available():
            peers.append(("nginx gzip", functools.partial(servers.nginx, spec, _NGINX_GZIP), "/app.js"))
        else:
            _log("skipped nginx: not installed")
        if servers.granian_available():
            peers.append(("granian+gzip", functools.partial(
                servers.granian, spec, "benchmarks.peers.starlette_gzip:app"), "/app.js"))
            peers.append(("granian static", functools.partial(servers.granian, spec), "/app.js"))
        else:
            _log("skipped granian: not installed")
        urls: dict[str, str] = {}
        sizes: dict[str, str] = {}
        ca = Path(tmp) / "ca" / "rootCA.pem"
        for name, start, path in peers:
            urls[name] = stack.enter_context(start()).base + path
            h2load(urls[name], min(requests, 2_000), headers=[GZIP_HEADER])  # warm-up; pushserve's level-9 body is made
            with httpx.Client(http2=True, verify=str(ca)) as c:
                r = c.get(urls[name], headers={"accept-encoding": "gzip"})
            if r.status_code != 200 or r.content != body:
                raise BenchError(f"{name} did not serve the script ({r.status_code})")
            coding = r.headers.get("content-encoding", "identity")
            sizes[name] = f"{coding} {r.num_bytes_downloaded}"
        runs: dict[str, list[float]] = {name: [] for name in urls}
        names = list(urls)
        for i in range(repeat):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                rate = h2load(urls[name], requests, headers=[GZIP_HEADER]).rate
                runs[name].append(rate)
                _log(f"run {i + 1}/{repeat} {name:<15} {rate:>9.0f} req/s")
    lines = [f"{len(body)}-byte script, h2load -c 8 -m 10 -n {requests} -H '{GZIP_HEADER}', {repeat} runs, medians",
             f"{'server':<15} {'body on wire':>16} {'req/s':>9}   runs"]
    base = statistics.median(runs["pushserve"])
    for name, xs in runs.items():
        lines.append(f"{name:<15} {sizes[name]:>16} {statistics.median(xs):>9.0f}   "
                     + " ".join(f"{x:.0f}" for x in xs))
    lines += [f"pushserve / {name}: {base / statistics.median(xs):.2f}x" for name, xs in runs.items()
              if name != "pushserve"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compression", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    pl = sub.add_parser("pageload", help="bytes and load time with and without compression")
    pl.add_argument("site", nargs="?", type=Path, default=REPO / "site_example")
    pl.add_argument("--runs", type=int, default=5)
    pl.add_argument("--rtt", type=float, default=0.050, help="seconds (0.050)")
    pl.add_argument("--mbit", type=float, default=5.0, help="bandwidth in Mbit/s (5)")
    tp = sub.add_parser("throughput", help="req/s for a compressible 100 KB script, gzip accepted")
    tp.add_argument("--repeat", type=int, default=3)
    tp.add_argument("--requests", type=int, default=20_000)
    ns = p.parse_args(argv)
    try:
        if ns.mode == "pageload":
            print(run_pageload(ns.site, ns.runs, ns.rtt, ns.mbit * 1e6))
        else:
            print(run_throughput(ns.repeat, ns.requests))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
