"""aioquic's HTTP/3 connection with pushserve's limits, and the reading aioquic leaves out.

* **Header sections** (RFC 9114 §4.2.2, RFC 9204 §7.3): aioquic buffers a HEADERS frame of any
  length and lets QPACK decode it into any number of fields.  Here a HEADERS frame longer than
  ``max_field_section_size`` is refused as soon as its length is known; its field lines are
  counted before QPACK decodes them (at most ``MAX_FIELD_LINES``: with dynamic-table entries of at
  most ``QPACK_TABLE_CAPACITY`` bytes, no block decodes to more than 128 * 4 KiB, whatever
  references it repeats — the "QPACK bomb"); and the decoded section must fit
  ``max_field_section_size``, which SETTINGS_MAX_FIELD_SECTION_SIZE announces.  Each is a
  connection error, H3_EXCESSIVE_LOAD, as the HTTP/2 core answers an HPACK bomb.
* **GOAWAY**: aioquic reads a peer's GOAWAY but cannot send one; ``send_goaway`` does.
* **PRIORITY_UPDATE** (RFC 9218 §7.2): aioquic skips the frame's payload on the control stream,
  so ``ControlReader`` reads the client's control stream beside it and returns the updates.
"""

from __future__ import annotations

from aioquic.buffer import Buffer, BufferReadError, encode_uint_var
from aioquic.h3.connection import (
    ErrorCode,
    FrameType,
    H3Connection,
    H3Stream,
    ProtocolError,
    Setting,
    encode_frame,
)
from aioquic.h3.events import Headers
from aioquic.quic.connection import QuicConnection

# QPACK's integers are HPACK's (RFC 9204 §4.1.1 refers to RFC 7541 §5.1): one decoder of them.
from pushserve.protocol.h2.hpack_decoder import HPACKError, _integer

MAX_FIELD_LINES = 128
QPACK_TABLE_CAPACITY = 4096  # aioquic's (and nginx's) default; RFC 9204 §3.2.3
QPACK_BLOCKED_STREAMS = 16

PRIORITY_UPDATE_REQUEST = 0xF0700
PRIORITY_UPDATE_PUSH = 0xF0701
_MAX_PRIORITY_VALUE = 256  # a longer Priority Field Value is skipped unread


class ExcessiveLoad(ProtocolError):
    error_code = ErrorCode.H3_EXCESSIVE_LOAD


class ServerH3(H3Connection):
    def __init__(self, quic: QuicConnection, *, max_field_section_size: int) -> None:
        self.max_field_section_size = max_field_section_size  # before super(): it sends our SETTINGS
        super().__init__(quic)

    def send_goaway(self, stream_id: int) -> None:
        """RFC 9114 §5.2: requests on ``stream_id`` and above will not be processed."""
        control = self._local_control_stream_id
        if control is not None:
            self._quic.send_stream_data(control, encode_frame(FrameType.GOAWAY, encode_uint_var(stream_id)))

    @property
    def push_ids_left(self) -> int:
        """Pushes the client allows from now on (MAX_PUSH_ID; 0 when it sent none)."""
        if self._max_push_id is None:
            return 0
        return self._max_push_id + 1 - self._next_push_id

    # -- aioquic's hooks ------------------------------------------------------------------------------

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        settings.pop(Setting.ENABLE_CONNECT_PROTOCOL, None)  # no extended CONNECT (WebSocket) here
        settings[Setting.MAX_FIELD_SECTION_SIZE] = self.max_field_section_size
        return settings

    def _check_request_or_push_frame_type(self, frame_type: int, stream: H3Stream) -> None:
        super()._check_request_or_push_frame_type(frame_type, stream)
        if frame_type == FrameType.HEADERS and (stream.frame_size or 0) > self.max_field_section_size:
            raise ExcessiveLoad(f"a HEADERS frame of {stream.frame_size} bytes")

    def _decode_headers(self, stream_id: int, frame_data: bytes | None) -> Headers:
        if frame_data is not None and count_field_lines(frame_data) > MAX_FIELD_LINES:
            raise ExcessiveLoad(f"more than {MAX_FIELD_LINES} field lines in a header section")
        headers = super()._decode_headers(stream_id, frame_data)
        size = 0
        for name, value in headers:
            size += len(name) + len(value) + 32  # RFC 9114 §4.2.2
        if size > self.max_field_section_size:
            raise ExcessiveLoad(f"a header section of {size} bytes decoded")
        return headers


