"""Issue 23: a 30,000-page site served at once and while every page is read in the background.

A start reads no page: the log says what the folder holds (counted, not read), the first page
asked for is answered — its push manifest entry inferred on the spot — while the worker's
background build has thousands of pages to go, and pages keep being answered while it runs (500
of them; the build's end is left to the unit tests).  The times are printed, not asserted
(benchmarks/big_site.py measures them)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmarks.big_site import generate
from tests.support.h2client import H2Client
from tests.support.serverproc import Certs, start

PAGES = 30_000


@pytest.fixture(scope="module")
def big_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("big") / "site"
    urls = generate(root, PAGES, padding=600, links=True)
    return root, urls


def test_a_big_site_is_served_at_once_and_while_its_manifest_builds(certs: Certs,
                                                                    big_site: tuple[Path, list[str]]) -> None:
    root, urls = big_site
    started = time.monotonic()
    server = start(certs, "--no-access-log", "--push", "hints", site=root)
    try:
        c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=False)
        try:
            first = c.get(urls[PAGES // 2])
            first_200 = time.monotonic() - started
            assert first.status == 200
            hints = [v for k, v in first.informational[0] if k == b"link"] if first.informational else []
            assert hints[:2] == [b"</static.files/normalize-9960930a.css>; rel=preload; as=style",
                                 b"</static.files/rustdoc-b7b9f40b.css>; rel=preload; as=style"]
            assert not any(b"noscript" in h for h in hints)  # a browser running scripts never loads it
            during: list[float] = []
            i = 0
            while "push manifest: 30000 pages, " not in server.output and i < 500:
                t0 = time.perf_counter()
                reply = c.get(urls[(i * 7919) % PAGES])
                during.append(time.perf_counter() - t0)
                assert reply.status == 200, urls[(i * 7919) % PAGES]
                i += 1
        finally:
            c.close()
        # The start counted the folder and read no page; requests went on while every page was read.
        assert "site: 30,008 files, 30,000 .html, 1 private path" in server.output
        assert len(during) >= 20, "the background build held the worker"
        during.sort()
        print(f"\nfirst 200 after {first_200:.2f} s; {len(during)} pages while the manifest built: "
              f"p50 {during[len(during) // 2] * 1000:.1f} ms, p99 {during[int(len(during) * 0.99)] * 1000:.1f} ms")
    finally:
        server.stop()
