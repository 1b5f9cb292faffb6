"""Issue 23, items 1 and 2 in Chromium: a page with an import map and a stylesheet with an odd
name renders with hints on, over HTTP/2 and over HTTP/3.

A module hinted as rel=modulepreload is loaded early, and a 103 can make that happen before the
page's import map is registered: the module's bare import ("three") then fails to resolve and
the page stays blank (3 of 26 cold loads in the issue; 1 of 12 measured here before the change).
pushserve hints such a page's modules as rel=preload; as=script; crossorigin: fetched early, run
only by the page, after its import map.  The stylesheet's name (a space, an ñ) is announced
percent-encoded, so the browser's own request matches the hint, where a raw UTF-8 header was read
as Latin-1 and asked for a 404.  Both go through the one Responder and Stream whatever the
protocol: one cold load over HTTP/2 (through the latency proxy, so the 103 arrives ahead of the
page), one over HTTP/3 (``--bench-think``: the proxy carries no UDP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from pushserve.bench.proxy import ProxyThread
from tests.support.browser import chromium, resource_timings
from tests.support.browser_h3 import chromium_h3, loaded
from tests.support.serverproc import Certs, start

FILES = {
    "index.html": '<!doctype html><html><head><title>import map</title>\n'
                  '<link rel="stylesheet" href="css/estilo mañana.css">\n'
                  '<script type="importmap">{"imports": {"three": "/vendor/three.module.js"}}</script>\n'
                  '<script type="module" src="/js/main.js"></script>\n'
                  '</head><body><p id="out">blank</p></body></html>\n',
    "css/estilo mañana.css": "#out { color: rgb(1, 2, 3) }\n",
    "js/main.js": 'import { scene } from "./scene.js";\n'
                  'document.getElementById("out").textContent = "rendered " + scene;\n',
    "js/scene.js": 'import { THREE } from "three";\nexport const scene = "with " + THREE;\n',
    "vendor/three.module.js": 'export const THREE = "three";\n' + "// a library's weight\n" * 20_000,
}
CSS = "/css/estilo%20ma%C3%B1ana.css"
MODULES = ["/js/main.js", "/js/scene.js", "/vendor/three.module.js"]
HINTED = [CSS, *MODULES]
LINKS = [f"<{CSS}>; rel=preload; as=style", *(f"<{m}>; rel=preload; as=script; crossorigin" for m in MODULES)]
# What the page shows once its modules ran and its stylesheet applied.
STATE = ("const out = document.getElementById('out');"
         "return [out.textContent, getComputedStyle(out).color];")


def check(driver: Any, entries: dict[str, dict[str, Any]], protocol: str) -> None:
    assert driver.execute_script(STATE) == ["rendered with three", "rgb(1, 2, 3)"]
    for path in HINTED:  # each from the 103, taken by the page, fetched once
        assert entries[path]["initiatorType"] == "early-hints", entries
        assert entries[path]["nextHopProtocol"] == protocol, entries
    assert not any("%C3%83" in name for name in entries), entries  # no Latin-1 reading of UTF-8


def test_an_import_map_page_with_an_odd_stylesheet_renders_with_hints(certs: Certs, tmp_path: Path) -> None:
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    server = start(certs, "--no-access-log", "--bench-think", "300ms", site=tmp_path)
    try:
        with httpx.Client(http2=True, verify=certs.client_context(), timeout=20) as c:
            links = c.get(server.url).headers.get_list("link")
        assert links == LINKS  # encoded, and no modulepreload
        with ProxyThread((server.host, server.port), 0.020) as proxy, \
                chromium(certs.cert_dir / "localhost.pem") as driver:
            # get() returns after the load event, and module scripts run before DOMContentLoaded:
            # the page is as it will stay.
            driver.get(f"https://localhost:{proxy.proxy.port}/")
            check(driver, {e["name"]: e for e in resource_timings(driver)}, "h2")
        with chromium_h3(certs, server.port) as driver:
            page = loaded(driver, f"https://localhost:{server.port}/", resources=len(HINTED))
            assert page["nav"]["nextHopProtocol"] == "h3"
            check(driver, {e["name"]: e for e in page["resources"]}, "h3")
    finally:
        server.stop()
