"""The page scanner's tokenizer against html.parser (tests/support/html_oracle.py): the same
fetches, marks, links and import map on the pages of real sites and on markup that is hard to
read, whole or in pieces."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pushserve.scan import PageScanner
from tests.support.html_oracle import oracle_scan

ROOT = Path(__file__).resolve().parents[3]
URL = "https://site.example/docs/page.html"


def _site_example_pages() -> list[tuple[str, str]]:
    import tomllib

    from pushserve.site.templates import Templates

    site = ROOT / "site_example"
    variables = tomllib.loads((site / "pushserve.toml").read_text())["site"]
    templates = Templates(site, site=variables, mode="auto")
    templates.scan()
    pages = [p.relative_to(site).as_posix() for p in sorted(site.rglob("*.html"))]
    return [(p, templates.render_static(p).decode()) for p in pages if p not in templates.private]


def real_pages() -> list[tuple[str, str]]:
    pages = [(p.relative_to(ROOT).as_posix(), p.read_text("utf-8", "replace"))
             for p in sorted((ROOT / "tests" / "fixtures" / "sites").rglob("*.html"))]
    return pages + _site_example_pages()


HARD = [
    '<!-- <link rel=stylesheet href=commented.css> --><link rel=stylesheet href=a.css>',
    '<script>document.write("<link rel=stylesheet href=in-script.css>")</script><script src=b.js></script>',
    '<textarea><img src=in-textarea.png></textarea><title><img src=t.png></title><img src=c.png>',
    '<noscript><link rel=stylesheet href=ns.css></noscript><template><img src=tpl.png><template><img src=t2.png>'
    '</template><img src=t3.png></template><img src=d.png>',
    '<div title="a > b <link rel=stylesheet href=attr.css>"></div><link rel=stylesheet href=e.css>',
    "<LINK REL=StyleSheet HREF='f.css' MEDIA=\"print\"><ScRiPt TYPE=module SRC=g.js></sCrIpT>",
    '<link rel=stylesheet href="a&amp;b.css?x=1&amp;y=2"><img src=h.png data-push class="hero big" id=i>',
    '<link rel=preload as=font href=f.woff2 crossorigin><link rel=modulepreload href=m.js>'
    '<script type=importmap>{"imports":{"x":"/x.js"}}</script><script type=module>import "x";</script>',
    '<style>@import "s.css"; .hero{background:url(hero.jpg)}</style><div class=hero data-push></div>',
    '<a href="next.html" rel=next>n</a><area href=/z.html><a name=nohref>',
    '<link rel=stylesheet href=unclosed.css',
    '<script src=x.js><!-- </script> --><img src=after.png>',
    '<img src="a.png"src="b.png"><img/src=slash.png><img src = spaced.png >',
    '<base href="/static/"><link rel=stylesheet href=k.css><base href=/other/><script src=l.js></script>',
    '<svg><style>.a{background:url(svg-bg.png)}</style><image href=x.png /></svg><img src=m.png>',
    '<iframe src=frame.html><img src=in-iframe.png></iframe><xmp><img src=xmp.png></xmp><img src=n.png>',
]


def _same(html: str) -> None:
    scanner = PageScanner(URL, links=True)
    scanner.feed(html)
    found = scanner.found_all()
    expected, oracle = oracle_scan(URL, html)
    assert found == expected
    assert scanner.links == oracle.links
    assert scanner.marked == oracle.marked
    assert (scanner.import_map or None) == (oracle.import_map or None)


@pytest.mark.parametrize(("name", "html"), real_pages(), ids=lambda v: v if len(v) < 80 else "")
def test_same_as_html_parser_on_real_pages(name: str, html: str) -> None:
    _same(html)


@pytest.mark.parametrize("html", HARD)
def test_same_as_html_parser_on_hard_markup(html: str) -> None:
    _same(html)


def test_pieces_of_any_size_find_the_same() -> None:
    rng = random.Random(3)
    for html in HARD + [html for _, html in real_pages()[:6]]:
        whole = PageScanner(URL, links=True)
        whole.feed(html)
        expected = whole.found_all()
        for _ in range(5):
            scanner = PageScanner(URL, links=True)
            found = []
            i = 0
            while i < len(html):
                step = rng.randrange(1, 40)
                scanner.feed(html[i:i + step])
                found += scanner.take()
                i += step
            assert found + scanner.found_all() == expected
            assert scanner.links == whole.links


def test_garbage_never_raises() -> None:
    rng = random.Random(1234)
    alphabet = '<>/="\' \nabcdefghijklmnopqrstuvwxyz-!&;#\x00\xff\xc3'
    for _ in range(300):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        scanner = PageScanner(URL, links=True)
        scanner.feed('<link rel=stylesheet href=a.css>' + junk)
        assert scanner.found_all()[0].url.endswith("/a.css")
