"""The ``caddy`` format: a Caddyfile snippet to ``import`` inside a site block (Caddy 2.6 and later).

Headers go in one ``route``, where directives run in the order written: pushserve's asset
Cache-Control first, then what differs (hashed names, pages with their Link headers), each
overriding the one before.  Caddy picks content types from the system's tables, so each
extension gets pushserve's explicitly."""

from __future__ import annotations

from pathlib import Path

from pushserve.export.common import count, fill_in_note, host, served_from, types_in_use
from pushserve.export.common import quoted as _q
from pushserve.export.headers import FILE_NAME as HEADERS_FILE
from pushserve.export.site import SiteExport
from pushserve.http.mime import DEFAULT_TYPE

FILE_NAME = "Caddyfile"


def render(export: SiteExport, base_url: str | None, root: str | None = None) -> str:
    folder, note = served_from(root, base_url)
    asset_default = export.asset_cache_control if any(not f.page for f in export.files) else None
    lines = [
        "# Caddyfile snippet written by `pushserve export`.  Import it in the block of your site:",
        "#",
        f"#   {host(base_url)} {{{fill_in_note(base_url)}",
        "#       # Caddy gets a certificate for a public name by itself; else: tls cert.pem key.pem",
        f"#       import /path/to/{FILE_NAME}   # this file, where you put it",
        "#   }",
        "#",
        "# Caddy pushes what the Link headers name; 103 Early Hints come from a CDN in front.",
        "",
        f"root * {folder}{note}",
    ]
    matchers: list[str] = []
    route = ["    # Push what the Link headers below name (Caddy 2's push handler; delete this line for a",
             "    # Caddy that no longer has the directive).",
             "    push",
             f"    respond /{HEADERS_FILE} 404  # Netlify / Cloudflare Pages settings, not content"]
    for i, (ext, ctype) in enumerate(types_in_use(export)):
        matchers.append(f"@pushserve_type{i} path *.{ext}")
        route.append(f"    header @pushserve_type{i} Content-Type {_q(ctype)}")
    # Files Caddy would send without a type (it does not sniff), and pages at folder URLs.
    plain = [f.url for f in export.files if not f.page and f.content_type == DEFAULT_TYPE.decode()]
    if plain:
        matchers.append(f"@pushserve_default_type path {' '.join(_q(u) for u in plain)}")
        route.append(f"    header @pushserve_default_type Content-Type {_q(DEFAULT_TYPE.decode())}")
    if asset_default is not None:
        route.append(f"    header Cache-Control {_q(asset_default)}")
    for i, file in enumerate(export.files):
        if file.page:
            matchers.append(f"@pushserve_file{i} path {' '.join(_q(u) for u in file.urls)}")
            route.append(f"    header @pushserve_file{i} {{")
            route.append(f"        Content-Type {_q(file.content_type)}")
            route.append(f"        Cache-Control {_q(file.cache_control)}")
            route += [f"        +Link {_q(link)}" for link in file.links]
            route.append("    }")
        elif file.cache_control != asset_default:
            matchers.append(f"@pushserve_file{i} path {_q(file.url)}")
            route.append(f"    header @pushserve_file{i} Cache-Control {_q(file.cache_control)}")
    route += ["    file_server {", "        # the siblings written beside the files",
              "        precompressed br zstd gzip", "    }"]
    lines += [*matchers, "route {", *route, "}"]
    if export.not_found is not None:
        lines += ["handle_errors {",
                  "    @pushserve_404 expression {err.status_code} == 404",
                  "    handle @pushserve_404 {",
                  f"        rewrite * {export.not_found.url}",
                  f"        header Cache-Control {_q(export.not_found.cache_control)}",
                  "        file_server {", "            precompressed br zstd gzip", "        }",
                  "    }",
                  "}"]
    return "\n".join(lines) + "\n"


def write(export: SiteExport, public: Path, base_url: str | None, root: str | None = None) -> str:
    path = public.parent / FILE_NAME
    path.write_text(render(export, base_url, root))
    return (f"caddy: {count(len(export.pages), 'page')} with their Link headers in {path} (import it in a site "
            f"block{'' if root else '; fill in its root'})")
