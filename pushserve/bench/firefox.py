"""Page loads in headless Firefox (Debian's ``firefox-esr``), over WebDriver BiDi directly:
``firefox-esr --headless --remote-debugging-port 0`` prints ``WebDriver BiDi listening on
ws://127.0.0.1:PORT`` and that WebSocket is the whole interface (no geckodriver).

- **Trust.** Each run makes a profile and puts the bench's CA into the profile's own NSS
  database with ``certutil`` (``libnss3-tools``), as a CA trusted for TLS servers: the
  certificate verifies as a real one would (Firefox acts on 103 Early Hints from it), from any
  folder, without touching the user's profiles or the system store.
- **Cold loads in one browser.** Firefox starts once per bench; every load gets a new *user
  context* (a container: its own cookie jar, HTTP cache partition and connection pool) and a
  tab in it, so each load opens its own connection to an empty cache.
- **What comes back.** Navigation and Resource Timing and paint entries from the page
  (``engine.COLLECT_FN``, LCP through a ``PerformanceObserver``); BiDi's network events (every
  request, the early-hints preloads included, with the network's own timings and bytes) for the
  waterfall and the HAR.
- **Wasted hints.** Firefox says "preloaded with link preload was not used within a few seconds"
  10 s after a preload started (its ``PreloaderBase`` timer; Chromium's window is 3 s after the
  load event).  BiDi does not forward that warning, so the bench reads Firefox's console service
  from the browser's own (chrome) scope, which ``--remote-allow-system-access`` opens to BiDi.
  A load's tab stays open until its window is over while the next loads run (an idle page);
  a warning at time T belongs to the latest load that started 10 s or more before T."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pushserve.bench.bidi import BiDiError, BiDiThread, Event
from pushserve.bench.engine import COLLECT_FN, IN_USE_FN, judge_unused, page_load_from_timings
from pushserve.bench.har import bidi_entries, bidi_fetches, bidi_requests
from pushserve.bench.loader import PageLoad
from pushserve.bench.procs import BenchError, running, trust_ca

LOAD_TIMEOUT_S = 60.0
# Firefox's unused-preload timer (PreloaderBase::UsageTimer), and a margin for a busy main thread.
HINT_WINDOW_S = 10.0
HINT_MARGIN_S = 2.0
SETTLE_S, SETTLE_MAX_S = 0.3, 2.0  # after the load event: until the network is quiet this long
VIEWPORT = {"width": 1200, "height": 900}  # Chromium's --window-size
NETWORK_EVENTS = ["network.beforeRequestSent", "network.responseStarted", "network.responseCompleted",
                  "network.fetchError"]
_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")
_UNUSED = re.compile(r"“([^”]+)” preloaded with link preload was not used")
# Runs in the browser's chrome scope: the console's unused-preload warnings so far.
_WARNINGS = """JSON.stringify(Services.console.getMessageArray()
  .filter(m => m instanceof Ci.nsIScriptError && m.errorMessage.includes("preloaded with link preload"))
  .map(m => [m.timeStamp, m.errorMessage]))"""
# Prefs on top of the ones the remote agent sets for automation (no updates, no first-run pages).
PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "browser.sessionstore.resume_from_crash": False,
    "browser.tabs.warnOnClose": False,
}


def find_binary() -> str:
    found = shutil.which("firefox-esr") or shutil.which("firefox")
    if found is None:
        raise BenchError("--engine firefox needs firefox-esr (Debian: apt-get install firefox-esr)")
    if shutil.which("certutil") is None:
        raise BenchError("--engine firefox needs certutil to trust the bench's CA (Debian: apt-get install "
                         "libnss3-tools)")
    return found


def h3_prefs(origins: tuple[str, ...] | None) -> dict[str, Any]:
    """HTTP/3 for ``origins`` (HOST:PORT) from the first request on, or (None) never: Firefox
    speaks h3 to an origin only after an Alt-Svc, unless its testing pref maps the origin to
    h3 at once.  It also turns HTTP/3 off where a CA not its own is trusted, as the bench's is."""
    if origins is None:
        return {"network.http.http3.enable": False}
    mapping = ",".join(f"{host};h3=:{port}" for host, _, port in (o.rpartition(":") for o in origins))
    return {"network.http.http3.enable": True, "network.http.http3.alt-svc-mapping-for-testing": mapping,
            "network.http.http3.disable_when_third_party_roots_found": False}


def make_profile(folder: Path, ca_pem: Path, prefs_extra: dict[str, Any] | None = None) -> None:
    """A profile whose NSS database trusts ``ca_pem`` for TLS servers, and the bench's prefs."""
    trust_ca(folder, ca_pem)
    prefs = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                    for k, v in {**PREFS, **(prefs_extra or {})}.items())
    (folder / "user.js").write_text(prefs, encoding="utf-8")


