"""Compression Dictionary Transport with a real browser: headless Chromium (certificate pinned
by SPKI, so the origin is a secure context) loads a page whose ~100 KB script has a hashed name;
a deploy changes one line of it (new hash, new name).  The returning visit advertises the old
version in Available-Dictionary and gets the new one as a dcz delta.

Chromium advertises ``dcz`` in Accept-Encoding only on requests for which it holds a matching
dictionary; otherwise its Accept-Encoding is ``gzip, deflate, br, zstd``."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import zstandard
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium, wait_loaded
from tests.support.serverproc import ServerProcess

_TIMINGS = ("return performance.getEntriesByType('resource').filter(e => e.name.includes('/js/'))"
            ".map(e => ({name: new URL(e.name).pathname, transferSize: e.transferSize,"
            " encodedBodySize: e.encodedBodySize, decodedBodySize: e.decodedBodySize}))")


def _script() -> bytes:
    rng = random.Random(15)
    words = ["push", "stream", "frame", "window", "header", "value", "cache", "render", "token", "node"]
    lines = [f"export function f{i}(a, b) {{ return a.{rng.choice(words)}(b, '{rng.choice(words)}"
             f"{rng.randint(0, 9999)}') + {rng.randint(0, 99999)}; }}" for i in range(1400)]
    return ("\n".join(lines) + "\n").encode()


def _publish(site: Path, js: bytes) -> str:
    """A build's output: the script under its content hash, and the page that loads it."""
    for old in (site / "js").glob("*.js"):
        old.unlink()
    name = f"/js/app.{hashlib.sha256(js).hexdigest()[:10]}.js"
    (site / name.lstrip("/")).write_bytes(js)
    (site / "index.html").write_text(f'<!doctype html><title>deploy</title><script type="module" src="{name}">'
                                     '</script><p>hello</p>\n')
    return name


def _until_served(srv: ServerProcess, name: str) -> None:
    """The server looks at a file again a second after it last did: wait until the page it
    serves names the new script."""
    deadline = time.monotonic() + 15
    with httpx.Client(verify=srv.certs.client_context(), timeout=10) as c:
        while name not in c.get(srv.url).text:
            assert time.monotonic() < deadline, "the server never served the new page"
            time.sleep(0.05)


def test_returning_visit_downloads_a_delta(make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    v1 = _script()
    v2 = v1.replace(b"f700(a, b)", b"f700(a, b, c)", 1)  # the one-line change
    assert 95_000 < len(v1) < 105_000
    first = _publish(site, v1)
    # --push off: no 103 either, so each script response is the page's own fetch and its
    # transferSize counts (a response taken from Early Hints reports 0).
    srv = make_server("--push", "off", "--dictionary-dir", str(tmp_path / "dicts"), site=site)
    with chromium(srv.certs.cert_dir / "localhost.pem") as driver:
        driver.get(f"https://localhost:{srv.port}/")
        wait_loaded(driver, [first])
        before: list[dict[str, Any]] = driver.execute_script(_TIMINGS)
        assert driver.execute_script("return window.isSecureContext")
        second = _publish(site, v2)
        assert second != first
        _until_served(srv, second)
        driver.get(f"https://localhost:{srv.port}/")
        wait_loaded(driver, [second])
        after: list[dict[str, Any]] = driver.execute_script(_TIMINGS)
    [old_entry] = [e for e in before if e["name"] == first]
    [new_entry] = [e for e in after if e["name"] == second]
    plain_zstd = len(zstandard.ZstdCompressor(level=19).compress(v2))
    print(f"\nfirst visit {first}: transferSize {old_entry['transferSize']}, encodedBodySize "
          f"{old_entry['encodedBodySize']} (zstd); returning visit {second}: transferSize "
          f"{new_entry['transferSize']}, encodedBodySize {new_entry['encodedBodySize']} (dcz); "
          f"plain zstd -19 of the new file: {plain_zstd} bytes; identity {len(v2)} bytes")
    assert new_entry["decodedBodySize"] == len(v2)
    assert f'"GET {second}" 200' in srv.output and " dcz " in srv.output
    assert new_entry["encodedBodySize"] < plain_zstd / 20
    assert 0 < new_entry["transferSize"] < plain_zstd / 10


def _wait(driver: Any, script: str) -> None:
    WebDriverWait(driver, 20, poll_frequency=0.05).until(lambda d: d.execute_script(f"return {script}"),
                                                         message=script)
