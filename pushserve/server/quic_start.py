"""A worker's UDP socket until its first datagram: HTTP/3 is loaded when a client first uses it.

aioquic and what it imports (``cryptography``'s Rust extension alone is ~9 MiB resident,
pyOpenSSL and service_identity ~2.6, aioquic and pylsqpack ~2.1, our h3 modules ~1.5) make a
worker about 16 MiB larger.  A worker whose clients never speak HTTP/3 (API clients, benchmarks,
a browser before it has seen Alt-Svc) never needs them.  So the worker watches its slot's UDP
socket without reading it; when a datagram first waits there, it imports server/quic.py and
builds the QUIC configuration in a thread (the event loop keeps serving TCP and beating its
heartbeat meanwhile), then hands the socket to the ``QuicListener``, which reads what waits: the
datagram that woke it is the first it handles, none is lost.  Alt-Svc is sent from the start:
the port is bound and its datagrams queue in the kernel until they are read.

This module is the one place that decides when HTTP/3 is loaded; it imports nothing of aioquic.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pushserve.server.memory import give_back_memory
from pushserve.server.sockets import ask_destinations, wildcard
from pushserve.tls import Snapshot

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration

    from pushserve.server.connection import WorkerState
    from pushserve.server.quic import QuicListener

log = logging.getLogger("pushserve")


@dataclass(frozen=True)
class QuicSetup:
    """What a worker needs to serve HTTP/3: its slot's UDP socket, the certificate pair as
    checked (tls.Snapshot, closed once the QUIC configuration is built) and the shared secret."""

    sock: socket.socket
    certs: Snapshot
    secret: bytes  # the master's: retry tokens and reset tokens work in every worker


class QuicEndpoint:
    """The worker's HTTP/3 side: nothing but a watched socket until the first datagram, then a
    ``QuicListener``.  Has the listener's surface the worker uses (start, report,
    stop_accepting, close)."""

    def __init__(self, state: WorkerState, setup: QuicSetup) -> None:
        self.state = state
        self.setup = setup
        self.listener: QuicListener | None = None
        self.watching = False
        self.loading = False
        self.accepting = True
        self.certs_open = True

    def start(self) -> None:
        sock = self.setup.sock
        if wildcard(sock):  # before any datagram arrives: the kernel notes it with each one
            ask_destinations(sock)
        self.state.loop.add_reader(sock.fileno(), self._first_datagram)
        self.watching = True

    def _first_datagram(self) -> None:
        self._unwatch()
        self.loading = True
        threading.Thread(target=self._load, name="pushserve-h3-load", daemon=True).start()

    def _load(self) -> None:
        """In a thread: import HTTP/3 and build the QUIC configuration, then hand the result to
        the event loop."""
        started = time.perf_counter()
        result: QuicConfiguration | BaseException
        try:
            from pushserve.server.quic import configuration

            result = configuration(self.state.config, self.setup.certs)
        except Exception as e:
            result = e
        with contextlib.suppress(RuntimeError):  # the loop has closed: the worker is gone
            self.state.loop.call_soon_threadsafe(self._loaded, result, time.perf_counter() - started)

    def _loaded(self, result: QuicConfiguration | BaseException, seconds: float) -> None:
        self.loading = False
        self._close_certs()
        if isinstance(result, BaseException):
            log.error("h3: cannot serve HTTP/3 (%s: %s); this worker serves TCP only",
                      type(result).__name__, self.setup.certs.named(str(result)))
            alt_svc = [field for field in self.state.extra_headers if field[0] == b"alt-svc"]
            for field in alt_svc:  # clients are told no more to come over UDP
                self.state.extra_headers.remove(field)
            return
        from pushserve.server.quic import QuicListener

        self.listener = QuicListener(self.state, self.setup.sock, result, self.setup.secret)
        log.info("h3: loaded on the first datagram (%.0f ms)", seconds * 1000)
        give_back_memory()  # what the imports freed
        if self.accepting:
            self.listener.start()
            self.listener.read(self.setup.sock)  # what woke us, and whatever came since

    def report(self) -> None:
        if self.listener is not None:
            self.listener.report()

    def stop_accepting(self) -> None:
        """Draining: new connections are the next worker's (it reads the same slot socket)."""
        self.accepting = False
        self._unwatch()
        if self.listener is not None:
            self.listener.stop_accepting()

    def close(self) -> None:
        self.stop_accepting()
        if self.listener is not None:
            self.listener.close()
        elif not self.loading:  # else the thread still reads them; _loaded closes them
            self._close_certs()

    def _unwatch(self) -> None:
        if self.watching:
            self.state.loop.remove_reader(self.setup.sock.fileno())
            self.watching = False

    def _close_certs(self) -> None:
        if self.certs_open:
            self.certs_open = False
            self.setup.certs.close()
