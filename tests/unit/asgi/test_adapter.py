"""The ASGI adapter (asgi/mount.py, asgi/request.py) driven through an in-memory exchange around
real protocol cores: scope, receive/send, streaming both ways, disconnects, the push and
early-hint extensions, and the answers pushserve gives for apps that fail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pushserve.app import build
from pushserve.asgi.mount import AsgiMount
from pushserve.asgi.request import RECV_HIGH_WATER, ClientDisconnected
from pushserve.asgi.types import ASGIApp, Message, Receive, Scope, Send
from pushserve.config import Config, Limits
from pushserve.protocol.events import Headers
from pushserve.site.router import Router
from tests.support.h2client import Reply
from tests.support.memory import H1Session, H2Session, write_site

CSS_LINK = b"</css/site.css>; rel=preload; as=style"
FONT_LINK = b"</fonts/x.woff2>; rel=preload; as=font; crossorigin"


def mounted(tmp_path: Path, app: ASGIApp, *, max_body: int = 1 << 20) -> Router:
    """The site with ``app`` mounted at /app."""
    config = Config(site=write_site(tmp_path), access_log=False, limits=Limits(max_body_size=max_body))
    site = build(config)
    assert isinstance(site, Router)
    return Router(site.responder, [AsgiMount("/app", app, config, site.responder, "test-app")])


async def until(session: H2Session | H1Session, done: Callable[[], bool], turns: int = 50) -> None:
    """Let the app's tasks run, a loop turn at a time, until ``done()`` (bounded, no clock)."""
    for _ in range(turns):
        if isinstance(session, H2Session):
            session.pump()
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"not done after {turns} loop turns")


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


async def fetch(s: H2Session, path: str, method: str = "GET", headers: Headers | None = None) -> Reply:
    """One request, its reply once the stream has ended."""
    sid = s.request(path, method, headers)
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


def test_scope_on_h2(tmp_path: Path) -> None:
    scopes: list[Scope] = []

    async def test() -> None:
        reply = await fetch(H2Session(mounted(tmp_path, recording(scopes))), "/app/a%20b/c?x=1&y",
                            headers=[(b"x-test", b"1")])
        assert reply.status == 200 and reply.body == b"ok" and reply.header(b"content-length") == b"2"
        assert reply.header(b"server") == b"pushserve"

    run(test)
    (scope,) = scopes
    assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["http_version"], scope["method"], scope["scheme"]) == ("2", "GET", "https")
    assert scope["path"] == "/app/a b/c" and scope["raw_path"] == b"/app/a%20b/c"
    assert scope["query_string"] == b"x=1&y" and scope["root_path"] == "/app"
    assert scope["headers"] == [(b"host", b"example.test"), (b"x-test", b"1")]  # :authority as host
    assert scope["client"] == ("127.0.0.1", 50000) and scope["server"] == ("127.0.0.1", 8443)
    assert scope["state"] == {}
    extensions = scope["extensions"]
    assert extensions["tls"]["tls_version"] == 0x0304 and extensions["tls"]["cipher_suite"] == 0x1301
    assert extensions["tls"]["client_cert_chain"] == []
    assert extensions["http.response.push"] == {} and extensions["http.response.early_hint"] == {}


def test_scope_without_push(tmp_path: Path) -> None:
    scopes: list[Scope] = []
    app = recording(scopes)

    async def test() -> None:
        assert (await fetch(H2Session(mounted(tmp_path, app), enable_push=False), "/app")).status == 200
        h1 = H1Session(mounted(tmp_path, app))
        h1.send(b"GET /app/?q HTTP/1.1\r\nHost: example.test\r\n\r\n")
        await until(h1, lambda: bool(h1.server.output))
        (reply,) = h1.replies()
        assert reply.status == 200 and reply.body == b"ok"

    run(test)
    h2_scope, h1_scope = scopes
    for scope in scopes:  # the client takes no pushes (HTTP/1.1 never does); hints it may
        assert "http.response.push" not in scope["extensions"]
        assert "http.response.early_hint" in scope["extensions"]
    assert h2_scope["path"] == "/app" and h2_scope["http_version"] == "2"
    assert h1_scope["path"] == "/app/" and h1_scope["query_string"] == b"q" and h1_scope["http_version"] == "1.1"
    assert h1_scope["headers"] == [(b"host", b"example.test")]


