"""Handlers (the site's responder, the router, ASGI mounts, dev mode) driven without sockets or TLS:
the server's own ``Connection`` (server/connection.py, with the real cores and the real Streams
of server/streams.py) on a transport that keeps its bytes in memory, and a client for each
protocol on the other end.  Nothing of the connection's routing is copied here: what a handler
sees is what it sees behind a socket.

- ``MemoryServer``: a ``Connection`` made by ``connection_made`` on a ``MemoryTransport``
  (ALPN picks the core, as with TLS); ``receive`` is ``data_received``, ``lose`` is
  ``connection_lost``.  Outside a running event loop it keeps a loop of its own, which the
  sessions turn once per exchange (``flush_soon`` and the bounded input slices run on it).
- ``H2Session``: the ``h2`` library as the client (push on or off, reading or not).
- ``H1Session``: HTTP/1.1 request bytes out, responses parsed back as they arrive.
- ``H3Session``: aioquic's HTTP/3 client, datagrams moved in memory to the server's own
  ``QuicSession`` (server/quic_session.py) on a ``MemoryEndpoint``, whose clock runs only as the
  pump lets it (to each QUIC timer as it falls due).

The sessions offer the same calls — ``request``, ``send_body``, ``get``, ``reset``, ``replies``,
``pushes_of``, ``window``, ``pump`` — so one test body runs on each protocol: parametrize over
``PROTOCOLS`` and build the client with ``session(protocol, app)``.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

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

from pushserve.config import Config
from pushserve.exchange import App, StreamHandler
from pushserve.protocol.events import Headers
from pushserve.server.connection import Connection, WorkerState
from pushserve.server.streams import CAPABILITIES, Capabilities
from tests.support.h2client import Reply
from tests.support.requests_sent import AUTHORITY, send_request

PEER = ("127.0.0.1", 50000)
LOCAL = ("127.0.0.1", 8443)
PROTOCOLS = ("h1", "h2", "h3")
# The connection reads only its limits from the config; any existing folder does as the site.
CONFIG = Config(site=Path(__file__).parent)
# reply.reset for an HTTP/1.1 response the server broke off by closing the connection (HTTP/2
# says so with RST_STREAM and an error code).
CUT_OFF = -1
_WRITE_HIGH_WATER = 64 * 1024  # a transport asks its protocol to stop writing above this


class _TLSFacts:
    """What the connection reads from the SSL object: version, cipher, ALPN."""

    def __init__(self, alpn: str) -> None:
        self.alpn = alpn

    def version(self) -> str:
        return "TLSv1.3"

    def cipher(self) -> tuple[str, str, int]:
        return ("TLS_AES_128_GCM_SHA256", "TLSv1.3", 128)

    def selected_alpn_protocol(self) -> str:
        return self.alpn


class MemoryTransport:
    """The transport half of a connection, in memory.  A client that does not take its bytes
    makes the buffer grow until the protocol is asked to pause writing, as a socket would."""

    def __init__(self, alpn: str, loop: asyncio.AbstractEventLoop) -> None:
        self.protocol: Connection | None = None
        self.loop = loop
        self.output = bytearray()  # written, not yet taken by the client
        self.writes: list[bytes] = []  # every write, as transport.write got it
        self.reading = True
        self.closed = False
        self.lost = False
        self._paused_writing = False
        self._extra: dict[str, Any] = {"peername": PEER, "sockname": LOCAL, "ssl_object": _TLSFacts(alpn)}

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.output += data
        self.writes.append(bytes(data))
        if len(self.output) > _WRITE_HIGH_WATER and not self._paused_writing and self.protocol is not None:
            self._paused_writing = True
            self.protocol.pause_writing()

    def take(self) -> bytes:
        data = bytes(self.output)
        self.output.clear()
        if self._paused_writing and self.protocol is not None:
            self._paused_writing = False
            self.protocol.resume_writing()
        return data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return len(self.output)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """The connection's limits for a TLS transport's own buffer; here every byte written is
        already "in the socket" (``output``), whose size alone pauses the writer."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.lose)  # as asyncio does: connection_lost on a later turn

    def abort(self) -> None:
        self.close()

    def lose(self) -> None:
        """The connection is gone: ``connection_lost``, once."""
        self.closed = True
        if not self.lost and self.protocol is not None:
            self.lost = True
            self.protocol.connection_lost(None)


