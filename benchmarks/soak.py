"""``python -m benchmarks.soak [--minutes 10]``: mixed traffic against one pushserve for minutes.

pushserve (``--workers 2``, loopback, a throwaway certificate) serves a generated site while
client threads, each at a bounded rate, make:

- page loads as a browser does over HTTP/2: the page, then its 40 resources at once (pushes
  accepted), every body checked;
- HTTP/1.1 keep-alive requests for small files;
- big downloads (8 MiB, checked by SHA-256), alternating HTTP/2 and HTTP/1.1;
- slow readers: 1 MiB over HTTP/1.1, read 32 KiB every 0.1 s (about 5 s a download);
- resets: a big download over HTTP/2 cancelled (RST_STREAM) after its first 64 KiB, then a
  small request on the same connection that must succeed;
- disconnects: a big download cut off mid-body by closing the socket;

and the master gets a SIGHUP (rolling restart) every minute.  Every ``--report-every`` seconds
a line gives each worker's RSS and open file descriptors (from /proc) and the counts so far;
a table at the end sums it up.  Exit status 1 when a well-behaved request failed (page loads,
HTTP/1.1, downloads, slow readers and the request after a reset must all succeed) or was refused
by a restart's GOAWAY (retried, as browsers do, but h2load counts it as failed), a worker
crashed, or the server died.

About 100 responses a second in all (2 page loads and 20 HTTP/1.1 requests a second, a big
download every 3 s, a slow reader every 6 s, a reset and a disconnect every second): the point
is hours-long behaviour in minutes (memory, descriptors, restarts), not speed, so nothing is
pinned with taskset and the rate stays far below what the server can do.

Not part of the test suite: it runs for minutes.  Every loop is bounded by the deadline and by
a count, every socket by a timeout.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from h2.exceptions import H2Error

from pushserve.bench.certs import make_cert
from tests.support.h2client import H2Client

RESOURCES = 40
BIG = 8 * 1024 * 1024
SLOW = 1024 * 1024
SLOW_PIECE, SLOW_PAUSE = 32 * 1024, 0.1
TIMEOUT = 30.0  # any one socket operation
_READY = re.compile(r" at https://[^/\s]+:(\d+)/")
_TROUBLE = re.compile(r"Traceback|starting a new one|event loop blocked|reload failed")

# Traffic kinds whose every request must succeed, and those expected to be cut short.
WELL_BEHAVED = ("page", "h1", "download", "slow", "after-reset")
ROUGH = ("reset", "disconnect")


# -- the site -------------------------------------------------------------------------------------


def make_site(root: Path) -> dict[str, bytes]:
    """A page with RESOURCES stylesheets, scripts and images, a big and a medium file; returns the
    expected body of every static path."""
    bodies: dict[str, bytes] = {}
    for i in range(RESOURCES):
        kind = ("css", "js", "img")[i % 3]
        name = {"css": f"css/s{i}.css", "js": f"js/m{i}.js", "img": f"img/i{i}.svg"}[kind]
        body = (f"/* {name} */\n" + "x" * (200 + 150 * i) + "\n").encode()
        if kind == "img":
            body = f'<svg xmlns="http://www.w3.org/2000/svg"><!-- {"y" * 100 * i} --></svg>\n'.encode()
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
        bodies["/" + name] = body
    links = "\n".join(
        f'<link rel="stylesheet" href="/{p[1:]}">' if p.endswith(".css")
        else f'<script type="module" src="/{p[1:]}"></script>' if p.endswith(".js")
        else f'<img src="/{p[1:]}" alt="">' for p in bodies)
    (root / "index.html").write_text(f"<!doctype html><html><head><title>soak</title>\n{links}\n</head>"
                                     "<body><p>soak</p></body></html>\n")
    big = os.urandom(BIG)
    (root / "big.bin").write_bytes(big)
    bodies["/big.bin"] = big
    slow = os.urandom(SLOW)
    (root / "slow.bin").write_bytes(slow)
    bodies["/slow.bin"] = slow
    return bodies


# -- the server -----------------------------------------------------------------------------------


class Server:
    """pushserve in its own session, its output collected by a thread (for the port and for
    lines that mean trouble)."""

    def __init__(self, site: Path, tmp: Path, workers: int) -> None:
        cert = make_cert(tmp)
        self.ca_file = tmp / "ca" / "rootCA.pem"
        cmd = [sys.executable, "-m", "pushserve", str(site), "--port", "0", "--cert", str(cert.cert),
               "--key", str(cert.key), "--cert-dir", str(tmp / "certs"), "--no-access-log",
               "--workers", str(workers)]
        env = {**os.environ, "PUSHSERVE_CAROOT": str(tmp / "ca")}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     text=True, env=env, start_new_session=True)
        self.lines: list[str] = []
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(60) or not self.port:
            self.stop()
            raise SystemExit("soak: pushserve did not start:\n" + "\n".join(self.lines[-20:]))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = _READY.search(line)
            if m and not self.port:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def workers(self) -> list[int]:
        """The master's children now (a rolling restart briefly shows old and new ones)."""
        pid = self.proc.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def trouble(self) -> list[str]:
        return [line for line in list(self.lines) if _TROUBLE.search(line)]

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue


