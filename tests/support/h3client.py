"""A small blocking HTTP/3 client on aioquic, for tests: over a real UDP socket, with push on or
off, and the knobs hostile tests need (stop acknowledging, send raw frames on a stream).

Debian's curl and h2load have no HTTP/3, so this is the repo's h3 client (and the bench's load
client builds on the same classes)."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aioquic.h3 import events as h3e
from aioquic.h3.connection import H3Connection, H3Stream
from aioquic.quic import events as qe
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from tests.support.h2client import Reply

Headers = list[tuple[bytes, bytes]]


class ClientH3(H3Connection):
    """aioquic's HTTP/3 client with push on (its default: MAX_PUSH_ID 8) or off (none sent).
    It also knows that the answer to HEAD has no body whatever its content-length says, which
    aioquic's own client does not (it closes the connection)."""

    def __init__(self, quic: QuicConnection, *, push: bool, max_pushes: int = 9) -> None:
        self._push = push
        self._max_pushes = max_pushes
        self._head: set[int] = set()
        super().__init__(quic)

    def _init_connection(self) -> None:
        self._max_push_id = self._max_pushes - 1 if self._push else None
        super()._init_connection()

    def send_headers(self, stream_id: int, headers: Headers, end_stream: bool = False) -> None:
        if (b":method", b"HEAD") in headers:
            self._head.add(stream_id)
        super().send_headers(stream_id, headers, end_stream)

    def _check_content_length(self, stream: H3Stream) -> None:
        if stream.stream_id not in self._head:
            super()._check_content_length(stream)


@dataclass
class H3Reply(Reply):
    push_id: int | None = None
    trailers: Headers = field(default_factory=list)


class Recorder:
    """Collects what a client's HTTP/3 connection reports into replies by stream and by push."""

    def __init__(self) -> None:
        self.replies: dict[int, H3Reply] = {}
        self.pushes: dict[int, H3Reply] = {}  # by push id
        self.terminated: qe.ConnectionTerminated | None = None
        self.stopped: dict[int, int] = {}  # STOP_SENDING received: stream -> error code

    def quic_event(self, event: qe.QuicEvent, h3: H3Connection) -> None:
        if isinstance(event, qe.ConnectionTerminated):
            self.terminated = event
        elif isinstance(event, qe.StopSendingReceived):
            self.stopped[event.stream_id] = event.error_code
        elif isinstance(event, qe.StreamReset) and event.stream_id in self.replies:
            reply = self.replies[event.stream_id]
            reply.done, reply.reset = True, event.error_code
        for h in h3.handle_event(event):
            self.h3_event(h)

    def h3_event(self, h: h3e.H3Event) -> None:
        if isinstance(h, h3e.PushPromiseReceived):
            self.pushes[h.push_id] = H3Reply(-1, promised_by=h.stream_id, request_headers=list(h.headers),
                                             push_id=h.push_id)
            return
        if not isinstance(h, h3e.HeadersReceived | h3e.DataReceived):
            return
        if h.push_id is not None:
            reply = self.pushes[h.push_id]
            reply.stream_id = h.stream_id
        else:
            reply = self.replies.setdefault(h.stream_id, H3Reply(h.stream_id))
        if isinstance(h, h3e.HeadersReceived):
            if h.headers and h.headers[0] == (b":status", h.headers[0][1]) and h.headers[0][1].startswith(b"1"):
                reply.informational.append(list(h.headers))
            elif reply.headers:
                reply.trailers = list(h.headers)
            else:
                reply.headers = list(h.headers)
        else:
            reply.body += h.data
        if h.stream_ended:
            reply.done = True


def client_configuration(*, ca_file: Path | None = None, server_name: str = "localhost",
                         window: int = 1 << 20) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name=server_name,
                               max_stream_data=window, max_data=window * 16)
    if ca_file is not None:
        config.load_verify_locations(str(ca_file))
    else:
        config.verify_mode = ssl.CERT_NONE
    return config


class H3Client(Recorder):
    """One QUIC connection to ``host:port``.  ``acknowledging=False`` after the handshake: a
    client that keeps its socket but never sends another packet (no ACKs)."""

    def __init__(self, host: str, port: int, *, ca_file: Path | None = None, push: bool = False,
                 server_name: str = "localhost", window: int = 1 << 20, connect: bool = True,
                 timeout: float = 30.0) -> None:
        super().__init__()
        self.addr = (socket.gethostbyname(host), port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.quic = QuicConnection(configuration=client_configuration(ca_file=ca_file, server_name=server_name,
                                                                      window=window))
        self.h3 = ClientH3(self.quic, push=push)
        self.acknowledging = True
        self.received = 0  # datagrams from the server
        self.received_bytes = 0
        self.datagrams: list[bytes] | None = None  # every datagram received, once set to a list
        self.timeout = timeout
        if connect:
            self.quic.connect(self.addr, time.monotonic())
            self.transmit()
            self.wait(lambda: self.quic._handshake_complete or self.terminated is not None)
            if self.terminated is not None:
                raise ConnectionError(f"h3 handshake failed: {self.terminated.reason_phrase} "
                                      f"(0x{self.terminated.error_code:x})")

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def transmit(self) -> None:
        if not self.acknowledging:
            return
        for data, addr in self.quic.datagrams_to_send(time.monotonic()):
            with contextlib.suppress(BlockingIOError):
                self.sock.sendto(data, addr)

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` for datagrams or the connection's timer; handle what came."""
        now = time.monotonic()
        timer = self.quic.get_timer()
        wait = timeout if timer is None else max(0.0, min(timeout, timer - now))
        readable, _, _ = select.select([self.sock], [], [], wait)
        now = time.monotonic()
        if readable:
            while True:
                try:
                    data, addr = self.sock.recvfrom(65536)
                except BlockingIOError:
                    break
                self.received += 1
                self.received_bytes += len(data)
                if self.datagrams is not None:
                    self.datagrams.append(data)
                if self.acknowledging:
                    self.quic.receive_datagram(data, addr, now)
        timer = self.quic.get_timer()
        if timer is not None and timer <= now and self.acknowledging:
            self.quic.handle_timer(now)
        while (event := self.quic.next_event()) is not None:
            self.quic_event(event, self.h3)
        self.transmit()

    def wait(self, done: Callable[[], bool], timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the h3 server in time")
            self.poll(min(left, 0.2))

    def request(self, path: str, method: str = "GET", headers: Headers | None = None, *,
                body: bytes | None = None, authority: str = "localhost", end: bool = True) -> int:
        sid = self.quic.get_next_available_stream_id()
        head: Headers = [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", authority.encode()),
                         (b":path", path.encode()), *(headers or [])]
        self.h3.send_headers(sid, head, end_stream=end and body is None)
        self.replies[sid] = H3Reply(sid)
        if body is not None:
            self.h3.send_data(sid, body, end_stream=end)
        self.transmit()
        return sid

    def get(self, path: str, headers: Headers | None = None, **kw: object) -> H3Reply:
        sid = self.request(path, headers=headers, **kw)  # type: ignore[arg-type]
        self.wait(lambda: self.replies[sid].done or self.terminated is not None)
        return self.replies[sid]

    def reset_token(self) -> bytes:
        """The Stateless Reset token of the connection ID this client sends to now."""
        token = self.quic._peer_cid.stateless_reset_token
        assert token is not None
        return token

    def close(self) -> None:
        if self.terminated is None and self.acknowledging:
            self.quic.close()
            self.transmit()
        self.sock.close()

    def __enter__(self) -> H3Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
