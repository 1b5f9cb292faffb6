"""HTTP/2 frame layout (RFC 9113 §4.1, §6): type and flag numbers, error codes, and the frames
the server writes, serialised by hand.

A frame header is 9 octets: 24-bit length, type, flags, 31-bit stream id.  Packing it with one
``struct`` call costs a fraction of building a ``hyperframe`` frame object, and the server
writes at least two frames per response, so every frame we send is built here.
"""

from __future__ import annotations

import struct
from enum import IntEnum

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
PRIORITY_UPDATE = 0x10  # RFC 9218 §7.2

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DEFAULT_MAX_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE until the peer says otherwise (§6.5.2)
MAX_WINDOW = 2**31 - 1  # §6.9.1
DEFAULT_WINDOW = 65535


class Setting(IntEnum):
    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8  # RFC 8441
    NO_RFC7540_PRIORITIES = 0x9  # RFC 9218


class ErrorCode(IntEnum):
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


def code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return hex(code)


# The 24-bit length is packed as a byte and a 16-bit half.
HEAD = struct.Struct(">BHBBL")
_U32 = struct.Struct(">L")
_SETTING = struct.Struct(">HL")
_GOAWAY = struct.Struct(">LL")
_pack_head = HEAD.pack


def head(length: int, ftype: int, flags: int, stream_id: int) -> bytes:
    return _pack_head(length >> 16, length & 0xFFFF, ftype, flags, stream_id)


def u32(value: int) -> bytes:
    return _U32.pack(value)


def settings(values: dict[int, int]) -> bytes:
    payload = b"".join(_SETTING.pack(k, v) for k, v in values.items())
    return head(len(payload), SETTINGS, 0, 0) + payload


SETTINGS_ACK = head(0, SETTINGS, ACK, 0)


def rst_stream(stream_id: int, code: int) -> bytes:
    return head(4, RST_STREAM, 0, stream_id) + _U32.pack(code)


def window_update(stream_id: int, increment: int) -> bytes:
    return head(4, WINDOW_UPDATE, 0, stream_id) + _U32.pack(increment)


def ping(opaque: bytes, *, ack: bool) -> bytes:
    return head(8, PING, ACK if ack else 0, 0) + opaque


def goaway(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    return head(8 + len(debug), GOAWAY, 0, 0) + _GOAWAY.pack(last_stream_id, code) + debug


def header_block(ftype: int, flags: int, stream_id: int, block: bytes, max_frame: int,
                 prefix: bytes = b"") -> list[bytes]:
    """A HEADERS or PUSH_PROMISE frame (``prefix``: the promised stream id) carrying ``block``,
    split into CONTINUATION frames when it does not fit (§6.10).  ``flags`` may hold
    END_STREAM; END_HEADERS is added to the last frame."""
    room = max_frame - len(prefix)
    if len(block) <= room:
        return [head(len(prefix) + len(block), ftype, flags | END_HEADERS, stream_id), prefix, block]
    out = [head(max_frame, ftype, flags, stream_id), prefix, block[:room]]
    i = room
    while i < len(block):
        piece = block[i:i + max_frame]
        i += len(piece)
        out += (head(len(piece), CONTINUATION, END_HEADERS if i >= len(block) else 0, stream_id), piece)
    return out
