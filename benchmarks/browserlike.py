"""``python -m benchmarks.browserlike``: requests/s with the headers a browser sends, over a mix of
50 paths of different sizes and kinds, beside the single-small-file figure of the same run.

A benchmark asks for one 100-byte file with h2load's three headers; a browser asks for pages,
stylesheets, scripts, images, fonts and fetches, each with its own ``accept`` and
``sec-fetch-*``, a user-agent, client hints, ``accept-language``, ``accept-encoding: gzip,
deflate, br, zstd``, a ``priority`` and a cookie.  The docroot is ``site_example`` (rendered
pages, CSS, scripts, fonts, images, JSON: 19 paths) plus a generated site of 31 files from 300
bytes to 120 KB (text of seeded words, so it compresses as text does; PNG and WOFF2 stand-ins of
random bytes, which are not compressed).

Loads, each ``--duration`` s (every load once for 2 s first, unmeasured), all at once on the
client CPU, one h2load per destination (document 1 connection, style 1, script 2, image 2, font
1, fetch 1: 8 connections with 10 streams each, as the table's ``-c8 -m10``), each with its
destination's headers and its paths (``-i``); req/s is the sum:

- ``tiny``: the 100-byte file, h2load's own headers, in the same eight connections;
- ``browser, identity``: the mix with the browser's headers but ``accept-encoding: identity``;
- ``browser, compressed``: the browser's own ``accept-encoding``: text answers are zstd/br/gzip
  bodies pushserve compressed once and keeps;
- each browser load again against a second pushserve whose HTTP/2 core does not reuse a decoded
  request for a header block repeated byte for byte (``benchmarks/peers/pushserve_no_block_cache``):
  the mix repeats each path's block on its connection, as no browser does (it caches), so this
  says how much of the figure comes from that cache.

Every run is checked: no failed, errored or timed-out request and every status 2xx (a 3xx or
404 would be a cheap answer).  Medians of ``--repeat`` runs, order rotated.  HTTP/2 only: wrk
cannot vary headers per path, and HTTP/1.1's head is parsed afresh for every request anyway."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks import loadtools, memory, servers
from benchmarks.throughput import TINY, _rotations
from pushserve.bench.certs import make_cert
from pushserve.bench.procs import CLIENT_CPU, BenchError, can_pin, pinned

REPO = servers.REPO
EXAMPLE = REPO / "site_example"
STREAMS = 10
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")

_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
       "Safari/537.36")
_COMMON = (f"user-agent: {_UA}",
           'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"', "sec-ch-ua-mobile: ?0",
           'sec-ch-ua-platform: "Linux"', "accept-language: en-US,en;q=0.9,de;q=0.8",
           "cookie: session=6f1c2a9e0b7d4c35; theme=dark; consent=analytics%3D0")
BROWSER_ENCODINGS = "accept-encoding: gzip, deflate, br, zstd"


@dataclass(frozen=True)
class Destination:
    name: str
    connections: int
    headers: tuple[str, ...]  # besides _COMMON and accept-encoding
    suffixes: tuple[str, ...]


DESTINATIONS = (
    Destination("document", 1, ("accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                                "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
                                "sec-fetch-site: same-origin", "sec-fetch-mode: navigate", "sec-fetch-user: ?1",
                                "sec-fetch-dest: document", "upgrade-insecure-requests: 1", "priority: u=0, i"),
                (".html", "/")),
    Destination("style", 1, ("accept: text/css,*/*;q=0.1", "sec-fetch-site: same-origin", "sec-fetch-mode: no-cors",
                             "sec-fetch-dest: style", "priority: u=0"), (".css",)),
    Destination("script", 2, ("accept: */*", "sec-fetch-site: same-origin", "sec-fetch-mode: no-cors",
                              "sec-fetch-dest: script", "priority: u=1"), (".js",)),
    Destination("image", 2, ("accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
                             "sec-fetch-site: same-origin", "sec-fetch-mode: no-cors", "sec-fetch-dest: image",
                             "priority: u=5, i"), (".png", ".svg", ".ico")),
    Destination("font", 1, ("accept: */*", "origin: https://127.0.0.1", "sec-fetch-site: same-origin",
                            "sec-fetch-mode: cors", "sec-fetch-dest: font", "priority: u=0"), (".woff2",)),
    Destination("fetch", 1, ("accept: application/json", "sec-fetch-site: same-origin", "sec-fetch-mode: cors",
                             "sec-fetch-dest: empty", "priority: u=4"), (".json",)),
)

# site_example's servable paths (19); the generated site adds 31: 50 in all.
EXAMPLE_PATHS = (
    "/", "/features/", "/css/site.css", "/css/typography.css", "/css/print.css", "/js/app.js", "/js/nav.js",
    "/js/util.js", "/js/visit.js", "/js/clipboard.js", "/features/table.js", "/img/hero.png", "/img/logo.svg",
    "/img/pattern.svg", "/img/streams.svg", "/features/flow.svg", "/favicon.ico",
    "/fonts/dejavu-sans-latin.woff2", "/data/features.json",
)
# (suffix, sizes in bytes) of the generated files, in gen/.
GENERATED = ((".html", (1_800, 6_000, 14_000, 30_000, 60_000)), (".css", (900, 4_000, 18_000, 45_000, 120_000)),
             (".js", (300, 2_500, 8_000, 20_000, 40_000, 70_000, 100_000, 120_000)),
             (".svg", (700, 3_000, 12_000)), (".png", (5_000, 30_000, 90_000)), (".woff2", (16_000, 48_000)),
             (".json", (400, 1_500, 6_000, 25_000, 80_000)))

_WORDS = ("the", "server", "answers", "every", "request", "with", "bytes", "it", "already", "holds", "while",
          "browser", "asks", "for", "pages", "styles", "scripts", "images", "fonts", "and", "data", "in", "one",
          "connection", "many", "streams")


def make_docroot(folder: Path) -> tuple[Path, list[str]]:
    """site_example plus the generated files; returns the docroot and its 50 paths."""
    root = folder / "site"
    shutil.copytree(EXAMPLE, root)
    (root / "gen").mkdir()
    rnd = random.Random(20261207)
    paths = list(EXAMPLE_PATHS)
    for suffix, sizes in GENERATED:
        for i, size in enumerate(sizes):
            name = f"gen/{suffix[1:]}-{i}{suffix}"
            if suffix in (".png", ".woff2"):
                data = rnd.randbytes(size)
            else:
                text = " ".join(rnd.choice(_WORDS) for _ in range(size // 5))
                if suffix == ".html":
                    text = f"<!doctype html><title>gen {i}</title><p>{text}</p>"
                elif suffix == ".json":
                    text = json.dumps({"items": text.split()})
                elif suffix == ".svg":
                    text = f'<svg xmlns="http://www.w3.org/2000/svg"><desc>{text}</desc></svg>'
                elif suffix == ".css":
                    text = f"/* {text} */ body {{ margin: 0 }}"
                else:
                    text = f"// {text}\nexport const n = {i};"
                data = text.encode()[:size].ljust(size, b" ")
            (root / name).write_bytes(data)
            paths.append("/" + name)
    return root, paths


def destination_of(path: str) -> Destination:
    for dest in DESTINATIONS:
        if path.endswith(dest.suffixes):
            return dest
    raise ValueError(path)


@dataclass(frozen=True)
class Group:
    """One h2load of a load: its connections, headers and URL list."""

    connections: int
    headers: tuple[str, ...]
    urls: Path


def groups(kind: str, base: str, paths: list[str], workdir: Path) -> list[Group]:
    """The eight connections of a load, split by destination (``kind``: tiny, identity, compressed)."""
    found = []
    for dest in DESTINATIONS:
        urls = workdir / f"{kind}-{dest.name}.txt"
        if kind == "tiny":
            urls.write_text(f"{base}/{TINY}\n")
            found.append(Group(dest.connections, (), urls))
            continue
        mine = [p for p in paths if destination_of(p) is dest]
        urls.write_text("".join(f"{base}{p}\n" for p in mine))
        coding = BROWSER_ENCODINGS if kind == "compressed" else "accept-encoding: identity"
        found.append(Group(dest.connections, (*_COMMON, *dest.headers, coding), urls))
    return found


def run_load(load: list[Group], duration: int, *, warm_up: bool = False) -> float:
    """All groups at once for ``duration`` s; the sum of their req/s, every answer checked (a
    warm-up on a busy machine may see no answer finish at all: that is no failure there)."""
    procs = []
    for g in load:
        cmd = ["h2load", "-c", str(g.connections), "-m", str(STREAMS), "-D", str(duration),
               *(a for h in g.headers for a in ("-H", h)), "-i", str(g.urls)]
        procs.append((cmd, subprocess.Popen(pinned(cmd, CLIENT_CPU), stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True)))
    total = 0.0
    problems = []
    for cmd, proc in procs:
        try:
            out = proc.communicate(timeout=duration + 60)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            problems.append("h2load timed out")
            continue
        try:
            run = loadtools.parse_h2load(out)
        except BenchError as e:
            problems.append(str(e))
            continue
        # Duration mode: a response whose head came before the time was up and its end after is
        # counted by status, not as done; so: no status but 2xx, and at least one per request done.
        found = _STATUS.search(out)
        statuses = [int(x) for x in found.groups()] if found else [0, 0, 0, 0]
        if run.protocol != "h2":
            problems.append(f"negotiated {run.protocol}")
        elif (run.failed or run.errored or run.timeout or any(statuses[1:]) or statuses[0] < run.done
              or not (run.done or warm_up)):
            problems.append(f"{run.done} done, status codes 2xx/3xx/4xx/5xx {statuses}, {run.failed} failed, "
                            f"{run.errored} errored, {run.timeout} timed out ({cmd[-1]})")
        total += run.rate
    if problems:
        raise BenchError("; ".join(problems))
    return total


LOADS = (("tiny", "pushserve", "100 B file, h2load's headers"),
         ("identity", "pushserve", "browser mix, accept-encoding: identity"),
         ("compressed", "pushserve", "browser mix, gzip/br/zstd (compressed bodies, cached)"),
         ("identity", "no-block-cache", "browser mix, identity, no request-block cache"),
         ("compressed", "no-block-cache", "browser mix, compressed, no request-block cache"))


def run(repeat: int = 3, duration: int = 3, log: Callable[[str], None] = print) -> dict[str, object]:
    if shutil.which("h2load") is None:
        raise BenchError("h2load is not installed (Debian: nghttp2-client)")
    load_before = os.getloadavg()[0]
    runs: dict[str, list[float]] = {f"{k}/{s}": [] for k, s, _ in LOADS}
    cpu: dict[str, list[float]] = {key: [] for key in runs}
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        docroot, paths = make_docroot(work)
        shutil.copy(servers.SITE / TINY, docroot / TINY)
        spec = servers.ServeSpec(docroot, make_cert(work), work)
        live = {"pushserve": stack.enter_context(servers.pushserve(spec)),
                "no-block-cache": stack.enter_context(servers.pushserve(
                    spec, module="benchmarks.peers.pushserve_no_block_cache"))}
        for name in live:
            (work / name).mkdir()
        loads = {f"{k}/{srv}": groups(k, live[srv].base, paths, work / srv) for k, srv, _ in LOADS}
        for load in loads.values():  # warm-up: every body read (and compressed) once
            run_load(load, 2, warm_up=True)
        for rep, order in enumerate(_rotations(list(loads), repeat), 1):
            for key in order:
                pid = live[key.split("/")[1]].pid
                before = memory.cpu_seconds(pid)
                rate = run_load(loads[key], duration)
                requests = rate * duration  # about: h2load's own elapsed time is a little longer
                runs[key].append(rate)
                cpu[key].append((memory.cpu_seconds(pid) - before) / max(requests, 1) * 1e6)
                log(f"run {rep}/{repeat} {key}: {rate:,.0f} req/s")
        mem = {name: [p.rss_kib for p in memory.measure(s.pid)] for name, s in live.items()}
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "duration_s": duration, "repeat": repeat,
            "pinned": can_pin(), "load_average_1min": [load_before, os.getloadavg()[0]], "paths": paths,
            "runs": runs, "cpu_us_per_request": cpu, "rss_kib": mem,
            "median": {k: statistics.median(v) for k, v in runs.items()}}


def markdown(s: dict[str, object]) -> str:
    median: dict[str, float] = s["median"]  # type: ignore[assignment]
    runs: dict[str, list[float]] = s["runs"]  # type: ignore[assignment]
    cpu: dict[str, list[float]] = s["cpu_us_per_request"]  # type: ignore[assignment]
    tiny = median["tiny/pushserve"]
    load = " → ".join(f"{x:.1f}" for x in s["load_average_1min"])  # type: ignore[attr-defined]
    out = [f"{s['date']}, 1-min load average {load}, medians of {s['repeat']} runs of {s['duration_s']} s "
           f"(8 connections x {STREAMS} streams, h2load per destination), "
           f"{'pinned' if s['pinned'] else 'not pinned'}:", "",
           "| load | req/s | / 100 B file | server CPU µs per request (about) | runs |", "|---|---:|---:|---:|---|"]
    for k, srv, label in LOADS:
        key = f"{k}/{srv}"
        out.append(f"| {label} | {median[key]:,.0f} | {median[key] / tiny:.2f}x | "
                   f"{statistics.median(cpu[key]):,.1f} | {', '.join(f'{x:,.0f}' for x in runs[key])} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.browserlike", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds per run (3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        summary = run(args.repeat, args.duration, log=lambda t: print(t, file=sys.stderr, flush=True))
    except BenchError as e:
        print(f"browserlike: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2) if args.json else markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
