"""One HTTP/3 connection of a worker: the asyncio-side twin of server/connection.py's
``Connection`` for QUIC.  It feeds the connection's datagrams to its ``H3Core``, hands each
request to the worker's app as a Stream and routes the streams' events (``EventRouting``, the
same code as for TCP; this class is the streams' ``StreamHost``), and sends what the core has
to send — on the connection's own connected socket (server/quic.py), or the slot socket when
the client has moved.

It has the surface the worker's sweep and drain use on every connection (``served_any``,
``started``, ``sweep``, ``shutdown``, ``close_idle``, ``abort``, ``core``), so a worker keeps its
TCP and QUIC connections in one set.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
import time
from dataclasses import replace
from typing import Protocol

from pushserve.exchange import ConnectionInfo, StreamHandler
from pushserve.protocol.events import ConnectionTerminated, ServerCore
from pushserve.protocol.h3 import H3Core
from pushserve.server.connection import WorkerState
from pushserve.server.streams import EventRouting

log = logging.getLogger("pushserve")

# Error codes that end a connection normally (H3_NO_ERROR, QUIC NO_ERROR): no log line.
_QUIET = frozenset({0x0, 0x100})

_UDP_SEGMENT = 103  # Linux; Python 3.11's socket module lacks the name
_GSO_MAX = 64  # segments the kernel takes in one send
_gso = hasattr(socket, "SOL_UDP")


def _send_run(sock: socket.socket, run: list[bytes], size: int) -> None:
    """Datagrams of ``size`` bytes (the last may be shorter) in one send where the kernel
    segments them, else one by one."""
    global _gso
    if len(run) == 1 or not _gso:
        for data in run:
            sock.send(data)
        return
    try:
        sock.sendmsg([b"".join(run)], [(socket.SOL_UDP, _UDP_SEGMENT, size.to_bytes(2, sys.byteorder))])
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EIO):
            raise
        _gso = False  # a kernel or device without UDP GSO: one by one from now on
        for data in run:
            sock.send(data)


class Endpoint(Protocol):
    """What a connection uses of the worker's UDP endpoint (server/quic.py's QuicListener)."""

    state: WorkerState
    loop: asyncio.AbstractEventLoop
    local: tuple[str, int]
    routes: dict[bytes, QuicSession]

    def now(self) -> float:
        """The endpoint's clock (the event loop's; a test's own in memory)."""

    def send(self, data: bytes, addr: tuple[str, int]) -> None: ...

    def schedule(self, session: QuicSession, when: float | None) -> None: ...

    def forget(self, session: QuicSession) -> None: ...


