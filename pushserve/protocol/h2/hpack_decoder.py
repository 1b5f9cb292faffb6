"""HPACK decoding (RFC 7541) of the header blocks a client sends: integers, strings (Huffman or
not), the dynamic table and its size updates.

Every malformed block raises ``HPACKError`` (the connection's COMPRESSION_ERROR), a block whose
fields add up to more than the list-size limit ``HeaderListTooLarge``.  Limits against hostile
input: integers longer than five continuation octets, strings longer than what is left of the
block, and a size update above what we advertised all fail at once; the decoded size is counted
as fields are read, so a small block of indexed references cannot expand without bound.

A browser's blocks are mostly one-octet indexed references with a literal :path among them: a
run of such references is looked up with one ``map()`` over its octets, not field by field.

The dynamic table counts its changes (``generation``), which is how ``fields.RequestDecoder``
knows when a block's bytes may stand for its fields again.
"""

from __future__ import annotations

import re

from pushserve.protocol.h2.hpack_tables import FAILED, HUFFMAN_ACCEPT, HUFFMAN_EMIT, HUFFMAN_NEXT, STATIC_TABLE

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
    parts = []
    state = 0
    # The two nibbles of a byte are written out, not looped over: a loop costs 20% more per
    # string.  A bad code leads to FAILED and stays there, so it is found once, at the end.
    for byte in data:
        at = state + (byte >> 4)
        parts.append(HUFFMAN_EMIT[at])
        state = HUFFMAN_NEXT[at]
        at = state + (byte & 15)
        parts.append(HUFFMAN_EMIT[at])
        state = HUFFMAN_NEXT[at]
    if state not in HUFFMAN_ACCEPT:
        raise HPACKError("invalid Huffman code (EOS or an unused code)" if state == FAILED
                         else "invalid Huffman padding")
    return b"".join(parts)


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
    first = data[pos]
    length = first & 0x7F
    if length == 0x7F:
        length, pos = _integer(data, pos, 7)
    else:
        pos += 1
    end = pos + length
    if end > len(data):
        raise HPACKError("string longer than the block")
    raw = data[pos:end]
    return (huffman_decode(raw) if first & 0x80 else raw), end


# The one-octet indexed references (§6.1: indices 1 to 126), which make up most of a browser's
# blocks once its fields are in the dynamic table.
_ONE_OCTET_INDEXED = re.compile(rb"[\x81-\xfe]+")
# Where index 0 sits in ``Decoder._table``: an octet of the run above is its own position there.
_BASE = 0x80
_FIRST_DYNAMIC = _BASE + 1 + len(STATIC_TABLE)
_NO_FIELDS: list[tuple[bytes, bytes] | None] = [None] * (_BASE + 1)
_NO_SIZES = [0] * (_BASE + 1)
_STATIC_FIELDS: list[tuple[bytes, bytes] | None] = [*_NO_FIELDS, *STATIC_TABLE]
_STATIC_SIZES = [*_NO_SIZES, *(len(n) + len(v) + _ENTRY_OVERHEAD for n, v in STATIC_TABLE)]


class Decoder:
    """One connection's decoding context."""

    def __init__(self, max_header_list_size: int, max_table_size: int = DEFAULT_TABLE_SIZE) -> None:
        self.max_header_list_size = max_header_list_size
        self.max_allowed_table_size = max_table_size  # what we advertised
        self.table_size = max_table_size  # the limit the encoder has set (≤ the above)
        self.generation = 0  # bumped by every change to the dynamic table
        # Index i of the static and dynamic tables (§2.3.3, dynamic entries newest first) at
        # position _BASE + i, with its size (§4.1) at the same position of _sizes: so a run of
        # one-octet references is looked up with one map() over its octets.
        self._table = list(_STATIC_FIELDS)
        self._sizes = list(_STATIC_SIZES)
        self._used = 0

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        fields: list[tuple[bytes, bytes]] = []
        table, sizes = self._table, self._sizes
        limit = self.max_header_list_size
        total = 0
        pos, end = 0, len(block)
        while pos < end:
            first = block[pos]
            if 0x80 < first < 0xFF:  # indexed fields (§6.1), all the one-octet ones in a row
                stop = _ONE_OCTET_INDEXED.match(block, pos).end()  # type: ignore[union-attr]
                run = block[pos:stop]
                pos = stop
                try:
                    fields += map(table.__getitem__, run)  # type: ignore[arg-type]
                except IndexError:
                    raise HPACKError(f"index {max(run) - _BASE} beyond the table") from None
                total += sum(map(sizes.__getitem__, run))
                if total > limit:
                    raise HeaderListTooLarge(f"more than {limit} bytes")
                continue
            if first & 0x80:  # indexed field (§6.1) of index 0 or above 126
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
            if total > limit:
                raise HeaderListTooLarge(f"more than {limit} bytes")
            fields.append(field)
        return fields

    def _field(self, index: int) -> tuple[bytes, bytes]:
        if index == 0:
            raise HPACKError("index 0")
        if _BASE + index >= len(self._table):
            raise HPACKError(f"index {index} beyond the table")
        field = self._table[_BASE + index]
        assert field is not None
        return field

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
            del self._table[_FIRST_DYNAMIC:], self._sizes[_FIRST_DYNAMIC:]
            self._used = 0
            return
        self._table.insert(_FIRST_DYNAMIC, field)
        self._sizes.insert(_FIRST_DYNAMIC, size)
        self._used += size
        self._evict()

    def _evict(self) -> None:
        while self._used > self.table_size:
            self._table.pop()
            self._used -= self._sizes.pop()
