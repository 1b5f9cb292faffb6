"""Page loads in headless Chromium, driven through chromedriver's WebDriver HTTP API with urllib
(no Selenium: the installed ``pushserve bench --browser`` needs nothing beyond the standard
library and Debian's ``chromium`` + ``chromium-driver``).

Every load gets a new session with a fresh ``--user-data-dir``: a cold cache and no cookies.
The bench certificate is pinned by its SPKI hash (``--ignore-certificate-errors-spki-list``):
Chromium then treats the connection as a verified one and acts on 103 Early Hints, which it
does not do under ``--ignore-certificate-errors``.

What comes back, all from Chromium itself:
- Navigation and Resource Timing, paint metrics (``first-contentful-paint``, the last
  ``largest-contentful-paint`` candidate), read in the page once the load event has ended;
- the DevTools Network events of the load (chromedriver's performance log,
  ``goog:loggingPrefs``), for the HAR;
- the frames of Chromium's screencast (``Page.startScreencast`` over chromedriver's CDP endpoint)
  with the browser's own timestamps, for the filmstrip and Speed Index.  The page is loaded with
  ``pageLoadStrategy: none`` so the log can be drained (and each frame acknowledged, else
  Chromium stops sending them) while the page loads."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pushserve.bench.discovery import is_critical, kind_of
from pushserve.bench.har import devtools_entries
from pushserve.bench.loader import Entry, PageLoad
from pushserve.bench.procs import BenchError, free_port, running
from pushserve.bench.visual import Frame, visual_metrics
from pushserve.certificates import spki_sha256_b64

# The flags tests/browser.py uses: headless, no sandbox (root in containers), nothing in the
# background that would open connections of its own during a measured load.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
    "--window-size=1200,900",
]
LOAD_TIMEOUT_MS = 60_000
# Small frames: enough to see the page come together, and cheap to decode without a library.
SCREENCAST = {"format": "png", "maxWidth": 400, "maxHeight": 300, "everyNthFrame": 1}
POLL_S = 0.02  # how often the log is drained during a load (frames are acknowledged then)
# After the load event, frames keep coming while the page settles (late images, fonts): stop
# once none came for SETTLE_S, and at the latest SETTLE_MAX_S after the load (an animated page
# never stops sending frames).
SETTLE_S = 0.3
SETTLE_MAX_S = 2.0

# Runs in the page: waits for the load event to have ended, then hands back the timings.
_COLLECT = """
const done = arguments[arguments.length - 1];
const collect = () => {
  const n = performance.getEntriesByType('navigation')[0];
  if (!n || n.loadEventEnd === 0) { setTimeout(collect, 5); return; }
  const path = u => { const x = new URL(u); return x.pathname + x.search; };
  // LCP entries are only handed to an observer; buffered ones are in its records at once.
  let lcp = 0;
  const seen = list => { for (const e of list) lcp = e.startTime; };
  const obs = new PerformanceObserver(l => seen(l.getEntries()));
  obs.observe({type: 'largest-contentful-paint', buffered: true});
  seen(obs.takeRecords());
  obs.disconnect();
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  done({
    timeOrigin: performance.timeOrigin,
    paint: {fcp: fcp ? fcp.startTime : 0, lcp: lcp},
    nav: {name: path(n.name), requestStart: n.requestStart, responseStart: n.responseStart,
          responseEnd: n.responseEnd, firstInterimResponseStart: n.firstInterimResponseStart || 0,
          loadEventEnd: n.loadEventEnd, nextHopProtocol: n.nextHopProtocol, transferSize: n.transferSize,
          connectStart: n.connectStart, secureConnectionStart: n.secureConnectionStart,
          connectEnd: n.connectEnd, domContentLoadedEventEnd: n.domContentLoadedEventEnd},
    resources: performance.getEntriesByType('resource').map(e => ({
      name: path(e.name), initiatorType: e.initiatorType, startTime: e.startTime,
      responseStart: e.responseStart, responseEnd: e.responseEnd, transferSize: e.transferSize,
      nextHopProtocol: e.nextHopProtocol})),
  });
};
collect();
"""


def find_binaries() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or BenchError naming what to install."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = "chromium" if chromium is None else "chromedriver"
        raise BenchError(f"--browser needs {missing} (Debian: apt-get install chromium chromium-driver)")
    return chromium, driver


class WebDriver:
    """The few WebDriver commands the bench needs, as JSON over HTTP to chromedriver."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 90.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as e:  # WebDriver errors come as 4xx/5xx with a JSON body
            try:
                value = json.loads(e.read()).get("value", {})
                detail = f"{value.get('error', e.code)}: {str(value.get('message', '')).splitlines()[0]}"
            except (ValueError, AttributeError, IndexError):
                detail = str(e)
            raise BenchError(f"chromedriver {method} {path}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise BenchError(f"chromedriver {method} {path}: {e}") from None
        return answer.get("value")

    @contextmanager
    def session(self, binary: str, args: list[str]) -> Iterator[str]:
        """A session that logs DevTools Network and Page events, and returns from navigations at
        once (the caller waits for the load itself)."""
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "pageLoadStrategy": "none",
            "timeouts": {"pageLoad": LOAD_TIMEOUT_MS, "script": LOAD_TIMEOUT_MS},
            "goog:loggingPrefs": {"performance": "ALL"},
            "goog:chromeOptions": {"binary": binary, "args": args,
                                   "perfLoggingPrefs": {"enableNetwork": True, "enablePage": True}},
        }}}
        sid = str(self.call("POST", "/session", caps)["sessionId"])
        try:
            yield sid
        finally:
            # chromedriver is stopped next anyway, and its process group with it.
            with suppress(BenchError):
                self.call("DELETE", f"/session/{sid}", timeout=30)


