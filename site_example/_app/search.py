"""Site search for the example site, as a plain ASGI app (no framework: pushserve's own
dependencies are all it needs).

    /search/api?q=push   JSON: {"query": ..., "results": [{"url", "title", "snippet"}, ...]}
    /search/?q=push      an HTML results page, styled by the site's own stylesheet

The index of the site's pages is built once per worker, in the lifespan startup, and handed to
requests through the lifespan state.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SITE = Path(__file__).resolve().parent.parent
MAX_RESULTS = 20

_TEMPLATE_TAG = re.compile(r"\{[{%#].*?[}%#]\}", re.S)
_TITLE_BLOCK = re.compile(r"\{%-?\s*block\s+title\s*-?%\}(.*?)\{%-?\s*endblock", re.S)
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)
_SKIPPED_ELEMENTS = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def page_url(rel: Path) -> str:
    parts = rel.parts
    if parts[-1] == "index.html":
        return "/" + "".join(p + "/" for p in parts[:-1])
    return "/" + "/".join(parts)


def index_site(root: Path) -> list[dict[str, str]]:
    """Every servable page: its URL, title and plain text (template syntax and tags removed)."""
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root)
        if any(p.startswith(("_", ".")) for p in rel.parts) or rel.name == "404.html":
            continue
        source = path.read_text("utf-8", "replace")
        title_match = _TITLE_BLOCK.search(source) or _HTML_TITLE.search(source)
        title = _TEMPLATE_TAG.sub("", title_match.group(1)).strip() if title_match else ""
        text = _TEMPLATE_TAG.sub(" ", source)
        text = _SKIPPED_ELEMENTS.sub(" ", text)
        text = html.unescape(_SPACE.sub(" ", _TAG.sub(" ", text))).strip()
        pages.append({"url": page_url(rel), "title": title or page_url(rel), "text": text})
    return pages


def search(pages: list[dict[str, str]], query: str) -> list[dict[str, str]]:
    words = [w for w in query.lower().split() if w]
    if not words:
        return []
    results = []
    for page in pages:
        haystack = (page["title"] + " " + page["text"]).lower()
        if all(w in haystack for w in words):
            at = page["text"].lower().find(words[0])
            start = max(at - 60, 0) if at >= 0 else 0
            snippet = ("…" if start else "") + page["text"][start:start + 160].strip() + "…"
            results.append({"url": page["url"], "title": page["title"], "snippet": snippet})
    return results[:MAX_RESULTS]


async def _respond(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def results_page(query: str, results: list[dict[str, str]]) -> bytes:
    items = "".join(
        f'<li><a href="{html.escape(r["url"])}">{html.escape(r["title"])}</a>'
        f'<p>{html.escape(r["snippet"])}</p></li>'
        for r in results
    )
    found = (f"<ol class=\"results\">{items}</ol>" if results
             else "<p>Nothing found.</p>" if query else "")
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Search{': ' + html.escape(query) if query else ''}</title>"
        "<link rel=\"stylesheet\" href=\"/css/site.css\"></head><body><main id=\"content\">"
        "<h1>Search</h1><form action=\"/search/\" method=\"get\">"
        f"<input type=\"search\" name=\"q\" value=\"{html.escape(query)}\" autofocus> "
        "<button type=\"submit\">Search</button></form>"
        f"{found}<p><a href=\"/\">Home</a></p></main></body></html>"
    ).encode()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["pages"] = index_site(SITE)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    pages = scope.get("state", {}).get("pages")
    if pages is None:  # a server without lifespan support: index on first use
        pages = index_site(SITE)
    route = scope["path"][len(scope["root_path"]):] or "/"
    query = parse_qs(scope["query_string"].decode("latin-1")).get("q", [""])[0]
    if scope["method"] not in ("GET", "HEAD"):
        await _respond(send, 405, b"text/plain; charset=utf-8", b"method not allowed\n")
    elif route == "/api":
        body = json.dumps({"query": query, "results": search(pages, query)}).encode()
        await _respond(send, 200, b"application/json", body)
    elif route == "/":
        await _respond(send, 200, b"text/html; charset=utf-8", results_page(query, search(pages, query)))
    else:
        await _respond(send, 404, b"application/json", b'{"error": "not found"}')
