"""The app a worker runs: each request goes to the mount whose prefix it falls under (longest
prefix first), or else to the site."""

from __future__ import annotations

from collections.abc import Sequence

from pushserve.exchange import DiscardBody, Exchange, Mount
from pushserve.protocol.events import RequestReceived
from pushserve.site.responder import Responder


class Router:
    def __init__(self, responder: Responder, mounts: Sequence[Mount] = ()) -> None:
        self.responder = responder
        # Longest prefix first, so /api/v2 wins over /api.
        self.mounts = sorted(mounts, key=lambda m: len(m.prefix), reverse=True)
        responder.mount_for = self.match_mount  # pushed paths of an app are answered by the app

    def match_mount(self, target: bytes) -> Mount | None:
        for mount in self.mounts:
            p = mount.prefix
            if target.startswith(p) and (len(target) == len(p) or target[len(p)] in b"/?"):
                return mount
        return None

    # -- App ----------------------------------------------------------------------------------------

    def handle(self, exchange: Exchange, request: RequestReceived) -> None:
        mounts = self.mounts
        if mounts:
            mount = self.match_mount(request.target)
            if mount is not None:
                mount.handle(exchange, request)
                return
        if request.end_stream:
            self.responder.serve(exchange, request)
            return
        discard = DiscardBody(exchange, request.stream_id)
        exchange.attach(request.stream_id, discard)
        if self.responder.serve(exchange, request) and request.http_version == "2":
            # The site reads no request body (405 for an upload, say): once the response is out,
            # RST_STREAM(NO_ERROR) tells the client to stop sending (RFC 9113 §8.1).  HTTP/1.1
            # closes the connection after such a response instead.
            exchange.core.reset_stream(request.stream_id, 0)
            exchange.detach(request.stream_id, discard)

    async def startup(self) -> None:
        for mount in self.mounts:
            await mount.startup()

    def drain(self) -> None:
        for mount in self.mounts:
            mount.drain()

    async def shutdown(self) -> None:
        for mount in self.mounts:
            await mount.shutdown()
