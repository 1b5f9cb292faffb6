"""A worker's heartbeat: one byte in a page the master and the worker share.

The worker's event loop adds one to the byte every ``EVERY`` seconds; the master looks at it
every time its own loop turns and notes, by its own clock, when it last saw the byte change.  A
worker is "silent" for as long as the master has watched the byte without seeing it change.

Why a byte and the master's clock, rather than a timestamp the worker writes: a byte is written
and read in one memory access, so a read can never be torn (an eight-byte timestamp written with
a plain memcpy can be, and a torn or never-written timestamp once read as 0 made a healthy
worker look stuck for the machine's whole uptime); and the master only ever compares times of
its own.  A byte wraps after 256 beats, which could hide beats from a master that did not look
for that long, so a master that was itself away (not scheduled, stopped, busy) for more than
``MASTER_AWAY`` starts watching afresh rather than judging workers by its own absence.
"""

from __future__ import annotations

import mmap

EVERY = 0.2  # seconds between a worker's beats
MASTER_AWAY = 1.0  # a master that did not look for this long forgets what it saw before


class Heartbeat:
    __slots__ = ("_page", "_seen", "changed_at")

    def __init__(self, now: float) -> None:
        self._page = mmap.mmap(-1, 1)  # anonymous and MAP_SHARED: shared with the forked worker
        self._seen = 0
        self.changed_at = now  # the master's clock: when it last saw a beat (or began watching)

    # -- in the worker --------------------------------------------------------------------------

    def beat(self) -> None:
        page = self._page
        page[0] = (page[0] + 1) & 0xFF

    # -- in the master ----------------------------------------------------------------------------

    def watch(self, now: float) -> None:
        """Look at the byte now; a change means the worker's loop ran since the last look."""
        value = self._page[0]
        if value != self._seen:
            self._seen = value
            self.changed_at = now

    def restart(self, now: float) -> None:
        """Judge from now on only: the worker has just said it is ready, or the master was away."""
        self._seen = self._page[0]
        self.changed_at = now

    def silent_for(self, now: float) -> float:
        return now - self.changed_at

    def close(self) -> None:
        self._page.close()