# -- receive and send ----------------------------------------------------------------------------------


def test_request_body_streamed_with_more_body(tmp_path: Path) -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        await answer(send, b"".join(m["body"] for m in received))

    async def test() -> None:
        s = H2Session(mounted(tmp_path, app))
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


def test_upload_larger_than_the_window_goes_at_the_apps_pace(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        total = 0
        while True:
            message = await receive()
            total += len(message["body"])
            if not message["more_body"]:
                break
        await answer(send, b"%d" % total)

    async def test() -> None:
        s = H2Session(mounted(tmp_path, app, max_body=1 << 24))
        window = s.client.outbound_flow_control_window
        sid = s.request("/app/up", "POST", end=False)
        chunk, sent = b"x" * 16000, 0
        # Half again the server's window: it reopens only as the app reads.
        while sent < window * 3 // 2:
            await until(s, lambda: s.client.local_flow_control_window(sid) >= len(chunk))
            s.send_body(sid, chunk)
            sent += len(chunk)
        s.send_body(sid, b"", end=True)
        await until(s, lambda: s.replies[sid].done)
        assert s.replies[sid].status == 200 and s.replies[sid].body == b"%d" % sent

    run(test)


def test_response_streamed_in_pieces(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-app", b"yes")]})
        for piece in (b"a", b"", b"b"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"c"})

    async def test() -> None:
        reply = await fetch(H2Session(mounted(tmp_path, app)), "/app/stream")
        assert reply.status == 201 and reply.body == b"abc" and reply.header(b"x-app") == b"yes"
        assert reply.header(b"content-length") is None  # the length was never known
        h1 = H1Session(mounted(tmp_path, app))
        h1.send(b"GET /app/stream HTTP/1.1\r\nHost: example.test\r\n\r\n")
        await until(h1, lambda: h1.server.output.endswith(b"0\r\n\r\n"))
        (chunked,) = h1.replies()
        assert chunked.status == 201 and chunked.body == b"abc"
        assert chunked.header(b"transfer-encoding") == b"chunked"

    run(test)


def test_http1_upload_the_app_does_not_read_pauses_reading(tmp_path: Path) -> None:
    # HTTP/1.1 has no window to hold an uploader back: above RECV_HIGH_WATER unread, the exchange
    # is asked to stop reading the socket, and to start again once the app has read it.
    size = RECV_HIGH_WATER + 1000
    go = asyncio.Event()
    got: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await go.wait()
        got.append(len((await receive())["body"]))
        await answer(send)

    async def test() -> None:
        s = H1Session(mounted(tmp_path, app, max_body=2 * size))
        s.send(b"POST /app/up HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n\r\n" % size)
        s.send(b"x" * size)
        await until(s, lambda: bool(s.server.pause_log))
        assert s.server.pause_log == [("pause", "asgi:1")] and got == []
        go.set()
        await until(s, lambda: s.server.output.endswith(b"ok"))
        assert s.server.pause_log == [("pause", "asgi:1"), ("resume", "asgi:1")]
        assert got == [size] and s.replies()[0].status == 200

    run(test)


def test_stream_reset_is_a_disconnect(tmp_path: Path) -> None:
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
        s = H2Session(mounted(tmp_path, app))
        sid = s.request("/app/upload", "POST", end=False)
        s.send_body(sid, b"part")
        await until(s, lambda: len(received) == 1)
        s.reset(sid)
        await until(s, lambda: bool(raised))
        assert s.server.handlers == {}

    run(test)
    assert received == [{"type": "http.request", "body": b"part", "more_body": True}, {"type": "http.disconnect"}]
    assert isinstance(raised[0], ClientDisconnected)


def test_connection_lost_is_a_disconnect(tmp_path: Path) -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())

    async def test() -> None:
        s = H2Session(mounted(tmp_path, app))
        s.request("/app/upload", "POST", end=False)
        await until(s, lambda: bool(s.server.handlers))
        s.server.lose()
        await until(s, lambda: bool(received))

    run(test)
    assert received == [{"type": "http.disconnect"}]


# -- the push and early-hint extensions ----------------------------------------------------------------


