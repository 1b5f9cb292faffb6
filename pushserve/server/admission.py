"""From ``accept()`` to a TLS connection, in three stages, so that connections which never finish a
handshake cannot keep real clients waiting nor hold much memory.

1. **Waiting for the ClientHello.**  Every connection the kernel queued is accepted at once (32 per
   wake-up) and costs only its socket until its first TLS record is complete in the kernel's
   buffer: no TLS object, no task.  A partial record raises the socket's ``SO_RCVLOWAT`` to the
   record's length, so the event loop hears of the connection again only when the rest has come
   (or it closed).  Plain HTTP gets its 400 page here; other bytes are closed.
2. **Waiting for a TLS place.**  At most ``--max-handshakes`` connections are in the TLS handshake
   at once; the others (their ClientHello complete) queue in arrival order.
3. **The TLS handshake**, handed to the event loop (``connect_accepted_socket``), which makes the
   ``Connection`` once it is done.

When every place is taken — established connections plus all of the above reaching
``--max-connections``, or the worker out of file descriptors — a new connection takes the place
of the oldest one still waiting for its ClientHello (it has made no progress); out of file
descriptors with none of those, an idle keep-alive connection gives way or the newcomer is answered
503 on a descriptor held in reserve (server/descriptors.py); while others queue
for a TLS place, a handshake older than ``HANDSHAKE_EVICT_AGE`` gives its place to the next.
So under a flood the time an idle connection is allowed shortens by itself, to what the newcomers
leave it, and a silent connection never delays a client that sends its ClientHello.
``--header-timeout`` bounds the whole way from accept to an established connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
from collections import deque
from dataclasses import dataclass

from pushserve.server.connection import Connection, WorkerState
from pushserve.server.descriptors import OUT_OF_FILES, RESERVE_TIMEOUT

log = logging.getLogger("pushserve")

# A handshake this old gives its place to a connection queued for one when all places are taken.
HANDSHAKE_EVICT_AGE = 1.0

# Out of file descriptors, a connection that has not sent its ClientHello this long after its
# accept is silent and gives way first; a younger one may be a client whose ClientHello is on its
# way (on a loaded machine), and an idle keep-alive connection goes before it.
SILENT_AGE = 1.0

# Connections taken from the kernel's queue per wake-up, so a burst costs one poll, not one per
# connection.
ACCEPT_BATCH = 32

_HANDSHAKE = 0x16  # TLS record type of a ClientHello
# The largest record a ClientHello can come in (2^14 of plaintext, RFC 8446 §5.1) with the slack
# TLS 1.2 allows a ciphertext: anything longer is not a TLS client.
_MAX_RECORD = 2**14 + 2048
_PEEK = 4096  # bytes of a non-TLS first flight looked at (an HTTP request line and Host)


@dataclass(slots=True, eq=False)
class _Waiting:
    sock: socket.socket
    since: float  # loop time of the accept
    lowat: bool = False  # SO_RCVLOWAT raised: set back before TLS reads the socket
    turn_away: bool = False  # accepted on the reserve descriptor: 503 / GOAWAY once TLS is up


class Admission:
    """The stages above for one listening socket of a worker."""

    def __init__(self, state: WorkerState, sock: socket.socket, ssl_ctx: ssl.SSLContext) -> None:
        self.state = state
        self.sock = sock
        self.ssl_ctx = ssl_ctx
        self.waiting: dict[int, _Waiting] = {}  # by fd, oldest first (accept order)
        self.queued: deque[_Waiting] = deque()  # ClientHello complete, waiting for a TLS place
        self.handshakes: dict[asyncio.Task[None], float] = {}  # TLS start time, oldest first
        self.evicted_silent = 0  # since the last report
        self.evicted_handshakes = 0
        self._evict_timer: asyncio.TimerHandle | None = None
        self._peek = bytearray(5 + _MAX_RECORD)  # one buffer for every look at a first record

    # -- stage 1: accept, wait for the ClientHello ------------------------------------------------

    async def accept(self) -> None:
        """Accept until cancelled (the worker's drain)."""
        loop = self.state.loop
        sock = self.sock
        while True:
            # Wait for the queue to be readable, then accept without awaiting: the drain cancels
            # this task, and a cancel landing after an accept (as it can inside loop.sock_accept)
            # would drop a connection the kernel had already handed over.
            await _readable(loop, sock)
            for _ in range(ACCEPT_BATCH):
                try:
                    client, _ = sock.accept()
                except (BlockingIOError, InterruptedError):  # the queue is empty (or another worker's)
                    break
                except OSError as e:
                    if e.errno not in OUT_OF_FILES:
                        log.warning("accept: %s", e.strerror or e)  # the queue waits, we try again
                        await asyncio.sleep(0.1)
                        break
                    if self._close_silent():
                        continue
                    # Else an idle keep-alive connection gives way, or one newcomer is answered
                    # 503 on the reserve descriptor, or the queue waits (server/descriptors.py).
                    spare = self.state.room.make_room(
                        sock, (c for c in self.state.connections if isinstance(c, Connection)))
                    if spare is None:
                        # Until a descriptor frees up, or the oldest waiting connection is silent.
                        oldest = next(iter(self.waiting.values()), None)
                        await self.state.room.wait(
                            1.0 if oldest is None else min(1.0, max(0.05, oldest.since + SILENT_AGE - loop.time())))
                        break
                    self._admit(spare, turn_away=True)
                    continue
                self._make_room()
                self._admit(client)

    def _close_silent(self) -> bool:
        """Out of file descriptors is every place taken too: the oldest connection that has
        sent no ClientHello for SILENT_AGE gives its descriptor to one waiting in the kernel's
        queue.  One whose ClientHello is in its buffer, not yet read, is a client: it goes on to
        TLS instead."""
        now = self.state.loop.time()
        while self.waiting:
            fd, w = next(iter(self.waiting.items()))
            if now - w.since < SILENT_AGE:
                return False
            self._first_bytes(fd)
            if fd in self.waiting:
                self._close_waiting(fd)
                self.state.room.closed_silent += 1
                return True
            if w.sock.fileno() < 0:  # it had closed, or was not TLS: its descriptor is free
                return True
        return False

    def _make_room(self) -> None:
        """All places taken: the oldest connection that has not sent its ClientHello goes.  (With
        none to close, the newcomer is still accepted: past --max-connections it is turned
        away with a 503 or GOAWAY once its handshake is done, as the limit promises.)"""
        state = self.state
        if self.waiting and len(state.connections) + state.handshaking >= state.config.limits.max_connections:
            fd = next(iter(self.waiting))
            self._close_waiting(fd)
            self.evicted_silent += 1

    def _admit(self, client: socket.socket, turn_away: bool = False) -> None:
        client.setblocking(False)
        state = self.state
        state.handshaking += 1
        state.note_load()
        fd = client.fileno()
        self.waiting[fd] = _Waiting(client, state.loop.time(), turn_away=turn_away)
        state.loop.add_reader(fd, self._first_bytes, fd)

    def _first_bytes(self, fd: int) -> None:
        """The socket is readable: a whole first record (on to TLS), part of one (wait for the
        rest), plain HTTP (its 400), or anything else (closed)."""
        w = self.waiting.get(fd)
        if w is None:
            return
        sock = w.sock
        peek = self._peek
        try:
            n = sock.recv_into(peek, len(peek), socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n = 0
        if n == 0:  # closed before a byte (a port scan, a browser's unused preconnect)
            self._close_waiting(fd)
            return
        if peek[0] != _HANDSHAKE:
            self._leave_waiting(fd)
            _not_tls(sock, bytes(peek[:min(n, _PEEK)]))
            self._finished()
            return
        need = 5 + int.from_bytes(peek[3:5], "big") if n >= 5 else 5
        if need > len(peek):  # longer than any ClientHello record: not a TLS client
            self._close_waiting(fd)
            return
        if n < need:
            # Wake up again when the rest is here (or the peer closes), not for every segment.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, need)
                w.lowat = True
            return
        self._leave_waiting(fd)
        if w.lowat:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        self._queue(w)

    def _leave_waiting(self, fd: int) -> None:
        self.state.loop.remove_reader(fd)
        del self.waiting[fd]

    def _close_waiting(self, fd: int) -> None:
        w = self.waiting[fd]
        self._leave_waiting(fd)
        w.sock.close()
        self._finished()

    def _finished(self, handed: bool = False) -> None:
        """A connection left the stages: its descriptor is free, unless ``handed`` to a
        Connection (which says so when it ends)."""
        self.state.handshaking -= 1
        if not handed:
            self.state.room.ended()

    # -- stage 2: a place in the TLS handshake -----------------------------------------------------

    def _queue(self, w: _Waiting) -> None:
        self.queued.append(w)
        self._start_queued()

    def _start_queued(self) -> None:
        limit = self.state.config.limits.max_handshakes
        while self.queued and len(self.handshakes) < limit:
            w = self.queued.popleft()
            task = self.state.loop.create_task(self._handshake(w))
            self.handshakes[task] = self.state.loop.time()
            task.add_done_callback(self._handshake_done)
        if self.queued and self._evict_timer is None:
            oldest = next(iter(self.handshakes.values()))
            delay = max(0.0, oldest + HANDSHAKE_EVICT_AGE - self.state.loop.time())
            self._evict_timer = self.state.loop.call_later(delay, self._evict_handshakes)

    def _handshake_done(self, task: asyncio.Task[None]) -> None:
        if self.handshakes.pop(task, None) is not None:
            self._start_queued()

    def _evict_handshakes(self) -> None:
        """Connections queue for a TLS place: handshakes older than HANDSHAKE_EVICT_AGE give
        theirs up, oldest first."""
        self._evict_timer = None
        now = self.state.loop.time()
        while self.queued and len(self.handshakes) >= self.state.config.limits.max_handshakes:
            task, started = next(iter(self.handshakes.items()))
            if now - started < HANDSHAKE_EVICT_AGE:
                break
            del self.handshakes[task]
            task.cancel()
            self.evicted_handshakes += 1
        self._start_queued()

    # -- stage 3: the handshake itself -------------------------------------------------------------

    async def _handshake(self, w: _Waiting) -> None:
        state = self.state
        # What is left of --header-timeout since the accept (uvloop wants more than 0).
        left = max(0.1, w.since + state.config.limits.header_timeout - state.loop.time())
        handed = False
        try:
            await state.loop.connect_accepted_socket(
                lambda: Connection(state, turn_away=w.turn_away), w.sock, ssl=self.ssl_ctx,
                # The reserve descriptor is wanted back soon: no long wait for a slow handshake,
                # nor for the client's answer to TLS's goodbye after the 503.
                ssl_handshake_timeout=min(left, RESERVE_TIMEOUT) if w.turn_away else left,
                ssl_shutdown_timeout=RESERVE_TIMEOUT if w.turn_away else None)
            handed = True
        except (OSError, ssl.SSLError, TimeoutError) as e:
            log.debug("TLS handshake failed: %r", e)
            w.sock.close()
        except asyncio.CancelledError:  # gave its place to a newer connection (or the worker stops)
            w.sock.close()
        finally:
            self._finished(handed)

    # -- timers, reports, drain ----------------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """Once a second: close what outlived --header-timeout before reaching TLS, and report
        what gave way (one line each at most)."""
        timeout = self.state.config.limits.header_timeout
        while self.waiting:
            fd, w = next(iter(self.waiting.items()))
            if now - w.since < timeout:
                break
            self._close_waiting(fd)
        while self.queued and now - self.queued[0].since >= timeout:
            self.queued.popleft().sock.close()
            self._finished()
        limits = self.state.config.limits
        if self.evicted_silent:
            log.warning("closed %d connection%s that sent no ClientHello, for newer ones (--max-connections %d)",
                        self.evicted_silent, "s" if self.evicted_silent != 1 else "", limits.max_connections)
            self.evicted_silent = 0
        if self.evicted_handshakes:
            log.warning("dropped %d TLS handshake%s older than %g s, for connections waiting for a place "
                        "(--max-handshakes %d)", self.evicted_handshakes, "s" if self.evicted_handshakes != 1 else "",
                        HANDSHAKE_EVICT_AGE, limits.max_handshakes)
            self.evicted_handshakes = 0

    def close_silent(self, now: float, older_than: float) -> None:
        """The worker drains: a connection that has sent nothing for ``older_than`` seconds is
        not a client about to send a request (one that sent its ClientHello goes on)."""
        for fd, w in list(self.waiting.items()):
            if now - w.since < older_than:
                break
            self._close_waiting(fd)

    def close(self) -> None:
        """The worker stops: nothing is left waiting."""
        if self._evict_timer is not None:
            self._evict_timer.cancel()
            self._evict_timer = None
        for fd in list(self.waiting):
            self._close_waiting(fd)
        while self.queued:
            self.queued.popleft().sock.close()
            self._finished()


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


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
        with contextlib.suppress(OSError):
            log.info("%s: plain HTTP on the TLS port: 400", client.getpeername()[0])
            client.send(head + body)  # a fresh connection's send buffer takes this page whole
    client.close()
