"""``pushserve bench SITE --journey /,/features/``: a visit of several pages, as a person makes it,
with pushserve's Speculation Rules off, prefetching and prerendering (103 Early Hints on in every
mode), in headless Chromium and Firefox.

A journey loads the first page in a fresh browser (new profile or user context) and, for each next
page: waits like a reader (``--dwell``, from the page's load event), moves the pointer to the first
visible link to the next page, rests on it (``--hover``: Chromium's ``moderate`` eagerness acts
after about 200 ms of it), presses and lets go (Chromium: DevTools input events; Firefox: BiDi
``input.performActions``).  After each step's dwell it reads the page's own timings:

- TTFB, FCP, LCP and the load event, from the step's start: the click (Navigation Timing's start of
  the new page) — or, for a page activated from a prerender, its ``activationStart`` (the times of
  a prerendered page count from when it began in the background; from the user's view a step
  starts at the click, as web-vitals counts them, and nothing is below 0);
- how it came: ``prerender`` (``activationStart`` > 0), ``prefetch`` (``deliveryType``
  ``navigational-prefetch``), ``cache``, or ``network``.

Rows are ``ENGINE MODE`` (``chromium prefetch``); rounds interleave every row as the page-load
bench does, so round i of two rows is a pair for the 95% intervals (``stats.py``).  Each journey
writes a HAR (``--har``): one page per step, every request the browser made to the site (Chromium:
its NetLog, prefetches and prerenders included, with their ``Sec-Purpose``; Firefox: BiDi events)."""

from __future__ import annotations

import itertools
import json
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pushserve
from pushserve.bench import netlog
from pushserve.bench.engine import Fetch, Tab
from pushserve.bench.har import bidi_entries, iso
from pushserve.bench.procs import BenchError
from pushserve.bench.series import Settings
from pushserve.bench.stats import compare

MODES = ("off", "prefetch", "prerender")  # pushserve's --speculation, with --push hints
ENGINES = ("chromium", "firefox")
ARRIVAL_TIMEOUT_S = 30.0
POLL_S = 0.02  # how often the tab is asked whether the next page has arrived
# Each step is judged on these (Step attribute, words).
METRICS = (("lcp", "LCP"), ("fcp", "FCP"), ("ttfb", "TTFB"))

# The page has arrived and loaded: its URL is the step's, and its load event has ended.
_ARRIVED = ("(() => { const n = performance.getEntriesByType('navigation')[0];"
            " return location.pathname + location.search === WANT && document.readyState === 'complete'"
            " && !!n && n.loadEventEnd > 0; })()")
# The step's timings, read after the dwell (LCP has long been final: nothing was touched yet).
_TIMINGS = """(() => {
  const n = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  let lcp = 0;
  try {
    const o = new PerformanceObserver(() => {});
    o.observe({type: 'largest-contentful-paint', buffered: true});
    for (const e of o.takeRecords()) lcp = e.startTime;
    o.disconnect();
  } catch (e) { lcp = 0; }
  return {timeOrigin: performance.timeOrigin, deliveryType: n.deliveryType || '',
          activationStart: n.activationStart || 0, ttfb: n.finalResponseHeadersStart || n.responseStart,
          fcp: fcp ? fcp.startTime : 0, lcp: lcp, load: n.loadEventEnd, protocol: n.nextHopProtocol};
})()"""
# Marks the first visible link to WANT (resolved as the browser resolves it, fragment aside).
_MARK_LINK = """(() => {
  const want = new URL(WANT, location.href).href;
  const link = [...document.querySelectorAll('a[href], area[href]')].find((a) => {
    const r = a.getBoundingClientRect();
    return a.href.split('#')[0] === want && r.width > 0 && r.height > 0 && getComputedStyle(a).visibility !== 'hidden';
  });
  if (link) link.setAttribute('data-pushserve-next', '');
  return !!link;
})()"""
NEXT_LINK = "[data-pushserve-next]"


def parse_paths(text: str) -> list[str]:
    """``/,/features/`` → the pages, in order: at least two, each a path from the root."""
    paths = [p.strip() for p in text.split(",") if p.strip()]
    if len(paths) < 2 or not all(p.startswith("/") for p in paths):
        raise ValueError(f"--journey {text!r}: two or more paths from the root, comma-separated: /,/features/")
    return paths


