"""Content codings (RFC 9110 §8.4, §12.5.3) and Compression Dictionary Transport (RFC 9842):
the pure parts.  Parsing Accept-Encoding and Available-Dictionary, choosing a coding, which
content types are worth compressing, the ETag and Vary of a coded response, the 40-byte dcz
header, and the rule that turns a file name into the ``match`` pattern of its later versions.

No I/O and no compression here: the codecs and caches live in pushserve/site/compress/.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

ZSTD = b"zstd"
BR = b"br"
GZIP = b"gzip"
DCZ = b"dcz"  # zstd with a raw-content dictionary, behind a 40-byte header (RFC 9842 §4.2)
DCB = b"dcb"  # brotli with a shared dictionary (RFC 9842 §4.1); needs a binding that has them
CODINGS: tuple[bytes, ...] = (ZSTD, BR, GZIP)  # what pushserve compresses with, default order

VARY_CODING = b"accept-encoding"
VARY_DICTIONARY = b"accept-encoding, available-dictionary"

# RFC 9842 §4.2: the dcz header is this magic (a zstd skippable frame of 32 bytes) and the
# dictionary's SHA-256.
DCZ_MAGIC = b"\x5e\x2a\x4d\x18\x20\x00\x00\x00"
DCB_MAGIC = b"\xff\x44\x43\x42"

_MAX_ITEMS = 32  # an Accept-Encoding with more members than this is not a browser's

# Types that shrink under a general-purpose compressor.  Fonts in woff2, images other than SVG,
# media and archives are compressed already; an event stream must reach the client as written.
_COMPRESSIBLE = frozenset((
    b"application/javascript", b"application/x-javascript", b"application/ecmascript",
    b"application/json", b"application/xml", b"application/wasm", b"application/xhtml+xml",
    b"image/svg+xml", b"image/vnd.microsoft.icon", b"font/ttf", b"font/otf",
    b"application/vnd.ms-fontobject",
))
_NEVER = frozenset((b"text/event-stream",))
# Types whose earlier versions make good dictionaries for the next ones: code and styles.
_DICTIONARY_TYPES = frozenset((b"text/javascript", b"application/javascript", b"text/css",
                               b"application/wasm", b"application/json"))


def media_type(content_type: bytes) -> bytes:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return content_type.partition(b";")[0].strip().lower()


def compressible(content_type: bytes) -> bool:
    """Whether a response of this type is worth compressing."""
    base = media_type(content_type)
    if base in _NEVER:
        return False
    return (base.startswith(b"text/") or base in _COMPRESSIBLE
            or base.endswith(b"+json") or base.endswith(b"+xml"))


def dictionary_type(content_type: bytes) -> bool:
    """Whether a response of this type is offered as a dictionary for its next versions."""
    return media_type(content_type) in _DICTIONARY_TYPES


def accept_encoding(value: bytes) -> dict[bytes, float]:
    """Coding -> q-value of an Accept-Encoding value.  Names are lower-cased, ``x-gzip`` is
    ``gzip``; a malformed or out-of-range q counts as 0 (not acceptable)."""
    q: dict[bytes, float] = {}
    for item in value.split(b",", _MAX_ITEMS)[:_MAX_ITEMS]:
        coding, _, params = item.partition(b";")
        coding = coding.strip().lower()
        if not coding:
            continue
        if coding == b"x-gzip":
            coding = GZIP
        weight = 1.0
        for param in params.split(b";"):
            k, eq, v = param.partition(b"=")
            if eq and k.strip().lower() == b"q":
                try:
                    weight = float(v.strip())
                except ValueError:
                    weight = 0.0
                if not 0.0 <= weight <= 1.0:  # also NaN
                    weight = 0.0
        q[coding] = weight
    return q


def preferences(value: bytes, offered: Sequence[bytes]) -> tuple[bytes, ...]:
    """The codings of ``offered`` that an Accept-Encoding value accepts, best first: highest q,
    then the server's order.  A coding not named is acceptable only through ``*``."""
    q = accept_encoding(value)
    star = q.get(b"*", 0.0)
    ranked = sorted(((q.get(c, star), -i, c) for i, c in enumerate(offered)), reverse=True)
    return tuple(c for w, _, c in ranked if w > 0)


def choose(value: bytes, offered: Sequence[bytes]) -> bytes | None:
    """The coding to answer with, or None for identity."""
    prefs = preferences(value, offered)
    return prefs[0] if prefs else None


