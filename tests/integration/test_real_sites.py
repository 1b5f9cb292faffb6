"""Sites as generators build them, served by a real pushserve with no flag (issue 16).

Sphinx and MkDocs sites are built in the test from their PyPI packages; Next.js export, Astro,
SvelteKit and Vite are hand-made fixtures in those generators' layouts (tests/fixtures/sites).
Each is checked the same way: every page byte for byte as the file is (code samples full of
`{{ }}` and `{% %}` included), every asset 200, the page's resources announced (103 Link without
push, PUSH_PROMISEs with push), dotfiles 404 and `.well-known/` served.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.gensites import build_mkdocs, build_sphinx
from tests.support.h2client import H2Client
from tests.support.serverproc import Certs, ServerProcess, start

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sites"
INTEGRITY = {  # sha384 of the fixture files (tests/fixtures/sites/README.md)
    "webpack": "sha384-BMJHiHkoxzzom9ZQVlvAiRyjyHQZqZZp7E9n19HJ6dpit3mBu+w8C+GwpUog6rlR",
    "main": "sha384-clvqivne9quJHo/cKTHUzGOs+HBos3ShyYbhnqfabSHQjXZW//6hDODwTCMcnRx5",
}
# (fixture, page URL, page file, the Link values announced for it, in push order)
HAND_MADE = [
    ("nextjs", "/", "index.html", [  # the stylesheet first, though the page preloads the font before it
        "</_next/static/css/8d1e0c.css>; rel=preload; as=style",
        "</_next/static/media/inter-s.p.woff2>; rel=preload; as=font; crossorigin",
        f'</_next/static/chunks/webpack-5f1d.js>; rel=preload; as=script; integrity="{INTEGRITY["webpack"]}"',
        f'</_next/static/chunks/main-app-9a2b.js>; rel=preload; as=script; crossorigin; '
        f'integrity="{INTEGRITY["main"]}"',
        "</_next/static/chunks/app/page-77c1.js>; rel=preload; as=script",  # not the noModule polyfills
    ]),
    ("astro", "/blog/first-post/", "blog/first-post/index.html", [
        "</_astro/index.B2hXk3.css>; rel=preload; as=style",  # not the print sheet
        "</_astro/hoisted.C7v2.js>; rel=modulepreload",
        "</_astro/signal.Bf3.js>; rel=modulepreload",  # imported by the hoisted module
    ]),
    ("sveltekit", "/docs/intro.html", "docs/intro.html", [  # links relative to docs/: ../_app/…
        "</_app/immutable/assets/0.Bm1.css>; rel=preload; as=style",
        "</_app/immutable/entry/start.BQhfA.js>; rel=modulepreload",
        "</_app/immutable/chunks/runtime.CzF.js>; rel=modulepreload",
        "</_app/immutable/entry/app.D5y.js>; rel=modulepreload",
    ]),
    ("vite", "/", "index.html", [
        "</assets/index-C1pQ.css>; rel=preload; as=style; crossorigin",
        "</assets/index-D8xk2.js>; rel=modulepreload",
        "</assets/vendor-Bq7.js>; rel=modulepreload",
    ]),
]


def site_files(root: Path) -> list[str]:
    """Every file a browser may ask for: all but dotfiles (and what is under dot folders)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath, f).relative_to(root).as_posix() for f in filenames if not f.startswith(".")]
    return sorted(found)


def add_dotfiles(root: Path) -> None:
    (root / ".env").write_text("SECRET=1\n")
    (root / ".git").mkdir(exist_ok=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / ".well-known").mkdir(exist_ok=True)
    (root / ".well-known" / "security.txt").write_text("Contact: mailto:security@example.com\n")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("generated")
    sites = {"sphinx": build_sphinx(base / "sphinx"), "mkdocs": build_mkdocs(base / "mkdocs")}
    for root in sites.values():
        add_dotfiles(root)
    return sites


