"""The site's responder carrying out push, 103 Early Hints and 304 decisions on real protocol
cores, through in-memory connections (tests/support/memory.py): no sockets.  Each test runs on
every protocol (or every protocol with push); what differs is read off the server's own table of
capabilities, never a protocol name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.app import build
from pushserve.config import Config, PushMode
from pushserve.exchange import App
from pushserve.site.router import Router
from tests.support.memory import PROTOCOLS, PUSHING, capabilities, session, write_site

PAGE_RESOURCES = ["/css/site.css", "/fonts/x.woff2", "/js/app.js", "/js/dep.js"]
LINKS = [b"</css/site.css>; rel=preload; as=style", b"</fonts/x.woff2>; rel=preload; as=font; crossorigin",
         b"</js/app.js>; rel=modulepreload", b"</js/dep.js>; rel=modulepreload"]


def site_app(tmp_path: Path, push: PushMode = "auto", *, hints_http1: bool = False) -> App:
    return build(Config(site=write_site(tmp_path), push=push, access_log=False, hints_http1=hints_http1))


def hinted(protocol: str, hints_http1: bool = False) -> bool:
    """Whether a browser's page request on ``protocol`` gets a 103 (push refused)."""
    caps = capabilities(protocol)
    return caps.inform and (not caps.inform_opt_in or hints_http1)


@pytest.mark.parametrize("protocol", PUSHING)
def test_push_when_the_client_allows_it(tmp_path: Path, protocol: str) -> None:
    s = session(protocol, site_app(tmp_path))
    sid = s.request("/", headers=[(b"accept-encoding", b"identity"), (b"user-agent", b"t/1"),
                                  (b"accept", b"text/html")])
    page = s.replies[sid]
    assert page.done and page.status == 200 and b"<p>hello</p>" in page.body
    assert page.informational == [] and page.all(b"link") == []  # everything was pushed: nothing to hint
    cookie = page.header(b"set-cookie")
    assert cookie is not None and cookie.startswith(b"pushserve-cache=")
    pushes = s.pushes_of(sid)
    assert sorted(pushes) == sorted(p.encode() for p in PAGE_RESOURCES)
    for path, pushed in pushes.items():
        assert pushed.done and pushed.status == 200, path
        assert bytes(pushed.body) == (tmp_path / path.decode().lstrip("/")).read_bytes()
        # The pushed request carries what the browser would send for it (not the page's accept).
        request = dict(pushed.request_headers)
        assert request[b":authority"] == b"example.test" and request[b"user-agent"] == b"t/1"
        assert request[b"accept-encoding"] == b"identity" and b"accept" not in request
    assert s.server.pushed == set(PAGE_RESOURCES)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_that_takes_no_pushes_is_told_with_link_headers(tmp_path: Path, protocol: str) -> None:
    s = session(protocol, site_app(tmp_path), enable_push=False)
    page = s.get("/")
    assert page.status == 200 and s.pushes_of(page.stream_id) == {}
    assert page.all(b"link") == LINKS  # on the final response, whatever the protocol
    if hinted(protocol):
        (hint,) = page.informational
        assert hint[0] == (b":status", b"103")
        assert [v for k, v in hint if k == b"link"] == LINKS
    else:
        assert page.informational == []
    assert s.server.pushed == set()


@pytest.mark.parametrize("protocol", PUSHING)
def test_nothing_pushed_twice_on_one_connection(tmp_path: Path, protocol: str) -> None:
    s = session(protocol, site_app(tmp_path))
    first = s.request("/")
    assert len(s.pushes_of(first)) == 4
    second = s.request("/")
    assert s.replies[second].status == 200
    assert s.pushes_of(second) == {} and s.replies[second].all(b"link") == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_push_cookie_stops_a_returning_client_being_sent_it_again(tmp_path: Path, protocol: str) -> None:
    app = site_app(tmp_path)
    first = session(protocol, app).get("/")
    cookie = first.header(b"set-cookie")
    assert cookie is not None  # pushed or hinted, it is remembered
    again = session(protocol, app)  # a new connection: only the cookie says what the browser has
    sid = again.request("/", headers=[(b"cookie", cookie.split(b";")[0])])
    assert again.replies[sid].status == 200 and again.pushes_of(sid) == {}
    assert again.replies[sid].all(b"link") == [] and again.replies[sid].informational == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mode_hints_and_mode_off(tmp_path: Path, protocol: str) -> None:
    hints = session(protocol, site_app(tmp_path, "hints")).get("/")
    assert hints.status == 200 and hints.all(b"link") == LINKS
    assert len(hints.informational) == hinted(protocol)
    s = session(protocol, site_app(tmp_path, "off"))
    off = s.get("/")
    assert off.status == 200 and off.informational == [] and off.all(b"link") == []
    assert s.pushes_of(off.stream_id) == {} and off.header(b"set-cookie") is None


