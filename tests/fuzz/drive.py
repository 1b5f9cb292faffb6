"""Plays the layer above a core for the fuzz targets: answers every request the way some part
of pushserve might (whole body, lazy iterator, streamed, 1xx first, reset, late), drains the
output, and checks what comes back."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import strategies as st

from pushserve.protocol.events import BodyReceived, Event, RequestReceived, ServerCore
from tests.fuzz.checks import EventChecker

# How the layer above answers a request (chosen per request by the fuzzer).
WHOLE, LAZY, STREAMED, EARLY_HINTS, RESET, LATE, FAILING, PUSH = range(8)
ACTIONS = (WHOLE, LAZY, STREAMED, EARLY_HINTS, RESET, LATE, FAILING, PUSH)

_PUSHED = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.test"),
           (b":path", b"/pushed.css")]


def _chunks(n: int, size: int) -> Iterator[bytes]:
    for _ in range(n):
        yield b"x" * size


def _failing() -> Iterator[bytes]:
    yield b"partial"
    raise OSError("disk went away")


class Driver:
    def __init__(self, core: ServerCore, actions: list[int], *, limit: int = 4096) -> None:
        self.core = core
        self.actions = actions or [WHOLE]
        self.limit = limit
        self.check = EventChecker()
        self.output: list[bytes] = []
        self.later: list[int] = []  # LATE requests, answered on the next step
        self.streaming: list[int] = []  # STREAMED responses still to finish
        self.answered = 0

    def receive(self, data: bytes) -> None:
        self.handle(self.core.receive_data(data))
        self.step()
        while self.core.pending_input:  # the rest of the read, a slice per loop turn (as the glue does)
            self.handle(self.core.resume())
            self.step()

    def handle(self, events: list[Event]) -> None:
        for ev in self.check.feed(events):
            if isinstance(ev, RequestReceived):
                self.answer(ev)
            elif isinstance(ev, BodyReceived):
                self.core.acknowledge_received(ev.stream_id, len(ev.data))

    def answer(self, ev: RequestReceived) -> None:
        core, sid = self.core, ev.stream_id
        action = self.actions[self.answered % len(self.actions)]
        self.answered += 1
        if action == WHOLE:
            core.send_response(sid, 200, [(b"content-type", b"text/plain")], b"hello")
        elif action == LAZY:
            core.send_response(sid, 200, [], _chunks(3, 700))
        elif action == STREAMED:
            core.send_response(sid, 200, [], None, end_stream=False)
            core.send_data(sid, b"first")
            self.streaming.append(sid)
        elif action == EARLY_HINTS:
            core.send_informational(sid, 103, [(b"link", b"</a.css>; rel=preload")])
            core.send_response(sid, 404, [(b"content-length", b"0")], b"")
        elif action == RESET:
            core.reset_stream(sid)
            self.check.reset_by_us(sid)
        elif action == LATE:
            self.later.append(sid)
        elif action == FAILING:
            core.send_response(sid, 200, [], _failing())
        else:
            promised = core.push_promise(sid, _PUSHED, urgency=0)
            if promised is not None:
                core.send_response(promised, 200, [(b"content-type", b"text/css")], b"p{}")
            core.send_response(sid, 200, [], b"page")

    def step(self) -> None:
        """One flush: write what the core has, handle what sending produced, and move the
        answers that were waiting for a later turn."""
        for sid in self.later:
            self.core.send_response(sid, 204, [], None)
        self.later.clear()
        for sid in self.streaming:
            self.core.send_data(sid, b"last", end_stream=True)
        self.streaming.clear()
        data = self.core.data_to_send(self.limit)
        assert type(data) is bytes, type(data)
        self.output.append(data)
        self.handle(self.core.next_events())

    def settle(self, rounds: int = 20_000) -> None:
        """Flush until the core has nothing more to say (bounded)."""
        for _ in range(rounds):
            self.step()
            if not self.output[-1] and not self.later and not self.streaming:
                data = self.core.data_to_send(self.limit)
                assert type(data) is bytes
                self.output.append(data)
                events = self.core.next_events()
                if not data and not events:
                    return
                self.handle(events)
        raise AssertionError(f"core still producing output after {rounds} flushes")

    @property
    def written(self) -> bytes:
        return b"".join(self.output)


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws.  Not "== 0": Hypothesis draws the bounds of a range far
    more often than the values between them."""
    return draw(st.integers(0, one_in - 1)) == one_in // 2


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given points (taken modulo its length): the pieces a transport's
    reads might bring."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]
