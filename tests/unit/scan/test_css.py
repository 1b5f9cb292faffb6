"""The CSS lexer (pushserve/scan/css.py): the browser's rules for @import and @font-face, and the
same references as tinycss2 — the CSS Syntax Level 3 parser — on the stylesheets of real sites."""

from __future__ import annotations

from pathlib import Path

import mkdocs
import pytest
import sphinx

from pushserve.scan.css import CssRef, font_source, media_of, scan_css
from tests.support.css_oracle import scan_css_tinycss2

ROOT = Path(__file__).resolve().parents[3]
# Stylesheets as sites ship them: the generator fixtures, the example site, and the themes Sphinx
# and MkDocs install (Bootstrap, Font Awesome, their own), all in the test extra.
REAL = sorted({*ROOT.glob("tests/fixtures/sites/**/*.css"), *ROOT.glob("site_example/**/*.css"),
               *Path(mkdocs.__file__).parent.glob("themes/**/*.css"),
               *Path(sphinx.__file__).parent.glob("themes/**/*.css*")})


def test_there_are_real_stylesheets_to_compare() -> None:
    assert len(REAL) > 20
    assert sum(len(scan_css_tinycss2(p.read_text("utf-8", "replace"))) for p in REAL) > 20


@pytest.mark.parametrize("path", REAL, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_same_references_as_tinycss2_on_real_stylesheets(path: Path) -> None:
    css = path.read_text("utf-8", "replace")
    assert scan_css(css) == scan_css_tinycss2(css)


TRICKY = [
    # comments and strings hold what looks like structure
    '/* @import "no.css"; */ @import "a.css"; .x{content:"/*"} .y{background:url(y.png)} /* } */',
    '.a{content:"}"; background:url("b.png")} .c{content:\'{\'} .d{background:url(d.png)}',
    # escapes
    '.e{background:url(e\\)\\ f.png)} .g{background-image:url("g\\"h.png")} \\.h{background:url(h.png)}',
    # @import only before other rules; conditions kept
    '@charset "utf-8"; @layer base; @import url(a.css) layer(base) supports(display:grid) screen;'
    '@import "p.css" print; .x{} @import "late.css";',
    # nesting, grouping rules, @font-face inside @media
    '@media (min-width: 1px) { .hero { background: url(h.jpg) } @font-face { src: url(f.woff2) format("woff2") } }'
    '.card { color: red; & .icon { background: url(i.svg) } .other { mask: url(m.svg) } }',
    # @font-face: the last src, the first format a browser takes
    '@font-face{font-family:FA;src:url(fa.eot?v=4);src:url(fa.eot?#iefix) format("embedded-opentype"),'
    'url(fa.woff2) format("woff2"),url(fa.woff) format("woff"),url(fa.svg#x) format("svg")}',
    '@font-face{src:local(X),url(a.eot),url(a.svg),url(a.ttf)}',
    '@font-face{src:url(a.woff) format(woff) tech(variations), url(b.woff2) format("woff2")}',
    '@font-face{src:url(data:font/woff2;base64,AA==) format("woff2"),url(never.woff)}',
    '@font-face{font-family:X}',
    # not url() function of another name; url in a selector position; unterminated things
    '.x{background:myurl(no.png); mask:URL(yes.png)} @namespace svg url(http://www.w3.org/2000/svg);',
    '.x{background:url(a.png)',
    '.x{content:"unterminated\n; background:url(b.png)}',
]


@pytest.mark.parametrize("css", TRICKY)
def test_same_references_as_tinycss2_on_tricky_css(css: str) -> None:
    assert scan_css(css) == scan_css_tinycss2(css)


def test_import_rules() -> None:
    css = TRICKY[3]
    assert scan_css(css) == [CssRef("import", "a.css", media="layer(base) supports(display:grid) screen"),
                             CssRef("import", "p.css", media="print")]  # not late.css: after a rule
    assert media_of("layer(base) supports(display:grid) screen") == "screen"
    assert media_of("layer print") == "print"


def test_font_face_takes_what_a_browser_takes() -> None:
    fa4, = scan_css(TRICKY[5])  # Font Awesome 4: EOT first, and an EOT-only src before it
    assert fa4 == CssRef("font", "fa.woff2")
    assert [r.ref for r in scan_css(TRICKY[6])] == ["a.ttf"]  # no format(): by name, never eot/svg
    assert [r.ref for r in scan_css(TRICKY[7])] == ["a.woff"]  # the first format the browser takes
    assert scan_css(TRICKY[8]) == []  # an inline font: nothing to fetch
    assert font_source([]) is None


def test_urls_carry_selector_and_property() -> None:
    found = scan_css(TRICKY[4])
    assert found == [
        CssRef("url", "h.jpg", selector=".hero", property="background"),
        CssRef("font", "f.woff2"),
        CssRef("url", "i.svg", selector=".card & .icon", property="background"),
        CssRef("url", "m.svg", selector=".card .other", property="mask"),
    ]
    assert [r.ref for r in scan_css(TRICKY[2])] == ["e) f.png", 'g"h.png', "h.png"]


def test_garbage_never_raises() -> None:
    import random

    rng = random.Random(7)
    alphabet = '@import url("\');{}:,/*\\ \nfont-face src format woff2 .a'
    for _ in range(500):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
        assert all(isinstance(r, CssRef) for r in scan_css(junk))
