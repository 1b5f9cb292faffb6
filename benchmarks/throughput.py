"""``python -m benchmarks throughput``: the whole throughput-and-memory table in one run.

Every server serves the same docroot (``benchmarks/site`` plus a generated 1 MiB file) over TLS
with the same certificate, one worker (pushserve also with N workers, ``--pushserve-workers``),
pinned to the server CPU while the clients run on the client CPU.  Loads (``LOADS``), each run
checked answer by answer (``benchmarks/loadtools.py``):

- h2load ``-c8 -m10`` and ``-c8 -m1`` on the 100-byte file (HTTP/2, requests/s);
- wrk ``-c8`` on the 100-byte file (HTTP/1.1, requests/s);
- h2load ``-c4 -m1`` on the 1 MiB file (HTTP/2, MiB/s of bodies).

h2load runs are sized per server and load so that one lasts about ``--duration`` seconds (a short
calibration run, growing geometrically, also serves as the warm-up) and never more than
``--requests`` requests; wrk runs for ``--duration`` seconds.  All servers run at once (idle ones
cost nothing).  Each repetition runs the loads one after the other, and each load visits every
server in turn, the order rotated each repetition: the figures of one row are measured within
seconds of each other, and slow drift of the machine spreads over all servers.  After the last
repetition the memory of every process of every server is read (``benchmarks/memory.py``), each
right after its own last run: read after everyone's, a server whose last run came early would
have idled longer than the others (pushserve gives freed memory back to the OS a few seconds after
its load falls; read after an idle spell, its worker was ~3 MiB smaller than one read at once).
Medians of the repetitions and their ratio to pushserve (the first worker count) are reported; a
cell with a failed run shows the failure, never a figure."""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from benchmarks import loadtools, memory, servers
from pushserve.bench.certs import make_cert
from pushserve.bench.procs import CLIENT_CPU, SERVER_CPU, BenchError, can_pin

TINY = "tiny.txt"  # 100 bytes, in benchmarks/site
LARGE = "large-1mib.bin"  # made for the run: 1 MiB of seeded pseudo-random bytes (incompressible)
LARGE_BYTES = 1 << 20
MIB = 1 << 20
SERVERS = ("pushserve", "granian", "hypercorn", "nginx", "h2o")
C_SERVERS = ("nginx", "h2o")


@dataclass(frozen=True)
class Load:
    key: str
    label: str  # the row of the table
    tool: str  # "h2load" or "wrk"
    file: str
    clients: int
    streams: int
    unit: str  # "req/s", or "MiB/s" of bodies

    def command(self, duration: int) -> str:
        if self.tool == "wrk":
            return f"wrk -t1 -c{self.clients} -d{duration}s"
        return f"h2load -c{self.clients} -m{self.streams} -n N"


LOADS = (
    Load("h2_m10", "h2load `-c8 -m10` req/s (100 B)", "h2load", TINY, 8, 10, "req/s"),
    Load("h2_m1", "h2load `-c8 -m1` req/s (100 B)", "h2load", TINY, 8, 1, "req/s"),
    Load("h1_wrk", "wrk `-c8` HTTP/1.1 req/s (100 B)", "wrk", TINY, 8, 1, "req/s"),
    Load("h2_1mib", "1 MiB over h2, h2load `-c4 -m1`, MiB/s", "h2load", LARGE, 4, 1, "MiB/s"),
)


@dataclass
class Cell:
    """One (server, load): the figure of every valid run, and every failed run's reason."""

    server: str
    load: str
    requests: int | None = None  # h2load requests per run, from the calibration
    runs: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # the server's CPU µs per request, each run
    errors: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        # A failed run is reported as such: no figure from a cell that had one.
        return statistics.median(self.runs) if self.runs and not self.errors else None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu_us) if self.cpu_us and not self.errors else None


@dataclass(frozen=True)
class Entry:
    name: str
    label: str
    start: Callable[[servers.ServeSpec], AbstractContextManager[servers.Served]]


def entries(names: Sequence[str], pushserve_workers: Sequence[int], baseline: Path | None = None,
            pushserve_extra: Sequence[str] = ()) -> list[Entry]:
    """The servers to run, in table order; pushserve once per worker count (and, with
    ``baseline``, another checkout of pushserve with the first count, for a before/after), each
    started with the options ``pushserve_extra`` too."""
    found: list[Entry] = []
    options = "".join(f" {o}" for o in pushserve_extra)
    for name in names:
        if name == "pushserve":
            for n in pushserve_workers:
                label = f"pushserve ({n} worker{'s' if n > 1 else ''}){options}"
                found.append(Entry("pushserve" if n == pushserve_workers[0] else f"pushserve-x{n}", label,
                                   partial(servers.pushserve, workers=n, extra=pushserve_extra)))
            if baseline is not None:
                n = pushserve_workers[0]
                label = f"pushserve {baseline} ({n} worker{'s' if n > 1 else ''}){options}"
                found.append(Entry("pushserve-baseline", label,
                                   partial(servers.pushserve, workers=n, extra=pushserve_extra,
                                           repo=baseline.resolve())))
        elif name == "granian":
            found.append(Entry(name, f"Granian {servers.version('granian')} static route", servers.granian))
        elif name == "hypercorn":
            found.append(Entry(name, f"Hypercorn {servers.version('hypercorn')} + Starlette", servers.hypercorn))
        elif name == "nginx":
            found.append(Entry(name, f"nginx {servers.version('nginx')}", servers.nginx))
        elif name == "h2o":
            found.append(Entry(name, f"h2o {servers.version('h2o')}", servers.h2o))
    return found


