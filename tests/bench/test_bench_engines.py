"""The browser engines the bench drives, against a real pushserve (a small site whose 103 names a
stylesheet the page never uses, 400 ms of server think time) behind the latency proxy:

- Firefox over WebDriver BiDi, straight to ``firefox-esr`` (no geckodriver): the client's
  commands, events and errors; a cold load that fetches on the 103 (network events, HAR and
  bytes agree), and Firefox's own word on the hint it did not use;
- Chromium: the same load (the control engine's: it acts on the 103 even when starved), and an
  instrumented load's placement, HAR and Chromium's own word on the unused hint;
- both: a journey's verbs (navigate, hover, click, evaluate) on a page with a button.

One browser of each kind for the module; skipped with the reason where one is not installed."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from pushserve.bench.bidi import BiDiError
from pushserve.bench.certs import CertPair, make_cert
from pushserve.bench.engine import path_of
from pushserve.bench.loader import PageLoad
from pushserve.bench.pageload import start_pushserve
from pushserve.bench.proxy import ProxyThread

pytestmark = pytest.mark.timeout(360)
THINK_MS = 400
PAGE = """<!doctype html><html><head><meta charset=utf-8><title>engines</title>
<link rel=stylesheet href="/css/a.css"></head>
<body><h1>Engines</h1><p>A paragraph of text for the largest contentful paint.</p>
<button id=go onmouseover="document.body.dataset.hovered = 'yes'" onclick="document.body.dataset.clicked = 'yes'">
Go</button></body></html>
"""
# a.css @imports b.css; the 103 also names unused.css, which no page uses.
MANIFEST = {"index.html": {"/css/a.css": {"type": "style", "weight": 1}, "/css/b.css": {"type": "style", "weight": 1},
                           "/css/unused.css": {"type": "style", "weight": 1}}}
HINTED = {"/css/a.css", "/css/b.css", "/css/unused.css"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, CertPair]]:
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        work = Path(tmp)
        site = work / "site"
        (site / "css").mkdir(parents=True)
        (site / "index.html").write_text(PAGE)
        (site / "css" / "a.css").write_text('@import "b.css";\nh1 { color: #246; }\n')
        (site / "css" / "b.css").write_text("p { color: #333; }\n")
        (site / "css" / "unused.css").write_text("h2 { color: red; }\n")
        (site / "push_manifest.json").write_text(json.dumps(MANIFEST))
        cert = make_cert(work)
        with start_pushserve(site, cert, work, "hints", ("--bench-think", f"{THINK_MS}ms")) as base:
            host, port = base.removeprefix("https://").rsplit(":", 1)
            with ProxyThread((host, int(port)), 0.02) as proxy:
                yield f"https://127.0.0.1:{proxy.port}/", cert


def _check_cold_load(load: PageLoad, all_on_the_103: bool = True) -> None:
    """``all_on_the_103``: every hinted resource was fetched on the 103 (else only what was is
    checked for placement, bytes and the HAR)."""
    assert load.protocol == "h2"
    assert load.first_interim is not None and load.response_start is not None
    assert load.response_start >= THINK_MS / 1000 > 0 and load.first_interim < load.response_start  # TTFB: the 200's
    if all_on_the_103:
        assert set(load.early_fetched) >= HINTED, load.early_fetched
    assert load.lcp is not None and load.fcp is not None and load.lcp >= load.fcp
    early = [e for e in load.entries if e.early_hint]
    assert {e.path for e in early} == set(load.early_fetched) & {e.path for e in load.entries}
    # Placed when the network fetched them (on the 103), with the bytes they moved.
    assert all(e.requested is not None and e.requested < load.response_start and e.nbytes > 0 for e in early)
    assert load.bytes >= sum(e.nbytes for e in early)
    if load._har is None:
        return
    # The HAR says the same: its early-hint entries that started before the 200 are those fetches.
    start = {path_of(e["request"]["url"]): e["startedDateTime"] for e in load._har if e["_earlyHint"]}
    on_103 = {p for p, t in start.items() if _epoch(t) - load.started < load.response_start}
    assert on_103 == set(load.early_fetched), (start, load.early_fetched)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# -- Firefox ----------------------------------------------------------------------------------

FIREFOX_MISSING = next((f"{tool} is not installed (Debian: {pkg})" for tool, pkg in
                        (("firefox-esr", "firefox-esr"), ("certutil", "libnss3-tools")) if shutil.which(tool) is None),
                       None)


@pytest.fixture(scope="module")
def firefox(served: tuple[str, CertPair]) -> Iterator[object]:
    if FIREFOX_MISSING:
        pytest.skip(FIREFOX_MISSING)
    from pushserve.bench.firefox import Firefox

    _, cert = served
    assert cert.ca is not None
    with Firefox(cert.ca) as browser:
        yield browser


def test_bidi_commands_events_and_errors(firefox: object) -> None:
    from pushserve.bench.firefox import Firefox

    assert isinstance(firefox, Firefox)
    assert firefox.version.split(".")[0].isdigit()
    assert firefox.chrome is not None  # --remote-allow-system-access: the console is readable
    tree = firefox._command("browsingContext.getTree")
    assert tree["contexts"], tree
    with pytest.raises(BiDiError) as raised:
        firefox._command("browsingContext.navigate", context="no-such-context", url="about:blank")
    assert raised.value.error == "no such frame"


def test_firefox_fetches_on_the_103_and_names_the_unused_hint(firefox: object, served: tuple[str, CertPair]) -> None:
    from pushserve.bench.firefox import Firefox

    assert isinstance(firefox, Firefox)
    url, _ = served
    loads = [firefox.load(url, "h2-hints") for _ in range(2)]
    for load in loads:
        _check_cold_load(load)
        assert load.entries[0].connect_start is not None  # its own connection: a new user context
    firefox._finish(wait=True)  # Firefox says so 10 s after the preload started
    for load in loads:
        assert load.wasted == ["/css/unused.css"], (load.wasted, load.said_unused)
        assert set(load.said_unused) <= {"/css/a.css"}  # Firefox 153 calls an @importing sheet unused


def test_chromium_fetches_on_the_103_and_names_the_unused_hint(served: tuple[str, CertPair]) -> None:
    from pushserve.bench.browser import Chromium

    url, cert = served
    with Chromium(cert.cert, instrumented=False) as control, Chromium(cert.cert) as instrumented:
        witness = control.load(url, "h2-hints")
        load = instrumented.load(url, "h2-hints")
    # Chromium acts on the 103.  The control load (no DevTools events, no screencast) is the
    # witness: a starved Chromium with both attached (load average 48) handled the 103 only
    # after the 200 and preloaded nothing from it.
    _check_cold_load(witness)
    # The instrumented load: whatever it fetched on the 103 is placed there, the HAR agrees, and
    # Chromium names the hint it did not use.
    _check_cold_load(load, all_on_the_103=False)
    assert load.wasted == ["/css/unused.css"] and load.said_unused == []
    assert load.speed_index is not None and load._frames


def test_journey_verbs(firefox: object, served: tuple[str, CertPair]) -> None:
    from pushserve.bench.browser import Chromium
    from pushserve.bench.firefox import Firefox

    assert isinstance(firefox, Firefox)
    url, cert = served
    with Chromium(cert.cert) as chromium, chromium.tab() as c_tab, firefox.tab() as f_tab:
        for tab in (c_tab, f_tab):
            tab.navigate(url)
            assert tab.evaluate("document.body.dataset.hovered || 'no'") == "no"
            tab.hover("#go")
            assert tab.evaluate("document.body.dataset.hovered") == "yes"
            tab.click("#go")
            assert tab.evaluate("document.body.dataset.clicked") == "yes"
            timings = tab.timings()
            assert timings["nav"]["nextHopProtocol"] == "h2" and timings["nav"]["loadEventEnd"] > 0