def test_push_extension_pushes_site_files_and_the_apps_own_paths(tmp_path: Path) -> None:
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
        s = H2Session(mounted(tmp_path, app))
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


def test_push_message_ignored_when_the_client_takes_no_pushes(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.push", "path": "/css/site.css", "headers": []})
        await answer(send)

    async def test() -> None:
        s = H2Session(mounted(tmp_path, app), enable_push=False)
        reply = await fetch(s, "/app/page")
        assert reply.status == 200 and s.pushes_of(reply.stream_id) == {} and len(s.replies) == 1

    run(test)


def test_early_hint_extension_sends_a_103(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": [CSS_LINK]})
        await answer(send)

    async def test() -> None:
        over_h2 = await fetch(H2Session(mounted(tmp_path, app)), "/app/page")
        h1 = H1Session(mounted(tmp_path, app))
        h1.send(b"GET /app/page HTTP/1.1\r\nHost: example.test\r\n\r\n")
        await until(h1, lambda: h1.server.output.endswith(b"ok"))
        (over_h1,) = h1.replies()
        for reply in (over_h2, over_h1):
            assert reply.informational == [[(b":status", b"103"), (b"link", CSS_LINK)]] and reply.status == 200

    run(test)


def test_html_page_of_an_app_teaches_its_route_what_to_announce(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b'<link rel=stylesheet href="/css/site.css">'})

    async def test() -> None:
        router = mounted(tmp_path, app)
        s = H2Session(router, enable_push=False)
        assert (await fetch(s, "/app/page")).informational == []  # nothing known yet
        second = await fetch(s, "/app/page?again")
        # Learned from the HTML: the stylesheet, and the font the stylesheet loads.
        links = [CSS_LINK, FONT_LINK]
        assert second.informational == [[(b":status", b"103"), *[(b"link", v) for v in links]]]
        assert second.all(b"link") == links
        pushing = H2Session(router)
        third = pushing.request("/app/page")
        await until(pushing, lambda: len(pushing.replies) == 3 and all(r.done for r in pushing.replies.values()))
        assert sorted(pushing.pushes_of(third)) == [b"/css/site.css", b"/fonts/x.woff2"]
        assert pushing.replies[third].informational == [] and pushing.replies[third].all(b"link") == []

    run(test)


# -- apps that fail, bodies too large ------------------------------------------------------------------


def test_app_raising_before_it_starts_gets_a_500(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("broken app")

    async def test() -> None:
        reply = await fetch(H2Session(mounted(tmp_path, app)), "/app/x")
        assert reply.status == 500 and reply.body == b"internal server error\n" and reply.reset is None

    run(test)


def test_app_raising_after_part_of_the_body_resets_the_stream(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("broken halfway")

    async def test() -> None:
        reply = await fetch(H2Session(mounted(tmp_path, app)), "/app/x")
        assert reply.status == 200 and reply.body == b"partial"
        assert reply.reset == 0x8  # CANCEL: the client knows the body is not whole

    run(test)


def test_body_over_the_limit_gets_a_413(tmp_path: Path) -> None:
    calls: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        calls.append(await receive())
        calls.append(await receive())

    async def test() -> None:
        s = H2Session(mounted(tmp_path, app, max_body=10))
        declared = s.request("/app/declared", "POST", [(b"content-length", b"11")], body=b"x" * 11)
        await until(s, lambda: s.replies[declared].done)
        assert s.replies[declared].status == 413 and s.replies[declared].body == b"request body too large\n"
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


def test_body_over_the_limit_on_http1_leaves_the_connection_usable(tmp_path: Path) -> None:
    paths: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        paths.append(scope["path"])
        await answer(send, b"got " + (await receive())["body"])

    async def test() -> None:
        s = H1Session(mounted(tmp_path, app, max_body=10))
        s.send(b"POST /app/big HTTP/1.1\r\nHost: example.test\r\nContent-Length: 11\r\n\r\n" + b"x" * 11
               + b"POST /app/small HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\n\r\nabc")
        await until(s, lambda: s.server.output.endswith(b"got abc"))
        big, small = s.replies()
        assert big.status == 413 and big.body == b"request body too large\n"
        assert small.status == 200 and small.body == b"got abc"

    run(test)
    assert paths == ["/app/small"]
