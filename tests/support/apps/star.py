"""A Starlette app: JSON, params, uploads, streaming, lifespan state, errors, an HTML page."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.apps.recorder import counts, marker, record, wait_for

CHUNK = bytes(range(256)) * 64  # 16 KB


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    marker("star-startup")
    yield {"greeting": "hello from lifespan"}
    marker("star-shutdown")


async def json_route(request: Request) -> Response:
    return JSONResponse({"hello": "world", "path": request.url.path,
                         "root_path": request.scope["root_path"]})


async def item(request: Request) -> Response:
    item_id = request.path_params["item_id"]
    return JSONResponse({
        "id": item_id, "q": request.query_params.get("q"), "path": request.scope["path"],
        "root_path": request.scope["root_path"], "url": str(request.url_for("item", item_id=item_id)),
        "http_version": request.scope["http_version"],
    })


async def echo(request: Request) -> Response:
    digest = hashlib.sha256()
    length = largest = 0
    slow = "slow" in request.query_params
    async for chunk in request.stream():
        digest.update(chunk)
        length += len(chunk)
        largest = max(largest, len(chunk))  # what the server had buffered unread, at most
        if slow:
            await asyncio.sleep(0)  # yield to the loop so unread body piles up in the server
    return JSONResponse({"sha256": digest.hexdigest(), "length": length, "largest_chunk": largest})


async def stream(request: Request) -> Response:
    n = int(request.query_params.get("n", "10"))
    size = int(request.query_params.get("size", "1000"))

    async def parts() -> AsyncIterator[bytes]:
        for i in range(n):
            yield bytes([65 + i % 26]) * size

    return StreamingResponse(parts(), media_type="application/octet-stream")


async def endless(request: Request) -> Response:
    """Streams (up to ~1.6 GB) until the client goes; counts how its streams ended."""
    tag = request.query_params.get("tag", "")

    async def parts() -> AsyncIterator[bytes]:
        try:
            for _ in range(100_000):
                record(f"stream-chunk:{tag}")
                yield CHUNK
        finally:
            record(f"stream-end:{tag}")

    return StreamingResponse(parts(), media_type="application/octet-stream")


async def upload_slow(request: Request) -> Response:
    """Reads an upload; records the start and a disconnect, for reset tests."""
    tag = request.query_params.get("tag", "")
    total = 0
    try:
        async for chunk in request.stream():
            if total == 0 and chunk:
                record(f"upload-started:{tag}")
            total += len(chunk)
    except ClientDisconnect:
        record(f"upload-disconnect:{tag}")
        raise
    return JSONResponse({"length": total})


async def events(request: Request) -> Response:
    name = request.query_params["name"]
    count = int(request.query_params.get("count", "1"))
    return JSONResponse({"name": name, "count": await wait_for(name, count) if count else counts[name]})


async def state(request: Request) -> Response:
    return JSONResponse({"greeting": request.state.greeting})


async def boom(request: Request) -> Response:
    raise RuntimeError("star boom")


async def page(request: Request) -> Response:
    return HTMLResponse('<!doctype html><html><head><title>app page</title>'
                        '<link rel="stylesheet" href="/css/site.css">'
                        '<script src="/js/app.js" defer></script></head>'
                        f'<body><p>rendered by the app, count {counts["page"]}</p></body></html>')


app = Starlette(lifespan=lifespan, routes=[
    Route("/json", json_route),
    Route("/items/{item_id:int}", item, name="item"),
    Route("/echo", echo, methods=["POST"]),
    Route("/stream", stream),
    Route("/endless", endless),
    Route("/upload-slow", upload_slow, methods=["POST"]),
    Route("/events", events),
    Route("/state", state),
    Route("/boom", boom),
    Route("/page", page),
])
