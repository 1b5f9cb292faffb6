"""One worker process: an event loop (uvloop), a TLS listener, the app it was handed, and a
graceful drain.

The worker is told its listening socket (bound by the supervisor, or by itself for one worker)
and a factory for its app, serves until SIGTERM/SIGINT, then stops accepting, asks the app to end
its endless responses, sends GOAWAY / closes idle keep-alive connections, and gives in-flight
requests ``graceful_timeout`` seconds to finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvloop

from pushserve.config import Config, ConfigError
from pushserve.exchange import App
from pushserve.server.admission import Admission
from pushserve.server.connection import Open, WorkerState
from pushserve.server.memory import give_back_memory, keep_buffers_in_heap
from pushserve.server.unavailable import Unavailable

if TYPE_CHECKING:  # only a worker that serves HTTP/3 imports it (aioquic: on its first datagram)
    from pushserve.server.quic_start import QuicEndpoint, QuicSetup

log = logging.getLogger("pushserve")


AppFactory = Callable[[Config], App]


async def serve(config: Config, ssl_ctx: ssl.SSLContext, sock: socket.socket,
                build: AppFactory, *, ready: Callable[[], None] | None = None,
                stand_by: Callable[[str], None] | None = None, quic: QuicSetup | None = None) -> None:
    """``stand_by``: when given, a worker that cannot build or start its app serves 503
    (server/unavailable.py) and calls it with the reason, instead of failing."""
    loop = asyncio.get_running_loop()
    app = await _start_app(config, build, stand_by)
    state = WorkerState(config, app, loop)
    if config.expose_worker:
        state.extra_headers.append((b"x-pushserve-worker", str(os.getpid()).encode()))
    endpoint: QuicEndpoint | None = None
    if quic is not None:
        from pushserve.server.quic_start import QuicEndpoint

        endpoint = QuicEndpoint(state, quic)
        # Every response says where HTTP/3 is: a browser moves there from TCP, and over HTTP/3
        # the same field keeps the alternative fresh in its cache.
        state.extra_headers.append((b"alt-svc", b'h3=":%d"; ma=86400' % quic.sock.getsockname()[1]))
    keep_buffers_in_heap()
    give_back_memory()  # what the imports and the app's start freed (about 1.3 MB of a worker's 32)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # the handler only flags; shutdown runs below
    sock.listen(config.limits.backlog)  # the master has it listening already; this is the backlog
    admission = Admission(state, sock, ssl_ctx)
    accepting = loop.create_task(admission.accept())
    if endpoint is not None:
        endpoint.start()
    sweeper = loop.create_task(_sweep(state, admission, endpoint))
    if ready is not None:
        ready()
    try:
        await stop.wait()
    finally:
        sweeper.cancel()
        app.drain()  # responses that never end by themselves (live reload) end now, or the drain waits
        await _drain(state, admission, accepting, sock, endpoint)
        await app.shutdown()


async def _start_app(config: Config, build: AppFactory, stand_by: Callable[[str], None] | None) -> App:
    try:
        app = build(config)
        await app.startup()
    except Exception as e:
        if stand_by is None:
            raise
        stand_by(str(e) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}")
        return Unavailable()
    return app


async def _sweep(state: WorkerState, admission: Admission, endpoint: QuicEndpoint | None) -> None:
    swept = state.loop.time()
    while True:
        await asyncio.sleep(1.0)
        now = state.loop.time()
        # Time the worker itself did not run (its loop blocked, the process stopped or starved)
        # is not the clients' slowness: their timeouts do not count it.
        away = now - swept - 1.0
        if away > STALL:
            for conn in state.connections:
                conn.stalled(away)
        swept = now
        admission.sweep(now)
        for conn in list(state.connections):
            conn.sweep(now)
        state.report_refused()
        state.room.report(len(state.connections))
        if endpoint is not None:
            endpoint.report()
        trim_memory(state, now)


# A sweep this much later than due means the worker was not running (see _sweep).
STALL = 0.5


# Freed memory goes back to the OS once the connection count has fallen by this much from its
# peak, or to nothing, at most every TRIM_EVERY seconds: glibc keeps what per-connection TLS
# buffers freed (fragmented), so a flood of connections would otherwise leave the worker hundreds
# of MB large, and a worker that served a burst would keep its peak while idle.
TRIM_DROP = 64
TRIM_EVERY = 5.0


def trim_memory(state: WorkerState, now: float) -> None:
    load = len(state.connections) + state.handshaking
    flood = state.peak_load - load >= TRIM_DROP
    if not (flood or (load == 0 and state.peak_load > 0)) or now - state.trimmed_at < TRIM_EVERY:
        return
    started = time.perf_counter()
    give_back_memory()
    (log.info if flood else log.debug)("connections fell from %d to %d: memory given back to the OS (%.1f ms)",
                                       state.peak_load, load, (time.perf_counter() - started) * 1000)
    state.peak_load = load
    state.trimmed_at = now


# A connection accepted just before the listener closed may not have sent its first request yet
# (in a rolling restart the client cannot know this worker is leaving): it gets this long to send
# it before it is closed, so that request is answered instead of failed.
FRESH_GRACE = 1.0


# An HTTP/1.1 connection found idle when the worker began to drain is kept this long for the
# request its client may already have sent (it is answered with Connection: close), then closed;
# an HTTP/2 client that has not answered the drain's PING by then gets the final GOAWAY.
IDLE_GRACE = 2.0


async def _drain(state: WorkerState, admission: Admission, accepting: asyncio.Task[None],
                 sock: socket.socket, endpoint: QuicEndpoint | None) -> None:
    accepting.cancel()
    # Our copy of the listening socket goes; the master's keeps it open (and its queue waiting)
    # for the slot's next worker, unless the slot itself is going away.
    sock.close()
    if endpoint is not None:  # the same for the UDP socket; our QUIC connections keep their own
        endpoint.stop_accepting()
    told: dict[Open, float] = {}
    limits = state.config.limits
    deadline = state.loop.time() + limits.graceful_timeout
    while True:
        now = state.loop.time()
        admission.close_silent(now, FRESH_GRACE)
        for conn in list(state.connections):
            since = told.get(conn)
            if since is None:
                if conn.served_any or now - conn.started >= FRESH_GRACE:
                    told[conn] = now
                    conn.shutdown()
            elif now - since >= IDLE_GRACE:
                # HTTP/2: the final GOAWAY, for clients that never answered the drain's PING;
                # HTTP/3: the final GOAWAY (the first one named no stream);
                # HTTP/1.1: close a connection whose client sent nothing more.
                if conn.core.http_version in ("2", "3"):
                    conn.shutdown()
                elif conn.core.open_streams == 0 and not conn.handlers:
                    conn.close_idle()
        if (not state.connections and not state.handshaking) or now >= deadline:
            break
        await asyncio.sleep(0.05)
    admission.close()
    for conn in list(state.connections):
        conn.abort("graceful timeout")
    if endpoint is not None:
        endpoint.close()
    log.info("worker %d stopped", os.getpid())


def run(config: Config, ssl_ctx: ssl.SSLContext, sock: socket.socket, build: AppFactory,
        ready: Callable[[], None] | None = None, stand_by: Callable[[str], None] | None = None,
        quic: QuicSetup | None = None) -> None:
    """Run one worker until it is told to stop (blocking)."""
    uvloop.run(serve(config, ssl_ctx, sock, build, ready=ready, stand_by=stand_by, quic=quic))
