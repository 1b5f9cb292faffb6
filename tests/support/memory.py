"""The Exchange interface (pushserve/exchange.py) in memory, around a REAL protocol core, and a
client for each protocol — so handlers (the site's responder, the router, ASGI mounts, the dev
event hub) are unit-tested without sockets, TLS or a worker.

- ``MemoryExchange``: what server/connection.py is to a handler, minus the transport.  Bytes the
  core writes collect in ``output``; events the core reports go to the app and to the attached
  stream handlers, as the real connection routes them.
- ``H2Session``: the ``h2`` library as the client (push on or off, reading or not), pumping bytes
  both ways and collecting per-stream replies: 1xx, response head, body, reset, pushes.
- ``H1Session``: raw HTTP/1.1 request bytes in, responses parsed back out.

Read this module as the reference for how the interface is meant to be used.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    DataReceived,
    InformationalResponseReceived,
    PushedStreamReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.settings import SettingCodes, Settings

from pushserve.exchange import App, ConnectionInfo, StreamHandler
from pushserve.protocol import events as ev
from pushserve.protocol.events import Headers, ServerCore
from pushserve.protocol.h1 import H1Core
from pushserve.protocol.h2 import H2Core
from tests.support.h2client import Reply

AUTHORITY = b"example.test"
INFO = ConnectionInfo("127.0.0.1:50000", ("127.0.0.1", 50000), ("127.0.0.1", 8443),
                      tls_version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", alpn="h2")
DEFAULT_HEADERS: Headers = [(b"date", b"Thu, 01 Jan 2026 00:00:00 GMT"), (b"server", b"pushserve")]


class MemoryExchange:
    """An Exchange with no socket: the app and handlers drive a real core; its bytes pile up."""

    def __init__(self, app: App, core: ServerCore, info: ConnectionInfo = INFO) -> None:
        self.app = app
        self.core = core
        self.info = info
        self.pushed: set[str] = set()
        self.received_at = time.perf_counter()
        self.handlers: dict[int, StreamHandler] = {}
        self.output = bytearray()  # written by the core, not yet taken by a client
        self.writes: list[bytes] = []  # every piece written, as transport.write would get them
        self.reading_paused: set[str] = set()
        self.pause_log: list[tuple[str, str]] = []  # ("pause" | "resume", reason), in call order
        self.lost = False
        core.initiate()
        self.flush()

    # -- the peer's side ---------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes from the client, as ``Connection.data_received`` gets them."""
        self.received_at = time.perf_counter()
        self.dispatch(self.core.receive_data(data))
        self.flush()

    def take_output(self) -> bytes:
        data = bytes(self.output)
        self.output.clear()
        return data

    def lose(self) -> None:
        """The connection is gone (``connection_lost``): every attached handler hears on_reset."""
        self.lost = True
        handlers, self.handlers = self.handlers, {}
        for handler in handlers.values():
            handler.on_reset()

    def dispatch(self, events: list[ev.Event]) -> None:
        # The routing the interface promises handlers (server/connection.py does the same, plus
        # logging and timers): requests to the app, a stream's other events to its handler.
        for event in events:
            if isinstance(event, ev.RequestReceived):
                self.app.handle(self, event)
            elif isinstance(event, ev.BodyReceived):
                handler = self.handlers.get(event.stream_id)
                if handler is None:
                    self.core.acknowledge_received(event.stream_id, len(event.data))
                else:
                    handler.on_body(event.data, event.end_stream)
            elif isinstance(event, ev.StreamDrained) and event.stream_id in self.handlers:
                self.handlers[event.stream_id].on_drained()
            elif isinstance(event, ev.StreamReset) and event.stream_id in self.handlers:
                self.handlers.pop(event.stream_id).on_reset()

    # -- Exchange: the same contract as server/connection.py, so the same few lines for attach /
    # detach; everything about transports, batching and timers is left out. ---------------------

    @property
    def closed(self) -> bool:
        return self.lost

    def attach(self, stream_id: int, handler: StreamHandler) -> None:
        self.handlers[stream_id] = handler

    def detach(self, stream_id: int, handler: StreamHandler) -> None:
        if self.handlers.get(stream_id) is handler:
            del self.handlers[stream_id]

    def flush(self) -> None:
        """Take all the core has; events that come out of sending go where they belong."""
        while not self.lost:
            data = self.core.data_to_send()
            if data:
                self.output += data
                self.writes.append(data)
            events = self.core.next_events()
            if events:
                self.dispatch(events)
            elif not data:
                return

    def flush_soon(self) -> None:
        self.flush()  # the real one saves writes by waiting a loop turn; memory has none to save

    def pause_reading(self, reason: str) -> None:
        self.reading_paused.add(reason)
        self.pause_log.append(("pause", reason))

    def resume_reading(self, reason: str) -> None:
        self.reading_paused.discard(reason)
        self.pause_log.append(("resume", reason))

    def default_headers(self) -> Headers:
        return list(DEFAULT_HEADERS)


