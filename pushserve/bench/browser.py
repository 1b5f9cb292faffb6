"""Page loads in headless Chromium, driven through chromedriver's WebDriver HTTP API with urllib
(no Selenium: the installed ``pushserve bench`` needs nothing beyond the standard library and
Debian's ``chromium`` + ``chromium-driver``).

Every load gets a new session with a fresh ``--user-data-dir``: a cold cache and no cookies.
The bench certificate is pinned by its SPKI hash (``--ignore-certificate-errors-spki-list``):
Chromium then treats the connection as a verified one and acts on 103 Early Hints, which it
does not do under ``--ignore-certificate-errors``.

What comes back, all from Chromium itself:
- Navigation and Resource Timing, paint metrics (``engine.COLLECT_FN``);
- its NetLog (``--log-net-log``, ``netlog.py``): the network stack's own record of every fetch,
  the early-hints preloads included, which DevTools never shows as fetches;
- the console's "preloaded using link preload but not used within a few seconds from the
  window's load event" warnings (3 s after the load event): the wasted hints;
- instrumented loads only: the DevTools Network events of the load (chromedriver's performance
  log, ``goog:loggingPrefs``) for the HAR, and the frames of Chromium's screencast
  (``Page.startScreencast`` over chromedriver's CDP endpoint) with the browser's own timestamps,
  for the filmstrip and Speed Index.  The page is loaded with ``pageLoadStrategy: none`` so the
  log can be drained (and each frame acknowledged, else Chromium stops sending them) while the
  page loads.

**HTTP/3** (modes ``h3-*``): the load's Chromium runs without ``--disable-quic`` and with
``--origin-to-force-quic-on=HOST:PORT`` (a name other than an address is also mapped to it with
``--host-resolver-rules``, which is what makes ``localhost`` work: Chromium's QUIC fails on
``::1``).  Chromium completes a QUIC handshake only with a certificate it trusts through a CA in
its NSS database (an SPKI pin is not enough), so chromedriver, and each Chromium it starts, runs
with a HOME of the bench's own whose ``.pki/nssdb`` trusts the run's CA (``certutil``).

A *control* load (``instrumented=False``) attaches no DevTools Network domain and no screencast:
page-side timings, the NetLog and the console only, to check the instrument against itself."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
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

from pushserve.bench import netlog
from pushserve.bench.engine import COLLECT_FN, IN_USE_FN, judge_unused, page_load_from_timings, protocol_of
from pushserve.bench.har import devtools_entries, with_network_times
from pushserve.bench.loader import PageLoad
from pushserve.bench.procs import BenchError, free_port, running, trust_ca
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

# After the load event, keep the session this long: Chromium warns about unused preloads 3 s
# after the window's load event.
HINT_WINDOW_S = 3.0
_UNUSED = re.compile(r"The resource (\S+) was preloaded using link preload but not used")
_COLLECT = f"const done = arguments[arguments.length - 1]; ({COLLECT_FN})().then(done);"
# Resolves once the page's main thread has run a timer past loadEventEnd + arguments[0] ms.
_PAST_WINDOW = """
const done = arguments[arguments.length - 1];
const due = performance.getEntriesByType('navigation')[0].loadEventEnd + arguments[0];
const check = () => performance.now() >= due ? done(true) : setTimeout(check, due - performance.now() + 1);
check();
"""


def find_binaries() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or BenchError naming what to install."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = "chromium" if chromium is None else "chromedriver"
        raise BenchError(f"--engine chromium needs {missing} (Debian: apt-get install chromium chromium-driver)")
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
    def session(self, binary: str, args: list[str], instrumented: bool = True) -> Iterator[str]:
        """A session that keeps the console.  An instrumented one also logs DevTools Network and
        Page events and returns from navigations at once (the caller drains the log while the
        page loads); the others return once the load event has fired, so that no script runs in
        the page while it loads."""
        logging = {"browser": "ALL", **({"performance": "ALL"} if instrumented else {})}
        options: dict[str, Any] = {"binary": binary, "args": args}
        if instrumented:
            options["perfLoggingPrefs"] = {"enableNetwork": True, "enablePage": True}
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "pageLoadStrategy": "none" if instrumented else "normal",
            "timeouts": {"pageLoad": LOAD_TIMEOUT_MS, "script": LOAD_TIMEOUT_MS},
            "goog:loggingPrefs": logging, "goog:chromeOptions": options,
        }}}
        sid = str(self.call("POST", "/session", caps)["sessionId"])
        try:
            yield sid
        finally:
            # chromedriver is stopped next anyway, and its process group with it.
            with suppress(BenchError):
                self.call("DELETE", f"/session/{sid}", timeout=30)


class Chromium:
    """``with Chromium(cert) as browser: browser.load(url, mode)`` — chromedriver runs for the
    whole bench, a Chromium per load.  ``instrumented=False``: the control engine (no DevTools
    Network domain, no screencast)."""

    def __init__(self, leaf_cert: Path, instrumented: bool = True, hint_window: float = HINT_WINDOW_S,
                 ca: Path | None = None) -> None:
        self.binary, self.driver_path = find_binaries()
        self.spki = spki_sha256_b64(leaf_cert)
        self.ca = ca  # trusted in the NSS database of Chromium's HOME when certutil is there: HTTP/3
        self.trusted = False
        self.instrumented = instrumented
        self.hint_window = hint_window
        self.name = "chromium" if instrumented else "chromium-control"
        self._stack: Any = None
        self._home: tempfile.TemporaryDirectory[str] | None = None
        self.driver: WebDriver | None = None

    def __enter__(self) -> Chromium:
        port = free_port()
        self._home = home = tempfile.TemporaryDirectory(prefix="pushserve-bench-chromium-home-")
        env = {**os.environ, "HOME": home.name}
        try:
            if self.ca is not None and shutil.which("certutil") is not None:
                nssdb = Path(home.name) / ".pki" / "nssdb"
                nssdb.mkdir(parents=True)
                trust_ca(nssdb, self.ca)
                self.trusted = True
            self._stack = running("chromedriver", [self.driver_path, f"--port={port}"], env=env)
            child = self._stack.__enter__()
        except BaseException:
            home.cleanup()
            raise
        try:
            child.wait_for_port(port)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.driver = WebDriver(f"http://127.0.0.1:{port}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.__exit__(None, None, None)
        if self._home is not None:
            self._home.cleanup()

    @contextmanager
    def tab(self) -> Iterator[ChromiumTab]:
        """A fresh Chromium (new profile) for a journey: navigate, click, hover, read timings."""
        driver = self.driver
        assert driver is not None, "use Chromium as a context manager"
        with tempfile.TemporaryDirectory(prefix="pushserve-bench-chromium-") as profile, \
                driver.session(self.binary, self._args(profile), instrumented=False) as sid:
            yield ChromiumTab(driver, sid)

    def _args(self, profile: str, url: str = "", mode: str = "") -> list[str]:
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--ignore-certificate-errors-spki-list={self.spki}",
                 f"--log-net-log={profile}/netlog.json"]
        if protocol_of(mode) == "h3":
            flags = [f for f in flags if f != "--disable-quic"] + quic_flags(url)
        return flags

    def capture(self, url: str, watch_hints: bool = True, mode: str = "") -> dict[str, Any]:
        """One cold load of ``url``: ``timings`` (from the page), ``events`` (DevTools Network and
        Page events; instrumented only), ``frames`` (screencast: epoch seconds, PNG bytes;
        instrumented only), ``netlog`` (the NetLog document) and ``unused`` (URLs Chromium said
        it preloaded and did not use)."""
        driver = self.driver
        assert driver is not None, "use Chromium as a context manager"
        if protocol_of(mode) == "h3" and not self.trusted:
            raise BenchError(f"chromium {mode}: HTTP/3 needs the run's CA in Chromium's NSS database: certutil "
                             "(Debian: apt-get install libnss3-tools)")
        with tempfile.TemporaryDirectory(prefix="pushserve-bench-chromium-") as profile:
            with driver.session(self.binary, self._args(profile, url, mode), self.instrumented) as sid:
                def log(kind: str = "performance") -> list[dict[str, Any]]:
                    entries = driver.call("POST", f"/session/{sid}/se/log", {"type": kind})
                    return [json.loads(e["message"])["message"] for e in entries] if kind == "performance" else entries

                def cdp(cmd: str, **params: Any) -> Any:
                    return driver.call("POST", f"/session/{sid}/goog/cdp/execute", {"cmd": cmd, "params": params})

                events: list[dict[str, Any]] = []
                frames: list[tuple[float, bytes]] = []
                if self.instrumented:
                    driver.call("POST", f"/session/{sid}/url", {"url": "about:blank"})
                    log()  # the blank page's events are not the load's
                    cdp("Page.startScreencast", **SCREENCAST)
                    driver.call("POST", f"/session/{sid}/url", {"url": url})
                    events, frames = _record_until_settled(log, cdp, url)
                    cdp("Page.stopScreencast")
                else:
                    driver.call("POST", f"/session/{sid}/url", {"url": url})
                timings: dict[str, Any] = driver.call(
                    "POST", f"/session/{sid}/execute/async", {"script": _COLLECT, "args": []})
                if self.instrumented:
                    events += [ev for ev in log() if ev.get("method") != "Page.screencastFrame"]
                unused = in_use = None
                if watch_hints:
                    # The page's own clock first: once its main thread (the one Chromium's
                    # unused-preload timer runs on) is past the window, the warning is due.
                    driver.call("POST", f"/session/{sid}/execute/async",
                                {"script": _PAST_WINDOW, "args": [self.hint_window * 1000]})
                    unused = self._unused_hints(lambda: log("browser"), timings)
                    in_use = json.loads(driver.call("POST", f"/session/{sid}/execute/sync",
                                                    {"script": f"return ({IN_USE_FN})();", "args": []}))
            # The session is over: Chromium has closed its NetLog.
            doc = netlog.read(Path(profile) / "netlog.json")
        return {"timings": timings, "events": events, "frames": frames, "netlog": doc, "unused": unused,
                "in_use": in_use}

    def _unused_hints(self, console: Callable[[], list[dict[str, Any]]], timings: dict[str, Any]) -> list[str]:
        """The URLs of Chromium's unused-preload warnings, read until ``hint_window`` after the
        load event (Chromium's own timer: 3 s after it) and at least half a second more, for the
        message to reach chromedriver's log."""
        loaded_at = (float(timings["timeOrigin"]) + float(timings["nav"]["loadEventEnd"])) / 1000
        until = max(loaded_at + self.hint_window, time.time()) + 0.5
        found: list[str] = []
        pause = threading.Event()
        while True:
            for entry in console():
                m = _UNUSED.search(str(entry.get("message", "")))
                if m:
                    found.append(m.group(1))
            if time.time() >= until:
                return found
            pause.wait(min(0.25, max(0.0, until - time.time())))  # pacing between reads of the console

    def load(self, url: str, mode: str, connected_between: ConnectedBetween | None = None,
             watch_hints: bool = True) -> PageLoad:
        """One cold load.  ``connected_between`` (the latency proxy's) tells when the modelled TCP
        handshake of the page's connection completed: Chromium sees loopback connect at once and
        counts the proxy's handshake delay as TLS.  ``watch_hints``: wait for Chromium's verdict
        on the preloads (3 s after the load event)."""
        got = self.capture(url, watch_hints, mode)
        timings = got["timings"]
        origin_ms = float(timings["timeOrigin"])
        parts = urlsplit(url)
        fetched = netlog.fetches(got["netlog"], f"{parts.scheme}://{parts.netloc}", origin_ms)
        load = page_load_from_timings(timings, mode, parts.path or "/", self.name, fetched)
        load.started, load.url = origin_ms / 1000, url
        load.hints_used = len(load.early_fetched)
        if got["unused"] is not None:
            judge_unused(load, got["unused"], got["in_use"])
        if self.instrumented:
            load._har = with_network_times(devtools_entries(got["events"], url), fetched, load.started)
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


def quic_flags(url: str) -> list[str]:
    """Chromium's flags to speak HTTP/3 to ``url``'s origin from the first request on."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    try:
        ipaddress.ip_address(host)
        return [f"--origin-to-force-quic-on={host}:{port}"]
    except ValueError:  # a name: resolved to IPv4 only (localhost's ::1 has no QUIC listener)
        return [f"--origin-to-force-quic-on={host}:{port}", f"--host-resolver-rules=MAP {host} 127.0.0.1"]


class ChromiumTab:
    """A page of a Chromium session, over WebDriver classic."""

    def __init__(self, driver: WebDriver, sid: str) -> None:
        self.driver, self.sid = driver, sid

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self.driver.call("POST", f"/session/{self.sid}{path}", body)

    def navigate(self, url: str) -> None:
        """Go to ``url`` and wait for its load event (the session returns at once: strategy none)."""
        self._post("/url", {"url": url})
        self.timings()

    def _element(self, selector: str) -> dict[str, Any]:
        found: dict[str, Any] = self._post("/element", {"using": "css selector", "value": selector})
        return found

    def click(self, selector: str) -> None:
        ref = next(iter(self._element(selector).values()))
        self._post(f"/element/{ref}/click", {})

    def hover(self, selector: str) -> None:
        element = self._element(selector)
        self._post("/actions", {"actions": [{"type": "pointer", "id": "mouse", "actions": [
            {"type": "pointerMove", "x": 0, "y": 0, "origin": element}]}]})

    def evaluate(self, expression: str) -> Any:
        return self._post("/execute/sync", {"script": f"return ({expression});", "args": []})

    def timings(self) -> dict[str, Any]:
        got: dict[str, Any] = self._post("/execute/async", {"script": _COLLECT, "args": []})
        return got


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
