"""``python -m benchmarks.h3throughput``: HTTP/3 throughput, pushserve against Hypercorn, and what
HTTP/3 costs a pushserve worker in memory.

Both servers run at once, one worker each, on the same docroot and certificate as the
``throughput`` harness (benchmarks/site plus a 1 MiB incompressible file), pinned to the server
CPU: pushserve (HTTP/3 on, its default) and Hypercorn + Starlette ``StaticFiles`` with
``quic_bind`` on its port.  Both speak HTTP/3 through aioquic: the difference is what each does
around it.  The client is ``benchmarks/h3load.py`` (aioquic; Debian's h2load has no QUIC),
pinned to the client CPU, every answer checked:

- small file: the 100-byte file, ``-c 2 -m 32`` (two connections, 32 streams in flight on each);
- 1 MiB: the 1 MiB file, ``-c 2 -m 1``, MiB/s of bodies.

Each run lasts ``--duration`` seconds (the requests in flight then finish); each repetition runs
both loads on both servers, the order rotated.  Besides the wall-clock
figure, each run reads the server's CPU time (/proc, its whole process tree) and reports CPU per
request: on a machine that others share, that figure moves less than the rate.

Memory: a third server, pushserve ``--no-http3``, takes the same two loads over HTTP/2 (h2load
``-c2 -m32`` and ``-c2 -m1``); after the runs, the RSS/PSS/USS of pushserve's worker with HTTP/3
on (after the h3 loads) is reported beside the HTTP/2-only worker's (after the h2 loads), and
both before any load.

    python -m benchmarks.h3throughput [--repeat 3] [--duration 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks import loadtools, memory, servers
from benchmarks.throughput import LARGE, LARGE_BYTES, TINY, make_docroot
from pushserve.bench.certs import make_cert
from pushserve.bench.procs import CLIENT_CPU, BenchError, can_pin, pinned, run_client

_TICK = os.sysconf("SC_CLK_TCK")
GTLSCLIENT = shutil.which("gtlsclient") or ""
# key, file, connections, streams per connection, unit; "1mib-c": the same file through the C client
LOADS = (("small", TINY, 2, 32, "req/s"), ("1mib", LARGE, 2, 1, "MiB/s"),
         *((("1mib-c", LARGE, 2, 1, "MiB/s"),) if GTLSCLIENT else ()))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children now (a worker's, under its master)."""
    total = 0
    for p, _, _ in memory.process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def h3load(url: str, duration: float, connections: int, streams: int, body: int) -> dict[str, float]:
    """One run of ``duration`` seconds; every answer must be a 200 of ``body`` bytes."""
    cmd = [sys.executable, "-m", "benchmarks.h3load", url, "-c", str(connections), "-m", str(streams),
           "-d", str(duration), "--expect-bytes", str(body), "--max-seconds", str(duration * 4 + 30), "--json"]
    out = run_client(pinned(cmd, CLIENT_CPU), duration * 4 + 60)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    if result["errors"] or result["failed"] or not result["succeeded"]:
        raise BenchError(f"h3load: {(result['errors'] or ['no answer'])[0]}")
    return result


