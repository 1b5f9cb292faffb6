"""``pushserve bench SITE``: page loads of one page under a chosen RTT (and bandwidth), through
the latency proxy, in several modes; each cold (empty cache) and then warm (a returning visit).

    mode       server        client
    h1         --push off    HTTP/1.1, six connections
    h2-off     --push off    HTTP/2, ENABLE_PUSH=0
    h2-hints   --push hints  HTTP/2, ENABLE_PUSH=0, acts on 103 Early Hints
    h2-push    --push auto   HTTP/2, ENABLE_PUSH=1

With ``--browser`` headless Chromium loads the page too (``--push off`` and ``--push hints``), with
paint metrics, a HAR from its DevTools events and a filmstrip.  ``--har DIR`` writes every load
as HAR 1.2; ``--think`` asks each pushserve for a bench-only think time before the page.
One server per flavour, one proxy in front of each; runs alternate between variants (order
rotated each run) so drift spreads over all of them.  Other servers (the repo harness's nginx
and h2o) come in as extra ``Variant`` s with their own starters."""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pushserve
from pushserve.bench.certs import CertPair, make_cert
from pushserve.bench.loader import BrowserCache, ConnectedAt, PageLoad, load_page
from pushserve.bench.procs import CLIENT_CPU, SERVER_CPU, BenchError, can_pin, pinned, running
from pushserve.bench.proxy import ProxyThread
from pushserve.bench.series import Series, Settings, Variant, median_ms, percentiles_ms

MODES = ("h1", "h2-off", "h2-hints", "h2-push")
PUSH_FLAVOUR = {"h1": "off", "h2-off": "off", "h2-hints": "hints", "h2-push": "auto"}
BROWSER_MODES = ("h2-off", "h2-hints")
# Visits: cold = empty cache; warm = the same profile again (cache + cookie of the cold load);
# warm-nocookie = the same cache but the push cookie dropped: what cache-aware push saves.
VISITS = ("cold", "warm", "warm-nocookie")

# A starter yields the upstream base URL (https://127.0.0.1:PORT) of a running server.
Starter = Callable[[], AbstractContextManager[str]]


def pushserve_variants(modes: list[str], browser: bool) -> list[Variant]:
    out = [Variant("pushserve", m, f"pushserve:{PUSH_FLAVOUR[m]}") for m in modes]
    if browser:
        out += [Variant("chromium", m, f"pushserve:{PUSH_FLAVOUR[m]}") for m in BROWSER_MODES]
    return out


