"""Invariants on the events a protocol core hands the layer above, checked call by call."""

from __future__ import annotations

from pushserve.protocol.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    RequestReceived,
    StreamDrained,
    StreamReset,
)


class EventChecker:
    """Follows one connection's events and fails on any that the layer above could not make
    sense of: a body for a stream it never saw or that already ended, a second termination, new
    work after termination, or fields of the wrong type."""

    def __init__(self) -> None:
        self.requests: set[int] = set()  # streams surfaced by RequestReceived
        self.body_open: set[int] = set()  # ... whose request body has not ended
        self.reset: set[int] = set()
        self.terminated: ConnectionTerminated | None = None
        self.events: list[Event] = []

    def reset_by_us(self, sid: int) -> None:
        """The layer above reset the stream: no more body for it, and the core need not say so."""
        self.body_open.discard(sid)

    def feed(self, events: object) -> list[Event]:
        assert isinstance(events, list), events
        for ev in events:
            self.check(ev)
        self.events += events
        return events

    def check(self, ev: object) -> None:
        if isinstance(ev, ConnectionTerminated):
            assert self.terminated is None, f"second termination {ev} after {self.terminated}"
            assert isinstance(ev.error_code, int) and ev.error_code >= 0, ev
            assert isinstance(ev.reason, str) and "\n" not in ev.reason, ev
            self.terminated = ev
            return
        assert isinstance(ev, RequestReceived | BodyReceived | StreamReset | StreamDrained), ev
        sid = ev.stream_id
        assert isinstance(sid, int) and sid > 0, ev
        if isinstance(ev, RequestReceived):
            assert self.terminated is None, f"request after termination: {ev}"
            assert sid not in self.requests, f"stream surfaced twice: {ev}"
            assert all(isinstance(x, bytes) for x in (ev.method, ev.target, ev.authority)), ev
            assert ev.method, ev
            assert ev.http_version in ("2", "1.1", "1.0"), ev
            assert isinstance(ev.end_stream, bool), ev
            for name, value in ev.headers:
                assert isinstance(name, bytes) and isinstance(value, bytes), ev
                assert name == name.lower() and not name.startswith(b":"), ev
            self.requests.add(sid)
            if not ev.end_stream:
                self.body_open.add(sid)
        elif isinstance(ev, BodyReceived):
            assert self.terminated is None, f"body after termination: {ev}"
            assert sid in self.body_open, f"body for a stream not expecting one: {ev}"
            assert isinstance(ev.data, bytes) and isinstance(ev.end_stream, bool), ev
            if ev.end_stream:
                self.body_open.discard(sid)
        elif isinstance(ev, StreamReset):
            # A reset may follow the termination: it tells a handler still at work to stop.
            assert sid in self.requests or sid % 2 == 0, f"reset of a stream never surfaced: {ev}"
            assert sid not in self.reset, f"stream reset twice: {ev}"
            assert isinstance(ev.error_code, int), ev
            self.reset.add(sid)
            self.body_open.discard(sid)
        else:
            assert sid in self.requests or sid % 2 == 0, f"drained a stream never surfaced: {ev}"
