"""Header blocks: HPACK (RFC 7541) for what we send and receive, and the RFC 9113 §8.2/§8.3
rules a request's fields must follow.

Sending.  Every field we send is a *literal without indexing* (RFC 7541 §6.2.2), name indexed
from the static table where it is there, strings not Huffman-coded.  Such a field changes no
state on either side, so its encoding depends on nothing but the field itself: it is computed
once and kept in a process-wide cache keyed by (name, value).  A response head is then a join of
cached pieces (a file's content-type, etag, cache-control… never change; ``date`` changes once a
second and makes one new entry a second).  We never insert into the peer's dynamic table, so the
only HPACK state we owe the peer is a size update when it shrinks SETTINGS_HEADER_TABLE_SIZE
(§4.2): a "size 0" update at the start of the next block, see ``H2Core``.

Receiving.  Blocks are decoded by ``hpack_decoder.Decoder``, which owns the dynamic table.  Browsers and
load tools send the very same block bytes again and again once the table is warm (a page's
image requests differ, a benchmark's do not), so a decoded-and-validated request is cached per
connection, keyed by the block bytes.  The invariant that makes that safe:

    a block's meaning is a function of its bytes and of the dynamic table; the table changes
    only while a block is decoded.  If decoding a block left the table exactly as it was, the
    same bytes mean the same fields for as long as the table stays as it is now.

"Left the table as it was" is checked after each decode by the table's generation, which every
change bumps — an insertion (literal with incremental indexing), an eviction, a size update —
and which empties the cache; blocks that changed the table are never cached.  So a cached
request is only reused while every indexed reference in it still names the entry it named.

A browser seldom repeats a block (it asks for each path once), so the block cache is not where
a browser's requests go fast.  What a browser does repeat is nearly every *field*: the same
user-agent, accept, sec-fetch-*, cookie with each request, only :path new.  So the §8.2 checks of
a field run once per distinct field (``_KINDS``, a bounded memo of a function of the field
alone), and the decoder looks up runs of indexed references at once (hpack_decoder.py).
"""

from __future__ import annotations

import re

from pushserve.protocol.events import CONNECTION_SPECIFIC, Headers
from pushserve.protocol.h2.hpack_decoder import Decoder, HPACKError
from pushserve.protocol.h2.hpack_tables import STATIC_TABLE
from pushserve.protocol.outgoing import FieldCache, check_field, check_request_pseudo

__all__ = ["HPACKError", "Malformed", "Request", "RequestDecoder", "encode_fields", "encode_pseudo", "encode_status"]

# -- encoding ----------------------------------------------------------------------------------

# First index of each name in the static table (RFC 7541 Appendix A).
_STATIC_NAME: dict[bytes, int] = {}
for _i, (_name, _) in enumerate(STATIC_TABLE, 1):
    _STATIC_NAME.setdefault(_name, _i)
_STATIC_STATUS = {200: 8, 204: 9, 206: 10, 304: 11, 400: 12, 404: 13, 500: 14}


def _int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """RFC 7541 §5.1 integer, ``first`` holding the representation's high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name: bytes, value: bytes) -> bytes:
    """Literal field without indexing (§6.2.2), raw (non-Huffman) strings."""
    index = _STATIC_NAME.get(name)
    head = _int(index, 4) if index else b"\x00" + _int(len(name), 7) + name
    return head + _int(len(value), 7) + value


_STATUS: dict[int, bytes] = {}


def encode_status(status: int) -> bytes:
    enc = _STATUS.get(status)
    if enc is None:
        index = _STATIC_STATUS.get(status)
        enc = bytes((0x80 | index,)) if index else _literal(b":status", b"%d" % status)
        if len(_STATUS) < 1000:
            _STATUS[status] = enc
    return enc


def _encode_new(name: bytes, value: bytes) -> bytes:
    check_field(name, value)
    name, value = bytes(name), bytes(value)
    if name in CONNECTION_SPECIFIC:  # a handler that shares header lists with HTTP/1.1 may carry them
        return b""
    return _literal(name, value)


# (name, value) -> encoded field, process-wide: literal fields change no state on either side.
_FIELDS = FieldCache(_encode_new)


def encode_pseudo(fields: Headers) -> bytes:
    """The pseudo-header fields of a push promise's request (RFC 9113 §8.3.1); not cached."""
    parts = []
    for name, value in fields:
        check_request_pseudo(name, value)
        parts.append(_literal(name, bytes(value)))
    return b"".join(parts)


