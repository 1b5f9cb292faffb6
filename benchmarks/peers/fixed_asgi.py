"""ASGI apps that give every request the same answer, with lifespan support: the "hello" app of
``benchmarks.asgi_hello``, and ``not_found``, the app Granian is given (it needs one to start; its
static-file route serves the benchmark's files before any request reaches the app).  Nothing is
imported at run time, so the app adds next to nothing to a server's memory figure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Receive = Callable[[], Awaitable[Any]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
    App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def fixed_answer(status: int, body: bytes, content_type: bytes | None = None) -> App:
    headers = [(b"content-length", b"%d" % len(body))]
    if content_type is not None:
        headers.insert(0, (b"content-type", content_type))
    # Built once: the answer costs two sends and no allocation per request.
    start = {"type": "http.response.start", "status": status, "headers": headers}
    end = {"type": "http.response.body", "body": body}

    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send(start)
        await send(end)

    return app


not_found = fixed_answer(404, b"")
