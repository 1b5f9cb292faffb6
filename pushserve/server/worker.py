"""One worker process: an event loop (uvloop), a TLS listener, the app it was handed, and a
graceful drain.

The worker is told its listening socket (bound by the supervisor, or by itself for one worker)
and a factory for its app, serves until SIGTERM/SIGINT, then stops accepting, asks the app to end
its endless responses, sends GOAWAY / closes idle keep-alive connections, and gives in-flight
requests ``graceful_timeout`` seconds to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import ssl
import time
from collections.abc import Callable

import uvloop

from pushserve.config import Config, ConfigError
from pushserve.exchange import App
from pushserve.server.connection import Connection, WorkerState
from pushserve.server.descriptors import OUT_OF_FILES, RESERVE_TIMEOUT
from pushserve.server.memory import give_back_memory
from pushserve.server.unavailable import Unavailable

log = logging.getLogger("pushserve")


AppFactory = Callable[[Config], App]


async def serve(config: Config, ssl_ctx: ssl.SSLContext, sock: socket.socket,
                build: AppFactory, *, ready: Callable[[], None] | None = None,
                stand_by: Callable[[str], None] | None = None) -> None:
    """``stand_by``: when given, a worker that cannot build or start its app serves 503
    (server/unavailable.py) and calls it with the reason, instead of failing."""
    loop = asyncio.get_running_loop()
    app = await _start_app(config, build, stand_by)
    state = WorkerState(config, app, loop)
    if config.expose_worker:
        state.extra_headers.append((b"x-pushserve-worker", str(os.getpid()).encode()))
    give_back_memory()  # what the imports and the app's start freed (about 1.3 MB of a worker's 32)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # the handler only flags; shutdown runs below
    sock.listen(config.limits.backlog)  # the master has it listening already; this is the backlog
    accepting = loop.create_task(_accept_loop(state, sock, ssl_ctx))
    sweeper = loop.create_task(_sweep(state))
    if ready is not None:
        ready()
    try:
        await stop.wait()
    finally:
        sweeper.cancel()
        app.drain()  # responses that never end by themselves (live reload) end now, or the drain waits
        await _drain(state, accepting, sock)
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


# A handshake this old gives its place to a new connection when all places are taken: a client
# that opened connections and sent nothing must not stop the worker from accepting others.
HANDSHAKE_EVICT_AGE = 1.0

# Connections taken from the queue per wake-up, so a burst costs one poll, not one per connection.
ACCEPT_BATCH = 32


async def _accept_loop(state: WorkerState, sock: socket.socket, ssl_ctx: ssl.SSLContext) -> None:
    """Accept at the pace the worker can take: at most ``max_handshakes`` connections in the TLS
    handshake at once, so a flood of connections holds a bounded amount of memory.  When all
    places are taken, the oldest handshake (if it has had HANDSHAKE_EVICT_AGE) is dropped for the
    newcomer; else the newcomers wait in the kernel's queue (``--backlog``) for a place."""
    loop = state.loop
    limits = state.config.limits
    handshakes: dict[asyncio.Task[None], float] = {}  # in start order: the oldest first
    while True:
        while state.handshaking >= limits.max_handshakes and handshakes:
            oldest, started = next(iter(handshakes.items()))
            wait = started + HANDSHAKE_EVICT_AGE - loop.time()
            if wait <= 0:
                oldest.cancel()
                del handshakes[oldest]
                break
            state.handshake_done.clear()
            with contextlib.suppress(TimeoutError):  # a place frees up, or the oldest may be dropped
                await asyncio.wait_for(state.handshake_done.wait(), wait)
        # Wait for the queue to be readable, then accept without awaiting: the drain cancels this
        # task, and a cancel landing after an accept (as it can inside loop.sock_accept) would
        # drop a connection the kernel had already handed over.  Readiness alone loses nothing.
        await _readable(loop, sock)
        for _ in range(ACCEPT_BATCH):
            turn_away = False
            try:
                client, _ = sock.accept()
            except (BlockingIOError, InterruptedError):  # the queue is empty (or another worker's)
                break
            except OSError as e:
                if e.errno not in OUT_OF_FILES:
                    log.warning("accept: %s", e.strerror or e)
                    await asyncio.sleep(0.1)
                    break
                # Out of file descriptors: close an idle connection, or answer one newcomer 503
                # on the reserve descriptor, or let the queue wait (server/descriptors.py).
                spare = state.room.make_room(sock, state.connections)
                if spare is None:
                    await state.room.wait(1.0)
                    break
                client, turn_away = spare, True
            client.setblocking(False)
            state.handshaking += 1
            state.note_load()
            task = loop.create_task(_handshake(state, client, ssl_ctx, turn_away))
            handshakes[task] = loop.time()
            task.add_done_callback(lambda done: handshakes.pop(done, None))
            if state.handshaking >= limits.max_handshakes:
                break


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float | None = None) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_reader(fd)


