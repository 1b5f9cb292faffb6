"""``python -m benchmarks.asgi_hello``: requests/s for a plain ASGI "hello" app mounted in pushserve,
against the same app under Hypercorn (HTTP/2, h2load) and Uvicorn (HTTP/1.1, wrk).

This module is also the app (``benchmarks.asgi_hello:app``), so every server runs the very same code.
All servers run at once, one worker each, access log off, TLS with one throwaway certificate;
each repetition visits every (server, protocol) pair, the order rotated per repetition."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import servers
from benchmarks.loadtools import h2load, wrk
from benchmarks.peers.fixed_asgi import fixed_answer
from benchmarks.servers import REPO, SITE, _py_env
from pushserve.bench.certs import CertPair, make_cert
from pushserve.bench.procs import SERVER_CPU, BenchError, can_pin, free_port, pinned, running

# -- the app ------------------------------------------------------------------------------------

app = fixed_answer(200, b"Hello, world!\n", b"text/plain")


@dataclass
class Result:
    server: str
    protocol: str
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0


# -- servers ------------------------------------------------------------------------------------

PATH = "/hello"
_PUSHSERVE_READY = re.compile(r" at (https://[^/\s]+:\d+)/")
_HYPERCORN_READY = re.compile(r"Running on https://")
_UVICORN_READY = re.compile(r"Uvicorn running on https://")


@contextmanager
def pushserve(cert: CertPair, work: Path) -> Iterator[str]:
    cmd = [sys.executable, "-m", "pushserve", str(SITE), "--port", "0", "--cert", str(cert.cert),
           "--key", str(cert.key), "--cert-dir", str(work / "pushserve-certs"), "--push", "off",
           "--no-access-log", "--workers", "1", "--mount", f"{PATH}=benchmarks.asgi_hello:app"]
    env = _py_env({"PUSHSERVE_CAROOT": str(work / "caroot")})
    with running("pushserve", pinned(cmd, SERVER_CPU), env=env, cwd=str(REPO)) as child:
        base = child.wait_for_line(_PUSHSERVE_READY).group(1).replace("localhost", "127.0.0.1")
        yield base + PATH


@contextmanager
def hypercorn(cert: CertPair, work: Path) -> Iterator[str]:
    with servers.hypercorn(servers.ServeSpec(work, cert, work), "benchmarks.asgi_hello:app") as served:
        yield served.base + PATH


@contextmanager
def uvicorn(cert: CertPair, work: Path) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "benchmarks.asgi_hello:app", "--host", "127.0.0.1",
           "--port", str(port), "--ssl-certfile", str(cert.cert), "--ssl-keyfile", str(cert.key),
           "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--workers", "1"]
    with running("uvicorn", pinned(cmd, SERVER_CPU), env=_py_env(), cwd=str(REPO)) as child:
        child.wait_for_line(_UVICORN_READY)
        yield f"https://127.0.0.1:{port}{PATH}"


# (server, protocol) pairs measured: pushserve on both, each peer on the protocol it is known for.
TARGETS = (("pushserve", "h2"), ("hypercorn", "h2"), ("pushserve", "h1"), ("uvicorn", "h1"))
STARTERS = {"pushserve": pushserve, "hypercorn": hypercorn, "uvicorn": uvicorn}
PEER = {"h2": "hypercorn", "h1": "uvicorn"}



def _rotations(items: Sequence[tuple[str, str]], repeat: int) -> Iterator[list[tuple[str, str]]]:
    for i in range(repeat):
        k = i % len(items)
        yield [*items[k:], *items[:k]]


def _measure(url: str, proto: str, requests: int, duration: int) -> float:
    return h2load(url, requests).rate if proto == "h2" else wrk(url, duration).rate


def run(repeat: int, requests: int, duration: int, log: Callable[[str], None]) -> dict[str, object]:
    for tool in ("h2load", "wrk"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (Debian: nghttp2-client, wrk)")
    if not can_pin():
        log("note: taskset or a second CPU missing; server and client are not pinned")
    results = {t: Result(*t) for t in TARGETS}
    with tempfile.TemporaryDirectory(prefix="bench-asgi-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        cert = make_cert(work)
        urls = {name: stack.enter_context(start(cert, work)) for name, start in STARTERS.items()}
        for name, proto in TARGETS:  # warm-up, not counted
            if proto == "h2":
                h2load(urls[name], min(requests, 2_000))
            else:
                wrk(urls[name], 1)
        for rep, order in enumerate(_rotations(TARGETS, repeat), 1):
            for name, proto in order:
                rate = _measure(urls[name], proto, requests, duration)
                results[(name, proto)].runs.append(rate)
                log(f"run {rep}/{repeat} {name:<10} {proto} {rate:>9.0f} req/s")
    ratios = {
        f"pushserve/{PEER[proto]} {proto}":
            results[("pushserve", proto)].median / results[(PEER[proto], proto)].median
        for proto in ("h2", "h1") if results[(PEER[proto], proto)].median
    }
    return {
        "app": "benchmarks.asgi_hello:app", "repeat": repeat, "pinned": can_pin(),
        "h2load": f"-c 8 -m 10 -n {requests}", "wrk": f"-t1 -c 8 -d {duration}s",
        "results": [asdict(r) | {"median": r.median} for r in results.values()], "ratios": ratios,
    }


def format_table(summary: dict[str, Any]) -> str:
    lines = [f"{'server':<10} {'proto':<5} {'median req/s':>12}   runs"]
    for r in summary["results"]:
        runs = " ".join(f"{x:.0f}" for x in r["runs"])
        lines.append(f"{r['server']:<10} {r['protocol']:<5} {r['median']:>12.0f}   {runs}")
    lines += [f"{name}: {ratio:.2f}x" for name, ratio in summary["ratios"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.asgi_hello",
                                description="ASGI hello: pushserve vs Hypercorn (h2) and Uvicorn (h1)")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per (server, protocol) (3)")
    p.add_argument("--requests", type=int, default=30_000, help="h2load requests per run (30000)")
    p.add_argument("--duration", type=int, default=5, help="wrk seconds per run (5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ns = p.parse_args(argv)
    try:
        summary = run(ns.repeat, ns.requests, ns.duration, log=lambda s: print(s, file=sys.stderr, flush=True))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(json.dumps(summary, indent=2) if ns.json else format_table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