@dataclass
class _Lingering:
    """A measured load whose tab stays open until Firefox's unused-preload window is over."""

    load: PageLoad
    context: str
    user_context: str
    started_ms: float  # navigation start, epoch ms
    until: float  # epoch seconds: its warnings have all come by then
    claims: list[str] = field(default_factory=list)  # URLs Firefox said it preloaded and did not use


class Firefox:
    """``with Firefox(ca_pem) as browser: browser.load(url, mode)``."""

    name = "firefox"

    def __init__(self, ca_pem: Path, watch_hints: bool = True, h3_origins: tuple[str, ...] | None = None) -> None:
        """``h3_origins``: the HOST:PORTs this Firefox speaks HTTP/3 to (and HTTP/2 to no
        other); None: HTTP/3 off."""
        self.binary = find_binary()
        self.h3_origins = h3_origins
        self.ca_pem = ca_pem
        self.watch_hints = watch_hints
        self.version = ""
        self.chrome: str | None = None  # the browser window's context, when system access is on
        self._stack = ExitStack()
        self._bidi: BiDiThread | None = None
        self._lingering: list[_Lingering] = []
        self._seen_warnings: set[tuple[float, str]] = set()

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> Firefox:
        try:
            profile = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="pushserve-bench-firefox-")))
            make_profile(profile, self.ca_pem, h3_prefs(self.h3_origins))
            cmd = [self.binary, "--headless", "--remote-debugging-port", "0", "--remote-allow-system-access",
                   "--profile", str(profile), "--no-remote", "about:blank"]
            child = self._stack.enter_context(running("firefox", cmd))
            url = child.wait_for_line(_LISTENING, timeout=60).group(1)
            self._bidi = BiDiThread()
            self._stack.callback(self._bidi.stop)
            self._bidi.connect(url + "/session")
            caps = self._command("session.new", capabilities={})["capabilities"]
            self.version = str(caps.get("browserVersion", ""))
            self._command("session.subscribe", events=[*NETWORK_EVENTS, "browsingContext.load"])
            try:
                tree = self._command("browsingContext.getTree", **{"moz:scope": "chrome"})
                self.chrome = tree["contexts"][0]["context"]
            except (BiDiError, KeyError, IndexError):
                self.chrome = None  # an older Firefox: wasted hints are not observed
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._bidi is not None and self._bidi.conn is not None and exc[0] is None:
                self._finish(wait=True)
                self._command("session.end")
        except BenchError:
            pass
        finally:
            self._stack.close()

    def _command(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._bidi is not None, "use Firefox as a context manager"
        return self._bidi.command(method, **params)

    @property
    def _conn(self) -> Any:
        assert self._bidi is not None and self._bidi.conn is not None
        return self._bidi.conn

    # -- tabs ---------------------------------------------------------------------------------

    def _open(self) -> tuple[str, str]:
        user_context = self._command("browser.createUserContext")["userContext"]
        context = self._command("browsingContext.create", type="tab", userContext=user_context)["context"]
        self._command("browsingContext.setViewport", context=context, viewport=VIEWPORT)
        return str(context), str(user_context)

    def _close(self, context: str, user_context: str) -> None:
        try:
            self._command("browsingContext.close", context=context)
        finally:
            self._command("browser.removeUserContext", userContext=user_context)

    @contextmanager
    def tab(self) -> Iterator[FirefoxTab]:
        """A tab in a fresh user context, for a journey."""
        context, user_context = self._open()
        try:
            yield FirefoxTab(self, context)
        finally:
            self._close(context, user_context)

    def _timings(self, context: str) -> dict[str, Any]:
        got = self._command("script.callFunction", functionDeclaration=f"() => ({COLLECT_FN})().then(JSON.stringify)",
                            awaitPromise=True, target={"context": context})
        if got.get("type") == "exception":
            raise BenchError(f"firefox: collecting timings failed: {got.get('exceptionDetails', {}).get('text')}")
        value: dict[str, Any] = json.loads(got["result"]["value"])
        return value

    # -- a measured load ----------------------------------------------------------------------

    def load(self, url: str, mode: str, watch_hints: bool = True) -> PageLoad:
        """One cold load of ``url`` in a new user context; with ``watch_hints`` its tab stays
        open until Firefox has said which preloads it did not use."""
        self._finish(wait=False)
        context, user_context = self._open()
        conn = self._conn
        mark = len(conn.events)

        def ours(e: Event) -> bool:
            return e.params.get("context") == context

        try:
            self._command("browsingContext.navigate", context=context, url=url, wait="none")
            assert self._bidi is not None
            self._bidi.run(conn.wait_for(lambda e: e.method == "browsingContext.load" and ours(e), mark,
                                         timeout=LOAD_TIMEOUT_S))
            timings = self._timings(context)
            # Late requests (images, the favicon) belong in the HAR: wait for a quiet network.
            self._bidi.run(conn.quiet(lambda e: e.method.startswith("network.") and ours(e), mark, SETTLE_S,
                                      SETTLE_MAX_S))
        except BaseException:
            self._close(context, user_context)
            raise
        origin_ms = float(timings["timeOrigin"])
        requests = bidi_requests((e.method, e.params) for e in conn.events[mark:] if ours(e))
        parts = urlsplit(url)
        load = page_load_from_timings(timings, mode, parts.path or "/", self.name, bidi_fetches(requests, origin_ms))
        load.started, load.url = origin_ms / 1000, url
        load._har = bidi_entries(requests, origin_ms, load.response_start)
        loaded_ms = origin_ms + float(timings["nav"]["loadEventEnd"])
        load.hints_used = len(load.early_fetched)
        if watch_hints and self.watch_hints and self.chrome is not None:
            self._lingering.append(_Lingering(load, context, user_context, origin_ms,
                                              loaded_ms / 1000 + HINT_WINDOW_S + HINT_MARGIN_S))
        else:
            self._close(context, user_context)
        return load

    def _finish(self, wait: bool) -> None:
        """Read Firefox's unused-preload warnings and close the tabs whose window is over (with
        ``wait``: wait for every window to end first — Firefox's timer, not a readiness poll)."""
        if not self._lingering:
            return
        if wait:
            pause = threading.Event()
            pause.wait(max(0.0, max(x.until for x in self._lingering) - time.time()))
        due = [x for x in self._lingering if x.until <= time.time()]
        if not due:
            return
        self._attribute(self._warnings())
        for x in due:
            got = self._command("script.callFunction", functionDeclaration=IN_USE_FN, awaitPromise=False,
                                target={"context": x.context})
            in_use = json.loads(got["result"]["value"]) if got.get("type") == "success" else []
            judge_unused(x.load, x.claims, in_use)
            self._lingering.remove(x)
            self._close(x.context, x.user_context)

    def _warnings(self) -> list[tuple[float, str]]:
        assert self.chrome is not None
        got = self._command("script.evaluate", expression=_WARNINGS, awaitPromise=False,
                            target={"context": self.chrome})
        if got.get("type") == "exception":
            return []
        return [(float(t), str(m)) for t, m in json.loads(got["result"]["value"])]

    def _attribute(self, warnings: list[tuple[float, str]]) -> None:
        for t, message in warnings:
            if (t, message) in self._seen_warnings:
                continue
            self._seen_warnings.add((t, message))
            m = _UNUSED.search(message)
            owners = [x for x in self._lingering if x.started_ms <= t - HINT_WINDOW_S * 1000]
            if m and owners:
                max(owners, key=lambda x: x.started_ms).claims.append(m.group(1))


class FirefoxTab:
    """A page of a Firefox user context, over BiDi."""

    def __init__(self, browser: Firefox, context: str) -> None:
        self.browser, self.context = browser, context

    def navigate(self, url: str) -> None:
        self.browser._command("browsingContext.navigate", context=self.context, url=url, wait="complete")

    def _node(self, selector: str) -> dict[str, Any]:
        found = self.browser._command("browsingContext.locateNodes", context=self.context,
                                      locator={"type": "css", "value": selector}, maxNodeCount=1)["nodes"]
        if not found:
            raise BenchError(f"firefox: no element matches {selector!r}")
        return {"sharedId": found[0]["sharedId"]}

    def _pointer(self, selector: str, press: bool) -> None:
        moves: list[dict[str, Any]] = [{"type": "pointerMove", "x": 0, "y": 0,
                                        "origin": {"type": "element", "element": self._node(selector)}}]
        if press:
            moves += [{"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]
        self.browser._command("input.performActions", context=self.context,
                              actions=[{"type": "pointer", "id": "mouse", "actions": moves}])

    def click(self, selector: str) -> None:
        self._pointer(selector, press=True)

    def hover(self, selector: str) -> None:
        self._pointer(selector, press=False)

    def evaluate(self, expression: str) -> Any:
        got = self.browser._command("script.evaluate", expression=f"JSON.stringify({expression})",
                                    awaitPromise=True, target={"context": self.context})
        if got.get("type") == "exception":
            raise BenchError(f"firefox: {expression}: {got.get('exceptionDetails', {}).get('text')}")
        value = got["result"].get("value")
        return json.loads(value) if isinstance(value, str) else None

    def timings(self) -> dict[str, Any]:
        return self.browser._timings(self.context)
