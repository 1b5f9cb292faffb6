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

from pushserve.exchange import Stream
from pushserve.protocol.events import Headers

log = logging.getLogger("pushserve")

MAX_BUFFERED = 256 * 1024
RETRY_MS = 300  # how soon EventSource reconnects after the stream ends (a restart)


def format_event(event: str, data: Any) -> bytes:
    """One SSE message: ``event:`` and one ``data:`` line of compact JSON (which holds no newline)."""
    return b"event: %s\ndata: %s\n\n" % (event.encode(), json.dumps(data, separators=(",", ":")).encode())


class EventStream:
    """One subscriber; also the StreamHandler of its stream."""

    __slots__ = ("closed", "hub", "stream")

    def __init__(self, hub: Hub, stream: Stream) -> None:
        self.hub = hub
        self.stream = stream
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        stream = self.stream
        if stream.closed:
            self._gone()
            return
        if stream.buffered > MAX_BUFFERED:
            log.info("%s: live-reload client stopped reading; dropped", stream.info.peer)
            self._gone()
            stream.reset()
            stream.flush()
            return
        stream.send(data)
        stream.flush()

    def end(self) -> None:
        """Finish the response (the worker is stopping); the client reconnects elsewhere."""
        if self.closed:
            return
        self._gone()
        if not self.stream.closed:
            self.stream.send(b"", end=True)
            self.stream.flush()

    def _gone(self) -> None:
        self.closed = True
        self.hub.streams.discard(self)
        self.stream.detach(self)

    # -- StreamHandler ----------------------------------------------------------------------------

    def on_body(self, data: bytes, end_stream: bool) -> None:
        self.stream.ack(len(data))

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

    def subscribe(self, stream: Stream, headers: Headers) -> None:
        head = stream.request.method == b"HEAD"
        stream.respond(200, headers, None, end=head)
        if head or self.closing:
            if not head:
                stream.send(b"retry: %d\n\n" % RETRY_MS, end=True)
            stream.flush()
            return
        subscriber = EventStream(self, stream)
        stream.attach(subscriber)
        self.streams.add(subscriber)
        subscriber.send(b"retry: %d\n\n" % RETRY_MS + format_event("hello", {"id": self.instance}) + self.state)

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
