"""Plain ASGI responses for compression of app responses: JSON given whole, text streamed in
pieces, and the kinds that must pass untouched (an event stream, no-transform, a body the app
encoded itself, a partial response, a small one)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

ITEMS = [{"id": i, "name": f"item {i}", "tags": ["alpha", "beta", "gamma"]} for i in range(200)]
JSON_BODY = json.dumps({"items": ITEMS}).encode()
PIECES = [(f"<p>piece {i}: " + "streamed text " * 40 + "</p>\n").encode() for i in range(5)]
TEXT = b"plain text that is long enough to be worth compressing. " * 40


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"].removeprefix(scope["root_path"])
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"text/plain; charset=utf-8")]
    status, body = 200, TEXT
    if path == "/json":
        headers = [(b"content-type", b"application/json"), (b"etag", b'"v1"'), (b"vary", b"cookie")]
        body = JSON_BODY
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        for piece in PIECES:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    elif path == "/events":
        headers = [(b"content-type", b"text/event-stream")]
        body = b"data: " + TEXT + b"\n\n"
    elif path == "/no-transform":
        headers.append((b"cache-control", b"no-transform"))
    elif path == "/encoded":
        headers.append((b"content-encoding", b"gzip"))
        body = gzip.compress(TEXT)
    elif path == "/partial":
        status = 206
        headers.append((b"content-range", b"bytes 0-%d/%d" % (len(TEXT) - 1, len(TEXT) * 2)))
    elif path == "/small":
        body = b"short"
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
