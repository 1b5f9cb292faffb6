"""Templates: rendering, byte-identical plain pages, the render cache and its invalidation, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pushserve.site.static import RenderRequest
from pushserve.site.template_files import TemplateError
from pushserve.site.templates import CACHE_ENTRIES, Templates, is_template_path

SITE_EXAMPLE = Path(__file__).resolve().parents[3] / "site_example"
SITE_VARS = {"title": "pushserve", "tagline": "Static sites over HTTP/2"}


def req(path: str = "/", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> RenderRequest:
    return RenderRequest(path, query, headers or [])


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def touch_later(path: Path) -> None:
    """Give a rewritten file an mtime clearly after the previous one (coarse-clock filesystems)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    write(tmp_path, "_layouts/base.html",
          "<title>{% block title %}{% endblock %} | {{ site.title }}</title>\n"
          "{% include '_partials/nav.html' %}"
          "<main>{% block content %}{% endblock %}</main>\n")
    write(tmp_path, "_partials/nav.html", "<nav>{{ site.title }} at {{ request.path }}</nav>\n")
    write(tmp_path, "_partials/macros.html",
          "{% macro badge(text, kind='info') %}<b class=\"{{ kind }}\">{{ text }}</b>{% endmacro %}")
    write(tmp_path, "index.html",
          "{% extends '_layouts/base.html' %}"
          "{% from '_partials/macros.html' import badge %}"
          "{% block title %}Home{% endblock %}"
          "{% block content %}{{ badge('new') }} {{ badge('<x>', 'warn') }}"
          " q={{ request.args.get('q', '-') }}{% endblock %}")
    return tmp_path


# -- rendering ------------------------------------------------------------------------------

def test_extends_include_and_macro(site: Path) -> None:
    t = Templates(site, site={"title": "Demo"})
    out = t.render("index.html", req("/", b"q=a%20b&q=second")).decode()
    assert out == (
        "<title>Home | Demo</title>\n"
        "<nav>Demo at /</nav>\n"
        '<main><b class="info">new</b> <b class="warn">&lt;x&gt;</b> q=a b</main>\n'
    )


def test_request_headers_lookup_is_case_insensitive(tmp_path: Path) -> None:
    write(tmp_path, "h.html", "{{ request.headers['Accept-Language'] }}|{{ request.headers.get('x-none', 'none') }}"
                              "|{{ 'dnt' in request.headers }}|{{ request.query }}")
    t = Templates(tmp_path)
    out = t.render("h.html", req("/h.html", b"a=1", [(b"accept-language", b"fr"), (b"dnt", b"1")]))
    assert out == b"fr|none|True|a=1"


def test_plain_page_is_byte_identical(tmp_path: Path) -> None:
    # CRLF line ends, no final newline, a Latin-1 byte, lone braces: Jinja would change some of
    # these (newline normalisation, UTF-8 decoding), so such a page must bypass it.
    raw = b"<!doctype html>\r\n<p>caf\xe9 { not jinja } {x}</p>\r\n<script>if (a) { b() }</script>"
    write(tmp_path, "plain.html", raw)
    t = Templates(tmp_path, strict=True)
    assert t.render("plain.html", req("/plain.html")) == raw


def test_trailing_newline_kept(tmp_path: Path) -> None:
    write(tmp_path, "p.html", "{{ 1 + 1 }}\n")
    assert Templates(tmp_path).render("p.html", req()) == b"2\n"


def test_site_example_renders(tmp_path: Path) -> None:
    t = Templates(SITE_EXAMPLE, site=SITE_VARS, strict=True)
    home = t.render("index.html", req("/", b"from=tests")).decode()
    assert "<title>Home · pushserve</title>" in home
    assert "Welcome, visitor from tests." in home
    assert '<a href="/" aria-current="page">Home</a>' in home
    assert 'src="/img/logo.svg"' in home  # the nav partial
    assert "<svg class=\"icon\"" in home  # a macro
    features = t.render("features/index.html", req("/features/")).decode()
    assert '<a href="/features/" aria-current="page">Features</a>' in features
    assert "<td>103 Early Hints</td>" in features
    not_found = t.render("404.html", req("/nope")).decode()
    assert "<code>/nope</code>" in not_found
    assert t.check_all() == []


# -- the render cache -------------------------------------------------------------------------

def test_cached_render_is_reused(site: Path) -> None:
    t = Templates(site, revalidate_after=0)
    first = t.render("index.html", req())
    assert t.render("index.html", req()) is first
    assert t.render("index.html", req("/", b"q=1")) is not first  # another query, another entry
    assert t.cached == 2


def test_cache_invalidated_when_included_partial_changes(site: Path) -> None:
    t = Templates(site, site={"title": "Demo"}, revalidate_after=0)
    assert b"<nav>Demo at /</nav>" in t.render("index.html", req())
    nav = write(site, "_partials/nav.html", "<nav>changed</nav>\n")
    touch_later(nav)
    assert b"<nav>changed</nav>" in t.render("index.html", req())


