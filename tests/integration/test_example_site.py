"""site_example as a visitor meets it: the real command, search linked and working in the site's
layout, and a panel that reports what this visit got, agreeing with the browser's own Resource
Timing entries (checked in headless Chromium through the latency proxy, as test_browser_hints)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from selenium.webdriver.support.ui import WebDriverWait

from pushserve.bench.proxy import ProxyThread
from tests.support.browser import chromium
from tests.support.serverproc import ServerProcess

RTT = 0.020  # Chromium acts on hints reliably only with a real round trip (see test_browser_hints)


def get(srv: ServerProcess, path: str, **params: str) -> httpx.Response:
    with httpx.Client(http2=True, verify=srv.certs.client_context(), timeout=20) as c:
        return c.get(srv.url.rstrip("/") + path, params=params)


def test_home_shows_the_command_that_serves_it_and_links_search(server: ServerProcess) -> None:
    home = get(server, "/")
    assert '<code id="cmd-serve">pushserve site_example</code>' in home.text
    assert "--cert cert.pem" not in home.text
    for page in ("/", "/features/"):
        assert '<a href="/search/">Search</a>' in get(server, page).text


def test_search_for_hints_finds_both_pages_in_the_site_layout(server: ServerProcess) -> None:
    page = get(server, "/search", q="hints")
    assert page.status_code == 200
    assert 'class="site-header"' in page.text and 'aria-current="page">Search</a>' in page.text
    hits = re.findall(r'<li><a href="([^"]+)">', page.text)
    assert set(hits) == {"/", "/features/"}
    assert "<mark>Hints</mark>" in page.text
    assert "Welcome, visitor from" not in page.text and "{{" not in page.text
    api = get(server, "/search/api", q="hints").json()
    assert {r["url"] for r in api["results"]} == {"/", "/features/"}
    assert all("hints" in r["snippet"].lower() and "{" not in r["snippet"] for r in api["results"])


PANEL = """
const how = (e) => e.initiatorType === "early-hints" ? "hinted"
  : e.transferSize === 0 && e.decodedBodySize > 0 ? "cached" : "fetched";
const entries = performance.getEntriesByType("resource")
  .map((e) => [new URL(e.name).pathname, how(e)]).filter(([path]) => !path.startsWith("/_pushserve/"));
const rows = [...document.querySelectorAll("[data-visit-rows] tr")]
  .map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent]);
return {entries, rows, summary: document.querySelector("[data-visit-summary]").textContent};
"""


def test_visit_panel_reports_what_resource_timing_recorded(server: ServerProcess) -> None:
    with ProxyThread((server.host, server.port), RTT) as proxy, \
            chromium(server.certs.cert_dir / "localhost.pem") as driver:
        driver.get(f"https://localhost:{proxy.proxy.port}/")

        def settled(d: Any) -> dict[str, Any] | None:
            seen: dict[str, Any] = d.execute_script(PANEL)
            done = seen["entries"] and len(seen["rows"]) == len(seen["entries"])
            return seen if done else None

        seen: dict[str, Any] = WebDriverWait(driver, 20).until(settled)
        theme_before = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        driver.find_element("css selector", "[data-theme-toggle]").click()
        theme_after = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        label = driver.find_element("css selector", "[data-theme-toggle]").text
    # Every resource the browser recorded is listed once, with the same verdict.
    assert sorted(map(tuple, seen["rows"])) == sorted(map(tuple, seen["entries"]))
    rows = dict(map(tuple, seen["rows"]))
    assert rows["/css/site.css"] == "hinted" and rows["/js/visit.js"] == "hinted"
    assert "103 Early Hints response arrived" in seen["summary"] and "0 pushed" in seen["summary"]
    hinted = sum(1 for _, how in seen["rows"] if how == "hinted")
    assert f"{hinted} hinted" in seen["summary"]
    # The theme button switches the palette (light page by default in headless Chromium).
    assert theme_before == "rgb(251, 250, 247)" and theme_after == "rgb(18, 21, 28)"
    assert label == "Light theme"