@dataclass
class Step:
    """One page of a journey, timed from the step's start (see the module's docstring), in seconds."""

    path: str
    delivery: str  # "network", "prefetch", "prerender" or "cache"
    ttfb: float | None
    fcp: float | None
    lcp: float | None
    load: float | None
    activation: float | None = None  # prerendered: activationStart, seconds after it began in the background
    started: float = 0.0  # epoch seconds: the step's start
    protocol: str = ""


@dataclass
class Journey:
    """One journey of one row: its steps, and the HAR of everything it fetched."""

    steps: list[Step]
    _har: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Row:
    engine: str
    mode: str

    @property
    def label(self) -> str:
        return f"{self.engine} {self.mode}"

    @property
    def server(self) -> str:
        return f"pushserve:speculation-{self.mode}"


def step_from(timings: dict[str, Any], path: str) -> Step:
    """The page's timings (ms after its time origin) as a Step, from the step's start."""
    activation = float(timings.get("activationStart") or 0) / 1000
    kind = str(timings.get("deliveryType") or "")
    delivery = ("prerender" if activation > 0 else "prefetch" if kind == "navigational-prefetch"
                else "cache" if kind == "cache" else "network")

    def since_start(key: str) -> float | None:
        value = float(timings.get(key) or 0) / 1000
        return max(value - activation, 0.0) if value > 0 else None

    started = (float(timings["timeOrigin"]) / 1000) + activation
    return Step(path, delivery, since_start("ttfb"), since_start("fcp"), since_start("lcp"), since_start("load"),
                activation or None, started, str(timings.get("protocol") or ""))


