"""A header block that spans frames: a HEADERS frame without END_HEADERS, then CONTINUATION
frames on the same stream until one carries END_HEADERS, with nothing in between (RFC 9113
§6.10).  Bounded before anything is decoded: at most ``MAX_CONTINUATIONS`` frames (the
CONTINUATION floods of CVE-2024-27316) and no more compressed bytes than the header list may
hold.  A block that ends in its HEADERS frame never comes here."""

from __future__ import annotations

from pushserve.protocol.h2.errors import calm, protocol_error
from pushserve.protocol.h2.frames import CONTINUATION, END_HEADERS

MAX_CONTINUATIONS = 32


class HeaderBlockAssembler:
    """The one header block a connection may have open.  ``stream_id`` is 0 while none is."""

    __slots__ = ("_continuations", "_max_size", "_pieces", "_size", "flags", "self_dep", "stream_id")

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self.stream_id = 0
        self.flags = 0  # the HEADERS frame's flags (END_STREAM counts once the block is whole)
        self.self_dep = False  # its priority fields named the stream itself
        self._pieces: list[bytes] = []
        self._size = 0
        self._continuations = 0

    def start(self, stream_id: int, flags: int, fragment: bytes, self_dep: bool) -> None:
        """A HEADERS frame without END_HEADERS (padding and priority fields already removed)."""
        if not stream_id:
            raise protocol_error("HEADERS on stream 0")
        self.stream_id, self.flags, self.self_dep = stream_id, flags, self_dep
        self._pieces = [fragment]
        self._size = len(fragment)
        self._continuations = 0

    def add(self, ftype: int, stream_id: int, flags: int, fragment: bytes) -> bytes | None:
        """The next frame while a block is open: it must be a CONTINUATION on the block's stream.
        Returns the whole block once END_HEADERS came, else None."""
        if ftype != CONTINUATION or stream_id != self.stream_id:
            raise protocol_error(f"frame type {ftype} inside the header block of stream {self.stream_id}")
        self._continuations += 1
        if self._continuations > MAX_CONTINUATIONS:
            raise calm(f"CONTINUATION flood: {self._continuations} frames in one header block")
        self._pieces.append(fragment)
        self._size += len(fragment)
        if self._size > self._max_size:
            raise calm(f"header block of over {self._max_size} bytes")
        if not flags & END_HEADERS:
            return None
        block = b"".join(self._pieces)
        self.stream_id = 0
        self._pieces = []
        return block