class H2Session:
    """An h2 client connected to ``app`` through a MemoryExchange around an H2Core.

    ``reading=False`` is a client that stops reading: it takes the bytes but never opens its
    flow-control windows again, so the server's data backs up in the core."""

    def __init__(self, app: App, *, enable_push: bool = True, reading: bool = True,
                 max_pushes: int | None = None) -> None:
        self.server = MemoryExchange(app, H2Core())
        self.client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        settings = {SettingCodes.ENABLE_PUSH: int(enable_push)}
        if max_pushes is not None:  # the client's stream limit bounds the pushes it takes at once
            settings[SettingCodes.MAX_CONCURRENT_STREAMS] = max_pushes
        self.client.local_settings = Settings(client=True, initial_values=settings)
        self.client.initiate_connection()
        self.reading = reading
        self.replies: dict[int, Reply] = {}
        self.pump()

    def request(self, path: str, method: str = "GET", headers: Headers | None = None, *,
                body: bytes | None = None, end: bool = True) -> int:
        """Send a request (a body, if given, in one DATA frame); ``end=False`` leaves the stream
        open for ``send_body``.  Returns the stream id."""
        sid: int = self.client.get_next_available_stream_id()
        head = [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", AUTHORITY),
                (b":path", path.encode()), *(headers or [])]
        self.client.send_headers(sid, head, end_stream=end and body is None)
        self.replies[sid] = Reply(sid)
        if body is not None:
            self.client.send_data(sid, body, end_stream=end)
        self.pump()
        return sid

    def send_body(self, sid: int, data: bytes, *, end: bool = False) -> None:
        self.client.send_data(sid, data, end_stream=end)
        self.pump()

    def reset(self, sid: int) -> None:
        self.client.reset_stream(sid)
        self.pump()

    def get(self, path: str, headers: Headers | None = None) -> Reply:
        return self.replies[self.request(path, headers=headers)]

    def pushes_of(self, sid: int) -> dict[bytes, Reply]:
        """The streams pushed on ``sid``, by path."""
        return {r.path: r for r in self.replies.values() if r.promised_by == sid}

    def pump(self) -> None:
        """Move bytes both ways until neither side has more to say."""
        while True:
            to_server = self.client.data_to_send()
            if to_server:
                self.server.receive(to_server)
            to_client = self.server.take_output()
            if not to_client and not to_server:
                return
            for event in self.client.receive_data(to_client):
                self._record(event)

    def _record(self, event: object) -> None:
        if isinstance(event, PushedStreamReceived):
            sid, headers = event.pushed_stream_id, event.headers
            assert sid is not None and headers is not None
            self.replies[sid] = Reply(sid, promised_by=event.parent_stream_id, request_headers=list(headers))
            return
        reply = self.replies.get(getattr(event, "stream_id", 0))
        if reply is None:
            return
        if isinstance(event, InformationalResponseReceived):
            reply.informational.append(list(event.headers))
        elif isinstance(event, ResponseReceived):
            reply.headers = list(event.headers)
        elif isinstance(event, DataReceived):
            reply.body += event.data
            if self.reading and event.flow_controlled_length:
                self.client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, StreamEnded):
            reply.done = True
        elif isinstance(event, StreamReset):
            reply.done, reply.reset = True, event.error_code


class H1Session:
    """Raw HTTP/1.1 bytes to ``app`` through a MemoryExchange around an H1Core."""

    def __init__(self, app: App) -> None:
        self.server = MemoryExchange(app, H1Core(), replace(INFO, alpn="http/1.1"))

    def send(self, raw: bytes) -> None:
        self.server.receive(raw)

    def replies(self) -> list[Reply]:
        """The responses written so far (taken out of the output)."""
        return parse_h1(self.server.take_output())


def parse_h1(data: bytes) -> list[Reply]:
    """HTTP/1.1 responses as H1Core frames them (content-length or chunked; not to HEAD), each
    with the 1xx responses before it.  Headers start with ``:status`` as on HTTP/2."""
    replies: list[Reply] = []
    informational: list[Headers] = []
    while data:
        head, found, data = data.partition(b"\r\n\r\n")
        assert found, f"incomplete response head {head[:80]!r}"
        status_line, *lines = head.split(b"\r\n")
        headers = [(b":status", status_line.split(b" ")[1])]
        headers += [(name.strip().lower(), value.strip()) for name, _, value in (li.partition(b":") for li in lines)]
        if status_line.split(b" ")[1].startswith(b"1"):
            informational.append(headers)
            continue
        reply = Reply(2 * len(replies) + 1, informational, headers, done=True)
        informational = []
        length = reply.header(b"content-length")
        if length is not None:
            reply.body += data[:int(length)]
            data = data[int(length):]
        elif reply.header(b"transfer-encoding") == b"chunked":
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line, 16)
                reply.body += data[:size]
                data = data[size + 2:]
                if size == 0:
                    break
        replies.append(reply)
    return replies


def write_site(root: Path) -> Path:
    """A small site for handler tests: a page linking a stylesheet (which loads a font) and a
    module script (which imports another)."""
    files = {
        "index.html": '<!doctype html><title>t</title><link rel=stylesheet href="/css/site.css">'
                      '<script type=module src="/js/app.js"></script><p>hello</p>\n',
        "css/site.css": '@font-face{font-family:x;src:url(/fonts/x.woff2) format("woff2")}body{font-family:x}\n',
        "fonts/x.woff2": "wOF2 not really a font",
        "js/app.js": 'import "./dep.js";\n',
        "js/dep.js": "export const x = 1;\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root
