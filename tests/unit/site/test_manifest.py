"""Push manifest: inference from HTML/CSS/JS, the push_manifest.json format, per-worker upkeep."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from pushserve.config import Config, Mount
from pushserve.scan.modules import module_imports
from pushserve.scan.urls import SITE_ORIGIN, resolve, site_url
from pushserve.site.manifest import (
    ManifestError,
    PushResource,
    infer_page,
    load_manifest_file,
    merge,
    parse_manifest,
    to_json,
)
from pushserve.site.manifest_load import site_private
from pushserve.site.manifest_store import PushManifest, build_manifest
from pushserve.site.paths import PrivateFiles, SitePaths, is_manifest_page, page_url
from pushserve.site.templates import Templates

HERE = Path(__file__).resolve().parent
SITE_EXAMPLE = HERE.parents[2] / "site_example"
SITE_VARS = {"title": "pushserve", "tagline": "Static sites over HTTP/2"}


def write(root: Path, rel: str, text: str | bytes = "") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def paths(resources: list[PushResource]) -> list[str]:
    return [r.path for r in resources]


# -- the example site -----------------------------------------------------------------------

def test_site_example_matches_hand_checked_manifest() -> None:
    expected = load_manifest_file(HERE / "expected_manifest_site_example.json")
    # The site's private files: its mounted app's package, and the layouts and partials.
    private = site_private(Config(site=SITE_EXAMPLE, mounts=(Mount.make("/search", "_app.search:app"),)))
    templates = Templates(SITE_EXAMPLE, site=SITE_VARS, strict=True, mode="auto", private=private)
    templates.scan()
    inferred, warnings = build_manifest(SITE_EXAMPLE, templates.render_static, private)
    assert warnings == []
    assert inferred == expected  # pages, and each page's resources in push order
    assert parse_manifest(to_json(inferred)) == expected


def test_site_example_index_has_more_than_six_subresources() -> None:
    html = Templates(SITE_EXAMPLE, site=SITE_VARS).render_static("index.html").decode()
    # stylesheets, module script, icons, images referenced by the page itself
    refs = [s for s in ("/css/site.css", "/css/print.css", "/js/app.js", "/js/util.js", "/favicon.ico",
                        "/img/logo.svg", "img/hero.png", "img/streams.svg") if s in html]
    assert len(refs) > 6


def test_raw_pages_without_rendering(tmp_path: Path) -> None:
    write(tmp_path, "index.html", '<link rel=stylesheet href="a.css">')
    write(tmp_path, "a.css", "")
    inferred, warnings = build_manifest(tmp_path, None)
    assert inferred == {"index.html": [PushResource("/a.css", "style")]}
    assert warnings == []


# -- URLs -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("ref", "base", "expected"), [
    ("css/a.css", "/", "/css/a.css"),
    ("../css/a.css", "/features/", "/css/a.css"),
    ("./b.js", "/features/", "/features/b.js"),
    ("b.js", "/features/page.html", "/features/b.js"),
    ("../../../x.png", "/a/", "/x.png"),
    ("/abs.css?v=3#top", "/a/b/", "/abs.css"),
    ("  spaced.css ", "/", "/spaced.css"),
    ("https://cdn.example/x.js", "/", None),
    ("http://localhost/x.js", "/", None),
    ("//cdn.example/x.js", "/", None),
    ("data:text/css,body{}", "/", None),
    ("blob:https://a/1", "/", None),
    ("#section", "/", None),
    ("", "/", None),
])
def test_resolve_url(ref: str, base: str, expected: str | None) -> None:
    url = resolve(ref, site_url(base))
    assert (url.removeprefix(SITE_ORIGIN).split("?")[0] if url and url.startswith(SITE_ORIGIN) else None) == expected


def test_page_url() -> None:
    assert page_url("index.html") == "/"
    assert page_url("features/index.html") == "/features/"
    assert page_url("about.html") == "/about.html"


def test_relative_references_resolve_against_the_page(tmp_path: Path) -> None:
    for rel in ("css/a.css", "features/f.js", "features/img/p.png", "root.js"):
        write(tmp_path, rel)
    html = b"""<link rel=stylesheet href="../css/a.css?v=2">
        <script src="f.js"></script><script src="/root.js#x"></script>
        <img data-push src="./img/p.png">"""
    resources, warnings = infer_page(html, "/features/", SitePaths(tmp_path))
    assert paths(resources) == ["/css/a.css", "/features/f.js", "/root.js", "/features/img/p.png"]
    assert warnings == []


def test_base_element(tmp_path: Path) -> None:
    write(tmp_path, "static/a.css")
    site = SitePaths(tmp_path)
    resources, _ = infer_page(b'<base href="/static/"><link rel=stylesheet href="a.css">', "/p/", site)
    assert paths(resources) == ["/static/a.css"]
    # A <base> on another origin sends the stylesheet there: nothing to push, a connection to open.
    resources, _ = infer_page(b'<base href="https://cdn.example/"><link rel=stylesheet href="a.css">', "/", site)
    assert resources == [PushResource("https://cdn.example", "preconnect")]


# -- what is and is not pushed ----------------------------------------------------------------

def test_external_data_and_missing_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "here.css")
    html = b"""
      <link rel=stylesheet href="https://cdn.example/x.css">
      <link rel=stylesheet href="//cdn.example/y.css">
      <link rel=stylesheet href="data:text/css,p{}">
      <script src="blob:https://x/1"></script>
      <link rel=stylesheet href="gone.css">
      <script src="/gone.css"></script>
      <link rel=stylesheet href="/_layouts/base.html">
      <link rel=stylesheet href="here.css">
    """
    resources, warnings = infer_page(html, "/", SitePaths(tmp_path))
    # Other origins are not pushed or preloaded, but their connection is opened early (once).
    assert paths(resources) == ["https://cdn.example", "/here.css"]
    assert resources[0].type == "preconnect" and not resources[0].crossorigin
    # one warning per missing path, none for other origins
    assert len(warnings) == 2
    assert "/gone.css" in warnings[0] and "/_layouts/base.html" in warnings[1]


def test_nopush_alternate_nomodule_and_data_blocks(tmp_path: Path) -> None:
    for rel in ("a.css", "b.css", "alt.css", "legacy.js", "data.json", "m.js", "img.png", "plain.png"):
        write(tmp_path, rel)
    html = b"""
      <link rel=stylesheet href=a.css nopush>
      <link rel="alternate stylesheet" href=alt.css>
      <link rel=preload as=script href=m.js nopush>
      <script nomodule src=legacy.js></script>
      <script type="application/json" src="data.json"></script>
      <img src=plain.png>
      <img data-push src=img.png>
      <link rel=stylesheet href=b.css>
    """
    resources, warnings = infer_page(html, "/", SitePaths(tmp_path))
    assert paths(resources) == ["/b.css", "/img.png"]
    assert warnings == []


def test_types_crossorigin_and_order(tmp_path: Path) -> None:
    for rel in ("hero.png", "app.js", "classic.js", "s.css", "f.woff2", "data.json", "page.html", "mp.js",
                "p.css"):
        write(tmp_path, rel)
    html = b"""
      <img data-push src=hero.png>
      <script type=module src=app.js></script>
      <script src=classic.js></script>
      <link rel=preload as=fetch href=data.json crossorigin>
      <link rel=stylesheet href=s.css>
      <link rel=preload as=font href=f.woff2>
      <link rel=preload as=document href=page.html>
      <link rel=modulepreload href=mp.js>
      <link rel=preload as=style href=p.css>
      <link rel=preload as=worker href=w.js>
    """
    resources, warnings = infer_page(html, "/", SitePaths(tmp_path))
    assert resources == [
        PushResource("/s.css", "style"),
        PushResource("/p.css", "style"),  # stylesheets first, then fonts, whatever the page's order
        PushResource("/f.woff2", "font", crossorigin=True),
        PushResource("/app.js", "script", crossorigin=True, module=True),
        PushResource("/classic.js", "script"),
        PushResource("/mp.js", "script", crossorigin=True, module=True),
        PushResource("/hero.png", "image"),
        PushResource("/data.json", "fetch", crossorigin=True),
        PushResource("/page.html", "document"),
    ]
    assert len(warnings) == 1 and "as=worker" in warnings[0]


def test_duplicates_keep_first_occurrence(tmp_path: Path) -> None:
    write(tmp_path, "a.js")
    write(tmp_path, "a.css")
    html = b"<script src=a.js crossorigin></script><link rel=preload as=script href=a.js>" \
           b"<link rel=stylesheet href=a.css><link rel=stylesheet href=./a.css?again>"
    resources, _ = infer_page(html, "/", SitePaths(tmp_path))
    assert resources == [PushResource("/a.css", "style"), PushResource("/a.js", "script", crossorigin=True)]


# -- CSS -------------------------------------------------------------------------------------

def test_css_imports_and_fonts_followed_recursively(tmp_path: Path) -> None:
    write(tmp_path, "css/main.css", '@import "parts/base.css"; @import "main.css"; body{background:url(../bg.png)}')
    write(tmp_path, "css/parts/base.css",
          '@import url("../main.css");\n@font-face{font-family:F;src:url(../../fonts/f.woff2)}')
    write(tmp_path, "fonts/f.woff2")
    write(tmp_path, "bg.png")
    resources, warnings = infer_page(b'<link rel="stylesheet" href="/css/main.css">', "/", SitePaths(tmp_path))
    assert resources == [
        PushResource("/css/main.css", "style"),
        PushResource("/css/parts/base.css", "style"),
        PushResource("/fonts/f.woff2", "font", crossorigin=True),
    ]
    assert warnings == []


def test_inline_style_and_module(tmp_path: Path) -> None:
    write(tmp_path, "t.css")
    write(tmp_path, "p/m.js")
    html = b'<style>@import "/t.css";</style><script type=module>import "./m.js"; import("./lazy.js")</script>'
    resources, _ = infer_page(html, "/p/", SitePaths(tmp_path))
    assert resources == [PushResource("/t.css", "style"),
                         PushResource("/p/m.js", "script", crossorigin=True, module=True)]


# -- JavaScript modules ----------------------------------------------------------------------

def test_module_import_forms() -> None:
    source = r"""
      import def from "./a.js";
      import * as ns from './b.js'
      import { x, y as z,
               w } from "./c.js";
      import def2, { q } from "./d.js";
      import "./e.js";
      export * from "./f.js";
      export { g } from "./g.js";
      export * as h from "./h.js";
      export { local };
      export const n = 1;
      export default function () { return import("./dynamic.js"); }
      const meta = import.meta.url;
      // import "./commented.js";
      /* import "./block.js"; */
      const s = 'import "./in-string.js"';
      const t = `import "./in-template.js"`;
      const r = /import "\.\/in-regex.js"/;
      obj.import("./method.js");
      import bare from "lodash";
      import escaped from "./\x69.js";
      import "./last.js"
    """
    assert module_imports(source) == [
        "./a.js", "./b.js", "./c.js", "./d.js", "./e.js", "./f.js", "./g.js", "./h.js", "lodash",
        "./x69.js", "./last.js"]


def test_module_imports_without_semicolons() -> None:
    assert module_imports('export { a }\nimport "./b.js"\nexport { c }\nimport d from "./d.js"') == [
        "./b.js", "./d.js"]


def test_module_graph_with_cycle(tmp_path: Path) -> None:
    write(tmp_path, "js/a.js", 'import { b } from "./b.js";\nimport("./lazy.js");\nexport const a = 1;')
    write(tmp_path, "js/b.js", 'import { a } from "./a.js";\nexport * from "../lib/c.js";\nexport const b = 2;')
    write(tmp_path, "lib/c.js", 'import "/js/a.js"; import "https://cdn.example/x.js"; import "lodash";')
    write(tmp_path, "js/lazy.js")
    resources, warnings = infer_page(b'<script type="module" src="/js/a.js"></script>', "/", SitePaths(tmp_path))
    assert resources == [
        PushResource("https://cdn.example", "preconnect", crossorigin=True),  # a module of another origin
        PushResource("/js/a.js", "script", crossorigin=True, module=True),
        PushResource("/js/b.js", "script", crossorigin=True, module=True),
        PushResource("/lib/c.js", "script", crossorigin=True, module=True),
    ]
    assert warnings == []


def test_classic_script_imports_not_followed(tmp_path: Path) -> None:
    write(tmp_path, "c.js", 'import "./d.js";')
    write(tmp_path, "d.js")
    resources, _ = infer_page(b"<script src=c.js></script>", "/", SitePaths(tmp_path))
    assert paths(resources) == ["/c.js"]


def test_missing_import_warns(tmp_path: Path) -> None:
    write(tmp_path, "m.js", 'import "./gone.js"; import "./gone.js";')
    resources, warnings = infer_page(b"<script type=module src=m.js></script>", "/", SitePaths(tmp_path))
    assert paths(resources) == ["/m.js"]
    assert warnings == ["m.js: /gone.js is not a file of the site; not pushed"]


# -- robustness ------------------------------------------------------------------------------

@pytest.mark.parametrize("html", [
    b"<link rel=stylesheet href=a.css",
    b"<html><head><link rel=stylesheet href='a.css'><script type=module src=m.js>",
    b"<scr<ipt src=x.js></script><img data-push src>",
    b"<link rel href= nopush=><<<>>>&&&#x;&#99999999;<!--",
    b"<![CDATA[ <link rel=stylesheet href=a.css> ",
    b"\xff\xfe\x00<\x00l\x00i\x00n\x00k",
    b"<style>@import url(",
    b"<script type=module>import '",
    b"<base href='http://[::1'><link rel=stylesheet href=a.css>",
    b"<link rel=stylesheet href='http://[bad'>",
    b"",
])
def test_malformed_html_never_raises(tmp_path: Path, html: bytes) -> None:
    write(tmp_path, "a.css", "@import '")
    write(tmp_path, "m.js", "import { from '")
    resources, warnings = infer_page(html, "/", SitePaths(tmp_path))
    assert all(isinstance(r, PushResource) for r in resources)
    assert all(isinstance(w, str) for w in warnings)


def test_garbage_bytes_never_raise(tmp_path: Path) -> None:
    write(tmp_path, "a.css")
    rng = random.Random(1234)
    alphabet = b'<>/="\' \nabcdefghijklmnopqrstuvwxyz-!&;#\x00\xff\xc3'
    for _ in range(300):
        junk = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        resources, _ = infer_page(b"<link rel=stylesheet href=a.css>" + junk, "/", SitePaths(tmp_path))
        assert paths(resources) == ["/a.css"]


# -- SitePaths --------------------------------------------------------------------------------

def test_site_files_guards(tmp_path: Path) -> None:
    root = tmp_path / "site"
    write(root, "ok.css", "x")
    write(root, "my file.css", "y")
    write(root, "_layouts/base.html")
    write(root, ".git/config")
    write(root, "_static/x.css", "z")
    write(root, ".well-known/security.txt", "w")
    write(root, "pushserve.toml")
    write(tmp_path, "secret.txt", "no")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    # Private by the site's own rule: its settings, and a layout (as templates find them).
    site = SitePaths(root, PrivateFiles(["pushserve.toml", "_layouts/base.html"]))
    assert site.exists("/ok.css") and site.read("/ok.css") == b"x"
    assert site.read("/my%20file.css") == b"y"
    assert site.read("/_static/x.css") == b"z"  # a leading "_" is served (generator output)
    assert site.read("/.well-known/security.txt") == b"w"
    for bad in ("/../secret.txt", "/%2e%2e/secret.txt", "/_layouts/base.html", "/.git/config", "/link.txt",
                "ok.css", "/", "/nope.css", "/ok.css%00", "/pushserve.toml", "/_layouts//base.html"):
        assert not site.exists(bad), bad
    with pytest.raises(FileNotFoundError):
        site.read("/_layouts/base.html")


def test_is_manifest_page() -> None:
    assert is_manifest_page("index.html") and is_manifest_page("a/b.htm")
    assert is_manifest_page("_build/a.html")  # by name; template-only files are the site's to exclude
    for rel in ("404.html", ".hidden/x.html", "x.css", "../x.html"):
        assert not is_manifest_page(rel), rel


# -- the file format --------------------------------------------------------------------------

def test_broken_json_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "push_manifest.json", '{\n  "index.html": {\n    "/a.css": {"type": "style",}\n  }\n}')
    with pytest.raises(ManifestError) as info:
        load_manifest_file(path)
    assert str(info.value).startswith(f"{path}:3:")
    assert "invalid JSON" in str(info.value)


@pytest.mark.parametrize(("text", "needle"), [
    ("[]", "top level must be an object"),
    ('{"index.html": []}', "must map resource paths"),
    ('{"/index.html": {}}', "site-relative"),
    ('{"index.html": {"a.css": {"type": "style"}}}', "must start with a single '/'"),
    ('{"index.html": {"//cdn/a.css": {"type": "style"}}}', "must start with a single '/'"),
    ('{"index.html": {"/a.css": "style"}}', "must be an object"),
    ('{"index.html": {"/a.css": {"weight": 1}}}', '"type" is required'),
    ('{"index.html": {"/a.css": {"type": "stylesheet"}}}', "type 'stylesheet' is not one of"),
    ('{"index.html": {"/a.css": {"type": "style", "weight": "1"}}}', "weight must be an integer"),
    ('{"index.html": {"/a.css": {"type": "style", "weight": true}}}', "weight must be an integer"),
    ('{"index.html": {"/a.css": {"type": "style", "weight": 0}}}', "weight must be an integer"),
    ('{"index.html": {"/a.css": {"type": "style", "crossorigin": "yes"}}}', "crossorigin must be"),
    ('{"index.html": {"/a.css": {"type": "style", "priority": 1}}}', "priority must be"),
    ('{"index.html": {"/a.css": {"type": "style", "colour": 1}}}', "unknown key(s) colour"),
    ('{"index.html": {}, "index.html": {}}', "appears twice"),
])
def test_invalid_manifest_messages(text: str, needle: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "m.json")
    message = str(info.value)
    assert message.startswith("m.json") and needle in message and "\n" not in message


def test_unreadable_manifest_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest_file(tmp_path / "missing.json")


def test_polymer_format_round_trip() -> None:
    text = json.dumps({
        "index.html": {
            "/css/app.css": {"type": "style", "weight": 1},
            "/fonts/a.woff2": {"type": "font", "weight": 2},
            "/js/app.js": {"type": "script", "weight": 1, "crossorigin": True},
        },
        "about.html": {},
    })
    manifest = parse_manifest(text)
    assert manifest["index.html"] == [
        PushResource("/css/app.css", "style"),
        PushResource("/fonts/a.woff2", "font", 2, crossorigin=True),  # fonts are CORS fetches
        PushResource("/js/app.js", "script", crossorigin=True),
    ]
    assert manifest["about.html"] == []
    again = to_json(manifest)
    assert parse_manifest(again) == manifest
    assert list(json.loads(again)) == ["about.html", "index.html"]  # pages sorted
    assert list(json.loads(again)["index.html"]) == ["/css/app.css", "/fonts/a.woff2", "/js/app.js"]


def test_merge_explicit_pages_win_wholesale() -> None:
    inferred = {"index.html": [PushResource("/a.css", "style"), PushResource("/a.js", "script")],
                "about.html": [PushResource("/b.css", "style")]}
    explicit = {"index.html": [PushResource("/only.js", "script")], "empty.html": []}
    merged = merge(inferred, explicit)
    assert merged == {"index.html": [PushResource("/only.js", "script")],
                      "about.html": [PushResource("/b.css", "style")],
                      "empty.html": []}
    assert inferred["index.html"][0].path == "/a.css"  # inputs untouched


# -- PushManifest -----------------------------------------------------------------------------

@pytest.fixture
def small_site(tmp_path: Path) -> Path:
    write(tmp_path, "index.html", '<link rel=stylesheet href="css/a.css"><script type=module src="js/m.js"></script>')
    write(tmp_path, "about/index.html", '<link rel=stylesheet href="../css/b.css">')
    write(tmp_path, "404.html", '<link rel=stylesheet href="/css/a.css">')
    write(tmp_path, "_partials/x.html", '<link rel=stylesheet href="/css/a.css">')
    write(tmp_path, "css/a.css", '@import "shared.css";')
    write(tmp_path, "css/b.css", '@import "shared.css";')
    write(tmp_path, "css/shared.css")
    write(tmp_path, "js/m.js", 'import "./dep.js";')
    write(tmp_path, "js/dep.js")
    return tmp_path


def test_push_manifest_pages_and_dependencies(small_site: Path) -> None:
    # _partials/x.html stands for a template-only file: private, so not a page.
    manifest, warnings = PushManifest.build(small_site, private=PrivateFiles(["_partials/x.html"]))
    assert warnings == []
    assert manifest.pages() == ["about/index.html", "index.html"]  # no 404, no private files
    assert paths(manifest.resources_for("index.html")) == ["/css/a.css", "/css/shared.css", "/js/m.js",
                                                           "/js/dep.js"]
    assert manifest.resources_for("nope.html") == []
    assert manifest.pages_depending_on("css/shared.css") == {"index.html", "about/index.html"}
    assert manifest.pages_depending_on("js/dep.js") == {"index.html"}
    assert manifest.pages_depending_on("about/index.html") == {"about/index.html"}
    assert manifest.pages_depending_on("new.html") == {"new.html"}
    assert manifest.pages_depending_on("img/unrelated.png") == set()
    # A layout changed and nobody said who uses it: every page may have.
    assert manifest.pages_depending_on("_partials/x.html") == {"index.html", "about/index.html"}


def test_push_manifest_rebuild_page_after_edits(small_site: Path) -> None:
    manifest, _ = PushManifest.build(small_site, private=PrivateFiles(["_partials"]))
    write(small_site, "css/b.css", '@import "shared.css"; @import "extra.css";')
    for page in manifest.pages_depending_on("css/b.css"):
        assert manifest.rebuild_page(page) == ["css/b.css: /css/extra.css is not a file of the site; not pushed"]
    # The missing file is a dependency too: creating it rebuilds the page.
    assert manifest.pages_depending_on("css/extra.css") == {"about/index.html"}
    write(small_site, "css/extra.css")
    assert manifest.rebuild_page("about/index.html") == []
    assert paths(manifest.resources_for("about/index.html")) == ["/css/b.css", "/css/shared.css", "/css/extra.css"]
    (small_site / "about/index.html").unlink()
    manifest.rebuild_page("about/index.html")
    assert manifest.pages() == ["index.html"]


def test_push_manifest_explicit_file_wins(small_site: Path) -> None:
    explicit = write(small_site, "push_manifest.json", json.dumps(
        {"index.html": {"/js/m.js": {"type": "script", "crossorigin": True}, "/gone.js": {"type": "script"}}}))
    manifest, warnings = PushManifest.build(small_site, None, explicit)
    assert manifest.resources_for("index.html") == [PushResource("/js/m.js", "script", crossorigin=True),
                                                     PushResource("/gone.js", "script")]
    assert warnings == ["push manifest: index.html: /gone.js is not a file of the site"]
    assert paths(manifest.resources_for("about/index.html")) == ["/css/b.css", "/css/shared.css"]
    assert list(manifest.to_json_obj()["index.html"]) == ["/js/m.js", "/gone.js"]


def test_render_error_becomes_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "good.html", "{{ '<link rel=stylesheet href=a.css>' | safe }}")
    write(tmp_path, "bad.html", "{% if %}")
    write(tmp_path, "a.css")
    templates = Templates(tmp_path)
    inferred, warnings = build_manifest(tmp_path, templates.render_static)
    assert inferred == {"bad.html": [], "good.html": [PushResource("/a.css", "style")]}
    assert len(warnings) == 1 and warnings[0].startswith("bad.html: not rendered") and "bad.html:1" in warnings[0]


def test_template_dependencies_narrow_rebuilds(tmp_path: Path) -> None:
    write(tmp_path, "_layouts/base.html", "{% block body %}{% endblock %}")
    write(tmp_path, "_partials/other.html", "x")
    write(tmp_path, "a.html", "{% extends '_layouts/base.html' %}")
    write(tmp_path, "b.html", "{% include '_partials/other.html' %}")
    templates = Templates(tmp_path)
    templates.scan()
    manifest, _ = PushManifest.build(tmp_path, templates.render_static, template_deps=templates.dependencies,
                                     private=templates.private)
    assert manifest.pages_depending_on("_layouts/base.html") == {"a.html"}
    assert manifest.pages_depending_on("_partials/other.html") == {"b.html"}


# -- links as generators write them (issue 16) ------------------------------------------------

def test_generator_links(tmp_path: Path) -> None:
    for rel in ("_static/pygments.css", "_static/print.css", "_static/a.js", "_static/m.js", "_static/s.css",
                "docs/x.css"):
        write(tmp_path, rel)
    html = b"""
      <link rel="stylesheet" href="../_static/pygments.css?v=4f6a#top">
      <link rel="stylesheet" href="../_static/print.css" media="print">
      <link rel="stylesheet" href="../_static/print.css" media="only print, print and (color)">
      <link rel="stylesheet" href="../_static/s.css" media="screen" integrity="sha384-x" crossorigin="anonymous">
      <script src="../_static/a.js?v=2" defer></script>
      <script type="module" src="../_static/m.js" crossorigin="use-credentials"></script>
    """
    resources, warnings = infer_page(html, "/docs/page.html", SitePaths(tmp_path))
    assert resources == [
        PushResource("/_static/pygments.css", "style", query="v=4f6a"),
        PushResource("/_static/s.css", "style", crossorigin=True, integrity="sha384-x"),
        PushResource("/_static/a.js", "script", query="v=2"),
        PushResource("/_static/m.js", "script", crossorigin=True, module=True, credentials=True),
    ]
    assert warnings == []
    # <base href> moves every relative reference.
    resources, _ = infer_page(b'<base href="/docs/"><link rel=stylesheet href="x.css">', "/", SitePaths(tmp_path))
    assert paths(resources) == ["/docs/x.css"]
    # The JSON format keeps what the hint needs.
    again = parse_manifest(to_json({"p.html": [PushResource("/a.css", "style", query="v=1", integrity="sha384-y"),
                                                PushResource("/m.js", "script", crossorigin=True, module=True)]}))
    assert again["p.html"][0].url == "/a.css?v=1" and again["p.html"][0].integrity == "sha384-y"
    assert again["p.html"][1].module


def test_lazy_manifest_infers_a_page_when_first_asked(small_site: Path) -> None:
    manifest, warnings = PushManifest.build(small_site, lazy=True, private=PrivateFiles(["_partials"]))
    assert warnings == [] and manifest.pages() == []
    manifest.refresh("index.html", 0.0)
    assert manifest.pages() == ["index.html"]
    assert paths(manifest.resources_for("index.html"))[0] == "/css/a.css"
    assert [p for p in manifest.build_steps() if p] == ["about/index.html"]
    assert manifest.pages() == ["about/index.html", "index.html"]


def test_summary_counts_what_could_not_be_announced(tmp_path: Path) -> None:
    write(tmp_path, "a.html", '<link rel=stylesheet href="/gone.css"><link rel=preload as=worker href=w.js>')
    write(tmp_path, "b.html", '<script src="gone.js"></script>')
    manifest, _ = PushManifest.build(tmp_path, lazy=True)
    assert [p for p in manifest.build_steps() if p] == ["a.html", "b.html"]
    assert manifest.summary() == [
        "push manifest: 2 pages, 0 resources announced",
        "push manifest: not announced: 2 links to paths that are not files of the site",
        "push manifest: not announced: 1 preloads of a type that is not pushed",
    ]
    assert len(manifest.notes()) == 3 and "/gone.css" in manifest.notes()[0]


def test_preconnect_for_other_origins_in_html_and_css(tmp_path: Path) -> None:
    write(tmp_path, "site.css", "@import url(https://fonts.example.com/css?family=X);\n"
                                "@font-face { font-family: f; src: url(https://static.example.org:8443/f.woff2) }")
    html = (b'<link rel=stylesheet href="/site.css">'
            b'<script src="https://cdn.example.net/lib.js" crossorigin></script>'
            b'<script src="https://cdn.example.net/other.js" crossorigin></script>')
    resources, _ = infer_page(html, "/", SitePaths(tmp_path))
    pre = [(r.path, r.crossorigin) for r in resources if r.type == "preconnect"]
    assert sorted(pre) == [("https://cdn.example.net", True), ("https://fonts.example.com", False),
                           ("https://static.example.org:8443", True)]
    assert resources[:3] == [r for r in resources if r.type == "preconnect"]  # announced first
    from pushserve.site.push import link_value

    assert link_value(resources[0]).startswith(b"<https://") and b"rel=preconnect" in link_value(resources[0])
    text = to_json({"index.html": resources})
    assert parse_manifest(text)["index.html"] == resources  # push_manifest.json keeps them


def test_fetchpriority_high_image_joins_and_leads(tmp_path: Path) -> None:
    write(tmp_path, "a.css")
    write(tmp_path, "hero.jpg")
    write(tmp_path, "other.jpg")
    html = b'<link rel=stylesheet href=a.css><img src=other.jpg><img fetchpriority=high src=hero.jpg>'
    resources, _ = infer_page(html, "/", SitePaths(tmp_path))
    assert paths(resources) == ["/hero.jpg", "/a.css"]  # no opt-in mark needed, and first
    from pushserve.site.push import link_value

    assert link_value(resources[0]) == b"</hero.jpg>; rel=preload; as=image; fetchpriority=high"
    assert parse_manifest(to_json({"index.html": resources}))["index.html"] == resources


def test_marked_elements_background_from_the_first_stylesheet(tmp_path: Path) -> None:
    write(tmp_path, "css/site.css", "/* .hero { background: url(/img/no.png) } */\n"
                                    ".hero-text { background: url(/img/not-this.png) }\n"
                                    "main .hero, #banner { color: red; background: #000 url('../img/hero.jpg') }\n"
                                    ".other { background-image: url(/img/other.png) }")
    write(tmp_path, "css/late.css", ".hero { background-image: url(/img/late.png) }")
    for name in ("hero.jpg", "no.png", "not-this.png", "other.png", "late.png"):
        write(tmp_path, f"img/{name}")
    html = (b'<link rel=stylesheet href=/css/site.css><link rel=stylesheet href=/css/late.css>'
            b'<div class="hero big" data-push></div><div class=other></div>')
    resources, _ = infer_page(html, "/", SitePaths(tmp_path))
    assert paths(resources) == ["/img/hero.jpg", "/css/site.css", "/css/late.css"]
    assert resources[0].type == "image" and resources[0].priority == "high"
    # Without the mark, CSS images stay out, as before.
    resources, _ = infer_page(html.replace(b" data-push", b""), "/", SitePaths(tmp_path))
    assert paths(resources) == ["/css/site.css", "/css/late.css"]
