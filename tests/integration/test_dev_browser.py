"""Dev mode end to end in headless Chromium: a CSS edit restyles the open page without a
navigation, an HTML edit reloads it, a broken template shows the overlay and fixing it clears it.
Every wait is a WebDriverWait on the effect in the page."""

from __future__ import annotations

import re
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium
from tests.support.serverproc import SITE_EXAMPLE, ServerProcess

TIMEOUT = 20


@pytest.fixture
def site(tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(SITE_EXAMPLE, copy)
    # A page taller than the window, so a kept scroll position means something.
    with (copy / "css" / "site.css").open("a") as f:
        f.write("\n.site-footer { margin-bottom: 3000px; }\n")
    return copy


@pytest.fixture
def page(make_server: Callable[..., ServerProcess], site: Path) -> Iterator[webdriver.Chrome]:
    srv = make_server("--dev", site=site)
    with chromium(srv.certs.cert_dir / "localhost.pem") as driver:
        driver.get(srv.url.replace("127.0.0.1", "localhost"))
        wait_connected(driver)
        yield driver


def wait(driver: webdriver.Chrome, script: str, poll: float = 0.05) -> object:
    """Wait until ``script`` (a JS expression) is truthy in the page; returns its value."""
    return WebDriverWait(driver, TIMEOUT, poll_frequency=poll).until(
        lambda d: d.execute_script(f"return {script}"), message=script)


def wait_connected(driver: webdriver.Chrome) -> None:
    wait(driver, "window.__pushserveDev && window.__pushserveDev.connected")


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


BG = "getComputedStyle(document.body).backgroundColor"


def test_css_swap_html_reload_and_error_overlay(page: webdriver.Chrome, site: Path) -> None:
    driver = page
    # CSS: restyled in place; the marker and the scroll position survive, so no navigation happened.
    driver.execute_script("window.__marker = 'kept'; window.scrollTo(0, 500)")
    scrolled = driver.execute_script("return window.scrollY")
    assert scrolled == 500
    append(site / "css" / "site.css", "\nbody { background-color: rgb(1, 2, 3) !important; }\n")
    wait(driver, f"{BG} === 'rgb(1, 2, 3)'")
    assert driver.execute_script("return window.__marker") == "kept"
    assert driver.execute_script("return window.scrollY") == scrolled
    # The stylesheet was swapped, not added: one link to it remains.
    wait(driver, "document.querySelectorAll('link[href*=\"/css/site.css\"]').length === 1")

    # HTML: the page reloads with the new text.
    index = site / "index.html"
    index.write_text(index.read_text().replace("<h2>Try it</h2>", "<h2>Try it now</h2>", 1))
    wait(driver, "!window.__marker && [...document.querySelectorAll('h2')].some(h => h.textContent === 'Try it now')")
    wait_connected(driver)

    # A broken template: the overlay names the file, the line and the message.
    nav = site / "_partials" / "nav.html"
    good = nav.read_text()
    nav.write_text("{% if %}\n" + good)
    overlay = WebDriverWait(driver, TIMEOUT).until(lambda d: d.find_elements(By.ID, "pushserve-overlay"))[0]
    text = overlay.text
    assert "_partials/nav.html:1" in text and "Template error" in text
    assert "Expected an expression" in text or "expression" in text.lower()

    # Fixed: the overlay goes (and the page reloads, fresh).
    nav.write_text(good)
    WebDriverWait(driver, TIMEOUT).until(lambda d: not d.find_elements(By.ID, "pushserve-overlay"))
    wait_connected(driver)
    assert driver.find_elements(By.TAG_NAME, "nav")


def test_files_the_browser_found_by_itself_are_never_stale(page: webdriver.Chrome, site: Path) -> None:
    """site.css @imports typography.css, which no page links: editing it swaps site.css (its
    importer), whose new copy revalidates typography.css (dev mode serves nothing fresh-cached)
    and gets the edit, without a reload.  A module the page imports: the reload runs the new one.
    Each twice in a row: nothing is kept for a while."""
    driver = page
    driver.execute_script("window.__marker = 'kept'")
    h1 = "getComputedStyle(document.querySelector('h1')).color"
    typography = site / "css" / "typography.css"
    for color in ("rgb(4, 5, 6)", "rgb(7, 8, 9)"):
        append(typography, f"\nh1 {{ color: {color} !important; }}\n")
        wait(driver, f"{h1} === '{color}'")
    assert driver.execute_script("return window.__marker") == "kept"
    wait(driver, "document.querySelectorAll('link[href*=\"/css/site.css\"]').length === 1")
    app = site / "js" / "app.js"
    for n in range(2):
        append(app, f"\nwindow.__edit = {n};\n")
        wait(driver, f"window.__edit === {n} && window.__pushserveDev.connected")


def test_image_swapped_in_place(page: webdriver.Chrome, site: Path) -> None:
    driver = page
    driver.execute_script("window.__marker = 'kept'")
    logo = site / "img" / "logo.svg"
    logo.write_text(logo.read_text().replace("</svg>", "<!-- new --></svg>"))
    wait(driver, "[...document.querySelectorAll('img, link[rel~=icon]')]"
                 ".some(e => (e.src || e.href).includes('logo.svg?_pushserve='))")
    assert driver.execute_script("return window.__marker") == "kept"


def test_measure_write_to_browser(page: webdriver.Chrome, site: Path) -> None:
    """Not a pass/fail on speed (that lives in the report): time from the file write to the
    browser showing it, for a CSS swap and for a page reload, 7 tries each."""
    driver = page
    css_times: list[float] = []
    for i in range(7):
        color = f"rgb({i + 10}, 20, 30)"
        t0 = time.perf_counter()
        append(site / "css" / "site.css", f"\nbody {{ background-color: {color} !important; }}\n")
        wait(driver, f"{BG} === '{color}'", poll=0.005)
        css_times.append((time.perf_counter() - t0) * 1000)
    index = site / "index.html"
    reload_times: list[float] = []
    for i in range(7):
        wait_connected(driver)
        text = index.read_text()
        t0 = time.perf_counter()
        index.write_text(re.sub(r"<h2>(v\d+ )?Try it", f"<h2>v{i} Try it", text, count=1))
        wait(driver, f"[...document.querySelectorAll('h2')].some(h => h.textContent.startsWith('v{i} '))",
             poll=0.005)
        reload_times.append((time.perf_counter() - t0) * 1000)
    print(f"\nwrite → browser: CSS swap median {statistics.median(css_times):.0f} ms "
          f"({', '.join(f'{t:.0f}' for t in css_times)}); page reload median "
          f"{statistics.median(reload_times):.0f} ms ({', '.join(f'{t:.0f}' for t in reload_times)})")
    assert len(css_times) == len(reload_times) == 7
