"""What pushserve serves for a site, collected once for every export format: each servable
file's bytes (pages rendered as for a request without query string), content type,
Cache-Control, and for pages the Link values pushserve sends with ``--push hints``.

Everything comes from the site's own classes (SiteContent, the push manifest and PushPolicy,
site/paths.py's rule of what is served), so an export says what pushserve does, not a copy of it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pushserve.config import SITE_TOML, Config, ConfigError
from pushserve.http.codings import match_pattern
from pushserve.http.mime import content_type
from pushserve.protocol.events import RequestReceived
from pushserve.site.content import SiteContent
from pushserve.site.manifest_load import MANIFEST_FILE, build_push_manifest, site_private
from pushserve.site.paths import NOT_FOUND_PAGE, is_page, is_private, page_url
from pushserve.site.push import PushPolicy, Visit
from pushserve.site.static import RenderRequest
from pushserve.site.template_files import TemplateError

# pushserve's own settings, not content of the site.
_NOT_CONTENT = frozenset((SITE_TOML, MANIFEST_FILE))
# Hand-made precompressed siblings: the export makes its own from the file's bytes.
_SIBLING_SUFFIXES = (".br", ".zst", ".gz")
_PROBE_PATH = "/no-such-page-pushserve-export/"  # a missing URL, to see whether 404.html depends on it


@dataclass(frozen=True, slots=True)
class File:
    """One file of the export, as pushserve answers a GET for it (no query, no cookie)."""

    rel: str  # path under the export folder, "/"-separated: "features/index.html"
    urls: tuple[str, ...]  # decoded URL paths pushserve serves it at ("/features/", "/features/index.html")
    body: bytes
    content_type: str
    cache_control: str
    page: bool = False
    links: tuple[str, ...] = ()  # Link values on the 200 (pages only)

    @property
    def url(self) -> str:
        return self.urls[0]


@dataclass(slots=True)
class SiteExport:
    files: list[File] = field(default_factory=list)  # sorted by rel
    warnings: list[str] = field(default_factory=list)
    not_found: File | None = None  # 404.html, also in ``files``
    compress_codings: tuple[str, ...] = ()
    compress_levels: dict[str, int] = field(default_factory=dict)
    asset_cache_control: str = ""  # pushserve's, for an asset without a hashed name
    compress_threshold: int = 0  # smaller bodies get no siblings (pushserve sends them as they are)

    @property
    def pages(self) -> list[File]:
        return [f for f in self.files if f.page]


def is_hashed(url_path: str) -> bool:
    """A file name with a content hash in it (``app.3f9a1c2e.js``), by the rule compression
    dictionaries use for a file's later versions: such a URL never changes its bytes."""
    return "*" in match_pattern(url_path).replace("\\*", "")


def asset_cache_control(base: str, url_path: str) -> str:
    """pushserve's Cache-Control for an asset, ``immutable`` added for a hashed name."""
    return f"{base}, immutable" if is_hashed(url_path) else base


def collect(config: Config) -> SiteExport:
    """Everything pushserve serves for ``config`` (dev mode off), with a warning per part that
    does not export."""
    # What the configuration names stays out, dev settings included (its reload folders).
    private = site_private(config)
    config = config.without_dev()
    content = SiteContent(config, private=private)
    if content.templates is not None:  # pushserve refuses to serve such a site; so does the export
        errors = content.templates.check_all()
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ConfigError(f"template error {errors[0]}{more}: pushserve would not serve this site")
    static = content.static
    out = SiteExport(compress_codings=config.compress.codings, compress_levels=dict(config.compress.levels),
                     compress_threshold=config.compress.threshold,
                     asset_cache_control=static.cache_control.decode())
    for mount in config.mounts:
        out.warnings.append(f"{mount.prefix} is a mounted app ({mount.app}): not exported, "
                            "it needs a server that runs it")
    manifest, manifest_warnings = build_push_manifest(config, content.templates, private=private)
    out.warnings += [f"push manifest: {w}" for w in manifest_warnings]
    policy = PushPolicy("off" if config.push == "off" else "hints", manifest, static,
                        budget=config.limits.push_budget, use_cookie=False)
    causes: dict[tuple[str, str], list[str]] = {}  # (what, where a template reads the request) -> pages
    for rel, fs_path in _servable_files(content):
        if not is_page(rel):
            url = "/" + rel
            out.files.append(File(rel, (url,), fs_path.read_bytes(), content_type(rel).decode(),
                                  asset_cache_control(out.asset_cache_control, url)))
            continue
        page = _page(content, policy, rel, out.warnings, causes)
        if page is not None:
            out.files.append(page)
            if rel == NOT_FOUND_PAGE:  # what pushserve answers a missing path with
                out.not_found = page
    out.warnings += [_WHAT[what].format(where=where, n=f"{len(pages)} page{'s' if len(pages) > 1 else ''}",
                                        pages=", ".join(pages))
                     for (what, where), pages in sorted(causes.items())]
    return out