class MemoryServer:
    """The server side of one connection: a real ``Connection`` on a ``MemoryTransport``."""

    def __init__(self, app: App, alpn: str, config: Config = CONFIG) -> None:
        try:
            loop = asyncio.get_running_loop()
            self.own_loop: asyncio.AbstractEventLoop | None = None
        except RuntimeError:
            loop = self.own_loop = asyncio.new_event_loop()
            weakref.finalize(self, loop.close)
        self.worker = WorkerState(config, app, loop)
        self.transport = MemoryTransport(alpn, loop)
        self.conn = Connection(self.worker)
        self.transport.protocol = self.conn
        self.conn.connection_made(self.transport)

    def turn(self) -> None:
        """Run what is ready on the loop of our own (nothing to do inside a running loop: the
        test awaits instead)."""
        loop = self.own_loop
        if loop is not None and not loop.is_closed():
            loop.run_until_complete(asyncio.sleep(0))

    def receive(self, data: bytes) -> None:
        """Bytes from the client, as the event loop hands them to the connection."""
        if data and not self.transport.closed:
            self.conn.data_received(data)

    def receive_eof(self) -> None:
        if not self.transport.closed:
            self.conn.eof_received()

    def take_output(self) -> bytes:
        return self.transport.take()

    def lose(self) -> None:
        """The connection is gone (``connection_lost``): every attached handler hears on_reset."""
        self.transport.lose()

    # What tests look at.

    @property
    def handlers(self) -> dict[int, StreamHandler]:
        return self.conn.handlers

    @property
    def pushed(self) -> set[str]:
        return self.conn.pushed

    @property
    def reading_paused(self) -> set[str]:
        return self.conn.reading_paused

    @property
    def output(self) -> bytearray:
        return self.transport.output

    @property
    def writes(self) -> list[bytes]:
        return self.transport.writes


class Session(Protocol):
    """What a test body needs of a client, whatever the protocol."""

    protocol: str
    server: MemoryServer
    replies: dict[int, Reply]

    def request(self, path: str, method: str = "GET", headers: Headers | None = None, *,
                body: bytes | None = None, end: bool = True) -> int: ...

    def send_body(self, sid: int, data: bytes, *, end: bool = False) -> None: ...

    def get(self, path: str, headers: Headers | None = None) -> Reply: ...

    def reset(self, sid: int) -> None: ...

    def pushes_of(self, sid: int) -> dict[bytes, Reply]: ...

    def pump(self) -> None: ...

    def window(self, sid: int) -> int | None:
        """Bytes of body the client may send on ``sid`` now (flow control), None where the
        protocol has no window and the server holds the client back by not reading."""


def capabilities(protocol: str) -> Capabilities:
    """The server's own row for what a session of ``protocol`` speaks, to tell a test what to expect."""
    return CAPABILITIES[{"h1": "1.1", "h2": "2", "h3": "3"}[protocol]]


PUSHING = tuple(p for p in PROTOCOLS if capabilities(p).push)  # protocols with server push
MULTIPLEXED = tuple(p for p in PROTOCOLS if capabilities(p).multiplexed)  # … with a window per stream
ONE_AT_A_TIME = tuple(p for p in PROTOCOLS if not capabilities(p).multiplexed)


def session(protocol: str, app: App, **options: Any) -> Session:
    """A client of ``protocol`` ("h1", "h2", "h3") connected to ``app``; ``options`` are the
    session's (``enable_push``, ``reading``, ``max_pushes``: where a protocol has no such
    thing, a browser's choice is taken: no push)."""
    factory: Callable[..., Session] = {"h1": H1Session, "h2": H2Session, "h3": H3Session}[protocol]
    return factory(app, **options)


