"""Speculation Rules inferred from a site's pages: which linked pages a page's rule set names,
which it leaves out and why, the rule set's JSON, and how a worker serves it (site/speculation.py,
site/rule_sets.py) — on real files, through the real push manifest and templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pushserve.site.manifest_store import PushManifest
from pushserve.site.paths import SitePaths
from pushserve.site.rule_sets import RuleSets
from pushserve.site.speculation import (
    PageRules,
    Target,
    header_value,
    page_of_rules,
    rules_path,
    rules_url,
    url_pattern,
)
from pushserve.site.templates import Templates

NAV_SITE = {
    "_layouts/base.html": """<!doctype html><title>{{ title }}</title>
<header><nav>
  <a href="/">Home</a> <a href="/guide/">Guide</a> <a href="/blog/first.html">Blog</a>
  <a href="/search/">Search</a> <a href="https://elsewhere.example/">Elsewhere</a>
</nav></header>
<main>{% block content %}{% endblock %}</main>
<footer><a href="/css/site.css">styles</a> <a href="/gone.html">gone</a> <a href="/guide">guide</a>
<a href="#top">top</a> <a href="/_pushserve/">dev</a></footer>""",
    "index.html": '{% extends "_layouts/base.html" %}{% block content %}'
                  '<p>{{ request.args.get("from", "") }}</p><a href="/?from=home">again</a>'
                  '<a href="/guide/?tab=2">guide, tab 2</a>{% endblock %}',
    "guide/index.html": '{% extends "_layouts/base.html" %}{% block content %}<p>guide</p>{% endblock %}',
    "blog/first.html": '{% extends "_layouts/base.html" %}{% block content %}<p>first</p>{% endblock %}',
    "css/site.css": "body{}",
}

# What Sphinx and MkDocs write: <link rel=next/prev> in the head, and "next"/"previous" links
# relative to the page.
DOCS_SITE = {
    "docs/index.html": """<!doctype html><head><link rel="next" title="Install" href="install.html">
<link rel="stylesheet" href="../_static/basic.css"></head><body>
<div class="related"><a href="genindex.html" accesskey="I">index</a></div>
<a class="reference internal" href="install.html">Install</a>
<footer><a href="install.html" class="btn btn-neutral float-right" rel="next">Next</a></footer></body>""",
    "docs/install.html": """<!doctype html><head><link rel="prev" href="index.html">
<link rel="next" href="usage.html"></head><body>
<a href="index.html" rel="prev" title="previous chapter">Welcome</a>
<a href="usage.html" rel="next" title="next chapter">Usage</a></body>""",
    "docs/usage.html": '<!doctype html><a href="install.html" rel="prev">Install</a>'
                       '<a href="../changes.html" rel="next">Changes</a>',
    "docs/genindex.html": "<!doctype html><p>index</p>",
    "changes.html": "<!doctype html><p>changes</p>",
    "_static/basic.css": "",
}


def make_site(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def rule_sets(root: Path, mode: str = "prefetch", *, mounts: tuple[str, ...] = (), templates: bool = False,
              dev: bool = False) -> RuleSets:
    """The rule sets a worker keeps for the site at ``root``, built as app.py builds them."""
    tpl = Templates(root, mode="auto") if templates else None
    if tpl is not None:
        tpl.scan()
    private = tpl.private if tpl is not None else None
    manifest = PushManifest(root, tpl.render_static if tpl is not None else None,
                            template_deps=tpl.dependencies if tpl is not None else None, private=private)
    return RuleSets(mode, manifest, SitePaths(root, private), mounts=mounts,  # type: ignore[arg-type]
                    varies_by_query=tpl.varies_by_query if tpl is not None else lambda page: False, dev=dev)


def test_a_nav_gives_its_pages_and_says_why_the_rest_is_left_out(tmp_path: Path) -> None:
    sets = rule_sets(make_site(tmp_path, NAV_SITE), mounts=("/search",), templates=True)
    rules = sets.rules("guide/index.html")
    assert rules.of("prefetch") == ["/", "/blog/first.html"]  # the nav's other pages, in page order
    assert rules.of("prerender") == []
    assert dict(rules.skipped) == {
        "/search/": "a mounted app (a GET may change its state)",
        "/css/site.css": "not a page of the site",
        "/gone.html": "not a page of the site",
        "/guide": "not a page (redirects to /guide/)",
        "/_pushserve/": "pushserve's own path",
    }
    # The home page links to itself with a query, and its template reads the query: left out; the
    # guide with a query is the guide (it never reads its query), so it is speculated.
    home = sets.rules("index.html")
    assert home.of("prefetch") == ["/guide/", "/blog/first.html", "/guide/?tab=2"]
    assert dict(home.skipped)["/?from=home"] == "has a query, and the page reads it"


def test_next_and_previous_links_of_a_generated_site(tmp_path: Path) -> None:
    sets = rule_sets(make_site(tmp_path, DOCS_SITE))
    assert sets.rules("docs/index.html").of("prefetch") == ["/docs/genindex.html", "/docs/install.html"]
    assert sets.rules("docs/install.html").of("prefetch") == ["/docs/index.html", "/docs/usage.html"]
    assert sets.rules("docs/usage.html").of("prefetch") == ["/docs/install.html", "/changes.html"]
    assert sets.rules("changes.html").empty
    assert sets.page_headers("changes.html") == [(b"no-vary-search", b"params")]  # no rules to name


def test_marked_links_are_never_speculated_whatever_other_links_say(tmp_path: Path) -> None:
    make_site(tmp_path, {
        "index.html": """<a href="/a.html">a</a> <a href="/a.html" rel="nofollow">a again</a>