class Chromium:
    """``with Chromium(cert) as browser: browser.load(url)`` — chromedriver runs for the whole
    bench, a Chromium per load."""

    def __init__(self, leaf_cert: Path) -> None:
        self.binary, self.driver_path = find_binaries()
        self.spki = spki_sha256_b64(leaf_cert)
        self._stack: Any = None
        self.driver: WebDriver | None = None

    def __enter__(self) -> Chromium:
        port = free_port()
        self._stack = running("chromedriver", [self.driver_path, f"--port={port}"])
        child = self._stack.__enter__()
        try:
            child.wait_for_port(port)
        except BaseException:
            self._stack.__exit__(None, None, None)
            raise
        self.driver = WebDriver(f"http://127.0.0.1:{port}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.__exit__(None, None, None)

    def capture(self, url: str) -> dict[str, Any]:
        """One cold load of ``url``: ``timings`` (from the page), ``events`` (DevTools Network and
        Page events) and ``frames`` (screencast: epoch seconds, PNG bytes)."""
        driver = self.driver
        assert driver is not None, "use Chromium as a context manager"
        with tempfile.TemporaryDirectory(prefix="pushserve-bench-chromium-") as profile:
            args = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--ignore-certificate-errors-spki-list={self.spki}"]
            with driver.session(self.binary, args) as sid:
                def log() -> list[dict[str, Any]]:
                    entries = driver.call("POST", f"/session/{sid}/se/log", {"type": "performance"})
                    return [json.loads(e["message"])["message"] for e in entries]

                def cdp(cmd: str, **params: Any) -> Any:
                    return driver.call("POST", f"/session/{sid}/goog/cdp/execute", {"cmd": cmd, "params": params})

                driver.call("POST", f"/session/{sid}/url", {"url": "about:blank"})
                log()  # the blank page's events are not the load's
                cdp("Page.startScreencast", **SCREENCAST)
                driver.call("POST", f"/session/{sid}/url", {"url": url})
                events, frames = _record_until_settled(log, cdp, url)
                cdp("Page.stopScreencast")
                timings: dict[str, Any] = driver.call(
                    "POST", f"/session/{sid}/execute/async", {"script": _COLLECT, "args": []})
                events += [ev for ev in log() if ev.get("method") != "Page.screencastFrame"]
        return {"timings": timings, "events": events, "frames": frames}

    def load(self, url: str, mode: str, connected_between: ConnectedBetween | None = None) -> PageLoad:
        """One cold load.  ``connected_between`` (the latency proxy's) tells when the modelled TCP
        handshake of the page's connection completed: Chromium sees loopback connect at once and
        counts the proxy's handshake delay as TLS."""
        got = self.capture(url)
        load = page_load_from_timings(got["timings"], mode, urlsplit(url).path or "/")
        origin_ms = float(got["timings"]["timeOrigin"])
        load.started, load.url = origin_ms / 1000, url
        load._har = devtools_entries(got["events"], url)
        if connected_between is not None:
            _split_handshake(load, got["events"], url, origin_ms, connected_between)
        frames = sorted((Frame(ts * 1000 - origin_ms, png) for ts, png in got["frames"]), key=lambda f: f.t)
        load._frames = frames
        if len(frames) >= 2:
            try:
                load.speed_index = visual_metrics(frames)[0]
            except ValueError as e:
                raise BenchError(f"chromium: a screencast frame could not be read: {e}") from e
        return load


def _record_until_settled(log: Callable[[], list[dict[str, Any]]], cdp: Callable[..., Any],
                          url: str) -> tuple[list[dict[str, Any]], list[tuple[float, bytes]]]:
    """Drain the performance log while the page loads: DevTools events, and screencast frames
    (epoch seconds, PNG), each acknowledged at once so Chromium keeps sending them.  Ends once
    the load event fired and the screen settled."""
    events: list[dict[str, Any]] = []
    frames: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    loaded = quiet_since = 0.0
    pause = threading.Event()
    while time.monotonic() < deadline:
        for ev in log():
            if ev.get("method") == "Page.screencastFrame":
                p = ev["params"]
                frames.append((float(p["metadata"]["timestamp"]), base64.b64decode(p["data"])))
                cdp("Page.screencastFrameAck", sessionId=p["sessionId"])
                quiet_since = time.monotonic()
            else:
                events.append(ev)
                if ev.get("method") == "Page.loadEventFired":
                    loaded = quiet_since = time.monotonic()
        now = time.monotonic()
        if loaded and (now - quiet_since > SETTLE_S or now - loaded > SETTLE_MAX_S):
            return events, frames
        pause.wait(POLL_S)  # pacing between drains, not a wait for readiness
    raise BenchError(f"chromium: {url} did not load within {LOAD_TIMEOUT_MS / 1000:.0f}s")


# (lo, hi) monotonic seconds → when the first connection accepted in between finished its TCP handshake.
ConnectedBetween = Callable[[float, float], float | None]


def _split_handshake(load: PageLoad, events: list[dict[str, Any]], url: str, origin_ms: float,
                     connected_between: ConnectedBetween) -> None:
    page = load.entries[0] if load.entries and load.entries[0].path == (urlsplit(url).path or "/") else None
    if page is None or page.connect_start is None or page.tls_done is None:
        return
    # Chromium's event timestamps are monotonic (the clock the proxy uses too); wallTime of the
    # same event maps them onto timeOrigin, which is wall-clock.
    doc = next((ev["params"] for ev in events if ev.get("method") == "Network.requestWillBeSent"
                and ev["params"].get("type") == "Document" and ev["params"]["request"]["url"] == url), None)
    if doc is None or "wallTime" not in doc:
        return
    origin = origin_ms / 1000 - (float(doc["wallTime"]) - float(doc["timestamp"]))
    tcp = connected_between(origin + page.connect_start - 0.005, origin + page.tls_done)
    if tcp is not None:
        page.tls_start = min(max(tcp - origin, page.connect_start), page.tls_done)


def page_load_from_timings(timings: dict[str, Any], mode: str, page_path: str) -> PageLoad:
    """Chromium's timings as a PageLoad (ms → s, relative to navigation start) so the table and
    the waterfall treat browser and loader runs alike.  Every resource Chromium fetched is
    counted as needed: Resource Timing does not say whether the page used it."""
    nav = timings["nav"]
    if nav.get("nextHopProtocol") not in ("h2", "http/1.1"):
        raise BenchError(f"chromium: unexpected protocol {nav.get('nextHopProtocol')!r} for {page_path}")
    page = Entry(page_path, "html", True, needed=True, requested=nav["requestStart"] / 1000,
                 first_byte=nav["responseStart"] / 1000, done=nav["responseEnd"] / 1000,
                 nbytes=int(nav.get("transferSize") or 0), status=200)
    if nav.get("connectEnd", 0) > 0:  # a new connection (not reused)
        secure = nav.get("secureConnectionStart") or nav["connectEnd"]
        page.connect_start, page.tls_start, page.tls_done = (nav["connectStart"] / 1000, secure / 1000,
                                                            nav["connectEnd"] / 1000)
    entries = [page]
    for r in timings["resources"]:
        kind = kind_of(r["name"])
        via = "hint" if r["initiatorType"] == "early-hints" else "request"
        entries.append(Entry(r["name"], kind, is_critical(kind), via=via, needed=True,
                             requested=r["startTime"] / 1000, first_byte=r["responseStart"] / 1000,
                             done=r["responseEnd"] / 1000, nbytes=int(r.get("transferSize") or 0), status=200))
    entries.sort(key=lambda e: (e.requested or 0.0, e.path))
    interim = nav.get("firstInterimResponseStart") or 0
    hinted = sum(1 for e in entries if e.via == "hint")
    return PageLoad(
        mode=mode, entries=entries, protocol=str(nav["nextHopProtocol"]),
        page_load=nav["loadEventEnd"] / 1000,
        critical_done=max((e.done or 0.0 for e in entries if e.critical), default=0.0),
        bytes=sum(e.nbytes for e in entries), requests=len(entries),
        pushes_used=0, pushes_wasted=0, hints_used=hinted, hints_wasted=0,
        first_interim=interim / 1000 if interim else None, response_start=nav["responseStart"] / 1000,
        fcp=(timings.get("paint", {}).get("fcp") or 0) / 1000 or None,
        lcp=(timings.get("paint", {}).get("lcp") or 0) / 1000 or None,
        dom_content_loaded=(nav.get("domContentLoadedEventEnd") or 0) / 1000 or None,
    )
