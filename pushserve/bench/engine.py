"""What the browser engines (``browser.py``: Chromium, ``firefox.py``: Firefox) share: the script
that reads a page's timings, the network fetches each engine reports in its own way, and the
``PageLoad`` built from both.

Timings come from the page (Navigation and Resource Timing, paint entries, LCP through a
``PerformanceObserver``); *when the bytes moved* comes from the engine's network events — for a
resource preloaded by 103 Early Hints the two differ: Resource Timing places it when the page took
it from the preload cache (Chromium: after the page arrived, with a few ms of "wait"), the network
saw it fetched on the 103.  So each entry's times and bytes are the network's where the engine
reported the fetch; a fetch is *early* when it started before the page's final response headers
(nothing but a 103 can make a browser fetch a subresource before the HTML arrives).

TTFB is ``finalResponseHeadersStart`` (the 200's headers): ``responseStart`` is the 103's when
there was one, which would credit hints with the think time they never saved."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from pushserve.bench.discovery import is_critical, kind_of
from pushserve.bench.loader import Entry, PageLoad
from pushserve.bench.procs import BenchError

# A function (no arguments) returning a promise of the timings, once the load event has ended.
# LCP entries are only handed to an observer; buffered ones are in its records at once.
COLLECT_FN = """
() => new Promise(resolve => {
  const collect = () => {
    // A busy browser records the load event before it fills in the protocol: wait for both.
    const n = performance.getEntriesByType('navigation')[0];
    if (!n || n.loadEventEnd === 0 || !n.nextHopProtocol) { setTimeout(collect, 5); return; }
    const path = u => { const x = new URL(u); return x.pathname + x.search; };
    let lcp = 0;
    const seen = list => { for (const e of list) lcp = e.startTime; };
    try {
      const obs = new PerformanceObserver(l => seen(l.getEntries()));
      obs.observe({type: 'largest-contentful-paint', buffered: true});
      seen(obs.takeRecords());
      obs.disconnect();
    } catch (e) { lcp = 0; }
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    // A busy browser may paint after the load event: wait for the paints too, up to 5 s past it
    // (a page that never paints content is reported without them).
    if ((!fcp || !lcp) && performance.now() < n.loadEventEnd + 5000) { setTimeout(collect, 20); return; }
    resolve({
      timeOrigin: performance.timeOrigin,
      paint: {fcp: fcp ? fcp.startTime : 0, lcp: lcp},
      nav: {name: path(n.name), requestStart: n.requestStart, responseStart: n.responseStart,
            finalResponseHeadersStart: n.finalResponseHeadersStart || 0,
            responseEnd: n.responseEnd, firstInterimResponseStart: n.firstInterimResponseStart || 0,
            loadEventEnd: n.loadEventEnd, nextHopProtocol: n.nextHopProtocol, transferSize: n.transferSize,
            connectStart: n.connectStart, secureConnectionStart: n.secureConnectionStart,
            connectEnd: n.connectEnd, domContentLoadedEventEnd: n.domContentLoadedEventEnd},
      resources: performance.getEntriesByType('resource').map(e => ({
        name: path(e.name), initiatorType: e.initiatorType, startTime: e.startTime,
        requestStart: e.requestStart, responseStart: e.responseStart, responseEnd: e.responseEnd,
        transferSize: e.transferSize, nextHopProtocol: e.nextHopProtocol})),
    });
  };
  collect();
})
"""

# Runs in the page after the browser's unused-preload window: the URLs the page itself uses —
# stylesheets (and what they @import), scripts, images, the fonts of loaded faces, and whatever
# Resource Timing says a stylesheet, script or element fetched.  A preload the browser calls
# unused but that is among these was used (Firefox 153 says so of a hinted stylesheet that
# @imports another, though it fetched it once and applied it).
IN_USE_FN = """
() => {
  const urls = new Set();
  const add = (u, base) => { try { urls.add(new URL(u, base || location.href).href); } catch (e) {} };
  const unquote = x => x.replace(/["']/g, '').trim();
  const loaded = new Set([...document.fonts].filter(f => f.status === 'loaded').map(f => unquote(f.family)));
  const sheets = list => {
    for (const s of list) {
      if (s.href) add(s.href);
      let rules = [];
      try { rules = s.cssRules; } catch (e) { continue; }
      for (const r of rules) {
        if (r.styleSheet) sheets([r.styleSheet]);
        if (r.constructor.name === 'CSSFontFaceRule' &&
            loaded.has(unquote(r.style.getPropertyValue('font-family')))) {
          for (const m of r.style.getPropertyValue('src').matchAll(/url\\(["']?([^"')]+)["']?\\)/g)) add(m[1], s.href);
        }
      }
    }
  };
  sheets(document.styleSheets);
  for (const s of document.scripts) if (s.src) add(s.src);
  for (const i of document.images) if (i.currentSrc) add(i.currentSrc);
  for (const e of performance.getEntriesByType('resource'))
    if (['css', 'script', 'img', 'image', 'xmlhttprequest', 'fetch'].includes(e.initiatorType)) add(e.name);
  return JSON.stringify([...urls]);
}
"""

PROTOCOLS = ("h2", "http/1.1", "h3")


class WrongProtocol(BenchError):
    """A browser load that did not come over its mode's protocol (Chromium or Firefox fell back
    from HTTP/3 to HTTP/2, or went the other way): the row would measure something else."""


def protocol_of(mode: str) -> str:
    """The ``nextHopProtocol`` every entry of a load in ``mode`` must have."""
    return "h3" if mode.startswith("h3") else "h2" if mode.startswith("h2") else "http/1.1"


def check_protocol(timings: dict[str, Any], mode: str, engine: str) -> None:
    """Every entry the page's timings name a protocol for (the page and each resource; an
    entry from the memory cache names none) came over ``mode``'s: WrongProtocol otherwise."""
    want = protocol_of(mode)
    nav = timings["nav"]
    got = [(str(nav.get("name") or "/"), str(nav.get("nextHopProtocol") or ""))]
    got += [(str(r["name"]), str(r.get("nextHopProtocol") or "")) for r in timings["resources"]]
    wrong = [f"{path} over {proto}" for path, proto in got if proto and proto != want]
    if wrong:
        shown = ", ".join(wrong[:4]) + (f" and {len(wrong) - 4} more" if len(wrong) > 4 else "")
        raise WrongProtocol(f"{engine} {mode}: {shown}, not {want}: the browser fell back, so this run stops "
                            "rather than count the load under the wrong protocol")


