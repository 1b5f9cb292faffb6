"""A raw-frame HTTP/2 client for conformance tests, in the spirit of h2spec.

Unlike tests/h2client.py (built on the h2 library, which refuses to send broken frames), this
client writes whatever bytes a test asks for: frames are a 9-byte header plus a payload, header
blocks come from an ``hpack.Encoder`` (or are hand-made when they must be broken).  Frames read
back are parsed here too, so nothing is hidden from the assertions.

Acceptance rules follow h2spec: a connection error is a GOAWAY with the expected code (this
client also requires the GOAWAY itself unless told otherwise, since pushserve always sends one);
a stream error is a RST_STREAM with the expected code on that stream, or, where a test allows
it, a GOAWAY with that code.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from hpack import Decoder, Encoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_TIMEOUT = 10.0  # a bound for a reply that should come, not a performance threshold

Headers = list[tuple[bytes, bytes]]


class T(IntEnum):
    """Frame types (RFC 9113 §6)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class F:
    """Frame flags."""

    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class E(IntEnum):
    """Error codes (RFC 9113 §7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class S(IntEnum):
    """Setting identifiers (RFC 9113 §6.5.2)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"", *, length: int | None = None) -> bytes:
    """Serialise one frame exactly as asked: no checks, ``length`` may lie about the payload."""
    n = len(payload) if length is None else length
    return n.to_bytes(3, "big") + bytes([ftype, flags]) + (stream_id & 0xFFFFFFFF).to_bytes(4, "big") + payload


