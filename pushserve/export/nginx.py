"""The ``nginx`` format: a snippet to include in a ``server`` block (nginx 1.22 and later).

One exact ``location`` per URL of a page (``/a/`` and ``/a/index.html``: the index lookup is an
internal redirect, and the final location's headers are the ones sent) with its Cache-Control
and Link headers; assets get pushserve's Cache-Control, hashed names ``immutable`` too; the 404
page; the .gz siblings (``gzip_static``); pushserve's content types; push from Link headers."""

from __future__ import annotations

from pathlib import Path

from pushserve.export.common import count, fill_in_note, host, module_pushes, served_from, types_in_use
from pushserve.export.common import quoted as _q
from pushserve.export.headers import FILE_NAME as HEADERS_FILE
from pushserve.export.site import SiteExport
from pushserve.http.mime import DEFAULT_TYPE

FILE_NAME = "nginx.conf"


def render(export: SiteExport, base_url: str | None, root: str | None = None) -> str:
    folder, note = served_from(root, base_url)
    asset_default = export.asset_cache_control if any(not f.page for f in export.files) else None
    lines = [
        "# nginx snippet written by `pushserve export`: include it in the server block of your site, e.g.",
        "#",
        "#   server {",
        "#       listen 443 ssl http2;   # nginx 1.25.1 and later: 'listen 443 ssl;' and 'http2 on;'",
        f"#       server_name {host(base_url)};{fill_in_note(base_url)}",
        "#       ssl_certificate     /etc/ssl/your-site/fullchain.pem;   # fill in",
        "#       ssl_certificate_key /etc/ssl/your-site/privkey.pem;     # fill in",
        f"#       include /path/to/{FILE_NAME};   # this file, where you put it",
        "#   }",
        "",
        f"root {folder};{note}",
        "index index.html;",
        "absolute_redirect off;  # /folder -> /folder/ with a relative Location, as pushserve does",
        "# The precompressed siblings: .gz with gzip_static; the .br ones need the ngx_brotli module",
        "# (brotli_static on;), nginx has no zstd of its own.",
        "gzip_static on;",
        "gzip_vary on;",
        "# Server push of what the Link headers name: nginx 1.13.9 to 1.25.0.  Later versions removed",
        "# push and ignore this line with a warning; 103 Early Hints then come from a CDN in front",
        "# (Cloudflare makes them from these Link headers).",
        "http2_push_preload on;",
        "# A page's pushes all at once (the default is 10); ignored where push was removed.",
        f"http2_max_concurrent_pushes {max([10, *(len(f.links) for f in export.pages)])};",
        "# pushserve's content types (charset included), for the extensions this site has.",
        "types {",
        *(f"    {_q(ctype)} {ext};" for ext, ctype in types_in_use(export)),
        "}",
        f"default_type {DEFAULT_TYPE.decode()};",
        f"location = /{HEADERS_FILE} {{ return 404; }}  # Netlify / Cloudflare Pages settings, not content",
    ]
    if export.not_found is not None:
        lines += ["error_page 404 /404.html;",
                  f"location = {export.not_found.url} {{ add_header Cache-Control {_q(export.not_found.cache_control)}"
                  " always; }"]
    if asset_default is not None:
        lines += ["location / {", f"    add_header Cache-Control {_q(asset_default)};", "}"]
    for file in export.files:
        if file.page and file is not export.not_found:
            for url in file.urls:
                lines.append(f"location = {_q(url)} {{")
                lines.append(f"    add_header Cache-Control {_q(file.cache_control)};")
                lines += [f"    add_header Link {_q(link)};" for link in file.links]
                lines += [f"    http2_push {_q(path)};  # a module script: nginx pushes only rel=preload"
                          for path in module_pushes(file.links)]
                lines.append("}")
        elif not file.page and file.cache_control != asset_default:
            lines.append(f"location = {_q(file.url)} {{ add_header Cache-Control {_q(file.cache_control)}; }}")
    return "\n".join(lines) + "\n"


def write(export: SiteExport, public: Path, base_url: str | None, root: str | None = None) -> str:
    path = public.parent / FILE_NAME
    path.write_text(render(export, base_url, root))
    return (f"nginx: {count(len(export.pages), 'page')} with their Link headers in {path} (include it in a server "
            f"block{'' if root else '; fill in its root'})")