def encode_fields(first: bytes, headers: Headers) -> bytes:
    """A header block: ``first`` (the encoded :status, or b"") then ``headers``.  Raises
    LocalProtocolError for a field no response may carry (outgoing.check_field)."""
    return first + b"".join(_FIELDS.encode_all(headers))


# -- decoding and validation -------------------------------------------------------------------

_DEFAULT_URGENCY = 3  # RFC 9218 default for requests

# RFC 9113 §8.2.1: a name never holds 0x00-0x20, upper case, 0x7f-0xff (nor a colon past the
# first octet); a value never NUL, CR or LF, nor leading/trailing SP or HTAB.
_BAD_NAME = re.compile(rb"[\x00-\x20A-Z\x7f-\xff]|.:")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_PSEUDO = frozenset({b":method", b":scheme", b":path", b":authority"})


class Malformed(Exception):
    """The block decoded, but is not a valid request (or trailer section): a stream error."""


class Request:
    """A validated request head; immutable once made, so one may be reused from the cache."""

    __slots__ = ("authority", "content_length", "headers", "method", "target", "urgency")

    def __init__(self, method: bytes, target: bytes, authority: bytes, headers: Headers, urgency: int,
                 content_length: int) -> None:
        self.method = method
        self.target = target
        self.authority = authority
        self.headers = headers
        self.urgency = urgency
        self.content_length = content_length  # -1 when absent


def parse_urgency(value: bytes, default: int) -> int:
    """The ``u`` parameter of an RFC 9218 Priority field value (``u=1, i``)."""
    for item in value.split(b","):
        item = item.strip()
        if item.startswith(b"u=") and len(item) == 3 and 48 <= item[2] <= 48 + 7:
            return item[2] - 48
    return default


def _check_field(name: bytes, value: bytes) -> None:
    if not name or _BAD_NAME.search(name):
        raise Malformed(f"invalid field name {name[:40]!r}")
    if value and _BAD_VALUE.search(value):
        raise Malformed(f"invalid value for {name[:40]!r}")
    if name in CONNECTION_SPECIFIC:
        raise Malformed(f"connection-specific field {name!r}")
    if name == b"te" and value.lower() != b"trailers":
        raise Malformed("te other than trailers")


def _content_length(values: list[bytes]) -> int:
    """The one length all content-length values agree on (RFC 9110 §8.6)."""
    found = -1
    for value in values:
        for item in value.split(b","):
            item = item.strip()
            if not _DIGITS.fullmatch(item) or (found >= 0 and int(item) != found):
                raise Malformed("invalid content-length")
            found = int(item)
    return found


# What validate_request needs to know of an allowed field: a pseudo-header, one of the regular
# fields it looks into, or any other regular field.
_PLAIN, _PSEUDO_FIELD, _COOKIE, _HOST, _LENGTH, _PRIORITY = range(6)
_LOOKED_INTO = {b"cookie": _COOKIE, b"host": _HOST, b"content-length": _LENGTH, b"priority": _PRIORITY}

# Fields already found allowed, with their kind: a process-wide memo of a function of the field
# alone.  A browser sends the same user-agent, accept, sec-fetch-*, cookie… with every request
# (mostly as indexed references into its dynamic table), so the checks run once per distinct
# field rather than once per request; the :path changes with every request and is not kept.
# Bounded: emptied when full, and long fields are checked every time rather than kept.
_KINDS: dict[tuple[bytes, bytes], int] = {}
_KINDS_MAX = 1024
_KEEP_MAX = 1024


