"""The site's responder carrying out push, 103 Early Hints and 304 decisions on real protocol
cores, through an in-memory exchange (tests/support/memory.py): no sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.app import build
from pushserve.config import Config, PushMode
from pushserve.exchange import App
from tests.support.memory import H1Session, H2Session, write_site

PAGE_RESOURCES = ["/css/site.css", "/fonts/x.woff2", "/js/app.js", "/js/dep.js"]
LINKS = [b"</css/site.css>; rel=preload; as=style", b"</fonts/x.woff2>; rel=preload; as=font; crossorigin",
         b"</js/app.js>; rel=modulepreload", b"</js/dep.js>; rel=modulepreload"]


def site_app(tmp_path: Path, push: PushMode = "auto", *, hints_http1: bool = False) -> App:
    return build(Config(site=write_site(tmp_path), push=push, access_log=False, hints_http1=hints_http1))


def test_push_when_the_client_allows_it(tmp_path: Path) -> None:
    s = H2Session(site_app(tmp_path))
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


def test_nothing_pushed_twice_on_one_connection(tmp_path: Path) -> None:
    s = H2Session(site_app(tmp_path))
    first = s.request("/")
    assert len(s.pushes_of(first)) == 4
    second = s.request("/")
    assert s.replies[second].status == 200
    assert s.pushes_of(second) == {} and s.replies[second].all(b"link") == []


def test_push_cookie_stops_a_returning_client_being_sent_it_again(tmp_path: Path) -> None:
    app = site_app(tmp_path)
    first = H2Session(app).get("/")
    cookie = first.header(b"set-cookie")
    assert cookie is not None
    again = H2Session(app)  # a new connection: only the cookie says what the browser has
    sid = again.request("/", headers=[(b"cookie", cookie.split(b";")[0])])
    assert again.replies[sid].status == 200 and again.pushes_of(sid) == {}
    assert again.replies[sid].all(b"link") == [] and again.replies[sid].informational == []


def test_hints_when_the_client_refuses_push(tmp_path: Path) -> None:
    s = H2Session(site_app(tmp_path), enable_push=False)
    page = s.get("/")
    assert page.status == 200 and s.pushes_of(page.stream_id) == {}
    (hint,) = page.informational
    assert hint[0] == (b":status", b"103")
    assert [v for k, v in hint if k == b"link"] == LINKS
    assert page.all(b"link") == LINKS  # repeated on the final response


def test_mode_hints_and_mode_off(tmp_path: Path) -> None:
    hinted = H2Session(site_app(tmp_path, "hints")).get("/")
    assert hinted.status == 200 and len(hinted.informational) == 1 and hinted.all(b"link") == LINKS
    s = H2Session(site_app(tmp_path, "off"))
    off = s.get("/")
    assert off.status == 200 and off.informational == [] and off.all(b"link") == []
    assert s.pushes_of(off.stream_id) == {} and off.header(b"set-cookie") is None


def test_pushes_beyond_the_clients_stream_limit_become_link_headers(tmp_path: Path) -> None:
    s = H2Session(site_app(tmp_path), max_pushes=2)
    page = s.get("/")
    assert sorted(s.pushes_of(page.stream_id)) == [b"/css/site.css", b"/fonts/x.woff2"]
    assert page.informational == []  # a pushing connection gets no 103
    assert page.all(b"link") == LINKS[2:]


def test_no_103_on_http1_by_default_only_link_headers(tmp_path: Path) -> None:
    s = H1Session(site_app(tmp_path))
    s.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
    (page,) = s.replies()
    assert page.informational == []
    assert page.status == 200 and page.all(b"link") == LINKS


def test_hints_on_http1_when_asked_for(tmp_path: Path) -> None:
    s = H1Session(site_app(tmp_path, hints_http1=True))
    s.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
    (page,) = s.replies()
    (hint,) = page.informational
    assert hint[0] == (b":status", b"103") and [v for k, v in hint if k == b"link"] == LINKS
    assert page.status == 200 and page.all(b"link") == LINKS and b"<p>hello</p>" in page.body


@pytest.mark.parametrize(("fetch_headers", "hinted"), [
    ([(b"sec-fetch-dest", b"document"), (b"sec-fetch-mode", b"navigate")], True),  # a top-level navigation
    ([], True),  # no Sec-Fetch-* at all: nghttp, curl
    ([(b"sec-fetch-dest", b"empty"), (b"sec-fetch-mode", b"cors")], False),  # fetch()
    ([(b"sec-fetch-dest", b"iframe"), (b"sec-fetch-mode", b"navigate")], False),  # Chromium ignores 103 in iframes
])
def test_103_only_where_a_browser_acts_on_it(tmp_path: Path, fetch_headers: list[tuple[bytes, bytes]],
                                             hinted: bool) -> None:
    page = H2Session(site_app(tmp_path), enable_push=False).get("/", headers=fetch_headers)
    assert bool(page.informational) is hinted
    assert page.status == 200 and page.all(b"link") == LINKS  # the 200 names them whatever the request


def test_the_103_leaves_before_the_page_is_made(tmp_path: Path) -> None:
    s = H1Session(site_app(tmp_path, hints_http1=True))
    s.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
    hint, page = s.server.writes  # two writes: the client starts on the hints while we render
    assert hint.startswith(b"HTTP/1.1 103 ") and hint.count(b"HTTP/1.1") == 1
    assert page.startswith(b"HTTP/1.1 200 ")


def test_conditional_request_answered_304_without_pushes_or_hints(tmp_path: Path) -> None:
    app = site_app(tmp_path)
    etag = H2Session(app, enable_push=False).get("/").header(b"etag")
    assert etag
    for enable_push in (True, False):
        s = H2Session(app, enable_push=enable_push)
        reply = s.get("/", [(b"if-none-match", etag)])
        assert reply.status == 304 and reply.body == b""
        assert reply.informational == [] and reply.all(b"link") == [] and s.pushes_of(reply.stream_id) == {}


@pytest.mark.parametrize("enable_push", [True, False])
def test_conditional_request_that_misses_is_announced_like_a_plain_one(tmp_path: Path, enable_push: bool) -> None:
    s = H2Session(site_app(tmp_path), enable_push=enable_push)
    reply = s.get("/", [(b"if-none-match", b'"stale"')])
    assert reply.status == 200 and b"<p>hello</p>" in reply.body
    if enable_push:
        assert sorted(s.pushes_of(reply.stream_id)) == sorted(p.encode() for p in PAGE_RESOURCES)
    else:
        # Decided after the 200 was known, yet the 103 still goes ahead of it.
        assert len(reply.informational) == 1 and reply.all(b"link") == LINKS


def test_head_hints_but_never_pushes(tmp_path: Path) -> None:
    s = H2Session(site_app(tmp_path))
    sid = s.request("/", "HEAD")
    reply = s.replies[sid]
    assert reply.done and reply.status == 200 and reply.body == b""
    assert s.pushes_of(sid) == {} and reply.all(b"link") == LINKS


def test_assets_and_missing_pages_announce_nothing(tmp_path: Path) -> None:
    s = H2Session(site_app(tmp_path), enable_push=False)
    css = s.get("/css/site.css")
    assert css.status == 200 and bytes(css.body) == (tmp_path / "css/site.css").read_bytes()
    missing = s.get("/nope.html")
    assert missing.status == 404
    for reply in (css, missing):
        assert reply.informational == [] and reply.all(b"link") == []
        assert reply.header(b"server") == b"pushserve" and reply.header(b"date")  # the exchange's defaults
