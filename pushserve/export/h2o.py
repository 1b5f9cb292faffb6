"""The ``h2o`` format: one host's settings for h2o 2.2 and later, to use as ``hosts: NAME: !file``.

h2o 2.2 pushes only what ``rel=preload`` Link headers *from a handler* name, not ones added with
``header.add`` to a file response, so the headers come from a small mruby handler that answers
399 ("go on to the next handler with these headers") with each URL's headers, looked up in one
table, before ``file.dir`` serves the file.  CASPer (h2o's cache-aware push cookie) is on, as
pushserve's own push cookie is."""

from __future__ import annotations

import json
from pathlib import Path

from pushserve.export.common import count, fill_in_note, host, module_pushes, served_from, types_in_use
from pushserve.export.headers import FILE_NAME as HEADERS_FILE
from pushserve.export.site import SiteExport
from pushserve.scan.urls import encode_path

FILE_NAME = "h2o.conf"


def _rb(text: str) -> str:
    """A Ruby string literal (JSON's escapes are Ruby's, but "#{" would interpolate)."""
    return json.dumps(text).replace("#", "\\#")


def _headers_table(export: SiteExport) -> list[str]:
    """Ruby hash lines: URL path -> the headers pushserve sends with it."""
    rows = []
    for file in export.files:
        fields = [f'"cache-control" => {_rb(file.cache_control)}']
        if file.links:  # one value per line: h2o sends (and pushes from) each as its own header
            # A module script is pushed by a push-only preload: h2o pushes only rel=preload and
            # drops an x-http2-push-only header once it has pushed, so the browser sees pushserve's.
            push_only = [f"<{path}>; rel=preload; as=script; crossorigin; x-http2-push-only"
                         for path in module_pushes(file.links)]
            fields.append(f'"link" => {_rb(chr(10).join([*file.links, *push_only]))}')
        # PATH_INFO is the path as requested, percent-encoded: so are the keys (browsers encode
        # as pushserve's Link targets are encoded).
        rows += [f"  {_rb(encode_path(url))} => {{{', '.join(fields)}}}," for url in file.urls]
    return rows


def render(export: SiteExport, base_url: str | None, root: str | None = None) -> str:
    folder, note = served_from(root, base_url)
    handler = [
        "HEADERS = {",
        *_headers_table(export),
        "}",
        "Proc.new do |env|",
        f'  if env["PATH_INFO"] == "/{HEADERS_FILE}"  # Netlify / Cloudflare Pages settings, not content',
        '    [404, {"content-type" => "text/plain; charset=utf-8"}, ["404 Not Found\\n"]]',
        "  else",
        '    [399, HEADERS[env["PATH_INFO"]] || {}, []]',
        "  end",
        "end",
    ]
    lines = [
        "# h2o settings for one host, written by `pushserve export`.  Use them in h2o.conf as",
        "#",
        "#   listen:",
        "#     port: 443",
        "#     ssl:",
        "#       certificate-file: /etc/ssl/your-site/fullchain.pem   # fill in",
        "#       key-file: /etc/ssl/your-site/privkey.pem             # fill in",
        "#   hosts:   # !file: this file, where you put it",
        f'#     "{host(base_url)}:443": !file /path/to/{FILE_NAME}{fill_in_note(base_url)}',
        "",
        "# Push what the Link headers name, remembering in a cookie what this browser already has.",
        "http2-casper: ON",
        "# Serve the .br and .gz siblings to clients that accept them.",
        "file.send-compressed: ON",
        "# pushserve's content types (charset included), for the extensions this site has.",
        "file.mime.settypes:",
        *(f"  {json.dumps(ctype)}: .{ext}" for ext, ctype in types_in_use(export)),
    ]
    if export.not_found is not None:
        lines += ["error-doc:", "  status: 404", f"  url: {export.not_found.url}"]
    lines += [
        "paths:",
        '  "/":',
        "    mruby.handler: |",
        *(f"      {line}" for line in handler),
        f"    file.dir: {folder}{note}",
    ]
    return "\n".join(lines) + "\n"


def write(export: SiteExport, public: Path, base_url: str | None, root: str | None = None) -> str:
    path = public.parent / FILE_NAME
    path.write_text(render(export, base_url, root))
    return (f"h2o: {count(len(export.pages), 'page')} with their Link headers in {path} "
            f"(a host's settings: hosts: NAME: !file{'' if root else '; fill in its file.dir'})")
