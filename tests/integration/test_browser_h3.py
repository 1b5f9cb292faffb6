"""Headless Chromium loads site_example from pushserve over HTTP/3: the page and every resource
arrive over h3, the 103's preloads are the ones the page uses, and a mounted ASGI app (the
example site's search) answers over h3 too.

pushserve runs with ``--bench-think 300ms`` (the page waits that long after its 103): over bare
loopback the 103 and the page would leave together, and the browser's own requests could beat
the hints (see test_browser_hints.py, which delays TCP with the latency proxy instead; that proxy
cannot carry UDP)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.support.browser_h3 import chromium_h3, loaded
from tests.support.serverproc import ServerProcess

EXPECTED = Path(__file__).resolve().parent.parent / "unit" / "site" / "expected_manifest_site_example.json"


def hinted_by_manifest(page: str) -> set[str]:
    manifest = json.loads(EXPECTED.read_text())[page]
    return {path for path, spec in manifest.items() if spec["type"] != "image"} | {"/img/hero.png"}


def test_chromium_loads_the_example_site_over_h3_with_early_hints_and_a_mount(
        make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("--bench-think", "300ms")
    base = f"https://localhost:{srv.port}"
    with chromium_h3(srv.certs, srv.port) as driver:
        page = loaded(driver, base + "/", resources=len(hinted_by_manifest("index.html")))
        nav, entries = page["nav"], {e["name"]: e for e in page["resources"]}
        assert nav["nextHopProtocol"] == "h3"
        assert entries and {e["nextHopProtocol"] for e in page["resources"]} == {"h3"}, page["resources"]
        assert 0 < nav["firstInterimResponseStart"] < nav["finalResponseHeadersStart"]  # the 103, then the page
        from_hints = {name for name, e in entries.items() if e["initiatorType"] == "early-hints"}
        assert hinted_by_manifest("index.html") <= from_hints, entries

        search = loaded(driver, base + "/search/?q=hints")
        assert search["nav"]["nextHopProtocol"] == "h3"
        assert "hints" in driver.page_source.lower() and "<main" in driver.page_source
    assert "GET /search/?q=hints" in srv.output and " h3 " in srv.output
