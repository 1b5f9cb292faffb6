"""A small blocking HTTP/2 client on the h2 library, for tests: it can accept or refuse pushes,
reset streams, use a small window, and send raw frames."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.settings


@dataclass
class Reply:
    stream_id: int
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    done: bool = False
    reset: int | None = None
    promised_by: int | None = None  # parent stream for pushes
    request_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # of a push promise

    @property
    def status(self) -> int:
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> bytes | None:
        return dict(self.headers).get(name)

    def all(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]

    @property
    def path(self) -> bytes:
        return dict(self.request_headers)[b":path"]


class H2Client:
    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, *, enable_push: bool = True,
                 window: int = 65535, auto_window: bool = True, timeout: float = 20.0) -> None:
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.authority = f"localhost:{port}".encode()
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: int(enable_push),
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
        })
        self.conn.initiate_connection()
        self.auto_window = auto_window
        self.replies: dict[int, Reply] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.events: list[h2.events.Event] = []
        # (type, flags, stream id, length) of every frame received, read off the raw bytes, because
        # h2 hides frames for streams that are already closed.
        self.frames: list[tuple[int, int, int, int]] = []
        self._raw = b""
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str, headers: list[tuple[bytes, bytes]] | None = None, *, method: str = "GET",
                body: bytes | None = None) -> int:
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", self.authority),
                (b":path", path.encode()), *(headers or [])]
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.replies[sid] = Reply(sid)
        self.flush()
        return sid

    def reset(self, stream_id: int, code: int = 0x8) -> None:
        self.conn.reset_stream(stream_id, code)
        self.flush()
        reply = self.replies.get(stream_id)
        if reply is not None:
            reply.done, reply.reset = True, code

    def read_once(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return
        self._record_frames(data)
        for ev in self.conn.receive_data(data):
            self.events.append(ev)
            self._on(ev)
        self.flush()

    def _record_frames(self, data: bytes) -> None:
        self._raw += data
        while len(self._raw) >= 9:
            length = int.from_bytes(self._raw[:3], "big")
            if len(self._raw) < 9 + length:
                break
            ftype, flags = self._raw[3], self._raw[4]
            sid = int.from_bytes(self._raw[5:9], "big") & 0x7FFFFFFF
            self.frames.append((ftype, flags, sid, length))
            self._raw = self._raw[9 + length:]

    def _on(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.InformationalResponseReceived):
            self.replies[ev.stream_id].informational.append(list(ev.headers))
        elif isinstance(ev, h2.events.ResponseReceived):
            self.replies[ev.stream_id].headers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            reply = self.replies[ev.stream_id]
            reply.body += ev.data
            if self.auto_window and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.replies[ev.stream_id].done = True
        elif isinstance(ev, h2.events.StreamReset):
            r = self.replies.get(ev.stream_id)
            if r is not None:
                r.reset = ev.error_code
                r.done = True
        elif isinstance(ev, h2.events.PushedStreamReceived):
            self.replies[ev.pushed_stream_id] = Reply(ev.pushed_stream_id, promised_by=ev.parent_stream_id,
                                                      request_headers=list(ev.headers))
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def wait(self, *stream_ids: int, pushes: bool = True) -> None:
        """Read until the given streams (and, with pushes, every push they promised) are done."""
        def pending() -> bool:
            for r in self.replies.values():
                if r.done:
                    continue
                if r.stream_id in stream_ids or (pushes and r.promised_by in stream_ids):
                    return True
            return False

        while pending() and not self.closed and self.goaway is None:
            self.read_once()
        assert not pending(), f"connection ended first (goaway={self.goaway})"

    def get(self, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Reply:
        sid = self.request(path, headers)
        self.wait(sid)
        return self.replies[sid]

    def pushes_of(self, stream_id: int) -> list[Reply]:
        return [r for r in self.replies.values() if r.promised_by == stream_id]

    def read_until_closed(self) -> None:
        while not self.closed:
            self.read_once()

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self.flush()
        except OSError:
            pass
        self.sock.close()
