"""Starlette ``StaticFiles`` behind ``GZipMiddleware`` (level 6, 512-byte minimum, as pushserve's
threshold): how a Python app server such as Granian serves compressed files (compressed per
request; nothing is cached)."""

from __future__ import annotations

import os
from typing import Any

from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

_gzip = GZipMiddleware(StaticFiles(directory=os.environ.get("BENCH_DOCROOT", "benchmarks/site")),
                       minimum_size=512, compresslevel=6)


async def app(scope: Any, receive: Any, send: Any) -> None:
    # Granian offers http.response.pathsend, and FileResponse then hands it the path, which
    # GZipMiddleware cannot compress: without the extension the body goes through the middleware.
    if scope["type"] == "http":
        scope["extensions"] = {k: v for k, v in (scope.get("extensions") or {}).items()
                               if k != "http.response.pathsend"}
    await _gzip(scope, receive, send)