async def _handshake(state: WorkerState, client: socket.socket, ssl_ctx: ssl.SSLContext,
                     turn_away: bool = False) -> None:
    handed = False  # to a Connection, which tells state.room when it ends
    try:
        first = await _peek(state.loop, client, state.config.limits.header_timeout)
        if first[:1] != b"\x16":  # not a TLS handshake record
            _not_tls(client, first)
            return
        timeout = state.config.limits.header_timeout
        await state.loop.connect_accepted_socket(
            lambda: Connection(state, turn_away=turn_away), client, ssl=ssl_ctx,
            # The reserve descriptor is wanted back soon: no long wait for a slow handshake, nor
            # for the client's answer to TLS's goodbye after the 503.
            ssl_handshake_timeout=min(timeout, RESERVE_TIMEOUT) if turn_away else timeout,
            ssl_shutdown_timeout=RESERVE_TIMEOUT if turn_away else None)
        handed = True
    except (OSError, ssl.SSLError, TimeoutError) as e:
        log.debug("TLS handshake failed: %r", e)
        client.close()
    except asyncio.CancelledError:  # dropped for a newer connection (or the worker stops)
        client.close()
    finally:
        state.handshaking -= 1
        state.handshake_done.set()
        if not handed:  # its descriptor is free
            state.room.ended()


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float) -> bytes:
    """The first bytes the client sent, left in the socket for the TLS layer to read."""
    await _readable(loop, sock, timeout)
    return sock.recv(4096, socket.MSG_PEEK)


_HTTP_METHOD = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]\r?\n")
_HOST = re.compile(rb"\r?\nhost:[ \t]*([A-Za-z0-9.\-\[\]:]+)[ \t]*\r?\n", re.I)


def _not_tls(client: socket.socket, first: bytes) -> None:
    """Plain HTTP on the TLS port (a user typed http://): say where to go, as nginx does; any
    other bytes get nothing.  Either way the connection ends here."""
    with contextlib.suppress(OSError):
        client.recv(len(first))  # read what was peeked: closing with unread input would reset the answer
    if _HTTP_METHOD.match(first):
        host = _HOST.search(first)
        if host is not None:
            url = b"https://" + host.group(1) + b"/"
        else:
            name, port = client.getsockname()[:2]
            url = f"https://{f'[{name}]' if ':' in name else name}:{port}/".encode()
        body = (b"<!doctype html><meta charset=utf-8><title>400 Bad Request</title>"
                b"<h1>400 Bad Request</h1><p>The plain HTTP request was sent to an HTTPS port. Use "
                b"<a href=\"%s\">%s</a>.</p>\n" % (url, url))
        head = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/html; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        log.info("%s: plain HTTP on the TLS port: 400", client.getpeername()[0])
        with contextlib.suppress(OSError):
            client.setblocking(True)
            client.settimeout(1.0)
            client.sendall(head + body)
    client.close()


async def _sweep(state: WorkerState) -> None:
    swept = state.loop.time()
    while True:
        await asyncio.sleep(1.0)
        now = state.loop.time()
        # Time the worker itself did not run (its loop blocked, the process stopped or starved)
        # is not the clients' slowness: their timeouts do not count it.
        away = now - swept - 1.0
        if away > STALL:
            for conn in state.connections:
                conn.last_activity += away
                conn.last_write += away
        swept = now
        for conn in list(state.connections):
            conn.sweep(now)
        state.report_refused()
        state.room.report(len(state.connections))
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


async def _drain(state: WorkerState, accepting: asyncio.Task[None], sock: socket.socket) -> None:
    accepting.cancel()
    # Our copy of the listening socket goes; the master's keeps it open (and its queue waiting)
    # for the slot's next worker, unless the slot itself is going away.
    sock.close()
    told: dict[Connection, float] = {}
    limits = state.config.limits
    deadline = state.loop.time() + limits.graceful_timeout
    while True:
        now = state.loop.time()
        for conn in list(state.connections):
            since = told.get(conn)
            if since is None:
                if conn.served_any or now - conn.started >= FRESH_GRACE:
                    told[conn] = now
                    conn.shutdown()
            elif now - since >= IDLE_GRACE:
                # HTTP/2: the final GOAWAY, for clients that never answered the drain's PING;
                # HTTP/1.1: close a connection whose client sent nothing more.
                if conn.core.http_version == "2":
                    conn.shutdown()
                elif conn.core.open_streams == 0 and not conn.handlers:
                    conn.close_idle()
        if (not state.connections and not state.handshaking) or now >= deadline:
            break
        await asyncio.sleep(0.05)
    for conn in list(state.connections):
        conn.abort("graceful timeout")
    log.info("worker %d stopped", os.getpid())


def run(config: Config, ssl_ctx: ssl.SSLContext, sock: socket.socket, build: AppFactory,
        ready: Callable[[], None] | None = None, stand_by: Callable[[str], None] | None = None) -> None:
    """Run one worker until it is told to stop (blocking)."""
    uvloop.run(serve(config, ssl_ctx, sock, build, ready=ready, stand_by=stand_by))
