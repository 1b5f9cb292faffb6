"""The load clients of the harness, h2load (HTTP/2, or HTTP/1.1 with ``--h1``) and wrk (HTTP/1.1),
run over TLS, and what their output says.

A run only gives a figure when every answer is accounted for: h2load must report every request
done and succeeded, every status 2xx, no failure, error or timeout, the protocol asked for, and
(when the body size is known) exactly that many body bytes per request.  wrk reports neither
2xx counts nor bodies: it flags statuses >= 400 ("Non-2xx or 3xx responses") and socket errors,
and either fails the run; a 3xx could only be caught with a Lua hook per response, which would
slow the client, so callers check a URL's HTTP/1.1 answers first with ``check_http1`` (Python's
http.client: h2load ``--h1`` counts a status line without a reason phrase, as Hypercorn sends
it, as a failure)."""

from __future__ import annotations

import http.client
import re
import ssl
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pushserve.bench.procs import BenchError, run_client

# (command, timeout in s) -> stdout; run_client pins the client to the client CPU.
Client = Callable[[Sequence[str], float], str]

_H2_ELAPSED = re.compile(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s")
_H2_COUNTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                        r"(\d+) failed, (\d+) errored, (\d+) timeout")
_H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_H2_DATA = re.compile(r"traffic: .*?\((\d+)\) data")
_H2_PROTOCOL = re.compile(r"Application protocol: (\S+)")
_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0}

_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: (.*)")


@dataclass(frozen=True)
class H2loadRun:
    protocol: str
    total: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    elapsed_s: float
    rate: float  # requests/s as h2load computes it (done / elapsed)
    data_bytes: int  # body bytes received (DATA payload on h2)

    def problem(self, protocol: str, body_bytes: int | None = None) -> str | None:
        """Why this run is not a valid measurement, or None when every answer was right."""
        if self.protocol != protocol:
            return f"negotiated {self.protocol!r}, not {protocol!r}"
        if not self.total or self.done != self.total or self.succeeded != self.total:
            return f"{self.succeeded} of {self.total} requests succeeded ({self.done} done)"
        if self.failed or self.errored or self.timeout:
            return f"{self.failed} failed, {self.errored} errored, {self.timeout} timed out"
        if self.status_2xx != self.total:
            return f"{self.status_2xx} of {self.total} answers were 2xx"
        if body_bytes is not None and self.data_bytes != body_bytes * self.total:
            return f"{self.data_bytes} body bytes for {self.total} x {body_bytes}"
        return None


def parse_h2load(out: str) -> H2loadRun:
    elapsed, counts = _H2_ELAPSED.search(out), _H2_COUNTS.search(out)
    status, data = _H2_STATUS.search(out), _H2_DATA.search(out)
    if not elapsed or not counts or not status or not data:
        raise BenchError(f"h2load output not understood: {out.strip()[-300:]}")
    protocol = _H2_PROTOCOL.search(out)
    total, _started, done, ok, failed, errored, timeout = (int(x) for x in counts.groups())
    return H2loadRun(protocol.group(1) if protocol else "none", total, done, ok, failed, errored,
                     timeout, int(status.group(1)), float(elapsed.group(1)) * _UNIT_S[elapsed.group(2)],
                     float(elapsed.group(3)), int(data.group(1)))


def h2load(url: str, requests: int, clients: int = 8, streams: int = 10, *,
           body_bytes: int | None = None, timeout: float = 300, client: Client = run_client,
           headers: Sequence[str] = ()) -> H2loadRun:
    """HTTP/2: ``requests`` in total over ``clients`` connections with ``streams`` in flight on
    each; BenchError unless every answer was right (see ``H2loadRun.problem``).  ``headers``: more
    request headers ("accept-encoding: gzip")."""
    cmd = ["h2load", "-c", str(clients), "-m", str(streams), "-n", str(requests),
           *(a for h in headers for a in ("-H", h)), url]
    run = parse_h2load(client(cmd, timeout))
    why = run.problem("h2", body_bytes)
    if why:
        raise BenchError(f"h2load {' '.join(cmd[1:-1])} {url}: {why}")
    return run


def check_http1(url: str, body_bytes: int, count: int = 20) -> None:
    """``count`` GETs on one HTTP/1.1 keep-alive connection over TLS: each must be 2xx with a
    body of ``body_bytes``.  Loopback only, so the certificate is not verified."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise BenchError(f"not a loopback URL: {url}")
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    tls.set_alpn_protocols(["http/1.1"])
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=tls, timeout=30)
    try:
        for _ in range(count):
            conn.request("GET", parts.path)
            answer = conn.getresponse()
            body = answer.read()
            if not 200 <= answer.status < 300 or len(body) != body_bytes:
                raise BenchError(f"HTTP/1.1 GET {url}: status {answer.status}, {len(body)} body bytes")
    except (OSError, http.client.HTTPException) as e:
        raise BenchError(f"HTTP/1.1 GET {url}: {e}") from None
    finally:
        conn.close()


@dataclass(frozen=True)
class WrkRun:
    requests: int
    rate: float
    non_2xx_3xx: int
    socket_errors: str | None

    def problem(self) -> str | None:
        if self.socket_errors:
            return f"socket errors: {self.socket_errors}"
        if self.non_2xx_3xx:
            return f"{self.non_2xx_3xx} answers not 2xx/3xx"
        if not self.requests:
            return "no requests completed"
        return None


def parse_wrk(out: str) -> WrkRun:
    rate, total = _WRK_RATE.search(out), _WRK_TOTAL.search(out)
    if not rate or not total:
        raise BenchError(f"wrk output not understood: {out.strip()[-300:]}")
    non_2xx, socket = _WRK_NON_2XX.search(out), _WRK_SOCKET.search(out)
    return WrkRun(int(total.group(1)), float(rate.group(1)), int(non_2xx.group(1)) if non_2xx else 0,
                  socket.group(1).strip() if socket else None)


def wrk(url: str, duration: int, connections: int = 8, *, client: Client = run_client) -> WrkRun:
    """HTTP/1.1 over TLS (wrk offers no ALPN, so servers fall back to http/1.1): one thread,
    ``connections`` keep-alive connections with one request in flight each, for ``duration`` s."""
    run = parse_wrk(client(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", url], duration + 60))
    why = run.problem()
    if why:
        raise BenchError(f"wrk -c{connections} {url}: {why}")
    return run