def count_field_lines(block: bytes) -> int:
    """How many field lines an encoded field section holds (RFC 9204 §4.5), read without
    decoding anything; a block that does not parse counts as 0 and is left to QPACK to refuse."""
    try:
        _, pos = _integer(block, 0, 8)  # Required Insert Count
        _, pos = _integer(block, pos, 7)  # sign and Delta Base
        lines = 0
        end = len(block)
        while pos < end:
            first = block[pos]
            if first & 0x80:  # indexed field line
                _, pos = _integer(block, pos, 6)
            elif first & 0x40:  # literal with name reference, then the value
                _, pos = _integer(block, pos, 4)
                length, pos = _integer(block, pos, 7)
                pos += length
            elif first & 0x20:  # literal with literal name, then the value
                length, pos = _integer(block, pos, 3)
                pos += length
                length, pos = _integer(block, pos, 7)
                pos += length
            elif first & 0x10:  # indexed field line with post-base index
                _, pos = _integer(block, pos, 4)
            else:  # literal with post-base name reference, then the value
                _, pos = _integer(block, pos, 3)
                length, pos = _integer(block, pos, 7)
                pos += length
            lines += 1
            if lines > MAX_FIELD_LINES:
                break
        return lines
    except (IndexError, HPACKError):
        return 0


class ControlReader:
    """Reads one client-initiated unidirectional stream beside aioquic: if it is the control
    stream, ``feed`` returns the PRIORITY_UPDATE frames on it as (is_push, element id, field
    value); every other frame, and every other kind of stream, is skipped without buffering."""

    __slots__ = ("_buf", "_frame_type", "_left", "active", "control")

    def __init__(self) -> None:
        self._buf = b""
        self._frame_type = -1  # -1: between frames
        self._left = 0  # payload bytes of the current frame still to come
        self.active = True
        self.control: bool | None = None  # None until the stream type has arrived

    def feed(self, data: bytes) -> list[tuple[bool, int, bytes]]:
        if not self.active:
            return []
        buf = self._buf + data if self._buf else data
        self._buf = b""
        found: list[tuple[bool, int, bytes]] = []
        pos = 0
        reader = Buffer(data=buf)
        try:
            if self.control is None:
                self.control = reader.pull_uint_var() == 0
                pos = reader.tell()
                if not self.control:
                    self.active = False
                    return []
            while pos < len(buf):
                if self._frame_type < 0:
                    reader.seek(pos)
                    self._frame_type = reader.pull_uint_var()
                    self._left = reader.pull_uint_var()
                    pos = reader.tell()
                wanted = self._frame_type in (PRIORITY_UPDATE_REQUEST, PRIORITY_UPDATE_PUSH) \
                    and self._left <= _MAX_PRIORITY_VALUE + 8
                if wanted:
                    if len(buf) - pos < self._left:
                        break  # the whole frame first
                    payload = Buffer(data=buf[pos:pos + self._left])
                    try:
                        element = payload.pull_uint_var()
                    except BufferReadError:  # an empty frame: nothing to update
                        pass
                    else:
                        found.append((self._frame_type == PRIORITY_UPDATE_PUSH, element,
                                      buf[pos + payload.tell():pos + self._left]))
                    pos += self._left
                    self._left = 0
                else:
                    skip = min(self._left, len(buf) - pos)
                    pos += skip
                    self._left -= skip
                    if self._left:
                        break
                self._frame_type = -1
        except BufferReadError:
            self._frame_type = -1  # a varint cut by the datagram: read it again with more bytes
            self._left = 0
        self._buf = buf[pos:]
        return found
