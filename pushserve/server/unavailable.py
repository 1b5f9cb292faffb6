"""The app of a worker that could not build its own: every request is answered 503.

A replacement worker must start whatever state the site is in (its folder deleted or being
swapped, a file broken since the start): rather than fail — and, failing again and again, stop
the server — it serves this and tells the master why ("standby"), which replaces it once the
site folder is back or changes (or on SIGHUP), and steers new connections to it only when no worker that
serves the site can take them.
"""

from __future__ import annotations

from pushserve.exchange import StatelessApp, Stream

_BODY = b"503 Service Unavailable: the site cannot be served right now; retry shortly\n"
_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(_BODY)),
            (b"retry-after", b"1"), (b"cache-control", b"no-store")]


class Unavailable(StatelessApp):
    def handle(self, stream: Stream) -> None:
        if not stream.request.end_stream:
            stream.decline_body()  # nobody reads it: dropped as it comes, as the site's router does
        stream.respond(503, list(_HEADERS), _BODY)
