"""``pushserve bench SITE``: page loads of one page under a chosen network (RTT, bandwidth, loss,
jitter), in several modes and engines; the loader's loads cold (empty cache) and then warm (a
returning visit).

    mode       server        client
    h1         --push off    HTTP/1.1, six connections (loader only)
    h2-off     --push off    HTTP/2, ENABLE_PUSH=0
    h2-hints   --push hints  HTTP/2, ENABLE_PUSH=0, acts on 103 Early Hints
    h2-push    --push auto   HTTP/2, ENABLE_PUSH=1 (loader only: browsers refuse push)
    h3-off     --push off    HTTP/3 (browsers only), nothing announced
    h3-hints   --push hints  HTTP/3 (browsers only), acts on 103 Early Hints

An h2 row and the h3 row of the same flavour load from the same pushserve (it serves h3 on its
TCP port's number over UDP); the browser is told which protocol to speak, and every entry of a
browser's load must have come over the mode's protocol (``engine.py``: a fallback fails the run).
h3 needs the packet shaper: the latency proxy carries TCP only.

Engines: the bench's browser-like ``loader``; headless ``chromium`` (and, with it, its control
run ``chromium-control``: no DevTools Network domain attached) and ``firefox``, with paint
metrics, HAR files from their own network events and (Chromium) a filmstrip.  ``--think`` asks
each pushserve for a bench-only think time before the page.

One server per flavour, all behind one network (``network.py``: the packet shaper or the latency
proxy).  Runs interleave every row: round i loads each row once, in an order rotated each round
(ABAB…, never a block per row), so drift on a shared machine spreads over all rows, and round i
of two rows can be compared as a pair (``stats.py``).  Other servers (the repo harness's nginx
and h2o) come in as extra ``Variant`` s with their own starters."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pushserve.bench.certs import CertPair, make_cert
from pushserve.bench.engine import WrongProtocol, hint_disagreements
from pushserve.bench.loader import BrowserCache, ConnectedAt, PageLoad, load_page
from pushserve.bench.network import Exposed, Network, ProxyNetwork, choose
from pushserve.bench.procs import (
    CLIENT_CPU,
    LOOPBACK,
    SERVER_CPU,
    BenchError,
    Place,
    Starter,
    can_pin,
    enter_together,
    pinned,
    pythonpath,
    running,
)
from pushserve.bench.series import BROWSERS, Series, Settings, Variant, median_ms, percentiles_ms
from pushserve.bench.stats import compare

MODES = ("h1", "h2-off", "h2-hints", "h2-push", "h3-off", "h3-hints")
PUSH_FLAVOUR = {"h1": "off", "h2-off": "off", "h2-hints": "hints", "h2-push": "auto", "h3-off": "off",
                "h3-hints": "hints"}
BROWSER_MODES = ("h2-off", "h2-hints", "h3-off", "h3-hints")
LOADER_MODES = ("h1", "h2-off", "h2-hints", "h2-push")  # the loader speaks HTTP/1.1 and HTTP/2
H3_MODES = ("h3-off", "h3-hints")
ENGINES = ("loader", "chromium", "firefox")
# Visits: cold = empty cache; warm = the same profile again (cache + cookie of the cold load);
# warm-nocookie = the same cache but the push cookie dropped: what cache-aware push saves.
VISITS = ("cold", "warm", "warm-nocookie")
# The metrics each kind of row is judged on (summary key, words), the first one first.
LOADER_METRICS = (("page_load", "load"),)
BROWSER_METRICS = (("lcp", "LCP"), ("fcp", "FCP"), ("response_start", "TTFB"), ("page_load", "load"))

def pushserve_variants(modes: list[str], engines: list[str], control: bool = True) -> list[Variant]:
    """The rows: the loader's for every mode, each browser's for the modes a browser can load,
    and Chromium's control run beside Chromium's."""
    out = ([Variant("pushserve", m, f"pushserve:{PUSH_FLAVOUR[m]}") for m in modes if m in LOADER_MODES]
           if "loader" in engines else [])
    targets: list[str] = [e for e in ("chromium", "firefox") if e in engines]
    if "chromium" in targets and control:
        targets.insert(1, "chromium-control")
    # Side by side per mode: each mode's browser rows together.
    out += [Variant(t, m, f"pushserve:{PUSH_FLAVOUR[m]}") for m in modes if m in BROWSER_MODES for t in targets]
    return out


def server_supports(option: str) -> bool:
    """Whether the pushserve this bench starts lists ``option`` in its --help."""
    env = {**os.environ, "PYTHONPATH": pythonpath()}
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
def start_pushserve(site: Path, cert: CertPair, workdir: Path, push: str, extra_args: tuple[str, ...] = (),
                    place: Place = LOOPBACK) -> Iterator[str]:
    """pushserve on SITE, one worker, port 0, the bench certificate, at ``place``; yields its base URL."""
    cmd = [sys.executable, "-m", "pushserve", str(site), "--host", place.host, "--port", "0",
           "--cert", str(cert.cert), "--key", str(cert.key), "--cert-dir", str(workdir / "pushserve-certs"),
           "--push", push, "--no-access-log", "--workers", "1", *extra_args]
    env = {**os.environ, "PYTHONPATH": pythonpath(), "PUSHSERVE_CAROOT": str(workdir / "caroot")}
    with running(f"pushserve --push {push}", place.wrap(pinned(cmd, SERVER_CPU)), env=env) as child:
        port = child.wait_for_line(re.compile(r" at https://[^/\s]+:(\d+)/")).group(1)
        yield f"https://{place.host}:{port}"


def pushserve_starters(site: Path, cert: CertPair, workdir: Path,
                       extra_args: tuple[str, ...] = ()) -> dict[str, Starter]:
    # Each is called with the network's place: start_pushserve(..., extra_args, place).
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
        log: Callable[[str], None], networks: dict[str, Network] | None = None) -> list[Series]:
    """Start each server the variants need (at its network's place, exposed through it), then
    ``runs`` rounds of loads.  ``networks``: by a variant's ``net`` ("" for a run with one);
    without them, the latency proxy (the harness's callers)."""
    cpus = os.sched_getaffinity(0)
    if can_pin():
        # Loader and proxy on the client CPU; servers are pinned to the other one.
        os.sched_setaffinity(0, {CLIENT_CPU})
    try:
        if networks is None:
            with ProxyNetwork(settings.shape) as proxy:
                return _run(starters, variants, settings, cert, log, {"": proxy})
        return _run(starters, variants, settings, cert, log, networks)
    finally:
        os.sched_setaffinity(0, cpus)  # whatever runs next in this process (--compare) may pin again


def engine_key(v: Variant) -> str:
    """The engine a row loads in: Firefox's h3 rows have a Firefox of their own (its HTTP/3 is
    steered by prefs, for the whole browser); Chromium is told per load."""
    return f"{v.target}/h3" if v.target == "firefox" and v.mode in H3_MODES else v.target


def engine_managers(keys: set[str], cert: CertPair, h3_origins: tuple[str, ...] = ()) -> dict[str, Any]:
    """The browsers the rows need (``engine_key``; not started yet), each to be started once for
    the whole run; ``h3_origins`` (HOST:PORT): the servers the h3 rows load from."""
    engines: dict[str, Any] = {}
    if "chromium" in keys or "chromium-control" in keys:
        from pushserve.bench.browser import Chromium

        for name, instrumented in (("chromium", True), ("chromium-control", False)):
            if name in keys:
                engines[name] = Chromium(cert.cert, instrumented=instrumented, ca=cert.ca)
    for key in ("firefox", "firefox/h3"):
        if key in keys:
            from pushserve.bench.firefox import Firefox

            if cert.ca is None:
                raise BenchError("firefox: the bench certificate has no CA file to trust")
            engines[key] = Firefox(cert.ca, h3_origins=h3_origins if key == "firefox/h3" else None)
    return engines


def _browser_load(engine: Any, v: Variant, url: str, served: Exposed, record: bool,
                  log: Callable[[str], None]) -> PageLoad:
    """One browser load, tried once more if the browser fails it (a crashed renderer, a session
    that would not start on a busy machine): one failure does not cost the whole run.  The
    warm-up round does not wait for the browser's verdict on its preloads."""
    def once() -> PageLoad:
        if v.target == "chromium" and served.proxy is not None:
            return engine.load(url, v.mode, served.proxy.proxy.connected_between, record)  # type: ignore[no-any-return]
        return engine.load(url, v.mode, watch_hints=record)  # type: ignore[no-any-return]

    try:
        return once()
    except WrongProtocol:
        raise  # not the browser failing: the network or the server cannot give the row its protocol
    except BenchError as e:
        log(f"{v.label()}: {e}; loading it again")
    return once()


def _run(starters: dict[str, Starter], variants: list[Variant], settings: Settings, cert: CertPair,
         log: Callable[[str], None], networks: dict[str, Network]) -> list[Series]:
    # Cold rows first, then the returning visits, in variant order.
    series = {(v, visit): Series(v, visit, []) for visit in VISITS for v in variants
              if visit in visits_for(v, settings)}
    with ExitStack() as stack:
        # Servers and browsers start together; each server is then exposed through its network.
        places = sorted({(v.server, v.net) for v in variants})
        keys = {engine_key(v) for v in variants if v.browser}
        # Firefox's h3 rows name the servers' ports in its prefs: that one starts once they are up.
        engines = engine_managers(keys - {"firefox/h3"}, cert)
        started = enter_together(stack, [*(starters[key](networks[net].place) for key, net in places),
                                         *engines.values()])
        exposed = {(key, net): networks[net].expose(url)
                   for (key, net), url in zip(places, started[:len(places)], strict=True)}
        if "firefox/h3" in keys:
            h3_origins = tuple(sorted({urlsplit(exposed[(v.server, v.net)].url).netloc
                                       for v in variants if v.mode in H3_MODES}))
            for key, manager in engine_managers({"firefox/h3"}, cert, h3_origins).items():
                engines[key] = stack.enter_context(manager)

        def one_round(v: Variant, record: bool) -> None:
            served = exposed[(v.server, v.net)]
            url = served.url + settings.page
            if v.browser:
                loads = {"cold": _browser_load(engines[engine_key(v)], v, url, served, record, log)}
            else:
                cache = BrowserCache()
                connected_at = served.proxy.proxy.connected_at if served.proxy is not None else None
                loads = {"cold": _load(v.label(), v.mode, url, cache, connected_at=connected_at)}
                warm_url = served.url + (settings.warm_page or settings.page)
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

        for _ in range(settings.warmup):  # unmeasured rounds: server caches, imports, browsers warm up
            for v in variants:
                one_round(v, record=False)
        for i in range(settings.runs):
            for v in _rotated(variants, i):
                one_round(v, record=True)
                cold = series[(v, "cold")].loads[-1]
                paint = f"  LCP {cold.lcp * 1000:7.1f} ms" if cold.lcp is not None else ""
                log(f"run {i + 1}/{settings.runs} {v.label():<26} load {cold.page_load * 1000:7.1f} ms{paint}  "
                    f"{len(cold.entries)} resources")
    return list(series.values())


def _counted(lists: list[list[str] | None]) -> list[str]:
    """``path (k/n)`` for each path named in k of the n lists."""
    counts: dict[str, int] = {}
    for xs in lists:
        for x in set(xs or []):
            counts[x] = counts.get(x, 0) + 1
    return [f"{x} ({k}/{len(lists)})" for x, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def hint_fetch_delay(load: PageLoad) -> float | None:
    """Seconds from the 103's arrival to the first fetch the browser made on it."""
    starts = [e.requested for e in load.entries if e.early_hint and e.requested is not None]
    if load.first_interim is None or not starts:
        return None
    return min(starts) - load.first_interim


def summarise(all_series: list[Series], rtt: float) -> list[dict[str, Any]]:
    medians = {(s.variant.group, s.variant.mode, s.visit): statistics.median(r.page_load for r in s.loads)
               for s in all_series if s.loads}
    lcp_medians = {(s.variant.group, s.variant.mode, s.visit): median_ms([r.lcp for r in s.loads])
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
        base_h1 = medians.get((v.group, "h1", base_visit))
        off = "h3-off" if v.mode in H3_MODES else "h2-off"  # each protocol against its own baseline
        base_off = medians.get((v.group, off, base_visit))

        def med_int(attr: str, loads: list[PageLoad] = s.loads) -> int:
            return round(statistics.median(float(getattr(r, attr)) for r in loads))

        fcp, lcp = [r.fcp for r in s.loads], [r.lcp for r in s.loads]
        si = [r.speed_index / 1000 if r.speed_index is not None else None for r in s.loads]
        ttfb = [r.response_start for r in s.loads]
        load: list[float | None] = list(times)
        spread: dict[str, float] = {}  # p75/p90 per metric, when there are enough runs
        for key, xs in (("load", load), ("ttfb", ttfb), ("fcp", fcp), ("lcp", lcp), ("speed_index", si)):
            spread.update(percentiles_ms(xs, key))
        lcp_base = lcp_medians.get((v.group, off, base_visit))
        lcp_med = median_ms(lcp)
        # Wasted hints: what the browser said (None when it was not observed for every run).
        wasted_known = all(r.wasted is not None for r in s.loads) if v.browser else True
        browser_extra: dict[str, Any] = {}
        if v.browser:
            browser_extra = {
                "wasted_paths": _counted([r.wasted for r in s.loads]) if wasted_known else None,
                "said_unused_paths": _counted([r.said_unused for r in s.loads]),
                "hint_disagreements": _counted([hint_disagreements(r) for r in s.loads]),
                "early_fetched": round(statistics.median(len(r.early_fetched) for r in s.loads)),
                "hint_fetch_ms": median_ms([hint_fetch_delay(r) for r in s.loads]),
            }

        rows.append({
            "row": s.label, "target": v.target, "net": v.net, "mode": v.mode, "visit": s.visit,
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
            "hints_wasted": med_int("hints_wasted") if wasted_known else None,
            "gain_vs_h1_rtt": (base_h1 - med) / rtt if base_h1 is not None and rtt else None,
            "gain_vs_off_rtt": (base_off - med) / rtt if base_off is not None and rtt else None,
            "saved_vs_off_ms": (base_off - med) * 1000 if base_off is not None else None,
            "fcp_ms": median_ms(fcp), "lcp_ms": lcp_med, "speed_index_ms": median_ms(si),
            "lcp_saved_vs_off_ms": lcp_base - lcp_med if lcp_base is not None and lcp_med is not None else None,
            "runs": len(s.loads),
            **browser_extra,
            **spread,
        })
    return rows


def _paired_ms(a: list[PageLoad], b: list[PageLoad], attr: str) -> tuple[list[float], list[float]]:
    """The metric of the rounds where both rows have it, in ms, kept in round order (pairs)."""
    out_a, out_b = [], []
    for x, y in zip(a, b, strict=False):
        va, vb = getattr(x, attr), getattr(y, attr)
        if va is not None and vb is not None:
            out_a.append(va * 1000)
            out_b.append(vb * 1000)
    return out_a, out_b


def _verdict_dict(target: str, v: Any) -> dict[str, Any]:
    return {"target": target, "metric": v.metric, "a": v.a, "b": v.b, "kind": v.kind, "words": v.words,
            "runs": min(v.median.n_a, v.median.n_b), "paired": v.median.paired,
            "diff_ms": v.median.diff, "lo_ms": v.median.lo, "hi_ms": v.median.hi,
            "p75_diff_ms": v.p75.diff, "p75_lo_ms": v.p75.lo, "p75_hi_ms": v.p75.hi}


def _metrics(target: str) -> tuple[tuple[str, str], ...]:
    return BROWSER_METRICS if target in BROWSERS else LOADER_METRICS


def verdicts(all_series: list[Series], rtt: float) -> list[dict[str, Any]]:
    """For each engine (and server) through each network, and each pair of its modes (cold
    loads): the difference of medians and of p75 per metric with bootstrap 95% intervals, and
    the words for it."""
    cold: dict[tuple[str, str], dict[str, list[PageLoad]]] = {}
    for s in all_series:
        if s.visit == "cold" and s.loads:
            cold.setdefault(s.variant.group, {})[s.variant.mode] = s.loads
    out = []
    for (target, net), by_mode in cold.items():
        modes = [m for m in MODES if m in by_mode]
        for a, b in itertools.combinations(modes, 2):
            for attr, name in _metrics(target):
                xs, ys = _paired_ms(by_mode[a], by_mode[b], attr)
                if not xs:
                    continue
                row_a, row_b = Variant(target, a, "", net).label(), Variant(target, b, "", net).label()
                out.append({**_verdict_dict(target, compare(name, row_a, xs, row_b, ys, rtt * 1000)),
                            "modes": [a, b], "net": net})
    return out


def network_checks(all_series: list[Series], rtt: float) -> list[dict[str, Any]]:
    """When one run loaded the same rows through two networks: per engine, mode and metric, the
    second network against the first (rounds paired, so machine drift cancels)."""
    by: dict[tuple[str, str], dict[str, list[PageLoad]]] = {}
    for s in all_series:
        if s.visit == "cold" and s.loads and s.variant.net:
            by.setdefault((s.variant.target, s.variant.mode), {})[s.variant.net] = s.loads
    out = []
    for (target, mode), by_net in by.items():
        for a, b in itertools.combinations(list(by_net), 2):
            for attr, name in _metrics(target):
                xs, ys = _paired_ms(by_net[a], by_net[b], attr)
                if not xs:
                    continue
                row_a, row_b = Variant(target, mode, "", a).label(), Variant(target, mode, "", b).label()
                found = compare(name, row_a, xs, row_b, ys, rtt * 1000)
                out.append({**_verdict_dict(target, found), "mode": mode, "nets": [a, b],
                            "a_ms": statistics.median(xs), "b_ms": statistics.median(ys)})
    return out


def instrument_checks(all_series: list[Series], rtt: float) -> list[dict[str, Any]]:
    """Chromium instrumented (DevTools Network events, screencast) against its control run
    (neither), per network, mode and metric: the difference and whether its interval holds
    zero — and when Chromium started fetching on the 103, with and without the Network domain."""
    by = {(s.variant.target, s.variant.net, s.variant.mode): s.loads
          for s in all_series if s.visit == "cold" and s.loads}
    out = []
    for (target, net, mode), ctl in by.items():
        inst = by.get(("chromium", net, mode))
        if target != "chromium-control" or not inst:
            continue
        for attr, name in (*BROWSER_METRICS, ("hint_fetch", "first fetch on the 103")):
            if attr == "hint_fetch":
                pairs = [(hint_fetch_delay(x), hint_fetch_delay(y)) for x, y in zip(ctl, inst, strict=False)]
                xs = [x * 1000 for x, y in pairs if x is not None and y is not None]
                ys = [y * 1000 for x, y in pairs if x is not None and y is not None]
            else:
                xs, ys = _paired_ms(ctl, inst, attr)
            if not xs:
                continue
            v = compare(name, Variant("chromium-control", mode, "", net).label(), xs,
                        Variant("chromium", mode, "", net).label(), ys, rtt * 1000)
            out.append({**_verdict_dict("chromium", v), "mode": mode + (f" @{net}" if net else ""),
                        # None: too few runs to tell (a degenerate interval excludes zero too).
                        "agrees": None if v.kind == "too few runs" else not v.median.excludes_zero,
                        "control_ms": statistics.median(xs), "instrumented_ms": statistics.median(ys)})
    return out


def format_table(rows: list[dict[str, Any]], settings: Settings, found: list[dict[str, Any]] | None = None,
                 network: str = "") -> str:
    lines = [settings.describe()] + ([network] if network else []) + [
        f"{'row':<30} {'load ms':>8} {'spread':>7} {'crit ms':>8} {'103 ms':>7} {'TTFB':>7} {'LCP ms':>7} "
        f"{'bytes':>7} {'reqs':>4} {'cache/304':>9} {'push u/w':>8} {'hint u/w':>8} {'vs h1':>6} {'vs off':>6}"]

    def num(x: float | None, fmt: str) -> str:
        return format(x, fmt) if x is not None else "-"

    for r in rows:
        lines.append(
            f"{r['row']:<30} {r['page_load_ms']:>8.1f} {r['spread_ms']:>7.1f} {r['critical_ms']:>8.1f} "
            f"{num(r['interim_ms'], '.1f'):>7} {num(r['response_start_ms'], '.1f'):>7} {num(r['lcp_ms'], '.1f'):>7} "
            f"{r['bytes']:>7.0f} {r['requests']:>4} {r['from_cache']:>4}/{r['not_modified']:<4} "
            f"{r['pushes_used']:>4}/{r['pushes_wasted']:<3} {r['hints_used']:>4}/{num(r['hints_wasted'], 'd'):<3} "
            f"{num(r['gain_vs_h1_rtt'], '+.1f'):>6} {num(r['gain_vs_off_rtt'], '+.1f'):>6}")
    if found:
        lines.append("verdicts (difference of medians [95% interval]):")
        lines += [f"  {v['words']}" for v in found if v["metric"] in ("load", "LCP")]
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
                       "loss": settings.loss, "jitter_s": settings.jitter,
                       "runs": settings.runs, "warm_page": settings.warm_page, "summary": rows,
                       "loads": loads, **(extra or {})}, indent=2)


def check_outputs(html: Path | None, har: Path | None) -> None:
    """Refuse, before the first load, output paths that could not be written at the end."""
    if html is not None:
        folder = html.parent if str(html.parent) else Path(".")
        if html.is_dir():
            raise BenchError(f"--html {html}: is a folder")
        if not folder.is_dir():
            raise BenchError(f"--html {html}: no folder {folder}")
        if not os.access(folder, os.W_OK):
            raise BenchError(f"--html {html}: {folder} is not writable")
    if har is not None:
        if har.exists() and not har.is_dir():
            raise BenchError(f"--har {har}: not a folder")
        existing = next((p for p in [har, *har.parents] if p.exists()), Path("."))
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise BenchError(f"--har {har}: {existing} is not a writable folder")


def check_engines(engines: tuple[str, ...]) -> None:
    """A browser that is not installed is said before anything starts."""
    if "chromium" in engines:
        from pushserve.bench.browser import find_binaries

        find_binaries()
    if "firefox" in engines:
        from pushserve.bench.firefox import find_binary

        find_binary()


def main(site: Path, settings: Settings, modes: list[str], *, engines: tuple[str, ...] = ("loader",),
         control: bool = True, as_json: bool = False, html: Path | None = None, har: Path | None = None,
         extra: Callable[[Path, CertPair], tuple[dict[str, Starter], list[Variant]]] | None = None,
         sections: Callable[[], list[tuple[str, str]]] | None = None) -> int:
    """Run, then print the table (or JSON) and write the HTML report.  ``extra`` adds servers and
    variants (the repo harness's peers); ``sections`` adds HTML sections to the report."""
    if not site.is_dir():
        raise BenchError(f"{site} is not a folder")
    if not settings.page.startswith("/") or (settings.warm_page is not None and not settings.warm_page.startswith("/")):
        raise BenchError("--page and --warm-page are paths starting with /")
    check_outputs(html, har)
    check_engines(engines)

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    shapers = settings.shaper.split(",")
    with tempfile.TemporaryDirectory(prefix="pushserve-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        # One network, or several compared in one run (rows named "@packet", "@proxy").
        networks = {("" if len(shapers) == 1 else name): stack.enter_context(open_network(name, settings, log))
                    for name in shapers}
        cert = make_cert(work, tuple(n.place.host for n in networks.values() if n.place != LOOPBACK))
        starters = pushserve_starters(site.resolve(), cert, work, tuple(server_args(settings)))
        variants = pushserve_variants(modes, list(engines), control)
        skipped = [m for m in modes if m not in BROWSER_MODES]
        if skipped and any(e != "loader" for e in engines):
            log(f"note: {', '.join(skipped)}: loader only (browsers negotiate HTTP/2 and refuse push)")
        h3_only = [m for m in modes if m not in LOADER_MODES]
        if h3_only and "loader" in engines:
            log(f"note: {', '.join(h3_only)}: browsers only (the loader speaks HTTP/1.1 and HTTP/2)")
        if extra is not None:
            more_starters, more_variants = extra(work, cert)
            starters.update(more_starters)
            variants += more_variants
        if not variants:
            raise BenchError("nothing to load: no engine can load the modes asked for")
        variants = [dataclasses.replace(v, net=name) for name in networks for v in variants]
        if any(v.mode in H3_MODES for v in variants):
            for network in networks.values():
                if network.kind == "proxy":
                    raise BenchError(f"{', '.join(m for m in modes if m in H3_MODES)}: HTTP/3 runs over UDP, which "
                                     f"the latency proxy cannot carry, and the packet shaper is not available here")
        for name, network in networks.items():
            log(f"network{f' @{name}' if name else ''}: {network.describe()}")
        all_series = run(starters, variants, settings, cert, log, networks)
    # After the networks are down: the relay's counters are in (what it carried and dropped).
    described = {name: network.describe() for name, network in networks.items()}
    rows = summarise(all_series, settings.rtt)
    found = verdicts(all_series, settings.rtt)
    checks = instrument_checks(all_series, settings.rtt)
    between = network_checks(all_series, settings.rtt)
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

        try:
            write_report(html, all_series, rows, settings=settings, sections=extra_html, verdicts=found,
                         checks=checks, networks=described, between=between)
        except OSError as e:
            raise BenchError(f"--html {html}: {e.strerror or e}") from e
        log(f"report: {html}")
    network_line = "; ".join(f"@{k}: {v}" if k else v for k, v in described.items())
    extra_json = {"network": network_line, "networks": described, "verdicts": found, "instrument_checks": checks,
                  "network_checks": between}
    print(to_json(all_series, rows, settings, extra_json) if as_json else
          format_table(rows, settings, found + between, network_line))
    return 0


@contextmanager
def open_network(shaper: str, settings: Settings, log: Callable[[str], None]) -> Iterator[Network]:
    """The network ``shaper`` names; ``auto`` falls back to the proxy (saying why) when the
    packet shaper cannot start here."""
    chosen = choose(shaper, settings.shape)
    try:
        entered = chosen.__enter__()
    except BenchError as e:
        if shaper != "auto":
            raise
        log(f"note: packet shaper unavailable ({e}); using the latency proxy")
        chosen = ProxyNetwork(settings.shape)
        entered = chosen.__enter__()
    try:
        yield entered
    finally:
        chosen.__exit__(None, None, None)
