"""The bench loader's resource discovery, checked against what site_example's pages really need
(lists written by hand from reading the templates, CSS and JS)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import jinja2
import pytest

from pushserve.bench.discovery import Found, HtmlScanner, crawl, css_refs, js_imports

SITE = Path(__file__).resolve().parents[2] / "site_example"
ORIGIN = "https://127.0.0.1:8443"


class _Request:
    path = "/"
    args: dict[str, str] = {}


def _render(page: str, path: str) -> str:
    # Rendered here with plain Jinja2 so the test needs no server; the page only uses `site`
    # and `request.path`/`request.args` from the context.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(SITE))
    site = tomllib.loads((SITE / "pushserve.toml").read_text())["site"]
    req = _Request()
    req.path = path
    return env.get_template(page).render(site=site, request=req)


def _fetch(url: str) -> str | None:
    path = SITE / url.removeprefix(ORIGIN + "/")
    return path.read_text() if path.is_file() else None


def _paths(found: list[Found]) -> dict[str, tuple[str, bool]]:
    return {f.url.removeprefix(ORIGIN): (f.kind, f.critical) for f in found}


# Read off base.html, nav.html, visit.html, index.html, css/site.css and js/*.js:
COMMON = {
    "/css/site.css": ("css", True),
    "/css/print.css": ("css", False),  # media=print: fetched, not render-blocking
    "/js/util.js": ("js", True),  # modulepreload, also imported by app.js and nav.js
    "/js/app.js": ("js", True),
    "/img/logo.svg": ("image", False),  # the <img> in the header (the icon link is not counted)
    "/css/typography.css": ("css", True),  # @import in site.css
    "/fonts/dejavu-sans-latin.woff2": ("font", True),  # @font-face in site.css
    "/img/pattern.svg": ("image", False),  # background url() in site.css
    "/js/nav.js": ("js", True),  # static import in app.js
    "/js/visit.js": ("js", True),  # static import in app.js (the "What this visit got" panel)
}
# Not needed for the load: /favicon.ico (icon), /img/streams.svg (loading=lazy),
# /js/clipboard.js (dynamic import()).
INDEX = COMMON | {"/img/hero.png": ("image", False)}


@pytest.mark.skipif(not (SITE / "index.html").is_file(), reason="site_example not present")
def test_index_page_needs_exactly_these_resources() -> None:
    found = crawl(ORIGIN + "/", _render("index.html", "/"), _fetch)
    assert _paths(found) == INDEX
    assert len(found) == len(INDEX)  # each once


@pytest.mark.skipif(not (SITE / "index.html").is_file(), reason="site_example not present")
def test_discovery_order_follows_the_document() -> None:
    order = [f.url.removeprefix(ORIGIN) for f in crawl(ORIGIN + "/", _render("index.html", "/"), _fetch)]
    # Head resources before body images; CSS imports and fonts only after site.css is read.
    assert order.index("/css/site.css") < order.index("/img/logo.svg")
    assert order.index("/css/site.css") < order.index("/css/typography.css")
    assert order.index("/js/app.js") < order.index("/js/nav.js")


def test_html_is_scanned_while_it_streams() -> None:
    html = ('<html><head><link rel="stylesheet" href="a.css"><script type=module src="/m.js">'
            '</script></head><body><img src="x.png"><img loading=lazy src="y.png">'
            '<img src="data:image/png;base64,AAAA"><img src="https://elsewhere.example/z.png">'
            '<style>body{background:url(bg.jpg)}</style></body></html>')
    scanner = HtmlScanner(ORIGIN + "/dir/page.html")
    got: list[str] = []
    # Split mid-tag: the stylesheet is known before the body has arrived.
    scanner.feed(html[:40])
    got += [f.url for f in scanner.take()]
    scanner.feed(html[40:])
    scanner.close()
    got += [f.url for f in scanner.take()]
    assert got == [ORIGIN + "/dir/a.css", ORIGIN + "/m.js", ORIGIN + "/dir/x.png", ORIGIN + "/dir/bg.jpg"]


def test_css_imports_fonts_and_urls() -> None:
    css = """
    /* url(commented.png) */
    @import url("reset.css");
    @import 'theme.css' screen;
    @font-face { font-family: F; src: url(f.woff2) format("woff2"), url(f.woff) format("woff"); }
    .a { background: url( 'img/a.svg' ) } .b { mask: url(#m) } .c { background: url(data:x) }
    """
    assert _paths(css_refs(css, ORIGIN + "/css/x.css")) == {
        "/css/reset.css": ("css", True),
        "/css/theme.css": ("css", True),
        "/css/f.woff2": ("font", True),
        "/css/img/a.svg": ("image", False),
    }


def test_js_static_imports_only() -> None:
    js = """
    import { a } from "./a.js";
    import * as b from '../b.js';
    import "/side-effect.js";
    export { c } from "./c.js";
    import lib from "bare-package";
    // import { no } from "./commented.js";
    const later = await import("./lazy.js");
    """
    assert [f.url.removeprefix(ORIGIN) for f in js_imports(js, ORIGIN + "/js/main.js")] == [
        "/js/a.js", "/b.js", "/side-effect.js", "/js/c.js"]


def test_early_hint_link_headers_name_the_preloads() -> None:
    from pushserve.bench.loader import preload_links

    values = ['</css/site.css>; rel=preload; as=style, </js/util.js>; rel=modulepreload',
              '</fonts/f.woff2>; rel="preload"; as=font; crossorigin', '</next/>; rel=prefetch']
    assert preload_links(values) == ["/css/site.css", "/js/util.js", "/fonts/f.woff2"]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sites"


def _fixture_pages() -> list[tuple[Path, str]]:
    return [(site, page.relative_to(site).as_posix()) for site in sorted(FIXTURES.iterdir()) if site.is_dir()
            for page in sorted(site.rglob("*.html")) if page.name != "404.html"]


@pytest.mark.parametrize(("site", "page"), _fixture_pages(), ids=lambda v: getattr(v, "name", v))
def test_the_bench_expects_what_the_server_announces(site: Path, page: str) -> None:
    """One scanner for both: what the bench counts as critical on a page is what the push
    manifest announces for it (the manifest adds only what a page asks for itself: marked
    images, preloads of other types)."""
    from pushserve.site.manifest import infer_page
    from pushserve.site.paths import SitePaths, page_url

    url = page_url(page)

    def file(u: str) -> Path:
        return site / u.removeprefix(ORIGIN + "/").split("?")[0]

    def fetch(u: str) -> str | None:
        return file(u).read_text("utf-8", "replace") if file(u).is_file() else None

    expected = {f.url.removeprefix(ORIGIN) for f in crawl(ORIGIN + url, (site / page).read_text(), fetch)
                if f.critical and file(f.url).is_file()}
    resources, _ = infer_page((site / page).read_bytes(), url, SitePaths(site))
    announced = {r.url for r in resources if r.type in ("style", "script", "font")}
    assert expected and announced == expected
