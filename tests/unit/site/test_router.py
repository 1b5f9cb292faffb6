"""The router: each request to the mount with the longest matching prefix, else to the site;
request bodies sent to the site read and dropped; pushed paths of a mount answered by it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pushserve.app import build
from pushserve.config import Config
from pushserve.exchange import Stream
from pushserve.site.responder import Responder
from pushserve.site.router import Router
from tests.support.memory import PROTOCOLS, H1Session, H2Session, session, write_site


class Named:
    """A Mount answering every request with its prefix and the target (pushing ``push`` first)."""

    def __init__(self, prefix: bytes, responder: Responder | None = None, push: tuple[str, ...] = ()) -> None:
        self.prefix = prefix
        self.responder = responder
        self.push = push
        self.calls: list[str] = []

    def handle(self, stream: Stream) -> None:
        if self.responder is not None and self.push:
            self.responder.push_paths(stream, [(path, 5) for path in self.push])
        body = self.prefix + b" " + stream.request.target
        stream.respond(200, [(b"content-length", b"%d" % len(body))], body)
        stream.flush()

    async def startup(self) -> None:
        self.calls.append("startup")

    def drain(self) -> None:
        self.calls.append("drain")

    async def shutdown(self) -> None:
        self.calls.append("shutdown")


def router(tmp_path: Path, *mounts: Named) -> Router:
    site = build(Config(site=write_site(tmp_path), access_log=False))
    assert isinstance(site, Router)  # no mounts configured: the router over the site alone
    for mount in mounts:
        mount.responder = site.responder
    return Router(site.responder, mounts)


@pytest.mark.parametrize(("target", "answered_by"), [
    ("/api", b"/api"), ("/api/", b"/api"), ("/api/users/7", b"/api"), ("/api?x=1", b"/api"),
    ("/api2", b"/api2"), ("/api2/x", b"/api2"), ("/api2?q", b"/api2"),
    ("/api/v2", b"/api/v2"), ("/api/v2/items", b"/api/v2"), ("/api/v2?all", b"/api/v2"),
    ("/api/v20", b"/api"),  # /api/v2 is not a prefix of /api/v20; /api is
    ("/apix", 404), ("/ap", 404), ("/", 200), ("/index.html?api", 200),
])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_longest_matching_prefix_wins_else_the_site(tmp_path: Path, target: str, answered_by: bytes | int,
                                                   protocol: str) -> None:
    # Given out of order: the router sorts them.
    app = router(tmp_path, Named(b"/api2"), Named(b"/api"), Named(b"/api/v2"))
    reply = session(protocol, app, enable_push=False).get(target)
    if isinstance(answered_by, bytes):
        assert reply.status == 200 and bytes(reply.body) == answered_by + b" " + target.encode()
    elif answered_by == 404:  # the site's 404
        assert reply.status == 404 and bytes(reply.body) == b"404 Not Found\n"
    else:  # the site's page
        assert reply.status == 200 and b"<p>hello</p>" in reply.body


def test_body_sent_to_the_site_is_dropped_and_its_window_credited_h2(tmp_path: Path) -> None:
    app = router(tmp_path, Named(b"/api"))
    (tmp_path / "big.bin").write_bytes(b"b" * 200_000)
    # A client that does not read: the file's response cannot finish.  The site reads no body:
    # the stream is marked to be reset (NO_ERROR) after its response, and meanwhile the core
    # drops what arrives and hands the window back, so the connection stays usable.
    s = H2Session(app, reading=False)
    window = s.client.outbound_flow_control_window
    chunk = b"x" * 16000
    sid = s.request("/big.bin", body=chunk, end=False)
    assert s.replies[sid].status == 200 and not s.replies[sid].done
    assert sid not in s.server.handlers
    # Half again the server's window: h2 lets the client send it only if the body is
    # acknowledged as it arrives.
    # The client may send what the stream's window allows, and no more: the window is not
    # reopened for a body nobody reads; the connection's window is, so other streams go on.
    sent = len(chunk)
    while (room := s.client.local_flow_control_window(sid)) > 0:
        s.send_body(sid, chunk[:room])
        sent += min(room, len(chunk))
    assert sent < window * 3 // 2
    assert s.client.outbound_flow_control_window > window // 2
    other = s.get("/index.html")
    assert other.status == 200
    assert len(s.replies[sid].body) <= 65535  # what the client's own window let through


def test_body_sent_to_the_site_is_read_and_dropped_h1(tmp_path: Path) -> None:
    s = H1Session(router(tmp_path, Named(b"/api")))
    s.send(b"POST /index.html HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\n0123456789"
           b"GET /api/x HTTP/1.1\r\nHost: example.test\r\n\r\n")
    post, get = s.responses()
    assert post.status == 405 and post.header(b"allow") == b"GET, HEAD, OPTIONS"
    assert get.status == 200 and get.body == b"/api /api/x"
    assert s.server.handlers == {}


def test_pushed_path_of_a_mount_is_answered_by_the_mount(tmp_path: Path) -> None:
    app = router(tmp_path, Named(b"/api"), Named(b"/app", push=("/api/data?v=1", "/css/site.css", "/app/x")))
    s = H2Session(app)
    page = s.get("/app/page")
    assert page.status == 200 and page.body == b"/app /app/page"
    pushes = s.pushes_of(page.stream_id)
    assert sorted(pushes) == [b"/api/data?v=1", b"/app/x", b"/css/site.css"]
    assert pushes[b"/api/data?v=1"].body == b"/api /api/data?v=1"
    assert pushes[b"/app/x"].body == b"/app /app/x"
    assert bytes(pushes[b"/css/site.css"].body) == (tmp_path / "css/site.css").read_bytes()
    assert all(p.status == 200 and p.done for p in pushes.values())


def test_startup_drain_shutdown_reach_every_mount(tmp_path: Path) -> None:
    mounts = (Named(b"/a"), Named(b"/b"))
    app = router(tmp_path, *mounts)

    async def life() -> None:
        await app.startup()
        app.drain()
        await app.shutdown()

    asyncio.run(life())
    assert [m.calls for m in mounts] == [["startup", "drain", "shutdown"]] * 2
