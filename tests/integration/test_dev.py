"""Dev mode against a real pushserve process: the live-reload event stream over HTTP/2, the
injected client script, error events, the /_pushserve/ overview, restart on app code changes.
Every test edits a copy of site_example in tmp_path; waits are reads of the event stream (bounded
by the socket timeout), never sleeps."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pushserve.dev.classify import coalesce
from pushserve.dev.inject import SNIPPET, inject
from tests.support.h2client import H2Client
from tests.support.serverproc import SITE_EXAMPLE, ServerProcess

MARK = b"data-pushserve-dev"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(SITE_EXAMPLE, copy)
    return copy


@pytest.fixture
def dev(make_server: Callable[..., ServerProcess], site: Path) -> ServerProcess:
    return make_server("--dev", site=site)


def client(server: ServerProcess, *, push: bool = False) -> H2Client:
    return H2Client(server.host, server.port, server.certs.client_context(), enable_push=push)


class Events:
    """The /_pushserve/events stream read over HTTP/2, one event at a time."""

    def __init__(self, server: ServerProcess) -> None:
        self.client = client(server)
        self.sid = self.client.request("/_pushserve/events")
        self.offset = 0

    @property
    def reply(self) -> Any:
        return self.client.replies[self.sid]

    def next(self) -> tuple[str, Any]:
        """The next event (comments and retry lines skipped).  Each read is bounded by the client's
        socket timeout, so a missing event fails the test instead of hanging it."""
        while True:
            body = bytes(self.reply.body)
            end = body.find(b"\n\n", self.offset)
            if end >= 0:
                block, self.offset = body[self.offset:end], end + 2
                fields = dict(line.split(": ", 1) for line in block.decode().split("\n")
                              if line and not line.startswith(":") and ": " in line)
                if "event" in fields:
                    return fields["event"], json.loads(fields["data"])
                continue
            assert not self.reply.done and not self.client.closed, f"stream ended: {body!r}"
            self.client.read_once()

    def next_change(self) -> dict[str, Any]:
        event, data = self.next()
        assert event == "change", (event, data)
        return dict(data)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def events(dev: ServerProcess) -> Any:
    ev = Events(dev)
    assert ev.reply.done is False
    yield ev
    ev.close()


def hello(ev: Events) -> str:
    event, data = ev.next()
    assert event == "hello"
    state, _ = ev.next()
    assert state == "clear"  # site_example has no problems
    return str(data["id"])


# -- the event stream -------------------------------------------------------------------------------

def test_event_stream_is_sse_over_h2(events: Events) -> None:
    hello(events)
    headers = dict(events.reply.headers)
    assert headers[b":status"] == b"200"
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"cache-control"] == b"no-store"


def test_css_change_is_one_css_event_naming_the_file(events: Events, site: Path) -> None:
    hello(events)
    css = site / "css" / "site.css"
    css.write_text(css.read_text() + "\nbody { outline: 1px solid red; }\n")
    assert events.next_change() == {"kind": "css", "paths": ["/css/site.css"], "sheets": ["/css/site.css"]}


def test_an_imported_stylesheet_names_its_importer(events: Events, site: Path) -> None:
    """typography.css is linked by no page; site.css @imports it: the client is told to swap site.css."""
    hello(events)
    css = site / "css" / "typography.css"
    css.write_text(css.read_text() + "\nh1 { outline: 1px solid red; }\n")
    assert events.next_change() == {"kind": "css", "paths": ["/css/typography.css"],
                                    "sheets": ["/css/typography.css", "/css/site.css"]}


def test_unrelated_file_sends_nothing_and_html_reloads(events: Events, site: Path) -> None:
    hello(events)
    (site / "notes.txt").write_text("not part of any page\n")
    (site / "data" / "scratch.md").write_text("# scratch\n")
    page = site / "features" / "index.html"
    page.write_text(page.read_text().replace("</h1>", " (edited)</h1>", 1))
    # The next event is the page's: the unrelated files produced none of their own and are not in it.
    assert events.next_change() == {"kind": "reload", "paths": ["/features/index.html"]}


def test_image_change_is_an_image_event(events: Events, site: Path) -> None:
    hello(events)
    logo = site / "img" / "logo.svg"
    logo.write_text(logo.read_text().replace("</svg>", "<!-- edited --></svg>"))
    assert events.next_change() == {"kind": "image", "paths": ["/img/logo.svg"], "sheets": []}


def test_template_js_and_toml_changes_reload(events: Events, site: Path) -> None:
    hello(events)
    for rel in ("_layouts/base.html", "js/app.js", "pushserve.toml"):
        path = site / rel
        path.write_text(path.read_text() + "\n")
        assert events.next_change() == {"kind": "reload", "paths": ["/" + rel]}


def test_editor_save_by_rename_is_one_change(events: Events, site: Path) -> None:
    hello(events)
    css = site / "css" / "site.css"
    text = css.read_text()
    # vim's way (backupcopy=no): probe file, rename the original away, write anew, drop the backup.
    (site / "css" / "4913").write_text("")
    (site / "css" / "4913").unlink()
    css.rename(site / "css" / "site.css~")
    css.write_text(text + "\n/* saved */\n")
    (site / "css" / "site.css~").unlink()
    assert events.next_change() == {"kind": "css", "paths": ["/css/site.css"], "sheets": ["/css/site.css"]}


def test_burst_of_fifty_files_is_one_event(events: Events, site: Path) -> None:
    hello(events)
    out = site / "css" / "gen"
    out.mkdir()
    names = [f"/css/gen/part{i:02}.css" for i in range(50)]
    for name in names:  # a build tool writing its output
        (site / name.lstrip("/")).write_text(f".{Path(name).stem} {{ color: red }}\n")
    change = events.next_change()
    assert change["kind"] == "css"
    assert sorted(change["paths"]) == names
    # Nothing else was queued for that burst: the next event is the next edit's.
    (site / "js" / "nav.js").write_text((site / "js" / "nav.js").read_text() + "\n")
    assert events.next_change() == {"kind": "reload", "paths": ["/js/nav.js"]}


def test_manifest_is_updated_before_the_browser_is_told(events: Events, dev: ServerProcess, site: Path) -> None:
    hello(events)
    (site / "css" / "extra.css").write_text("p { margin: 0 }\n")
    page = site / "index.html"
    page.write_text(page.read_text().replace(
        '{% block head %}', '{% block head %}\n  <link rel="stylesheet" href="/css/extra.css">', 1))
    while "/index.html" not in (change := events.next_change())["paths"]:
        pass
    assert change["kind"] == "reload"
    # The reload that follows the event is pushed the new stylesheet already.
    c = client(dev, push=True)
    try:
        reply = c.get("/")
        pushed = {r.path.decode() for r in c.pushes_of(reply.stream_id)}
    finally:
        c.close()
    assert reply.status == 200
    assert "/css/extra.css" in pushed
    assert b"<link rel=\"stylesheet\" href=\"/css/extra.css\">" in reply.body


def test_template_error_event_then_clear(events: Events, dev: ServerProcess, site: Path) -> None:
    hello(events)
    nav = site / "_partials" / "nav.html"
    good = nav.read_text()
    nav.write_text("{% if %}\n" + good)
    event, data = events.next()
    assert event == "error"
    [problem] = data["problems"]
    assert problem["file"] == "_partials/nav.html"
    assert problem["line"] == 1
    assert problem["message"]
    # The terminal says the error itself, where it is (not "index.html: not rendered, nothing inferred").
    dev.wait_for(r"template error: _partials/nav\.html:1: .*expression")
    assert "not rendered" not in dev.output
    # The page is served as the dev error page, which carries the client so it reloads when fixed.
    c = client(dev)
    try:
        reply = c.get("/")
    finally:
        c.close()
    assert reply.status == 500
    assert MARK in reply.body and b"_partials/nav.html" in reply.body
    assert int(reply.header(b"content-length") or 0) == len(reply.body)
    # A client connecting now is told about the problem at once.
    late = Events(dev)
    try:
        late.next()
        assert late.next()[0] == "error"
    finally:
        late.close()
    nav.write_text(good)
    assert events.next() == ("clear", {})
    # The reload held back while the template was broken comes now.
    assert events.next_change() == {"kind": "reload", "paths": ["/_partials/nav.html"]}


def test_broken_push_manifest_is_an_error_event(events: Events, site: Path) -> None:
    hello(events)
    manifest = site / "push_manifest.json"
    manifest.write_text('{\n  "index.html": {\n    "/css/site.css": {"type": "stile"}\n  }\n}\n')
    event, data = events.next()
    assert event == "error"
    [problem] = data["problems"]
    assert problem["file"] == "push_manifest.json"
    assert "stile" in problem["message"]
    manifest.unlink()
    assert events.next() == ("clear", {})
    assert events.next_change()["kind"] == "reload"


# -- the injected script ----------------------------------------------------------------------------

def test_dev_mode_caches_nothing_unchecked(dev: ServerProcess) -> None:
    """Every file is no-cache in dev mode (a conditional request is a 304), so a browser never
    shows an old copy of a file it found by itself (an @import, a module import, a font)."""
    c = client(dev)
    try:
        for path in ("/", "/css/site.css", "/css/typography.css", "/js/app.js", "/img/logo.svg",
                     "/fonts/dejavu-sans-latin.woff2", "/favicon.ico"):
            reply = c.get(path)
            assert reply.status == 200 and reply.header(b"cache-control") == b"no-cache", path
            again = c.get(path, [(b"if-none-match", reply.header(b"etag") or b"")])
            assert again.status == 304, path
    finally:
        c.close()


def test_dev_mode_makes_an_undefined_variable_an_error(make_server: Callable[..., ServerProcess],
                                                       site: Path) -> None:
    """{{ site.email }} with no email in [site]: the dev page says so; production renders it empty."""
    layout = site / "_layouts" / "base.html"
    layout.write_text(layout.read_text().replace("</footer>", "<a>{{ site.email }}</a></footer>", 1))
    answers = {}
    for args in (("--dev",), ()):
        c = client(make_server(*args, site=site))
        try:
            answers[args] = c.get("/")
        finally:
            c.close()
    dev = answers[("--dev",)]
    assert dev.status == 500 and b"email" in dev.body and b"_layouts/base.html" in dev.body
    assert answers[()].status == 200 and b"<a></a></footer>" in answers[()].body


def test_html_carries_the_script_only_in_dev(dev: ServerProcess, server: ServerProcess) -> None:
    c = client(dev)
    try:
        page = c.get("/")
        css = c.get("/css/site.css")
        again = c.get("/", [(b"if-none-match", page.header(b"etag") or b"")])
        missing = c.get("/no/such/page")
    finally:
        c.close()
    assert page.status == 200 and page.body.count(MARK) == 1
    assert page.body.index(MARK) < page.body.lower().rindex(b"</body>")
    assert int(page.header(b"content-length") or 0) == len(page.body)
    assert again.status == 304  # the ETag describes the bytes with the script in them
    assert MARK not in css.body and css.header(b"content-type") == b"text/css; charset=utf-8"
    assert missing.status == 404 and MARK in missing.body  # site_example's 404 page is HTML

    plain = client(server)
    try:
        page = plain.get("/")
        stream = plain.get("/_pushserve/events")
        overview = plain.get("/_pushserve/")
    finally:
        plain.close()
    assert page.status == 200 and MARK not in page.body
    assert stream.status == 404 and overview.status == 404


def test_plain_html_gets_the_script_without_templates(make_server: Callable[..., ServerProcess],
                                                      site: Path) -> None:
    (site / "plain.html").write_bytes(b"<p>no body tag here")
    srv = make_server("--dev", "--no-templates", site=site)
    c = client(srv)
    try:
        reply = c.get("/plain.html")
    finally:
        c.close()
    assert reply.body == b"<p>no body tag here" + SNIPPET
    assert int(reply.header(b"content-length") or 0) == len(reply.body)


def test_overview_lists_pages_pushes_and_mode(dev: ServerProcess) -> None:
    c = client(dev)
    try:
        reply = c.get("/_pushserve/")
        bare = c.get("/_pushserve")
    finally:
        c.close()
    assert reply.status == 200
    text = reply.body.decode()
    assert "<strong id=push-mode>auto</strong>" in text and "<strong id=push-budget>1.0 MiB</strong>" in text
    assert "index.html" in text and "features/index.html" in text
    # Pages first; each resource with its size and what a first visit gets, per kind of client.
    assert text.index("features/index.html") < text.index("<h2>Problems</h2>")
    size = (SITE_EXAMPLE / "css" / "site.css").stat().st_size
    css_size = f"{size} B" if size < 1024 else f"{size / 1024:.1f} KiB"
    assert (f"<tr><td><code>/css/site.css</code></td><td>style</td><td class=num>{css_size}</td>"
            "<td class='hint'>hint</td><td class='push'>push</td></tr>") in text
    assert "/fonts/dejavu-sans-latin.woff2" in text
    assert bare.status == 301 and bare.header(b"location") == b"/_pushserve/"


def test_broken_links_in_the_overview_and_the_log(events: Events, dev: ServerProcess, site: Path) -> None:
    """A stylesheet missing from the layout: one log line naming the layout's line (not one per
    page), and the overview's Problems list it with the pages that carry it."""
    hello(events)
    layout = site / "_layouts" / "base.html"
    text = layout.read_text()
    line = text[:text.index('href="/css/site.css"')].count("\n") + 2
    layout.write_text(text.replace('href="/css/site.css">\n', 'href="/css/site.css">\n'
                                   '  <link rel="stylesheet" href="/css/missing.css">\n', 1))
    assert events.next_change()["kind"] == "reload"
    told = f"broken link: _layouts/base.html:{line}: /css/missing.css: no such file"
    dev.wait_for(re.escape(told))
    c = client(dev)
    try:
        overview = c.get("/_pushserve/").body.decode()
    finally:
        c.close()
    problems = overview[overview.index("<ul id=problems>"):]
    assert (f"<li class=broken><code>_layouts/base.html:{line}</code> links to <code>/css/missing.css</code>: "
            'no such file <small>(on <a href="/features/">/features/</a>, <a href="/">/</a>)</small></li>') \
        in problems
    assert dev.output.count("/css/missing.css") == 1, dev.output


