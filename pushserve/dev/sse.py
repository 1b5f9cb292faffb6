"""Server-sent events for live reload: ``GET /_pushserve/events`` (``text/event-stream``).

Each subscriber is a response stream that never ends by itself; it is the connection's
``StreamHandler`` for its stream, so a reset stream or a lost connection unsubscribes it.  Events
are a few hundred bytes; a client that stops reading is dropped once ``MAX_BUFFERED`` bytes wait
for it, instead of letting the queue grow.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from typing import Any

from pushserve.exchange import Exchange
from pushserve.protocol.events import Headers, RequestReceived

log = logging.getLogger("pushserve")

MAX_BUFFERED = 256 * 1024
RETRY_MS = 300  # how soon EventSource reconnects after the stream ends (a restart)


def format_event(event: str, data: Any) -> bytes:
    """One SSE message: ``event:`` and one ``data:`` line of compact JSON (which holds no newline)."""
    return b"event: %s\ndata: %s\n\n" % (event.encode(), json.dumps(data, separators=(",", ":")).encode())


class EventStream:
    """One subscriber; also the StreamHandler of its stream."""

    __slots__ = ("closed", "ex", "hub", "stream_id")

    def __init__(self, hub: Hub, ex: Exchange, stream_id: int) -> None:
        self.hub = hub
        self.ex = ex
        self.stream_id = stream_id
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.ex.closed:
            self._gone()
            return
        core = self.ex.core
        if core.buffered(self.stream_id) > MAX_BUFFERED:
            log.info("%s: live-reload client stopped reading; dropped", self.ex.info.peer)
            self._gone()
            core.reset_stream(self.stream_id)
            self.ex.flush()
            return
        core.send_data(self.stream_id, data)
        self.ex.flush()

    def end(self) -> None:
        """Finish the response (the worker is stopping); the client reconnects elsewhere."""
        if self.closed:
            return
        self._gone()
        if not self.ex.closed:
            self.ex.core.send_data(self.stream_id, b"", end_stream=True)
            self.ex.flush()

    def _gone(self) -> None:
        self.closed = True
        self.hub.streams.discard(self)
        self.ex.detach(self.stream_id, self)

    # -- StreamHandler ----------------------------------------------------------------------------

    def on_body(self, data: bytes, end_stream: bool) -> None:
        self.ex.core.acknowledge_received(self.stream_id, len(data))

    def on_reset(self) -> None:
        self._gone()

    def on_drained(self) -> None:
        pass


class Hub:
    """The subscribers of this worker, and what a new one must be told first."""

    def __init__(self) -> None:
        # Per process: a client that sees another id after reconnecting knows the code changed.
        self.instance = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.streams: set[EventStream] = set()
        # The event describing the current problems ("error") or their absence ("clear").
        self.state: bytes = format_event("clear", {})
        self.closing = False

    def subscribe(self, ex: Exchange, req: RequestReceived, headers: Headers) -> None:
        sid = req.stream_id
        core = ex.core
        core.send_response(sid, 200, headers, None, end_stream=req.method == b"HEAD")
        if req.method == b"HEAD" or self.closing:
            if req.method != b"HEAD":
                core.send_data(sid, b"retry: %d\n\n" % RETRY_MS, end_stream=True)
            ex.flush()
            return
        stream = EventStream(self, ex, sid)
        ex.attach(sid, stream)
        self.streams.add(stream)
        stream.send(b"retry: %d\n\n" % RETRY_MS + format_event("hello", {"id": self.instance}) + self.state)

    def publish(self, event: str, data: Any) -> None:
        message = format_event(event, data)
        if event in ("error", "clear"):
            self.state = message
        for stream in list(self.streams):
            stream.send(message)

    def ping(self) -> None:
        """A comment line now and then: proxies keep the stream open, dead peers are noticed."""
        for stream in list(self.streams):
            stream.send(b": ping\n\n")

    def close(self) -> None:
        self.closing = True
        for stream in list(self.streams):
            stream.end()