@pytest.fixture
def serve(certs: Certs) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def start_on(certs: Certs, started: list[ServerProcess], site: Path, *flags: str) -> ServerProcess:
    server = start(certs, "--no-access-log", *flags, site=site)  # no flag that concerns the site
    started.append(server)
    return server


def check_every_file(server: ServerProcess, root: Path) -> None:
    """Every file, pages included, is served byte for byte; dotfiles are not; .well-known is."""
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=False)
    try:
        files = site_files(root)
        assert any(f.endswith(".html") for f in files)
        for rel in files:
            reply = c.get("/" + rel)
            assert reply.status == 200, rel
            assert bytes(reply.body) == (root / rel).read_bytes(), rel
        for hidden in ("/.env", "/.git/config", "/.git/", "/pushserve.toml"):
            assert c.get(hidden).status == 404, hidden
        assert bytes(c.get("/.well-known/security.txt").body) == (root / ".well-known/security.txt").read_bytes()
    finally:
        c.close()


def announced(server: ServerProcess, url: str, page: Path) -> list[str]:
    """The Link values of the 103 a client without push gets for ``url``; the page itself must
    be the file, byte for byte."""
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=False)
    try:
        reply = c.get(url)
        assert reply.status == 200 and bytes(reply.body) == page.read_bytes()
        assert len(reply.informational) == 1, reply.informational
        hints = reply.informational[0]
        assert hints[0] == (b":status", b"103")
        return [v.decode() for k, v in hints[1:] if k == b"link"]
    finally:
        c.close()


def pushed(server: ServerProcess, url: str, root: Path) -> list[str]:
    """The URLs pushed with ``url`` to a client that takes pushes; each body is the file's."""
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=True)
    try:
        reply = c.get(url)
        assert reply.status == 200 and not reply.informational
        urls = []
        for push in c.pushes_of(reply.stream_id):
            path = push.path.decode()
            assert push.status == 200, path
            assert bytes(push.body) == (root / urlsplit(path).path.lstrip("/")).read_bytes(), path
            urls.append(path)
        return urls
    finally:
        c.close()


def link_urls(links: list[str]) -> list[str]:
    return [re.match(r"<([^>]*)>", link).group(1) for link in links]  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "url", "page", "links"), HAND_MADE, ids=[h[0] for h in HAND_MADE])
def test_generator_layouts_are_served_with_no_flag(certs: Certs, serve: list[ServerProcess], tmp_path: Path,
                                                   name: str, url: str, page: str, links: list[str]) -> None:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    add_dotfiles(root)
    server = start_on(certs, serve, root)
    check_every_file(server, root)
    assert announced(server, url, root / page) == links
    assert sorted(pushed(server, url, root)) == sorted(u for u in link_urls(links) if u.startswith("/"))


