"""The dev-mode error overlay in headless Chromium: one opaque box that names the file, the line
Jinja2 reports and the line where the unclosed block began, with the source around it, whether it
arrives over the live-reload stream or as the 500 page itself."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium
from tests.support.serverproc import SITE_EXAMPLE, ServerProcess

TIMEOUT = 20
SHOTS = Path("/tmp/shots")
OPENED = "{% block title %}Home"  # line 4 of index.html, its endblock removed


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(SITE_EXAMPLE, copy)
    return copy


def _break(site: Path) -> int:
    """Leave index.html's title block open at line 4; returns the file's last line (where Jinja2
    reports the error)."""
    index = site / "index.html"
    lines = index.read_text().splitlines()
    assert lines[3] == "{% block title %}Home{% endblock %}", "site_example's index.html changed: adjust the test"
    lines[3] = OPENED
    index.write_text("\n".join(lines) + "\n")
    return len(lines)


_STATE = """
const boxes = document.querySelectorAll('#pushserve-overlay');
const box = boxes[0];
return {count: boxes.length, text: box ? box.innerText : '', body: document.body.innerText,
        marked: box ? [...box.querySelectorAll('pre span.mark')].map(e => e.innerText) : [],
        bg: box ? getComputedStyle(box).backgroundColor : ''};
"""


def _overlay_checks(driver: webdriver.Chrome, last_line: int) -> None:
    """Read the overlay in one script (an error event may replace it between two reads), waiting
    for the one about the broken title block: a save can arrive as two events, the first about a
    half-written file."""
    def settled(d: webdriver.Chrome) -> dict[str, Any] | None:
        state: dict[str, Any] = d.execute_script(_STATE)
        return state if f"index.html:{last_line}" in state["text"] else None

    state = WebDriverWait(driver, TIMEOUT).until(settled)
    assert state["count"] == 1
    assert "opened at line 4 is never closed" in state["text"]
    assert any(m.endswith(OPENED) and "4" in m for m in state["marked"]), state["marked"]
    # Opaque: nothing of the page (or of a raw error text) shows through.
    assert state["bg"].startswith("rgb(") and "rgba" not in state["bg"], state["bg"]
    assert "500 Template error" not in state["body"]


def test_overlay_over_live_page_and_as_500_page(make_server: Callable[..., ServerProcess],
                                                broken_site: Path) -> None:
    srv = make_server("--dev", site=broken_site)
    url = srv.url.replace("127.0.0.1", "localhost")
    with chromium(srv.certs.cert_dir / "localhost.pem") as driver:
        driver.get(url)
        WebDriverWait(driver, TIMEOUT).until(
            lambda d: d.execute_script("return window.__pushserveDev && window.__pushserveDev.connected"))
        last = _break(broken_site)
        _overlay_checks(driver, last)
        SHOTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(SHOTS / "overlay-live.png"))

        # A fresh load of the broken page: the 500 page is the overlay, drawn once.
        driver.get(url)
        _overlay_checks(driver, last)
        driver.save_screenshot(str(SHOTS / "overlay-500.png"))


def test_overview_page_in_chromium(make_server: Callable[..., ServerProcess], broken_site: Path) -> None:
    """/_pushserve/ as a user sees it: pages first, each resource's size and verdicts."""
    srv = make_server("--dev", "--push-budget", "60000", site=broken_site)
    with chromium(srv.certs.cert_dir / "localhost.pem") as driver:
        driver.get(srv.url.replace("127.0.0.1", "localhost") + "_pushserve/")
        sections = driver.find_elements(By.CSS_SELECTOR, "section.page")
        assert [s.find_element(By.TAG_NAME, "a").text for s in sections] == ["/", "/features/"]
        first = driver.find_element(By.TAG_NAME, "h2").text
        assert first.startswith("Pages")
        cells = [td.text for td in sections[0].find_elements(By.CSS_SELECTOR, "td")]
        assert "/css/site.css" in cells and "push" in cells and "hint: over the push budget" in cells
        # Each page's next pages: what its Speculation Rules name, and the links left out with why.
        nexts = [li.text for li in sections[0].find_elements(By.CSS_SELECTOR, "ul.next li")]
        assert nexts == ["prefetch /features/", "not speculated /search/ a mounted app (a GET may change its state)"]
        assert driver.find_element(By.ID, "speculation").text == "prefetch"
        driver.set_window_size(1200, driver.execute_script("return document.body.scrollHeight") + 100)
        SHOTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(SHOTS / "pushserve-overview.png"))
