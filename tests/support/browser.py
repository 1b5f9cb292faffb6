"""Headless Chromium (Debian's package) driven through chromedriver with Selenium.

Chromium acts on 103 Early Hints only when the certificate verifies with no error, so an SPKI
hash is passed in --ignore-certificate-errors-spki-list (plain --ignore-certificate-errors makes it
fetch the hinted files and throw them away): the first certificate's of the file given, or a pin
given as is (the CA's, as `pushserve cert --spki` prints it, works for every leaf it signs)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from pushserve.certificates import spki_sha256_b64

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
    "--window-size=1200,900",
]


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{names[0]} is not installed: the README's test command installs chromium and chromium-driver")


@contextmanager
def chromium(leaf_cert: Path | None = None, *, spki: str | None = None) -> Iterator[webdriver.Chrome]:
    assert (leaf_cert is None) != (spki is None), "give a certificate file or a pin"
    pin = spki if spki is not None else spki_sha256_b64(leaf_cert)  # type: ignore[arg-type]
    opts = Options()
    opts.binary_location = _binary("chromium", "chromium-browser")
    with tempfile.TemporaryDirectory(prefix="pushserve-chromium-") as profile:
        for flag in CHROMIUM_FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={profile}")
        opts.add_argument(f"--ignore-certificate-errors-spki-list={pin}")
        driver = webdriver.Chrome(options=opts, service=Service(_binary("chromedriver")))
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()


_LOADED = """
const n = performance.getEntriesByType('navigation')[0];
if (!n || !(n.loadEventEnd > 0) || !n.nextHopProtocol) return null;
const names = new Set(performance.getEntriesByType('resource').filter((e) => e.responseEnd > 0)
  .map((e) => new URL(e.name).pathname));
return arguments[0].every((p) => names.has(p));
"""


def wait_loaded(driver: webdriver.Chrome, paths: Iterable[str] = (), timeout: float = 30) -> None:
    """Wait until the page's load has finished and been recorded — its navigation entry has its
    protocol and load end, and each of ``paths`` (URL paths) has a finished resource entry — so
    what a test reads next is the browser's final word, not a half-filled entry (``driver.get``
    can return before Chromium has filled them in on a loaded machine)."""
    wanted = sorted(paths)
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(_LOADED, wanted), message=f"page load not recorded (waiting for {wanted})")


def resource_timings(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => ({name: new URL(e.name).pathname,"
        " initiatorType: e.initiatorType, transferSize: e.transferSize, nextHopProtocol: e.nextHopProtocol}))")
    return entries


def navigation_timing(driver: webdriver.Chrome) -> dict[str, Any]:
    nav: dict[str, Any] = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {firstInterimResponseStart: n.firstInterimResponseStart, nextHopProtocol: n.nextHopProtocol,"
        " responseStart: n.responseStart, finalResponseHeadersStart: n.finalResponseHeadersStart,"
        " loadEventEnd: n.loadEventEnd}")
    return nav