class _Refs(HTMLParser):
    """What a page says it needs: stylesheets (not print) and scripts — read here independently
    of pushserve's own parser."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "link" and "stylesheet" in a.get("rel", "").split() and a.get("media") != "print":
            self.refs.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.refs.append(a["src"])


def same_origin_refs(html: str, page_url: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    absolute = (urljoin("https://x.invalid" + page_url, ref) for ref in parser.refs)
    return [urlsplit(u).path + (f"?{urlsplit(u).query}" if urlsplit(u).query else "")
            for u in absolute if u.startswith("https://x.invalid/")]


@pytest.mark.parametrize(("name", "url", "page"), [
    ("sphinx", "/guide.html", "guide.html"),
    ("sphinx", "/api/reference.html", "api/reference.html"),
    ("mkdocs", "/guide/", "guide/index.html"),
    ("mkdocs", "/api/reference/", "api/reference/index.html"),
])
def test_documentation_generators_are_served_with_no_flag(certs: Certs, serve: list[ServerProcess],
                                                          generated: dict[str, Path], name: str, url: str,
                                                          page: str) -> None:
    root = generated[name]
    html = (root / page).read_text()
    assert "{{" in html  # the code sample reached the page as text
    server = start_on(certs, serve, root)
    check_every_file(server, root)
    links = announced(server, url, root / page)
    urls = link_urls(links)
    expected = same_origin_refs(html, url)
    assert expected and set(expected) <= set(urls)  # queries kept: "pygments.css?v=…"
    if name == "sphinx":
        assert any("?v=" in u for u in urls)
    # Anything more is what the stylesheets pull in (their fonts), or another origin the page loads
    # from, to connect to early (MkDocs' theme takes scripts from a CDN).
    extra = [link for link in links if link_urls([link])[0] not in expected]
    assert all("; as=font; crossorigin" in link or link.endswith(("; rel=preconnect", "; rel=preconnect; crossorigin"))
               for link in extra), extra
    if name == "mkdocs":  # Font Awesome's @font-face fonts
        assert any(u.endswith(".woff2") for u in urls)
    assert sorted(pushed(server, url, root)) == sorted(u for u in urls if u.startswith("/"))  # origins: not pushed
    assert "not a file of the site" not in server.output  # no per-link warning at info level


def test_startup_log_is_a_summary_and_debug_has_the_details(certs: Certs, serve: list[ServerProcess],
                                                             tmp_path: Path) -> None:
    for i in range(30):  # every page links a stylesheet the site does not have
        (tmp_path / f"p{i}.html").write_text('<link rel=stylesheet href="/gone.css"><p>{{ x }}</p>')
    server = start_on(certs, serve, tmp_path)
    server.wait_for(r"push manifest: not announced: 30 links to paths that are not files of the site")
    assert "gone.css" not in server.output
    server.wait_for(r"site: 30 files, 30 \.html, ")  # a start reads no page: which are templates comes later
    debug = start(certs, "--no-access-log", "--log-level", "debug", site=tmp_path)
    serve.append(debug)
    debug.wait_for(r"push manifest: p7.html: /gone.css is not a file of the site")


@pytest.mark.parametrize(("name", "url"), [("vite", "/"), ("nextjs", "/"), ("sphinx", "/guide.html")])
def test_chromium_reuses_every_hint_once(certs: Certs, serve: list[ServerProcess], generated: dict[str, Path],
                                         tmp_path: Path, name: str, url: str) -> None:
    """Module scripts hinted as modulepreload, integrity and crossorigin carried over, queries kept:
    Chromium takes each hinted response for the page's own request and fetches nothing twice.
    (Through the latency proxy, as in test_browser_hints.py: over bare loopback Chromium sometimes
    ignores hints that arrive with the page.)"""
    from pushserve.bench.proxy import ProxyThread
    from tests.support.browser import chromium, navigation_timing, resource_timings, wait_loaded

    root = generated[name] if name in generated else Path(shutil.copytree(FIXTURES / name, tmp_path / name))
    # The page waits 150 ms after its 103 (as in test_browser_hints.py): a loaded Chromium that
    # reads the 103 and the 200 together takes the 200's Link header instead.
    server = start_on(certs, serve, root, "--bench-think", "150ms")
    hinted = {urlsplit(u).path for u in link_urls(announced(server, url, root / (url.strip("/") or "index.html")))}
    assert hinted
    with ProxyThread((server.host, server.port), 0.020) as proxy, \
            chromium(certs.cert_dir / "localhost.pem") as driver:
        driver.get(f"https://localhost:{proxy.proxy.port}{url}")
        wait_loaded(driver, hinted)
        nav, entries = navigation_timing(driver), resource_timings(driver)
    assert 0 < nav["firstInterimResponseStart"] < nav["finalResponseHeadersStart"]
    for path in hinted:
        fetched = [e for e in entries if e["name"] == path]
        assert [e["initiatorType"] for e in fetched] == ["early-hints"], (path, entries)
        assert fetched[0]["transferSize"] == 0, (path, entries)  # the page's request took the hint
