"""The page scanner (pushserve/scan/): URLs as browsers request them, what a page makes the
browser fetch and what it does not, import maps, navigation links, and a whole crawl."""

from __future__ import annotations

import pytest

from pushserve.scan import Found, ImportMap, PageScanner, crawl, scan_module
from pushserve.scan.urls import encode_path, normalize_target, origin, resolve

PAGE = "https://site.example/docs/page.html"


@pytest.mark.parametrize(("ref", "expected"), [
    ("css/estilo mañana.css", "https://site.example/docs/css/estilo%20ma%C3%B1ana.css"),
    ("a.css?q=a b'é", "https://site.example/docs/a.css?q=a%20b%27%C3%A9"),
    ('x"<>`{}.css', "https://site.example/docs/x%22%3C%3E%60%7B%7D.css"),
    ("keep[1]|^.css?{a}|^", "https://site.example/docs/keep[1]|^.css?{a}|^"),  # browsers differ: as written
    ("tab\tx.txt", "https://site.example/docs/tabx.txt"),  # the URL parser drops tabs and newlines
    ("tab%09x.txt", "https://site.example/docs/tab%09x.txt"),
    ("%41.txt", "https://site.example/docs/%41.txt"),  # escapes kept as written
    ("..\\up.css", "https://site.example/up.css"),  # a backslash is a slash
    ("  ../a.css#frag ", "https://site.example/a.css"),
    ("//CDN.example/x.js", "https://cdn.example/x.js"),
    ("data:text/css,p{}", None), ("javascript:void(0)", None), ("#top", None), ("", None),
    ("http://[broken", None),
])
def test_resolve_as_a_browser_requests(ref: str, expected: str | None) -> None:
    assert resolve(ref, PAGE) == expected


def test_encoding_helpers() -> None:
    assert encode_path("/a b/é") == "/a%20b/%C3%A9"
    assert normalize_target("/css/estilo mañana.css?v=1 2") == "/css/estilo%20ma%C3%B1ana.css?v=1%202"
    assert normalize_target("/already%20encoded.css") == "/already%20encoded.css"
    assert origin("https://Static.example.org:443/f.woff2") == "https://static.example.org"
    assert origin("https://static.example.org:8443/f.woff2") == "https://static.example.org:8443"


def scan(html: str, url: str = PAGE) -> tuple[list[Found], PageScanner]:
    scanner = PageScanner(url, links=True)
    scanner.feed(html)
    return scanner.found_all(), scanner


def urls(found: list[Found]) -> list[str]:
    return [f.url.removeprefix("https://site.example") for f in found]


def test_what_a_browser_does_not_fetch_is_not_found() -> None:
    found, _ = scan("""
      <link rel=stylesheet href=/a.css>
      <link rel=stylesheet href=/theme-dark.css disabled>
      <link rel="alternate stylesheet" href=/alt.css title=Alt>
      <noscript><link rel=stylesheet href=/noscript.css><img src=/ns.png></noscript>
      <template><img src=/tpl.png><link rel=stylesheet href=/tpl.css></template>
      <link rel=icon href=/favicon.ico><link rel=prefetch href=/next.html>
      <script nomodule src=/legacy.js></script><script type=application/json src=/data.json></script>
      <img src=/lazy.png loading=lazy><img src=/hero.png>
      <link rel=stylesheet href=/print.css media=print>
    """)
    assert urls(found) == ["/a.css", "/hero.png", "/print.css"]
    a, hero, printed = found
    assert a.critical and not hero.critical and not printed.critical


def test_base_moves_what_follows_it() -> None:
    found, _ = scan('<link rel=stylesheet href=a.css><base href="/static/"><script src=b.js></script>'
                    '<base href="/other/"><script src=c.js></script>')
    assert urls(found) == ["/docs/a.css", "/static/b.js", "/static/c.js"]  # the first <base> counts


def test_elements_fetch_modes_and_marks() -> None:
    found, scanner = scan("""
      <script type=module src=m.js crossorigin=use-credentials></script>
      <link rel=preload as=font href=f.woff2><link rel=preload href=noas.bin>
      <img data-push src=a.png><img fetchpriority=high src=b.png>
      <div class="hero big" id=banner data-push></div>
      <style>@import "i.css"; .hero{background:url(h.jpg)}</style>
    """)
    m, f, noas, a, b, i, h = found
    assert m.module and m.cors and m.credentials and m.critical
    assert f.type == "font" and f.cors and f.critical
    assert noas.type == "" and not noas.critical
    assert a.marked and b.marked and b.priority == "high"
    assert i.via == "import" and i.referrer == PAGE and h.selector == ".hero"
    assert scanner.marked == [".hero", ".big", "#banner"]


def test_navigation_links_with_their_attributes() -> None:
    _, scanner = scan('<a href="next page.html" rel=next>n</a><a href="#x">top</a>'
                      '<a href="mailto:a@b">m</a><map><area href=/z.html></map>')
    assert [(link.url, link.attr("rel")) for link in scanner.links] == [
        ("https://site.example/docs/next%20page.html", "next"), ("https://site.example/z.html", "")]


def test_html_in_pieces_finds_the_same() -> None:
    html = '<link rel=stylesheet href="a.css"><script type=module>import "./m.js"</script><img src=x.png>'
    whole, _ = scan(html)
    scanner = PageScanner(PAGE)
    pieces: list[Found] = []
    for i in range(0, len(html), 7):
        scanner.feed(html[i:i + 7])
        pieces += scanner.take()
    assert pieces + scanner.found_all() == whole


def test_import_map_resolves_bare_specifiers() -> None:
    found, scanner = scan("""
      <script type=importmap>{"imports": {"three": "/vendor/three.module.js", "three/addons/": "/vendor/addons/",
                                          "/js/old.js": "/js/new.js", "blocked": null},
                              "scopes": {"/legacy/": {"three": "/vendor/three-old.js"}}}</script>
      <script type=module>import * as THREE from "three"; import "three/addons/orbit.js"; import "unmapped";
                          import "/js/old.js"; import "blocked";</script>
    """)
    assert urls(found) == ["/vendor/three.module.js", "/vendor/addons/orbit.js", "/js/new.js"]
    import_map = scanner.import_map
    assert isinstance(import_map, ImportMap)
    legacy = scan_module('import "three"', "https://site.example/legacy/app.js", import_map)
    assert urls(legacy) == ["/vendor/three-old.js"]
    assert scan_module('import "three"', "https://site.example/app.js") == []  # no map: nothing


def test_crawl_follows_stylesheets_and_modules() -> None:
    files = {
        "https://site.example/css/a.css": '@import "p.css" print; @import "b.css";'
                                          '@font-face{src:url(f.eot);src:url(f.woff2) format("woff2")}',
        "https://site.example/css/b.css": ".x{background:url(../x.png)}",
        "https://site.example/js/m.js": 'import "./n.js"; import("./lazy.js")',
    }
    found = crawl(PAGE, '<link rel=stylesheet href=/css/a.css><script type=module src=/js/m.js></script>',
                  files.get)
    assert [(u, f.critical) for u, f in zip(urls(found), found, strict=True)] == [
        ("/css/a.css", True), ("/js/m.js", True), ("/css/p.css", False), ("/css/b.css", True),
        ("/css/f.woff2", True), ("/js/n.js", True), ("/x.png", False)]