@dataclass
class Fetch:
    """One request as the engine's network layer saw it (seconds after navigation start)."""

    path: str
    start: float
    headers: float | None  # final response headers arrived
    end: float | None
    nbytes: int  # transferred: response headers and encoded body
    status: int = 0
    from_cache: bool = False  # served without the network (preload cache, HTTP cache)

    @property
    def network(self) -> bool:
        return not self.from_cache


class Tab(Protocol):
    """One page of an engine, for a journey: go somewhere, act on an element, read timings."""

    def navigate(self, url: str) -> None: ...

    def click(self, selector: str) -> None: ...

    def hover(self, selector: str) -> None: ...

    def evaluate(self, expression: str) -> Any: ...

    def timings(self) -> dict[str, Any]: ...


class Engine(Protocol):
    """A browser the bench drives: ``load`` measures one cold load; ``tab`` opens a page (a fresh
    profile or user context) for journeys."""

    name: str

    def load(self, url: str, mode: str) -> PageLoad: ...

    def tab(self) -> AbstractContextManager[Tab]: ...


def early_fetches(fetches: list[Fetch], final_headers: float | None) -> set[str]:
    """Paths fetched over the network before the page's final response headers (the page's own
    request, the first fetch, aside): on the 103."""
    network = sorted((f for f in fetches if f.network), key=lambda f: f.start)
    if final_headers is None or not network:
        return set()
    return {f.path for f in network[1:] if f.start < final_headers}


def _ms(x: Any) -> float:
    return float(x or 0) / 1000


