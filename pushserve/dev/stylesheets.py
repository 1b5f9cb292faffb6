"""Which stylesheets to swap in the open pages when stylesheets changed: each changed one and
every stylesheet that ``@import``s it, directly or through others.

A page links ``site.css``, which imports ``typography.css``: an edit of ``typography.css`` is
shown by swapping the page's ``<link>`` to ``site.css`` for a new URL; the new ``site.css``
imports ``typography.css`` again, and since dev mode serves everything ``no-cache``, the browser
revalidates it and gets the edit.  The stylesheets looked at are those the push manifest lists
(it follows every page's stylesheets and their imports).  Pure but for ``read``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pushserve.scan import scan_stylesheet
from pushserve.scan.found import IMPORT
from pushserve.scan.urls import SITE_ORIGIN, encode_path, path_and_query, site_url


def stylesheets_to_swap(changed: Iterable[str], stylesheets: Iterable[str],
                        read: Callable[[str], str]) -> list[str]:
    """URL paths (percent-encoded, as the push manifest and the browser have them): the
    ``changed`` ones first, then their importers nearest first.  ``stylesheets`` are the URL
    paths of the site's stylesheets; ``read`` gives one's text."""
    importers: dict[str, set[str]] = {}
    for sheet in stylesheets:
        for found in scan_stylesheet(read(sheet), site_url(sheet)):
            if found.via == IMPORT and found.url.startswith(SITE_ORIGIN + "/"):
                importers.setdefault(path_and_query(found.url)[0], set()).add(sheet)
    order = list(dict.fromkeys(encode_path(path) for path in changed))
    for sheet in order:  # breadth first; the list grows while it is walked
        order += sorted(importers.get(sheet, set()) - set(order))
    return order
