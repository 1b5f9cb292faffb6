"""The app a worker runs: each request goes to the mount whose prefix it falls under (longest
prefix first), or else to the site.  Pushed requests come this way too (``Stream.push`` hands
them to the app), so a pushed path of a mounted app is answered by that app."""

from __future__ import annotations

from collections.abc import Sequence

from pushserve.exchange import Mount, Stream
from pushserve.site.responder import Responder


class Router:
    def __init__(self, responder: Responder, mounts: Sequence[Mount] = ()) -> None:
        self.responder = responder
        # Longest prefix first, so /api/v2 wins over /api.
        self.mounts = sorted(mounts, key=lambda m: len(m.prefix), reverse=True)
        # What every mounted path starts with: most requests are the site's, told in one C call.
        self._prefixes = tuple(m.prefix for m in self.mounts)

    def match_mount(self, target: bytes) -> Mount | None:
        for mount in self.mounts:
            p = mount.prefix
            if target.startswith(p) and (len(target) == len(p) or target[len(p)] in b"/?"):
                return mount
        return None

    # -- App ----------------------------------------------------------------------------------------

    def handle(self, stream: Stream) -> None:
        target = stream.request.target
        if self._prefixes and target.startswith(self._prefixes):
            mount = self.match_mount(target)
            if mount is not None:
                mount.handle(stream)
                return
        self.responder.handle(stream)

    async def startup(self) -> None:
        for mount in self.mounts:
            await mount.startup()

    def drain(self) -> None:
        for mount in self.mounts:
            mount.drain()

    async def shutdown(self) -> None:
        for mount in self.mounts:
            await mount.shutdown()
