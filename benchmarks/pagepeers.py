"""nginx and h2o as peers in ``python -m benchmarks pageload SITE --peers``: each serves the same page
with its own push / preload machinery, fed with pushserve's manifest for that page.

- The site is rendered first (``pushserve.site.templates``) into a temp folder, so the peers send
  the very bytes pushserve sends; hidden files (``_*``, ``.*``) and pushserve.toml stay out.
- nginx 1.22: ``http2_push_preload on`` plus one ``add_header Link`` per manifest entry on the page:
  it pushes those when the client allows push, else the Link headers reach the client.
- h2o 2.2.5: pushes what ``rel=preload`` Link headers name (its default), handed to it by a
  one-line mruby handler (status 399); ``http2-casper`` on, its own cookie-based cache awareness.
- Both: the page ``Cache-Control: no-cache``, every other file ``public, max-age=600``, as
  pushserve does, so warm visits compare like for like."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from pushserve.bench.certs import CertPair
from pushserve.bench.pageload import Starter, Variant
from pushserve.bench.procs import SERVER_CPU, BenchError, free_port, pinned, running
from pushserve.config import Config, read_site_toml
from pushserve.site.manifest_load import build_push_manifest
from pushserve.site.paths import is_manifest_page, page_url
from pushserve.site.push import link_value
from pushserve.site.templates import Templates

PEER_MODES = ("h1", "h2-off", "h2-push")
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=600"
_SKIP = {"pushserve.toml", "push_manifest.json"}


def render_site(site: Path, out: Path) -> dict[str, list[str]]:
    """Copy SITE into ``out`` with its pages rendered; returns page URL → Link header values."""
    site_vars, _mounts, settings = read_site_toml(site)
    use_templates = bool(settings.get("templates", True))
    templates = Templates(site, site=site_vars) if use_templates else None
    for src in sorted(site.rglob("*")):
        rel = src.relative_to(site)
        if src.is_dir() or any(p.startswith(("_", ".")) for p in rel.parts) or rel.as_posix() in _SKIP:
            continue
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if templates is not None and is_manifest_page(rel.as_posix()):
            dst.write_bytes(templates.render_static(rel.as_posix()))
        else:
            shutil.copyfile(src, dst)
    manifest, _warnings = build_push_manifest(Config(site=site, templates=use_templates, site_vars=site_vars),
                                              templates)
    return {page_url(page): [link_value(r).decode() for r in manifest.resources_for(page)]
            for page in manifest.pages()}


def _page_paths(page: str) -> list[str]:
    """The URL paths under which a page is served (``/a/`` is also ``/a/index.html``)."""
    return [page, page + "index.html"] if page.endswith("/") else [page]


@contextmanager
def nginx_pages(docroot: Path, cert: CertPair, work: Path, page: str, links: list[str]) -> Iterator[str]:
    port = free_port()
    conf_dir = work / "nginx-pages"
    conf_dir.mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    adds = "\n".join(f"        add_header Link '{v}';" for v in links)
    # An exact location per URL of the page (the index lookup redirects / to /index.html
    # internally, where the headers must be the same).
    page_locations = "\n".join(
        f"    location = {p} {{\n        add_header Cache-Control \"{PAGE_CACHE}\";\n{adds}\n    }}"
        for p in _page_paths(page))
    conf = f"""\
{user}
worker_processes 1;
daemon off;
pid {conf_dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
access_log off;
client_body_temp_path {conf_dir}/body;
proxy_temp_path {conf_dir}/proxy;
fastcgi_temp_path {conf_dir}/fastcgi;
uwsgi_temp_path {conf_dir}/uwsgi;
scgi_temp_path {conf_dir}/scgi;
include /etc/nginx/mime.types;
default_type application/octet-stream;
server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {cert.cert};
    ssl_certificate_key {cert.key};
    root {docroot};
    http2_push_preload on;
{page_locations}
    location / {{
        add_header Cache-Control "{ASSET_CACHE}";
    }}
}}
}}
"""
    (conf_dir / "nginx.conf").write_text(conf)
    cmd = ["nginx", "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf"), "-e", "stderr"]
    with running("nginx", pinned(cmd, SERVER_CPU)) as child:
        child.wait_for_port(port)
        yield f"https://127.0.0.1:{port}"


def _h2o_paths(docroot: Path, page: str, links: list[str]) -> str:
    """h2o matches path prefixes, longest first: the page's folder gets the page headers, each
    entry inside it (other than the page) its own path with the asset headers."""
    folder = docroot / page.strip("/") if page.endswith("/") else docroot
    # h2o 2.2 pushes from Link headers an application hands it, not from ones added by
    # header.add to a file response: a mruby handler answering 399 ("carry on with these
    # headers") is its documented way to do that for static files.
    page_headers = f'        header.set: "cache-control: {PAGE_CACHE}"\n'
    if links:
        paths = ", ".join(f'"{p}"' for p in _page_paths(page))
        link = "\\n".join(links).replace('"', '\\"')
        page_headers += ("        mruby.handler: |\n          Proc.new do |env|\n"
                         f"            if [{paths}].include?(env[\"PATH_INFO\"])\n"
                         f"              [399, {{\"link\" => \"{link}\"}}, []]\n"
                         "            else\n              [399, {}, []]\n            end\n          end\n")
    out = []
    if page != "/":
        out.append(f'      "/":\n        file.dir: {docroot}\n        header.set: "cache-control: {ASSET_CACHE}"\n')
    # Handlers run in the order given: the mruby one must come before file.dir.
    out.append(f'      "{page}":\n{page_headers}        file.dir: {folder}\n')
    for entry in sorted(folder.iterdir()):
        if entry.name == "index.html":
            continue
        kind = "file.dir" if entry.is_dir() else "file.file"
        out.append(f'      "{page.rstrip("/")}/{entry.name}":\n        {kind}: {entry}\n'
                   f'        header.set: "cache-control: {ASSET_CACHE}"\n')
    return "".join(out)


@contextmanager
def h2o_pages(docroot: Path, cert: CertPair, work: Path, page: str, links: list[str]) -> Iterator[str]:
    if not page.endswith("/"):
        raise BenchError(f"h2o peer: only folder pages (ending in /) are set up, not {page}")
    port = free_port()
    conf = work / "h2o-pages.conf"
    user = "user: root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}num-threads: 1\npid-file: {work}/h2o-pages.pid\nhttp2-casper: ON\n"
        f"listen:\n  host: 127.0.0.1\n  port: {port}\n  ssl:\n"
        f"    certificate-file: {cert.cert}\n    key-file: {cert.key}\n"
        f"hosts:\n  default:\n    paths:\n" + _h2o_paths(docroot, page, links)
    )
    with running("h2o", pinned(["h2o", "-c", str(conf)], SERVER_CPU)) as child:
        child.wait_for_port(port)
        yield f"https://127.0.0.1:{port}"


PeerStart = Callable[[Path, CertPair, Path, str, list[str]], AbstractContextManager[str]]
PEERS: dict[str, PeerStart] = {"nginx": nginx_pages, "h2o": h2o_pages}


def peer_setup(site: Path, page: str, log: Callable[[str], None]
               ) -> Callable[[Path, CertPair], tuple[dict[str, Starter], list[Variant]]]:
    """What ``pushserve.bench.pageload.main(extra=...)`` takes: renders the site, then a starter
    and the variants for each installed peer (a missing peer is skipped with one line)."""

    def setup(work: Path, cert: CertPair) -> tuple[dict[str, Starter], list[Variant]]:
        docroot = work / "rendered"
        docroot.mkdir()
        links = render_site(site.resolve(), docroot).get(page, [])
        if not links:
            log(f"note: pushserve's manifest lists nothing for {page}; peers get no Link headers")
        starters: dict[str, Starter] = {}
        variants: list[Variant] = []
        for name, start in PEERS.items():
            if shutil.which(name) is None:
                log(f"skipped {name}: not installed")
                continue
            starters[name] = functools.partial(start, docroot, cert, work, page, links)
            variants += [Variant(name, mode, name) for mode in PEER_MODES]
        return starters, variants

    return setup
