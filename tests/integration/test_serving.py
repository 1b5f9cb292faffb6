"""The foundation against a real pushserve process: HTTP/2 and HTTP/1.1 on one TLS port."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hyperframe.frame import HeadersFrame, SettingsFrame

from tests.conftest import need
from tests.support.h2client import H2Client
from tests.support.serverproc import Certs, ServerProcess

BIG = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text("<!doctype html><title>home</title><p>home page</p>\n")
    (root / "404.html").write_text("<!doctype html><title>missing</title><p>custom not found</p>\n")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("<p>docs</p>\n")
    (root / "style.css").write_text("body { color: #3333 }\n" * 50)
    (root / "img").mkdir()  # a folder without an index
    (root / "img" / "a.svg").write_text("<svg/>")
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "_private.txt").write_text("secret\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "_layouts").mkdir()
    (root / "_layouts" / "x.html").write_text("layout secret\n")
    (root / "uses-layout.html").write_text('{% extends "_layouts/x.html" %}')  # makes x.html template-only
    (root / "pushserve.toml").write_text("# the site's settings: private\n")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("TOP SECRET outside root\n")
    (root / "escape").symlink_to(outside)
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    return root


@pytest.fixture(scope="module")
def srv(certs: Certs, site: Path) -> ServerProcess:
    from tests.support.serverproc import start

    s = start(certs, "--header-timeout", "2", site=site)
    yield s  # type: ignore[misc]
    s.stop()


def client(certs: Certs, http2: bool) -> httpx.Client:
    return httpx.Client(http2=http2, http1=not http2, verify=certs.client_context(), timeout=20)


def raw_h1(srv: ServerProcess, data: bytes, alpn: list[str] | None = None) -> bytes:
    """Send raw bytes over TLS (HTTP/1.1 by ALPN) and read until the server closes or 5 s pass."""
    ctx = srv.certs.client_context(alpn if alpn is not None else ["http/1.1"])
    with socket.create_connection((srv.host, srv.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ssl.SSLError, ConnectionResetError):
            pass
        return b"".join(chunks)


# -- protocols ------------------------------------------------------------------------------------

@pytest.mark.parametrize("http2,version", [(True, "HTTP/2"), (False, "HTTP/1.1")])
def test_httpx_gets_the_protocol_it_asks_for(srv: ServerProcess, http2: bool, version: str) -> None:
    with client(srv.certs, http2) as c:
        r = c.get(srv.url)
    assert r.http_version == version
    assert r.status_code == 200
    assert r.text == "<!doctype html><title>home</title><p>home page</p>\n"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "date" in r.headers and r.headers["server"] == "pushserve"


@pytest.mark.parametrize("flag,version", [("--http2", "2"), ("--http1.1", "1.1")])
def test_curl(srv: ServerProcess, flag: str, version: str) -> None:
    out = subprocess.run(
        [need("curl"), "-sS", flag, "--cacert", str(srv.certs.ca_file), "-o", "/dev/null",
         "-w", "%{http_version} %{http_code} %{content_type}", srv.url + "style.css"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == f"{version} 200 text/css; charset=utf-8"


def test_client_without_alpn_gets_http11(srv: ServerProcess) -> None:
    ctx = srv.certs.client_context()
    with socket.create_connection((srv.host, srv.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        assert s.selected_alpn_protocol() is None
        s.sendall(b"GET /style.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def test_big_file_to_small_window_http2(srv: ServerProcess, site: Path) -> None:
    expected = hashlib.sha256((site / "big.bin").read_bytes()).hexdigest()
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), window=65535)
    try:
        reply = c.get("/big.bin")
    finally:
        c.close()
    assert reply.status == 200
    assert len(reply.body) == BIG
    assert hashlib.sha256(reply.body).hexdigest() == expected


def test_big_file_http11(srv: ServerProcess, site: Path) -> None:
    expected = hashlib.sha256((site / "big.bin").read_bytes()).hexdigest()
    with client(srv.certs, False) as c, c.stream("GET", srv.url + "big.bin") as r:
        h = hashlib.sha256()
        for chunk in r.iter_bytes():
            h.update(chunk)
    assert r.headers["content-length"] == str(BIG)
    assert h.hexdigest() == expected


def test_many_concurrent_streams(srv: ServerProcess) -> None:
    c = H2Client(srv.host, srv.port, srv.certs.client_context())
    try:
        ids = [c.request("/style.css") for _ in range(100)]
        c.wait(*ids)
        assert all(c.replies[i].status == 200 and len(c.replies[i].body) == 1100 for i in ids)
    finally:
        c.close()


def test_nghttp_and_h2load_are_happy(srv: ServerProcess) -> None:
    out = subprocess.run([need("nghttp"), "-nv", srv.url + "style.css"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert ":status: 200" in out.stdout
    load = subprocess.run([need("h2load"), "-n", "400", "-c", "4", "-m", "10", srv.url + "style.css"],
                          capture_output=True, text=True, timeout=60)
    assert load.returncode == 0, load.stdout
    assert "400 succeeded, 0 failed, 0 errored" in load.stdout, load.stdout


# -- static semantics -----------------------------------------------------------------------------

@pytest.mark.parametrize("http2", [True, False])
def test_conditional_range_head_405_redirect_404(srv: ServerProcess, http2: bool) -> None:
    with client(srv.certs, http2) as c:
        r = c.get(srv.url + "style.css")
        etag, last_modified = r.headers["etag"], r.headers["last-modified"]
        assert c.get(srv.url + "style.css", headers={"if-none-match": etag}).status_code == 304
        assert c.get(srv.url + "style.css", headers={"if-modified-since": last_modified}).status_code == 304
        part = c.get(srv.url + "style.css", headers={"range": "bytes=0-3"})
        assert (part.status_code, part.content, part.headers["content-range"]) == (206, b"body", "bytes 0-3/1100")
        bad = c.get(srv.url + "style.css", headers={"range": "bytes=5000-"})
        assert bad.status_code == 416 and bad.headers["content-range"] == "bytes */1100"
        head = c.head(srv.url + "style.css", headers={"accept-encoding": "identity"})  # the file's own length
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "1100"
        post = c.post(srv.url + "style.css", content=b"x" * 1000)
        assert post.status_code == 405 and "GET" in post.headers["allow"]
        redirect = c.get(srv.url + "docs?x=1")
        assert redirect.status_code == 301 and redirect.headers["location"] == "/docs/?x=1"
        assert c.get(srv.url + "docs/").text == "<p>docs</p>\n"
        # A folder without index.html: 404 at once, not a redirect to a 404.
        no_index = c.get(srv.url + "img")
        assert no_index.status_code == 404 and "custom not found" in no_index.text
        missing = c.get(srv.url + "nope.css")
        assert missing.status_code == 404 and "custom not found" in missing.text


TRAVERSALS = [
    b"/../../../../etc/passwd", b"/%2e%2e/%2e%2e/etc/passwd", b"/..%2f..%2fetc%2fpasswd",
    b"/%2e%2e%5c%2e%2e%5cetc%5cpasswd", b"/..\\..\\etc\\passwd", b"/style.css%00.txt",
    b"/%252e%252e/%252e%252e/etc/passwd", b"/escape/secret.txt", b"/escape.txt",
    b"/pushserve.toml", b"/.env", b"/_layouts/x.html", b"/docs/../../etc/passwd", b"//etc/passwd",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_never_leaks_http11(srv: ServerProcess, target: bytes) -> None:
    data = raw_h1(srv, b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    status = int(data.split(b" ", 2)[1])
    assert status in (400, 404), data[:200]
    for secret in (b"root:", b"TOP SECRET", b"secret", b"SECRET=1"):
        assert secret not in data


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_never_leaks_http2(srv: ServerProcess, target: bytes) -> None:
    c = H2Client(srv.host, srv.port, srv.certs.client_context())
    try:
        reply = c.get(target.decode("latin-1"))
    finally:
        c.close()
    if reply.reset is None:
        assert reply.status in (400, 404)
    for secret in (b"root:", b"TOP SECRET", b"secret", b"SECRET=1"):
        assert secret not in reply.body


# -- hostile input --------------------------------------------------------------------------------

@pytest.mark.parametrize("request_bytes,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
])
def test_malformed_http11_gets_status_and_close(srv: ServerProcess, request_bytes: bytes, status: int) -> None:
    data = raw_h1(srv, request_bytes)
    assert data.startswith(f"HTTP/1.1 {status} ".encode()), data[:100]
    # ...and the server still serves others.
    with client(srv.certs, True) as c:
        assert c.get(srv.url + "style.css").status_code == 200


def test_http11_keepalive_and_pipelining(srv: ServerProcess) -> None:
    req = b"GET /style.css HTTP/1.1\r\nHost: localhost\r\n\r\n"
    data = raw_h1(srv, req + b"HEAD /docs/ HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  + b"GET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"200", b"404"]


def test_malformed_http2_frames_get_goaway(srv: ServerProcess) -> None:
    c = H2Client(srv.host, srv.port, srv.certs.client_context())
    other = H2Client(srv.host, srv.port, srv.certs.client_context())
    try:
        # DATA on stream 0 and a HEADERS frame on an even (server-initiated) stream are
        # connection errors (RFC 9113 §6.1, §5.1.1).
        data_on_stream_0 = b"\x00\x00\x04\x00\x00\x00\x00\x00\x00boom"  # hyperframe refuses to build it
        c.sock.sendall(data_on_stream_0 + HeadersFrame(2, b"\x82").serialize())
        c.read_until_closed()
        assert c.goaway is not None and c.goaway.error_code == 1  # PROTOCOL_ERROR
        assert other.get("/style.css").status == 200
    finally:
        c.close()
        other.close()


def test_settings_flood_is_refused(srv: ServerProcess) -> None:
    c = H2Client(srv.host, srv.port, srv.certs.client_context())
    try:
        flood = SettingsFrame(0, settings={0x4: 65535}).serialize() * 20000
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            c.sock.sendall(flood)
        c.read_until_closed()
        assert c.goaway is not None and c.goaway.error_code == 0xB  # ENHANCE_YOUR_CALM
    finally:
        c.close()


def _read_all(s: ssl.SSLSocket) -> bytes:
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    return data


def test_unfinished_request_head_gets_408_then_close(srv: ServerProcess) -> None:
    ctx = srv.certs.client_context(["http/1.1"])
    with socket.create_connection((srv.host, srv.port), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: loc")  # and never the rest
        answer = _read_all(s)  # the server answers and closes (within --header-timeout 2 + a sweep)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:80]
    assert b"connection: close" in answer.lower()
    srv.wait_for(r"request head timeout: 408")


def test_connection_that_sent_nothing_is_closed_without_a_word(srv: ServerProcess) -> None:
    """A browser's preconnect sends nothing for a while: no 408 for it, just the close."""
    ctx = srv.certs.client_context(["http/1.1"])
    with socket.create_connection((srv.host, srv.port), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        assert _read_all(s) == b""


def test_plain_http_on_the_tls_port_gets_400_naming_the_https_url(srv: ServerProcess) -> None:
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        s.sendall(f"GET /x HTTP/1.1\r\nHost: localhost:{srv.port}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert f"https://localhost:{srv.port}/".encode() in data
    assert b"plain HTTP request was sent to an HTTPS port" in data
    srv.wait_for(r"plain HTTP on the TLS port: 400")
    # Other bytes get nothing, and TLS clients are served as ever.
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        s.sendall(b"\x00junk\r\n")
        with contextlib.suppress(ConnectionResetError):  # closed either way: no answer
            assert s.recv(100) == b""
    assert _get_h1(srv, "/").startswith(b"HTTP/1.1 200 ")


def _get_h1(srv: ServerProcess, path: str) -> bytes:
    ctx = srv.certs.client_context(["http/1.1"])
    with socket.create_connection((srv.host, srv.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        return _read_all(s)


# -- command-line mistakes -------------------------------------------------------------------------

def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_cli_mistakes(certs: Certs, tmp_path: Path, make_server: Callable[..., ServerProcess]) -> None:
    from tests.support.serverproc import run_cli

    line = _one_line_error(run_cli(certs, str(tmp_path / "missing")))
    assert "does not exist" in line
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    line = _one_line_error(run_cli(certs, "site_example", "--cert", str(garbage), "--port", "0"))
    assert "garbage.pem" in line
    other = tmp_path / "other"
    run_cli(certs, "cert", "--cert-dir", str(other))
    line = _one_line_error(run_cli(certs, "site_example", "--port", "0", "--cert",
                                   str(certs.cert_dir / "localhost.pem"), "--key",
                                   str(tmp_path / "nokey.pem")))
    assert "nokey.pem" in line
    line = _one_line_error(run_cli(certs, "site_example", "--port", "0", "--cert",
                                   str(certs.cert_dir / "localhost.pem"), "--key",
                                   str(other / "localhost-key.pem")))
    assert "match" in line
    line = _one_line_error(run_cli(certs, "site_example", "--bogus-flag"))
    assert "--bogus-flag" in line
    busy = make_server()
    line = _one_line_error(run_cli(certs, "site_example", "--port", str(busy.port),
                                   "--cert-dir", str(certs.cert_dir)))
    assert "already in use" in line


def test_requests_with_no_bytes_moving_are_dropped(make_server: Callable[..., ServerProcess], site: Path) -> None:
    # A peer that keeps its window shut would hold the server's open files and memory forever.
    srv = make_server("--idle-timeout", "1", site=site)
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), window=0, timeout=30)
    try:
        ids = [c.request("/big.bin") for _ in range(20)]
        c.read_until_closed()  # the server gives up on the stalled connection
        assert all(not c.replies[i].done for i in ids)
    finally:
        c.close()
    srv.wait_for(r"no progress for 1 s with requests in flight")
    with client(srv.certs, True) as other:
        assert other.get(srv.url + "style.css").status_code == 200