def page_load_from_timings(timings: dict[str, Any], mode: str, page_path: str, engine: str,
                           fetches: list[Fetch] | None = None) -> PageLoad:
    """The page's timings (ms → s after navigation start) as a PageLoad, with each entry's times
    and bytes taken from the engine's network fetches where it reported them."""
    nav = timings["nav"]
    if nav.get("nextHopProtocol") not in PROTOCOLS:
        raise BenchError(f"{engine}: unexpected protocol {nav.get('nextHopProtocol')!r} for {page_path}")
    check_protocol(timings, mode, engine)
    interim = _ms(nav.get("firstInterimResponseStart")) or None
    final = _ms(nav.get("finalResponseHeadersStart")) or _ms(nav.get("responseStart"))
    page = Entry(page_path, "html", True, needed=True, requested=_ms(nav["requestStart"]), first_byte=final,
                 done=_ms(nav["responseEnd"]), nbytes=int(nav.get("transferSize") or 0), status=200)
    if nav.get("connectEnd", 0) > 0:  # a new connection (not reused)
        secure = nav.get("secureConnectionStart") or nav["connectEnd"]
        page.connect_start, page.tls_start = _ms(nav["connectStart"]), _ms(secure)
        page.tls_done = _ms(nav["connectEnd"])
    entries = [page]
    for r in timings["resources"]:
        kind = kind_of(r["name"])
        via = "hint" if r["initiatorType"] == "early-hints" else "request"
        entries.append(Entry(r["name"], kind, is_critical(kind), via=via, needed=True,
                             requested=_ms(r["startTime"]), first_byte=_ms(r["responseStart"]),
                             done=_ms(r["responseEnd"]), nbytes=int(r.get("transferSize") or 0), status=200))
    fetched = fetches or []
    early = early_fetches(fetched, final)
    _apply_network(entries, fetched, early)
    entries.sort(key=lambda e: (e.requested or 0.0, e.path))
    return PageLoad(
        mode=mode, entries=entries, protocol=str(nav["nextHopProtocol"]),
        page_load=_ms(nav["loadEventEnd"]),
        critical_done=max((e.done or 0.0 for e in entries if e.critical), default=0.0),
        bytes=sum(f.nbytes for f in fetched if f.network) if fetched else sum(e.nbytes for e in entries),
        requests=len(entries),
        pushes_used=0, pushes_wasted=0, hints_used=sum(1 for e in entries if e.via == "hint"), hints_wasted=0,
        first_interim=interim, response_start=final,
        fcp=_ms(timings.get("paint", {}).get("fcp")) or None,
        lcp=_ms(timings.get("paint", {}).get("lcp")) or None,
        dom_content_loaded=_ms(nav.get("domContentLoadedEventEnd")) or None,
        early_fetched=sorted(early),
    )


def _apply_network(entries: list[Entry], fetches: list[Fetch], early: set[str]) -> None:
    """Each entry takes the times and bytes of the first network fetch of its path (the page
    entry keeps Navigation Timing's, whose phases are the connection's); ``early_hint`` marks
    a fetch made on the 103."""
    unused: dict[str, list[Fetch]] = {}
    for f in sorted(fetches, key=lambda f: f.start):
        if f.network:
            unused.setdefault(f.path, []).append(f)
    for i, e in enumerate(entries):
        queue = unused.get(e.path)
        if not queue:
            continue
        f = queue.pop(0)
        e.early_hint = e.path in early and f.start < (entries[0].first_byte or 0.0)
        if i == 0:
            e.nbytes = f.nbytes
            continue
        e.requested, e.first_byte, e.done, e.nbytes = f.start, f.headers, f.end, f.nbytes
        e.status = f.status or e.status


def hint_disagreements(load: PageLoad) -> list[str]:
    """Paths where the HAR's ``_earlyHint`` entries (or, without a HAR, the network's fetches on
    the 103) and Resource Timing's ``initiatorType "early-hints"`` disagree about a resource
    having come through Early Hints."""
    if load._har is not None:
        network = {path_of(e["request"]["url"]) for e in load._har if e["_earlyHint"]}
    else:
        network = set(load.early_fetched)
    timing = {e.path for e in load.entries if e.via == "hint"}
    return sorted(network ^ timing)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def relative_s(epoch_ms: float, origin_ms: float) -> float:
    return (epoch_ms - origin_ms) / 1000



def judge_unused(load: PageLoad, claimed: list[str], in_use: list[str]) -> None:
    """The browser's unused-preload claims (URLs) against what the page uses: ``wasted`` are the
    claims the page does not contradict, ``said_unused`` the ones it does."""
    used = {path_of(u) for u in in_use}
    paths = sorted({path_of(u) for u in claimed})
    load.wasted = [p for p in paths if p not in used]
    load.said_unused = [p for p in paths if p in used]
    load.hints_wasted = len(load.wasted)
    load.hints_used = max(0, len(load.early_fetched) - load.hints_wasted)