def test_overview_shows_the_budget_at_work(make_server: Callable[..., ServerProcess], site: Path) -> None:
    """With a budget smaller than the stylesheet, a push client gets it hinted, and the page says why."""
    srv = make_server("--dev", "--push-budget", "100", site=site)
    c = client(srv)
    try:
        text = c.get("/_pushserve/").body.decode()
    finally:
        c.close()
    assert "<strong id=push-budget>100 B</strong>" in text
    assert "<td class='hint'>hint: over the push budget</td>" in text


# -- restart on app code changes --------------------------------------------------------------------

APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"VERSION"})
'''


def test_app_code_change_with_reload_restarts_and_clients_see_a_new_instance(
        make_server: Callable[..., ServerProcess], site: Path, tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "devapp.py").write_text(APP.replace("VERSION", "one"))
    srv = make_server("--dev", "--reload", "--app-dir", str(apps), "--mount", "/api=devapp:app", site=site)
    ev = Events(srv)
    try:
        first = hello(ev)
        (apps / "devapp.py").write_text(APP.replace("VERSION", "two"))
        assert ev.next_change() == {"kind": "restart", "paths": [str(apps / "devapp.py")]}
        # The old worker ends the stream when the new one has taken over.
        with pytest.raises(AssertionError, match="stream ended"):
            ev.next()
    finally:
        ev.close()
    again = Events(srv)
    try:
        event, data = again.next()
        assert event == "hello" and data["id"] != first
    finally:
        again.close()
    c = client(srv)
    try:
        assert c.get("/api/").body == b"two"
    finally:
        c.close()


def test_python_change_without_reload_does_nothing(events: Events, site: Path) -> None:
    hello(events)
    (site / "_tool.py").write_text("print('hi')\n")
    (site / "css" / "site.css").write_text((site / "css" / "site.css").read_text() + "\n")
    assert events.next_change() == {"kind": "css", "paths": ["/css/site.css"], "sheets": ["/css/site.css"]}


# -- pure helpers -----------------------------------------------------------------------------------

def test_inject_places_the_script() -> None:
    assert inject(b"<html><body><p>x</BODY></html>", b"S") == b"<html><body><p>xS</BODY></html>"
    assert inject(b"<p>x</p></html>", b"S") == b"<p>x</p>S</html>"
    assert inject(b"<p>x</p>", b"S") == b"<p>x</p>S"
    # The last </body> counts: an earlier one may sit in a comment.
    assert inject(b"<!-- </body> --><body></body>", b"S") == b"<!-- </body> --><body>S</body>"


def test_coalesce_folds_and_classifies(tmp_path: Path) -> None:
    root = str(tmp_path)
    j = os.path.join
    raw = [(j(root, "css/a.css"), False), (j(root, "css/a.css"), True), (j(root, "css/a.css~"), False),
           (j(root, "img/x.png"), True), (j(root, "README.md"), True), (j(root, ".git/index"), True),
           (j(root, "index.html"), False), ("/elsewhere/app.py", True), (j(root, "_app/api.py"), True)]
    batch = coalesce(raw, site=root, code_roots=["/elsewhere"], reload_code=True)
    assert [(c.path, c.kind, c.deleted) for c in batch.changes] == [
        ("css/a.css", "css", False), ("img/x.png", "image", False), ("index.html", "reload", True),
        ("/elsewhere/app.py", "restart", False), ("_app/api.py", "restart", False)]
    assert batch.kind == "restart"
    quiet = coalesce(raw[:5], site=root)
    assert quiet.kind == "css" and quiet.paths("css", "image") == ["css/a.css", "img/x.png"]
    assert not coalesce([("/elsewhere/app.py", True)], site=root, code_roots=["/elsewhere"])
