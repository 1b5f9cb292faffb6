"""Speculation Rules from a real pushserve: the header on pages, the rule sets it serves, the
speculative requests it logs and hands to templates, and Chromium following the rules — the next
page served from its prefetch."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium, wait_loaded
from tests.support.serverproc import ServerProcess


def rules_of(c: httpx.Client, url: str) -> tuple[str, dict[str, object]]:
    """(the rule set's URL path, its JSON) a page names in its Speculation-Rules header."""
    page = c.get(url)
    assert page.status_code == 200
    match = re.fullmatch(r'"(/[^"]+)"', page.headers["speculation-rules"])
    assert match is not None, page.headers["speculation-rules"]
    reply = c.get(httpx.URL(url).join(match.group(1)))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/speculationrules+json"
    return match.group(1), reply.json()


def test_site_example_speculates_its_pages_and_not_its_app(server: ServerProcess) -> None:
    with httpx.Client(http2=True, verify=server.certs.client_context(), timeout=20) as c:
        path, rules = rules_of(c, server.url + "features/")
        assert path.startswith("/_pushserve/speculation/features/index.html.json?v=")
        # The nav names Home, Features and Search: Search is a mounted app, Features this page.
        assert rules == {"prefetch": [{"source": "document", "eagerness": "moderate",
                                       "where": {"href_matches": [{"pathname": "/", "search": ""}]}}]}
        features = c.get(server.url + "features/")
        assert features.headers["no-vary-search"] == "params"  # it never reads its query
        home = c.get(server.url)
        assert "no-vary-search" not in home.headers  # index.html reads request.args
        assert "speculation-rules" not in c.get(server.url + "search/").headers  # the app's own page
        assert "speculation-rules" not in c.get(server.url + "css/site.css").headers


def test_speculative_requests_are_logged_and_templates_see_them(
        make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    (tmp_path / "pushserve.toml").write_text('templates = true\n[serve]\nspeculation = "prerender"\n')
    (tmp_path / "index.html").write_text(
        '<a href="/">home</a><a href="/next.html">next</a>'
        '<p>purpose: {{ request.headers.get("sec-purpose", "none") }}</p>')
    (tmp_path / "next.html").write_text('<a href="/">back</a>')
    srv = make_server(site=tmp_path)
    with httpx.Client(http2=True, verify=srv.certs.client_context(), timeout=20) as c:
        _, rules = rules_of(c, srv.url)
        assert rules == {"prerender": [{"source": "document", "eagerness": "moderate",
                                        "where": {"href_matches": [{"pathname": "/next.html", "search": ""}]}}]}
        for purpose in ("prefetch", "prefetch;prerender"):
            reply = c.get(srv.url, headers={"sec-purpose": purpose})
            assert f"<p>purpose: {purpose}</p>" in reply.text
        assert "<p>purpose: none</p>" in c.get(srv.url).text  # a render that read headers is not kept
        c.get(srv.url + "next.html", headers={"sec-purpose": "prefetch;prerender"})
    srv.wait_for(r'"GET /" 200 \d+ .*\[prefetch\] ')
    srv.wait_for(r'"GET /" 200 \d+ .*\[prefetch;prerender\] ')
    srv.wait_for(r'"GET /next.html" 200 \d+ .*\[prefetch;prerender\] ')
    # The requests without Sec-Purpose say nothing of it.
    assert sum(re.search(r'"GET /" 200 [^\[\]]*ms$', line) is not None for line in srv.lines) == 2, srv.lines


def test_chromium_navigates_to_the_page_it_prefetched(server: ServerProcess) -> None:
    """Hovering the link to /features/ makes Chromium fetch it (Sec-Purpose: prefetch); the click
    then shows that response: one request for the page, the navigation's deliveryType says so."""
    start = len(server.lines)
    with chromium(server.certs.cert_dir / "localhost.pem") as driver:
        driver.get(server.url.replace("127.0.0.1", "localhost"))  # a certificate the browser trusts
        wait_loaded(driver)
        link = driver.find_element(By.CSS_SELECTOR, 'main a[href="/features/"]')
        server.wait_for(r'"GET /_pushserve/speculation/index\.html\.json\?v=\w+" 200', start=start)
        ActionChains(driver).move_to_element(link).perform()
        server.wait_for(r'"GET /features/" 200 .*\[prefetch\] ', start=start)  # on hover, before any click
        link.click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/features/"))
        wait_loaded(driver, ["/data/features.json"])
        nav = driver.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                                    "return {deliveryType: n.deliveryType, activationStart: n.activationStart}")
    # The new page's own rule set is fetched once it is shown: any second request for the page
    # itself would have come before it.
    server.wait_for(r'"GET /_pushserve/speculation/features/index\.html\.json\?v=\w+" 200', start=start)
    requests = [line for line in server.lines[start:] if '"GET /features/"' in line]
    assert len(requests) == 1 and "[prefetch]" in requests[0], requests
    assert nav == {"deliveryType": "navigational-prefetch", "activationStart": 0}


def test_dev_mode_live_reload_waits_until_a_prerendered_page_is_shown(
        make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<!doctype html><title>a</title><a id=next href="/b.html">b</a>')
    # A module script runs once the page is parsed, after the live-reload client: its fetch says
    # the prerendered page's scripts have run.
    (tmp_path / "b.html").write_text('<!doctype html><title>b</title><p>b</p>'
                                     '<script type=module>fetch("/ran.txt")</script>')
    (tmp_path / "ran.txt").write_text("ran\n")
    srv = make_server("--dev", "--speculation", "prerender", site=tmp_path)
    connected = "return window.__pushserveDev && window.__pushserveDev.connected"
    with chromium(srv.certs.cert_dir / "localhost.pem") as driver:
        driver.get(srv.url.replace("127.0.0.1", "localhost"))
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(connected))
        srv.wait_for(r'"GET /_pushserve/speculation/index\.html\.json\?v=\w+" 200')
        ActionChains(driver).move_to_element(driver.find_element(By.ID, "next")).perform()
        srv.wait_for(r'"GET /ran\.txt" 200 .*\[prefetch;prerender\] ')  # b.html rendered, unseen
        driver.find_element(By.ID, "next").click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/b.html") and d.execute_script(connected))
        shown = driver.execute_script(
            "return {activationStart: performance.getEntriesByType('navigation')[0].activationStart,"
            " openedAt: window.__pushserveDev.openedAt}")
    assert shown["activationStart"] > 0  # b.html was prerendered
    assert shown["openedAt"] >= shown["activationStart"]  # its live-reload stream opened once shown
    assert not [line for line in srv.lines if re.search(r'"GET /_pushserve/events" .*\[prefetch', line)]
