"""site_example's search app (site_example/_app/search.py): the index holds what a visitor
reads, never template code, and a query finds it with a snippet cut at word boundaries."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SITE = Path(__file__).resolve().parents[2] / "site_example"


@pytest.fixture(scope="module")
def search() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_search", SITE / "_app" / "search.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def test_index_holds_rendered_text_only(search: ModuleType) -> None:
    index = search.build_index(SITE)
    pages = {p["url"]: p for p in index.pages}
    assert set(pages) == {"/", "/features/"}
    assert pages["/"]["title"] == "Home" and pages["/features/"]["title"] == "Features"
    for page in pages.values():
        assert "{{" not in page["text"] and "{%" not in page["text"] and "<" not in page["text"]
        assert "Welcome, visitor from" not in page["text"]  # only with ?from=, which no index visit has
        assert "What this visit got" not in page["text"]  # the layout's panel is not the page's content
    # Macro arguments and loop items are text a visitor reads, so they are indexed.
    assert "Before the page is ready" in pages["/"]["text"]
    assert "HTTP/1.1 fallback" in pages["/features/"]["text"]


def test_hints_finds_both_pages_with_whole_word_snippets(search: ModuleType) -> None:
    pages = search.build_index(SITE).pages
    text = {p["url"]: p["text"] for p in pages}
    results = search.search(pages, "hints")
    assert {r["url"] for r in results} == {"/", "/features/"}
    for r in results:
        assert r["match"].lower() == "hints"
        assert r["snippet"] == r["before"] + r["match"] + r["after"]
        body = r["snippet"].removeprefix("… ").removesuffix(" …")
        at = text[r["url"]].index(body)
        # starts and ends on a word boundary of the page text
        assert at == 0 or text[r["url"]][at - 1] == " "
        end = at + len(body)
        assert end == len(text[r["url"]]) or text[r["url"]][end] == " "


def test_nothing_and_empty_queries(search: ModuleType) -> None:
    pages = search.build_index(SITE).pages
    assert search.search(pages, "no-such-word-anywhere") == []
    assert search.search(pages, "   ") == []


def test_results_page_uses_the_site_layout(search: ModuleType) -> None:
    index = search.build_index(SITE)
    page = search.results_page(index, "hints", search.search(index.pages, "hints")).decode()
    assert 'class="site-header"' in page and 'href="/css/site.css"' in page
    assert '<a href="/search/" aria-current="page">Search</a>' in page
    assert "<mark>Hints</mark>" in page and 'value="hints"' in page
    empty = search.results_page(index, "<zzz>", []).decode()
    assert "Nothing found for “&lt;zzz&gt;”" in empty  # escaped
