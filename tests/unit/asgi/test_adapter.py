"""The ASGI adapter (asgi/mount.py, asgi/request.py) driven through in-memory connections around
the real protocol cores: scope, receive/send, streaming both ways, disconnects, the push and
early-hint extensions, and the answers pushserve gives for apps that fail.  Each test body runs
on every protocol (or on those with the capability it is about)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pushserve.app import build
from pushserve.asgi.mount import AsgiMount
from pushserve.asgi.request import RECV_HIGH_WATER, ClientDisconnected
from pushserve.asgi.types import ASGIApp, Message, Receive, Scope, Send
from pushserve.config import Config, Limits
from pushserve.protocol.events import Headers
from pushserve.site.router import Router
from tests.support.h2client import Reply
from tests.support.memory import (
    MULTIPLEXED,
    ONE_AT_A_TIME,
    PROTOCOLS,
    PUSHING,
    H1Session,
    Session,
    capabilities,
    session,
    write_site,
)

CSS_LINK = b"</css/site.css>; rel=preload; as=style"
FONT_LINK = b"</fonts/x.woff2>; rel=preload; as=font; crossorigin"


def mounted(tmp_path: Path, app: ASGIApp, *, max_body: int = 1 << 20) -> Router:
    """The site with ``app`` mounted at /app."""
    config = Config(site=write_site(tmp_path), access_log=False, limits=Limits(max_body_size=max_body))
    site = build(config)
    assert isinstance(site, Router)
    return Router(site.responder, [AsgiMount("/app", app, config, site.responder, "test-app")])


async def until(s: Session, done: Callable[[], bool], turns: int = 50) -> None:
    """Let the app's tasks run, a loop turn at a time, until ``done()`` (bounded, no clock)."""
    for _ in range(turns):
        s.pump()
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"not done after {turns} loop turns")


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


async def fetch(s: Session, path: str, method: str = "GET", headers: Headers | None = None, *,
                body: bytes | None = None) -> Reply:
    """One request, its reply once the stream has ended."""
    sid = s.request(path, method, headers, body=body)
    await until(s, lambda: s.replies[sid].done)
    return s.replies[sid]


