"""``python -m benchmarks.workers``: how small-file throughput scales from 1 to N forked workers.

pushserve serves one ~1 KB file with ``--workers 1`` and ``--workers N``; h2load (HTTP/2) and wrk
(HTTP/1.1) load it over TLS.  With at least N+1 CPUs the server is pinned to N CPUs and the client
to another one (taskset), so the client never steals the workers' CPU; with fewer CPUs nothing is
pinned and the report says so (the client then competes with the workers, and the ratio shows
less than the server could do).  Each configuration is measured ``repeat`` times, alternating
between 1 and N workers so slow drift of the machine spreads over both; medians are reported.

The client opens 16 connections: the kernel hashes each connection to one worker's
SO_REUSEPORT listener, and with few connections one worker may get more of them by chance.  The
report says how they fell: during every HTTP/2 run the established connections each worker holds
are counted (its socket descriptors matched with /proc/net/tcp), and each worker's CPU time over
the run is read, so an uneven spread shows as such rather than as a poor ratio."""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks import loadtools, memory
from benchmarks.servers import REPO, SITE
from pushserve.bench.certs import make_cert
from pushserve.bench.procs import BenchError, running

FILE = "small.txt"
CONNECTIONS = 16
_READY = re.compile(r" at (https://[^/\s]+:\d+)/")


def plan_cpus(workers: int) -> tuple[list[int] | None, list[int] | None]:
    """(server CPUs, client CPUs), or (None, None) when there are too few CPUs to keep apart."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cpus) < workers + 1:
        return None, None
    return cpus[:workers], cpus[-1:]


def _taskset(cmd: Sequence[str], cpus: list[int] | None) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, cpus)), *cmd] if cpus else list(cmd)


def _client(cmd: Sequence[str], timeout: float, cpus: list[int] | None) -> str:
    try:
        done = subprocess.run(_taskset(cmd, cpus), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{cmd[0]} did not finish within {timeout:.0f}s") from e
    if done.returncode != 0:
        raise BenchError(f"{cmd[0]} failed ({done.returncode}): {(done.stderr or done.stdout)[-300:]}")
    return done.stdout


def h2load(url: str, requests: int, cpus: list[int] | None) -> float:
    client = functools.partial(_client, cpus=cpus)
    return loadtools.h2load(url, requests, CONNECTIONS, 10, client=client).rate


def _established(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:
                found.add(f[9])
    return found


def connections_per_worker(workers: list[int], port: int) -> list[int]:
    """How many of the server port's established connections each worker holds now."""
    ours = _established(port)
    counts = []
    for pid in workers:
        n = 0
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                target = os.readlink(fd.path)
                if target.startswith("socket:[") and target[8:-1] in ours:
                    n += 1
        except OSError:
            pass
        counts.append(n)
    return counts


def h2load_spread(url: str, requests: int, cpus: list[int] | None, master: int) -> tuple[float, list[int], list[float]]:
    """An h2load run, and how it fell on the workers: the connections each held (the sample with
    the most, taken every 50 ms while it ran) and the CPU seconds each spent."""
    workers = [p for p, _, _ in memory.process_tree(master)[1:]]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    cpu_before = [memory.cpu_seconds(p) for p in workers]
    best: list[int] = [0] * len(workers)
    done = threading.Event()

    def sample() -> None:
        nonlocal best
        while not done.wait(0.05):
            now = connections_per_worker(workers, port)
            if sum(now) > sum(best):
                best = now

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        rate = h2load(url, requests, cpus)
    finally:
        done.set()
        watcher.join()
    return rate, best, [memory.cpu_seconds(p) - b for p, b in zip(workers, cpu_before, strict=True)]


def wrk(url: str, duration: int, cpus: list[int] | None) -> float:
    return loadtools.wrk(url, duration, CONNECTIONS, client=functools.partial(_client, cpus=cpus)).rate


@contextmanager
def pushserve(workers: int, cpus: list[int] | None, tmp: Path) -> Iterator[tuple[str, int]]:
    cert = make_cert(tmp)
    cmd = [sys.executable, "-m", "pushserve", str(SITE), "--port", "0", "--cert", str(cert.cert),
           "--key", str(cert.key), "--cert-dir", str(tmp / "certs"), "--push", "off",
           "--no-access-log", "--workers", str(workers)]
    env = {**os.environ, "PUSHSERVE_CAROOT": str(tmp / "caroot")}
    with running(f"pushserve --workers {workers}", _taskset(cmd, cpus), env=env, cwd=str(REPO)) as child:
        yield child.wait_for_line(_READY).group(1).replace("localhost", "127.0.0.1") + "/" + FILE, child.proc.pid


