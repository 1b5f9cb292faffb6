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
from collections.abc import Callable

import uvloop

from pushserve.config import Config
from pushserve.exchange import App
from pushserve.server.connection import Connection, WorkerState

log = logging.getLogger("pushserve")


AppFactory = Callable[[Config], App]


async def serve(config: Config, ssl_ctx: ssl.SSLContext, sock: socket.socket,
                build: AppFactory, *, ready: Callable[[], None] | None = None) -> None:
    loop = asyncio.get_running_loop()
    app = build(config)
    state = WorkerState(config, app, loop)
    if config.expose_worker:
        state.extra_headers.append((b"x-pushserve-worker", str(os.getpid()).encode()))
    await app.startup()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # the handler only flags; shutdown runs below
    server = await loop.create_server(
        lambda: _accept(state), sock=sock, ssl=ssl_ctx,
        ssl_handshake_timeout=config.limits.header_timeout, backlog=1024,
    )
    sweeper = loop.create_task(_sweep(state))
    if ready is not None:
        ready()
    try:
        await stop.wait()
    finally:
        sweeper.cancel()
        app.drain()  # responses that never end by themselves (live reload) end now, or the drain waits
        await _drain(state, server)
        await app.shutdown()


def _accept(state: WorkerState) -> Connection:
    conn = Connection(state)
    state.accepted.add(conn)
    return conn


async def _sweep(state: WorkerState) -> None:
    while True:
        await asyncio.sleep(1.0)
        now = state.loop.time()
        for conn in list(state.connections):
            conn.sweep(now)


# A connection accepted just before the listener closed may not have sent its first request yet
# (in a rolling restart the client cannot know this worker is leaving): it gets this long to send
# it before it is closed, so that request is answered instead of failed.
FRESH_GRACE = 1.0


async def _drain(state: WorkerState, server: asyncio.AbstractServer) -> None:
    server.close()
    told: set[Connection] = set()
    deadline = state.loop.time() + state.config.limits.graceful_timeout
    while True:
        now = state.loop.time()
        for conn in list(state.connections - told):
            if conn.served_any or now - conn.started >= FRESH_GRACE:
                told.add(conn)
                conn.shutdown()
        # A handshake still under way (transport not yet made) will become a connection; one
        # that failed is never told, so it stops counting after the handshake timeout.
        handshaking = any(c.transport is None and not c.closed
                          and now - c.started < state.config.limits.header_timeout
                          for c in state.accepted)
        if (not state.connections and not handshaking) or now >= deadline:
            break
        await asyncio.sleep(0.05)
    for conn in list(state.connections):
        conn.abort("graceful timeout")
    log.info("worker %d stopped", os.getpid())


def run(config: Config, ssl_ctx: ssl.SSLContext, sock: socket.socket, build: AppFactory,
        ready: Callable[[], None] | None = None) -> None:
    """Run one worker until it is told to stop (blocking)."""
    uvloop.run(serve(config, ssl_ctx, sock, build, ready=ready))
