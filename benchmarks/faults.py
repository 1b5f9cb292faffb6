"""``python -m benchmarks.faults``: what a polite client sees when the machine misbehaves — faults
that are nobody's attack (issue 22) — with pushserve (this checkout, and another with
``--baseline``) beside nginx and h2o.

Scenarios (each against a fresh server):

- ``site``: two workers; the docroot is renamed away, one worker is killed (not h2o: one
  process), and the docroot comes back 3 s later;
- ``truncate``: a 64 MiB file is truncated to 1 MiB under a download: over HTTP/1.1 with a second
  request pipelined behind it, and over HTTP/2;
- ``sigstop``: two workers (not h2o: its workers are threads), three clients; one worker is
  SIGSTOPped for ``--stop`` seconds (10), then continued;
- ``sighup`` (pushserve only, with a mounted app that takes 1 s to start, so a reload lasts over
  a second): SIGHUP, a new certificate on disk ``--hup-gap`` seconds later (1.0; the issue's 0.4
  can fall inside the first reload's certificate check, about 0.4 s here, which then reads the
  new files itself), SIGHUP again;
- ``files``: one worker, then ``ulimit -n 256`` (soft and hard, prlimit on the running server);
  400 keep-alive clients, each served one request and left open, then a polite client.

The polite client opens a new connection for every request (HTTP/1.1 and HTTP/2 taking turns),
one after the other, each given 15 s.  Reported: its statuses, failures, how many took over 1 s
and the slowest; per scenario what it needs (the bytes a truncated download got and how it ended).
Loopback only; every client is bounded in count and time; servers are pinned to CPU 0 and this
process to CPU 1.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import resource
import shutil
import signal
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from benchmarks import servers
from benchmarks.memory import process_tree
from pushserve.bench.certs import CertPair, make_cert
from pushserve.bench.procs import CLIENT_CPU, can_pin
from tests.support.faults import (
    PoliteClient,
    Seen,
    Target,
    h1_download_cut_short,
    h2_download_cut_short,
    write_big,
)

MIB = 1024 * 1024
BIG = 64 * MIB
PATTERN = bytes(range(251)) * (BIG // 251 + 1)  # each byte tells its offset: a splice shows
CSS = b"p { color: green }\n" * 50
SCENARIOS = ("site", "truncate", "sigstop", "sighup", "files")

Start = Callable[[servers.ServeSpec], AbstractContextManager[servers.Served]]


def _context(alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the bench's own throwaway certificate
    ctx.set_alpn_protocols(alpn)
    return ctx


def _target(base: str) -> Target:
    host, port = base.removeprefix("https://").rsplit(":", 1)
    return Target(host, int(port), _context)


def _polite(base: str, stack: contextlib.ExitStack) -> PoliteClient:
    """A polite client (its requests given 15 s), stopped when ``stack`` closes at the latest."""
    return stack.enter_context(PoliteClient(_target(base), "/small.css", timeout=15))


def _end(clients: list[PoliteClient]) -> Seen:
    seen = Seen()
    for c in clients:
        c.__exit__()
        seen.add(c.take())
    return seen


def _take(clients: list[PoliteClient]) -> Seen:
    seen = Seen()
    for c in clients:
        seen.add(c.take())
    return seen


def workers_of(pid: int) -> list[int]:
    return [p for p, parent, _ in process_tree(pid) if parent == pid]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


def limit_open_files(pid: int, n: int) -> None:
    """``ulimit -n n`` (soft and hard) for a running server, every process of it (prlimit(2)); a
    worker forked later inherits its master's.  (This process cannot lower its own hard limit
    for a child and take it back without CAP_SYS_RESOURCE.)"""
    for p, _, _ in process_tree(pid):
        resource.prlimit(p, resource.RLIMIT_NOFILE, (n, n))


# -- scenarios -------------------------------------------------------------------------------------

def site(start: Start, spec: servers.ServeSpec, name: str) -> list[str]:
    with start(spec) as served, contextlib.ExitStack() as stack:
        clients = [_polite(served.base, stack)]
        time.sleep(1.0)  # the scenario's pace: a second of normal traffic, then the fault
        before = _take(clients)
        away = spec.docroot.with_name("docroot.away")
        spec.docroot.rename(away)
        killed = ""
        if name != "h2o":
            victim = min(workers_of(served.pid))
            os.kill(victim, signal.SIGKILL)
            killed = f", worker {victim} killed"
        time.sleep(6.0)
        gap = _take(clients)
        up_in_gap = alive(served.pid)
        away.rename(spec.docroot)
        time.sleep(3.0)
        after = _end(clients)
        return [f"before: {before}",
                f"docroot gone{killed}, 6 s: {gap}" + ("" if up_in_gap else "; the server had exited"),
                f"docroot back, 3 s: {after}" + ("" if alive(served.pid) else "; the server had exited")]


def truncate(start: Start, spec: servers.ServeSpec, name: str) -> list[str]:
    big = spec.docroot / "big.bin"
    write_big(big)
    with start(spec) as served:
        h1 = h1_download_cut_short(_target(served.base), big, "/small.css")
    write_big(big)
    with start(spec) as served:
        h2, conn = h2_download_cut_short(_target(served.base), big)
        conn.sock.close()
    return [f"HTTP/1.1: {h1}", f"HTTP/2: {h2}"]


def sigstop(start: Start, spec: servers.ServeSpec, name: str, stop_for: float) -> list[str]:
    with start(spec) as served, contextlib.ExitStack() as stack:
        clients = [_polite(served.base, stack) for _ in range(3)]
        time.sleep(1.0)
        before = _take(clients)
        victim = min(workers_of(served.pid))
        os.kill(victim, signal.SIGSTOP)
        try:
            time.sleep(stop_for)
        finally:
            os.kill(victim, signal.SIGCONT)
        during = _take(clients)
        time.sleep(2.0)
        after = _end(clients)
        replaced = "" if victim in workers_of(served.pid) else " (it was replaced meanwhile)"
        return [f"before: {before}", f"worker {victim} stopped for {stop_for:g} s: {during}{replaced}",
                f"continued, 2 s: {after}"]


SLOW_START = """
import asyncio

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await asyncio.sleep(1.0)  # an app that takes a second to start
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
"""


def sighup(start: Start, spec: servers.ServeSpec, name: str, gap: float) -> list[str]:
    first = spec.cert
    other = make_cert(spec.workdir / "other")
    live = CertPair(spec.workdir / "live-cert.pem", spec.workdir / "live-key.pem")
    shutil.copy(first.cert, live.cert)
    shutil.copy(first.key, live.key)
    (spec.workdir / "slowstart.py").write_text(SLOW_START)
    with start(servers.ServeSpec(spec.docroot, live, spec.workdir)) as served, contextlib.ExitStack() as stack:
        clients = [_polite(served.base, stack)]
        time.sleep(1.0)
        os.kill(served.pid, signal.SIGHUP)
        time.sleep(gap)  # the second SIGHUP lands while the first reload's workers start
        shutil.copy(other.cert, live.cert)
        shutil.copy(other.key, live.key)
        os.kill(served.pid, signal.SIGHUP)
        time.sleep(6.0)  # both reloads done (about 1 s each here)
        seen = _end(clients)
        new = sum(1 for _ in range(10)
                  if _peer_cert(_target(served.base)) == other.cert.read_bytes().split(b"-----END")[0])
        return [f"during the two reloads: {seen}", f"after: {new} of 10 connections get the new certificate"]


def _peer_cert(target: Target) -> bytes:
    with target.connect(["http/1.1"], 10) as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der).encode().split(b"-----END")[0]


def files(start: Start, spec: servers.ServeSpec, name: str) -> list[str]:
    with start(spec) as served:
        limit_open_files(served.pid, 256)
        target = _target(served.base)
        held: list[ssl.SSLSocket] = []
        outcome: collections.Counter[str] = collections.Counter()
        started = time.monotonic()
        for _ in range(400):
            try:
                s = target.connect(["http/1.1"], 5)
                held.append(s)
                s.sendall(b"GET /small.css HTTP/1.1\r\nHost: localhost\r\n\r\n")
                head = s.recv(65536)
                outcome[head[:12].decode("latin-1") or "closed"] += 1
            except TimeoutError:
                outcome["timed out (5 s)"] += 1
            except OSError as e:
                outcome[type(e).__name__] += 1
        took = time.monotonic() - started
        with contextlib.ExitStack() as stack:
            clients = [_polite(served.base, stack)]
            time.sleep(3.0)
            seen = _end(clients)
        for s in held:
            s.close()
        return [f"400 keep-alive clients, {took:.1f} s: {dict(outcome)}", f"then, 3 s: {seen}"]


# -- the run ---------------------------------------------------------------------------------------

def _servers(args: argparse.Namespace, scenario: str) -> list[tuple[str, Start]]:
    workers = 1 if scenario in ("files", "truncate") else 2
    found: list[tuple[str, Start]] = [
        ("pushserve", lambda spec: servers.pushserve(spec, workers=workers))]
    if scenario == "sighup":
        extra = ["--app-dir", "{workdir}", "--mount", "/slow=slowstart:app"]
        found = [("pushserve", lambda spec: servers.pushserve(spec, workers=workers, extra=_in(extra, spec)))]
        if args.baseline is not None:
            found.append(("pushserve (baseline)", lambda spec: servers.pushserve(
                spec, workers=workers, extra=_in(extra, spec), repo=args.baseline)))
        return found
    if args.baseline is not None:
        found.append(("pushserve (baseline)",
                      lambda spec: servers.pushserve(spec, workers=workers, repo=args.baseline)))
    conns = 4096 if scenario == "files" else 1024
    if servers.nginx_available():
        found.append(("nginx", lambda spec: servers.nginx(spec, workers=workers, connections=conns)))
    if servers.h2o_available() and scenario != "sigstop":
        found.append(("h2o", servers.h2o))
    return found


def _in(args: list[str], spec: servers.ServeSpec) -> list[str]:
    return [a.replace("{workdir}", str(spec.workdir)) for a in args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--baseline", type=Path, help="another pushserve checkout to run beside this one")
    parser.add_argument("--stop", type=float, default=10.0, help="seconds a worker stays stopped (sigstop)")
    parser.add_argument("--hup-gap", type=float, default=1.0, help="seconds between the two SIGHUPs")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}: choose from {', '.join(SCENARIOS)}")
    args.scenarios = args.scenarios or list(SCENARIOS)
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CPU})
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}; nginx {servers.version('nginx')}, h2o {servers.version('h2o')}",
          file=sys.stderr)
    for scenario in args.scenarios:
        print(f"\n## {scenario}")
        for name, start in _servers(args, scenario):
            with tempfile.TemporaryDirectory(prefix="pushserve-faults-") as tmp:
                work = Path(tmp)
                docroot = work / "docroot"
                docroot.mkdir()
                (docroot / "small.css").write_bytes(CSS)
                (docroot / "index.html").write_text("<!doctype html><title>f</title><p>faults\n")
                spec = servers.ServeSpec(docroot, make_cert(work / "cert"), work)
                runs: dict[str, Callable[[Start, servers.ServeSpec, str], list[str]]] = {
                    "site": site, "truncate": truncate, "files": files,
                    "sighup": functools.partial(sighup, gap=args.hup_gap),
                    "sigstop": functools.partial(sigstop, stop_for=args.stop)}
                run = runs[scenario]
                try:
                    lines = run(start, spec, name)
                except Exception as e:
                    lines = [f"failed: {type(e).__name__}: {e}"]
            print(f"- **{name}**")
            for line in lines:
                print(f"  - {line}")
            sys.stdout.flush()
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
