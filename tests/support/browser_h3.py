"""Headless Chromium over HTTP/3 to a pushserve on this machine.

Chromium speaks QUIC to an origin only once it knows the origin does (Alt-Svc), or when told to
with ``--origin-to-force-quic-on``; and it accepts the QUIC handshake only from a certificate it
trusts through a CA in its NSS database (an SPKI pin is not enough), so the browser runs with a
HOME of its own where ``pushserve cert --trust`` put the development CA.  ``localhost`` must
resolve to 127.0.0.1 alone (``--host-resolver-rules``): the QUIC handshake fails on ``::1``,
where nothing listens."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from tests.conftest import need
from tests.support.browser import CHROMIUM_FLAGS, _binary
from tests.support.serverproc import REPO, Certs


@contextmanager
def chromium_h3(certs: Certs, port: int) -> Iterator[webdriver.Chrome]:
    need("certutil")
    with tempfile.TemporaryDirectory(prefix="pushserve-chromium-h3-") as home:
        env = {**certs.env(), "HOME": home}
        trusted = subprocess.run([sys.executable, "-m", "pushserve", "cert", "--trust", "--cert-dir",
                                  str(certs.cert_dir)], env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
        assert trusted.returncode == 0, trusted.stderr
        opts = Options()
        opts.binary_location = _binary("chromium", "chromium-browser")
        for flag in CHROMIUM_FLAGS:
            if flag != "--disable-quic":
                opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={home}/profile")
        opts.add_argument(f"--origin-to-force-quic-on=localhost:{port}")
        opts.add_argument("--host-resolver-rules=MAP localhost 127.0.0.1")
        driver = webdriver.Chrome(options=opts, service=Service(_binary("chromedriver"), env=env))
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()


def loaded(driver: webdriver.Chrome, url: str, resources: int = 0, timeout: float = 30.0) -> dict[str, Any]:
    """Load ``url`` and wait until its navigation entry is complete (protocol known, load event
    ended) and at least ``resources`` resource entries have finished; returns them both."""
    driver.get(url)
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return {nav: n && {nextHopProtocol: n.nextHopProtocol, loadEventEnd: n.loadEventEnd,"
            " firstInterimResponseStart: n.firstInterimResponseStart,"
            " finalResponseHeadersStart: n.finalResponseHeadersStart},"
            " resources: performance.getEntriesByType('resource').filter(e => e.responseEnd > 0).map(e =>"
            " ({name: new URL(e.name).pathname, initiatorType: e.initiatorType,"
            " nextHopProtocol: e.nextHopProtocol, transferSize: e.transferSize}))}")
        nav = found["nav"]
        if nav and nav["nextHopProtocol"] and nav["loadEventEnd"] > 0 and len(found["resources"]) >= resources:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not finish loading: {found}")
        time.sleep(0.05)  # polling the page's own record of the load, not a readiness guess
