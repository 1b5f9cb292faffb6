"""Site search for the example site, as a plain ASGI app (no framework: pushserve's own
dependencies are all it needs).

    /search/?q=hints     an HTML results page, in the site's own layout (_app/results.html)
    /search/api?q=push   JSON: {"query": ..., "results": [{"url", "title", "snippet"}, ...]}

The index is made by rendering each page with Jinja2, as pushserve renders it for a visitor
with no query string, and keeping its title and the text of its <main>: so a search finds the
text a visitor reads (macro arguments, loops) and never template code, header or footer.  It is
built once per worker, in the lifespan startup, and handed to requests through the lifespan state.
"""

from __future__ import annotations

import html
import json
import re
import tomllib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SITE = Path(__file__).resolve().parent.parent
MAX_RESULTS = 20
SNIPPET = 160  # characters of text shown around the first match

_MAIN = re.compile(r"<main\b[^>]*>(.*?)</main>", re.S | re.I)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)
_SKIPPED_ELEMENTS = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
# Block elements separate words; inline ones (code, a, mark) sit inside a sentence.
_BLOCK_TAG = re.compile(r"</?(?:p|h[1-6]|li|ol|ul|dl|dt|dd|div|section|article|figure|figcaption|table|tr|td|th|br|"
                        r"header|footer|nav|label|form|button|pre)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class PageRequest:
    """What the site's templates read from ``request``: a visit with no query and no headers."""

    path: str
    args: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""


@dataclass
class Index:
    env: jinja2.Environment
    site: dict[str, Any]
    pages: list[dict[str, str]]


def page_url(rel: Path) -> str:
    parts = rel.parts
    if parts[-1] == "index.html":
        return "/" + "".join(p + "/" for p in parts[:-1])
    return "/" + "/".join(parts)


def plain_text(markup: str) -> str:
    text = _TAG.sub("", _BLOCK_TAG.sub(" ", _SKIPPED_ELEMENTS.sub(" ", markup)))
    return html.unescape(_SPACE.sub(" ", text)).strip()


def build_index(root: Path) -> Index:
    """Every servable page: its URL, title and the plain text of its content."""
    try:
        site = tomllib.loads((root / "pushserve.toml").read_text("utf-8")).get("site", {})
    except (OSError, tomllib.TOMLDecodeError):
        site = {}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(root), autoescape=True)
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root)
        if any(p.startswith(("_", ".")) for p in rel.parts) or rel.name == "404.html":
            continue
        url = page_url(rel)
        try:
            page = env.get_template(rel.as_posix()).render(site=site, request=PageRequest(url))
        except jinja2.TemplateError:
            continue  # pushserve itself reports a broken template, with file and line
        title_match, main = _TITLE.search(page), _MAIN.search(page)
        # "Features · pushserve": the page's own part of the title
        title = plain_text(title_match.group(1)).split(" · ")[0] if title_match else ""
        text = plain_text(main.group(1) if main else page)
        pages.append({"url": url, "title": title or url, "text": text})
    return Index(env, site, pages)


def search(pages: list[dict[str, str]], query: str) -> list[dict[str, Any]]:
    """Pages holding every word of the query, with the text around the first word's first match."""
    words = [w for w in query.lower().split() if w]
    if not words:
        return []
    results: list[dict[str, Any]] = []
    for page in pages:
        haystack = (page["title"] + " " + page["text"]).lower()
        if not all(w in haystack for w in words):
            continue
        text = page["text"]
        at = text.lower().find(words[0])
        if at < 0:  # matched in the title only
            before, match, after = "", "", text[:SNIPPET]
        else:
            # Whole words only: start after a space, end before one.
            start = text.rfind(" ", 0, max(at - SNIPPET // 3, 0)) + 1
            end = start + SNIPPET if start + SNIPPET >= len(text) else text.rfind(" ", at, start + SNIPPET)
            end = len(text) if end < 0 else end
            before = ("… " if start else "") + text[start:at]
            match = text[at:at + len(words[0])]
            after = text[at + len(words[0]):end] + (" …" if end < len(text) else "")
        results.append({"url": page["url"], "title": page["title"], "snippet": before + match + after,
                        "before": before, "match": match, "after": after})
    return results[:MAX_RESULTS]


async def _respond(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def results_page(index: Index, query: str, results: list[dict[str, Any]]) -> bytes:
    template = index.env.get_template("_app/results.html")
    request = PageRequest("/search/", {"q": query} if query else {})
    return template.render(site=index.site, request=request, query=query, results=results).encode()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["index"] = build_index(SITE)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    index = scope.get("state", {}).get("index")
    if index is None:  # a server without lifespan support: index on first use
        index = build_index(SITE)
    route = scope["path"][len(scope["root_path"]):] or "/"
    query = parse_qs(scope["query_string"].decode("latin-1")).get("q", [""])[0].strip()
    if scope["method"] not in ("GET", "HEAD"):
        await _respond(send, 405, b"text/plain; charset=utf-8", b"method not allowed\n")
    elif route == "/api":
        hits = [{k: hit[k] for k in ("url", "title", "snippet")} for hit in search(index.pages, query)]
        await _respond(send, 200, b"application/json", json.dumps({"query": query, "results": hits}).encode())
    elif route == "/":
        await _respond(send, 200, b"text/html; charset=utf-8", results_page(index, query, search(index.pages, query)))
    else:
        await _respond(send, 404, b"application/json", b'{"error": "not found"}')
