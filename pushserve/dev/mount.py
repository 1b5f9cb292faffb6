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

from pushserve.config import Config
from pushserve.dev.classify import Batch
from pushserve.dev.sse import Hub
from pushserve.dev.update import SiteUpdater
from pushserve.dev.watch import watch
from pushserve.exchange import DiscardBody, Exchange
from pushserve.http.response import Response, plain_response
from pushserve.protocol.events import RequestReceived
from pushserve.site.content import SiteContent
from pushserve.site.error_page import overlay_html
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

    def handle(self, ex: Exchange, req: RequestReceived) -> None:
        path = req.target.partition(b"?")[0]
        if path == self.prefix + b"/events":
            if req.method not in (b"GET", b"HEAD"):
                self._reply(ex, req, _plain(405, b"405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")]))
                return
            headers = [*ex.default_headers(),
                       (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store")]
            self.hub.subscribe(ex, req, headers)
            if self.responder.access_log_on:
                self.responder.log(ex, req, 200, b"-", "", "event stream")
            return
        if path == self.prefix:
            self._reply(ex, req, Response(301, [(b"location", self.prefix + b"/"), (b"content-length", b"0")],
                                            b""))
            return
        if path == self.prefix + b"/":
            if req.method not in (b"GET", b"HEAD"):
                self._reply(ex, req, _plain(405, b"405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")]))
                return
            body = self.overview().encode()
            self._reply(ex, req, Response(200, [(b"content-type", b"text/html; charset=utf-8"),
                                                  (b"content-length", b"%d" % len(body)),
                                                  (b"cache-control", b"no-store")], body))
            return
        self._reply(ex, req, _plain(404, b"404 Not Found\n"))

    def _reply(self, ex: Exchange, req: RequestReceived, response: Response) -> None:
        if not req.end_stream:  # a body nobody reads: keep the HTTP/2 window open
            ex.attach(req.stream_id, DiscardBody(ex, req.stream_id))
        self.responder.respond(ex, req, response)
        ex.flush()

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
        self.hub.publish("change", {"kind": kind, "paths": urls})

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
        e = html.escape
        policy = self.responder.policy
        manifest = policy.manifest
        mode = {"auto": "push where the client allows it, else 103 Early Hints",
                "hints": "103 Early Hints only", "off": "off (nothing announced)"}[policy.mode]
        rows: list[str] = []
        for page in manifest.pages() if manifest is not None else []:
            resources = manifest.resources_for(page) if manifest is not None else []
            items = "".join(
                f"<li><code>{e(r.path)}</code> <small>{e(r.type)}"
                f"{' · weight ' + str(r.weight) if r.weight != 1 else ''}"
                f"{' · crossorigin' if r.crossorigin else ''}</small></li>" for r in resources
            ) or "<li><em>nothing</em></li>"
            url = "/" + page.removesuffix("index.html")
            rows.append(f"<tr><td><a href=\"{e(url)}\">{e(page)}</a></td><td><ul>{items}</ul></td></tr>")
        problems = "".join(f"<li><code>{e(p.file)}:{p.line}</code> {e(p.message)}</li>"
                           for p in self.updater.problems) or "<li>none</li>"
        return (
            "<!doctype html><html lang=en><meta charset=utf-8><title>pushserve dev</title>"
            "<style>body{font:15px/1.5 system-ui,sans-serif;margin:2em;max-width:60em}"
            "td{vertical-align:top;padding:.3em 1em .3em 0;border-top:1px solid #ddd}ul{margin:0;padding-left:1.2em}"
            "</style><body>"
            f"<h1>pushserve dev mode</h1><p>Site <code>{e(str(self.config.site))}</code>, "
            f"push mode <strong id=push-mode>{e(policy.mode)}</strong>: {e(mode)}. "
            f"Live-reload clients: {len(self.hub.streams)}; changes seen: {self.batches}; "
            f"server instance <code>{e(self.hub.instance)}</code>.</p>"
            f"<h2>Problems</h2><ul id=problems>{problems}</ul>"
            "<h2>Pages and what they announce</h2>"
            f"<table id=pages><tr><th>Page</th><th>Pushed or hinted (in order)</th></tr>{''.join(rows)}</table>"
            "</body></html>\n"
        )


def _plain(status: int, text: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> Response:
    return plain_response(status, text, extra=extra)
