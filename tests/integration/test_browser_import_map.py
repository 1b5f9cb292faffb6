"""Issue 23, item 1: a page with an import map renders in Chromium with hints on.

A module hinted as rel=modulepreload is loaded early, and a 103 can make that happen before the
page's import map is registered: the module's bare import ("three") then fails to resolve and
the page stays blank (3 of 26 cold loads in the issue; 1 of 12 measured here before the change).
pushserve hints such a page's modules as rel=preload; as=script; crossorigin: fetched early, run
only by the page, after its import map.  Each load is a fresh profile through the latency proxy."""

from __future__ import annotations

from pathlib import Path

import httpx

from pushserve.bench.proxy import ProxyThread
from tests.support.browser import chromium, resource_timings
from tests.support.serverproc import Certs, start

FILES = {
    "index.html": '<!doctype html><html><head><title>import map</title>\n'
                  '<script type="importmap">{"imports": {"three": "/vendor/three.module.js"}}</script>\n'
                  '<script type="module" src="/js/main.js"></script>\n'
                  '</head><body><p id="out">blank</p></body></html>\n',
    "js/main.js": 'import { scene } from "./scene.js";\n'
                  'document.getElementById("out").textContent = "rendered " + scene;\n',
    "js/scene.js": 'import { THREE } from "three";\nexport const scene = "with " + THREE;\n',
    "vendor/three.module.js": 'export const THREE = "three";\n' + "// a library's weight\n" * 20_000,
}
MODULES = ["/js/main.js", "/js/scene.js", "/vendor/three.module.js"]
LOADS = 2


def test_an_import_map_page_renders_with_hints(certs: Certs, tmp_path: Path) -> None:
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    server = start(certs, "--no-access-log", site=tmp_path)
    try:
        with httpx.Client(http2=True, verify=certs.client_context(), timeout=20) as c:
            links = c.get(server.url).headers.get_list("link")
        assert links == [f"<{m}>; rel=preload; as=script; crossorigin" for m in MODULES]  # no modulepreload
        for _ in range(LOADS):
            with ProxyThread((server.host, server.port), 0.020) as proxy, \
                    chromium(certs.cert_dir / "localhost.pem") as driver:
                # get() returns after the load event, and module scripts run before DOMContentLoaded:
                # the page is as it will stay.
                driver.get(f"https://localhost:{proxy.proxy.port}/")
                text = driver.execute_script("return document.getElementById('out').textContent")
                entries = {e["name"]: e for e in resource_timings(driver)}
            assert text == "rendered with three"
            for module in MODULES:  # each from the 103, taken by the module loader, fetched once
                assert entries[module]["initiatorType"] == "early-hints", entries
                assert entries[module]["transferSize"] == 0, entries
    finally:
        server.stop()
