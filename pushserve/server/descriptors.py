"""A worker at its open file limit: making room for new connections, and answering the rest.

When ``accept()`` fails for want of a file descriptor (``ulimit -n`` reached: every connection
and every file being sent holds one), the queued connections would wait in the kernel until
their clients give up, and the failure would repeat on every wake-up.  Instead, as nginx and
h2o do (after server/admission.py has closed any connection that has not sent its ClientHello):

1. the oldest idle keep-alive connection is closed (at once: no TLS goodbye, whose answer would
   hold the descriptor), and the newcomer is accepted once that descriptor is free;
2. with no idle connection to close, a descriptor held in reserve (on /dev/null) is given up to
   accept one newcomer, which is answered ``503`` with ``Retry-After`` (HTTP/1.1) or a GOAWAY
   naming no stream (HTTP/2: safe to retry) and closed; the reserve is taken back as soon as a
   descriptor frees up;
3. the others wait in the queue until a connection ends.

What happened is logged once a second at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import socket
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger("pushserve")

OUT_OF_FILES = frozenset((errno.EMFILE, errno.ENFILE))

# Seconds the connection answered on the reserve descriptor may take for its TLS handshake and
# for TLS's goodbye after the 503, before the descriptor is taken back anyway.
RESERVE_TIMEOUT = 1.0


class Closable(Protocol):
    """What making room needs of a connection (server/connection.py's Connection)."""

    last_activity: float

    @property
    def idle(self) -> bool: ...

    def close_for_room(self) -> None: ...


class Room:
    def __init__(self) -> None:
        self.reserve = -1
        self.take_reserve()
        self.closing: set[Closable] = set()  # idle connections closed for room, not gone yet
        self.freed = asyncio.Event()
        self.closed_silent = 0  # since the last report: connections that sent no ClientHello (admission)
        self.closed_idle = 0
        self.answered = 0
        self.waited = 0

    def take_reserve(self) -> None:
        if self.reserve < 0:
            with contextlib.suppress(OSError):  # none free yet: the next one that frees up
                self.reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def make_room(self, sock: socket.socket, connections: Iterable[Closable]) -> socket.socket | None:
        """``accept()`` found no descriptor: close the oldest idle connection (None: accept
        again once it is gone), or accept one newcomer on the reserve (returned, to be answered
        503 / GOAWAY), or neither (None: the queue waits)."""
        if self.closing:  # room is on its way
            return None
        # A connection ended since the reserve was last given up: the event loop closes its
        # descriptor only after telling us, so the reserve is taken back here.
        self.take_reserve()
        oldest = min((c for c in connections if c.idle), key=lambda c: c.last_activity, default=None)
        if oldest is not None:
            self.closing.add(oldest)
            oldest.close_for_room()
            self.closed_idle += 1
            return None
        if self.reserve >= 0:
            os.close(self.reserve)
            self.reserve = -1
            try:
                client, _ = sock.accept()
            except OSError:  # the queue emptied meanwhile (another worker took it)
                self.take_reserve()
                return None
            self.answered += 1
            return client
        self.waited += 1
        return None

    def ended(self, conn: Closable | None = None) -> None:
        """A connection (or a handshake) ended: its descriptor is free."""
        if conn is not None:
            self.closing.discard(conn)
        self.take_reserve()
        self.freed.set()

    async def wait(self, timeout: float) -> None:
        """Until a connection ends (or ``timeout``: a descriptor may free up elsewhere)."""
        self.freed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.freed.wait(), timeout)
        await asyncio.sleep(0)  # the event loop closes the descriptor of a lost connection after telling us

    def report(self, open_now: int) -> None:
        """One log line a second at most (the worker's sweep calls this every second)."""
        if not (self.closed_silent or self.closed_idle or self.answered or self.waited):
            return
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        done = []
        if self.closed_silent:
            done.append(f"closed {self.closed_silent} connection{'s' if self.closed_silent != 1 else ''}"
                        " that sent no ClientHello for new ones")
        if self.closed_idle:
            done.append(f"closed {self.closed_idle} idle keep-alive connection{'s' if self.closed_idle != 1 else ''}"
                        " for new ones")
        if self.answered:
            done.append(f"answered {self.answered} new one{'s' if self.answered != 1 else ''} 503 / GOAWAY")
        if self.waited and not self.answered:
            done.append("new ones wait in the queue")
        log.warning("out of file descriptors (ulimit -n %d) with %d connections open: %s", limit, open_now,
                    ", ".join(done))
        self.closed_silent = self.closed_idle = self.answered = self.waited = 0

    def close(self) -> None:
        if self.reserve >= 0:
            os.close(self.reserve)
            self.reserve = -1
