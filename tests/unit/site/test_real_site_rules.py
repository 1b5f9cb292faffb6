"""Issue 23, in memory (real cores, no sockets): a worker that serves before it has read the site,
and the hints a browser can use — none that races an import map, none it never fetches, URLs it
asks for exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.app import build
from pushserve.config import Config
from pushserve.site.manifest import infer_page
from pushserve.site.manifest_store import PushManifest
from pushserve.site.paths import SitePaths
from tests.support.memory import PROTOCOLS, PUSHING, capabilities, session


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
    return root


# -- a start reads no page ----------------------------------------------------------------------

TEMPLATE_SITE = {
    "_layouts/base.html": "<title>{% block title %}{% endblock %}</title>{% include '_partials/nav.html' %}"
                          "{% block body %}{% endblock %}",
    "_partials/nav.html": "<nav>{% if request.path == '/' %}home{% endif %}</nav>",
    "page.html": "{% extends '_layouts/base.html' %}{% block title %}P{% endblock %}",
    "plain.html": "<p>generator output, a code sample: {{ x }}</p>",
    "sample.html": "<pre>{% raw %}{% if a %}{% endraw %}</pre>",  # documentation of a template language
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pages_that_may_hold_template_logic_wait_for_the_survey(tmp_path: Path, protocol: str) -> None:
    app = build(Config(site=write(tmp_path, TEMPLATE_SITE), access_log=False, push="off"))
    s = session(protocol, app)
    plain = s.get("/plain.html")
    assert plain.done and plain.status == 200  # no statement: served at once, byte for byte
    assert bytes(plain.body) == (tmp_path / "plain.html").read_bytes()
    waiting = [s.request(p) for p in ("/page.html", "/_partials/nav.html", "/_layouts/base.html", "/sample.html")]
    assert not any(s.replies[sid].headers for sid in waiting)  # not answered: not known yet
    content = app.responder.content  # type: ignore[attr-defined]
    assert not content.templates.surveyed
    for _ in content.survey_steps():  # what a worker does in its background
        pass
    s.pump()
    page, nav, base, sample = (s.replies[sid] for sid in waiting)
    assert page.status == 200 and bytes(page.body) == b"<title>P</title><nav></nav>"
    assert nav.status == 404 and base.status == 404  # found template-only by the page naming them
    assert sample.status == 200 and bytes(sample.body) == (tmp_path / "sample.html").read_bytes()


def test_the_survey_makes_layouts_private_as_it_finds_them(tmp_path: Path) -> None:
    app = build(Config(site=write(tmp_path, TEMPLATE_SITE), access_log=False))
    content = app.responder.content  # type: ignore[attr-defined]
    before = set(content.private)
    assert before == {"pushserve.toml"}
    seen_private = [set(content.private) for _ in content.survey_steps()]
    # page.html, read first, names its layout and that its partial: private from then on, not
    # only once the survey is over.
    assert len(seen_private) == 5 and seen_private[0] == before | {"_layouts/base.html", "_partials/nav.html"}


def test_the_background_build_goes_in_small_steps(tmp_path: Path) -> None:
    big = "<p>" + "x" * 300_000 + "</p>"
    write(tmp_path, {"big.html": f"<link rel=stylesheet href=a.css>{big}<script src=b.js></script>",
                     "a.css": "", "b.js": ""})
    manifest, _ = PushManifest.build(tmp_path, lazy=True)
    steps = list(manifest.build_steps())
    assert steps[-1] == "big.html" and steps.count(None) >= 300_000 // (64 * 1024)  # a piece of the page each
    assert [r.path for r in manifest.resources_for("big.html")] == ["/a.css", "/b.js"]


# -- hints a browser uses -------------------------------------------------------------------------

def test_an_import_map_page_gets_no_modulepreload(tmp_path: Path) -> None:
    write(tmp_path, {"vendor/three.module.js": "export const THREE = 1;",
                     "js/scene.js": 'import * as THREE from "three"; export const scene = THREE;',
                     "js/main.js": 'import { scene } from "./scene.js";',
                     "js/solo.js": 'import "./scene.js";'})
    html = (b'<script type="importmap">{"imports": {"three": "/vendor/three.module.js"}}</script>'
            b'<script type="module" src="/js/main.js"></script>')
    resources, _ = infer_page(html, "/", SitePaths(tmp_path))
    assert [(r.url, r.module, r.crossorigin) for r in resources] == [
        ("/js/main.js", False, True), ("/js/scene.js", False, True),
        ("/vendor/three.module.js", False, True)]  # the map's own target, found through it
    from pushserve.site.push import link_value

    assert link_value(resources[0]) == b"</js/main.js>; rel=preload; as=script; crossorigin"
    # The same modules on a page without an import map: modulepreload, as before.
    resources, _ = infer_page(b'<script type="module" src="/js/solo.js"></script>', "/", SitePaths(tmp_path))
    assert [r.module for r in resources] == [True, True]


def test_manifest_summary_says_so(tmp_path: Path) -> None:
    write(tmp_path, {"a.html": '<script type=importmap>{"imports":{}}</script><script type=module src=m.js></script>',
                     "b.html": "<script type=module src=m.js></script>", "m.js": ""})
    manifest, _ = PushManifest.build(tmp_path)
    assert manifest.summary()[-1].startswith("push manifest: 1 page with an import map: module scripts hinted "
                                             "as rel=preload, not modulepreload")


FA4 = ("@font-face{font-family:'FontAwesome';src:url('../fonts/fontawesome-webfont.eot?v=4.7.0');"
       "src:url('../fonts/fontawesome-webfont.eot?#iefix&v=4.7.0') format('embedded-opentype'),"
       "url('../fonts/fontawesome-webfont.woff2?v=4.7.0') format('woff2'),"
       "url('../fonts/fontawesome-webfont.woff?v=4.7.0') format('woff'),"
       "url('../fonts/fontawesome-webfont.ttf?v=4.7.0') format('truetype'),"
       "url('../fonts/fontawesome-webfont.svg?v=4.7.0#fontawesomeregular') format('svg');}")


def test_hints_only_what_a_browser_fetches_stylesheets_first(tmp_path: Path) -> None:
    fonts = {f"fonts/fontawesome-webfont.{ext}": "x" for ext in ("eot", "woff2", "woff", "ttf", "svg")}
    write(tmp_path, {**fonts, "css/font-awesome.css": FA4, "css/site.css": "", "css/dark.css": "",
                     "css/noscript.css": "", "fonts/lato.woff2": "x"})
    html = b"""<link rel=preload as=font href=/fonts/lato.woff2 crossorigin>
        <link rel=stylesheet href=/css/font-awesome.css>
        <link rel=stylesheet href=/css/dark.css disabled title=dark>
        <noscript><link rel=stylesheet href=/css/noscript.css></noscript>
        <link rel=stylesheet href=/css/site.css>"""
    resources, warnings = infer_page(html, "/", SitePaths(tmp_path))
    assert [r.url for r in resources] == [
        "/css/font-awesome.css", "/css/site.css",  # stylesheets first …
        "/fonts/lato.woff2", "/fonts/fontawesome-webfont.woff2?v=4.7.0"]  # … then fonts; no EOT, no SVG
    assert warnings == []


ODD = {"css/estilo mañana.css": "@import 'más [1].css';", "css/más [1].css": "",
       "index.html": '<link rel=stylesheet href="css/estilo mañana.css">'}
ODD_LINKS = [b"</css/estilo%20ma%C3%B1ana.css>; rel=preload; as=style",
             b"</css/m%C3%A1s%20[1].css>; rel=preload; as=style"]


@pytest.mark.parametrize("protocol", PUSHING)
def test_pushed_paths_are_encoded_as_browsers_request_them(tmp_path: Path, protocol: str) -> None:
    s = session(protocol, build(Config(site=write(tmp_path, ODD), access_log=False)))
    page = s.get("/")
    pushes = s.pushes_of(page.stream_id)
    assert sorted(pushes) == [b"/css/estilo%20ma%C3%B1ana.css", b"/css/m%C3%A1s%20[1].css"]
    assert [p.status for p in pushes.values()] == [200, 200]
    assert bytes(pushes[b"/css/estilo%20ma%C3%B1ana.css"].body) == b"@import 'm\xc3\xa1s [1].css';"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_link_targets_are_encoded_in_the_103_and_the_200(tmp_path: Path, protocol: str) -> None:
    """The same bytes whatever the protocol: the 103 (where the protocol takes one) and the 200."""
    s = session(protocol, build(Config(site=write(tmp_path, ODD), access_log=False, hints_http1=True)),
                enable_push=False)
    page = s.get("/")
    assert page.all(b"link") == ODD_LINKS
    assert all(v.isascii() and b" " not in v.split(b">")[0] for v in page.all(b"link"))
    if capabilities(protocol).inform:
        assert [v for k, v in page.informational[0] if k == b"link"] == ODD_LINKS


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_import_map_page_is_hinted_without_modulepreload_on_every_protocol(tmp_path: Path,
                                                                               protocol: str) -> None:
    write(tmp_path, {"vendor/three.module.js": "export const THREE = 1;",
                     "js/main.js": 'import * as THREE from "three";',
                     "index.html": '<script type="importmap">{"imports": {"three": "/vendor/three.module.js"}}'
                                   '</script><script type="module" src="/js/main.js"></script>'})
    s = session(protocol, build(Config(site=tmp_path, access_log=False, hints_http1=True)), enable_push=False)
    page = s.get("/")
    links = [b"</js/main.js>; rel=preload; as=script; crossorigin",
             b"</vendor/three.module.js>; rel=preload; as=script; crossorigin"]
    assert page.all(b"link") == links
    if capabilities(protocol).inform:
        assert [v for k, v in page.informational[0] if k == b"link"] == links
