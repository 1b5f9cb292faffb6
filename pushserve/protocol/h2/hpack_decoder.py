"""HPACK decoding (RFC 7541) of the header blocks a client sends: integers, strings (Huffman or
not), the dynamic table and its size updates.

Every malformed block raises ``HPACKError`` (the connection's COMPRESSION_ERROR), a block whose
fields add up to more than the list-size limit ``HeaderListTooLarge``.  Limits against hostile
input: integers longer than five continuation octets, strings longer than what is left of the
block, and a size update above what we advertised all fail at once; the decoded size is counted
as fields are read, so a small block of indexed references cannot expand without bound.

The dynamic table counts its changes (``generation``), which is how ``fields.RequestDecoder``
knows when a block's bytes may stand for its fields again.
"""

from __future__ import annotations

from collections import deque

from pushserve.protocol.h2.hpack_tables import (
    ACCEPT,
    EMIT,
    FAIL,
    HUFFMAN_FLAGS,
    HUFFMAN_NEXT,
    HUFFMAN_SYMBOL,
    STATIC_TABLE,
)

__all__ = ["DEFAULT_TABLE_SIZE", "Decoder", "HPACKError", "HeaderListTooLarge", "huffman_decode"]

DEFAULT_TABLE_SIZE = 4096  # SETTINGS_HEADER_TABLE_SIZE: we never announce another
_ENTRY_OVERHEAD = 32  # §4.1
_STATIC_COUNT = len(STATIC_TABLE)
_MAX_INT_OCTETS = 5  # continuation octets: values up to 2**35, far above any limit that matters


class HPACKError(Exception):
    """A block that cannot be decoded: a connection error (COMPRESSION_ERROR)."""


class HeaderListTooLarge(HPACKError):
    """The fields of a block exceed the header list size limit."""


def huffman_decode(data: bytes) -> bytes:
    """The octets a Huffman-coded string (§5.2) stands for."""
    out = bytearray()
    state, flags = 0, ACCEPT
    # The two nibbles of a byte are written out, not looped over: a loop costs 20% more per string.
    for byte in data:
        at = state * 16 + (byte >> 4)
        flags = HUFFMAN_FLAGS[at]
        if flags & FAIL:
            raise HPACKError("invalid Huffman code (EOS or an unused code)")
        if flags & EMIT:
            out.append(HUFFMAN_SYMBOL[at])
        state = HUFFMAN_NEXT[at]
        at = state * 16 + (byte & 15)
        flags = HUFFMAN_FLAGS[at]
        if flags & FAIL:
            raise HPACKError("invalid Huffman code (EOS or an unused code)")
        if flags & EMIT:
            out.append(HUFFMAN_SYMBOL[at])
        state = HUFFMAN_NEXT[at]
    if not flags & ACCEPT:
        raise HPACKError("invalid Huffman padding")
    return bytes(out)


def _integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """(value, next position) of the §5.1 integer whose first octet is at ``pos``."""
    limit = (1 << prefix_bits) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    for _ in range(_MAX_INT_OCTETS):
        if pos >= len(data):
            raise HPACKError("integer cut off")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise HPACKError("integer too long")


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    if pos >= len(data):
        raise HPACKError("string cut off")
    huffman = data[pos] & 0x80
    length, pos = _integer(data, pos, 7)
    end = pos + length
    if end > len(data):
        raise HPACKError("string longer than the block")
    raw = data[pos:end]
    return (huffman_decode(raw) if huffman else raw), end


class Decoder:
    """One connection's decoding context."""

    def __init__(self, max_header_list_size: int, max_table_size: int = DEFAULT_TABLE_SIZE) -> None:
        self.max_header_list_size = max_header_list_size
        self.max_allowed_table_size = max_table_size  # what we advertised
        self.table_size = max_table_size  # the limit the encoder has set (≤ the above)
        self.generation = 0  # bumped by every change to the dynamic table
        self._entries: deque[tuple[bytes, bytes]] = deque()  # newest first
        self._used = 0

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        fields: list[tuple[bytes, bytes]] = []
        total = 0
        pos, end = 0, len(block)
        while pos < end:
            first = block[pos]
            if first & 0x80:  # indexed field (§6.1)
                index, pos = _integer(block, pos, 7)
                field = self._field(index)
            elif first & 0x40:  # literal with incremental indexing (§6.2.1)
                field, pos = self._literal(block, pos, 6)
                self._add(field)
            elif first & 0x20:  # dynamic table size update (§6.3)
                if fields:
                    raise HPACKError("table size update after a field")
                size, pos = _integer(block, pos, 5)
                if size > self.max_allowed_table_size:
                    raise HPACKError(f"table size update to {size}, above {self.max_allowed_table_size}")
                self.table_size = size
                self._evict()
                self.generation += 1
                continue
            else:  # literal without indexing / never indexed (§6.2.2, §6.2.3)
                field, pos = self._literal(block, pos, 4)
            total += len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
            if total > self.max_header_list_size:
                raise HeaderListTooLarge(f"more than {self.max_header_list_size} bytes")
            fields.append(field)
        return fields

    def _field(self, index: int) -> tuple[bytes, bytes]:
        if index == 0:
            raise HPACKError("index 0")
        if index <= _STATIC_COUNT:
            return STATIC_TABLE[index - 1]
        dynamic = index - _STATIC_COUNT - 1
        if dynamic >= len(self._entries):
            raise HPACKError(f"index {index} beyond the table")
        return self._entries[dynamic]

    def _literal(self, block: bytes, pos: int, prefix_bits: int) -> tuple[tuple[bytes, bytes], int]:
        index, pos = _integer(block, pos, prefix_bits)
        if index:
            name = self._field(index)[0]
        else:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        return (name, value), pos

    def _add(self, field: tuple[bytes, bytes]) -> None:
        self.generation += 1
        size = len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
        if size > self.table_size:  # §4.4: an entry larger than the table empties it
            self._entries.clear()
            self._used = 0
            return
        self._entries.appendleft(field)
        self._used += size
        self._evict()

    def _evict(self) -> None:
        while self._used > self.table_size:
            name, value = self._entries.pop()
            self._used -= len(name) + len(value) + _ENTRY_OVERHEAD