def _pythonpath() -> str:
    # The folder holding the pushserve package being run: the checkout or site-packages, so
    # the child serves the same code as this process imports.
    root = str(Path(pushserve.__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def server_supports(option: str) -> bool:
    """Whether the pushserve this bench starts lists ``option`` in its --help."""
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    try:
        done = subprocess.run([sys.executable, "-m", "pushserve", "--help"], capture_output=True, text=True,
                              env=env, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"python -m pushserve --help: {e}") from e
    return re.search(rf"(^|\s){re.escape(option)}\b", done.stdout, re.MULTILINE) is not None


def server_args(settings: Settings) -> list[str]:
    """Options the bench passes to every pushserve it starts."""
    return ["--bench-think", f"{settings.think * 1000:g}ms"] if settings.think else []


@contextmanager
def start_pushserve(site: Path, cert: CertPair, workdir: Path, push: str,
                    extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """pushserve on SITE, one worker, port 0, the bench certificate; yields its base URL."""
    cmd = [sys.executable, "-m", "pushserve", str(site), "--port", "0", "--cert", str(cert.cert),
           "--key", str(cert.key), "--cert-dir", str(workdir / "pushserve-certs"), "--push", push,
           "--no-access-log", "--workers", "1", *extra_args]
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "PUSHSERVE_CAROOT": str(workdir / "caroot")}
    with running(f"pushserve --push {push}", pinned(cmd, SERVER_CPU), env=env) as child:
        url = child.wait_for_line(re.compile(r" at (https://[^/\s]+:\d+)/")).group(1)
        yield url.replace("localhost", "127.0.0.1")


def pushserve_starters(site: Path, cert: CertPair, workdir: Path,
                       extra_args: tuple[str, ...] = ()) -> dict[str, Starter]:
    return {f"pushserve:{push}": functools.partial(start_pushserve, site, cert, workdir, push, extra_args)
            for push in ("off", "hints", "auto")}


def _rotated(items: list[Variant], k: int) -> list[Variant]:
    k %= len(items)
    return items[k:] + items[:k]


def _load(label: str, mode: str, url: str, cache: BrowserCache | None = None, send_cookies: bool = True,
          connected_at: ConnectedAt | None = None) -> PageLoad:
    try:
        return asyncio.run(load_page(mode, url, cache=cache, send_cookies=send_cookies, connected_at=connected_at))
    except TimeoutError as e:
        raise BenchError(f"{label}: the page did not finish loading within the timeout") from e
    except (RuntimeError, OSError, ValueError) as e:
        # The loader's own errors already start with the mode: no "h2-off: h2-off: ...".
        text = str(e).removeprefix(f"{mode}:").strip()
        raise BenchError(f"{label}: {text}") from e


def visits_for(variant: Variant, settings: Settings) -> list[str]:
    if variant.browser or not settings.warm:
        return ["cold"]
    # The cookie only changes anything where the server announces resources.
    nocookie = variant.target == "pushserve" and variant.mode in ("h2-push", "h2-hints")
    return ["cold", "warm", *(["warm-nocookie"] if nocookie else [])]


def run(starters: dict[str, Starter], variants: list[Variant], settings: Settings, cert: CertPair,
        log: Callable[[str], None]) -> list[Series]:
    """Start each server the variants need (behind its own proxy), then ``runs`` rounds of loads."""
    cpus = os.sched_getaffinity(0)
    if can_pin():
        # Loader and proxy on the client CPU; servers are pinned to the other one.
        os.sched_setaffinity(0, {CLIENT_CPU})
    try:
        return _run(starters, variants, settings, cert, log)
    finally:
        os.sched_setaffinity(0, cpus)  # whatever runs next in this process (--compare) may pin again


def _run(starters: dict[str, Starter], variants: list[Variant], settings: Settings, cert: CertPair,
         log: Callable[[str], None]) -> list[Series]:
    # Cold rows first, then the returning visits, in variant order.
    series = {(v, visit): Series(v, visit, []) for visit in VISITS for v in variants
              if visit in visits_for(v, settings)}
    with ExitStack() as stack:
        bases: dict[str, str] = {}
        proxies: dict[str, ProxyThread] = {}
        for key in sorted({v.server for v in variants}):
            upstream = urlsplit(stack.enter_context(starters[key]()))
            proxy = stack.enter_context(ProxyThread((upstream.hostname or "127.0.0.1", upstream.port or 443),
                                                    settings.rtt, settings.bits_per_s))
            bases[key] = f"https://127.0.0.1:{proxy.port}"
            proxies[key] = proxy
        browser = None
        if any(v.browser for v in variants):
            from pushserve.bench.browser import Chromium

            browser = stack.enter_context(Chromium(cert.cert))

        def one_round(v: Variant, record: bool) -> None:
            url = bases[v.server] + settings.page
            if browser is not None and v.browser:
                loads = {"cold": browser.load(url, v.mode, proxies[v.server].proxy.connected_between)}
            else:
                cache = BrowserCache()
                connected_at = proxies[v.server].proxy.connected_at
                loads = {"cold": _load(v.label(), v.mode, url, cache, connected_at=connected_at)}
                warm_url = bases[v.server] + (settings.warm_page or settings.page)
                visits = visits_for(v, settings)
                if "warm-nocookie" in visits:
                    loads["warm-nocookie"] = _load(v.label("warm-nocookie"), v.mode, warm_url,
                                                   copy.deepcopy(cache), send_cookies=False,
                                                   connected_at=connected_at)
                if "warm" in visits:
                    loads["warm"] = _load(v.label("warm"), v.mode, warm_url, cache, connected_at=connected_at)
            if record:
                for visit, result in loads.items():
                    series[(v, visit)].loads.append(result)

        for v in variants:  # one unmeasured round each: server caches, imports, Chromium warm up
            one_round(v, record=False)
        for i in range(settings.runs):
            for v in _rotated(variants, i):
                one_round(v, record=True)
                cold = series[(v, "cold")].loads[-1]
                log(f"run {i + 1}/{settings.runs} {v.label():<18} load {cold.page_load * 1000:7.1f} ms  "
                    f"critical {cold.critical_done * 1000:7.1f} ms  {len(cold.entries)} resources")
    return list(series.values())


def summarise(all_series: list[Series], rtt: float) -> list[dict[str, Any]]:
    medians = {(s.variant.target, s.variant.mode, s.visit): statistics.median(r.page_load for r in s.loads)
               for s in all_series if s.loads}
    lcp_medians = {(s.variant.target, s.variant.mode, s.visit): median_ms([r.lcp for r in s.loads])
                   for s in all_series if s.loads}
    rows = []
    for s in all_series:
        if not s.loads:
            continue
        v = s.variant
        times = [r.page_load for r in s.loads]
        med = statistics.median(times)
        # warm-nocookie is measured against the warm baselines (nothing announced: no cookie needed).
        base_visit = "warm" if s.visit == "warm-nocookie" else s.visit
        base_h1 = medians.get((v.target, "h1", base_visit))
        base_off = medians.get((v.target, "h2-off", base_visit))

        def med_int(attr: str, loads: list[PageLoad] = s.loads) -> int:
            return round(statistics.median(float(getattr(r, attr)) for r in loads))

        fcp, lcp = [r.fcp for r in s.loads], [r.lcp for r in s.loads]
        si = [r.speed_index / 1000 if r.speed_index is not None else None for r in s.loads]
        ttfb = [r.response_start for r in s.loads]
        load: list[float | None] = list(times)
        spread: dict[str, float] = {}  # p75/p90 per metric, when there are enough runs
        for key, xs in (("load", load), ("ttfb", ttfb), ("fcp", fcp), ("lcp", lcp), ("speed_index", si)):
            spread.update(percentiles_ms(xs, key))
        lcp_base = lcp_medians.get((v.target, "h2-off", base_visit))
        lcp_med = median_ms(lcp)

        rows.append({
            "row": s.label, "target": v.target, "mode": v.mode, "visit": s.visit,
            "protocol": s.loads[-1].protocol,
            "page_load_ms": med * 1000,
            "spread_ms": (max(times) - min(times)) * 1000,
            "critical_ms": statistics.median(r.critical_done for r in s.loads) * 1000,
            "interim_ms": median_ms([r.first_interim for r in s.loads]),
            "response_start_ms": median_ms([r.response_start for r in s.loads]),
            "bytes": statistics.median(r.bytes for r in s.loads),
            "requests": med_int("requests"),
            "from_cache": med_int("from_cache"),
            "not_modified": med_int("not_modified"),
            "pushes_used": med_int("pushes_used"),
            "pushes_wasted": med_int("pushes_wasted"),
            "hints_used": med_int("hints_used"),
            "hints_wasted": med_int("hints_wasted"),
            "gain_vs_h1_rtt": (base_h1 - med) / rtt if base_h1 is not None and rtt else None,
            "gain_vs_off_rtt": (base_off - med) / rtt if base_off is not None and rtt else None,
            "saved_vs_off_ms": (base_off - med) * 1000 if base_off is not None else None,
            "fcp_ms": median_ms(fcp), "lcp_ms": lcp_med, "speed_index_ms": median_ms(si),
            "lcp_saved_vs_off_ms": lcp_base - lcp_med if lcp_base is not None and lcp_med is not None else None,
            **spread,
        })
    return rows


def format_table(rows: list[dict[str, Any]], settings: Settings) -> str:
    lines = [settings.describe(),
             f"{'row':<26} {'load ms':>8} {'spread':>7} {'crit ms':>8} {'103 ms':>7} {'200 ms':>7} "
             f"{'bytes':>7} {'reqs':>4} {'cache/304':>9} {'push u/w':>8} {'hint u/w':>8} {'vs h1':>6} {'vs off':>6}"]

    def num(x: float | None, fmt: str) -> str:
        return format(x, fmt) if x is not None else "-"

    for r in rows:
        lines.append(
            f"{r['row']:<26} {r['page_load_ms']:>8.1f} {r['spread_ms']:>7.1f} {r['critical_ms']:>8.1f} "
            f"{num(r['interim_ms'], '.1f'):>7} {num(r['response_start_ms'], '.1f'):>7} {r['bytes']:>7.0f} "
            f"{r['requests']:>4} {r['from_cache']:>4}/{r['not_modified']:<4} "
            f"{r['pushes_used']:>4}/{r['pushes_wasted']:<3} {r['hints_used']:>4}/{r['hints_wasted']:<3} "
            f"{num(r['gain_vs_h1_rtt'], '+.1f'):>6} {num(r['gain_vs_off_rtt'], '+.1f'):>6}")
    return "\n".join(lines)


def to_json(all_series: list[Series], rows: list[dict[str, Any]], settings: Settings,
            extra: dict[str, Any] | None = None) -> str:
    loads = {s.label: [asdict(r) for r in s.loads] for s in all_series}
    for per_row in loads.values():
        for load in per_row:
            for private in [k for k in load if k.startswith("_")]:  # frames, HAR: files of their own
                del load[private]
            for e in load["entries"]:
                for private in [k for k in e if k.startswith("_")]:
                    del e[private]
    return json.dumps({"page": settings.page, "rtt_s": settings.rtt, "bits_per_s": settings.bits_per_s,
                       "runs": settings.runs, "warm_page": settings.warm_page, "summary": rows,
                       "loads": loads, **(extra or {})}, indent=2)


def main(site: Path, settings: Settings, modes: list[str], *, browser: bool = False, as_json: bool = False,
         html: Path | None = None, har: Path | None = None,
         extra: Callable[[Path, CertPair], tuple[dict[str, Starter], list[Variant]]] | None = None,
         sections: Callable[[], list[tuple[str, str]]] | None = None) -> int:
    """Run, then print the table (or JSON) and write the HTML report.  ``extra`` adds servers and
    variants (the repo harness's peers); ``sections`` adds HTML sections to the report."""
    if not site.is_dir():
        raise BenchError(f"{site} is not a folder")
    if settings.runs < 1:
        raise BenchError("--runs must be at least 1")
    if har is not None and har.exists() and not har.is_dir():
        raise BenchError(f"--har {har}: not a folder")
    if not settings.page.startswith("/") or (settings.warm_page is not None and not settings.warm_page.startswith("/")):
        raise BenchError("--page and --warm-page are paths starting with /")

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="pushserve-bench-") as tmp:
        work = Path(tmp)
        cert = make_cert(work)
        starters = pushserve_starters(site.resolve(), cert, work, tuple(server_args(settings)))
        variants = pushserve_variants(modes, browser)
        if extra is not None:
            more_starters, more_variants = extra(work, cert)
            starters.update(more_starters)
            variants += more_variants
        all_series = run(starters, variants, settings, cert, log)
    rows = summarise(all_series, settings.rtt)
    extra_html = sections() if sections is not None else []
    if har is not None:
        from pushserve.bench.har import write_hars

        try:
            written = write_hars(har, all_series)
        except OSError as e:
            raise BenchError(f"--har {har}: {e.strerror or e}") from e
        log(f"HAR: {len(written)} files in {har}")
    if html is not None:
        from pushserve.bench.report import write_report

        write_report(html, all_series, rows, settings=settings, sections=extra_html)
        log(f"report: {html}")
    print(to_json(all_series, rows, settings) if as_json else format_table(rows, settings))
    return 0