def _arrive(tab: Tab, path: str) -> None:
    """Wait until the tab shows ``path``, loaded (errors while it navigates are asked again)."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    check, pause = _ARRIVED.replace("WANT", json.dumps(path)), threading.Event()
    while True:
        try:
            if tab.evaluate(check):
                return
        except BenchError:
            pass  # the old page is going: its scripts cannot answer
        if time.monotonic() > deadline:
            raise BenchError(f"journey: {path} did not load within {ARRIVAL_TIMEOUT_S:g} s of the click")
        pause.wait(POLL_S)


def walk(tab: Tab, base: str, paths: list[str], dwell: float, hover: float) -> list[Step]:
    """One journey in ``tab``: the first page, then a click on a link to each next one."""
    steps: list[Step] = []
    pause = threading.Event()
    for i, path in enumerate(paths):
        if i == 0:
            tab.navigate(base + path)
        else:
            if not tab.evaluate(_MARK_LINK.replace("WANT", json.dumps(path))):
                raise BenchError(f"journey: {paths[i - 1]} has no visible link to {path}")
            tab.follow(NEXT_LINK, hover)
        _arrive(tab, path)
        pause.wait(dwell)  # a reader on the page; its timings are final by then
        steps.append(step_from(tab.evaluate(_TIMINGS), path))
    return steps


# -- HAR ------------------------------------------------------------------------------------------

def _page_of(steps: list[Step], t: float) -> str:
    """The HAR page (step) a request that started at epoch ``t`` belongs to: the last one begun."""
    index = max((i for i, s in enumerate(steps) if s.started <= t + 1e-3), default=0)
    return f"step_{index + 1}"


def fetch_entry(f: Fetch, origin: str, time_origin: float) -> dict[str, Any]:
    """A HAR entry from a NetLog fetch (seconds after ``time_origin``, epoch seconds)."""
    start = time_origin + f.start
    wait = max((f.headers or f.start) - f.start, 0.0) * 1000
    receive = max((f.end or f.headers or f.start) - (f.headers or f.start), 0.0) * 1000
    url = origin + f.path
    headers = [{"name": "sec-purpose", "value": f.purpose}] if f.purpose else []
    return {
        "startedDateTime": iso(start), "time": round(wait + receive, 3),
        "request": {"method": "GET", "url": url, "httpVersion": "unknown", "cookies": [], "headers": headers,
                    "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": f.status, "statusText": "", "httpVersion": "unknown", "cookies": [], "headers": [],
                     "content": {"size": 0, "mimeType": "x-unknown"}, "redirectURL": "", "headersSize": -1,
                     "bodySize": -1, "_transferSize": f.nbytes},
        "cache": {}, "timings": {"blocked": 0, "dns": -1, "connect": -1, "ssl": -1, "send": 0,
                                 "wait": round(wait, 3), "receive": round(receive, 3)},
        "_purpose": f.purpose, "_fromCache": f.from_cache,
    }


def journey_har(steps: list[Step], entries: list[dict[str, Any]], title: str) -> dict[str, Any]:
    """A HAR document of a journey: a page per step (its timings from the step's start), every
    entry in the step during which it started."""
    pages = []
    for i, s in enumerate(steps):
        timings: dict[str, Any] = {"onContentLoad": -1, "onLoad": round((s.load or 0) * 1000, 3) if s.load else -1}
        for key, value in (("_ttfb", s.ttfb), ("_firstContentfulPaint", s.fcp), ("_largestContentfulPaint", s.lcp)):
            if value is not None:
                timings[key] = round(value * 1000, 3)
        pages.append({"startedDateTime": iso(s.started), "id": f"step_{i + 1}",
                      "title": f"{title}: step {i + 1}, {s.path} ({s.delivery})", "pageTimings": timings,
                      "_delivery": s.delivery})
    for e in entries:
        started = datetime.fromisoformat(e["startedDateTime"].replace("Z", "+00:00")).timestamp()
        e["pageref"] = _page_of(steps, started)
    entries.sort(key=lambda e: e["startedDateTime"])
    return {"log": {"version": "1.2", "creator": {"name": "pushserve bench", "version": pushserve.__version__},
                    "pages": pages, "entries": entries}}


def tab_har(engine: str, tab: Tab, steps: list[Step], base: str, title: str) -> dict[str, Any] | None:
    first = steps[0]
    time_origin = first.started  # step 1 is not a prerender: its start is its time origin
    doc = getattr(tab, "netlog", None)  # Chromium's, once its session is over
    if engine == "chromium" and doc is not None:
        fetched = netlog.fetches(doc, base, time_origin * 1000)
        return journey_har(steps, [fetch_entry(f, base, time_origin) for f in fetched if f.network], title)
    requests_of = getattr(tab, "requests", None)  # Firefox's BiDi network events
    if engine == "firefox" and requests_of is not None:
        requests = [r for r in requests_of() if str(r["sent"]["request"]["url"]).startswith(base + "/")]
        return journey_har(steps, bidi_entries(requests, time_origin * 1000, first.ttfb), title)
    return None


# -- running --------------------------------------------------------------------------------------

@dataclass
class JourneySettings:
    paths: list[str]
    dwell: float
    hover: float
    network: Settings  # RTT, bandwidth, runs, warm-up, shaper

    def describe(self) -> str:
        n = self.network
        bw = f"{n.bits_per_s / 1e6:g} Mbit/s" if n.bits_per_s else "unlimited bandwidth"
        return (f"journey {' → '.join(self.paths)}: {self.dwell * 1000:g} ms on each page, the pointer "
                f"{self.hover * 1000:g} ms on the link before the click; RTT {n.rtt * 1000:g} ms, {bw}, {n.runs} runs; "
                "103 Early Hints on in every row; medians, from each step's start (the click; a prerendered "
                "page's activation)")


def _median_ms(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) * 1000 if vals else None


def summarise(done: dict[Row, list[Journey]]) -> list[dict[str, Any]]:
    """A row per (row, step): medians, and how the page came in how many runs."""
    out = []
    for row, journeys in done.items():
        if not journeys:
            continue
        for i in range(len(journeys[0].steps)):
            steps = [j.steps[i] for j in journeys]
            came: dict[str, int] = {}
            for s in steps:
                came[s.delivery] = came.get(s.delivery, 0) + 1
            activation = [s for s in steps if s.activation is not None]
            out.append({
                "row": row.label, "engine": row.engine, "mode": row.mode, "step": i + 1, "path": steps[0].path,
                "ttfb_ms": _median_ms([s.ttfb for s in steps]), "fcp_ms": _median_ms([s.fcp for s in steps]),
                "lcp_ms": _median_ms([s.lcp for s in steps]), "load_ms": _median_ms([s.load for s in steps]),
                "delivered": ", ".join(f"{k} {n}/{len(steps)}" for k, n in sorted(came.items(), key=lambda kv: -kv[1])),
                "prerendered": len(activation), "runs": len(steps),
            })
    return out


def verdicts(done: dict[Row, list[Journey]], rtt: float) -> list[dict[str, Any]]:
    """Per engine and step after the first: each pair of modes on LCP, FCP and TTFB, runs paired
    by round, with 95% bootstrap intervals."""
    out = []
    by_engine: dict[str, dict[str, list[Journey]]] = {}
    for row, journeys in done.items():
        if journeys:
            by_engine.setdefault(row.engine, {})[row.mode] = journeys
    for engine, by_mode in by_engine.items():
        modes = [m for m in MODES if m in by_mode]
        steps = len(next(iter(by_mode.values()))[0].steps)
        for step in range(1, steps):
            for a, b in itertools.combinations(modes, 2):
                for attr, name in METRICS:
                    xs, ys = [], []
                    for ja, jb in zip(by_mode[a], by_mode[b], strict=False):
                        va, vb = getattr(ja.steps[step], attr), getattr(jb.steps[step], attr)
                        if va is not None and vb is not None:
                            xs.append(va * 1000)
                            ys.append(vb * 1000)
                    if not xs:
                        continue
                    v = compare(f"step {step + 1} {name}", f"{engine} {a}", xs, f"{engine} {b}", ys, rtt * 1000)
                    out.append({"target": engine, "step": step + 1, "metric": v.metric, "a": v.a, "b": v.b,
                                "kind": v.kind, "words": v.words, "runs": min(v.median.n_a, v.median.n_b),
                                "diff_ms": v.median.diff, "lo_ms": v.median.lo, "hi_ms": v.median.hi,
                                "p75_diff_ms": v.p75.diff, "p75_lo_ms": v.p75.lo, "p75_hi_ms": v.p75.hi})
    return out


def format_table(rows: list[dict[str, Any]], settings: JourneySettings, found: list[dict[str, Any]],
                 network: str = "") -> str:
    def num(x: float | None) -> str:
        return f"{x:.1f}" if x is not None else "-"

    lines = [settings.describe()] + ([network] if network else []) + [
        f"{'row':<22} {'step':>4} {'path':<16} {'TTFB ms':>8} {'FCP ms':>8} {'LCP ms':>8} {'load ms':>8}  how it came"]
    for r in rows:
        lines.append(f"{r['row']:<22} {r['step']:>4} {r['path']:<16} {num(r['ttfb_ms']):>8} {num(r['fcp_ms']):>8} "
                     f"{num(r['lcp_ms']):>8} {num(r['load_ms']):>8}  {r['delivered']}")
    chosen = [v for v in found if v["metric"].endswith(" LCP")]
    if chosen:
        lines.append("verdicts (difference of medians [95% interval]):")
        lines += [f"  {v['words']}" for v in chosen]
    return "\n".join(lines)


def to_json(done: dict[Row, list[Journey]], rows: list[dict[str, Any]], settings: JourneySettings,
            extra: dict[str, Any]) -> str:
    journeys = {row.label: [[asdict(s) for s in j.steps] for j in js] for row, js in done.items()}
    return json.dumps({"journey": settings.paths, "dwell_s": settings.dwell, "hover_s": settings.hover,
                       "rtt_s": settings.network.rtt, "bits_per_s": settings.network.bits_per_s,
                       "runs": settings.network.runs, "summary": rows, "journeys": journeys, **extra}, indent=2)


def median_journey(journeys: list[Journey]) -> Journey | None:
    """The journey whose last step's LCP is the median (the lower middle one of an even count)."""
    timed = sorted((j for j in journeys if j.steps and j.steps[-1].lcp is not None),
                   key=lambda j: j.steps[-1].lcp or 0.0)
    return timed[(len(timed) - 1) // 2] if timed else None


def write_hars(folder: Path, done: dict[Row, list[Journey]]) -> list[Path]:
    """``ROW-runN.har`` for every journey (``chromium-prefetch-run3.har``) and ``ROW-median.har``
    for the journey of each row whose last step's LCP is the median."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for row, journeys in done.items():
        named = [(f"run{n}", j) for n, j in enumerate(journeys, 1)]
        median = median_journey(journeys)
        if median is not None:
            named.append(("median", median))
        for name, j in named:
            if j._har is None:
                continue
            path = folder / f"{row.engine}-{row.mode}-{name}.har"
            path.write_text(json.dumps(j._har, indent=1), encoding="utf-8")
            written.append(path)
    return written
