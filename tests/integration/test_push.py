"""Server push, 103 Early Hints and Link preload against a real pushserve on site_example."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import need
from tests.support.h2client import H2Client
from tests.support.serverproc import SITE_EXAMPLE, Certs, ServerProcess, run_cli

EXPECTED = Path(__file__).resolve().parent.parent / "unit" / "site" / "expected_manifest_site_example.json"


def expected_index() -> list[str]:
    return list(json.loads(EXPECTED.read_text())["index.html"])


def expected_links(page: str = "index.html") -> list[str]:
    values = []
    for path, spec in json.loads(EXPECTED.read_text())[page].items():
        if spec.get("module"):  # module scripts: rel=modulepreload, CORS mode by definition
            values.append(f"<{path}>; rel=modulepreload")
            continue
        value = f"<{path}>; rel=preload; as={spec['type']}"
        if spec.get("crossorigin"):
            value += "; crossorigin"
        values.append(value)
    return values


def test_manifest_command_matches_hand_checked_manifest(certs: Certs) -> None:
    result = run_cli(certs, "manifest", "site_example")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(EXPECTED.read_text())


def test_pushes_equal_manifest_and_bodies_equal_files(server: ServerProcess) -> None:
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=True)
    try:
        page = c.get("/")
        assert page.status == 200
        pushes = c.pushes_of(page.stream_id)
        paths = [p.path.decode() for p in pushes]
        assert sorted(paths) == sorted(expected_index())
        for p in pushes:
            assert p.status == 200
            assert bytes(p.body) == (SITE_EXAMPLE / p.path.decode().lstrip("/")).read_bytes()
            assert p.header(b"etag") is not None and p.header(b"content-type") is not None
            # Promise request headers are those of a GET, never response headers.
            names = {k for k, _ in p.request_headers}
            assert {b":method", b":scheme", b":authority", b":path"} <= names
            assert not names & {b"content-type", b"etag", b"set-cookie", b"content-length"}
        assert not page.informational  # a pushing client gets no 103
        # Styles and fonts are promised first, then scripts, then images.
        kinds = [json.loads(EXPECTED.read_text())["index.html"][p]["type"] for p in paths]
        order = {"style": 0, "font": 0, "script": 1, "fetch": 2, "image": 2}
        assert [order[k] for k in kinds] == sorted(order[k] for k in kinds)
        # A second load on the same connection pushes nothing again.
        again = c.get("/")
        assert again.status == 200 and c.pushes_of(again.stream_id) == []
    finally:
        c.close()


def test_reset_push_is_honoured(server: ServerProcess) -> None:
    # The client does not reopen its 64 KB window, so the pushes stall part-way; it then resets the
    # largest push ("I have it cached") and reopens the window.
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=True, auto_window=False)
    try:
        sid = c.request("/")
        received = 0
        while received < 65535:
            c.read_once()
            received = sum(len(r.body) for r in c.replies.values())
        hero = next(p for p in c.pushes_of(sid) if p.path == b"/img/hero.png")
        assert not hero.done
        c.reset(hero.stream_id)
        before = len(hero.body)
        frames_before = len(c.frames)
        c.auto_window = True
        c.conn.increment_flow_control_window(received)
        for r in c.replies.values():
            if not r.done and r.body:
                c.conn.increment_flow_control_window(len(r.body), r.stream_id)
        c.flush()
        c.wait(sid)
        assert hero.reset == 0x8 and before < 47746
        others = [p for p in c.pushes_of(sid) if p is not hero]
        for p in others:
            assert p.status == 200
            assert bytes(p.body) == (SITE_EXAMPLE / p.path.decode().lstrip("/")).read_bytes()
        assert c.get("/css/site.css").status == 200  # the connection lives on
        # The window was exhausted when we reset, so nothing for the refused push was in flight:
        # any DATA for it afterwards would mean the server ignored the reset.
        assert [f for f in c.frames[frames_before:] if f[0] == 0x0 and f[2] == hero.stream_id] == []
    finally:
        c.close()


def test_no_push_when_client_disables_it_103_instead(server: ServerProcess) -> None:
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=False)
    try:
        page = c.get("/")
        assert c.pushes_of(page.stream_id) == []
        assert len(page.informational) == 1
        hints = page.informational[0]
        assert dict(hints)[b":status"] == b"103"
        links = [v.decode() for k, v in hints if k == b"link"]
        assert links == expected_links()
        assert [v.decode() for v in page.all(b"link")] == expected_links()
    finally:
        c.close()


def test_returning_client_with_cookie_gets_nothing_pushed(server: ServerProcess) -> None:
    first = H2Client(server.host, server.port, server.certs.client_context(), enable_push=True)
    try:
        page = first.get("/")
        cookie = page.header(b"set-cookie")
        assert cookie is not None and cookie.startswith(b"pushserve-cache=")
        assert len(first.pushes_of(page.stream_id)) == len(expected_index())
    finally:
        first.close()
    again = H2Client(server.host, server.port, server.certs.client_context(), enable_push=True)
    try:
        page = again.get("/", [(b"cookie", cookie.split(b";")[0])])
        assert page.status == 200
        assert again.pushes_of(page.stream_id) == []
        assert page.all(b"link") == []
    finally:
        again.close()


def test_push_off_sends_neither_push_nor_hints(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("--push", "off")
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=True)
    try:
        page = c.get("/")
        assert page.status == 200 and c.pushes_of(page.stream_id) == [] and not page.informational
        assert page.all(b"link") == []
    finally:
        c.close()


def test_hints_mode_never_pushes(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("--push", "hints")
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=True)
    try:
        page = c.get("/")
        assert c.pushes_of(page.stream_id) == []
        assert [v.decode() for k, v in page.informational[0] if k == b"link"] == expected_links()
    finally:
        c.close()


def test_nghttp_shows_push_promises(server: ServerProcess, make_server: Callable[..., ServerProcess]) -> None:
    out = subprocess.run([need("nghttp"), "-ans", server.url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    # nghttp marks responses the server pushed with '*' before their requestStart.
    promised = set(re.findall(r"^\s*\d+\s+\S+\s+\*\s+.*\s(/\S+)$", out.stdout, re.M))
    assert {"/css/site.css", "/js/app.js", "/fonts/dejavu-sans-latin.woff2"} <= promised, out.stdout
    off = make_server("--push", "off")
    out = subprocess.run([need("nghttp"), "-nv", off.url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "PUSH_PROMISE" not in out.stdout and ":status: 103" not in out.stdout


def _curl_statuses_and_links(url: str, ca: Path, *flags: str) -> tuple[list[str], list[list[str]]]:
    out = subprocess.run([need("curl"), "-sv", *flags, "--cacert", str(ca), "-o", "/dev/null", url],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = [line[2:] for line in out.stderr.splitlines() if line.startswith("< ")]
    starts = [i for i, line in enumerate(lines) if re.match(r"HTTP/\S+ \d{3}", line)]
    blocks = [lines[a:b] for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    links = [[line.split(": ", 1)[1] for line in block if line.lower().startswith("link:")] for block in blocks]
    return [lines[i].split()[1] for i in starts], links


def test_curl_shows_103_then_200_with_links(server: ServerProcess) -> None:
    statuses, links = _curl_statuses_and_links(server.url, server.certs.ca_file, "--http2")
    assert statuses == ["103", "200"]
    assert links == [expected_links(), expected_links()]


def test_http1_gets_links_on_the_200_and_a_103_only_when_asked_for(
        server: ServerProcess, make_server: Callable[..., ServerProcess]) -> None:
    statuses, links = _curl_statuses_and_links(server.url, server.certs.ca_file, "--http1.1")
    assert statuses == ["200"] and links == [expected_links()]
    h1_hints = make_server("--hints-http1")
    statuses, links = _curl_statuses_and_links(h1_hints.url, h1_hints.certs.ca_file, "--http1.1")
    assert statuses == ["103", "200"] and links == [expected_links(), expected_links()]


def test_103_goes_to_navigations_not_to_fetches(server: ServerProcess) -> None:
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=False)
    try:
        navigation = c.get("/", [(b"sec-fetch-dest", b"document"), (b"sec-fetch-mode", b"navigate")])
        fetched = c.get("/features/", [(b"sec-fetch-dest", b"empty"), (b"sec-fetch-mode", b"cors")])
    finally:
        c.close()
    assert [h[0] for h in navigation.informational] == [(b":status", b"103")]
    assert fetched.informational == [] and fetched.all(b"link")  # the 200 still names them


def test_server_timing_says_where_the_page_time_went(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("--bench-think", "150ms")
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=False)
    try:
        page = c.get("/")
        asset = c.get("/css/site.css")
    finally:
        c.close()
    timing = page.header(b"server-timing")
    assert timing is not None and re.fullmatch(rb"think;dur=150, render;dur=\d+\.\d", timing), timing
    assert page.informational and page.status == 200  # the 103 left before the think time
    assert asset.header(b"server-timing") is None  # files wait for nothing


def test_cross_origin_stylesheet_and_lcp_image_in_the_103(make_server: Callable[..., ServerProcess],
                                                          tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "hero.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (site / "index.html").write_text(
        '<!doctype html><link rel=stylesheet href="https://fonts.example.com/css2?family=Inter">'
        '<img src="/img/hero.jpg" fetchpriority="high" alt=""><p>hi</p>\n')
    srv = make_server("--push", "hints", site=site)
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=False)
    try:
        page = c.get("/")
    finally:
        c.close()
    expected = [b"<https://fonts.example.com>; rel=preconnect",
                b"</img/hero.jpg>; rel=preload; as=image; fetchpriority=high"]
    (hint,) = page.informational
    assert [v for k, v in hint if k == b"link"] == expected
    assert page.all(b"link") == expected