def settings_payload(pairs: Iterable[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack("!HL", k, v) for k, v in pairs)


def priority_payload(depends_on: int, weight: int = 15, exclusive: bool = False) -> bytes:
    return struct.pack("!LB", depends_on | (0x80000000 if exclusive else 0), weight)


def u32(value: int) -> bytes:
    return struct.pack("!L", value)


def padded(payload: bytes, pad_length: int, padding: int | None = None) -> bytes:
    """A padded payload: Pad Length byte, payload, ``padding`` zero bytes (default pad_length)."""
    return bytes([pad_length]) + payload + b"\0" * (pad_length if padding is None else padding)


@dataclass(frozen=True)
class Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes
    # The decoded header block, on the frame that ended it (HEADERS, PUSH_PROMISE or CONTINUATION).
    headers: Headers | None = None

    @property
    def error_code(self) -> int:
        if self.type == T.RST_STREAM:
            return int.from_bytes(self.payload[:4], "big")
        if self.type == T.GOAWAY:
            return int.from_bytes(self.payload[4:8], "big")
        raise ValueError(f"frame type {self.type} has no error code")

    @property
    def last_stream_id(self) -> int:
        assert self.type == T.GOAWAY
        return int.from_bytes(self.payload[:4], "big") & 0x7FFFFFFF

    def describe(self) -> str:
        name = T(self.type).name if self.type in T._value2member_map_ else hex(self.type)
        extra = ""
        if self.type in (T.RST_STREAM, T.GOAWAY):
            code = self.error_code
            extra = " " + (E(code).name if code in E._value2member_map_ else hex(code))
            if self.type == T.GOAWAY:
                extra += f" last={self.last_stream_id} {self.payload[8:60]!r}"
        return f"{name}(flags={self.flags:#x}, stream={self.stream_id}, len={len(self.payload)}{extra})"


class Closed(Exception):
    """The server closed the connection (EOF, reset, or TLS close)."""


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    informational: list[Headers] = field(default_factory=list)


class RawH2:
    """One TLS connection with ALPN h2, driven frame by frame."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, *,
                 settings: Sequence[tuple[int, int]] = ((S.ENABLE_PUSH, 0),),
                 handshake: bool = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.timeout = timeout
        self.authority = f"localhost:{port}".encode()
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.server_settings: dict[int, int] = {}
        self.received: list[Frame] = []  # every frame read, for failure messages
        self.heads: dict[int, Headers] = {}  # final response head per stream, as it arrived
        self.closed = False
        self._buf = bytearray()
        self._block: bytearray | None = None  # header block being reassembled
        self._next_stream = 1
        self._ping_seq = 0
        if handshake:
            self.handshake(settings)

    # -- connection start ----------------------------------------------------------------------

    def handshake(self, settings: Sequence[tuple[int, int]]) -> None:
        """Preface + our SETTINGS; the server's first frame must be SETTINGS (§3.4), which we
        ACK; then wait for the ACK of ours, so our settings are known to be in force."""
        self.send(PREFACE + frame(T.SETTINGS, 0, 0, settings_payload(settings)))
        first = self.read_frame()
        assert first.type == T.SETTINGS and not first.flags & F.ACK, f"server preface was {first.describe()}"
        for i in range(0, len(first.payload), 6):
            k, v = struct.unpack("!HL", first.payload[i:i + 6])
            self.server_settings[k] = v
        self.send(frame(T.SETTINGS, F.ACK, 0))
        while True:
            f = self.read_frame()
            if f.type == T.SETTINGS and f.flags & F.ACK:
                return

    # -- sending -------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> None:
        self.send(frame(ftype, flags, stream_id, payload))

    def new_stream(self) -> int:
        sid = self._next_stream
        self._next_stream += 2
        return sid

    def use_stream(self, sid: int) -> int:
        """Record that a test opened ``sid`` by hand, so new_stream() continues above it."""
        self._next_stream = max(self._next_stream, sid + 2)
        return sid

    def request_headers(self, path: str = "/", method: str = "GET", extra: Headers | None = None) -> Headers:
        return [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", self.authority),
                (b":path", path.encode()), *(extra or [])]

    def block(self, headers: Headers) -> bytes:
        """HPACK-encode a header list (the encoder's dynamic table follows what was sent)."""
        data: bytes = self.encoder.encode(headers)
        return data

    def headers_frame(self, sid: int, headers: Headers, *, end_stream: bool = True) -> bytes:
        flags = F.END_HEADERS | (F.END_STREAM if end_stream else 0)
        return frame(T.HEADERS, flags, sid, self.block(headers))

    def send_headers(self, sid: int, headers: Headers, *, end_stream: bool = True) -> None:
        self.send(self.headers_frame(sid, headers, end_stream=end_stream))

    def ping(self, payload: bytes | None = None) -> bytes:
        """Send a PING; returns its payload."""
        if payload is None:
            self._ping_seq += 1
            payload = b"fence" + self._ping_seq.to_bytes(3, "big")
        self.send_frame(T.PING, 0, 0, payload)
        return payload

    # -- reading -------------------------------------------------------------------------------

    def _fill(self, timeout: float) -> None:
        if self.closed:
            raise Closed("connection already closed")
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            self.closed = True
            raise Closed(f"{type(exc).__name__}: {exc}") from exc
        if not chunk:
            self.closed = True
            raise Closed("EOF")
        self._buf += chunk

    def read_frame(self, timeout: float | None = None) -> Frame:
        """The next frame; raises Closed at end of connection, TimeoutError if none comes."""
        wait = self.timeout if timeout is None else timeout
        while True:
            if len(self._buf) >= 9:
                length = int.from_bytes(self._buf[:3], "big")
                if len(self._buf) >= 9 + length:
                    break
            self._fill(wait)
        head, payload = bytes(self._buf[:9]), bytes(self._buf[9:9 + length])
        del self._buf[:9 + length]
        ftype, flags = head[3], head[4]
        sid = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        f = Frame(ftype, flags, sid, payload, self._header_block(ftype, flags, payload))
        self.received.append(f)
        if f.headers is not None and ftype != T.PUSH_PROMISE:
            status = dict(f.headers).get(b":status", b"")
            if status.isdigit() and int(status) >= 200:
                self.heads.setdefault(sid, f.headers)
        return f

    def _header_block(self, ftype: int, flags: int, payload: bytes) -> Headers | None:
        """Reassemble and decode header blocks: the decoder must see every block, in order."""
        if ftype in (T.HEADERS, T.PUSH_PROMISE):
            i, end = 0, len(payload)
            if flags & F.PADDED:
                i, end = 1, end - payload[0]
            if ftype == T.HEADERS and flags & F.PRIORITY:
                i += 5
            if ftype == T.PUSH_PROMISE:
                i += 4
            self._block = bytearray(payload[i:end])
        elif ftype == T.CONTINUATION and self._block is not None:
            self._block += payload
        else:
            return None
        if not flags & F.END_HEADERS:
            return None
        block, self._block = bytes(self._block), None
        return [(bytes(k), bytes(v)) for k, v in self.decoder.decode(block, raw=True)]

    def history(self) -> str:
        return "\n  ".join(f.describe() for f in self.received[-30:]) or "(nothing)"

    # -- expectations --------------------------------------------------------------------------

    def expect_goaway(self, code: int, *, allow_close: bool = False) -> Frame | None:
        """A connection error: a GOAWAY with ``code``, after which the server closes the
        connection.  ``allow_close`` also accepts a bare close (h2spec's rule)."""
        while True:
            try:
                f = self.read_frame()
            except Closed:
                assert allow_close, f"connection closed without GOAWAY; frames:\n  {self.history()}"
                return None
            except TimeoutError:
                raise AssertionError(f"no GOAWAY({E(code).name}); frames:\n  {self.history()}") from None
            if f.type == T.GOAWAY:
                assert f.error_code == code, f"expected GOAWAY {E(code).name}, got {f.describe()}"
                self.expect_closed()
                return f

    def expect_closed(self) -> None:
        """The server closes the connection (anything still arriving before the close is read)."""
        while True:
            try:
                self.read_frame()
            except Closed:
                return
            except TimeoutError:
                raise AssertionError(f"connection not closed; frames:\n  {self.history()}") from None

    def expect_rst(self, sid: int, code: int | Sequence[int], *, allow_goaway: bool = False) -> Frame:
        """A stream error: RST_STREAM on ``sid`` with ``code`` (one of ``code``).  With
        ``allow_goaway``, a connection error with that code passes too (where h2spec allows it)."""
        codes = {code} if isinstance(code, int) else set(code)
        names = "/".join(E(c).name for c in sorted(codes))
        while True:
            try:
                f = self.read_frame()
            except (Closed, TimeoutError):
                raise AssertionError(f"no RST_STREAM({names}) on {sid}; frames:\n  {self.history()}") from None
            if f.type == T.RST_STREAM and f.stream_id == sid:
                assert f.error_code in codes, f"expected RST_STREAM {names}, got {f.describe()}"
                return f
            if f.type == T.GOAWAY:
                assert allow_goaway and f.error_code in codes, (
                    f"expected RST_STREAM {names} on {sid}, got {f.describe()}")
                return f

    def expect_ping_ack(self, payload: bytes) -> list[Frame]:
        """Read until the PING ACK carrying ``payload``; returns the frames that came before it.
        A GOAWAY or close on the way fails."""
        before: list[Frame] = []
        while True:
            try:
                f = self.read_frame()
            except (Closed, TimeoutError) as exc:
                raise AssertionError(f"no PING ACK ({exc!r}); frames:\n  {self.history()}") from None
            if f.type == T.PING and f.flags & F.ACK:
                assert f.payload == payload, f"PING ACK payload {f.payload!r} != {payload!r}"
                return before
            assert f.type != T.GOAWAY, f"unexpected {f.describe()}"
            before.append(f)

    def fence(self) -> list[Frame]:
        """Frames the server had sent before answering a PING sent now.  Everything the server
        wrote in reply to earlier input is among them, so this shows what it did *not* send."""
        return self.expect_ping_ack(self.ping())

    def expect_settings_ack(self) -> None:
        while True:
            f = self.read_frame()
            assert f.type != T.GOAWAY, f"unexpected {f.describe()}"
            if f.type == T.SETTINGS and f.flags & F.ACK:
                assert f.payload == b""
                return

    def read_response(self, sid: int, *, window_updates: bool = True) -> Reply:
        """Read frames until ``sid`` ends; DATA is acknowledged with WINDOW_UPDATE as it comes
        (connection and stream) when ``window_updates``.  A reset or GOAWAY fails."""
        informational: list[Headers] = []
        body = bytearray()
        ended = False
        while True:
            try:
                f = self.read_frame()
            except (Closed, TimeoutError) as exc:
                raise AssertionError(f"stream {sid} unfinished ({exc!r}); frames:\n  {self.history()}") from None
            assert f.type != T.GOAWAY, f"unexpected {f.describe()}"
            if f.stream_id != sid:
                continue
            assert f.type != T.RST_STREAM, f"unexpected {f.describe()}"
            if f.headers is not None:
                status = int(dict(f.headers)[b":status"])
                if status < 200:
                    informational.append(f.headers)
            final = self.heads.get(sid)  # read_frame records it (maybe before this call)
            if f.type == T.DATA:
                data = f.payload
                if f.flags & F.PADDED:
                    data = data[1:len(data) - data[0]]
                body += data
                if window_updates and f.payload:
                    self.send(frame(T.WINDOW_UPDATE, 0, 0, u32(len(f.payload)))
                              + frame(T.WINDOW_UPDATE, 0, sid, u32(len(f.payload))))
            if f.flags & F.END_STREAM and f.type in (T.DATA, T.HEADERS):
                ended = True
            # END_STREAM on a HEADERS frame takes effect once its block is complete.
            if ended and (f.headers is not None or f.type == T.DATA):
                assert final is not None, f"stream {sid} ended without a final response"
                return Reply(int(dict(final)[b":status"]), final, bytes(body), informational)

    def get(self, path: str = "/", method: str = "GET") -> Reply:
        sid = self.new_stream()
        self.send_headers(sid, self.request_headers(path, method))
        return self.read_response(sid)

    def assert_usable(self, path: str = "/css/print.css") -> None:
        """The connection still serves a request after what the test did."""
        reply = self.get(path)
        assert reply.status == 200, reply.headers

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
