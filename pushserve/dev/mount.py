"""Dev mode's own routes, mounted at ``/_pushserve`` (only in dev mode; elsewhere the static layer
answers 404, since it never serves ``_`` folders):

- ``/_pushserve/events``  the live-reload event stream (see sse.py);
- ``/_pushserve/``        an overview: the site's pages, what each will push or hint, the push mode,
                          and the current template / manifest problems.

``DevServer`` is a Mount, so the worker runs its ``startup`` (the file watcher starts), ``drain``
(the event streams end: they never would by themselves) and ``shutdown`` like any mount's.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import signal
import time
from dataclasses import dataclass

from pushserve.config import Config
from pushserve.dev.classify import Batch
from pushserve.dev.sse import Hub
from pushserve.dev.update import SiteUpdater
from pushserve.dev.watch import watch
from pushserve.exchange import Stream
from pushserve.http.response import Response, plain_response
from pushserve.protocol.events import RequestReceived
from pushserve.site.broken_links import BrokenLink, broken_links
from pushserve.site.content import SiteContent
from pushserve.site.error_page import overlay_html
from pushserve.site.manifest import PushResource
from pushserve.site.paths import page_url
from pushserve.site.push import Plan, PushPolicy, Visit
from pushserve.site.responder import Responder

log = logging.getLogger("pushserve")

PREFIX = "/_pushserve"
PING_EVERY = 15.0


class DevServer:
    prefix = PREFIX.encode()

    def __init__(self, config: Config, site: SiteContent, responder: Responder) -> None:
        self.config = config
        self.site = site
        self.responder = responder
        self.hub = Hub()
        self.updater = SiteUpdater(site, responder)
        # Page reloads held back while there are problems (the overlay shows over the page as it
        # was); sent when they are fixed.
        self.held_reload: list[str] = []
        self.batches = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- Mount ------------------------------------------------------------------------------------

    async def startup(self) -> None:
        self.updater.check_templates()
        self._publish_problems()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(watch(self.config, self.apply, self._stop)),
                       loop.create_task(self._ping())]
        # One step of the watcher task sets up its inotify watches (see watch()), so a file written
        # once the worker reports ready is seen.
        await asyncio.sleep(0)

    async def shutdown(self) -> None:
        self._stop.set()
        self.hub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def drain(self) -> None:
        self.hub.close()

    def handle(self, stream: Stream) -> None:
        req = stream.request
        path = req.target.partition(b"?")[0]
        if path == self.prefix + b"/events":
            if req.method not in (b"GET", b"HEAD"):
                self._reply(stream, _plain(405, b"405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")]))
                return
            self.hub.subscribe(stream, [(b"content-type", b"text/event-stream; charset=utf-8"),
                                        (b"cache-control", b"no-store")])
            if self.responder.access_log_on:
                self.responder.log(stream, 200, b"-", "", "event stream")
            return
        if path == self.prefix:
            self._reply(stream, Response(301, [(b"location", self.prefix + b"/"), (b"content-length", b"0")], b""))
            return
        if path == self.prefix + b"/":
            if req.method not in (b"GET", b"HEAD"):
                self._reply(stream, _plain(405, b"405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")]))
                return
            body = self.overview().encode()
            self._reply(stream, Response(200, [(b"content-type", b"text/html; charset=utf-8"),
                                               (b"content-length", b"%d" % len(body)),
                                               (b"cache-control", b"no-store")], body))
            return
        self._reply(stream, _plain(404, b"404 Not Found\n"))

    def _reply(self, stream: Stream, response: Response) -> None:
        self.responder.reply(stream, response)
        stream.flush()

    # -- changes ----------------------------------------------------------------------------------

    def apply(self, batch: Batch) -> None:
        """Update the site, then tell the browsers (in that order: a reload must see new content)."""
        self.batches += 1
        kind = batch.kind
        if kind == "restart":
            self.hub.publish("change", {"kind": "restart", "paths": batch.paths("restart")})
            self._restart(batch.paths("restart"))
            return
        self.updater.apply(batch)
        had_problems = self.hub.state.startswith(b"event: error")
        self._publish_problems()
        problems = bool(self.updater.problems)
        urls = ["/" + p for p in batch.paths()]
        log.info("dev: %s changed (%s)", ", ".join(batch.paths()), kind)
        if kind == "reload" and problems:
            self.held_reload = list(dict.fromkeys([*self.held_reload, *urls]))
            return
        if kind == "reload" or (not problems and had_problems and self.held_reload):
            self.hub.publish("change", {"kind": "reload", "paths": list(dict.fromkeys([*self.held_reload, *urls]))})
            self.held_reload = []
            return
        assert kind is not None
        # Stylesheets: the changed ones and those importing them, for the client to swap.
        self.hub.publish("change", {"kind": kind, "paths": urls, "sheets": self.updater.stylesheets_to_swap(urls)})

    def _publish_problems(self) -> None:
        problems = self.updater.problems
        if problems:
            title = "Push manifest error" if self.updater.manifest_problem else "Template error"
            self.hub.publish("error", {"title": title, "problems": [p.as_json() for p in problems],
                                       "html": overlay_html(title, problems, self.config.site)})
        elif not self.hub.state.startswith(b"event: clear"):
            self.hub.publish("clear", {})

    def _restart(self, paths: list[str]) -> None:
        # The supervisor forks every worker and does a rolling restart on SIGHUP; the browsers see a
        # new instance id when they reconnect to the new worker, and reload.
        master = os.getppid()
        if master == 1:  # orphaned (no master to ask): nothing would restart us
            log.error("dev: %s changed, but there is no master process to restart the worker", ", ".join(paths))
            return
        log.info("dev: %s changed: restarting the worker (SIGHUP to %d)", ", ".join(paths), master)
        os.kill(master, signal.SIGHUP)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_EVERY)
            self.hub.ping()

    # -- overview ---------------------------------------------------------------------------------

    def overview(self) -> str:
        """Pages first, each with its resources, their sizes and what a first visit gets."""
        e = html.escape
        policy = self.responder.policy
        manifest = policy.manifest
        mode = {"auto": "push where the client allows it, else 103 Early Hints",
                "hints": "103 Early Hints only", "off": "off (nothing announced)"}[policy.mode]
        if manifest is not None:  # every page read (the background build may not be done yet)
            for _ in manifest.build_steps():
                pass
        pages = sorted((page_plans(policy, page) for page in (manifest.pages() if manifest is not None else [])),
                       key=lambda v: v.url)  # "/" first, then the site's folders in order
        items = [f"<li><code>{e(p.file)}:{p.line}</code> {e(p.message)}</li>" for p in self.updater.problems]
        items += [_broken_link_html(b) for b in (broken_links(manifest) if manifest is not None else [])]
        problems = "".join(items) or "<li class=ok>none</li>"
        # Pages come first; a count at the top leads to the problems below them.
        count = f" · <a class=bad href=#problems>{_plural(len(items), 'problem')}</a>" if items else ""
        return (
            "<!doctype html><html lang=en><meta charset=utf-8><title>pushserve dev: pages</title>"
            f"<style>{_OVERVIEW_CSS}</style><body>"
            "<h1>pushserve dev mode</h1>"
            f"<p class=facts>push mode <strong id=push-mode>{e(policy.mode)}</strong>: {e(mode)} · push budget "
            f"<strong id=push-budget>{_size(policy.budget)}</strong> a page · site <code>{e(str(self.config.site))}"
            f"</code>{count}</p><h2>Pages <small>what a first visit gets (no cookie yet, nothing pushed before)"
            f"</small></h2>{''.join(_page_html(v) for v in pages) or '<p><em>no pages</em></p>'}"
            f"<h2>Problems</h2><ul id=problems>{problems}</ul>"
            f"<p class=facts>live-reload clients: {len(self.hub.streams)} · changes seen: {self.batches} · "
            f"server instance <code>{e(self.hub.instance)}</code></p></body></html>\n"
        )


@dataclass(frozen=True, slots=True)
class ResourceView:
    path: str
    type: str
    size: int | None  # None: no such file
    browser: str  # what a browser (HTTP/2 with push off, or HTTP/1.1) gets: "hint" / "skip: why"
    pusher: str  # what an HTTP/2 client that takes pushes gets: "push" / "hint: over budget" / …


@dataclass(frozen=True, slots=True)
class PageView:
    page: str
    url: str
    resources: list[ResourceView]
    pushed_bytes: int


def page_plans(policy: PushPolicy, page: str) -> PageView:
    """The policy's own plan for a fresh client, once as a browser (push off) and once as a
    client that takes pushes, turned into a verdict per resource."""
    url = "/" + page.removesuffix("index.html")
    request = RequestReceived(1, b"GET", url.encode(), b"localhost", [], "2", True)
    resources: list[PushResource] = []
    if policy.manifest is not None:  # listed also with --push off, where the policy announces nothing
        policy.manifest.refresh(page, time.monotonic())
        resources = policy.manifest.resources_for(page)
    browser = policy.plan(Visit(request), resources)
    pusher = policy.plan(Visit(request, can_push=True), resources)
    views: list[ResourceView] = []
    pushed_bytes = 0
    for res in resources:
        entry = policy.static.entry(res.path)
        size = entry.size if entry is not None else None
        if any(p.path == res.path for p in pusher.pushes):
            pushed_bytes += size or 0
        views.append(ResourceView(res.path, res.type, size, _verdict(browser, res.path, size, False),
                                  _verdict(pusher, res.path, size, policy.mode == "auto")))
    return PageView(page, url, views, pushed_bytes)


def _verdict(plan: Plan, path: str, size: int | None, may_push: bool) -> str:
    if size is None and any(value.startswith(f"<{path}>; rel=preconnect".encode()) for _, value in plan.link_headers):
        return "preconnect"
    if size is None:
        return "skip: no such file"
    if any(p.path == path for p in plan.pushes):
        return "push"
    if any(value.startswith(f"<{path}>".encode()) for _, value in plan.link_headers):
        return "hint: over the push budget" if may_push else "hint"
    return "skip: push off"


def _broken_link_html(link: BrokenLink) -> str:
    e = html.escape
    pages = ", ".join(f"<a href=\"{e(page_url(p))}\">{e(page_url(p))}</a>" for p in link.pages)
    return (f"<li class=broken><code>{e(link.where)}</code> links to <code>{e(link.link)}</code>: "
            f"{e(link.why)} <small>(on {pages})</small></li>")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1048576:.1f} MiB"


def _page_html(view: PageView) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td><code>{e(r.path)}</code></td><td>{e(r.type)}</td><td class=num>{_size(r.size)}</td>"
        f"<td class='{r.browser.split(':')[0]}'>{e(r.browser)}</td>"
        f"<td class='{r.pusher.split(':')[0]}'>{e(r.pusher)}</td></tr>" for r in view.resources
    ) or "<tr><td colspan=5><em>nothing to announce</em></td></tr>"
    total = sum(r.size or 0 for r in view.resources)
    return (f"<section class=page id='page-{e(view.page)}'><h3><a href=\"{e(view.url)}\">{e(view.url)}</a> "
            f"<small>{e(view.page)} · {len(view.resources)} resources, {_size(total)}; "
            f"pushed to a push client: {_size(view.pushed_bytes)}</small></h3>"
            "<table><colgroup><col class=c-path><col class=c-type><col class=c-size><col class=c-verdict>"
            "<col class=c-verdict></colgroup><tr><th>resource</th><th>type</th><th class=num>size</th>"
            f"<th>a browser gets (push off)</th><th>a client taking pushes gets</th></tr>{rows}</table></section>")


_OVERVIEW_CSS = (
    "body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:64em;padding:0 1em;color:#222}"
    "h1{margin:0 0 .2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}h2 small,h3 small{font-weight:normal;"
    "color:#666;font-size:.8em}h3{margin:1.2em 0 .4em}.facts{color:#444}"
    "table{border-collapse:collapse;width:100%;table-layout:fixed}.c-path{width:36%}.c-type{width:9%}"
    ".c-size{width:11%}.c-verdict{width:22%}td:first-child code{overflow-wrap:anywhere}"
    "h3 a{font-family:ui-monospace,monospace;font-size:1.1em}th,td{text-align:left;padding:.25em .8em .25em 0;"
    "border-top:1px solid #eee;vertical-align:top}th{font-weight:600;color:#555;font-size:.9em}"
    ".num{text-align:right;white-space:nowrap}td.push{color:#0a6b2d;font-weight:600}td.hint{color:#0b57a8}"
    "td.skip{color:#999}code{font-size:.92em}.ok{color:#0a6b2d}#problems li{margin:.3em 0}"
    "#problems small{color:#666}#problems code:first-child,.bad{color:#a8200d;font-weight:600}"
)


def _plain(status: int, text: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> Response:
    return plain_response(status, text, extra=extra)
