"""``python -m benchmarks throughput``: requests/s for one ~1 KB static file, pushserve vs Hypercorn
(and nginx / h2o as the C ceiling when installed), HTTP/2 with h2load and HTTP/1.1 with wrk.

All servers run at once (idle ones cost nothing) so every repetition visits each of them in
turn, with the order rotated each repetition: slow drift of the machine (thermal, other tenants)
then spreads over all servers instead of landing on one."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks import servers
from pushserve.bench.certs import make_cert
from pushserve.bench.procs import BenchError, can_pin, run_client

FIXTURE = Path(__file__).resolve().parent / "site"
FILE = "small.txt"
PROTOCOLS = ("h2", "h1")

_H2LOAD_RATE = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
_H2LOAD_COUNTS = re.compile(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded")
_H2LOAD_STATUS = re.compile(r"status codes: (\d+) 2xx")
_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in")
_WRK_BAD = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")


@dataclass
class Result:
    server: str
    protocol: str
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0


def h2load(url: str, requests: int, headers: Sequence[str] = ()) -> float:
    """HTTP/2 over TLS: 8 connections, 10 concurrent streams each, ``requests`` in total;
    ``headers``: more request headers ("accept-encoding: gzip")."""
    out = run_client(["h2load", "-c", "8", "-m", "10", "-n", str(requests),
                      *(a for h in headers for a in ("-H", h)), url], timeout=300)
    rate, counts = _H2LOAD_RATE.search(out), _H2LOAD_COUNTS.search(out)
    if not rate or not counts:
        raise BenchError(f"h2load output not understood: {out.strip()[-300:]}")
    total, succeeded = int(counts.group(1)), int(counts.group(3))
    if succeeded != total:
        raise BenchError(f"h2load: only {succeeded} of {total} requests succeeded against {url}")
    status = _H2LOAD_STATUS.search(out)
    if not status or int(status.group(1)) != total:
        raise BenchError(f"h2load: not every response was 2xx from {url}")
    if "Application protocol: h2" not in out:
        raise BenchError(f"h2load did not negotiate h2 with {url}")
    return float(rate.group(1))


def wrk(url: str, duration: int) -> float:
    """HTTP/1.1 over TLS (wrk offers no ALPN, so servers fall back to http/1.1): 8 connections,
    one thread, for ``duration`` seconds."""
    out = run_client(["wrk", "-t1", "-c8", f"-d{duration}s", url], timeout=duration + 60)
    rate, total = _WRK_RATE.search(out), _WRK_TOTAL.search(out)
    if not rate or not total:
        raise BenchError(f"wrk output not understood: {out.strip()[-300:]}")
    bad = _WRK_BAD.search(out)
    if bad or int(total.group(1)) == 0:
        raise BenchError(f"wrk saw errors against {url}: {bad.group(0) if bad else 'no requests'}")
    return float(rate.group(1))


Starter = Callable[[servers.ServeSpec], AbstractContextManager[str]]


def _starters(include_c: bool, log: Callable[[str], None]) -> list[tuple[str, Starter]]:
    found: list[tuple[str, Starter]] = [("pushserve", servers.pushserve), ("hypercorn", servers.hypercorn)]
    if include_c:
        for name, available, start in (("nginx", servers.nginx_available, servers.nginx),
                                       ("h2o", servers.h2o_available, servers.h2o)):
            if available():
                found.append((name, start))
            else:
                log(f"skipped {name}: not installed")
    return found


def _rotations(names: list[str], repeat: int) -> Iterator[list[str]]:
    for i in range(repeat):
        k = i % len(names)
        yield names[k:] + names[:k]


def run(repeat: int = 3, requests: int = 50_000, duration: int = 5, include_c: bool = True,
        log: Callable[[str], None] = print) -> dict[str, object]:
    for tool in ("h2load", "wrk"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (Debian: nghttp2-client, wrk)")
    if not can_pin():
        log("note: taskset or a second CPU missing; server and client are not pinned")
    results: dict[tuple[str, str], Result] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp, ExitStack() as stack:
        spec = servers.ServeSpec(FIXTURE, make_cert(Path(tmp)), Path(tmp))
        urls: dict[str, str] = {}
        for name, start in _starters(include_c, log):
            try:
                urls[name] = stack.enter_context(start(spec)) + "/" + FILE
            except BenchError as e:
                # pushserve or a peer that cannot start is reported and left out, not fatal,
                # so the others are still measured in the same run.
                skipped[name] = str(e)
                log(f"skipped {name}: {e}")
        if not urls:
            raise BenchError("no server could be started")
        for name, url in urls.items():
            # Warm-up: imports, caches, JIT-free but allocator and TLS session state settle.
            h2load(url, min(requests, 2_000))
            for proto in PROTOCOLS:
                results[(name, proto)] = Result(name, proto)
        for rep, order in enumerate(_rotations(list(urls), repeat), 1):
            for name in order:
                r_h2 = h2load(urls[name], requests)
                r_h1 = wrk(urls[name], duration)
                results[(name, "h2")].runs.append(r_h2)
                results[(name, "h1")].runs.append(r_h1)
                log(f"run {rep}/{repeat} {name:<10} h2 {r_h2:>9.0f} req/s   h1 {r_h1:>9.0f} req/s")
    return _summary(results, skipped, repeat, requests, duration)


def _summary(results: dict[tuple[str, str], Result], skipped: dict[str, str], repeat: int,
             requests: int, duration: int) -> dict[str, object]:
    ratios: dict[str, float | None] = {}
    for proto in PROTOCOLS:
        ps, hc = results.get(("pushserve", proto)), results.get(("hypercorn", proto))
        ratios[proto] = ps.median / hc.median if ps and hc and hc.median else None
    return {
        "file": FILE, "file_bytes": (FIXTURE / FILE).stat().st_size, "repeat": repeat,
        "h2load": f"-c 8 -m 10 -n {requests}", "wrk": f"-t1 -c 8 -d {duration}s", "pinned": can_pin(),
        "results": [asdict(r) | {"median": r.median} for r in results.values()],
        "ratio_pushserve_hypercorn": ratios, "skipped": skipped,
    }


def format_table(summary: dict[str, object]) -> str:
    rows = summary["results"]
    assert isinstance(rows, list)
    lines = [f"{'server':<10} {'proto':<5} {'median req/s':>12}   runs"]
    for r in rows:
        runs = " ".join(f"{x:.0f}" for x in r["runs"])
        lines.append(f"{r['server']:<10} {r['protocol']:<5} {r['median']:>12.0f}   {runs}")
    ratios = summary["ratio_pushserve_hypercorn"]
    assert isinstance(ratios, dict)
    for proto, ratio in ratios.items():
        lines.append(f"pushserve/hypercorn {proto}: " + (f"{ratio:.2f}x" if ratio else "n/a"))
    return "\n".join(lines)


def main(repeat: int, requests: int, duration: int, as_json: bool, include_c: bool) -> int:
    # Progress goes to stderr so that stdout is only the table or the JSON.
    summary = run(repeat, requests, duration, include_c, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(json.dumps(summary, indent=2) if as_json else format_table(summary))
    return 0
