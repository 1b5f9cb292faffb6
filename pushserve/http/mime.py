"""Content types by file extension.

A fixed table rather than the ``mimetypes`` module: that one reads /etc/mime.types and the
Windows registry, so the same site would be served with different types on different hosts.
"""

from __future__ import annotations

DEFAULT_TYPE = b"application/octet-stream"

_UTF8 = b"; charset=utf-8"

# Kinds a browser decodes as text: they get an explicit charset so no sniffing happens.
_TEXT: dict[str, bytes] = {
    "html": b"text/html",
    "htm": b"text/html",
    "css": b"text/css",
    "js": b"text/javascript",  # RFC 9239: text/javascript is the one registered type
    "mjs": b"text/javascript",
    "cjs": b"text/javascript",
    "json": b"application/json",
    "map": b"application/json",  # source maps
    "jsonld": b"application/ld+json",
    "svg": b"image/svg+xml",
    "txt": b"text/plain",
    "text": b"text/plain",
    "xml": b"application/xml",
    "rss": b"application/rss+xml",
    "atom": b"application/atom+xml",
    "webmanifest": b"application/manifest+json",
    "csv": b"text/csv",
    "md": b"text/markdown",
    "markdown": b"text/markdown",
    "ics": b"text/calendar",
    "vtt": b"text/vtt",
}

_BINARY: dict[str, bytes] = {
    "wasm": b"application/wasm",
    "woff": b"font/woff",
    "woff2": b"font/woff2",
    "ttf": b"font/ttf",
    "otf": b"font/otf",
    "eot": b"application/vnd.ms-fontobject",
    "webp": b"image/webp",
    "avif": b"image/avif",
    "png": b"image/png",
    "apng": b"image/apng",
    "jpg": b"image/jpeg",
    "jpeg": b"image/jpeg",
    "gif": b"image/gif",
    "ico": b"image/vnd.microsoft.icon",
    "bmp": b"image/bmp",
    "pdf": b"application/pdf",
    "mp4": b"video/mp4",
    "m4v": b"video/mp4",
    "webm": b"video/webm",
    "ogv": b"video/ogg",
    "mp3": b"audio/mpeg",
    "ogg": b"audio/ogg",
    "oga": b"audio/ogg",
    "opus": b"audio/ogg",
    "wav": b"audio/wav",
    "flac": b"audio/flac",
    "m4a": b"audio/mp4",
    "zip": b"application/zip",
    "gz": b"application/gzip",
    "tar": b"application/x-tar",
}

# The table callers use: extension (lower case, no dot) -> full content-type value.
TYPES: dict[str, bytes] = {ext: t + _UTF8 for ext, t in _TEXT.items()} | _BINARY


def content_type(path: str) -> bytes:
    """The content-type for a file name or path, by its last extension (case-insensitive)."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    if dot <= 0:  # no extension, or a dot-file such as ".htaccess"
        return DEFAULT_TYPE
    return TYPES.get(name[dot + 1:].lower(), DEFAULT_TYPE)