def make_docroot(folder: Path) -> Path:
    """benchmarks/site plus the 1 MiB file, which is made here rather than kept in git."""
    root = folder / "site"
    shutil.copytree(servers.SITE, root)
    (root / LARGE).write_bytes(random.Random(20261121).randbytes(LARGE_BYTES))
    return root


def _body_bytes(load: Load, docroot: Path) -> int:
    return (docroot / load.file).stat().st_size


def calibrate(url: str, load: Load, body: int, duration: int, cap: int) -> int:
    """h2load requests for one run of about ``duration`` s: a geometric series of short runs until
    one lasts a quarter of that, at least two (the first one meets a cold server: file caches,
    lazy imports); at most ``cap`` requests.  The runs are the server's warm-up too."""
    floor = load.clients * load.streams
    n = max(floor, min(1_000, (16 * MIB) // body))
    for i in range(8):
        run = loadtools.h2load(url, n, load.clients, load.streams, body_bytes=body, timeout=60 + 4 * duration)
        if i and (run.elapsed_s >= duration / 4 or n >= cap):
            break
        grow = (duration / 4) / max(run.elapsed_s, 1e-3)
        n = min(cap, int(n * min(16.0, max(1.0 if i == 0 else 2.0, grow))))
    return max(floor, min(cap, int(run.rate * duration)))


def measure(url: str, load: Load, body: int, requests: int | None, duration: int, pid: int) -> tuple[float, float]:
    """One run: requests/s (or MiB/s of bodies for a MiB/s load), and the CPU time the server's
    processes (``pid`` and its descendants) spent per request meanwhile, in µs."""
    before = memory.cpu_seconds(pid)
    if load.tool == "wrk":
        done = loadtools.wrk(url, duration, load.clients)
        rate, count = done.rate, done.requests
    else:
        assert requests is not None
        run = loadtools.h2load(url, requests, load.clients, load.streams, body_bytes=body,
                               timeout=60 + 10 * duration)
        rate, count = run.rate, run.total
    cpu = (memory.cpu_seconds(pid) - before) / count * 1e6
    return (rate * body / MIB if load.unit == "MiB/s" else rate), cpu


def warm_up(url: str, load: Load, body: int, duration: int, cap: int) -> int | None:
    """Warm the server up for ``load``; h2load's requests per run (None for wrk).  wrk cannot tell
    a 3xx from a 2xx, so its URL's HTTP/1.1 answers are checked first (``check_http1``)."""
    if load.tool == "h2load":
        return calibrate(url, load, body, duration, cap)
    loadtools.check_http1(url, body)
    loadtools.wrk(url, 1, load.clients)
    return None


def _rotations(names: list[str], repeat: int) -> Iterator[list[str]]:
    for i in range(repeat):
        k = i % len(names)
        yield names[k:] + names[:k]


def _commit() -> str:
    try:
        done = subprocess.run(["git", "-C", str(servers.REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def run(repeat: int = 3, duration: int = 3, max_requests: int = 1_000_000,
        names: Sequence[str] = SERVERS, pushserve_workers: Sequence[int] = (1, 4),
        log: Callable[[str], None] = print, baseline: Path | None = None,
        pushserve_extra: Sequence[str] = ()) -> dict[str, object]:
    for tool in ("h2load", "wrk"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (Debian: nghttp2-client, wrk)")
    if not can_pin():
        log("note: taskset or a second CPU missing; server and client are not pinned")
    started, load_before = time.monotonic(), os.getloadavg()[0]
    todo = entries(names, pushserve_workers, baseline, pushserve_extra)
    cells = {(e.name, ld.key): Cell(e.name, ld.key) for e in todo for ld in LOADS}
    mem: dict[str, list[memory.ProcessMemory] | str] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp, ExitStack() as stack:
        docroot = make_docroot(Path(tmp))
        spec = servers.ServeSpec(docroot, make_cert(Path(tmp)), Path(tmp))
        bodies = {ld.key: _body_bytes(ld, docroot) for ld in LOADS}
        live: dict[str, servers.Served] = {}
        for e in todo:
            try:
                live[e.name] = stack.enter_context(e.start(spec))
            except BenchError as err:
                # A server that cannot start is reported and left out, so the others are still
                # measured in the same run.
                skipped[e.name] = str(err)
                log(f"skipped {e.name}: {err}")
        if not live:
            raise BenchError("no server could be started")

        def read_memory(name: str) -> None:
            try:
                mem[name] = memory.measure(live[name].pid)
            except BenchError as err:
                mem[name] = str(err)

        for name, served in live.items():
            for ld in LOADS:
                cell = cells[(name, ld.key)]
                try:
                    cell.requests = warm_up(f"{served.base}/{ld.file}", ld, bodies[ld.key], duration, max_requests)
                except BenchError as err:
                    cell.errors.append(f"warm-up: {err}")
            log(f"warm-up {name}: h2load sizes " + ", ".join(
                f"{ld.key} {cells[(name, ld.key)].requests}" for ld in LOADS if ld.tool == "h2load"))
        for rep, order in enumerate(_rotations(list(live), repeat), 1):
            # Load by load, each visiting every server: the servers compared in one row are
            # measured within seconds of each other, so drift of a noisy machine hits them alike.
            for ld in LOADS:
                line = []
                for name in order:
                    cell = cells[(name, ld.key)]
                    if ld.tool == "h2load" and cell.requests is None:
                        continue  # its warm-up failed: nothing to size a run with
                    try:
                        value, cpu = measure(f"{live[name].base}/{ld.file}", ld, bodies[ld.key], cell.requests,
                                             duration, live[name].pid)
                    except BenchError as err:
                        cell.errors.append(f"run {rep}: {err}")
                        line.append(f"{name} FAILED")
                        log(f"run {rep}/{repeat} {name} {ld.key}: {err}")
                        continue
                    cell.runs.append(value)
                    cell.cpu_us.append(cpu)
                    line.append(f"{name} {value:,.0f}")
                    if rep == repeat and ld is LOADS[-1]:
                        read_memory(name)  # "after the runs", for every server the same moment
                log(f"run {rep}/{repeat} {ld.key} ({ld.unit}): " + ", ".join(line))
        for name in live:
            if name not in mem:  # its last run failed
                read_memory(name)
    took = time.monotonic() - started
    log(f"done in {took:.0f} s")
    machine: dict[str, object] = {"cpus": os.cpu_count(), "python": platform.python_version(), "seconds": round(took),
               "load_average_1min": [load_before, os.getloadavg()[0]]}
    return _summary(todo, cells, mem, skipped, bodies, machine, repeat, duration, max_requests)


def _summary(todo: list[Entry], cells: dict[tuple[str, str], Cell],
             mem: dict[str, list[memory.ProcessMemory] | str], skipped: dict[str, str],
             bodies: dict[str, int], machine: dict[str, object], repeat: int, duration: int,
             max_requests: int) -> dict[str, object]:
    base = "pushserve" if any(e.name == "pushserve" for e in todo) else None
    results = []
    for cell in cells.values():
        if cell.server in skipped:
            continue
        ref = cells.get((base, cell.load)) if base else None
        ratio = cell.median / ref.median if cell.median is not None and ref and ref.median else None
        cpu, ref_cpu = cell.cpu_median, ref.cpu_median if ref else None
        cpu_ratio = cpu / ref_cpu if cpu is not None and ref_cpu else None
        results.append(asdict(cell) | {"median": cell.median, "ratio": ratio, "cpu_median": cpu,
                                       "cpu_ratio": cpu_ratio})
    memories: dict[str, object] = {}
    for name, found in mem.items():
        if isinstance(found, str):
            memories[name] = {"error": found}
            continue
        memories[name] = {
            "rss_kib": sum(p.rss_kib for p in found), "pss_kib": sum(p.pss_kib for p in found),
            "uss_kib": sum(p.uss_kib for p in found), "processes": [asdict(p) for p in found],
        }
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": _commit(),
        "repeat": repeat, "duration_s": duration, "max_requests": max_requests,
        "pinned": can_pin(), "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU, "machine": machine,
        "files": {TINY: bodies["h2_m10"], LARGE: bodies["h2_1mib"]},
        "loads": [asdict(ld) | {"command": ld.command(duration)} for ld in LOADS],
        "servers": [{"name": e.name, "label": e.label} for e in todo if e.name not in skipped],
        "baseline": base, "results": results, "memory": memories, "skipped": skipped,
    }


def main(repeat: int, duration: int, max_requests: int, names: Sequence[str],
         pushserve_workers: Sequence[int], as_json: bool, baseline: Path | None = None,
         pushserve_extra: Sequence[str] = ()) -> int:
    from benchmarks.throughput_report import markdown

    # Progress goes to stderr so that stdout is only the table or the JSON.
    summary = run(repeat, duration, max_requests, names, pushserve_workers,
                  log=lambda s: print(s, file=sys.stderr, flush=True), baseline=baseline,
                  pushserve_extra=pushserve_extra)
    print(json.dumps(summary, indent=2) if as_json else markdown(summary))
    return 0
