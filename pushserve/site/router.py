"""The site a worker serves: mounted apps by longest prefix, then pages and static files."""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Protocol

from pushserve.config import Config
from pushserve.dev.inject import inject, inject_response
from pushserve.http.response import Response
from pushserve.protocol.events import RequestReceived
from pushserve.site.compress import Compressor
from pushserve.site.static import RenderRequest, StaticSite
from pushserve.site.templates import TemplateError, Templates

if TYPE_CHECKING:
    from pushserve.server.connection import Connection

log = logging.getLogger("pushserve")


class MountedApp(Protocol):
    """A mounted ASGI app, as pushserve/asgi.py provides it."""

    prefix: bytes

    async def startup(self) -> None:
        """Run the app's lifespan startup (once per worker); raise with the app's message."""

    async def shutdown(self) -> None:
        """Run the app's lifespan shutdown."""

    def start(self, conn: Connection, req: RequestReceived) -> None:
        """Take over a request stream: run the app for it as a task."""


class Site:
    def __init__(self, config: Config, mounts: list[MountedApp] | None = None) -> None:
        self.config = config
        revalidate = 0.0 if config.dev else 1.0
        self.templates = (
            Templates(config.site, site=config.site_vars, strict=config.strict_templates,
                      revalidate_after=revalidate)
            if config.templates else None
        )
        self.compressor = Compressor(config.compress) if config.compress.on else None
        self.static = StaticSite(
            config.site,
            # Dev mode renders plain .html too: the live-reload client goes in there (pushserve/dev).
            render_page=self.render_page if self.templates is not None or config.dev else None,
            revalidate_after=revalidate,
            # Dev mode: always revalidate, so an edit shows on the next load.
            cache_control=b"no-cache" if config.dev else f"public, max-age={config.max_age}".encode(),
            page_cache_control=b"no-cache",
            compressor=self.compressor,
            # Dev mode: assets that are compression dictionaries stay fresh a little, or the
            # browser would drop them at once (RFC 9842 dictionaries live as long as the response).
            dictionary_cache_control=b"max-age=%d" % config.compress.dictionary_max_age if config.dev else None,
        )
        # Longest prefix first, so /api/v2 wins over /api.
        self.mounts = sorted(mounts or [], key=lambda m: len(m.prefix), reverse=True)

    def render_page(self, rel_path: str, request: RenderRequest) -> bytes:
        if self.templates is None:  # dev mode without templates: the file as it is, plus the client
            try:
                return inject((self.config.site / rel_path).read_bytes())
            except OSError as e:
                raise TemplateError(rel_path, 0, f"cannot read: {e.strerror or e}") from None
        body = self.templates.render(rel_path, request)
        return inject(body) if self.config.dev else body  # dev: the live-reload client (pushserve/dev)

    def match_mount(self, target: bytes) -> MountedApp | None:
        for mount in self.mounts:
            p = mount.prefix
            if target.startswith(p) and (len(target) == len(p) or target[len(p)] in b"/?"):
                return mount
        return None

    def serve(self, req: RequestReceived) -> Response:
        try:
            return self.static.serve(req.method, req.target, req.headers)
        except TemplateError as e:
            log.error("template error: %s", e)
            # Dev mode: the error page carries the live-reload client, so it reloads once fixed.
            return inject_response(template_error_response(e)) if self.config.dev else template_error_response(e)


def template_error_response(e: TemplateError) -> Response:
    body = (
        "<!doctype html><meta charset=utf-8><title>Template error</title>"
        "<h1>500 Template error</h1>"
        f"<p><code>{html.escape(e.file)}</code>, line {e.line}:</p>"
        f"<pre>{html.escape(e.message)}</pre>\n"
    ).encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    return Response(500, headers, body, note=f"template error {e.file}:{e.line}")