class H2Session:
    """An h2 client connected to ``app`` through a MemoryServer around an H2Core.

    ``reading=False`` is a client that stops reading: it takes the bytes but never opens its
    flow-control windows again, so the server's data backs up in the core."""

    protocol = "h2"

    def __init__(self, app: App, *, enable_push: bool = True, reading: bool = True,
                 max_pushes: int | None = None, config: Config = CONFIG) -> None:
        self.server = MemoryServer(app, "h2", config)
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
        self.replies[sid] = Reply(sid)
        send_request(self.client, sid, path, method, headers, body, end)
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

    def window(self, sid: int) -> int | None:
        room: int = self.client.local_flow_control_window(sid)
        return room

    def pushes_of(self, sid: int) -> dict[bytes, Reply]:
        """The streams pushed on ``sid``, by path."""
        return {r.path: r for r in self.replies.values() if r.promised_by == sid}

    def pump(self) -> None:
        """Move bytes both ways until neither side has more to say."""
        idle = 0
        while idle < 2:  # a quiet exchange, then one more loop turn that stays quiet
            self.server.turn()
            to_server = self.client.data_to_send()
            if to_server:
                self.server.receive(to_server)
            to_client = self.server.take_output()
            idle = 0 if to_client or to_server else idle + 1
            for event in self.client.receive_data(to_client) if to_client else ():
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


_REQUEST_LINE = re.compile(rb"([A-Z]+) (\S+) HTTP/1\.[01]\r\n")