def recording(scopes: list[Scope]) -> ASGIApp:
    """An app that keeps each scope it is called with and answers "ok"."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await answer(send)

    return app


async def answer(send: Send, body: bytes = b"ok", status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


# -- scope -------------------------------------------------------------------------------------------


HTTP_VERSION = {"h1": "1.1", "h2": "2", "h3": "3"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_scope(tmp_path: Path, protocol: str) -> None:
    scopes: list[Scope] = []

    async def test() -> None:
        reply = await fetch(session(protocol, mounted(tmp_path, recording(scopes))), "/app/a%20b/c?x=1&y",
                            headers=[(b"x-test", b"1")])
        assert reply.status == 200 and reply.body == b"ok" and reply.header(b"content-length") == b"2"
        assert reply.header(b"server") == b"pushserve"

    run(test)
    (scope,) = scopes
    assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["http_version"], scope["method"], scope["scheme"]) == (HTTP_VERSION[protocol], "GET", "https")
    assert scope["path"] == "/app/a b/c" and scope["raw_path"] == b"/app/a%20b/c"
    assert scope["query_string"] == b"x=1&y" and scope["root_path"] == "/app"
    assert scope["headers"] == [(b"host", b"example.test"), (b"x-test", b"1")]  # HTTP/2's :authority as host
    assert scope["client"] == ("127.0.0.1", 50000) and scope["server"] == ("127.0.0.1", 8443)
    assert scope["state"] == {}
    extensions = scope["extensions"]
    assert extensions["tls"]["tls_version"] == 0x0304 and extensions["tls"]["cipher_suite"] == 0x1301
    assert extensions["tls"]["client_cert_chain"] == []
    assert ("http.response.push" in extensions) is capabilities(protocol).push
    assert extensions["http.response.early_hint"] == {}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_scope_without_push(tmp_path: Path, protocol: str) -> None:
    scopes: list[Scope] = []

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, recording(scopes)), enable_push=False)
        assert (await fetch(s, "/app/?q")).status == 200

    run(test)
    (scope,) = scopes  # the client takes no pushes; hints it may
    assert "http.response.push" not in scope["extensions"]
    assert "http.response.early_hint" in scope["extensions"]
    assert scope["path"] == "/app/" and scope["query_string"] == b"q"


def test_scope_of_http10_offers_no_early_hints(tmp_path: Path) -> None:
    scopes: list[Scope] = []

    async def test() -> None:
        h1 = H1Session(mounted(tmp_path, recording(scopes)))
        h1.send(b"GET /app HTTP/1.0\r\nHost: example.test\r\n\r\n")
        await until(h1, lambda: h1.replies[1].done)
        assert h1.replies[1].status == 200 and h1.replies[1].body == b"ok"

    run(test)
    (scope,) = scopes
    assert scope["http_version"] == "1.0" and "http.response.early_hint" not in scope["extensions"]


# -- receive and send ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_request_body_streamed_with_more_body(tmp_path: Path, protocol: str) -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        await answer(send, b"".join(m["body"] for m in received))

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app))
        sid = s.request("/app/upload", "POST", end=False)
        s.send_body(sid, b"one")
        await until(s, lambda: len(received) == 1)
        s.send_body(sid, b"two", end=True)
        await until(s, lambda: s.replies[sid].done)
        assert s.replies[sid].status == 200 and s.replies[sid].body == b"onetwo"
        assert s.server.handlers == {}

    run(test)
    assert received == [{"type": "http.request", "body": b"one", "more_body": True},
                        {"type": "http.request", "body": b"two", "more_body": False}]


@pytest.mark.parametrize("protocol", MULTIPLEXED)
def test_upload_larger_than_the_window_goes_at_the_apps_pace(tmp_path: Path, protocol: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        total = 0
        while True:
            message = await receive()
            total += len(message["body"])
            if not message["more_body"]:
                break
        await answer(send, b"%d" % total)

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app, max_body=1 << 24))
        sid = s.request("/app/up", "POST", end=False)
        window = s.window(sid)
        assert window is not None
        chunk, sent = b"x" * 16000, 0
        # Half again the stream's window: it reopens only as the app reads.
        while sent < window * 3 // 2:
            await until(s, lambda: (s.window(sid) or 0) >= len(chunk))
            s.send_body(sid, chunk)
            sent += len(chunk)
        s.send_body(sid, b"", end=True)
        await until(s, lambda: s.replies[sid].done)
        assert s.replies[sid].status == 200 and s.replies[sid].body == b"%d" % sent

    run(test)


@pytest.mark.parametrize("protocol", ONE_AT_A_TIME)
def test_upload_the_app_does_not_read_pauses_reading(tmp_path: Path, protocol: str) -> None:
    # No stream window holds an uploader back: above RECV_HIGH_WATER unread, the stream is asked
    # to stop reading the socket, and to start again once the app has read it.
    size = RECV_HIGH_WATER + 1000
    go = asyncio.Event()
    got: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await go.wait()
        got.append(len((await receive())["body"]))
        await answer(send)

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app, max_body=2 * size))
        sid = s.request("/app/up", "POST", [(b"content-length", b"%d" % size)], body=b"x" * size)
        await until(s, lambda: bool(s.server.reading_paused))
        assert s.server.reading_paused == {f"asgi:{sid}"} and not s.server.transport.reading and got == []
        go.set()
        await until(s, lambda: s.replies[sid].done)
        assert s.server.reading_paused == set() and s.server.transport.reading
        assert got == [size] and s.replies[sid].status == 200

    run(test)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_response_streamed_in_pieces(tmp_path: Path, protocol: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-app", b"yes")]})
        for piece in (b"a", b"", b"b"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"c"})

    async def test() -> None:
        reply = await fetch(session(protocol, mounted(tmp_path, app)), "/app/stream")
        assert reply.status == 201 and reply.body == b"abc" and reply.header(b"x-app") == b"yes"
        assert reply.header(b"content-length") is None  # the length was never known
        assert reply.reset is None

    run(test)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_reset_is_a_disconnect(tmp_path: Path, protocol: str) -> None:
    received: list[Message] = []
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())
        received.append(await receive())  # the client resets the stream meanwhile
        try:
            await answer(send)
        except OSError as e:
            raised.append(e)

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app))
        sid = s.request("/app/upload", "POST", end=False)
        s.send_body(sid, b"part")
        await until(s, lambda: len(received) == 1)
        s.reset(sid)
        await until(s, lambda: bool(raised))
        assert s.server.handlers == {}

    run(test)
    assert received == [{"type": "http.request", "body": b"part", "more_body": True}, {"type": "http.disconnect"}]
    assert isinstance(raised[0], ClientDisconnected)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connection_lost_is_a_disconnect(tmp_path: Path, protocol: str) -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app))
        s.request("/app/upload", "POST", end=False)
        await until(s, lambda: bool(s.server.handlers))
        s.server.lose()
        await until(s, lambda: bool(received))

    run(test)
    assert received == [{"type": "http.disconnect"}]


# -- the push and early-hint extensions ----------------------------------------------------------------


@pytest.mark.parametrize("protocol", PUSHING)
def test_push_extension_pushes_site_files_and_the_apps_own_paths(tmp_path: Path, protocol: str) -> None:
    pushed_scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/app/page":
            pushed_scopes.append(scope)
            await answer(send, b"data for " + scope["raw_path"])
            return
        await send({"type": "http.response.push", "path": "/css/site.css", "headers": []})
        await send({"type": "http.response.push", "path": "/app/data", "headers": []})
        await answer(send, b"page")

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app))
        sid = s.request("/app/page")
        await until(s, lambda: all(r.done for r in s.replies.values()) and len(s.replies) == 3)
        assert s.replies[sid].status == 200 and s.replies[sid].body == b"page"
        pushes = s.pushes_of(sid)
        assert sorted(pushes) == [b"/app/data", b"/css/site.css"]
        assert bytes(pushes[b"/css/site.css"].body) == (tmp_path / "css/site.css").read_bytes()
        assert pushes[b"/app/data"].status == 200 and pushes[b"/app/data"].body == b"data for /app/data"

    run(test)
    (scope,) = pushed_scopes  # a pushed request may neither push nor hint
    assert "http.response.push" not in scope["extensions"]
    assert "http.response.early_hint" not in scope["extensions"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_push_message_ignored_when_the_client_takes_no_pushes(tmp_path: Path, protocol: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.push", "path": "/css/site.css", "headers": []})
        await answer(send)

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app), enable_push=False)
        reply = await fetch(s, "/app/page")
        assert reply.status == 200 and s.pushes_of(reply.stream_id) == {} and len(s.replies) == 1

    run(test)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_early_hint_extension_sends_a_103(tmp_path: Path, protocol: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": [CSS_LINK]})
        await answer(send)

    async def test() -> None:
        reply = await fetch(session(protocol, mounted(tmp_path, app)), "/app/page")
        # The app asked for it: sent wherever a 1xx may go, whatever the site's own policy.
        assert reply.informational == [[(b":status", b"103"), (b"link", CSS_LINK)]] and reply.status == 200

    run(test)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_html_page_of_an_app_teaches_its_route_what_to_announce(tmp_path: Path, protocol: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b'<link rel=stylesheet href="/css/site.css">'})

    caps = capabilities(protocol)

    async def test() -> None:
        router = mounted(tmp_path, app)
        s = session(protocol, router, enable_push=False)
        assert (await fetch(s, "/app/page")).informational == []  # nothing known yet
        second = await fetch(s, "/app/page?again")
        # Learned from the HTML: the stylesheet, and the font the stylesheet loads.
        links = [CSS_LINK, FONT_LINK]
        hints = [[(b":status", b"103"), *[(b"link", v) for v in links]]]
        assert second.informational == (hints if caps.inform and not caps.inform_opt_in else [])
        assert second.all(b"link") == links
        if not caps.push:
            return
        pushing = session(protocol, router)
        third = pushing.request("/app/page")
        await until(pushing, lambda: len(pushing.replies) == 3 and all(r.done for r in pushing.replies.values()))
        assert sorted(pushing.pushes_of(third)) == [b"/css/site.css", b"/fonts/x.woff2"]
        assert pushing.replies[third].informational == [] and pushing.replies[third].all(b"link") == []

    run(test)


# -- apps that fail, bodies too large ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_app_raising_before_it_starts_gets_a_500(tmp_path: Path, protocol: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("broken app")

    async def test() -> None:
        reply = await fetch(session(protocol, mounted(tmp_path, app)), "/app/x")
        assert reply.status == 500 and reply.body == b"internal server error\n" and reply.reset is None

    run(test)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_app_raising_after_part_of_the_body_breaks_the_response_off(tmp_path: Path, protocol: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("broken halfway")

    async def test() -> None:
        reply = await fetch(session(protocol, mounted(tmp_path, app)), "/app/x")
        # What had left before the reset, if anything (HTTP/2 writes at the end of the loop
        # turn, by when the reset has dropped it; a QUIC reset drops even the head QUIC had not
        # sent yet); never passing for the whole body.
        assert (not reply.headers or reply.status == 200) and b"partial".startswith(reply.body)
        assert reply.reset is not None

    run(test)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_body_over_the_limit_gets_a_413(tmp_path: Path, protocol: str) -> None:
    calls: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        calls.append(await receive())
        calls.append(await receive())

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app, max_body=10))
        declared = await fetch(s, "/app/declared", "POST", [(b"content-length", b"11")], body=b"x" * 11)
        assert declared.status == 413 and declared.body == b"request body too large\n"
        assert calls == []  # refused on its content-length: the app never ran
        streamed = s.request("/app/streamed", "POST", end=False)
        s.send_body(streamed, b"x" * 6)
        await until(s, lambda: len(calls) == 2)
        s.send_body(streamed, b"x" * 6, end=True)
        await until(s, lambda: s.replies[streamed].done and len(calls) == 3)
        assert s.replies[streamed].status == 413

    run(test)
    assert calls == ["/app/streamed", {"type": "http.request", "body": b"x" * 6, "more_body": True},
                     {"type": "http.disconnect"}]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_body_over_the_limit_leaves_the_connection_usable(tmp_path: Path, protocol: str) -> None:
    paths: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        paths.append(scope["path"])
        await answer(send, b"got " + (await receive())["body"])

    async def test() -> None:
        s = session(protocol, mounted(tmp_path, app, max_body=10))
        big = s.request("/app/big", "POST", [(b"content-length", b"11")], body=b"x" * 11)
        small = s.request("/app/small", "POST", [(b"content-length", b"3")], body=b"abc")
        await until(s, lambda: s.replies[small].done)
        assert s.replies[big].status == 413 and s.replies[big].body == b"request body too large\n"
        assert s.replies[small].status == 200 and s.replies[small].body == b"got abc"

    run(test)
    assert paths == ["/app/small"]
