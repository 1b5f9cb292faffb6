"""A page that takes a while to produce (think of a database query): the case 103 Early Hints
exist for.  Its HTML links resources of site_example, which pushserve learns from the first
response and announces on later requests as soon as they arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

THINK_SECONDS = 0.4

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Slow page</title>
<link rel="stylesheet" href="/css/site.css">
<script type="module" src="/js/app.js"></script>
</head><body><main id="content"><h1>Results</h1><p>Produced after some thinking.</p></main></body></html>
"""


async def app(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
              send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    await asyncio.sleep(THINK_SECONDS)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")]})
    await send({"type": "http.response.body", "body": PAGE})
