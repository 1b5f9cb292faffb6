"""Plain ASGI apps for the adapter's edges: the scope as the app sees it, failures before and
during a response, an app's own early hints, lifespan failure and lifespan not supported."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _json(send: Send, obj: object, status: int = 200) -> None:
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _describe(scope: Scope) -> dict[str, Any]:
    ext = scope.get("extensions", {})
    return {
        "type": scope["type"], "asgi": scope["asgi"], "http_version": scope["http_version"],
        "method": scope["method"], "scheme": scope["scheme"], "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"), "query_string": scope["query_string"].decode(),
        "root_path": scope["root_path"],
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "client": list(scope["client"]) if scope["client"] else None,
        "server": list(scope["server"]) if scope["server"] else None,
        "state": scope.get("state"), "extensions": sorted(ext),
        "tls": {k: v for k, v in ext.get("tls", {}).items() if k in ("tls_version", "cipher_suite")},
    }


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["raw"] = "state from raw lifespan"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"][len(scope["root_path"]):]
    if path.startswith("/scope"):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await _json(send, {**_describe(scope), "body_length": len(body)})
    elif path == "/boom":
        raise RuntimeError("raw boom before the response")
    elif path == "/half":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial ", "more_body": True})
        raise RuntimeError("raw boom in the middle of the response")
    elif path == "/noreply":
        return
    elif path == "/hint":
        await send({"type": "http.response.early_hint", "links": [b"</css/site.css>; rel=preload; as=style"]})
        await _json(send, {"hinted": True})
    elif path == "/badheader":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-ok", b"fine\r\nx-injected: yes")]})
        await send({"type": "http.response.body", "body": b"never"})
    elif path == "/hopbyhop":
        # Written for HTTP/1.1 servers: connection-level fields HTTP/2 forbids in a message.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"Connection", b"keep-alive"), (b"Transfer-Encoding", b"chunked"),
                                (b"Keep-Alive", b"timeout=5"), (b"Content-Type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"framed by the server", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/head":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})
    else:
        await _json(send, {"error": "not found", "path": path}, 404)


async def failing(scope: Scope, receive: Receive, send: Send) -> None:
    """Its lifespan startup fails: the server must not start."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await _json(send, {"unreachable": True})


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """Written for http only, as many small apps are."""
    assert scope["type"] == "http", "only http here"
    await _json(send, {"no_lifespan": True})


def make_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A factory, for MODULE:FACTORY() mounts."""
    return no_lifespan


not_callable = 42
