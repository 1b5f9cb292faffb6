"""Conditional requests (RFC 9110 §13).

Pure functions over header values: the caller hands in the request's validator headers (repeated
header lines joined with ", ") and the selected representation's ETag and modification time, and
gets back the status to answer with instead of the normal one, or None.
"""

from __future__ import annotations

from pushserve.http.dates import parse_http_date
from pushserve.protocol.events import Headers

NOT_MODIFIED = 304
PRECONDITION_FAILED = 412

_SAFE = (b"GET", b"HEAD")


def parse_etags(value: bytes) -> list[bytes] | None:
    """The entity-tags of an If-Match / If-None-Match value, each with its quotes and any ``W/``
    prefix; None for ``*``.  Malformed members are skipped, so they never match."""
    value = value.strip()
    if value == b"*":
        return None
    tags: list[bytes] = []
    i, n = 0, len(value)
    while i < n:
        # Scan by hand rather than split on commas: a comma is a legal character inside a tag.
        while i < n and value[i] in b" \t,":
            i += 1
        if i >= n:
            break
        start = i
        if value.startswith(b"W/", i):
            i += 2
        if i < n and value[i] == 0x22:  # opening quote
            end = value.find(b'"', i + 1)
            if end < 0:
                break
            tags.append(value[start:end + 1])
            i = end + 1
        else:
            comma = value.find(b",", i)  # garbage member: skip to the next one
            i = n if comma < 0 else comma
    return tags


def _opaque(tag: bytes) -> bytes:
    return tag[2:] if tag.startswith(b"W/") else tag


def weak_match(header: bytes, etag: bytes) -> bool:
    """True when If-None-Match's value matches ``etag`` by weak comparison (or is ``*``)."""
    tags = parse_etags(header)
    if tags is None:
        return True
    mine = _opaque(etag)
    return any(_opaque(t) == mine for t in tags)


def strong_match(header: bytes, etag: bytes) -> bool:
    """True when If-Match's value matches ``etag`` by strong comparison (or is ``*``)."""
    tags = parse_etags(header)
    if tags is None:
        return True
    if etag.startswith(b"W/"):
        return False
    return etag in tags


def evaluate(
    method: bytes,
    *,
    etag: bytes,
    last_modified: float | None,
    if_match: bytes | None = None,
    if_none_match: bytes | None = None,
    if_modified_since: bytes | None = None,
    if_unmodified_since: bytes | None = None,
) -> int | None:
    """304, 412, or None (go on with the normal response), evaluated in RFC 9110 §13.2.2 order.

    Only called when the representation exists.  ``last_modified`` is None for representations
    without a Last-Modified (rendered pages), which makes the date conditions inapplicable.
    HTTP dates have one-second resolution, so the modification time is compared truncated.
    """
    lm = None if last_modified is None else int(last_modified)
    # 1. If-Match; 2. If-Unmodified-Since only when there is no If-Match.
    if if_match is not None:
        if not strong_match(if_match, etag):
            return PRECONDITION_FAILED
    elif if_unmodified_since is not None and lm is not None:
        since = parse_http_date(if_unmodified_since)
        if since is not None and lm > since:  # an invalid date is ignored
            return PRECONDITION_FAILED
    # 3. If-None-Match; 4. If-Modified-Since only when there is no If-None-Match.
    if if_none_match is not None:
        if weak_match(if_none_match, etag):
            return NOT_MODIFIED if method in _SAFE else PRECONDITION_FAILED
    elif if_modified_since is not None and lm is not None and method in _SAFE:
        since = parse_http_date(if_modified_since)
        if since is not None and lm <= since:
            return NOT_MODIFIED
    return None


def if_range_matches(if_range: bytes, *, etag: bytes, last_modified: float | None) -> bool:
    """Step 5: whether a Range may be honoured given If-Range (False: send the whole 200).

    An entity-tag must match strongly; a date must equal Last-Modified exactly."""
    value = if_range.strip()
    if value.startswith((b'"', b"W/")):
        return not value.startswith(b"W/") and value == etag
    if last_modified is None:
        return False
    since = parse_http_date(value)
    return since is not None and int(last_modified) == since


def is_conditional(headers: Headers) -> bool:
    """A revalidation (the client has a copy): its answer may be a 304, so nothing is pushed or
    hinted ahead of it."""
    return any(name == b"if-none-match" or name == b"if-modified-since" for name, _ in headers)
