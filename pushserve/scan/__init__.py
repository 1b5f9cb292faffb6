"""What a page needs, read from its HTML, the CSS and the JavaScript modules it loads: the one
scanner behind the push manifest (what pushserve announces) and the bench (what it expects a
browser to fetch), so the two cannot drift apart.

- ``PageScanner`` reads a page as it arrives (``markup.py``); ``scan_stylesheet`` and
  ``scan_module`` read what it loads (``css.py``, ``modules.py``, through the page's import map:
  ``importmap.py``); references resolve as a browser resolves them (``urls.py``);
- each fetch is a ``Found`` (``found.py``): its absolute URL, what it is, what named it, and
  whether it is critical to the first render;
- ``crawl`` follows a page's stylesheets and modules through a ``fetch`` of the caller's.

Pure: no files, no network, no pushserve import outside this package.
"""

from __future__ import annotations

from collections.abc import Callable

from pushserve.scan.found import CSS_URL, Found, Link
from pushserve.scan.importmap import ImportMap
from pushserve.scan.markup import PageScanner, scan_module, scan_stylesheet

__all__ = ["Found", "ImportMap", "Link", "PageScanner", "crawl", "follows", "scan_module", "scan_stylesheet"]


def follows(found: Found) -> bool:
    """Whether a fetch is read for more: a stylesheet, or a module script."""
    return (found.type == "style" and found.via != CSS_URL) or found.module


def crawl(page_url: str, html: str, fetch: Callable[[str], str | None]) -> list[Found]:
    """Everything a page makes the browser fetch, transitively, in the order it is discovered:
    ``fetch(url)`` gives the text of a stylesheet or module (None when there is none).  Each URL
    once."""
    scanner = PageScanner(page_url)
    scanner.feed(html)
    queue = scanner.found_all()
    seen: set[str] = set()
    out: list[Found] = []
    while queue:
        found = queue.pop(0)
        if found.url in seen:
            continue
        seen.add(found.url)
        out.append(found)
        if follows(found):
            text = fetch(found.url) or ""
            if found.module:
                queue += scan_module(text, found.url, scanner.import_map)
            else:
                queue += scan_stylesheet(text, found.url, critical=found.critical)
    return out