class H1Session:
    """An HTTP/1.1 client connected to ``app`` through a MemoryServer around an H1Core.  Requests
    go out as bytes (``request``, or ``send`` for hand-made ones, pipelined as they come) and
    responses are parsed as they arrive, each with the 1xx before it.  Headers start with
    ``:status`` as on HTTP/2.  Stream ids are the core's: 1, 3, 5… in request order.

    ``reading=False`` is a client that stops reading: the bytes stay in the transport, which
    asks the connection to pause writing once they pile up.  ``reset`` closes the connection:
    HTTP/1.1's only way to abandon a request."""

    protocol = "h1"

    def __init__(self, app: App, *, enable_push: bool = False, reading: bool = True,
                 max_pushes: int | None = None, config: Config = CONFIG) -> None:
        self.server = MemoryServer(app, "http/1.1", config)
        self.reading = reading
        self.replies: dict[int, Reply] = {}
        self._methods: dict[int, bytes] = {}
        self._waiting: deque[int] = deque()  # requests sent and not yet fully answered
        self._next_id = 1
        self._input = bytearray()
        self._current: Reply | None = None  # response whose body is being read
        self._left = 0  # body bytes of _current still to come (-1: chunked, -2: until close)
        self._sent = b""  # part of a hand-made request not yet seen whole

    def request(self, path: str, method: str = "GET", headers: Headers | None = None, *,
                body: bytes | None = None, end: bool = True) -> int:
        """Send a request; a body, if given, with its length (``end=False``: chunked, continued
        with ``send_body``).  Returns the stream id."""
        sid = self._register(method.encode())
        fields = [(b"host", AUTHORITY), *(headers or [])]
        names = {name.lower() for name, _ in fields}
        if not end:
            fields.append((b"transfer-encoding", b"chunked"))
        elif body is not None and b"content-length" not in names:
            fields.append((b"content-length", b"%d" % len(body)))
        head = b"%s %s HTTP/1.1\r\n%s\r\n" % (method.encode(), path.encode(),
                                              b"".join(n + b": " + v + b"\r\n" for n, v in fields))
        if not end:
            head += _chunk(body or b"")
        elif body is not None:
            head += body
        self.server.receive(head)
        self.pump()
        return sid

    def send_body(self, sid: int, data: bytes, *, end: bool = False) -> None:
        assert sid == self._next_id - 2, "HTTP/1.1 sends a body only for the latest request"
        self.server.receive(_chunk(data) + (b"0\r\n\r\n" if end else b""))
        self.pump()

    def send(self, raw: bytes) -> None:
        """Hand-made request bytes (pipelined requests, odd framing): each request head in them
        is noted, so its response is parsed."""
        self._sent += raw
        while True:
            m = _REQUEST_LINE.match(self._sent)
            end = self._sent.find(b"\r\n\r\n")
            if m is None or end < 0:
                break
            length = re.search(rb"\r\ncontent-length: *(\d+)", self._sent[:end], re.IGNORECASE)
            size = end + 4 + (int(length.group(1)) if length else 0)
            if len(self._sent) < size:
                break
            self._register(m.group(1))
            self._sent = self._sent[size:]
        self.server.receive(raw)
        self.pump()

    def get(self, path: str, headers: Headers | None = None) -> Reply:
        return self.replies[self.request(path, headers=headers)]

    def reset(self, sid: int) -> None:
        self.server.receive_eof()  # the client hangs up: end of input, then the connection is gone
        self.server.lose()
        self.pump()

    def pushes_of(self, sid: int) -> dict[bytes, Reply]:
        return {}

    def window(self, sid: int) -> int | None:
        return None

    def responses(self) -> list[Reply]:
        """Every reply so far, in request order."""
        return [self.replies[sid] for sid in sorted(self.replies)]

    def pump(self) -> None:
        idle = 0
        while idle < 2:
            self.server.turn()
            data = self.server.take_output() if self.reading else b""
            idle = 0 if data else idle + 1
            if data:
                self._input += data
                self._parse()
        if self.server.transport.closed:
            self._cut_off()

    def _register(self, method: bytes) -> int:
        sid, self._next_id = self._next_id, self._next_id + 2
        self.replies[sid] = Reply(sid)
        self._methods[sid] = method
        self._waiting.append(sid)
        return sid

    def _parse(self) -> None:
        buf = self._input
        while buf:
            reply = self._current
            if reply is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0 or not self._waiting:
                    return
                status_line, *lines = bytes(buf[:end]).split(b"\r\n")
                del buf[:end + 4]
                status = status_line.split(b" ")[1]
                headers = [(b":status", status)]
                headers += [(n.strip().lower(), v.strip()) for n, _, v in (li.partition(b":") for li in lines)]
                reply = self.replies[self._waiting[0]]
                if status.startswith(b"1"):
                    reply.informational.append(headers)
                    continue
                reply.headers = headers
                length = reply.header(b"content-length")
                if self._methods[reply.stream_id] == b"HEAD" or status in (b"204", b"304"):
                    self._left = 0
                elif reply.header(b"transfer-encoding") == b"chunked":
                    self._left = -1
                else:
                    self._left = int(length) if length is not None else -2
                self._current = reply
            if self._left > 0:
                take = bytes(buf[:self._left])
                del buf[:len(take)]
                reply.body += take
                self._left -= len(take)
            elif self._left == -1:
                size_end = buf.find(b"\r\n")
                if size_end < 0:
                    return
                size = int(bytes(buf[:size_end]).split(b";")[0], 16)
                if len(buf) < size_end + 2 + size + 2:
                    return
                reply.body += buf[size_end + 2:size_end + 2 + size]
                del buf[:size_end + 2 + size + 2]
                if size:
                    continue
                self._left = 0
            elif self._left == -2:
                reply.body += buf
                buf.clear()
                return
            if self._left == 0:
                reply.done = True
                self._current = None
                self._waiting.popleft()

    def _cut_off(self) -> None:
        """The server closed the connection: a response read to its close is whole; any other
        response not yet whole was broken off, and requests never answered were dropped."""
        if self._current is not None and self._left == -2:
            self._current.done = True
            self._current = None
            self._waiting.popleft()
        for sid in self._waiting:
            reply = self.replies[sid]
            if not reply.done:
                reply.done, reply.reset = True, CUT_OFF
        self._waiting.clear()
        self._current = None


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


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


# -- HTTP/3 ---------------------------------------------------------------------------------------------

_CERT: list[Path] = []
_SOCKET_BUFFER = 212992  # Linux's default UDP receive buffer


def _certificate() -> tuple[Path, Path]:
    """One throwaway certificate for every HTTP/3 session of the run (QUIC has no cleartext)."""
    if not _CERT:
        import tempfile

        from pushserve.bench.certs import make_cert

        pair = make_cert(Path(tempfile.mkdtemp(prefix="pushserve-memory-h3-")))
        _CERT.extend([pair.cert, pair.key])
    return _CERT[0], _CERT[1]


