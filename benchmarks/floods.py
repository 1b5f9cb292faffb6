"""``python -m benchmarks.floods``: how each server holds up against clients that hold its resources
without using them, and what a polite client sees meanwhile (SECURITY.md, "Availability").

Scenarios (each against a fresh server; the attack's sizes can be changed):

- ``handshakes``: 3,000 TCP connections that never finish the TLS handshake: 2,000 send nothing,
  900 half a ClientHello, 100 a whole one; a connection the server closes is opened again (an
  attacker keeps up the pressure; ``--one-shot``: not);
- ``h2-unread``: 10 HTTP/2 connections x 100 streams of a 1 MiB file with windows of 2^31-1,
  never read (CVE-2019-9517, "internal data buffering");
- ``h1-pipeline``: one HTTP/1.1 connection pipelining 200,000 GETs of a page and 20,000 of the
  1 MiB file, never reading;
- ``slow-readers``: 100 HTTP/1.1 downloads of the 1 MiB file, each read at 512 B/s.

Meanwhile a polite client opens a new connection for every request (HTTP/1.1, or HTTP/2 for
``h2-unread``), one after the other, and checks every answer byte for byte.  Reported: the polite
client's median and worst latency, its failures, the server's memory growth (the sum over its
processes of the peak RSS during the attack, ``VmHWM`` after resetting it, minus their RSS
before) and what it still holds a few seconds after the attack ended.

Servers: pushserve (this checkout, or another with ``--baseline``), nginx and h2o with ample
connection limits (8192: the flood is not meant to meet their configured caps), one worker each,
pinned to CPU 0; this process (all the clients) pins itself to CPU 1.  Loopback only; every attack
and every client is bounded in count and time."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import servers
from benchmarks.memory import process_tree
from pushserve.bench.certs import make_cert
from pushserve.bench.procs import CLIENT_CPU, BenchError, can_pin
from tests.support import attacks

MIB = 1024 * 1024
SMALL = b"p { color: green }\n" * 50  # 1 KB
PAGE = b"<!doctype html><title>page</title>\n" + b"<p>" + b"pipelined " * 400 + b"</p>\n"  # ~4 KB
CONNECTIONS = 8192  # nginx's worker_connections and h2o's max-connections here


@dataclass
class Result:
    scenario: str
    server: str
    polite: attacks.Served
    growth_kib: int
    held_kib: int
    note: str = ""
    detail: dict[str, object] = field(default_factory=dict)


def make_docroot(folder: Path) -> Path:
    root = folder / "docroot"
    root.mkdir()
    (root / "small.css").write_bytes(SMALL)
    (root / "page.html").write_bytes(PAGE)
    (root / "big.bin").write_bytes(random.Random(21).randbytes(MIB))
    return root


def _tree(pid: int) -> list[int]:
    return [p for p, _, _ in process_tree(pid)]


def _memory(pids: Sequence[int], read: Callable[[int], int]) -> dict[int, int]:
    """``read`` of each process still there (a peer's helper may come and go, h2o's OCSP updater)."""
    found = {}
    for p in pids:
        with contextlib.suppress(OSError, AssertionError):
            found[p] = read(p)
    return found


def _growth(before: dict[int, int], after: dict[int, int]) -> int:
    """KiB gained by the processes present both times."""
    return sum(after[p] - before[p] for p in before if p in after)


def _client_ctx(ca: Path) -> Callable[[], ssl.SSLContext]:
    def make() -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(ca))
    return make


@contextlib.contextmanager
def _polite_running(polite: attacks.Polite, pause: float = 0.05) -> Iterator[None]:
    stop = threading.Event()
    t = threading.Thread(target=polite.run, args=(stop, pause), daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(120)


def run_scenario(name: str, served: servers.Served, ca: Path, ns: argparse.Namespace) -> Result:
    host, port = "127.0.0.1", int(served.base.rsplit(":", 1)[1])
    ctx = _client_ctx(ca)
    polite = attacks.Polite(host, port, ctx, "/small.css", SMALL, alpn="h2" if name == "h2-unread" else "http/1.1")
    for _ in range(3):  # warm: file caches, lazy imports, the first TLS handshakes
        polite.once()
    if polite.served.failures:
        raise BenchError(f"{name}: the server does not answer before the attack: {polite.served.failures[0]}")
    polite.served = attacks.Served()
    pids = _tree(served.pid)
    before = _memory(pids, attacks.rss_kib)
    for p in pids:
        attacks.reset_peak(p)
    detail: dict[str, object] = {}
    if name == "handshakes":
        flood = attacks.IdleFlood(host, port, silent=ns.silent, half=ns.half, whole=ns.whole,
                                  reopen=not ns.one_shot)
        stop = threading.Event()
        launched = threading.Event()

        def attack() -> None:
            flood.launch()
            launched.set()
            flood.run_until(stop)

        t = threading.Thread(target=attack, daemon=True)
        t.start()
        launched.wait(60)
        with _polite_running(polite):
            time.sleep(ns.duration)  # the measurement window: a benchmark's pace
        stop.set()
        t.join(60)
        detail = {"closed_by_server": dict(flood.closed_by_server), "opened": flood.opened,
                  "failed_connects": flood.failed_connects}
        flood.close()
    elif name == "h2-unread":
        with _polite_running(polite):
            conns = attacks.h2_unread(host, port, ctx(), connections=ns.h2_connections,
                                      streams=ns.h2_streams, path="/big.bin")
            time.sleep(ns.hold)
        for c in conns:
            c.close()
    elif name == "h1-pipeline":
        page = b"GET /page.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
        big = b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"
        with _polite_running(polite):
            pipeliners = [attacks.Pipeliner(host, port, ctx(), [(page, ns.pipelined_pages), (big, ns.pipelined_big)],
                                            stall=ns.hold) for _ in range(ns.pipeliners)]
            for pipeliner in pipeliners:
                pipeliner.stalled.wait(ns.hold * 4)
            time.sleep(1.0)
            detail = {"sent": sum(p.sent_requests for p in pipeliners), "of": sum(p.total for p in pipeliners)}
            for pipeliner in pipeliners:
                pipeliner.stop()
    elif name == "slow-readers":
        with _polite_running(polite):
            readers = attacks.slow_readers(host, port, ctx(), count=ns.readers, path="/big.bin",
                                           rate=ns.rate, duration=ns.slow_duration)
            detail = {"read_bytes": readers}
    else:
        raise BenchError(f"unknown scenario {name!r}")
    growth = _growth(before, _memory(pids, attacks.peak_kib))
    time.sleep(ns.settle)  # what is still held a while after the attack ended
    held = _growth(before, _memory(pids, attacks.rss_kib))
    return Result(name, "", polite.served, growth, held, detail=detail)


def server_entries(names: Sequence[str], baseline: Path | None, extra: Sequence[str]) -> list[
        tuple[str, Callable[[servers.ServeSpec], AbstractContextManager[servers.Served]]]]:
    found: list[tuple[str, Callable[[servers.ServeSpec], AbstractContextManager[servers.Served]]]] = []
    for name in names:
        if name == "pushserve":
            found.append(("pushserve", functools.partial(servers.pushserve, extra=extra)))
            if baseline is not None:
                found.append((f"pushserve {baseline.name}",
                               functools.partial(servers.pushserve, extra=extra, repo=baseline.resolve())))
        elif name == "nginx" and servers.nginx_available():
            found.append((f"nginx {servers.version('nginx')}",
                          functools.partial(servers.nginx, connections=CONNECTIONS)))
        elif name == "h2o" and servers.h2o_available():
            found.append((f"h2o {servers.version('h2o')}", functools.partial(servers.h2o, connections=CONNECTIONS)))
        elif name not in ("nginx", "h2o"):
            raise BenchError(f"unknown server {name!r}")
        else:
            print(f"{name}: not installed, skipped", file=sys.stderr)
    return found


SCENARIOS = ("handshakes", "h2-unread", "h1-pipeline", "slow-readers")


def _mb(kib: int) -> str:
    return f"{kib / 1024:+.1f} MB"


def report(results: list[Result]) -> str:
    lines = ["| scenario | server | polite median | polite worst | answered | failed | memory growth (peak) "
             "| held after |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        p = r.polite
        lines.append(f"| {r.scenario} | {r.server} | {p.median:.3f} s | {p.worst:.3f} s | {len(p.latencies)} | "
                     f"{len(p.failures)} | {_mb(r.growth_kib)} | {_mb(r.held_kib)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.floods", description=__doc__.split("\n\n")[0])
    p.add_argument("scenarios", nargs="*", default=list(SCENARIOS), help=f"any of {', '.join(SCENARIOS)} (all)")
    p.add_argument("--servers", default="pushserve,nginx,h2o")
    p.add_argument("--baseline", type=Path, help="another pushserve checkout, measured the same way")
    p.add_argument("--pushserve-arg", action="append", default=[], help="an extra pushserve option (repeatable)")
    p.add_argument("--silent", type=int, default=2000)
    p.add_argument("--half", type=int, default=900)
    p.add_argument("--whole", type=int, default=100)
    p.add_argument("--one-shot", action="store_true",
                   help="handshakes: a connection the server closes is not opened again")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of polite requests under the flood (20)")
    p.add_argument("--h2-connections", type=int, default=10)
    p.add_argument("--h2-streams", type=int, default=100)
    p.add_argument("--hold", type=float, default=8.0, help="seconds an unread attack is held (8)")
    p.add_argument("--pipelined-pages", type=int, default=200_000)
    p.add_argument("--pipelined-big", type=int, default=20_000)
    p.add_argument("--pipeliners", type=int, default=1, help="h1-pipeline: connections doing it (1)")
    p.add_argument("--readers", type=int, default=100)
    p.add_argument("--rate", type=int, default=512, help="bytes a second each slow reader reads (512)")
    p.add_argument("--slow-duration", type=float, default=15.0)
    p.add_argument("--settle", type=float, default=6.0, help="seconds before 'held after' is read (6)")
    ns = p.parse_args(argv)
    for s in ns.scenarios:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}")
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CPU})
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            cert = make_cert(work / "pki")
            ca = work / "pki" / "ca" / "rootCA.pem"
            docroot = make_docroot(work)
            entries = server_entries([s.strip() for s in ns.servers.split(",") if s.strip()], ns.baseline,
                                     ns.pushserve_arg)
            for scenario in ns.scenarios:
                for label, start in entries:
                    (work / "run").mkdir(exist_ok=True)
                    with tempfile.TemporaryDirectory(dir=work) as run_dir:
                        spec = servers.ServeSpec(docroot, cert, Path(run_dir))
                        print(f"{scenario}: {label} ...", file=sys.stderr)
                        with start(spec) as served:
                            r = run_scenario(scenario, served, ca, ns)
                        r.server = label
                        results.append(r)
                        print(f"  polite median {r.polite.median:.3f} s, worst {r.polite.worst:.3f} s, "
                              f"{len(r.polite.latencies)} answered, {len(r.polite.failures)} failed "
                              f"{r.polite.failures[:2]}; growth {_mb(r.growth_kib)}, held {_mb(r.held_kib)} "
                              f"{r.detail or ''}", file=sys.stderr)
    except BenchError as e:
        print(f"floods: {e}", file=sys.stderr)
        return 1
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