def ngtcp2_load(url: str, duration: float, connections: int, body: int, per_connection: int) -> dict[str, float]:
    """The 1 MiB load through ngtcp2's example client (C: Debian's ``ngtcp2-client``):
    ``connections`` clients at once, each fetching ``per_connection`` bodies over one connection.
    The aioquic client costs about as much CPU per MiB as the servers it measures, so with it the
    1 MiB figure is the client's; this one costs a fifth of that.  Each client must exit 0 and
    leave a body of the expected length."""
    parts = urlsplit(url)
    with tempfile.TemporaryDirectory(prefix="bench-gtls-") as tmp:
        cmds = [pinned([GTLSCLIENT, "-q", "--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close",
                        "-n", str(per_connection), "--max-data=256M", "--max-stream-data-bidi-local=16M",
                        f"--timeout={duration * 4 + 30:g}s", f"--download={tmp}/{i}",
                        parts.hostname or "127.0.0.1", str(parts.port), url], CLIENT_CPU)
                for i in range(connections)]
        for i in range(connections):
            Path(tmp, str(i)).mkdir()
        logs = [Path(tmp, f"{i}.log").open("wb") for i in range(connections)]  # noqa: SIM115
        started = time.monotonic()
        procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
                 for cmd, log in zip(cmds, logs, strict=True)]
        cpu = 0.0
        errors = []
        for i, proc in enumerate(procs):
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu += usage.ru_utime + usage.ru_stime
            logs[i].close()
            if proc.returncode:
                errors.append(f"gtlsclient exited {proc.returncode}: {Path(tmp, f'{i}.log').read_text()[-200:]!r}")
        seconds = time.monotonic() - started
        name = Path(parts.path).name
        sizes = [Path(tmp, str(i), name).stat().st_size if Path(tmp, str(i), name).exists() else 0
                 for i in range(connections)]
    if errors or any(size != body for size in sizes):
        raise BenchError(errors[0] if errors else f"gtlsclient: bodies of {sizes} bytes, not {body}")
    total = connections * per_connection * body
    return {"succeeded": connections * per_connection, "mib_per_s": total / seconds / (1 << 20),
            "req_per_s": connections * per_connection / seconds, "client_cpu": cpu / seconds, "seconds": seconds,
            "errors": 0, "failed": 0}


