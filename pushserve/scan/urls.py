"""References as a browser resolves them: against the document's (or stylesheet's, or module's)
URL, with the characters a browser percent-encodes encoded, so that what pushserve announces is
the very URL the browser will ask for.

A browser matches a hint or a push to its own request by the whole URL after parsing both with
the URL parser (WHATWG URL), which only ever *adds* percent-encoding.  So a target is encoded
here exactly where every current browser encodes it — controls, space, ``" < >``, non-ASCII
(as UTF-8), and in paths also ``` { }``, in queries ``'`` — which also makes it a valid URI
reference (RFC 3986) for a header.  The few characters RFC 3986 disallows but browsers keep as
they are in some position (``[ ] | ^`` in paths — Chromium encodes ``|`` and ``^``, Firefox does
not —, and ``` { } | ^ [ ] \\`` in queries) are left as written: encoded, they would name another
URL than the page's own reference for one browser or the other, and the hint would be wasted.
Chromium 156 was checked: ``new URL()`` of each character, in a path and in a query.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urljoin, urlsplit

# A stand-in origin for a site known only by its URL paths (the manifest works on those).
SITE_ORIGIN = "https://site.invalid"
_SCHEMES = ("http", "https")
_STRIPPED = {ord("\t"): None, ord("\n"): None, ord("\r"): None}  # removed anywhere, as browsers do
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))


def _encoder(extra: str) -> dict[int, str]:
    table = {c: f"%{c:02X}" for c in range(0x20)}
    table[0x7F] = "%7F"
    table.update({ord(ch): f"%{ord(ch):02X}" for ch in ' "<>' + extra})
    return table


_PATH = _encoder("`{}")
_QUERY = _encoder("'")


def _encode(text: str, table: dict[int, str]) -> str:
    if text.isascii():
        return text.translate(table)
    return "".join(ch.translate(table) if ch.isascii() else
                   "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")) for ch in text)


def encode_path(path: str) -> str:
    """A URL path with what browsers percent-encode in paths encoded (existing ``%XX`` kept)."""
    return _encode(path, _PATH)


def encode_query(query: str) -> str:
    return _encode(query, _QUERY)


def clean(ref: str) -> str:
    """A reference as the URL parser reads it: outer spaces and controls trimmed, tabs and
    newlines removed wherever they are."""
    return ref.strip(_C0_AND_SPACE).translate(_STRIPPED)


_RESOLVED: dict[tuple[str, str], str | None] = {}
_RESOLVED_MAX = 8192


def resolve(ref: str, base: str) -> str | None:
    """The absolute URL ``ref`` (found in the document or file at ``base``, an absolute URL) names,
    encoded as a browser would request it and without its fragment; None for what is not an
    http(s) URL (``data:``, ``blob:``, ``javascript:``, fragments, empty or broken references)."""
    # Thousands of pages of one folder name the same files the same way: remembered by the
    # folder a relative reference is taken from.
    key = (ref, base if ref.lstrip(_C0_AND_SPACE)[:1] in ("?", "#", "") else base[:base.rfind("/") + 1])
    found = _RESOLVED.get(key, "")  # "" is no URL: not known yet
    if found != "":
        return found
    url = _resolve(ref, base)
    if len(_RESOLVED) >= _RESOLVED_MAX:
        _RESOLVED.clear()
    _RESOLVED[key] = url
    return url


def _resolve(ref: str, base: str) -> str | None:
    ref = clean(ref)
    if not ref or ref.startswith("#"):
        return None
    try:
        split = urlsplit(ref)
        if split.scheme and split.scheme not in _SCHEMES:
            return None
        # http(s) URLs read a backslash as a slash, but in the query.
        head, sep, tail = ref.partition("?")
        ref = head.replace("\\", "/") + sep + tail
        joined = urlsplit(urljoin(base, ref))
    except ValueError:  # "http://[broken": the browser could not fetch it either
        return None
    if joined.scheme not in _SCHEMES or not joined.netloc:
        return None
    return _unsplit(joined)


def _unsplit(url: SplitResult) -> str:
    path = encode_path(url.path or "/")
    query = f"?{encode_query(url.query)}" if url.query else ""
    return f"{url.scheme}://{url.netloc.lower()}{path}{query}"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of an absolute http(s) URL (a default port left out)."""
    split = urlsplit(url)
    host = split.netloc.rpartition("@")[2].lower()
    default = ":443" if split.scheme == "https" else ":80"
    return f"{split.scheme}://{host.removesuffix(default)}"


def same_origin(url: str, base: str) -> bool:
    return origin(url) == origin(base)


def site_url(path: str) -> str:
    """The absolute URL of a site path, for scanning a site known only by its paths."""
    return SITE_ORIGIN + path


def path_and_query(url: str) -> tuple[str, str]:
    """(path, query without ``?``) of an absolute URL as resolved here."""
    split = urlsplit(url)
    return split.path or "/", split.query


def normalize_target(target: str) -> str:
    """A path written by hand (push_manifest.json), encoded the way resolved references are:
    ``/css/estilo mañana.css`` → ``/css/estilo%20ma%C3%B1ana.css``."""
    path, sep, query = target.partition("?")
    return encode_path(path) + (sep + encode_query(query) if sep else "")
