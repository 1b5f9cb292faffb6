"""Mounted ASGI apps (Starlette, FastAPI, Quart, plain ASGI) in a real pushserve process, beside
the example site, over HTTP/2 and HTTP/1.1."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.h2client import H2Client, Reply
from tests.support.serverproc import SITE_EXAMPLE, Certs, ServerProcess, run_cli, start

MOUNTS = ("--mount", "/api=tests.support.apps.star:app", "--mount", "/fast=tests.support.apps.fast:app",
          "--mount", "/q=tests.support.apps.quart_app:app", "--mount", "/raw=tests.support.apps.raw:app")
PROTOCOLS = pytest.mark.parametrize("http2", [True, False], ids=["h2", "h1"])


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("markers")


@pytest.fixture(scope="module")
def srv(certs: Certs, markers: Path) -> Iterator[ServerProcess]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PUSHSERVE_TEST_MARKERS", str(markers))
        s = start(certs, *MOUNTS, "--expose-worker", "--max-body-size", str(8 * 1024 * 1024))
    yield s
    s.stop()


def client(srv: ServerProcess, http2: bool) -> httpx.Client:
    return httpx.Client(http2=http2, http1=not http2, verify=srv.certs.client_context(), timeout=30,
                        base_url=f"https://localhost:{srv.port}")


def h2(srv: ServerProcess, *, push: bool = False, auto_window: bool = True) -> H2Client:
    c = H2Client("localhost", srv.port, srv.certs.client_context(), enable_push=push,
                 auto_window=auto_window)
    # Small frames back to back (HEADERS, RST_STREAM): without this, Nagle holds each one
    # until the previous is acknowledged, and a loop of resets crawls at ~40 ms per stream.
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def wait_event(srv: ServerProcess, name: str, count: int = 1) -> int:
    """Ask the app (in the server) to answer once ``name`` was recorded ``count`` times."""
    with client(srv, True) as c:
        r = c.get("/api/events", params={"name": name, "count": count})
    assert r.status_code == 200
    return int(r.json()["count"])


def tag() -> str:
    return uuid.uuid4().hex[:10]


# -- frameworks: JSON, params, bodies, streaming, their own errors --------------------------------

@PROTOCOLS
def test_starlette_json_params_and_url_for(srv: ServerProcess, http2: bool) -> None:
    with client(srv, http2) as c:
        r = c.get("/api/json")
        assert r.status_code == 200 and r.json() == {"hello": "world", "path": "/api/json", "root_path": "/api"}
        assert r.headers["content-length"] == str(len(r.content))
        assert r.headers["server"] == "pushserve" and "date" in r.headers
        r = c.get("/api/items/42", params={"q": "a b"})
    body = r.json()
    assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert body["id"] == 42 and body["q"] == "a b"
    assert body["path"] == "/api/items/42" and body["root_path"] == "/api"
    assert body["url"] == f"https://localhost:{srv.port}/api/items/42"
    assert body["http_version"] == ("2" if http2 else "1.1")


@PROTOCOLS
def test_fastapi_params_body_and_its_own_errors(srv: ServerProcess, http2: bool) -> None:
    data = os.urandom(300_000)
    with client(srv, http2) as c:
        r = c.get("/fast/items/7", params={"q": "x"})
        assert r.json() == {"id": 7, "q": "x", "url": f"https://localhost:{srv.port}/fast/items/7",
                            "root_path": "/fast", "path": "/fast/items/7"}
        assert c.get("/fast/items/not-a-number").status_code == 422
        missing = c.get("/fast/nope")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
        r = c.post("/fast/echo", content=data)
    assert r.json() == {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}


@PROTOCOLS
@pytest.mark.parametrize("slow", [False, True], ids=["fast-reader", "slow-reader"])
def test_uploads_are_echoed_intact_at_the_apps_pace(srv: ServerProcess, http2: bool, slow: bool) -> None:
    data = os.urandom((6 if slow else 2) * 1024 * 1024 + 17)
    with client(srv, http2) as c:
        r = c.post("/api/echo" + ("?slow=1" if slow else ""), content=data)
        echoed = r.json()
        assert echoed["sha256"] == hashlib.sha256(data).hexdigest() and echoed["length"] == len(data)
        # Body is held back while the app lags (HTTP/2 window of 1 MB; HTTP/1.1 stops reading
        # past 1 MB), so what piles up unread, handed over in one piece, stays near 1 MB.
        assert echoed["largest_chunk"] <= 1.5 * 1024 * 1024
        # The connection is still good for the next request (HTTP/1.1 resumed reading).
        assert c.get("/api/json").status_code == 200


@PROTOCOLS
def test_streaming_response(srv: ServerProcess, http2: bool) -> None:
    with client(srv, http2) as c:
        r = c.get("/api/stream", params={"n": 200, "size": 5000})
    assert r.status_code == 200
    assert r.content == b"".join(bytes([65 + i % 26]) * 5000 for i in range(200))
    assert "content-length" not in r.headers  # length unknown up front: streamed


@PROTOCOLS
def test_app_404_is_the_apps_not_the_sites(srv: ServerProcess, http2: bool) -> None:
    with client(srv, http2) as c:
        r = c.get("/api/no/such/route")
        site = c.get("/no/such/page")
    assert r.status_code == 404 and r.text == "Not Found"
    assert site.status_code == 404 and "Not Found" not in site.text[:9]


@PROTOCOLS
def test_body_over_max_body_size_is_413_before_the_app(srv: ServerProcess, http2: bool) -> None:
    big = b"x" * (8 * 1024 * 1024 + 1)
    with client(srv, http2) as c:
        r = c.post("/api/echo", content=big)
        assert r.status_code == 413
        assert c.get("/api/json").status_code == 200


def test_streamed_body_over_max_body_size_is_413(srv: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:  # no content-length: the limit is found on the way
        for _ in range(9):
            yield b"y" * (1024 * 1024)

    with client(srv, True) as c:
        r = c.post("/api/echo", content=chunks())
        assert r.status_code == 413
        assert c.get("/api/json").status_code == 200


def test_invalid_response_header_from_the_app_is_a_500(srv: ServerProcess) -> None:
    with client(srv, False) as c:
        r = c.get("/raw/badheader")
        assert r.status_code == 500 and "x-injected" not in r.headers
        assert c.get("/api/json").status_code == 200


@pytest.mark.parametrize("http2", [True, False])
def test_connection_specific_headers_from_the_app_are_dropped(srv: ServerProcess, http2: bool) -> None:
    with client(srv, http2) as c:
        r = c.get("/raw/hopbyhop")
    assert r.status_code == 200 and r.text == "framed by the server"
    assert r.headers["content-type"] == "text/plain"
    assert "keep-alive" not in r.headers
    if http2:  # RFC 9113 §8.2.2: a response carrying these would be malformed
        assert "connection" not in r.headers and "transfer-encoding" not in r.headers


def test_head_gets_headers_only(srv: ServerProcess) -> None:
    c = h2(srv)
    try:
        sid = c.request("/raw/head", method="HEAD")
        c.wait(sid)
        reply = c.replies[sid]
    finally:
        c.close()
    assert reply.status == 200 and reply.header(b"content-length") == b"5" and reply.body == b""


# -- the scope --------------------------------------------------------------------------------------

def test_scope_over_h2_with_push(srv: ServerProcess) -> None:
    c = h2(srv, push=True)
    try:
        reply = c.get("/raw/scope/a%20b%C3%A9?x=1&y=%20")
    finally:
        c.close()
    scope = json.loads(reply.body)
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "2" and scope["scheme"] == "https" and scope["method"] == "GET"
    assert scope["path"] == "/raw/scope/a bé" and scope["raw_path"] == "/raw/scope/a%20b%C3%A9"
    assert scope["query_string"] == "x=1&y=%20" and scope["root_path"] == "/raw"
    assert ["host", f"localhost:{srv.port}"] in scope["headers"]
    assert scope["server"][1] == srv.port and scope["client"][0] == "127.0.0.1"
    assert scope["extensions"] == ["http.response.early_hint", "http.response.push", "tls"]
    assert scope["tls"]["tls_version"] in (0x0303, 0x0304) and isinstance(scope["tls"]["cipher_suite"], int)
    assert scope["state"] == {"raw": "state from raw lifespan"}


@PROTOCOLS
def test_scope_without_push(srv: ServerProcess, http2: bool) -> None:
    with client(srv, http2) as c:
        scope = c.post("/raw/scope", content=b"12345").json()
    assert scope["http_version"] == ("2" if http2 else "1.1")
    # httpx sends ENABLE_PUSH=0, and HTTP/1.1 has no push at all.
    assert scope["extensions"] == ["http.response.early_hint", "tls"]
    assert scope["body_length"] == 5
    assert [k for k, _ in scope["headers"]].count("host") == 1


def test_lifespan_state_is_visible(srv: ServerProcess, markers: Path) -> None:
    with client(srv, True) as c:
        assert c.get("/api/state").json() == {"greeting": "hello from lifespan"}
    assert (markers / "star-startup").exists()


# -- push, early hints, inferred announcements ------------------------------------------------------

def test_quart_push_promises_arrive_with_their_bodies(srv: ServerProcess) -> None:
    c = h2(srv, push=True)
    try:
        sid = c.request("/q/page")
        c.wait(sid)
        pushes = {r.path: r for r in c.pushes_of(sid)}
    finally:
        c.close()
    assert c.replies[sid].status == 200
    assert set(pushes) == {b"/css/site.css", b"/q/data"}
    css = pushes[b"/css/site.css"]
    assert css.status == 200 and bytes(css.body) == (SITE_EXAMPLE / "css" / "site.css").read_bytes()
    data = pushes[b"/q/data"]
    assert data.status == 200 and json.loads(data.body) == {"source": "quart", "pushed_ok": True}


def test_app_early_hint_is_sent_as_103(srv: ServerProcess) -> None:
    c = h2(srv)
    try:
        reply = c.get("/raw/hint")
    finally:
        c.close()
    assert reply.status == 200
    assert [dict(block).get(b":status") for block in reply.informational] == [b"103"]
    assert dict(reply.informational[0])[b"link"] == b"</css/site.css>; rel=preload; as=style"


def _get_page(srv: ServerProcess, push: bool) -> tuple[Reply, list[Reply]]:
    c = h2(srv, push=push)
    try:
        sid = c.request("/api/page")
        c.wait(sid)
        return c.replies[sid], c.pushes_of(sid)
    finally:
        c.close()


def test_app_html_resources_are_learned_then_announced(srv: ServerProcess) -> None:
    _get_page(srv, push=True)  # the first page of the route teaches the server its resources
    page, pushes = _get_page(srv, push=True)
    assert page.status == 200 and b"rendered by the app" in page.body
    pushed = {bytes(p.path) for p in pushes}
    assert b"/css/site.css" in pushed and b"/js/app.js" in pushed
    assert all(p.status == 200 and p.body for p in pushes)
    # A client that refuses push gets 103 Early Hints and Link headers instead.
    page, pushes = _get_page(srv, push=False)
    assert pushes == []
    hinted = [v for block in page.informational for k, v in block if k == b"link"]
    assert any(v.startswith(b"</css/site.css>") for v in hinted)
    assert any(v.startswith(b"</css/site.css>") for v in page.all(b"link"))


# -- errors ---------------------------------------------------------------------------------------

@PROTOCOLS
def test_app_raising_gives_500_and_the_next_request_is_served(srv: ServerProcess, http2: bool) -> None:
    start_line = len(srv.lines)
    with client(srv, http2) as c:
        r = c.get("/raw/boom")
        assert r.status_code == 500 and r.text == "internal server error\n"
        assert c.get("/raw/noreply").status_code == 500  # returned without answering
        assert c.get("/api/boom").status_code == 500  # Starlette's own 500
        assert c.get("/api/json").status_code == 200
    srv.wait_for(r"RuntimeError: raw boom before the response", start=start_line)
    srv.wait_for(r"RuntimeError: star boom", start=start_line)
    srv.wait_for(r"returned without completing the response", start=start_line)


def test_app_raising_mid_response_resets_only_its_stream(srv: ServerProcess) -> None:
    c = h2(srv)
    try:
        broken = c.request("/raw/half")
        fine = c.request("/api/json")
        c.wait(broken, fine)
        assert c.replies[broken].reset is not None
        assert c.replies[fine].status == 200
        assert c.get("/api/json").status == 200  # same connection, still good
    finally:
        c.close()


def test_app_raising_mid_response_over_h1_closes_that_connection(srv: ServerProcess) -> None:
    with client(srv, False) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/raw/half")
        assert c.get("/api/json").status_code == 200  # a new connection is served


# -- disconnects, resets, and the memory they must not keep -----------------------------------------

def test_reset_mid_upload_gives_the_app_a_disconnect(srv: ServerProcess) -> None:
    t = tag()
    c = h2(srv)
    try:
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", c.authority),
                                  (b":path", f"/api/upload-slow?tag={t}".encode())], end_stream=False)
        c.conn.send_data(sid, b"u" * 10_000)
        c.flush()
        assert wait_event(srv, f"upload-started:{t}") == 1
        c.reset(sid)
        assert wait_event(srv, f"upload-disconnect:{t}") == 1
        assert c.get("/api/json").status == 200
    finally:
        c.close()


def test_h1_connection_lost_mid_upload_gives_the_app_a_disconnect(srv: ServerProcess) -> None:
    t = tag()
    ctx = srv.certs.client_context(["http/1.1"])
    with socket.create_connection((srv.host, srv.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(f"POST /api/upload-slow?tag={t} HTTP/1.1\r\nhost: localhost\r\n"
                  f"content-length: 1000000\r\n\r\n".encode() + b"u" * 20_000)
        assert wait_event(srv, f"upload-started:{t}") == 1
    assert wait_event(srv, f"upload-disconnect:{t}") == 1


def test_reset_mid_stream_ends_the_apps_stream(srv: ServerProcess) -> None:
    t = tag()
    c = h2(srv)
    try:
        sid = c.request(f"/api/endless?tag={t}")
        while not c.replies[sid].body:
            c.read_once()
        c.reset(sid)
        assert wait_event(srv, f"stream-end:{t}") == 1
    finally:
        c.close()


def test_a_client_not_reading_holds_the_streaming_app_back(srv: ServerProcess) -> None:
    t = tag()
    c = h2(srv, auto_window=False)  # never reopens its windows: the server may send 64 KB in all
    try:
        sid = c.request(f"/api/endless?tag={t}")
        while len(c.replies[sid].body) < 65535:
            c.read_once()
        # Let the app run freely meanwhile: a few round trips through the same worker.
        with client(srv, True) as other:
            for _ in range(20):
                assert other.get("/api/json").status_code == 200
        produced = wait_event(srv, f"stream-chunk:{t}", 0)
        # 16 KB chunks: what the client took, plus send()'s 256 KB high-water mark, plus one.
        assert produced <= (65535 + 256 * 1024) // 16384 + 2, produced
        c.reset(sid)
        assert wait_event(srv, f"stream-end:{t}") == 1
    finally:
        c.close()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _reset_streams(srv: ServerProcess, count: int, t: str) -> None:
    """``count`` streaming responses, each reset by the client once its headers arrived; 50 per
    connection so the server's rapid-reset guard (100 of 200) is never the one ending them."""
    done = 0
    while done < count:
        c = h2(srv)
        try:
            for _ in range(min(50, count - done)):
                sid = c.request(f"/api/endless?tag={t}")
                while not c.replies[sid].headers:
                    c.read_once()
                c.reset(sid)
                done += 1
            assert c.get("/api/json").status == 200
        finally:
            c.close()


