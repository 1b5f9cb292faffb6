"""What a current browser does with pushserve: Chromium sends ENABLE_PUSH=0, so it gets 103 Early
Hints and fetches the hinted resources before the page arrives.

The browser reaches the server through pushserve's latency proxy (20 ms round trip).  Over bare
loopback a 103 and its page arrive within a millisecond of the request, and Chromium then
sometimes (a third of fresh profiles, measured) ignores the hints; with any real round trip it
uses them every time (10 of 10 measured), which is the situation Early Hints exist for."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from pushserve.bench.proxy import ProxyThread
from tests.support.browser import chromium, navigation_timing, resource_timings, wait_loaded
from tests.support.serverproc import ServerProcess

EXPECTED = Path(__file__).resolve().parent.parent / "unit" / "site" / "expected_manifest_site_example.json"
RTT = 0.020


@contextmanager
def browse(srv: ServerProcess, path: str, expect: Iterable[str] = ()
           ) -> Iterator[tuple[dict[str, Any], dict[str, dict[str, Any]]]]:
    """Load a page in a fresh headless Chromium through the latency proxy: (navigation, resources),
    read once the load is recorded with an entry for each path in ``expect``."""
    with ProxyThread((srv.host, srv.port), RTT) as proxy, \
            chromium(srv.certs.cert_dir / "localhost.pem") as driver:
        driver.get(f"https://localhost:{proxy.proxy.port}{path}")
        wait_loaded(driver, expect)
        yield navigation_timing(driver), {e["name"]: e for e in resource_timings(driver)}


def hinted_by_manifest(page: str) -> set[str]:
    manifest = json.loads(EXPECTED.read_text())[page]
    return {path for path, spec in manifest.items() if spec["type"] != "image"} | {"/img/hero.png"}


def test_chromium_uses_early_hints_for_a_static_page(make_server: Callable[..., ServerProcess]) -> None:
    # The page waits 150 ms after its 103 (--bench-think), as a page being produced does: on a
    # loaded machine a 103 and a 200 that leave together can reach Chromium in one read, and it
    # then takes the 200's Link header instead (seen under load 16).
    server = make_server("--bench-think", "150ms")
    with browse(server, "/", hinted_by_manifest("index.html")) as (nav, entries):
        pass
    assert nav["nextHopProtocol"] == "h2"
    assert 0 < nav["firstInterimResponseStart"] < nav["finalResponseHeadersStart"]  # the 103 first
    from_hints = {name for name, e in entries.items() if e["initiatorType"] == "early-hints"}
    # Styles, font, scripts and the preloaded hero image came through the hints; the page's own
    # requests for them were answered from those responses, not fetched again.
    assert hinted_by_manifest("index.html") <= from_hints, entries
    assert all(entries[name]["transferSize"] == 0 for name in from_hints), entries
    assert "push=0 hint=9" in server.output  # Chromium disables push: hinted, not pushed


def test_chromium_uses_early_hints_while_a_slow_page_is_produced(
        make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("--mount", "/slow=tests.support.apps.slowpage:app")
    # The first response teaches pushserve what the page links; later requests are announced on arrival.
    with httpx.Client(http2=True, verify=srv.certs.client_context(), timeout=20) as c:
        assert c.get(srv.url + "slow/").status_code == 200
    hinted = {"/css/site.css", "/css/typography.css", "/fonts/dejavu-sans-latin.woff2",
              "/js/app.js", "/js/nav.js", "/js/util.js"}
    with browse(srv, "/slow/", hinted) as (nav, entries):
        pass
    assert nav["nextHopProtocol"] == "h2"
    # The 103 came at once, the page after the app's think time.
    assert 0 < nav["firstInterimResponseStart"] < nav["finalResponseHeadersStart"]
    from_hints = {name for name, e in entries.items() if e["initiatorType"] == "early-hints"}
    assert hinted <= from_hints, entries
    assert all(entries[name]["transferSize"] == 0 for name in from_hints), entries


def test_chromium_without_hints_when_push_off(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("--push", "off")
    with browse(srv, "/") as (nav, entries):
        pass
    assert nav["nextHopProtocol"] == "h2"
    assert nav["firstInterimResponseStart"] == 0
    assert entries and all(e["initiatorType"] != "early-hints" for e in entries.values())