def _kind(field: tuple[bytes, bytes]) -> int:
    """The kind of a field a request may carry; raises Malformed for one it may not."""
    name, value = field
    if name[:1] == b":":
        if name not in _PSEUDO:
            raise Malformed(f"unknown pseudo-header {name[:40]!r}")
        if value and _BAD_VALUE.search(value):
            raise Malformed(f"invalid value for {name!r}")
        kind = _PSEUDO_FIELD
    else:
        _check_field(name, value)
        kind = _LOOKED_INTO.get(name, _PLAIN)
    if name != b":path" and len(name) + len(value) <= _KEEP_MAX:
        if len(_KINDS) >= _KINDS_MAX:
            _KINDS.clear()
        _KINDS[field] = kind
    return kind


def validate_request(fields: list[tuple[bytes, bytes]]) -> Request:
    """RFC 9113 §8.2 and §8.3.1 for a request head; cookie fields joined (§8.2.3)."""
    pseudo: dict[bytes, bytes] = {}
    regular: Headers = []
    cookies: list[bytes] = []
    lengths: list[bytes] = []
    host: bytes | None = None
    urgency = _DEFAULT_URGENCY
    kinds = _KINDS
    for field in fields:
        kind = kinds.get(field)
        if kind is None:
            kind = _kind(field)
        if kind == _PLAIN:
            regular.append(field)
            continue
        name, value = field
        if kind == _PSEUDO_FIELD:
            if regular or cookies:
                raise Malformed(f"pseudo-header {name!r} after a regular field")
            if name in pseudo:
                raise Malformed(f"duplicate {name!r}")
            pseudo[name] = value
        elif kind == _COOKIE:
            cookies.append(value)
        else:
            if kind == _HOST:
                if host is not None:
                    raise Malformed("more than one host field")
                host = value
            elif kind == _LENGTH:
                lengths.append(value)
            else:
                urgency = parse_urgency(value, urgency)
            regular.append(field)
    if cookies:
        regular.append((b"cookie", b"; ".join(cookies)))
    method = pseudo.get(b":method")
    if method is None:
        raise Malformed("no :method")
    if method == b"CONNECT":
        if b":scheme" in pseudo or b":path" in pseudo:
            raise Malformed("CONNECT with :scheme or :path")
    elif b":scheme" not in pseudo or not pseudo.get(b":path"):
        raise Malformed("no :scheme, or no or empty :path")
    authority = pseudo.get(b":authority")
    if authority is None and host is None:
        raise Malformed("neither :authority nor host")
    if authority is not None and host is not None and authority != host:
        raise Malformed(":authority and host differ")
    return Request(method, pseudo.get(b":path", b""), authority if authority is not None else host or b"",
                   regular, urgency, _content_length(lengths) if lengths else -1)


def validate_trailers(fields: list[tuple[bytes, bytes]]) -> None:
    for name, value in fields:
        if name[:1] == b":":
            raise Malformed("pseudo-header in trailers")
        _check_field(name, value)


class RequestDecoder:
    """The connection's HPACK decoding context, with the cache of repeated request blocks
    described in the module docstring."""

    _CACHE_MAX = 64

    def __init__(self, max_header_list_size: int) -> None:
        self._decoder = Decoder(max_header_list_size)
        self._cache: dict[bytes, Request] = {}

    def decode(self, block: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
        """The fields of ``block``, and whether decoding it left the dynamic table unchanged.
        Raises HPACKError (a connection error) when it cannot be decoded."""
        generation = self._decoder.generation
        fields = self._decoder.decode(block)
        unchanged = self._decoder.generation == generation
        if not unchanged and self._cache:
            self._cache.clear()  # indexed references in cached blocks may mean other entries now
        return fields, unchanged

    def request(self, block: bytes) -> Request:
        """The validated request ``block`` holds.  Raises HPACKError or Malformed."""
        cached = self._cache.get(block)
        if cached is not None:
            return cached
        fields, unchanged = self.decode(block)
        req = validate_request(fields)
        if unchanged:
            if len(self._cache) >= self._CACHE_MAX:
                self._cache.clear()
            self._cache[block] = req
        return req