class MemoryEndpoint:
    """What a ``QuicSession`` uses of the worker's UDP endpoint (server/quic.py), in memory:
    datagrams it sends pile up for the client, the timer it asks for is remembered, and the
    clock is the test's."""

    def __init__(self, worker: WorkerState) -> None:
        self.state = worker
        self.loop = worker.loop
        self.local = LOCAL
        self.routes: dict[bytes, Any] = {}
        self.clock = 1000.0
        self.sent: list[bytes] = []  # datagrams for the client, not yet taken
        self.forgotten = False

    def now(self) -> float:
        return self.clock

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert addr == PEER
        self.sent.append(data)

    def schedule(self, session: Any, when: float | None) -> None:
        session.timer_at = when

    def forget(self, session: Any) -> None:
        self.forgotten = True
        self.state.connections.discard(session)


class H3Server:
    """The server side of one HTTP/3 connection: the server's own ``QuicSession`` and
    ``H3Core`` on a ``MemoryEndpoint``; what tests look at, as on ``MemoryServer``."""

    def __init__(self, app: App, config: Config) -> None:
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.tls import CipherSuite

        try:
            loop = asyncio.get_running_loop()
            self.own_loop: asyncio.AbstractEventLoop | None = None
        except RuntimeError:
            loop = self.own_loop = asyncio.new_event_loop()
            weakref.finalize(self, loop.close)
        self.worker = WorkerState(config, app, loop)
        self.endpoint = MemoryEndpoint(self.worker)
        cert, key = _certificate()
        self.quic_config = QuicConfiguration(is_client=False, alpn_protocols=["h3"], max_stream_data=1 << 20,
                                             max_data=1 << 20, idle_timeout=config.limits.idle_timeout,
                                             max_datagram_size=1350,
                                             # the cipher the other sessions' TLS facts name
                                             cipher_suites=[CipherSuite.AES_128_GCM_SHA256])
        self.quic_config.load_cert_chain(cert, key)
        self.conn: Any = None  # the QuicSession, once the client's first Initial arrived

    def receive(self, data: bytes) -> None:
        from pushserve.protocol.h3 import ConnectionIds, H3Core
        from pushserve.protocol.h3.packets import parse
        from pushserve.server.quic_session import QuicSession

        if self.conn is None:
            incoming = parse(data)
            assert incoming is not None
            limits = self.worker.config.limits
            core = H3Core(self.quic_config, original_destination_connection_id=incoming.dcid,
                          cids=ConnectionIds(b"m" * 32), max_concurrent_streams=limits.max_concurrent_streams)
            self.conn = QuicSession(self.endpoint, core, PEER, LOCAL, None)
            self.worker.connections.add(self.conn)
        self.conn.receive(data, PEER, self.endpoint.clock)

    def turn(self) -> None:
        loop = self.own_loop
        if loop is not None and not loop.is_closed():
            loop.run_until_complete(asyncio.sleep(0))

    def lose(self) -> None:
        """The connection is gone at once (a crash, not a close): every handler hears on_reset."""
        if self.conn is not None:
            self.conn.finish()

    @property
    def handlers(self) -> dict[int, StreamHandler]:
        return self.conn.handlers if self.conn is not None else {}

    @property
    def pushed(self) -> set[str]:
        return self.conn.pushed if self.conn is not None else set()

    @property
    def reading_paused(self) -> set[str]:
        return set()  # QUIC holds a client back by flow control alone

    @property
    def output(self) -> bytes:
        """What was sent and not yet taken by the client (in its socket buffer, as it were)."""
        return b"".join(self.endpoint.sent)