# Pages that read the request export as rendered for one request: said once per template line.
_WHAT = {
    "headers": "{where} reads request headers: {n} ({pages}) exported as rendered for a request without them",
    "path": "{where} reads request.path: {n} ({pages}) exported with the bytes of the folder URL for "
            "/…/index.html too",
    "missing": "{where} reads request.path: {pages} exported as rendered for its own URL, not the missing one",
}
_READS = {"headers": re.compile(r"\brequest\s*(\.\s*headers\b|\[\s*[\"']headers)"),
          "path": re.compile(r"\brequest\s*(\.\s*path\b|\[\s*[\"']path)")}


def _reads_request(content: SiteContent, rel: str, what: str) -> str:
    """Where the page, or a template it is made from, reads ``request.<what>``: ``FILE:LINE``
    (the page itself when no such line is found)."""
    templates, scan = content.templates, content.scan
    files = [rel, *sorted(templates.dependencies(rel) - {rel})] if templates is not None else [rel]
    files += sorted(scan.template_only - set(files)) if scan is not None else []
    for name in files:
        try:
            text = (content.config.site / name).read_text("utf-8", "replace")
        except OSError:
            continue
        found = _READS[what].search(text)
        if found is not None:
            return f"{name}:{text.count(chr(10), 0, found.start()) + 1}"
    return rel


def _servable_files(content: SiteContent) -> list[tuple[str, Path]]:
    """Site-relative paths of the files a GET would serve (site/paths.py decides) and the file
    each serves, sorted by path."""
    paths = content.static.paths
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(paths.root):
        dirnames[:] = sorted(d for d in dirnames if not is_private(d))
        rel_dir = Path(dirpath).relative_to(paths.root).as_posix()
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            fs_path = None if rel in _NOT_CONTENT else paths.resolve("/" + quote(rel))
            if fs_path is not None:
                found[rel] = fs_path
    return sorted((rel, p) for rel, p in found.items()
                  if not (rel.endswith(_SIBLING_SUFFIXES) and rel.rpartition(".")[0] in found))


def _page(content: SiteContent, policy: PushPolicy, rel: str, warnings: list[str],
          causes: dict[tuple[str, str], list[str]]) -> File | None:
    static = content.static
    url = page_url(rel)
    try:
        body = content.render_page(rel, RenderRequest(url, b"", []))
    except TemplateError as e:
        warnings.append(f"{rel} not exported: template error {e}")
        return None
    templates = content.templates
    if templates is not None and not templates.dependencies(rel):
        # A render that read request headers is never cached, so it has no recorded dependencies.
        causes.setdefault(("headers", _reads_request(content, rel, "headers")), []).append(rel)
    urls = (url, url + "index.html") if url.endswith("/") else (url,)
    if rel == NOT_FOUND_PAGE and _varies(content, rel, body, _PROBE_PATH):
        causes.setdefault(("missing", _reads_request(content, rel, "path")), []).append(rel)
    if len(urls) > 1 and _varies(content, rel, body, urls[1]):
        causes.setdefault(("path", _reads_request(content, rel, "path")), []).append(rel)
    request = RequestReceived(stream_id=1, method=b"GET", target=quote(url).encode(), authority=b"",
                              headers=[], http_version="2", end_stream=True)
    plan = policy.plan(Visit(request), policy.resources_for_page(rel))
    return File(rel, urls, body, content_type(rel).decode(), static.page_cache_control.decode(), page=True,
                links=tuple(v.decode() for _, v in plan.link_headers))


def _varies(content: SiteContent, rel: str, body: bytes, other_path: str) -> bool:
    """Whether the page renders differently when asked for at ``other_path``."""
    try:
        return content.render_page(rel, RenderRequest(other_path, b"", [])) != body
    except TemplateError:
        return True
