"""What a core checks of what the layer above hands it to send: status codes (RFC 9110 §15) and
response fields (§5.1, §5.5; RFC 9113 §8.2.1).  Breaking these rules is the caller's bug, so it
raises ``LocalProtocolError``.

A field the interface takes must be valid on every protocol: a lower-case token for a name (the
interface's convention for ``Headers``, and HTTP/2's rule), a value without NUL, CR or LF (which
would split an HTTP/1.1 head into two) and without whitespace at either end (a malformed field
in HTTP/2).  Both cores keep a cache of the fields they have encoded, so a field is checked the
first time it is seen, not on every response."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from pushserve.protocol.events import LocalProtocolError

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})


def check_field(name: bytes, value: bytes) -> None:
    """Raise LocalProtocolError unless ``name: value`` may go out in a response (or in the
    request of a push promise, after its pseudo-header fields)."""
    if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
        raise LocalProtocolError(f"a field is a pair of bytes, not {type(name).__name__}, {type(value).__name__}")
    if not _TOKEN.fullmatch(name):
        raise LocalProtocolError(f"invalid field name {bytes(name[:40])!r}")
    if value and _BAD_VALUE.search(value):
        raise LocalProtocolError(f"invalid value for {bytes(name[:40])!r}: {bytes(value[:40])!r}")


def check_request_pseudo(name: bytes, value: bytes) -> None:
    """The same for a pseudo-header field of a push promise's request (RFC 9113 §8.3.1)."""
    if name not in REQUEST_PSEUDO or not isinstance(value, bytes | bytearray) or not value \
            or _BAD_VALUE.search(value):
        raise LocalProtocolError(f"invalid request pseudo-header field {name!r}: {value!r}")


def check_status(status: int, *, informational: bool = False) -> None:
    """A final status is 200 to 599; an informational one 1xx, but never 101, which would switch
    protocols (HTTP/2 has no such thing, RFC 9113 §8.6; pushserve's HTTP/1.1 never switches)."""
    ok = isinstance(status, int) and not isinstance(status, bool) and (
        100 <= status <= 199 and status != 101 if informational else 200 <= status <= 599)
    if not ok:
        kind = "an informational" if informational else "a final"
        raise LocalProtocolError(f"{status!r} is not {kind} status code")


class FieldCache:
    """Fields a core has checked and encoded before, by (name, value): a response's head is a
    join of cached pieces, each field checked the first time it is seen.  ``encode`` checks and
    encodes one field the core's way (b"" for one it frames itself).  Bounded: emptied when full
    (a date changes once a second and makes one new entry a second)."""

    __slots__ = ("_encode", "_limit", "_table")

    def __init__(self, encode: Callable[[bytes, bytes], bytes], limit: int = 4096) -> None:
        self._encode = encode
        self._limit = limit
        self._table: dict[tuple[bytes, bytes], bytes] = {}

    def encode_all(self, fields: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
        try:
            # The common case: every field seen before.  map() runs the lookups in C, with no
            # Python frame per field (a comprehension costs one more call per response).
            return list(map(self._table.__getitem__, fields))
        except (KeyError, TypeError):
            return [self._encode_one(field) for field in fields]

    def _encode_one(self, field: tuple[bytes, bytes]) -> bytes:
        table = self._table
        try:
            enc = table.get(field)
        except TypeError:  # a list pair or a bytearray value: not hashable, not cached
            return self._encode(field[0], field[1])
        if enc is None:
            enc = self._encode(field[0], field[1])
            if len(table) >= self._limit:
                table.clear()
            table[field] = enc
        return enc