def run(repeat: int = 3, duration: float = 5.0, log: Callable[[str], None] = print) -> dict[str, object]:
    if not can_pin():
        log("note: taskset or a second CPU missing; server and client are not pinned")
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, list[dict[str, float]]]] = {"pushserve": {}, "hypercorn": {}}
    mem: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-h3-") as tmp, ExitStack() as stack:
        docroot = make_docroot(Path(tmp))
        spec = servers.ServeSpec(docroot, make_cert(Path(tmp)), Path(tmp))
        live = {
            "pushserve": stack.enter_context(servers.pushserve(spec)),
            "hypercorn": stack.enter_context(servers.hypercorn(spec, h3=True)),
            "pushserve-h2": stack.enter_context(partial(servers.pushserve, extra=["--no-http3"])(spec)),
        }
        idle = {name: memory.measure(live[name].pid) for name in ("pushserve", "pushserve-h2")}
        bodies = {"small": 100, "1mib": LARGE_BYTES, "1mib-c": LARGE_BYTES}
        c_rate: dict[str, float] = {}  # MiB/s through the C client, to size its next run
        for name in ("pushserve", "hypercorn"):  # warm-up: a short run of each
            for key, file, c, m, _ in LOADS:
                if key == "1mib-c":
                    c_rate[name] = ngtcp2_load(f"{live[name].base}/{file}", duration, c, bodies[key], 2)["mib_per_s"]
                else:
                    h3load(f"{live[name].base}/{file}", 1.0, c, m, bodies[key])
        for rep in range(repeat):
            order = ["pushserve", "hypercorn"][rep % 2:] + ["pushserve", "hypercorn"][:rep % 2]
            for key, file, c, m, unit in LOADS:
                line = []
                for name in order:
                    before = cpu_seconds(live[name].pid)
                    if key == "1mib-c":  # as many bodies as take about ``duration`` at the last rate
                        count = max(2, round(c_rate[name] * duration / c))
                        r = ngtcp2_load(f"{live[name].base}/{file}", duration, c, bodies[key], count)
                        c_rate[name] = r["mib_per_s"]
                    else:
                        r = h3load(f"{live[name].base}/{file}", duration, c, m, bodies[key])
                    per_request = (cpu_seconds(live[name].pid) - before) / r["succeeded"] * 1e6
                    figure = r["mib_per_s"] if unit == "MiB/s" else r["req_per_s"]
                    client = r["client_cpu"] * r["seconds"] / r["succeeded"] * 1e6
                    results[name].setdefault(key, []).append(
                        {"rate": figure, "server_cpu_us_per_request": per_request, "client_cpu": r["client_cpu"],
                         "client_cpu_us_per_request": client})
                    line.append(f"{name} {figure:,.1f} {unit} ({per_request:,.0f} µs CPU/request, "
                                f"client CPU {r['client_cpu']:.0%})")
                log(f"run {rep + 1}/{repeat} {key}: " + ", ".join(line))
        for key, file, c, m, _ in LOADS[:2]:  # the HTTP/2-only worker takes as many requests over h2
            count = max(c * m, sum(int(r["rate"] * (duration if key == "small" else duration / bodies[key] * (1 << 20)))
                                   for r in results["pushserve"][key]))
            loadtools.h2load(f"{live['pushserve-h2'].base}/{file}", count, c, m, body_bytes=bodies[key], timeout=300)
        for name in ("pushserve", "pushserve-h2"):
            mem[name] = {"idle": [asdict(p) for p in idle[name]],
                         "after": [asdict(p) for p in memory.measure(live[name].pid)]}
    summary: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeat": repeat,
        "duration_s": duration, "load_average_1min": [load_before, os.getloadavg()[0]],
        "versions": {"hypercorn": servers.version("hypercorn"), "aioquic": _version("aioquic")},
        "results": {}, "memory": mem,
    }
    table: dict[str, object] = {}
    for key in [load[0] for load in LOADS]:
        ours = statistics.median(r["rate"] for r in results["pushserve"][key])
        theirs = statistics.median(r["rate"] for r in results["hypercorn"][key])
        table[key] = {
            "pushserve": ours, "hypercorn": theirs, "ratio": ours / theirs if theirs else None,
            "runs": {n: [round(r["rate"], 1) for r in results[n][key]] for n in results},
            "cpu_us_per_request": {n: statistics.median(r["server_cpu_us_per_request"] for r in results[n][key])
                                   for n in results},
            "client_cpu_us_per_request": {n: statistics.median(r["client_cpu_us_per_request"]
                                                               for r in results[n][key]) for n in results},
        }
    summary["results"] = table
    return summary


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def markdown(summary: dict[str, object]) -> str:
    results = summary["results"]
    assert isinstance(results, dict)
    lines = ["| load | pushserve | Hypercorn | pushserve / Hypercorn | server CPU per request "
             "(pushserve / Hypercorn) | client CPU per request (with pushserve / with Hypercorn) |",
             "|---|---:|---:|---:|---:|---:|"]
    for key, label in (("small", "100 B file, `-c2 -m32`, req/s"), ("1mib", "1 MiB file, `-c2 -m1`, MiB/s"),
                       ("1mib-c", "1 MiB file, C client (ngtcp2), 2 connections, MiB/s")):
        if key not in results:
            continue
        r = results[key]
        cpu, client = r["cpu_us_per_request"], r["client_cpu_us_per_request"]
        lines.append(f"| {label} | {r['pushserve']:,.1f} | {r['hypercorn']:,.1f} | **{r['ratio']:.2f}x** | "
                     f"{cpu['pushserve']:,.0f} µs / {cpu['hypercorn']:,.0f} µs "
                     f"({cpu['hypercorn'] / cpu['pushserve']:.2f}x) | "
                     f"{client['pushserve']:,.0f} µs / {client['hypercorn']:,.0f} µs |")
    mem = summary["memory"]
    assert isinstance(mem, dict)
    lines += ["", "| pushserve worker | RSS MiB idle | RSS MiB after | PSS MiB after | USS MiB after |",
              "|---|---:|---:|---:|---:|"]
    for name, label in (("pushserve", "HTTP/3 on (after the h3 loads)"),
                        ("pushserve-h2", "--no-http3 (after the same loads over h2)")):
        w0, w1 = mem[name]["idle"][-1], mem[name]["after"][-1]  # the master first, its worker last
        lines.append(f"| {label} | {w0['rss_kib'] / 1024:.1f} | {w1['rss_kib'] / 1024:.1f} | "
                     f"{w1['pss_kib'] / 1024:.1f} | {w1['uss_kib'] / 1024:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.h3throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(argv)
    try:
        summary = run(ns.repeat, ns.duration, log=lambda s: print(s, file=sys.stderr, flush=True))
    except BenchError as e:
        print(f"h3throughput: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2) if ns.json else markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