class QuicSession(EventRouting):
    worker: WorkerState

    def __init__(self, listener: Endpoint, core: H3Core, peer: tuple[str, int], local: tuple[str, int],
                 sock: socket.socket | None) -> None:
        self.listener = listener
        self.worker = listener.state
        self.loop = listener.loop
        self.h3 = core
        self.core: ServerCore = core  # the same core, as the Exchange interface names it
        self.sock = sock
        self.peer = peer
        host = f"[{peer[0]}]" if ":" in peer[0] else peer[0]
        self.info = ConnectionInfo(f"{host}:{peer[1]}", (peer[0], peer[1]), (local[0], listener.local[1]),
                                   tls_version="TLSv1.3", alpn="h3")
        self.handlers: dict[int, StreamHandler] = {}
        self.pushed: set[str] = set()
        self.route_list: list[bytes] = []
        self.closed = False
        self.served_any = False
        self.flushing = False
        self.flush_again = False
        self.flush_scheduled = False
        self.timer_at: float | None = None
        self.started = self.last_activity = self.progress_at = listener.now()
        self.progress = -1
        self.received_at = time.perf_counter()

    # -- datagrams in --------------------------------------------------------------------------------

    def receive(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        if self.closed:
            return
        self.last_activity = now
        self.received_at = time.perf_counter()
        handshaking = self.h3.handshake_pending
        self.handle_events(self.h3.receive_datagram(data, addr, now))
        if handshaking and self.h3.handshake_complete:
            self.info = replace(self.info, cipher=self.h3.cipher)

    def on_timer(self, now: float) -> None:
        self.handle_events(self.h3.handle_timer(now))
        self.transmit()

    def route_ids(self) -> None:
        """Route the connection IDs the core issued to us, and forget those it retired."""
        core = self.h3
        routes = self.listener.routes
        for cid in core.cids_issued:
            routes[cid] = self
            self.route_list.append(cid)
        core.cids_issued.clear()
        for cid in core.cids_retired:
            if routes.get(cid) is self:
                del routes[cid]
        core.cids_retired.clear()

    # -- events ---------------------------------------------------------------------------------------

    def connection_ended(self, ev: ConnectionTerminated) -> None:
        for handler in list(self.handlers.values()):
            handler.on_reset()
        self.handlers.clear()
        if ev.error_code not in _QUIET and ev.reason != "Idle timeout":
            log.warning("%s h3: %s", self.info.peer, ev.reason or f"closed with error 0x{ev.error_code:x}")

    def stream_failed(self, reason: str) -> None:
        log.warning("%s h3: %s", self.info.peer, reason)

    # -- what a stream may ask of its connection (server/streams.py's StreamHost) --------------------

    def pause_reading(self, reason: str) -> None:
        """Nothing to do: a QUIC connection's request body is credited only as it is consumed
        (protocol/h3/quic.py), so a slow consumer already holds the client back."""

    def resume_reading(self, reason: str) -> None:
        pass

    def flush(self) -> None:
        self.transmit()

    def flush_soon(self) -> None:
        """Send once the tasks that are ready now have run: responses finished in the same loop
        turn share datagrams."""
        if not self.flush_scheduled and not self.closed:
            self.flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self.flush_scheduled = False
        self.transmit()

    # -- datagrams out --------------------------------------------------------------------------------

    def transmit(self) -> None:
        """Send what the core has; handle what sending gave rise to; arm the next timer."""
        if self.closed:
            return
        if self.flushing:
            self.flush_again = True
            return
        core = self.h3
        self.flushing = True
        try:
            while not self.closed:
                self.flush_again = False
                datagrams = core.datagrams_to_send(self.listener.now())
                if datagrams:
                    self._send(datagrams)
                events = core.next_events()
                if events:
                    self.handle_events(events)
                    continue
                if self.flush_again:
                    continue
                if len(datagrams) >= 256:  # more to send: after the other connections had a turn
                    self.flush_soon()
                break
        finally:
            self.flushing = False
        if self.closed:
            return
        self.route_ids()
        if core.terminated:
            self.finish()
        else:
            self.listener.schedule(self, core.timer())

    def _send(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
        """Send on the connection's own socket, runs of equal-sized datagrams in one system call
        each (UDP generic segmentation offload: the kernel cuts them apart)."""
        sock = self.sock
        peer = self.peer
        run: list[bytes] = []
        size = 0
        try:
            for data, addr in datagrams:
                if sock is None or addr != peer:
                    self.listener.send(data, addr)
                    continue
                if run and (len(data) > size or len(run) == _GSO_MAX):
                    _send_run(sock, run, size)
                    run = []
                if not run:
                    size = len(data)
                run.append(data)
                if len(data) < size:  # a shorter one ends a run
                    _send_run(sock, run, size)
                    run = []
            if run and sock is not None:
                _send_run(sock, run, size)
        except (BlockingIOError, InterruptedError):
            pass  # the socket buffer is full: lost datagrams, which QUIC's loss recovery resends
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                self.loop.call_soon(self.abort, f"the client's address is unreachable ({e.strerror})")

    def finish(self) -> None:
        """The connection is over: routes, socket and handlers go."""
        if self.closed:
            return
        self.closed = True
        self.listener.forget(self)
        for handler in list(self.handlers.values()):
            handler.on_reset()
        self.handlers.clear()

    # -- timers and shutdown (driven by the worker) ---------------------------------------------------

    def stalled(self, away: float) -> None:
        self.started += away
        self.last_activity += away
        self.progress_at += away

    def sweep(self, now: float) -> None:
        """The time limits of server/connection.py's ``Connection.sweep``, for QUIC: a handshake
        or request head that takes too long, an idle connection, requests with nothing moving."""
        if self.closed:
            return
        limits = self.worker.config.limits
        core = self.h3
        if core.handshake_pending:
            if now - self.started > limits.header_timeout:
                self.drop()
        elif core.awaiting_head or not self.served_any:
            if now - self.last_activity > limits.header_timeout:
                self.abort("request head timeout")
        elif core.open_streams == 0 and not self.handlers:
            if now - self.last_activity > limits.idle_timeout:
                self.close_idle()
        else:
            progress = core.progress()
            if progress != self.progress:
                self.progress, self.progress_at = progress, now
            elif now - self.progress_at > limits.idle_timeout:
                self.abort(f"no progress for {limits.idle_timeout:g} s with requests in flight")

    def shutdown(self) -> None:
        """Graceful: the two-step GOAWAY (the drain calls this twice), open streams finished."""
        if not self.closed:
            self.h3.close()
            self.transmit()

    def close_idle(self) -> None:
        if not self.closed:
            self.h3.close()
            self.h3.close()
            self.transmit()

    def abort(self, why: str) -> None:
        """Close now, telling the client why (one CONNECTION_CLOSE), without the closing period."""
        if self.closed:
            return
        log.info("%s h3: closing: %s", self.info.peer, why)
        self.h3.abort(why)
        self.transmit()
        self.finish()

    def drop(self) -> None:
        """Forget a connection that never finished its handshake, without a word."""
        log.debug("%s h3: handshake timeout", self.info.peer)
        self.finish()
