"""Faults that are nobody's attack, against a real ``pushserve`` process, each with a polite
client that says what it saw: the site folder gone while a worker dies, a file cut short under
a download, a stopped worker, a second SIGHUP during a reload, too few file descriptors, and
the heartbeat (issue 22)."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import os
import re
import select
import shutil
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.test_workers import Start, finish, line_count, pids_of, serial
from tests.support.faults import (
    BIG,
    GOAWAY,
    PoliteClient,
    Seen,
    Target,
    h1_download_cut_short,
    h2_download_cut_short,
    write_big,
)
from tests.support.faults import fetch as support_fetch
from tests.support.h2raw import PREFACE, E, F, Frame, RawH2, T, frame
from tests.support.serverproc import Certs, ServerProcess, run_cli, start


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>f</title><link rel=stylesheet href=/style.css><p>faults\n")
    (root / "style.css").write_text("body { color: #333 }\n" * 50)
    return root


@pytest.fixture
def serve(certs: Certs, site: Path) -> Iterator[Start]:
    started: list[ServerProcess] = []

    def factory(*args: str, site_dir: Path = site) -> ServerProcess:
        # TCP faults: no HTTP/3 listener (its aioquic import would only slow each worker's start).
        s = start(certs, "--expose-worker", "--no-access-log", "--no-http3", *args, site=site_dir)
        started.append(s)
        return s

    yield factory
    for s in started:
        finish(s)


# -- helpers ---------------------------------------------------------------------------------------

def target(srv: ServerProcess) -> Target:
    return Target(srv.host, srv.port, srv.certs.client_context)


def polite(srv: ServerProcess, timeout: float = 10) -> PoliteClient:
    return PoliteClient(target(srv), "/style.css", timeout)


def fetch(srv: ServerProcess, i: int, timeout: float = 10) -> tuple[int, int]:
    return support_fetch(target(srv), i, "/style.css", timeout)


def line_index(srv: ServerProcess, pattern: str, start: int) -> int:
    """Wait for a line matching ``pattern`` at or after line ``start``; its index."""
    srv.wait_for(pattern, start=start)
    with srv._cond:
        lines = list(srv.lines)
    return next(i for i in range(start, len(lines)) if re.search(pattern, lines[i]))

def report(what: str, seen: Seen) -> None:
    print(f"\n[polite client] {what}: {seen}")


# -- 1. the site folder missing while a worker dies -----------------------------------------------

def test_site_folder_gone_and_a_worker_killed_then_restored(serve: Start, site: Path) -> None:
    srv = serve("--workers", "2")
    victim, survivor = sorted(pids_of(srv, 40))
    away = site.with_name("site.away")
    with polite(srv) as client:
        client.wait_for(5)
        mark = line_count(srv)
        site.rename(away)  # a deploy that swaps folders, caught between two renames
        srv.wait_for(rf"site folder {site} is missing \(deleted, or being replaced\): requests get 503", start=mark)
        with client.paused():  # what a killed worker has in flight is lost, whatever the site
            os.kill(victim, signal.SIGKILL)
            srv.wait_for(rf"worker {victim} \(slot \d+\) was killed by signal SIGKILL", start=mark)
        m = srv.wait_for(rf"worker (\d+) \(slot \d+\) cannot serve: site folder {site} is missing; it "
                         r"answers 503 until the site folder is back", start=mark)
        standby = int(m.group(1))
        srv.wait_for(rf"worker {standby} \(slot \d+\) ready", start=mark)
        # 503 (no 404 a cache could keep, no hang): the survivor for every file it cannot find,
        # once its cache of the file is due for a look at the disk (within a second).
        assert any(fetch(srv, i)[0] == 503 for i in range(200))
        assert srv.proc.poll() is None
        mark = line_count(srv)
        away.rename(site)
        srv.wait_for(rf"site folder {site} is back", start=mark)
        new = int(srv.wait_for(rf"worker {standby} \(slot \d+\) could not serve \(without the site folder\): "
                               r"worker (\d+) tries again", start=mark).group(1))
        srv.wait_for(rf"worker {new} \(slot \d+\) ready; it takes over from worker {standby}", start=mark)
        client.wait_for(5)
    # The survivor looks at the disk again for a file it found missing within a second of its
    # last look: wait for that (20 answers in a row served), not for a time.
    deadline = time.monotonic() + 30
    while not all(fetch(srv, i)[0] == 200 for i in range(20)):
        assert time.monotonic() < deadline, "a worker still answers 503 with the site folder back"
    assert pids_of(srv, 60) == {survivor, new}
    report("site folder removed, a worker killed, the folder restored", client.seen)
    assert not client.seen.failures
    assert set(client.seen.statuses) <= {200, 503}
    assert client.seen.statuses[503] > 0
    assert srv.stop() == 0


def test_a_connection_held_by_a_stopped_worker_is_served_when_it_runs_again(serve: Start) -> None:
    """A connection the worker had already taken when it was stopped waits for it (as under
    nginx), and the time the worker was stopped does not count against the client's
    --header-timeout: its request is answered when the worker runs again."""
    srv = serve("--workers", "1", "--header-timeout", "2", "--worker-timeout", "60")
    (worker,) = pids_of(srv, 4)
    c = RawH2(srv.host, srv.port, srv.certs.client_context(), handshake=False)
    try:
        first = c.read_frame()  # the server's SETTINGS: the worker has the connection
        assert first.type == T.SETTINGS
        mark = line_count(srv)
        os.kill(worker, signal.SIGSTOP)
        try:
            # The stand-in starts at 3 s: longer than --header-timeout.
            standin = int(srv.wait_for(rf"worker {worker} \(slot 0\): blocked for [\d.]+ s; worker (\d+) starts",
                                       start=mark).group(1))
            srv.wait_for(rf"worker {standin} \(slot 0\) ready; it takes over from worker {worker}", start=mark)
            sid = c.new_stream()
            c.send(PREFACE + frame(T.SETTINGS, 0, 0) + c.headers_frame(sid, c.request_headers("/style.css")))
        finally:
            os.kill(worker, signal.SIGCONT)
        while sid not in c.heads:
            f = c.read_frame()
            if f.type == T.PING and not f.flags & F.ACK:  # the drain's PING
                c.send_frame(T.PING, F.ACK, 0, f.payload)
        assert dict(c.heads[sid])[b":status"] == b"200"
    finally:
        c.sock.close()
    srv.wait_for(rf"worker {worker} stopped", start=mark)
    assert not any("timeout" in line for line in srv.lines[mark:]), srv.lines[mark:]


# -- 4. a SIGHUP during a reload -----------------------------------------------------------------------

GATED_APP = '''
import asyncio, pathlib

GATE = pathlib.Path(__file__).parent / "open"


async def app(scope, receive, send):
    if scope["type"] != "lifespan":
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            while not GATE.exists():  # a worker starts only once the test opens the gate
                await asyncio.sleep(0.02)
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return
'''


def test_a_second_sighup_during_a_reload_is_queued(serve: Start, certs: Certs, tmp_path: Path) -> None:
    """HUP, a new certificate on disk, HUP again while the first reload is under way: the
    second is not dropped; the server ends up serving the new certificate."""
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, key = tls / "cert.pem", tls / "key.pem"
    shutil.copy(certs.cert_dir / "localhost.pem", cert)
    shutil.copy(certs.cert_dir / "localhost-key.pem", key)
    other = tmp_path / "other"
    made = run_cli(certs, "cert", "--cert-dir", str(other))
    assert made.returncode == 0, made.stderr
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "gated.py").write_text(GATED_APP)
    gate = apps / "open"
    gate.touch()
    srv = serve("--workers", "1", "--cert", str(cert), "--key", str(key), "--app-dir", str(apps),
                "--mount", "/gated=gated:app")
    first = serial(srv)
    with polite(srv) as client:
        gate.unlink()  # the next workers wait in their startup: the reload stays under way
        mark = line_count(srv)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_for(r"SIGHUP: starting 1 new worker", start=mark)
        shutil.copy(other / "localhost.pem", cert)
        shutil.copy(other / "localhost-key.pem", key)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_for(r"SIGHUP: a reload is under way; another follows it", start=mark)
        assert serial(srv) == first
        gate.touch()
        done = line_index(srv, r"reloaded: workers", mark)
        again = line_index(srv, r"SIGHUP: starting 1 new worker", done)
        line_index(srv, r"reloaded: workers", again)
        client.wait_for(5)
    report("two SIGHUPs with a certificate change between", client.seen)
    assert not client.seen.failures and set(client.seen.statuses) == {200}
    assert {serial(srv) for _ in range(20)} == {x509.load_pem_x509_certificate(cert.read_bytes()).serial_number}


# -- 2. a file cut short during a download ----------------------------------------------------------

def test_file_truncated_under_a_download(serve: Start, site: Path) -> None:
    """``truncate`` during a 64 MB download.  HTTP/1.1, with a second request pipelined behind
    it: the connection closes at once, the body is a true prefix of the file (the next response
    is never spliced into it), the short read is logged once, and other clients are served.
    HTTP/2: the stream is reset with INTERNAL_ERROR at once (the server's trouble, not the
    client's: not PROTOCOL_ERROR), and the connection goes on serving."""
    big = site / "big.bin"
    write_big(big)
    srv = serve("--workers", "1")
    mark = line_count(srv)
    with polite(srv) as client:
        got = h1_download_cut_short(target(srv), big, "/style.css", timeout=10)
        client.wait_for(5)
    print(f"\n[download] HTTP/1.1: {got}")
    assert got.head.startswith(b"HTTP/1.1 200") and b"content-length: %d" % BIG in got.head
    assert got.ended == "closed" and got.body < BIG  # not "still open": a hang fails here
    assert got.intact and got.spliced_at < 0
    srv.wait_for(r"h1: response cut short: .*big\.bin ended at byte \d+ of 67108864: it changed "
                 r"while being sent \(deploy by renaming files into place\)", start=mark)
    assert sum(1 for line in srv.lines[mark:] if "cut short" in line) == 1
    report("beside the HTTP/1.1 download", client.seen)
    assert not client.seen.failures and set(client.seen.statuses) == {200}

    write_big(big)
    mark = line_count(srv)
    got, c = h2_download_cut_short(target(srv), big, timeout=10)
    try:
        print(f"[download] HTTP/2: {got}")
        assert got.ended == "RST_STREAM INTERNAL_ERROR" and got.body < BIG and got.intact
        # The connection is still good: the next request on it is answered.
        sid = c.new_stream()
        c.send_headers(sid, c.request_headers("/style.css"))
        while not ((f := c.read_frame()).type == T.DATA and f.stream_id == sid and f.flags & F.END_STREAM):
            pass
        assert dict(c.heads[sid])[b":status"] == b"200"
    finally:
        c.sock.close()
    srv.wait_for(r"h2: response cut short: .*big\.bin ended at byte \d+ of 67108864", start=mark)


# -- 3. a stopped worker --------------------------------------------------------------------------------

def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def test_a_stopped_worker_gets_no_new_connections(serve: Start) -> None:
    """SIGSTOP one of two workers under polite clients opening a new connection per request:
    within a beat of the heartbeat new connections go to the other worker only; the few queued
    on the stopped one's slot before that are served by a stand-in on the slot; one the stopped
    worker had already accepted waits for it to run again (as under nginx); nothing fails.  (The
    worker and graceful timeouts are long: nothing here waits for them.  Once the stand-in takes
    over, the stopped worker is asked to stop and killed --graceful-timeout + 5 s later; with the
    default 10 s a slow machine could get there before the last assertion.)"""
    srv = serve("--workers", "2", "--worker-timeout", "60", "--graceful-timeout", "60")
    stopped, other = sorted(pids_of(srv, 40))
    clients = [polite(srv, timeout=60) for _ in range(3)]
    with contextlib.ExitStack() as stack:
        for c in clients:
            stack.enter_context(c)
        clients[0].wait_for(5)
        mark = line_count(srv)
        os.kill(stopped, signal.SIGSTOP)
        try:
            srv.wait_for(rf"worker {stopped} \(slot \d+\): event loop blocked for [\d.]+ s; new connections "
                         r"go to the other workers", start=mark)
            # From now on every new connection reaches the other worker, at once.
            for i in range(40):
                assert fetch(srv, i, timeout=10) == (200, other)
            assert _stopped(stopped)
            # What was queued on the stopped worker's slot before that is taken by a stand-in.
            standin = int(srv.wait_for(rf"worker {stopped} \(slot \d+\): blocked for [\d.]+ s; worker (\d+) "
                                       r"starts on its slot", start=mark).group(1))
            srv.wait_for(rf"worker {standin} \(slot \d+\) ready; it takes over from worker {stopped}", start=mark)
            # A client that came after the takeover is served throughout (each of the first three
            # may be waiting on a connection the stopped worker accepted, all three at once too).
            late = polite(srv, timeout=60)
            stack.enter_context(late)
            clients.append(late)
            late.wait_for(30)
            assert _stopped(stopped)
        finally:
            os.kill(stopped, signal.SIGCONT)
        srv.wait_for(rf"worker {stopped} stopped", start=mark)  # it drains once it runs again
    assert pids_of(srv, 60) == {other, standin}
    seen = Seen()
    for c in clients:
        seen.add(c.seen)
    report("four clients (the last started after the takeover), one of two workers SIGSTOPped", seen)
    assert not seen.failures and set(seen.statuses) == {200}


# -- 6. the heartbeat --------------------------------------------------------------------------------------

def test_a_master_that_was_away_kills_no_healthy_worker(serve: Start) -> None:
    """The master stopped for three times --worker-timeout while its workers serve on: when it
    runs again it judges the workers from then on (server/heartbeat.py), so none is called
    blocked or stuck, and the polite client never noticed."""
    srv = serve("--workers", "1", "--worker-timeout", "1")
    workers = pids_of(srv, 20)
    mark = line_count(srv)
    with polite(srv) as client:
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            away = time.monotonic() + 3.0  # the scenario's length, not a wait for readiness
            while time.monotonic() < away:
                client.wait_for(1)
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        # The master has run its checks since: a worker it adds now is ready.
        srv.proc.send_signal(signal.SIGTTIN)
        added = int(srv.wait_for(r"SIGTTIN: worker (\d+) \(slot 1\) added", start=mark).group(1))
        srv.wait_for(rf"worker {added} \(slot 1\) ready", start=mark)
        client.wait_for(5)
    assert not any(re.search(r"blocked|stuck|killed", line) for line in srv.lines[mark:]), srv.lines[mark:]
    assert pids_of(srv, 40) == workers | {added}
    report("the master stopped for 3 s with --worker-timeout 1", client.seen)
    assert not client.seen.failures and set(client.seen.statuses) == {200}


# -- 5. out of file descriptors ------------------------------------------------------------------------

def _response(s: ssl.SSLSocket) -> bytes:
    """One whole response (this test's are short, with a Content-Length), or b"" at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    m = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
    while m and len(body) < int(m.group(1)):
        body += s.recv(65536)
    return data


def _closed_by_server(s: ssl.SSLSocket) -> bool:
    s.settimeout(0)
    try:
        return s.recv(1) == b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True
    finally:
        s.settimeout(10)


class BusyClient(threading.Thread):
    """A client in the middle of its request: connects, sends part of a request head, and reads
    whatever comes (an answer at once: it was turned away); told to, it ends the head and reads
    its answer."""

    def __init__(self, srv: ServerProcess, go_on: threading.Event, started: threading.Semaphore) -> None:
        super().__init__(daemon=True)
        self.srv, self.go_on, self.started = srv, go_on, started
        self.answer = b""

    def run(self) -> None:
        try:
            with target(self.srv).connect(["http/1.1"], 10) as s:
                s.sendall(b"GET /style.css HTTP/1.1\r\nHost: localhost\r\n")
                self.started.release()
                ended = False
                deadline = time.monotonic() + 60
                while b"\r\n\r\n" not in self.answer and time.monotonic() < deadline:
                    if select.select([s], [], [], 0.05)[0]:
                        s.settimeout(0)  # readable may be a session ticket only, not an answer
                        try:
                            chunk = s.recv(65536)
                        except ssl.SSLWantReadError:
                            continue
                        finally:
                            s.settimeout(10)
                        if not chunk:
                            return
                        self.answer += chunk
                    elif self.go_on.is_set() and not ended:
                        s.sendall(b"\r\n")
                        ended = True
        except OSError as e:
            self.answer = f"{type(e).__name__}".encode()
            self.started.release()


# The open file limit of the test's server, and its clients: more keep-alive ones than the limit
# (room is made for them), and busy ones just past what the worker can hold.
FILES = 128
KEEP_ALIVE = FILES + 24
BUSY = FILES + 4


def _goaway_or_served(h2: RawH2) -> Frame | None:
    """The GOAWAY of a connection turned away, or None once the server acknowledged our
    SETTINGS (the connection is served)."""
    while True:
        f = h2.read_frame()
        if f.type == T.GOAWAY:
            return f
        if f.type == T.SETTINGS and f.flags & F.ACK:
            return None


def test_out_of_file_descriptors(certs: Certs, site: Path) -> None:
    """``ulimit -n 128``: a start-up warning with the numbers; 152 keep-alive clients are all
    served (the oldest idle connections are closed to make room); when every connection is busy
    the excess is answered 503 / GOAWAY at once instead of waiting in the queue; one log line a
    second at most."""
    srv = start(certs, "--expose-worker", "--no-access-log", "--no-http3", "--workers", "1", "--header-timeout", "60",
                site=site, open_files=FILES)
    clients: list[ssl.SSLSocket] = []
    try:
        srv.wait_for(rf"warning: --max-connections 4096 needs an open file limit of 4288 per worker, but it is "
                     rf"{FILES} \(ulimit -n; hard limit {FILES}\): past about {FILES - 20} open connections a "
                     r"worker closes idle ones and answers new ones 503 / GOAWAY")
        # Keep-alive clients, each served and left open: room is made by closing the oldest.
        mark = line_count(srv)
        started = time.monotonic()

        def keep_alive(_: int) -> ssl.SSLSocket:
            s = target(srv).connect(["http/1.1"], 10)
            s.sendall(b"GET /style.css HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert _response(s).startswith(b"HTTP/1.1 200 "), "a keep-alive client was not served"
            return s

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            clients += pool.map(keep_alive, range(KEEP_ALIVE))
        took = time.monotonic() - started
        srv.wait_for(rf"out of file descriptors \(ulimit -n {FILES}\) with \d+ connections open: .*closed \d+ idle",
                     start=mark)
        closed = sum(1 for s in clients if _closed_by_server(s))
        assert closed >= KEEP_ALIVE - FILES
        lines = [line for line in srv.lines[mark:] if "out of file descriptors" in line]
        assert lines and all("idle keep-alive connection" in line or "sent no ClientHello" in line for line in lines)
        assert len(lines) <= took + 2  # one a second at most
        print(f"\n[files] {KEEP_ALIVE} keep-alive clients served in {took:.1f} s, {closed} idle ones closed for them; "
              f"{len(lines)} log line(s), the last: {lines[-1]}")
        for s in clients:
            s.close()
        clients.clear()

        # Busy clients (a request head begun, not finished): nothing idle to close.
        with polite(srv) as beside:
            beside.wait_for(3)
            mark = line_count(srv)
            go_on, started = threading.Event(), threading.Semaphore(0)
            busy = [BusyClient(srv, go_on, started) for _ in range(BUSY)]
            for b in busy:
                b.start()
            for _ in busy:
                started.acquire(timeout=60)
            beside.wait_for(3)
            # The excess on HTTP/2: a GOAWAY naming no stream (nothing was processed: safe to retry).
            # A connection that still finds room (a descriptor that came free a moment ago) is
            # served: it is held open, taking that room, and the next one tried (bounded).
            held: list[RawH2] = []
            goaway = None
            try:
                for _ in range(40):
                    h2 = RawH2(srv.host, srv.port, srv.certs.client_context(), handshake=False)
                    h2.send(PREFACE + frame(T.SETTINGS, 0, 0))
                    goaway = _goaway_or_served(h2)
                    if goaway is not None:
                        break
                    held.append(h2)
            finally:
                for h in held:
                    h.close()
            assert goaway is not None and goaway.error_code == E.NO_ERROR and goaway.last_stream_id == 0, \
                f"{len(held)} HTTP/2 connections served, none turned away"
            go_on.set()  # the heads end: those accepted get their answer now
            for b in busy:
                b.join(60)
            answers = collections.Counter(b.answer[:12] for b in busy)
            beside.wait_for(3)  # served again
        print(f"[files] {BUSY} busy clients: {dict(answers)}")
        assert set(answers) == {b"HTTP/1.1 200", b"HTTP/1.1 503"}
        srv.wait_for(rf"out of file descriptors \(ulimit -n {FILES}\) with \d+ connections open: .*answered \d+ new "
                     r"ones? 503 / GOAWAY", start=mark)
        report(f"beside the {BUSY} busy clients", beside.seen)
        assert not beside.seen.failures and set(beside.seen.statuses) <= {200, 503, GOAWAY}
        assert srv.proc.poll() is None
    finally:
        for s in clients:
            s.close()
        finish(srv)