def test_a_thousand_reset_streams_leak_neither_tasks_nor_memory(srv: ServerProcess) -> None:
    with client(srv, True) as c:
        pid = int(c.get("/api/json").headers["x-pushserve-worker"])
    t = tag()
    _reset_streams(srv, 200, t)  # warm-up: caches, allocator arenas
    assert wait_event(srv, f"stream-end:{t}", 200) == 200
    before = _rss_kb(pid)
    _reset_streams(srv, 1000, t)
    # Every app task saw its client go and ended (none left streaming into the void).
    assert wait_event(srv, f"stream-end:{t}", 1200) == 1200
    grown_mb = (_rss_kb(pid) - before) / 1024
    print(f"\nworker RSS grew {grown_mb:.1f} MB over 1000 reset streams")
    assert grown_mb < 20, f"worker RSS grew {grown_mb:.1f} MB over 1000 reset streams"


# -- lifespan and loading ---------------------------------------------------------------------------

def test_lifespan_shutdown_runs_on_sigterm(certs: Certs, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHSERVE_TEST_MARKERS", str(tmp_path))
    s = start(certs, "--mount", "/api=tests.support.apps.star:app")
    try:
        with client(s, True) as c:
            assert c.get("/api/state").status_code == 200
        assert not (tmp_path / "star-shutdown").exists()
    finally:
        code = s.stop(signal.SIGTERM)
    assert code == 0
    assert (tmp_path / "star-startup").exists() and (tmp_path / "star-shutdown").exists()


def test_app_without_lifespan_and_factory_apps_still_run(
        make_server: Callable[..., ServerProcess]) -> None:
    s = make_server("--mount", "/a=tests.support.apps.raw:no_lifespan",
                    "--mount", "/b=tests.support.apps.raw:make_app()")
    with client(s, True) as c:
        assert c.get("/a/x").json() == {"no_lifespan": True}
        assert c.get("/b/y").json() == {"no_lifespan": True}
    assert "does not support lifespan" in s.output


def test_lifespan_startup_failure_stops_the_server_with_the_apps_message(certs: Certs) -> None:
    r = run_cli(certs, str(SITE_EXAMPLE), "--port", "0", "--cert-dir", str(certs.cert_dir),
                "--mount", "/x=tests.support.apps.raw:failing")
    assert r.returncode != 0
    assert "database unreachable" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("spec,message", [
    ("tests.support.apps.nope:app", "module 'tests.support.apps.nope' not found"),
    ("tests.support.apps.raw:nothing", "has no attribute 'nothing'"),
    ("tests.support.apps.raw:not_callable", "is a int, not an ASGI app"),
    ("tests.support.apps.broken:app", "raised ValueError: this module is broken on purpose"),
    ("tests.support.apps.not_asgi:wsgi", "is a WSGI app (function taking environ, start_response)"),
    ("tests.support.apps.not_asgi:flask_app", "is a WSGI app (FlaskLike taking environ, start_response)"),
    ("tests.support.apps.not_asgi:Asgi2", "is a class (Asgi2): an ASGI 2 app"),
])
def test_bad_mounts_are_one_line_errors(certs: Certs, spec: str, message: str) -> None:
    r = run_cli(certs, str(SITE_EXAMPLE), "--port", "0", "--cert-dir", str(certs.cert_dir),
                "--mount", f"/x={spec}")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "mount /x" in lines[0] and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_example_site_mount_from_pushserve_toml(server: ServerProcess) -> None:
    with client(server, True) as c:
        r = c.get("/search/api", params={"q": "push"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        results = r.json()["results"]
        assert results and all(set(hit) >= {"url", "title"} for hit in results)
        assert any(hit["url"] == "/" for hit in results)
        page = c.get("/search/", params={"q": "push"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'href="/css/site.css"' in page.text


def test_app_dir_puts_a_folder_on_the_import_path(make_server: Callable[..., ServerProcess],
                                                  tmp_path: Path) -> None:
    (tmp_path / "myapp_for_pushserve.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'from app-dir'})\n")
    s = make_server("--app-dir", str(tmp_path), "--mount", "/m=myapp_for_pushserve:app")
    with client(s, False) as c:
        assert c.get("/m").text == "from app-dir"



def _read_responses(s: socket.socket, count: int) -> int:
    """Read until ``count`` complete responses to GET /raw/head (5-byte bodies) arrived."""
    data = b""
    while data.count(b"HTTP/1.1 200 ") < count or not data.endswith(b"hello"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.count(b"HTTP/1.1 200 ")


def test_h1_pipelining_past_the_read_pause_keeps_the_connection_going(srv: ServerProcess) -> None:
    # 20 pipelined requests to an app make the server stop reading (16 outstanding); it must
    # read again once they are answered, so later requests on the connection are served.
    ctx = srv.certs.client_context(["http/1.1"])
    request = b"GET /raw/head HTTP/1.1\r\nhost: localhost\r\n\r\n"
    with socket.create_connection((srv.host, srv.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(request * 20)
        assert _read_responses(s, 20) == 20
        s.sendall(request * 3)
        assert _read_responses(s, 3) == 3


def test_h1_head_of_a_streamed_response_ends_it(srv: ServerProcess) -> None:
    ctx = srv.certs.client_context(["http/1.1"])
    with socket.create_connection((srv.host, srv.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"HEAD /raw/hopbyhop HTTP/1.1\r\nhost: localhost\r\n\r\n"
                  b"GET /raw/head HTTP/1.1\r\nhost: localhost\r\n\r\n")
        assert _read_responses(s, 2) == 2  # the GET behind the HEAD is answered
