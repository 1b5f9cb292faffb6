"""The app of a worker that could not build its own: every request is answered 503.

A replacement worker must start whatever state the site is in (its folder deleted or being
swapped, a file broken since the start): rather than fail — and, failing again and again, stop
the server — it serves this and tells the master why ("standby"), which replaces it once the
site folder is back or changes (or on SIGHUP), and steers new connections to it only when no worker that
serves the site can take them.
"""

from __future__ import annotations

from pushserve.exchange import DiscardBody, Exchange
from pushserve.protocol.events import RequestReceived

_BODY = b"503 Service Unavailable: the site cannot be served right now; retry shortly\n"
_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(_BODY)),
            (b"retry-after", b"1"), (b"cache-control", b"no-store")]


class Unavailable:
    def handle(self, exchange: Exchange, request: RequestReceived) -> None:
        headers = exchange.default_headers()
        headers += _HEADERS
        sid = request.stream_id
        if request.end_stream:
            exchange.core.send_response(sid, 503, headers, _BODY)
            return
        # A request body nobody reads: dropped as it comes, and on HTTP/2 the stream is reset
        # (NO_ERROR) once the answer is out, as the site's router does.
        discard = DiscardBody(exchange, sid)
        exchange.attach(sid, discard)
        exchange.core.send_response(sid, 503, headers, _BODY)
        if request.http_version == "2":
            exchange.core.reset_stream(sid, 0)
            exchange.detach(sid, discard)

    async def startup(self) -> None:
        pass

    def drain(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