def run(workers: int = 2, repeat: int = 3, requests: int = 50_000, duration: int = 5,
        log: Callable[[str], None] = print) -> dict[str, object]:
    say = log
    for tool in ("h2load", "wrk"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (Debian: nghttp2-client, wrk)")
    server_cpus, client_cpus = plan_cpus(workers)
    if server_cpus is None:
        say(f"note: {len(os.sched_getaffinity(0))} CPUs (or no taskset): nothing pinned, the client "
            f"competes with the {workers} workers")
    runs: dict[str, list[float]] = {f"{proto} x{n}": [] for n in (1, workers) for proto in ("h2", "h1")}
    spread: list[dict[str, list[float] | list[int]]] = []  # per h2 run of N workers
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        for rep in range(1, repeat + 1):
            # Alternate the order each repetition so drift does not favour one configuration.
            order = (1, workers) if rep % 2 else (workers, 1)
            for n in order:
                sub = Path(tmp) / f"{n}-{rep}"
                sub.mkdir()
                with pushserve(n, server_cpus, sub) as (url, pid):
                    h2load(url, min(requests, 2_000), client_cpus)  # warm-up
                    r_h2, conns, cpu = h2load_spread(url, requests, client_cpus, pid)
                    r_h1 = wrk(url, duration, client_cpus)
                if n == workers:
                    spread.append({"connections": conns, "cpu_s": [round(c, 2) for c in cpu]})
                    say(f"  connections per worker {conns}, CPU s per worker {[round(c, 2) for c in cpu]}")
                runs[f"h2 x{n}"].append(r_h2)
                runs[f"h1 x{n}"].append(r_h1)
                say(f"run {rep}/{repeat} workers={n}: h2 {r_h2:>8.0f} req/s   h1 {r_h1:>8.0f} req/s")
    medians = {k: statistics.median(v) for k, v in runs.items()}
    ratio = {proto: medians[f"{proto} x{workers}"] / medians[f"{proto} x1"] for proto in ("h2", "h1")}
    return {"workers": workers, "repeat": repeat, "file": FILE, "connections": CONNECTIONS,
            "h2load": f"-c {CONNECTIONS} -m 10 -n {requests}", "wrk": f"-t1 -c{CONNECTIONS} -d{duration}s",
            "server_cpus": server_cpus, "client_cpus": client_cpus, "cpus": len(os.sched_getaffinity(0)),
            "runs": runs, "medians": medians, "scaling": ratio, "spread": spread,
            "load_average_1min": os.getloadavg()[0]}


def format_table(s: dict[str, object]) -> str:
    runs, medians, scaling = s["runs"], s["medians"], s["scaling"]
    assert isinstance(runs, dict) and isinstance(medians, dict) and isinstance(scaling, dict)
    pin = (f"server on CPU {s['server_cpus']}, client on CPU {s['client_cpus']}" if s["server_cpus"]
           else f"not pinned ({s['cpus']} CPUs)")
    lines = [f"pushserve small-file throughput, 1 vs {s['workers']} workers; {pin}",
             f"{'config':<8} {'median req/s':>12}   runs"]
    for key, values in runs.items():
        lines.append(f"{key:<8} {medians[key]:>12.0f}   " + " ".join(f"{v:.0f}" for v in values))
    for proto, r in scaling.items():
        lines.append(f"scaling {proto} x{s['workers']}/x1: {r:.2f}")
    spread = s.get("spread")
    if isinstance(spread, list):
        for i, run in enumerate(spread, 1):
            lines.append(f"h2 x{s['workers']} run {i}: connections per worker {run['connections']}, "
                         f"CPU s per worker {run['cpu_s']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.workers", description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="the N compared with 1 worker (2)")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per configuration (3)")
    p.add_argument("--requests", type=int, default=50_000, help="h2load requests per run (50000)")
    p.add_argument("--duration", type=int, default=5, help="wrk seconds per run (5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ns = p.parse_args(argv)
    try:
        summary = run(ns.workers, ns.repeat, ns.requests, ns.duration,
                      log=lambda line: print(line, file=sys.stderr, flush=True))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2) if ns.json else format_table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
