"""The ``static`` format: every exported file under OUT/public, and beside each compressible one
its .br / .zst / .gz sibling made at the site's best levels by pushserve's own encoders (the
siblings nginx's gzip_static, h2o's file.send-compressed and Caddy's precompressed serve)."""

from __future__ import annotations

from pathlib import Path

from pushserve.export.common import count
from pushserve.export.site import File, SiteExport
from pushserve.http.codings import compressible
from pushserve.site.compress.encoders import encode

# Coding -> file suffix, as the servers that serve precompressed files name them.
SUFFIXES = {"br": ".br", "zstd": ".zst", "gzip": ".gz"}


def siblings(file: File, export: SiteExport) -> list[tuple[str, bytes]]:
    """(suffix, bytes) of each precompressed sibling worth writing (smaller than the file)."""
    if not compressible(file.content_type.encode()) or len(file.body) < export.compress_threshold:
        return []
    out = []
    for coding in export.compress_codings:
        coded = encode(file.body, coding.encode(), export.compress_levels[coding])
        if len(coded) < len(file.body):
            out.append((SUFFIXES[coding], coded))
    return out


def write(export: SiteExport, public: Path) -> str:
    """Write the files; returns the summary line."""
    written = coded = 0
    for file in export.files:
        dst = public / file.rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(file.body)
        written += 1
        for suffix, body in siblings(file, export):
            Path(f"{dst}{suffix}").write_bytes(body)
            coded += 1
    return (f"static: {count(written, 'file')} ({count(len(export.pages), 'page')}) and "
            f"{count(coded, 'precompressed sibling')} ({', '.join(export.compress_codings) or 'none'}) in {public}")