@pytest.mark.parametrize("protocol", PUSHING)
def test_pushes_beyond_the_clients_stream_limit_become_link_headers(tmp_path: Path, protocol: str) -> None:
    s = session(protocol, site_app(tmp_path), max_pushes=2)
    page = s.get("/")
    assert sorted(s.pushes_of(page.stream_id)) == [b"/css/site.css", b"/fonts/x.woff2"]
    assert page.informational == []  # a pushing connection gets no 103
    assert page.all(b"link") == LINKS[2:]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("hints_http1", [False, True])
def test_103_where_1xx_are_mishandled_only_when_the_site_asks(tmp_path: Path, protocol: str,
                                                              hints_http1: bool) -> None:
    page = session(protocol, site_app(tmp_path, hints_http1=hints_http1), enable_push=False).get("/")
    assert page.status == 200 and page.all(b"link") == LINKS and b"<p>hello</p>" in page.body
    if hinted(protocol, hints_http1):
        (hint,) = page.informational
        assert hint[0] == (b":status", b"103") and [v for k, v in hint if k == b"link"] == LINKS
    else:
        assert page.informational == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("fetch_headers", "wanted"), [
    ([(b"sec-fetch-dest", b"document"), (b"sec-fetch-mode", b"navigate")], True),  # a top-level navigation
    ([], True),  # no Sec-Fetch-* at all: nghttp, curl
    ([(b"sec-fetch-dest", b"empty"), (b"sec-fetch-mode", b"cors")], False),  # fetch()
    ([(b"sec-fetch-dest", b"iframe"), (b"sec-fetch-mode", b"navigate")], False),  # Chromium ignores 103 in iframes
])
def test_103_only_where_a_browser_acts_on_it(tmp_path: Path, protocol: str, fetch_headers: list[tuple[bytes, bytes]],
                                             wanted: bool) -> None:
    app = site_app(tmp_path, hints_http1=True)
    page = session(protocol, app, enable_push=False).get("/", headers=fetch_headers)
    assert bool(page.informational) is (wanted and hinted(protocol, True))
    assert page.status == 200 and page.all(b"link") == LINKS  # the 200 names them whatever the request


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_103_leaves_before_the_page_is_made(tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = site_app(tmp_path, hints_http1=True)
    assert isinstance(app, Router)
    s = session(protocol, app, enable_push=False)
    static = app.responder.static
    written: list[int] = []
    answer = static.answer

    def watched(method: bytes, lookup: object) -> object:
        written.append(len(s.server.output))  # what is on its way to the client as the page is made
        return answer(method, lookup)  # type: ignore[arg-type]

    monkeypatch.setattr(static, "answer", watched)
    page = s.get("/")
    assert page.status == 200 and len(page.informational) == 1
    assert written and written[0] > 0  # the 103, flushed before the page


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_conditional_request_answered_304_without_pushes_or_hints(tmp_path: Path, protocol: str) -> None:
    app = site_app(tmp_path)
    etag = session(protocol, app, enable_push=False).get("/").header(b"etag")
    assert etag
    for enable_push in (True, False):
        s = session(protocol, app, enable_push=enable_push)
        reply = s.get("/", [(b"if-none-match", etag)])
        assert reply.status == 304 and reply.body == b""
        assert reply.informational == [] and reply.all(b"link") == [] and s.pushes_of(reply.stream_id) == {}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("enable_push", [True, False])
def test_conditional_request_that_misses_is_announced_like_a_plain_one(tmp_path: Path, protocol: str,
                                                                       enable_push: bool) -> None:
    s = session(protocol, site_app(tmp_path), enable_push=enable_push)
    reply = s.get("/", [(b"if-none-match", b'"stale"')])
    assert reply.status == 200 and b"<p>hello</p>" in reply.body
    if enable_push and capabilities(protocol).push:
        assert sorted(s.pushes_of(reply.stream_id)) == sorted(p.encode() for p in PAGE_RESOURCES)
    else:
        # Decided after the 200 was known, yet a 103 still goes ahead of it.
        assert len(reply.informational) == hinted(protocol) and reply.all(b"link") == LINKS


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_head_hints_but_never_pushes(tmp_path: Path, protocol: str) -> None:
    s = session(protocol, site_app(tmp_path))
    sid = s.request("/", "HEAD")
    reply = s.replies[sid]
    assert reply.done and reply.status == 200 and reply.body == b""
    assert s.pushes_of(sid) == {} and reply.all(b"link") == LINKS


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_assets_and_missing_pages_announce_nothing(tmp_path: Path, protocol: str) -> None:
    s = session(protocol, site_app(tmp_path), enable_push=False)
    css = s.get("/css/site.css")
    assert css.status == 200 and bytes(css.body) == (tmp_path / "css/site.css").read_bytes()
    missing = s.get("/nope.html")
    assert missing.status == 404
    for reply in (css, missing):
        assert reply.informational == [] and reply.all(b"link") == []
        assert reply.header(b"server") == b"pushserve" and reply.header(b"date")  # the stream's defaults