def test_cache_invalidated_when_imported_macro_changes(site: Path) -> None:
    t = Templates(site, revalidate_after=0)
    t.render("index.html", req())
    macros = write(site, "_partials/macros.html", "{% macro badge(text, kind='') %}[{{ text }}]{% endmacro %}")
    touch_later(macros)
    assert b"[new] [&lt;x&gt;]" in t.render("index.html", req())


def test_revalidation_waits_for_the_interval(site: Path) -> None:
    now = [100.0]
    t = Templates(site, site={"title": "Demo"}, revalidate_after=5.0, clock=lambda: now[0])
    before = t.render("index.html", req())
    touch_later(write(site, "_partials/nav.html", "<nav>v2</nav>\n"))
    now[0] += 4.9
    assert t.render("index.html", req()) is before  # not looked at yet
    now[0] += 0.2
    assert b"<nav>v2</nav>" in t.render("index.html", req())


def test_missing_optional_include_that_appears_later(tmp_path: Path) -> None:
    write(tmp_path, "p.html", "[{% include '_extra.html' ignore missing %}]")
    t = Templates(tmp_path, revalidate_after=0)
    assert t.render("p.html", req()) == b"[]"
    write(tmp_path, "_extra.html", "extra")
    assert t.render("p.html", req()) == b"[extra]"


def test_plain_page_cache_sees_edits(tmp_path: Path) -> None:
    page = write(tmp_path, "p.html", "one")
    t = Templates(tmp_path, revalidate_after=0)
    assert t.render("p.html", req()) == b"one"
    write(tmp_path, "p.html", "two, longer")
    touch_later(page)
    assert t.render("p.html", req()) == b"two, longer"


def test_renders_reading_headers_are_not_cached(tmp_path: Path) -> None:
    write(tmp_path, "p.html", "{{ request.headers.get('accept-language', '?') }}")
    t = Templates(tmp_path)
    assert t.render("p.html", req(headers=[(b"accept-language", b"de")])) == b"de"
    assert t.render("p.html", req(headers=[(b"accept-language", b"en")])) == b"en"
    assert t.cached == 0


def test_cache_is_bounded(tmp_path: Path) -> None:
    write(tmp_path, "p.html", "{{ request.query }}")
    t = Templates(tmp_path)
    for i in range(CACHE_ENTRIES + 40):
        assert t.render("p.html", req(query=f"n={i}".encode())) == f"n={i}".encode()
    assert t.cached == CACHE_ENTRIES


def test_dependencies(site: Path) -> None:
    t = Templates(site)
    t.render("index.html", req())
    assert t.dependencies("index.html") == {
        "index.html", "_layouts/base.html", "_partials/nav.html", "_partials/macros.html"}
    assert t.dependencies("other.html") == set()


# -- errors ---------------------------------------------------------------------------------

def render_error(t: Templates, rel: str) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        t.render(rel, req())
    return info.value


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.html", "line 1\nline 2\n<p>{{ x + }}</p>\n")
    e = render_error(Templates(tmp_path), "bad.html")
    assert (e.file, e.line) == ("bad.html", 3)
    assert str(e) == f"bad.html:3: {e.message}"


def test_unclosed_block_is_a_syntax_error(tmp_path: Path) -> None:
    write(tmp_path, "bad.html", "line 1\n{% if x %}\nnever closed\n")
    e = render_error(Templates(tmp_path), "bad.html")
    assert e.file == "bad.html" and e.line >= 2
    assert "endif" in e.message


def test_syntax_error_in_included_template_names_that_file(site: Path) -> None:
    write(site, "_partials/nav.html", "<nav>\n{{ broken( }}\n</nav>")
    e = render_error(Templates(site), "index.html")
    assert (e.file, e.line) == ("_partials/nav.html", 2)


def test_missing_include_names_includer_and_line(tmp_path: Path) -> None:
    write(tmp_path, "_partials/box.html", "a\nb\n{% include '_partials/gone.html' %}\n")
    write(tmp_path, "page.html", "x\n{% include '_partials/box.html' %}")
    e = render_error(Templates(tmp_path), "page.html")
    assert (e.file, e.line) == ("_partials/box.html", 3)
    assert "_partials/gone.html" in e.message and "not found" in e.message


def test_undefined_variable_in_strict_mode(site: Path) -> None:
    write(site, "_partials/nav.html", "<nav>\n\n{{ user }}</nav>")
    assert b"<nav>\n\n</nav>" in Templates(site).render("index.html", req())  # lenient by default
    e = render_error(Templates(site, site={"title": "Demo"}, strict=True), "index.html")
    assert (e.file, e.line) == ("_partials/nav.html", 3)
    assert "'user' is undefined" in e.message


def test_runtime_error_is_a_template_error(tmp_path: Path) -> None:
    write(tmp_path, "p.html", "ok\n{{ 1 // 0 }}")
    e = render_error(Templates(tmp_path), "p.html")
    assert (e.file, e.line) == ("p.html", 2)
    assert "ZeroDivisionError" in e.message


