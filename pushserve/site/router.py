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
        if not request.end_stream:
            exchange.attach(request.stream_id, DiscardBody(exchange, request.stream_id))
        self.responder.serve(exchange, request)

    async def startup(self) -> None:
        for mount in self.mounts:
            await mount.startup()

    def drain(self) -> None:
        for mount in self.mounts:
            mount.drain()

    async def shutdown(self) -> None:
        for mount in self.mounts:
            await mount.shutdown()
