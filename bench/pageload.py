"""``python -m bench pageload SITE``: cold page loads of one page under a chosen RTT (and
bandwidth), in four modes, through the latency proxy.

    mode       server        client
    h1         --push off    HTTP/1.1, six connections
    h2-off     --push off    HTTP/2, ENABLE_PUSH=0
    h2-hints   --push hints  HTTP/2, ENABLE_PUSH=0, acts on 103 Early Hints
    h2-push    --push auto   HTTP/2, ENABLE_PUSH=1

One pushserve per server flavour, one proxy in front of each; runs alternate between modes
(order rotated each run) so drift spreads over all of them."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import servers
from bench.certs import make_cert
from bench.loader import PageLoad, load_page
from bench.procs import CLIENT_CPU, BenchError, can_pin
from bench.proxy import ProxyThread

MODES = {"h1": "off", "h2-off": "off", "h2-hints": "hints", "h2-push": "auto"}


def _rotated(items: list[str], k: int) -> list[str]:
    k %= len(items)
    return items[k:] + items[:k]


def _load(mode: str, url: str) -> PageLoad:
    try:
        return asyncio.run(load_page(mode, url))
    except TimeoutError as e:
        raise BenchError(f"{mode}: the page did not finish loading within the timeout") from e
    except RuntimeError as e:  # the loader's own errors already name the mode
        raise BenchError(str(e)) from e
    except (OSError, ValueError) as e:
        raise BenchError(f"{mode}: {e}") from e


def run(site: Path, page: str, rtt: float, bits_per_s: float | None, runs: int,
        modes: list[str], log: Callable[[str], None]) -> dict[str, list[PageLoad]]:
    if can_pin():
        # Loader and proxy on the client CPU; servers are pinned to the other one.
        os.sched_setaffinity(0, {CLIENT_CPU})
    results: dict[str, list[PageLoad]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench-pl-") as tmp, ExitStack() as stack:
        spec = servers.ServeSpec(site.resolve(), make_cert(Path(tmp)), Path(tmp))
        urls: dict[str, str] = {}
        for flavour in sorted({MODES[m] for m in modes}):
            base = stack.enter_context(servers.pushserve(spec, push=flavour))
            parts = urlsplit(base)
            proxy = stack.enter_context(ProxyThread((parts.hostname or "127.0.0.1", parts.port or 443),
                                                    rtt, bits_per_s))
            urls[flavour] = f"https://127.0.0.1:{proxy.port}{page}"
        for mode in modes:  # one unmeasured load each: server caches and imports warm up
            _load(mode, urls[MODES[mode]])
        for i in range(runs):
            for mode in _rotated(modes, i):
                result = _load(mode, urls[MODES[mode]])
                results[mode].append(result)
                log(f"run {i + 1}/{runs} {mode:<9} load {result.page_load * 1000:7.1f} ms  "
                    f"critical {result.critical_done * 1000:7.1f} ms  {len(result.entries)} resources")
    return results


def summarise(results: dict[str, list[PageLoad]], rtt: float) -> list[dict[str, Any]]:
    rows = []
    base_h1 = statistics.median(r.page_load for r in results["h1"]) if results.get("h1") else None
    base_off = statistics.median(r.page_load for r in results["h2-off"]) if results.get("h2-off") else None
    for mode, loads in results.items():
        if not loads:
            continue
        times = [r.page_load for r in loads]
        med = statistics.median(times)
        last = loads[-1]
        rows.append({
            "mode": mode,
            "page_load_ms": med * 1000,
            "spread_ms": (max(times) - min(times)) * 1000,
            "critical_ms": statistics.median(r.critical_done for r in loads) * 1000,
            "bytes": statistics.median(r.bytes for r in loads),
            "requests": last.requests,
            "pushes_used": last.pushes_used,
            "pushes_wasted": last.pushes_wasted,
            "hints_used": last.hints_used,
            "hints_wasted": last.hints_wasted,
            "gain_vs_h1_rtt": (base_h1 - med) / rtt if base_h1 is not None and rtt else None,
            "gain_vs_off_rtt": (base_off - med) / rtt if base_off is not None and rtt else None,
        })
    return rows


def format_table(rows: list[dict[str, Any]], rtt: float, bits_per_s: float | None, runs: int) -> str:
    bw = f"{bits_per_s / 1e6:g} Mbit/s" if bits_per_s else "unlimited"
    head = (f"RTT {rtt * 1000:g} ms, bandwidth {bw}, {runs} runs; medians (spread = max - min); "
            f"gain in round trips")
    lines = [head, f"{'mode':<9} {'load ms':>8} {'spread':>7} {'crit ms':>8} {'bytes':>8} {'reqs':>5} "
             f"{'push u/w':>8} {'hint u/w':>8} {'vs h1':>6} {'vs off':>6}"]

    def gain(x: float | None) -> str:
        return f"{x:+.1f}" if x is not None else "-"

    for r in rows:
        lines.append(
            f"{r['mode']:<9} {r['page_load_ms']:>8.1f} {r['spread_ms']:>7.1f} {r['critical_ms']:>8.1f} "
            f"{r['bytes']:>8.0f} {r['requests']:>5} {r['pushes_used']:>4}/{r['pushes_wasted']:<3} "
            f"{r['hints_used']:>4}/{r['hints_wasted']:<3} {gain(r['gain_vs_h1_rtt']):>6} "
            f"{gain(r['gain_vs_off_rtt']):>6}")
    return "\n".join(lines)


def main(site: Path, page: str, rtt: float, bits_per_s: float | None, runs: int, as_json: bool,
         html: Path | None, modes: list[str]) -> int:
    if not site.is_dir():
        raise BenchError(f"{site} is not a folder")
    results = run(site, page, rtt, bits_per_s, runs, modes,
                  log=lambda s: print(s, file=sys.stderr, flush=True))
    rows = summarise(results, rtt)
    if html is not None:
        from bench.report import write_report

        write_report(html, results, rows, rtt=rtt, bits_per_s=bits_per_s, page=page)
        print(f"report: {html}", file=sys.stderr)
    if as_json:
        detail = {m: [asdict(r) for r in loads] for m, loads in results.items()}
        for loads in detail.values():
            for load in loads:
                for e in load["entries"]:
                    e.pop("_body", None)
                    e.pop("_encoding", None)
        print(json.dumps({"rtt_s": rtt, "bits_per_s": bits_per_s, "page": page, "runs": runs,
                          "summary": rows, "loads": detail}, indent=2))
    else:
        print(format_table(rows, rtt, bits_per_s, runs))
    return 0