def test_invalid_utf8_template(tmp_path: Path) -> None:
    write(tmp_path, "p.html", b"{{ 1 }}\n\xff\xfe")
    e = render_error(Templates(tmp_path), "p.html")
    assert (e.file, e.line) == ("p.html", 2)


def test_missing_page_and_bad_path(tmp_path: Path) -> None:
    t = Templates(tmp_path)
    assert render_error(t, "nope.html").file == "nope.html"
    assert render_error(t, "../etc/passwd").file == "../etc/passwd"


def test_partial_deleted_after_caching(site: Path) -> None:
    t = Templates(site, revalidate_after=0)
    t.render("index.html", req())
    (site / "_partials/nav.html").unlink()
    e = render_error(t, "index.html")
    assert e.file == "_layouts/base.html" and "_partials/nav.html" in e.message


def test_error_fixed_renders_again(tmp_path: Path) -> None:
    page = write(tmp_path, "p.html", "{{ oops(")
    t = Templates(tmp_path, revalidate_after=0)
    render_error(t, "p.html")
    write(tmp_path, "p.html", "{{ 'fixed' }}")
    touch_later(page)
    assert t.render("p.html", req()) == b"fixed"


def test_check_all_lists_every_broken_template(site: Path) -> None:
    write(site, "_partials/broken.html", "{% for x in y %}")  # syntax, in an _ folder
    write(site, "blog/post.html", "a\n{% extends '_layouts/missing.html' %}")
    write(site, "about.html", "{% include '_partials/nav.html' %}\n{% include '_partials/nope.html' %}")
    write(site, "optional.html", "{% include '_partials/nope.html' ignore missing %}")
    write(site, "plain.html", b"\xff not utf-8, no template syntax")
    write(site, ".git/x.html", "{% broken")  # not part of the site
    errors = Templates(site).check_all()
    assert sorted((e.file, e.line) for e in errors) == [
        ("_partials/broken.html", 1), ("about.html", 2), ("blog/post.html", 2)]
    assert all(isinstance(e, TemplateError) and e.message for e in errors)


def test_is_template_path() -> None:
    assert is_template_path("a/b.html") and is_template_path("X.HTM")
    assert not is_template_path("css/site.css")


# -- which pages are templates (issue 16) ----------------------------------------------------

def test_auto_renders_only_pages_that_use_a_template_of_the_site(site: Path) -> None:
    sample = '<pre>{% extends "base.html" %}{{ user.name }} {# x #}</pre>\n'
    write(site, "docs/sample.html", sample)  # names no file of the site: documentation, as text
    write(site, "docs/broken.html", "<pre>{{ unclosed </pre>\r\n")  # would not even compile
    write(site, "page.html", "{% extends '_layouts/base.html' %}{% block title %}P{% endblock %}")
    t = Templates(site, site={"title": "Demo"}, mode="auto")
    scan = t.scan()
    assert sorted(scan.pages) == ["index.html", "page.html"]
    assert scan.template_only == {"_layouts/base.html", "_partials/nav.html", "_partials/macros.html"}
    assert set(t.private) == scan.template_only
    assert t.check_all(scan) == []  # the broken-looking samples are not templates
    assert t.render("docs/sample.html", req("/docs/sample.html")) == sample.encode()
    assert t.render("docs/broken.html", req("/docs/broken.html")) == b"<pre>{{ unclosed </pre>\r\n"
    assert t.render("page.html", req("/page.html")).startswith(b"<title>P | Demo</title>")


def test_a_declared_template_site_renders_every_page_with_jinja_syntax(site: Path) -> None:
    write(site, "hello.html", "{{ site.title }}")
    t = Templates(site, site={"title": "Demo"}, mode=True)
    assert "hello.html" in t.scan().pages
    assert t.render("hello.html", req("/hello.html")) == b"Demo"
    assert Templates(site, site={"title": "Demo"}, mode="auto").render("hello.html", req()) == b"{{ site.title }}"


def test_a_broken_template_page_is_still_an_error_in_auto_mode(site: Path) -> None:
    write(site, "bad.html", "{% extends '_layouts/base.html' %}{% block content %}{{ x(}}{% endblock %}")
    errors = Templates(site, mode="auto").check_all()
    assert [(e.file, e.line) for e in errors] == [("bad.html", 1)]


def test_template_references() -> None:
    from pushserve.site.templates import template_references

    assert template_references(b"{%- extends 'a.html' -%}{% include \"b/c.html\" %}{% import 'm.html' as m %}"
                               b"{% from 'f.html' import x %}{% include name %}") == [
        "a.html", "b/c.html", "m.html", "f.html"]
    # Highlighted code, as Sphinx writes it: markup between the tokens, entities for quotes.
    assert template_references(b'<span class="cp">{%</span> <span class="k">extends</span>') == []
    assert template_references(b"{% extends &quot;base.html&quot; %}") == []
