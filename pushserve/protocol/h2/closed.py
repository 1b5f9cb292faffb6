"""The memory of closed stream ids: how each recently closed stream ended — both sides sent
END_STREAM, the peer reset it, we did — so that a late frame on it is answered as RFC 9113 §5.1
asks for that way of closing (see streams.PEER_MAY_SEND), and so that a late call of the layer
above on it can be told from misuse (an answered stream, versus one reset under its feet).

Memory is bounded: the last 512 to 1024 closed ids, kept in two generations; an id forgotten is
``FORGOTTEN``.  Two dicts instead of evicting the oldest id one by one: deleting from the front of
a dict makes its iteration crawl over the holes, and this runs once per stream."""

from __future__ import annotations

from pushserve.protocol.h2.streams import CLOSED, FORGOTTEN, RESET_BY_PEER, RESET_BY_US

GENERATION = 512  # ids per generation: 512 to 1024 remembered

__all__ = ["CLOSED", "FORGOTTEN", "GENERATION", "RESET_BY_PEER", "RESET_BY_US", "ClosedStreams"]


class ClosedStreams:
    __slots__ = ("_older", "_recent")

    def __init__(self) -> None:
        self._recent: dict[int, int] = {}
        self._older: dict[int, int] = {}

    def add(self, stream_id: int, how: int) -> None:
        """``stream_id`` closed ``how``: CLOSED, RESET_BY_PEER or RESET_BY_US."""
        recent = self._recent
        recent[stream_id] = how
        if len(recent) >= GENERATION:
            self._older, self._recent = recent, {}

    def how(self, stream_id: int) -> int:
        """How ``stream_id`` closed, or FORGOTTEN when it is not (or no longer) remembered."""
        how = self._recent.get(stream_id)
        if how is None:
            return self._older.get(stream_id, FORGOTTEN)
        return how
