"""The flood budgets of one connection: counters checked on every frame, never once per read, so
none overshoots.  Crossing one raises a connection error ENHANCE_YOUR_CALM.

Without a clock the budgets count per stream the peer opened, not per second: what a client may
do grows with the work it asks for, and a flood of frames that ask for nothing runs out."""

from __future__ import annotations

from collections import deque

from pushserve.protocol.h2.errors import calm

# Rapid reset (CVE-2023-44487): more than RESET_LIMIT peer-side resets of unanswered streams (and
# requests the peer got wrong) among the last RESET_WINDOW streams it opened.  A browser
# cancelling a page's images stays well below; a loop of HEADERS+RST_STREAM crosses it after ~100.
RESET_WINDOW = 200
RESET_LIMIT = 100
# Streams refused for going over SETTINGS_MAX_CONCURRENT_STREAMS are the server's doing, not the
# client's reset: they have their own, larger budget, so a client that overshoots by a hundred
# keeps its connection while a loop of nothing but refused streams does not.
REFUSED_WINDOW = 1000
REFUSED_LIMIT = 500
# Frames that cost us work but move no request forward, most of them answered with a control
# frame of ours (PING, SETTINGS, PRIORITY, unknown frames, empty DATA, anything on a closed stream;
# CVE-2019-9512/9514/9515/9516/9518).  The allowance grows with the streams the peer opened, the
# way Envoy budgets PRIORITY frames per stream.
CONTROL_BASE = 1000
CONTROL_PER_STREAM = 100
# Answers of ours (ACKs, RST_STREAM) queued and not yet taken by data_to_send: a peer that sends
# while not reading would otherwise make this grow without bound.
QUEUED_CONTROL_MAX = 2000
# WINDOW_UPDATE frames are legitimate in proportion to the DATA frames we send.
WINDOW_UPDATE_BASE = 1000
WINDOW_UPDATE_PER_DATA_FRAME = 10


class FloodBudget:
    """What one peer has spent.  ``opened`` and ``data_frames`` are counted by the connection
    (they are on its fastest paths); the rest through the methods, which raise when a budget is
    crossed."""

    __slots__ = ("_recent_refusals", "_recent_resets", "control", "data_frames", "opened", "queued",
                 "window_updates")

    def __init__(self) -> None:
        self.opened = 0  # streams the peer opened
        self.data_frames = 0  # DATA frames we sent
        self.control = 0
        self.queued = 0  # answers queued since the output was last taken
        self.window_updates = 0
        self._recent_resets: deque[int] = deque()
        self._recent_refusals: deque[int] = deque()

    def charge(self, what: str) -> None:
        """One frame that moved no request forward."""
        self.control += 1
        if self.control > CONTROL_BASE + CONTROL_PER_STREAM * self.opened:
            raise calm(f"control frame flood: {self.control} for {self.opened} streams (last: {what})")

    def answer(self) -> None:
        """One more answer of ours (an ACK, a RST_STREAM) queued for the peer."""
        if self.queued >= QUEUED_CONTROL_MAX:
            raise calm(f"{self.queued} control frames queued for a peer that does not read")
        self.queued += 1

    def window_update(self) -> None:
        self.window_updates += 1
        if self.window_updates > WINDOW_UPDATE_BASE + WINDOW_UPDATE_PER_DATA_FRAME * self.data_frames:
            raise calm(f"WINDOW_UPDATE flood: {self.window_updates} for {self.data_frames} DATA frames")

    def reset(self) -> None:
        """The peer reset a stream we had not answered, or sent a request it got wrong."""
        self._count(self._recent_resets, RESET_WINDOW, RESET_LIMIT, "rapid reset")

    def refused(self) -> None:
        """A stream refused for going over our concurrency limit."""
        self._count(self._recent_refusals, REFUSED_WINDOW, REFUSED_LIMIT, "refused streams")

    def _count(self, recent: deque[int], window: int, limit: int, what: str) -> None:
        # Recorded by ordinal of streams opened, not by id: ids may skip ahead, which would let a
        # client age its own resets out of an id-based window.
        opened = self.opened
        recent.append(opened)
        horizon = opened - window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if len(recent) > limit:
            raise calm(f"{what}: {len(recent)} streams among the last {window}")
