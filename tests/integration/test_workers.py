"""Forked workers on a SO_REUSEPORT port, against a real ``pushserve --workers N`` process:
spreading, replacement after a crash, graceful stop, rolling restart (SIGHUP), certificate
reload, worker count signals, health checks, startup errors and crash loops."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hpack
import pytest
from cryptography import x509
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.conftest import need
from tests.support import patient_load
from tests.support.h2client import H2Client
from tests.support.serverproc import Certs, ServerProcess, run_cli, start

BIG = 4 * 1024 * 1024
Start = Callable[..., ServerProcess]

SLOW_APP = '''
import asyncio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    for i in range(30):  # 30 chunks, 0.1 s apart: a 3-second streaming response
        await send({"type": "http.response.body", "body": b"chunk %02d\\n" % i, "more_body": True})
        await asyncio.sleep(0.1)
    await send({"type": "http.response.body", "body": b"done\\n"})
'''


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>w</title>"
                                     "<link rel=stylesheet href=/style.css><p>workers</p>\n")
    (root / "style.css").write_text("body { color: #333 }\n" * 50)
    (root / "big.bin").write_bytes(os.urandom(BIG))
    return root


def _serve(certs: Certs, site: Path, *args: str) -> ServerProcess:
    return start(certs, "--expose-worker", "--no-access-log", *args, site=site)


@pytest.fixture
def serve(certs: Certs, site: Path) -> Iterator[Start]:
    started: list[ServerProcess] = []

    def factory(*args: str) -> ServerProcess:
        s = _serve(certs, site, *args)
        started.append(s)
        return s

    yield factory
    for s in started:
        finish(s)


def finish(srv: ServerProcess) -> None:
    """Stop gracefully; then make sure no worker outlives the test (the server runs in its own
    session, so its process group is the master's pid)."""
    srv.stop()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(srv.proc.pid, signal.SIGKILL)


# -- clients: one new connection per request, 5-second socket timeout ------------------------------

def get_h1(srv: ServerProcess, path: str = "/style.css") -> tuple[int, int]:
    """(status, worker pid) over a new HTTP/1.1 connection."""
    ctx = srv.certs.client_context(["http/1.1"])
    with socket.create_connection((srv.host, srv.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status = int(head.split(" ", 2)[1])
    m = re.search(r"(?im)^x-pushserve-worker: (\d+)\r?$", head)
    assert m is not None, head
    return status, int(m.group(1))


def get_h2(srv: ServerProcess, path: str = "/style.css") -> tuple[int, int]:
    """(status, worker pid) over a new HTTP/2 connection."""
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), timeout=5)
    try:
        reply = c.get(path)
    finally:
        c.close()
    worker = reply.header(b"x-pushserve-worker")
    assert worker is not None
    return reply.status, int(worker)


def get(srv: ServerProcess, i: int) -> int:
    """A request on a new connection, HTTP/2 and HTTP/1.1 taking turns; must be a 200."""
    status, pid = (get_h2 if i % 2 else get_h1)(srv)
    assert status == 200
    return pid


def pids_of(srv: ServerProcess, n: int) -> set[int]:
    return {get(srv, i) for i in range(n)}


def children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def line_count(srv: ServerProcess) -> int:
    with srv._cond:
        return len(srv.lines)


def seen(srv: ServerProcess, pattern: str, start: int = 0) -> re.Match[str] | None:
    with srv._cond:
        lines = srv.lines[start:]
    for line in lines:
        m = re.search(pattern, line)
        if m:
            return m
    return None


def serial(srv: ServerProcess) -> int:
    ctx = srv.certs.client_context(["http/1.1"])
    with socket.create_connection((srv.host, srv.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


class RawStream:
    """Reads one response frame by frame after H2Client sent the request.  h2's own state
    machine refuses every frame after a GOAWAY, but a graceful GOAWAY is exactly when the
    in-flight response must go on arriving, so this reader keeps going on its own (and opens
    the flow-control windows by hand, at its own pace)."""

    def __init__(self, client: H2Client, stream_id: int) -> None:
        self.sock = client.sock
        self.stream_id = stream_id
        self.decoder = hpack.Decoder()
        self.buf = b""
        self.status = 0
        self.body = bytearray()
        self.ended = False
        self.goaway: int | None = None

    def read(self) -> bool:
        """One recv; False once the connection closed."""
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        out = b""
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            frame.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            if isinstance(frame, HeadersFrame):
                headers = dict(self.decoder.decode(frame.data, raw=True))
                if frame.stream_id == self.stream_id and b":status" in headers:
                    self.status = int(headers[b":status"])
                self.ended |= frame.stream_id == self.stream_id and "END_STREAM" in frame.flags
            elif isinstance(frame, DataFrame):
                if frame.stream_id == self.stream_id:
                    self.body += frame.data
                    self.ended |= "END_STREAM" in frame.flags
                if frame.flow_controlled_length:
                    out += WindowUpdateFrame(0, frame.flow_controlled_length).serialize()
                    out += WindowUpdateFrame(frame.stream_id, frame.flow_controlled_length).serialize()
            elif isinstance(frame, GoAwayFrame):
                self.goaway = frame.error_code
            elif isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                out += SettingsFrame(0, flags=["ACK"]).serialize()
            elif isinstance(frame, PingFrame) and "ACK" not in frame.flags:
                out += PingFrame(0, frame.opaque_data, flags=["ACK"]).serialize()
        if out:
            self.sock.sendall(out)
        return True


# -- spreading and replacement ---------------------------------------------------------------------

def test_new_connections_are_spread_over_the_workers(serve: Start) -> None:
    srv = serve("--workers", "2")
    assert "2 workers" in srv.output
    workers = children(srv.proc.pid)
    assert len(workers) == 2
    pids = pids_of(srv, 200)
    assert pids == workers  # both workers answer, and only they (not the master)


def test_500_sequential_connections_none_hangs(serve: Start) -> None:
    srv = serve("--workers", "2")
    for i in range(500):
        assert get_h1(srv)[0] == 200, i  # 5-second socket timeout: a hang is an error


def test_killed_worker_is_replaced_and_nothing_fails(serve: Start) -> None:
    srv = serve("--workers", "2")
    before = pids_of(srv, 40)
    assert len(before) == 2
    victim = min(before)
    mark = line_count(srv)
    os.kill(victim, signal.SIGKILL)
    srv.wait_for(rf"worker {victim} \(slot (\d+)\) was killed by signal SIGKILL; starting a new one",
                 start=mark)
    new = int(srv.wait_for(r"worker (\d+) \(slot \d+\) ready", start=mark).group(1))
    assert new not in before
    after = pids_of(srv, 100)  # every one a 200 (get() asserts)
    assert after == (before - {victim}) | {new}


# -- graceful stop ---------------------------------------------------------------------------------

def test_sigterm_lets_a_slow_download_finish_then_exits_0(serve: Start, site: Path) -> None:
    srv = serve("--workers", "2")
    expected = hashlib.sha256((site / "big.bin").read_bytes()).hexdigest()
    c = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=False, window=65535,
                 timeout=20)
    try:
        stream = RawStream(c, c.request("/big.bin"))
        while len(stream.body) < 256 * 1024 and stream.read():
            pass
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_for(r"SIGTERM: stopping gracefully")
        for _ in range(100_000):  # bounded
            if stream.ended or not stream.read():
                break
            time.sleep(0.002)  # a slow reader: the response is still in flight after SIGTERM
    finally:
        c.sock.close()
    assert stream.ended and stream.status == 200
    assert len(stream.body) == BIG and hashlib.sha256(stream.body).hexdigest() == expected
    assert stream.goaway == 0  # told to go away, gracefully, while the download went on
    assert srv.proc.wait(30) == 0
    assert "Traceback" not in srv.output


def test_sigterm_lets_a_streaming_app_response_finish(certs: Certs, site: Path, tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "slowapp.py").write_text(SLOW_APP)
    srv = _serve(certs, site, "--workers", "2", "--app-dir", str(apps), "--mount", "/slow=slowapp:app")
    try:
        c = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=False, timeout=20)
        try:
            stream = RawStream(c, c.request("/slow/"))
            while b"chunk 02" not in stream.body and stream.read():
                pass
            srv.proc.send_signal(signal.SIGTERM)
            while not stream.ended and stream.read():
                pass
        finally:
            c.sock.close()
        assert stream.status == 200
        assert stream.body.endswith(b"chunk 29\ndone\n")
        assert stream.goaway == 0
        assert srv.proc.wait(30) == 0
    finally:
        finish(srv)


# -- rolling restart ---------------------------------------------------------------------------------

def test_sighup_under_load_fails_no_request_and_brings_new_workers(serve: Start) -> None:
    srv = serve("--workers", "2")
    old = pids_of(srv, 40)
    assert len(old) == 2
    mark = line_count(srv)
    answered: list[int] = []
    # A bound, not a threshold: the loop ends as soon as the reload is seen done (a second or
    # two on a quiet machine; more than 10 s at load average 50).
    deadline = time.monotonic() + 90
    stopped = re.compile(r"worker (\d+) stopped")
    for i in range(5000):  # bounded: 5000 requests or 90 s
        if i == 50:
            srv.proc.send_signal(signal.SIGHUP)
        answered.append(get(srv, i))  # asserts 200 on a new connection each time
        done = seen(srv, r"reloaded: workers (\d+), (\d+) replace", mark)
        if done and {int(p) for p in done.groups()} <= set(answered[-20:]) \
                and all(seen(srv, rf"worker {p} stopped", mark) for p in old):
            break
        if time.monotonic() > deadline:
            break
    done = seen(srv, r"reloaded: workers (\d+), (\d+) replace (\d+), (\d+)", mark)
    assert done is not None, srv.output
    new = {int(done.group(1)), int(done.group(2))}
    assert {int(done.group(3)), int(done.group(4))} == old
    assert not new & old
    with srv._cond:
        assert {int(m.group(1)) for line in srv.lines[mark:] if (m := stopped.search(line))} == old
    assert pids_of(srv, 60) == new
    assert children(srv.proc.pid) == new


def _two_restarts(srv: ServerProcess) -> None:
    for _ in range(2):
        mark = line_count(srv)
        srv.proc.send_signal(signal.SIGHUP)
        done = srv.wait_for(r"reloaded: workers \d+, \d+ replace (\d+), (\d+)", start=mark)
        for old in done.groups():
            srv.wait_for(rf"worker {old} stopped", start=mark)


def test_two_rolling_restarts_under_h2_load_lose_no_request(serve: Start) -> None:
    """Four HTTP/2 connections keep 8 streams each busy while the workers are replaced twice.  The
    old workers close with the two-step GOAWAY of RFC 9113 §6.8, so every stream a client sent
    before it heard of the drain is answered: none ends up above the final GOAWAY's last stream
    id (with a one-step GOAWAY those are what a client must send again, and what h2load counts
    as failed), and none is reset or cut off (tests/support/patient_load.py)."""
    srv = serve("--workers", "2")
    stop = threading.Event()
    tally, threads = patient_load.run(srv.host, srv.port, srv.certs.client_context(), stop, path="/style.css")
    try:
        assert tally.flowing.wait(30)
        _two_restarts(srv)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    print(f"h2: {tally.answered} answered over two restarts, {tally.retried} retried above a GOAWAY's last id")
    assert tally.lost == []
    assert tally.retried == 0  # every stream sent before the client heard of the drain was processed
    assert tally.answered > 0 and not any(t.is_alive() for t in threads)


_WRK_SIGNAL = """
local told = false
function response(status, headers, body)
  if not told then
    told = true
    local f = io.open("{fifo}", "w")
    f:write("flowing\\n")
    f:close()
  end
end
"""


def test_two_rolling_restarts_under_http1_load_lose_no_request(serve: Start, tmp_path: Path) -> None:
    """wrk keeps 8 HTTP/1.1 keep-alive connections busy while the workers are replaced twice: no
    socket error and no non-2xx answer (an old worker answers each connection's next request
    with Connection: close instead of closing it under the client's feet)."""
    wrk = need("wrk")
    srv = serve("--workers", "2")
    fifo = tmp_path / "flowing"
    os.mkfifo(fifo)
    script = tmp_path / "signal.lua"
    script.write_text(_WRK_SIGNAL.format(fifo=fifo))
    load = subprocess.Popen([wrk, "-t", "1", "-c", "8", "-d", "6s", "--timeout", "10s", "-s", str(script),
                             f"https://127.0.0.1:{srv.port}/style.css"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with open(fifo) as f:  # blocks until wrk got its first response
            assert f.read() == "flowing\n"
        _two_restarts(srv)
        out = load.communicate(timeout=60)[0]
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    m = re.search(r"(\d+) requests in", out)
    assert m is not None, out
    print(f"http/1.1: {m.group(1)} requests over two restarts")
    assert int(m.group(1)) > 0
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out


def test_sighup_serves_a_certificate_replaced_on_disk(serve: Start, certs: Certs, tmp_path: Path) -> None:
    mine = tmp_path / "tls"
    mine.mkdir()
    cert, key = mine / "cert.pem", mine / "key.pem"
    shutil.copy(certs.cert_dir / "localhost.pem", cert)
    shutil.copy(certs.cert_dir / "localhost-key.pem", key)
    srv = serve("--workers", "2", "--cert", str(cert), "--key", str(key))
    first = serial(srv)

    other = tmp_path / "other"
    made = run_cli(certs, "cert", "--cert-dir", str(other))
    assert made.returncode == 0, made.stderr
    shutil.copy(other / "localhost.pem", cert)
    shutil.copy(other / "localhost-key.pem", key)
    second_expected = x509.load_pem_x509_certificate((other / "localhost.pem").read_bytes()).serial_number
    assert second_expected != first

    mark = line_count(srv)
    srv.proc.send_signal(signal.SIGHUP)
    done = srv.wait_for(r"reloaded: workers (\d+), (\d+) replace (\d+), (\d+)", start=mark)
    for old in (done.group(3), done.group(4)):
        srv.wait_for(rf"worker {old} stopped", start=mark)
    assert {serial(srv) for _ in range(20)} == {second_expected}

    # Broken files on disk: SIGHUP keeps the running workers (and their certificate).
    running = pids_of(srv, 40)
    cert.write_text("not a certificate\n")
    mark = line_count(srv)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_for(r"SIGHUP: not reloading, the certificate is broken: .*cert\.pem", start=mark)
    assert {serial(srv) for _ in range(10)} == {second_expected}
    assert pids_of(srv, 40) == running

    # A worker that dies meanwhile is replaced from what was checked (tls.Snapshot), not from
    # the broken files.
    victim = min(running)
    mark = line_count(srv)
    os.kill(victim, signal.SIGKILL)
    new = int(srv.wait_for(r"worker (\d+) \(slot \d+\) ready", start=mark).group(1))
    assert pids_of(srv, 60) == (running - {victim}) | {new}
    assert {serial(srv) for _ in range(20)} == {second_expected}


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_master_loads_neither_tls_nor_the_protocol_stack(serve: Start) -> None:
    """The master imports what supervising needs: its memory map holds no OpenSSL (ssl,
    hashlib), no cryptography, no asyncio, no aioquic (it binds the UDP sockets of HTTP/3 and
    nothing more); a worker of a plain site holds TLS and asyncio but not Jinja2 (markupsafe
    comes with it), and cryptography only through aioquic, once it has had a QUIC datagram
    (test_h3.py shows it loaded then).  Shared objects show in /proc/PID/maps."""
    srv = serve("--workers", "2")
    workers = pids_of(srv, 40)
    master = _maps(srv.proc.pid)
    for lib in ("libssl.so", "libcrypto.so", "_ssl.cpython", "_hashlib.cpython", "_rust.abi3.so",
                "_asyncio.cpython", "uvloop", "aioquic", "pylsqpack"):
        assert lib not in master, lib
    for pid in workers:
        mapped = _maps(pid)
        assert "libssl.so" in mapped and "_asyncio.cpython" in mapped and "uvloop" in mapped
        assert "aioquic" not in mapped and "_rust.abi3.so" not in mapped and "markupsafe" not in mapped
    tcp_only = serve("--workers", "1", "--no-http3")
    (worker,) = pids_of(tcp_only, 20)
    mapped = _maps(worker)
    assert "_rust.abi3.so" not in mapped and "aioquic" not in mapped and "markupsafe" not in mapped


def test_sighup_with_a_broken_site_keeps_the_running_workers(serve: Start, site: Path) -> None:
    srv = serve("--workers", "2")
    running = pids_of(srv, 40)
    (site / "push_manifest.json").write_text("{not json")
    mark = line_count(srv)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_for(r"reload failed: new worker \d+ exited with code 3: .*push_manifest\.json.*; "
                 r"the running workers keep serving", start=mark)
    assert pids_of(srv, 60) == running
    (site / "push_manifest.json").unlink()  # fixed: the next SIGHUP goes through
    mark = line_count(srv)
    srv.proc.send_signal(signal.SIGHUP)
    done = srv.wait_for(r"reloaded: workers (\d+), (\d+) replace (\d+), (\d+)", start=mark)
    assert {int(done.group(3)), int(done.group(4))} == running


# -- worker count signals -------------------------------------------------------------------------

def test_sigttin_adds_and_sigttou_removes_a_worker(serve: Start) -> None:
    srv = serve("--workers", "2")
    two = pids_of(srv, 40)
    mark = line_count(srv)
    srv.proc.send_signal(signal.SIGTTIN)
    added = int(srv.wait_for(r"SIGTTIN: worker (\d+) \(slot 2\) added; 3 workers", start=mark).group(1))
    srv.wait_for(rf"worker {added} \(slot 2\) ready", start=mark)
    three = pids_of(srv, 300)
    assert three == two | {added}

    mark = line_count(srv)
    srv.proc.send_signal(signal.SIGTTOU)
    removed = int(srv.wait_for(r"SIGTTOU: stopping worker (\d+) \(slot 2\); 2 workers", start=mark).group(1))
    assert removed == added
    srv.wait_for(rf"worker {removed} stopped", start=mark)
    assert pids_of(srv, 100) == two


# -- health ----------------------------------------------------------------------------------------

def test_a_stuck_worker_is_reported_then_replaced(serve: Start) -> None:
    srv = serve("--workers", "2", "--worker-timeout", "2")
    before = pids_of(srv, 40)
    stuck = min(before)
    mark = line_count(srv)
    os.kill(stuck, signal.SIGSTOP)  # its event loop stops ticking, as if blocked
    try:
        srv.wait_for(rf"worker {stuck} \(slot \d+\): event loop blocked for", start=mark)
        # A stand-in starts on its slot (at half the timeout), and the stuck one is killed at the
        # timeout, whether the stand-in was ready by then (the stuck one was stopping) or not.
        srv.wait_for(rf"worker {stuck} \(slot \d+\): blocked for .*; worker \d+ starts on its slot", start=mark)
        srv.wait_for(rf"worker {stuck} \(slot \d+\) was stuck for .* \(--worker-timeout 2 s\); killed",
                     start=mark)
        new = int(srv.wait_for(r"worker (\d+) \(slot \d+\) ready", start=mark).group(1))
    finally:
        if stuck in children(srv.proc.pid):
            os.kill(stuck, signal.SIGCONT)
    assert pids_of(srv, 100) == (before - {stuck}) | {new}


# -- startup errors and crash loops ------------------------------------------------------------------

def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error is one line, said once (by the master: no worker was started to repeat it)."""
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.strip() and not re.match(r"pushserve\[\d+\] ", line)]  # not a log line
    assert len(errors) == 1, result.stderr
    assert "worker" not in result.stderr
    return errors[0]


def test_broken_config_fails_once_with_one_line(certs: Certs, site: Path, tmp_path: Path) -> None:
    base = ("--port", "0", "--cert-dir", str(certs.cert_dir), "--workers", "3")
    (site / "layout.html").write_text("{% block body %}{% endblock %}")
    (site / "broken.html").write_text('{% extends "layout.html" %}{% if %}\n')  # a template page
    # A start reads no page (issue 23); `pushserve check` lists every broken template, one per line,
    # under one message.
    result = run_cli(certs, "check", str(site), *base)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "worker" not in result.stderr
    assert result.stderr.count("template error") == 1 and "broken.html:1" in result.stderr
    (site / "broken.html").unlink()
    (site / "layout.html").unlink()

    line = _one_line_error(run_cli(certs, str(site), *base, "--mount", "/api=no_such_module_here:app"))
    assert "no_such_module_here" in line

    (site / "push_manifest.json").write_text("{not json")
    line = _one_line_error(run_cli(certs, str(site), *base))
    assert "push_manifest.json" in line


def test_port_in_use_with_workers(certs: Certs, serve: Start) -> None:
    busy = serve("--workers", "2")
    line = _one_line_error(run_cli(certs, "site_example", "--port", str(busy.port), "--workers", "2",
                                   "--cert-dir", str(certs.cert_dir)))
    assert "already in use" in line


CRASHING_APP = '''
import os, pathlib

if (pathlib.Path(__file__).parent / "crash-now").exists():
    os._exit(1)  # a worker that dies as it starts, as a segfault in an extension would

async def app(scope, receive, send):
    pass
'''


def test_crash_loop_ends_with_the_error(certs: Certs, site: Path, tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "crashapp.py").write_text(CRASHING_APP)
    srv = _serve(certs, site, "--workers", "2", "--app-dir", str(apps), "--mount", "/c=crashapp:app")
    try:
        victim = min(pids_of(srv, 40))
        (apps / "crash-now").touch()  # from now on every new worker dies at once
        os.kill(victim, signal.SIGKILL)
        assert srv.proc.wait(60) != 0
        srv.wait_for(r"pushserve: workers keep failing \(\d+ quick failures in \d+ s\); last: "
                     r"worker \d+ exited with code 1")
        assert not children(srv.proc.pid)
    finally:
        finish(srv)


def test_a_replacement_that_cannot_build_the_site_stands_by(serve: Start, site: Path) -> None:
    """The site broken since the start (a push_manifest.json rewritten in place with a mistake):
    a crashed worker's replacement answers 503 and says why, new connections go to the worker
    that serves the site, and the server does not stop; once a fixed file is renamed into place
    (the site folder changes), another worker tries again and a full set serves."""
    manifest = site / "push_manifest.json"
    manifest.write_text("{}")
    srv = serve("--workers", "2")
    running = pids_of(srv, 40)
    victim, survivor = sorted(running)
    with manifest.open("w") as f:  # in place: the folder itself does not change
        f.write("{not json")
    mark = line_count(srv)
    os.kill(victim, signal.SIGKILL)
    m = srv.wait_for(r"worker (\d+) \(slot \d+\) cannot serve: .*push_manifest\.json.*; it answers "
                     r"503 until the site folder changes or a SIGHUP", start=mark)
    standby = int(m.group(1))
    srv.wait_for(rf"worker {standby} \(slot \d+\) ready", start=mark)
    assert pids_of(srv, 40) == {survivor}  # steered: the standby worker gets no new connection
    assert srv.proc.poll() is None
    fixed = site / "push_manifest.json.new"
    fixed.write_text("{}")
    mark = line_count(srv)
    fixed.replace(manifest)
    new = int(srv.wait_for(rf"worker {standby} \(slot \d+\) could not serve \(the site changed\): worker "
                           r"(\d+) tries again", start=mark).group(1))
    srv.wait_for(rf"worker {new} \(slot \d+\) ready; it takes over from worker {standby}", start=mark)
    assert pids_of(srv, 40) == {survivor, new}


def test_without_reuseport_workers_share_one_listener(certs: Certs, site: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHSERVE_NO_REUSEPORT", "1")
    srv = _serve(certs, site, "--workers", "2")
    try:
        assert "SO_REUSEPORT is not available: 2 workers share one listener" in srv.output
        assert pids_of(srv, 100) <= children(srv.proc.pid)
        assert srv.stop() == 0
    finally:
        finish(srv)
