"""Callables that are not ASGI 3 apps, as users mount them by mistake."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"hello"]


class FlaskLike:
    """What a Flask app object looks like from outside: __call__(environ, start_response)."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return wsgi(environ, start_response)


flask_app = FlaskLike()


class Asgi2:
    """ASGI 2: made from the scope, then called with (receive, send)."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        return None
