"""What the site folder serves: static files and pages, rendered through Jinja2 when they are
templates (see site/templates.py for the rule), with a template error shown as a 500 page that
names file and line.  A site with no template page (generator output) is served as plain files."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from pushserve.config import Config
from pushserve.http.response import Response
from pushserve.site.compress import Compressor
from pushserve.site.error_page import template_error_page
from pushserve.site.manifest_load import site_private, templates_for
from pushserve.site.paths import PrivateFiles
from pushserve.site.static import RenderRequest, StaticSite
from pushserve.site.template_files import TemplateError
from pushserve.site.templates import TemplateScan

log = logging.getLogger("pushserve")

# Something that rewrites every HTML page served (dev mode puts its live-reload client in).
PageFilter = Callable[[bytes], bytes]


class SiteContent:
    """``lazy``: leave the templates' survey (which reads every HTML file) to the caller's
    background (``survey_steps``); else it is done here, before anything is served."""

    def __init__(self, config: Config, *, page_filter: PageFilter | None = None,
                 private: PrivateFiles | None = None, lazy: bool = False) -> None:
        """``private``: the site's private files when not ``site_private(config)``."""
        self.config = config
        self.page_filter = page_filter
        revalidate = 0.0 if config.dev else 1.0
        self.private = private if private is not None else site_private(config)
        self.templates = templates_for(config, revalidate_after=revalidate, private=self.private)
        if self.templates is not None and not lazy:
            self.templates.scan()
        # Pages go through render_page when they are templates (see site/templates.py for the
        # rule; dev mode's page filter renders plain ones too: its output is what is served);
        # other pages are files like any other.
        renders = None if page_filter is not None or self.templates is None else self.templates.renders
        self.compressor = Compressor(config.compress) if config.compress.on else None
        self.static = StaticSite(
            config.site,
            render_page=self.render_page if self.templates is not None or page_filter is not None else None,
            renders=renders,
            revalidate_after=revalidate,
            # Dev mode: every response is revalidated (ETag -> 304), so an edit shows on the next
            # load, also in a file the browser found by itself (an @import, a module import, a
            # font).  This costs dev mode the dictionary deltas: Chromium keeps a dictionary only
            # while its response is fresh.
            cache_control=b"no-cache" if config.dev else f"public, max-age={config.max_age}".encode(),
            page_cache_control=b"no-cache",
            compressor=self.compressor,
            private=self.private,
            follow_symlinks=config.follow_symlinks,
            render_error=self.render_error,
        )

    @property
    def scan(self) -> TemplateScan | None:
        """The templates' survey: the template pages and template-only files (done now if it was
        not yet: for commands that read the whole site)."""
        return self.templates.scan() if self.templates is not None else None

    def survey_steps(self) -> Iterator[None]:
        """The templates' survey, a file per step (nothing when there are no templates)."""
        if self.templates is not None:
            yield from self.templates.survey_steps()

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every page can be answered (the survey is done)."""
        if self.templates is None:
            callback()
        else:
            self.templates.when_surveyed(callback)

    def render_page(self, rel_path: str, request: RenderRequest) -> bytes:
        if self.templates is None:  # no templates: the file as it is, through the filter
            try:
                body = (self.config.site / rel_path).read_bytes()
            except OSError as e:
                raise TemplateError(rel_path, 0, f"cannot read: {e.strerror or e}") from None
        else:
            body = self.templates.render(rel_path, request)
        return self.page_filter(body) if self.page_filter is not None else body

    def render_error(self, e: TemplateError) -> Response:
        log.error("template error: %s", e)
        return template_error_response(e, self.config, self.page_filter)


def template_error_response(e: TemplateError, config: Config, page_filter: PageFilter | None = None) -> Response:
    body = template_error_page(e, config.site, dev=config.dev)
    if page_filter is not None:  # dev mode: the error page reloads itself once the template is fixed
        body = page_filter(body)
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    return Response(500, headers, body, note=f"template error {e.file}:{e.line}")
