"""What the server config snippets share: the content types in use, the host name to fill in."""

from __future__ import annotations

from urllib.parse import urlsplit

from pushserve.export.site import SiteExport
from pushserve.http.mime import DEFAULT_TYPE, content_type

FILL_IN = "example.com"  # stands for the user's host name when no --base-url is given


def served_from(root: str | None, base_url: str | None) -> tuple[str, str]:
    """Where the server finds OUT/public, and a note for the line naming it: --root as given, or
    a placeholder to fill in (never the exporting machine's folder: the snippet is for the server)."""
    if root is not None:
        return root, ""
    return f"/var/www/{host(base_url).split(':')[0]}/public", \
        "   # fill in: where this export's public/ folder is on the server (or export with --root)"


def types_in_use(export: SiteExport) -> list[tuple[str, str]]:
    """(extension without dot, pushserve's content type) for each extension of the export, sorted;
    files without a known extension get the servers' default type, which is pushserve's too."""
    found: dict[str, str] = {}
    for file in export.files:
        name = file.rel.rpartition("/")[2]
        ext = name.rpartition(".")[2].lower() if "." in name.lstrip(".") else ""
        ctype = content_type(name)
        if ext and ctype != DEFAULT_TYPE:
            found[ext] = ctype.decode()
    return sorted(found.items())


def host(base_url: str | None) -> str:
    """The host (and port) of --base-url, or the placeholder the user must replace."""
    return urlsplit(base_url).netloc if base_url else FILL_IN


def fill_in_note(base_url: str | None) -> str:
    return "" if base_url else f"   # fill in your host name ({FILL_IN} is a placeholder)"


def quoted(text: str) -> str:
    """A double-quoted string as nginx and Caddy read it (backslash escapes).  nginx would still
    expand a ``$name`` in it; URLs of a static site rarely hold one."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def count(n: int, word: str) -> str:
    """``1 page``, ``3 pages``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def module_pushes(links: tuple[str, ...]) -> list[str]:
    """The paths of ``rel=modulepreload`` links: pushserve pushes module scripts too, while nginx
    and h2o push only what ``rel=preload`` names, so their snippets push these by other means."""
    return [link[1:link.index(">")] for link in links if link.startswith("<") and "rel=modulepreload" in link]