def coded_etag(etag: bytes, coding: bytes, dictionary: bytes | None = None) -> bytes:
    """The ETag of a coded representation: the identity ETag with the coding appended inside
    the quotes (``"abc"`` -> ``"abc-zstd"``, as Apache does), and for a dictionary coding the
    first bytes of the dictionary's hash too, since each dictionary makes different bytes."""
    suffix = b"-" + coding
    if dictionary is not None:
        suffix += b"-" + dictionary[:6].hex().encode()
    if etag.endswith(b'"'):
        return etag[:-1] + suffix + b'"'
    return b'"' + etag + suffix + b'"'


def merge_vary(existing: bytes | None, add: bytes) -> bytes:
    """A Vary value naming ``add``'s fields as well as those already there (no repeats)."""
    if not existing:
        return add
    if existing.strip() == b"*":
        return existing
    names = [n.strip() for n in existing.split(b",") if n.strip()]
    have = {n.lower() for n in names}
    names += [n.strip() for n in add.split(b",") if n.strip().lower() not in have]
    return b", ".join(names)


def no_transform(cache_control: bytes | None) -> bool:
    """Whether a Cache-Control value forbids changing the content coding (RFC 9111 §5.2.2.6)."""
    if not cache_control:
        return False
    return any(d.strip().lower() == b"no-transform" for d in cache_control.split(b","))


# -- Compression Dictionary Transport (RFC 9842) -----------------------------------------------

def available_dictionary(value: bytes) -> bytes | None:
    """The SHA-256 an Available-Dictionary value names (a Structured Field byte sequence,
    ``:base64:``), or None when it is not one."""
    value = value.strip()
    if len(value) < 2 or value[:1] != b":" or value[-1:] != b":":
        return None
    try:
        digest = base64.b64decode(value[1:-1], validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == 32 else None


def sf_bytes(digest: bytes) -> bytes:
    """A byte sequence as a Structured Field (what a client puts in Available-Dictionary)."""
    return b":" + base64.b64encode(digest) + b":"


def dcz_header(dictionary_sha256: bytes) -> bytes:
    """The 40 bytes that start a dcz body: magic, then the dictionary's SHA-256."""
    assert len(dictionary_sha256) == 32
    return DCZ_MAGIC + dictionary_sha256


# A file-name part that looks like a build's content hash: at least one digit, and 6+ hex
# characters or 8+ base64url/base32 ones as bundlers write them, e.g. app.3f9a1c.js,
# app-BxK3f9a1.js, chunk.5f3a0c8d.min.css (a word like "facade" has no digit).
_HASHY = re.compile(r"(?=[A-Za-z0-9_]*\d)(?:[0-9a-f]{6,}|[A-Za-z0-9_]{8,})")
# Characters that mean something in a URLPattern pathname and must be escaped to be literal.
_PATTERN_SPECIAL = re.compile(r"([\\*:(){}?+])")


def _literal(text: str) -> str:
    return _PATTERN_SPECIAL.sub(r"\\\1", text)


def match_pattern(url_path: str) -> str:
    """The Use-As-Dictionary ``match`` pattern for a file's later versions.

    The rule: in the last path segment, split the name on ``.`` and ``-``; every part between
    the first and the extension that looks like a content hash (``_HASHY``) becomes ``*``, so
    ``/js/app.3f9a1c2e.js`` -> ``/js/app.*.js`` and ``/js/app-BxK3f9a1.js`` -> ``/js/app-*.js``.
    A name with no such part is its own pattern (``/js/app.js``): a stable name changes in
    place.  Everything else is escaped as a literal: the pattern has no regexp groups and no
    origin, so it only ever matches the same origin (RFC 9842 §2.1.1)."""
    directory, _, name = url_path.rpartition("/")
    parts = re.split(r"([.-])", name)  # keeps the separators at odd indexes
    out = [_literal(directory), "/"]
    for i, part in enumerate(parts):
        inner = i % 2 == 0 and 0 < i < len(parts) - 1
        out.append("*" if inner and _HASHY.fullmatch(part) else _literal(part))
    return "".join(out)


def use_as_dictionary(match: str, dictionary_id: str | None = None) -> bytes:
    """The Use-As-Dictionary value (a Structured Field dictionary)."""
    value = f"match={_sf_string(match)}"
    if dictionary_id:
        value += f", id={_sf_string(dictionary_id)}"
    return value.encode()


def _sf_string(text: str) -> str:
    """A Structured Field string: quoted, with backslash and quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