class H3Session:
    """aioquic's HTTP/3 client connected to ``app`` through an ``H3Server``.  ``reading=False``
    is a client that stops reading its socket: the datagrams wait for it (up to a socket
    buffer's worth, the rest lost), nothing is acknowledged and no window opens, so the server's
    data stays in flight; reading again, it takes what waited.  ``enable_push`` (as aioquic's client by default, and as
    ``H2Session``; no browser does) sends MAX_PUSH_ID for ``max_pushes`` pushes, 100 unless said."""

    protocol = "h3"

    def __init__(self, app: App, *, enable_push: bool = True, reading: bool = True,
                 max_pushes: int | None = None, config: Config = CONFIG) -> None:
        import ssl

        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection

        from tests.support.h3client import ClientH3, Recorder

        self.server = H3Server(app, config)
        client_config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name="localhost",
                                          verify_mode=ssl.CERT_NONE)
        self.quic = QuicConnection(configuration=client_config)
        self.client = ClientH3(self.quic, push=enable_push, max_pushes=max_pushes or 100)
        self.recorder = Recorder()
        self.replies: dict[int, Reply] = self.recorder.replies  # type: ignore[assignment]
        self.reading = reading
        self.quic.connect(LOCAL, self.server.endpoint.clock)
        self._handshaking = True
        self.pump()
        self._handshaking = False

    @property
    def clock(self) -> float:
        return self.server.endpoint.clock

    def request(self, path: str, method: str = "GET", headers: Headers | None = None, *,
                body: bytes | None = None, end: bool = True) -> int:
        from tests.support.h3client import H3Reply

        sid: int = self.quic.get_next_available_stream_id()
        self.replies[sid] = H3Reply(sid)
        send_request(self.client, sid, path, method, headers, body, end)
        self.pump()
        return sid

    def send_body(self, sid: int, data: bytes, *, end: bool = False) -> None:
        self.client.send_data(sid, data, end_stream=end)
        self.pump()

    def reset(self, sid: int) -> None:
        """Abandon the request as a client does: STOP_SENDING and RESET_STREAM."""
        self.quic.stop_stream(sid, 0x10C)
        self.quic.reset_stream(sid, 0x10C)
        self.pump()

    def get(self, path: str, headers: Headers | None = None) -> Reply:
        return self.replies[self.request(path, headers=headers)]

    def window(self, sid: int) -> int | None:
        stream = self.quic._streams.get(sid)
        if stream is None:
            return None
        return int(stream.max_stream_data_remote - stream.sender._buffer_stop)

    def pushes_of(self, sid: int) -> dict[bytes, Reply]:
        return {r.path: r for r in self.recorder.pushes.values() if r.promised_by == sid and r.stream_id >= 0}

    def pump(self, settle: float = 0.5) -> None:
        """Move datagrams both ways until neither side has more to say, the clock running on to
        each QUIC timer that falls due within ``settle`` seconds of quiet (pacing, delayed
        acknowledgements, loss probes); a timer further off (an idle timeout) waits."""
        endpoint = self.server.endpoint
        for _ in range(20_000):
            self.server.turn()
            moved = False
            for data, _addr in self.quic.datagrams_to_send(endpoint.clock):
                moved = True
                self.server.receive(data)
            conn = self.server.conn
            if conn is not None:
                conn.transmit()
            if self.reading:
                sent, endpoint.sent = endpoint.sent, []
                for data in sent:
                    moved = True
                    self.quic.receive_datagram(data, LOCAL, endpoint.clock)
            else:  # they wait in the socket buffer, which holds so much and drops the rest
                held = 0
                for i, data in enumerate(endpoint.sent):
                    held += len(data)
                    if held > _SOCKET_BUFFER:
                        del endpoint.sent[i:]
                        break
            while (event := self.quic.next_event()) is not None:
                self.recorder.quic_event(event, self.client)
            for pushed in self.recorder.pushes.values():  # under its stream, once that has begun
                if pushed.stream_id >= 0:
                    self.replies.setdefault(pushed.stream_id, pushed)
            for sid, code in self.recorder.stopped.items():
                reply = self.replies.get(sid)
                if code == 0x100 and reply is not None and reply.done and reply.reset is None:
                    reply.reset = 0  # told to stop sending after a whole response: HTTP/2's RST_STREAM NO_ERROR
            if moved:
                continue
            timers = [t for t in (self.quic.get_timer(), conn.timer_at if conn is not None else None)
                      if t is not None and t <= endpoint.clock + settle]
            if not timers:
                return
            endpoint.clock = max(endpoint.clock, min(timers))
            if (t := self.quic.get_timer()) is not None and t <= endpoint.clock:
                self.quic.handle_timer(endpoint.clock)
            if conn is not None and conn.timer_at is not None and conn.timer_at <= endpoint.clock:
                conn.timer_at = None
                conn.on_timer(endpoint.clock)
        raise AssertionError("the HTTP/3 pair kept talking")