<a href="/b.html" data-no-speculate>b</a> <a href="/b.html">b again</a>
<a href="/c.html" rel="external NoFollow">c</a> <a href="/d.html" download>d</a>
<a href="/e.html" data-prerender>e</a> <a href="/e.html">e again</a> <a href="/f.html">f</a>
<area href="/g.html" alt="g">""",
        **{f"{name}.html": name for name in "abcdefg"},
    })
    sets = rule_sets(tmp_path)
    rules = sets.rules("index.html")
    assert rules.targets == (Target("/e.html", "prerender"), Target("/f.html", "prefetch"),
                             Target("/g.html", "prefetch"))
    assert dict(rules.skipped) == {"/a.html": "marked rel=nofollow", "/b.html": "marked data-no-speculate",
                                   "/c.html": "marked rel=nofollow", "/d.html": "a download"}
    everything = rule_sets(tmp_path, "prerender").rules("index.html")
    assert [t.url for t in everything.targets if t.action == "prerender"] == ["/e.html", "/f.html", "/g.html"]
    assert dict(everything.skipped) == dict(rules.skipped)  # the marks hold in every mode
    off = rule_sets(tmp_path, "off")
    assert off.rules("index.html").empty and off.page_headers("index.html") == []


def test_a_query_is_speculated_only_toward_a_page_that_does_not_read_it(tmp_path: Path) -> None:
    make_site(tmp_path, {
        "_base.html": "{% block body %}{% endblock %}",
        "index.html": '<a href="/plain.html?utm=x">plain</a> <a href="/reads.html?q=1">reads</a> '
                      '<a href="/ignores.html?q=1">ignores</a> <a href="/search?q=1">app</a>',
        "plain.html": "<p>no template</p>",
        "reads.html": '{% extends "_base.html" %}{% block body %}{{ request.query }}{% endblock %}',
        "ignores.html": '{% extends "_base.html" %}{% block body %}{{ request.path }}{% endblock %}',
    })
    sets = rule_sets(tmp_path, mounts=("/search",), templates=True)
    rules = sets.rules("index.html")
    assert rules.of("prefetch") == ["/plain.html?utm=x", "/ignores.html?q=1"]
    assert dict(rules.skipped) == {"/reads.html?q=1": "has a query, and the page reads it",
                                   "/search?q=1": "a mounted app (a GET may change its state)"}
    # The pages say it themselves: No-Vary-Search where the query does not matter.
    assert (b"no-vary-search", b"params") in sets.page_headers("plain.html")
    assert (b"no-vary-search", b"params") in sets.page_headers("ignores.html")
    assert all(name != b"no-vary-search" for name, _ in sets.page_headers("reads.html"))
    [with_query] = json.loads(rules.json())["prefetch"]  # every target has a query: one rule
    assert with_query["expects_no_vary_search"] == "params"
    assert with_query["where"]["href_matches"] == [{"pathname": "/plain.html", "search": "utm=x"},
                                                   {"pathname": "/ignores.html", "search": "q=1"}]


def test_the_rule_set_json_names_each_target_exactly() -> None:
    rules = PageRules((Target("/a/", "prefetch"), Target("/b:(1)*.html", "prefetch"),
                       Target("/c.html", "prerender")))
    data = json.loads(rules.json())
    assert data == {
        "prefetch": [{"source": "document", "eagerness": "moderate", "where": {"href_matches": [
            {"pathname": "/a/", "search": ""}, {"pathname": "/b\\:\\(1\\)\\*.html", "search": ""}]}}],
        "prerender": [{"source": "document", "eagerness": "moderate", "where": {"href_matches": [
            {"pathname": "/c.html", "search": ""}]}}],
    }
    assert url_pattern("/x?a=1&b={2}") == {"pathname": "/x", "search": "a=1&b=\\{2\\}"}
    assert rules.json() == PageRules(rules.targets).json() and len(rules.version()) == 12
    assert PageRules().json() == b"{}\n"


@pytest.mark.parametrize("page", ["index.html", "features/index.html", "a b/caf\u00e9.html"])
def test_a_rule_set_url_names_its_page(page: str) -> None:
    path = rules_path(page)
    assert path.isascii() and " " not in path and path.startswith("/_pushserve/speculation/")
    assert page_of_rules(path) == page
    assert header_value(rules_url(page, PageRules())).startswith(b'"/_pushserve/speculation/')
    assert page_of_rules("/_pushserve/speculation/.json") is None and page_of_rules("/index.html") is None


def test_a_worker_answers_rule_sets(tmp_path: Path) -> None:
    sets = rule_sets(make_site(tmp_path, DOCS_SITE))
    rules = sets.rules("docs/install.html")
    [value] = [v for k, v in sets.page_headers("docs/install.html") if k == b"speculation-rules"]
    url = value.strip(b'"')
    assert url == rules_url("docs/install.html", rules).encode()
    fresh = sets.answer(b"GET", url, [])
    assert fresh.status == 200 and fresh.body == rules.json()
    assert dict(fresh.headers)[b"content-type"] == b"application/speculationrules+json"
    assert dict(fresh.headers)[b"cache-control"] == b"public, max-age=31536000, immutable"
    # Asked for another version (a page a moment older named it): the rules as they are now.
    old = sets.answer(b"GET", url.partition(b"?")[0] + b"?v=000000000000", [])
    assert old.body == rules.json() and old.headers == fresh.headers
    etag = dict(fresh.headers)[b"etag"]
    assert sets.answer(b"GET", url, [(b"if-none-match", etag)]).status == 304
    head = sets.answer(b"HEAD", url, [])
    assert head.status == 200 and head.body is None
    assert sets.answer(b"POST", url, []).status == 405
    for missing in (b"/_pushserve/speculation/docs/nope.html.json", b"/_pushserve/speculation/_static/basic.css.json",
                    b"/_pushserve/speculation/../changes.html.json"):
        assert sets.answer(b"GET", missing, []).status == 404, missing
    # Another worker, which never served the page, answers the same (it infers the page then).
    other = rule_sets(tmp_path).answer(b"GET", url, [])
    assert other.body == rules.json()
    assert dict(other.headers)[b"cache-control"] == b"public, max-age=31536000, immutable"
    assert dict(rule_sets(tmp_path, dev=True).answer(b"GET", url, []).headers)[b"cache-control"] == b"no-cache"


def test_rules_follow_the_pages_they_name(tmp_path: Path) -> None:
    make_site(tmp_path, {"index.html": '<a href="/next.html">next</a>'})
    sets = rule_sets(tmp_path, dev=True)  # dev mode: looked at again on every request
    assert sets.rules("index.html").empty
    (tmp_path / "next.html").write_text("<p>now it exists</p>")
    assert sets.rules("index.html").of("prefetch") == ["/next.html"]