def proc_stats(pid: int) -> tuple[float, int] | None:
    """(RSS in MiB, open fds) of a process, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    m = re.search(r"VmRSS:\s+(\d+) kB", status)
    return (int(m.group(1)) / 1024 if m else 0.0), fds


# -- the clients ------------------------------------------------------------------------------------


@dataclass
class Tally:
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)  # refused above a GOAWAY's last stream
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, ok: bool, why: str = "") -> None:
        with self.lock:
            (self.ok if ok else self.failed)[kind] += 1
            if not ok and len(self.examples) < 20:
                self.examples.append(f"{time.strftime('%H:%M:%S')} {kind}: {why}")

    def retry(self, kind: str) -> None:
        with self.lock:
            self.retried[kind] += 1


class Clients:
    def __init__(self, port: int, ca_file: Path, bodies: dict[str, bytes], tally: Tally) -> None:
        self.port = port
        self.ca_file = ca_file
        self.bodies = bodies
        self.digest = {path: hashlib.sha256(body).hexdigest() for path, body in bodies.items()}
        self.tally = tally
        self.resources = [p for p in bodies if p not in ("/big.bin", "/slow.bin")]

    def ctx(self, alpn: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.set_alpn_protocols([alpn])
        return ctx

    def h2(self) -> H2Client:
        return H2Client("127.0.0.1", self.port, self.ctx("h2"), timeout=TIMEOUT)

    def h1(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("localhost", self.port, context=self.ctx("http/1.1"), timeout=TIMEOUT)

    def _fetch(self, kind: str, client: H2Client, paths: list[str], checked: set[int]) -> tuple[list[str], set[str]]:
        """GET ``paths`` at once on ``client`` and check every answer, pushes included.  Returns
        the paths the server refused with its GOAWAY (streams above the last stream id: safe to
        retry, and browsers do) and the paths it pushed."""
        sids = {client.request(p): p for p in paths}
        _read_until(client, lambda: all(r.done for r in client.replies.values()))
        last = client.goaway.last_stream_id if client.goaway is not None else None
        retry = []
        for sid, path in sids.items():
            reply = client.replies[sid]
            checked.add(sid)
            if reply.done and reply.reset is None:
                self._check_h2(kind, path, reply.headers, bytes(reply.body))
            elif last is not None and sid > last:
                self.tally.retry(kind)
                retry.append(path)
            else:
                self.tally.add(kind, False, f"{path}: stream {sid} done={reply.done} reset={reply.reset} "
                               f"goaway={client.goaway} closed={client.closed}")
        pushed = set()
        for sid, reply in list(client.replies.items()):
            if reply.promised_by is not None and reply.done and sid not in checked:
                checked.add(sid)
                if reply.reset is None:
                    pushed.add(reply.path.decode())
                    self._check_h2(kind, reply.path.decode(), reply.headers, bytes(reply.body))
        return retry, pushed

    def _check_h2(self, kind: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        status = dict(headers).get(b":status")
        good = status == b"200" and (path not in self.bodies or body == self.bodies[path])
        self.tally.add(kind, good, f"{path}: status {status!r}, {len(body)} bytes")

    def _h2_visit(self, kind: str, *batches: list[str], client: H2Client | None = None) -> None:
        """Fetch the batches one after the other on one connection (``client``, else a new one),
        as a browser loads a page and then what it names; what a GOAWAY refused is fetched again
        on a new connection (once)."""
        retry: list[str] = []
        pushed: set[str] = set()
        checked: set[int] = set()
        client = client or self.h2()
        try:
            for batch in batches:
                todo = [p for p in batch if p not in pushed]
                if client.goaway is not None or client.closed:
                    retry += todo
                    continue
                refused, got = self._fetch(kind, client, todo, checked)
                retry += refused
                pushed |= got
        finally:
            client.close()
        if retry:
            client = self.h2()
            try:
                refused, _ = self._fetch(kind, client, retry, set())
            finally:
                client.close()
            for path in refused:
                self.tally.add(kind, False, f"{path}: refused twice")

    def page_load(self, i: int) -> None:
        self._h2_visit("page", ["/"], self.resources)

    def h1_requests(self, i: int) -> None:
        """Ten keep-alive requests on one connection."""
        conn = self.h1()
        try:
            for n in range(10):
                path = self.resources[(i * 10 + n) % len(self.resources)]
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                self.tally.add("h1", resp.status == 200 and body == self.bodies[path],
                               f"{path}: {resp.status}, {len(body)} bytes")
                if resp.will_close:
                    conn.close()  # the server asked to close (a draining worker): a new connection next
        finally:
            conn.close()

    def download(self, i: int) -> None:
        if i % 2:
            self._h2_visit("download", ["/big.bin"])
            return
        conn = self.h1()
        try:
            conn.request("GET", "/big.bin")
            resp = conn.getresponse()
            digest = hashlib.sha256(resp.read()).hexdigest()
            self.tally.add("download", resp.status == 200 and digest == self.digest["/big.bin"],
                           f"h1 big.bin: {resp.status}")
        finally:
            conn.close()

    def slow_reader(self, i: int) -> None:
        conn = self.h1()
        try:
            conn.request("GET", "/slow.bin")
            resp = conn.getresponse()
            h = hashlib.sha256()
            for _ in range(SLOW // SLOW_PIECE + 2):
                piece = resp.read(SLOW_PIECE)
                if not piece:
                    break
                h.update(piece)
                time.sleep(SLOW_PAUSE)  # the point of the exercise: a client that reads slowly
            self.tally.add("slow", resp.status == 200 and h.hexdigest() == self.digest["/slow.bin"],
                           f"slow.bin: {resp.status}")
        finally:
            conn.close()

    def reset(self, i: int) -> None:
        client = self.h2()
        try:
            sid = client.request("/big.bin")
            reply = client.replies[sid]
            _read_until(client, lambda: len(reply.body) >= 64 * 1024 or reply.done)
            if client.goaway is not None or client.closed:  # a restart came first: nothing to cancel
                self.tally.add("reset", True)
                self._h2_visit("after-reset", [self.resources[i % len(self.resources)]])
                return
            client.reset(sid)
            self.tally.add("reset", True)
            self._h2_visit("after-reset", [self.resources[i % len(self.resources)]], client=client)
        finally:
            client.close()

    def disconnect(self, i: int) -> None:
        """Ask for the big file and hang up after its first 100 KiB, with a TCP reset."""
        if i % 2:
            client = self.h2()
            reply = client.replies[client.request("/big.bin")]
            _read_until(client, lambda: len(reply.body) >= 100 * 1024 or reply.done)
            sock: socket.socket = client.sock
        else:
            conn = self.h1()
            conn.request("GET", "/big.bin")
            resp = conn.getresponse()
            resp.read(100 * 1024)
            assert conn.sock is not None
            sock = conn.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        self.tally.add("disconnect", True)


def _read_until(client: H2Client, done: Callable[[], bool], reads: int = 20_000) -> None:
    """Read from ``client`` until ``done()``, the connection ends, or ``reads`` reads (each one
    bounded by the socket timeout).  After a GOAWAY, only until the streams the server still
    answers (up to its last stream id, and its pushes) are done: the others never will be."""
    for _ in range(reads):
        if done() or client.closed:
            return
        goaway = client.goaway
        if goaway is not None and all(r.done for sid, r in client.replies.items()
                                      if sid % 2 == 0 or sid <= goaway.last_stream_id):
            return
        client.read_once()


def paced(name: str, action: Callable[[int], None], every: float, deadline: float, tally: Tally,
          stop: threading.Event) -> threading.Thread:
    """Run ``action(i)`` once every ``every`` seconds (or as soon as the last one ended) until the
    deadline; bounded in count as well.  An exception is a failure of that kind, and the loop
    goes on."""
    limit = int((deadline - time.monotonic()) / every) + 1

    def loop() -> None:
        start = time.monotonic()
        for i in range(limit):
            if stop.is_set() or time.monotonic() >= deadline:
                return
            try:
                action(i)
            except (OSError, AssertionError, http.client.HTTPException, ValueError, H2Error) as exc:
                tally.add(name, False, f"{type(exc).__name__}: {exc}"[:200])
            stop.wait(max(0.0, start + (i + 1) * every - time.monotonic()))

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    workers: dict[int, tuple[float, int]]  # pid -> (RSS MiB, fds)
    restarts: int
    ok: int
    failed: int


def run(minutes: float, workers: int, report_every: float, restart_every: float) -> int:
    tally = Tally()
    samples: list[Sample] = []
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmpdir:
        tmp = Path(tmpdir)
        site = tmp / "site"
        site.mkdir()
        bodies = make_site(site)
        server = Server(site, tmp, workers)
        try:
            clients = Clients(server.port, server.ca_file, bodies, tally)
            begin = time.monotonic()
            deadline = begin + minutes * 60
            print(f"soak: pushserve on port {server.port}, {workers} workers, {minutes:g} min; "
                  f"SIGHUP every {restart_every:g} s", flush=True)
            threads = [
                paced("page", clients.page_load, 0.5, deadline, tally, stop),
                paced("h1", clients.h1_requests, 0.5, deadline, tally, stop),
                paced("download", clients.download, 3.0, deadline, tally, stop),
                paced("slow", clients.slow_reader, 6.0, deadline, tally, stop),
                paced("reset", clients.reset, 1.0, deadline, tally, stop),
                paced("disconnect", clients.disconnect, 1.0, deadline, tally, stop),
            ]
            restarts = 0
            next_restart = begin + restart_every
            next_report = begin
            for _tick in range(int(minutes * 60 / 0.05) + 10):  # each turn waits >= 0.05 s
                if time.monotonic() >= deadline or server.proc.poll() is not None:
                    break
                now = time.monotonic()
                if now >= next_report:
                    samples.append(sample(server, now - begin, restarts, tally))
                    print(report_line(samples[-1], tally), flush=True)
                    next_report += report_every
                if now >= next_restart:
                    os.kill(server.proc.pid, signal.SIGHUP)
                    restarts += 1
                    next_restart += restart_every
                stop.wait(max(0.05, min(next_report, next_restart, deadline) - time.monotonic()))
            stop.set()
            for t in threads:
                t.join(TIMEOUT * 2)
            died = server.proc.poll()
            samples.append(sample(server, time.monotonic() - begin, restarts, tally))
            print(report_line(samples[-1], tally), flush=True)
        finally:
            stop.set()
            server.stop()
        trouble = server.trouble()
    print(summary(samples, tally, trouble, died))
    bad = sum(tally.failed[k] for k in WELL_BEHAVED)
    refused = sum(tally.retried.values())
    return 1 if bad or refused or died is not None or trouble else 0


def sample(server: Server, at: float, restarts: int, tally: Tally) -> Sample:
    stats = {pid: s for pid in server.workers() if (s := proc_stats(pid)) is not None}
    with tally.lock:
        ok, failed = sum(tally.ok.values()), sum(tally.failed[k] for k in WELL_BEHAVED)
    return Sample(at, stats, restarts, ok, failed)


def report_line(s: Sample, tally: Tally) -> str:
    workers = "  ".join(f"{pid}: {rss:5.1f} MiB {fds:3d} fds" for pid, (rss, fds) in sorted(s.workers.items()))
    return (f"t={s.at:6.0f}s restarts={s.restarts}  {workers}  |  ok={s.ok} failed(well-behaved)={s.failed} "
            f"retried={sum(tally.retried.values())}")


def summary(samples: list[Sample], tally: Tally, trouble: list[str], died: int | None) -> str:
    lines = ["", "time    restarts  workers (pid: RSS MiB / fds)"]
    for s in samples:
        lines.append(f"{s.at:6.0f}s  {s.restarts:8d}  " + "  ".join(
            f"{pid}: {rss:5.1f}/{fds}" for pid, (rss, fds) in sorted(s.workers.items())))
    rss = [r for s in samples for r, _ in s.workers.values()]
    fds = [f for s in samples for _, f in s.workers.values()]
    if rss:
        lines.append(f"worker RSS {min(rss):.1f}..{max(rss):.1f} MiB; open fds {min(fds)}..{max(fds)}")
    lines += ["", f"{'kind':<12} {'ok':>8} {'failed':>7} {'retried':>8}  must all succeed"]
    for kind in (*WELL_BEHAVED, *ROUGH):
        lines.append(f"{kind:<12} {tally.ok[kind]:>8} {tally.failed[kind]:>7} {tally.retried[kind]:>8}  "
                     f"{'yes' if kind in WELL_BEHAVED else 'no (cut short on purpose)'}")
    bad = sum(tally.failed[k] for k in WELL_BEHAVED)
    lines.append(f"failed well-behaved requests: {bad}")
    # A browser retries these and the page still loads, but h2load counts them as failed, and a
    # restart must lose nothing (RFC 9113 §6.8's two-step GOAWAY refuses no stream in flight).
    lines.append(f"requests refused by a restart's GOAWAY (retried here, failed for h2load): "
                 f"{sum(tally.retried.values())}")
    lines += [f"  {e}" for e in tally.examples]
    lines.append(f"server log lines that mean trouble: {len(trouble)}")
    lines += [f"  {t}" for t in trouble[:10]]
    if died is not None:
        lines.append(f"the server exited during the run ({died})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long (10)")
    p.add_argument("--workers", type=int, default=2, help="pushserve workers (2)")
    p.add_argument("--report-every", type=float, default=10.0, metavar="S", help="seconds between reports (10)")
    p.add_argument("--restart-every", type=float, default=60.0, metavar="S", help="seconds between SIGHUPs (60)")
    ns = p.parse_args(argv)
    if ns.minutes <= 0 or ns.workers < 1 or ns.report_every <= 0 or ns.restart_every <= 0:
        p.error("--minutes, --workers, --report-every and --restart-every must be above 0")
    return run(ns.minutes, ns.workers, ns.report_every, ns.restart_every)


if __name__ == "__main__":
    raise SystemExit(main())
