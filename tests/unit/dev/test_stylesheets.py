"""The @import graph behind a CSS swap: the changed sheet, then every sheet importing it."""

from __future__ import annotations

from pushserve.dev.stylesheets import stylesheets_to_swap

SHEETS = {
    "/css/site.css": '@import "typography.css";\n@import url(../theme/colors.css);',
    "/css/typography.css": "@import 'fonts.css'; h1 { color: red }",
    "/css/fonts.css": "/* @import 'commented-out.css'; */ @font-face { src: url(a.woff2) }",
    "/theme/colors.css": "@import '/css/site.css';",  # a cycle: never followed twice
    "/print.css": "@import url('https://cdn.example/other.css');",
}


def swap(*changed: str) -> list[str]:
    return stylesheets_to_swap(changed, SHEETS, lambda url: SHEETS.get(url, ""))


def test_a_leaf_brings_its_importers_nearest_first() -> None:
    assert swap("/css/fonts.css") == ["/css/fonts.css", "/css/typography.css", "/css/site.css",
                                      "/theme/colors.css"]


def test_a_linked_sheet_and_a_cycle() -> None:
    assert swap("/theme/colors.css") == ["/theme/colors.css", "/css/site.css"]
    assert swap("/print.css") == ["/print.css"]


def test_several_changed_each_once_and_an_unknown_one_alone() -> None:
    assert swap("/css/typography.css", "/css/site.css") == ["/css/typography.css", "/css/site.css",
                                                            "/theme/colors.css"]
    assert swap("/css/commented-out.css") == ["/css/commented-out.css"]
