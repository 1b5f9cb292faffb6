"""What a current browser does with pushserve: Chromium sends ENABLE_PUSH=0, so it gets 103 Early
Hints, and fetches the hinted resources before the page's own response arrives."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.browser import chromium, navigation_timing, resource_timings
from tests.serverproc import ServerProcess

EXPECTED = Path(__file__).resolve().parent.parent / "unit" / "expected_manifest_site_example.json"


def test_chromium_uses_early_hints_over_http2(server: ServerProcess) -> None:
    hinted = set(json.loads(EXPECTED.read_text())["index.html"])
    with chromium(server.certs.cert_dir / "localhost.pem") as driver:
        driver.get(server.url.replace("127.0.0.1", "localhost"))
        nav = navigation_timing(driver)
        entries = {e["name"]: e for e in resource_timings(driver)}
    assert nav["nextHopProtocol"] == "h2"
    assert nav["firstInterimResponseStart"] > 0  # the 103 arrived
    from_hints = {name for name, e in entries.items() if e["initiatorType"] == "early-hints"}
    # Everything the page needs early came through the hints; the page itself then used them.
    assert hinted - {"/img/logo.svg"} <= from_hints, entries
    for name in from_hints:
        assert entries[name]["transferSize"] == 0 or entries[name]["nextHopProtocol"] == "h2"
    # Chromium disables push; the log says so for the page request.
    assert "push=0 hint=" in server.output


def test_chromium_without_hints_when_push_off(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("--push", "off")
    with chromium(srv.certs.cert_dir / "localhost.pem") as driver:
        driver.get(srv.url.replace("127.0.0.1", "localhost"))
        nav = navigation_timing(driver)
        entries = resource_timings(driver)
    assert nav["nextHopProtocol"] == "h2"
    assert nav["firstInterimResponseStart"] == 0
    assert entries and all(e["initiatorType"] != "early-hints" for e in entries)
