"""``pushserve export SITE OUT``: checks where it may write, collects the site once, writes each
format asked for and says what it wrote, one line per format.

OUT/public holds the files (and ``_headers``, where Netlify and Cloudflare Pages look for it);
the server snippets sit beside it, outside what is served."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pushserve.config import Config
from pushserve.export import caddy, h2o, headers, nginx, static
from pushserve.export.site import SiteExport, collect

FORMATS = ("static", "headers", "nginx", "h2o", "caddy")
PUBLIC = "public"
# What each format writes in OUT; --force replaces these and leaves anything else alone.
_OUTPUTS = {"static": PUBLIC, "headers": f"{PUBLIC}/{headers.FILE_NAME}", "nginx": nginx.FILE_NAME,
            "h2o": h2o.FILE_NAME, "caddy": caddy.FILE_NAME}


class ExportError(Exception):
    """A refusal or mistake, in one line; ``usage`` when it is the command line's."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def parse_formats(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ExportError(f"--format {text!r}: choose from {','.join(FORMATS)}", usage=True)
    return names


def check_base_url(text: str | None) -> str | None:
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ExportError(f"--base-url {text!r}: expected an origin like https://example.com (Link paths "
                          "start at the root)", usage=True)
    return text


def check_out(site: Path, out: Path, force: bool) -> None:
    """Refuse to write into the site (pushserve would serve the export) or over someone's files."""
    site_real, out_real = site.resolve(), out.resolve()
    if out_real == site_real or site_real in out_real.parents or out_real in site_real.parents:
        raise ExportError(f"{out} and the site folder {site} must not contain each other; pick another OUT")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} is not empty; use --force to replace what an earlier export wrote there")


def export(config: Config, out: Path, formats: Sequence[str], base_url: str | None, *, force: bool,
           say: Callable[[str], None], root: str | None = None) -> SiteExport:
    """``root``: the folder OUT/public will be served from, for the server snippets (None: a
    placeholder they ask to fill in)."""
    check_out(config.site, out, force)
    result = collect(config)
    out.mkdir(parents=True, exist_ok=True)
    for fmt in formats:  # only what this export writes: the rest of OUT stays as it was
        target = out / _OUTPUTS[fmt]
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    public = out.resolve() / PUBLIC
    lines: list[str] = []
    warnings = result.warnings
    for fmt in formats:
        if fmt == "static":
            lines.append(static.write(result, public))
        elif fmt == "headers":
            lines.append(headers.write(result, public, warnings))
        else:
            lines.append({"nginx": nginx, "h2o": h2o, "caddy": caddy}[fmt].write(result, public, base_url, root))
    for w in warnings:
        say(f"warning: {w}")
    for line in lines:
        say(line)
    return result
