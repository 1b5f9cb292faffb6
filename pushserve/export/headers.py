"""The ``headers`` format: a ``_headers`` file (Netlify, Cloudflare Pages) with one block per URL
pushserve serves: pages with their Cache-Control and Link preload lines (Cloudflare turns those
into 103 Early Hints), assets with their Cache-Control.

One exact path per block, percent-encoded as a browser requests it (``/caf%C3%A9/``), never a
``/*`` splat: both hosts join the values of every block that
matches a path, so a catch-all Cache-Control would be glued onto the pages' own."""

from __future__ import annotations

from pathlib import Path

from pushserve.export.common import count
from pushserve.export.site import SiteExport
from pushserve.scan.urls import encode_path

FILE_NAME = "_headers"
CLOUDFLARE_RULES = 100  # Cloudflare Pages reads at most this many blocks


def blocks(export: SiteExport) -> list[tuple[str, list[tuple[str, str]]]]:
    """(URL path, [(header, value)]) per block: pages first (what matters when a host stops
    reading early), then assets, each sorted by URL."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for page in (True, False):
        for file in sorted((f for f in export.files if f.page == page), key=lambda f: f.url):
            headers = [("Cache-Control", file.cache_control), *(("Link", link) for link in file.links)]
            out += [(encode_path(url), headers) for url in file.urls]
    return out


def render(export: SiteExport) -> str:
    lines = ["# Per-path response headers for Netlify and Cloudflare Pages, written by `pushserve export`.",
             "# Link preload lines become 103 Early Hints on Cloudflare (turn Early Hints on for the zone)."]
    for url, headers in blocks(export):
        lines.append(url)
        lines += [f"  {name}: {value}" for name, value in headers]
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, list[tuple[str, str]]]:
    """A ``_headers`` file back into URL path -> [(header, value)], in order."""
    out: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            current = out.setdefault(line.strip(), [])
            continue
        name, sep, value = line.strip().partition(":")
        if current is None or not sep:
            raise ValueError(f"not a _headers line: {line!r}")
        current.append((name.strip(), value.strip()))
    return out


def write(export: SiteExport, public: Path, warnings: list[str]) -> str:
    public.mkdir(parents=True, exist_ok=True)
    path = public / FILE_NAME
    path.write_text(render(export))
    blocks_written = len(blocks(export))
    if blocks_written > CLOUDFLARE_RULES:
        warnings.append(f"{path} has {blocks_written} blocks: Cloudflare Pages reads only the first {CLOUDFLARE_RULES} "
                        "(the pages come first)")
    return f"headers: {count(blocks_written, 'path block')} in {path}"
