"""Hostile HTTP/3 input built with aioquic's client, shared by the core's unit tests and the
real-process flood tests: a QPACK bomb, a lone Initial, and a probe that tells whether the server
still holds a connection (it answers a connection it forgot with a Stateless Reset)."""

from __future__ import annotations

import socket
import ssl
import time

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import FrameType, H3Connection, encode_frame
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from pushserve.protocol.h2.fields import _int as hpack_int  # QPACK's integers are HPACK's
from pushserve.protocol.h3.packets import parse


def qpack_bomb(quic: QuicConnection, h3: H3Connection, references: int) -> int:
    """Queue a QPACK bomb on ``quic``: one 4000-byte dynamic-table entry (RFC 9204 §4.3: Set
    Dynamic Table Capacity, Insert with Literal Name), then a request whose header section
    references it ``references`` times, one byte each.  Returns the request's stream ID."""
    name, value = b"x-bomb", b"v" * 4000
    encoder = hpack_int(4096, 5, 0x20) + hpack_int(len(name), 5, 0x40) + name + hpack_int(len(value), 7) + value
    assert h3._local_encoder_stream_id is not None
    quic.send_stream_data(h3._local_encoder_stream_id, encoder)
    block = hpack_int(2, 8) + b"\x00"  # Required Insert Count 1 (encoded 2), Base 1
    block += bytes([0xC0 | 17, 0xC0 | 23, 0xC0 | 1, 0x50, 1]) + b"x"  # GET https / :authority x
    block += b"\x80" * references  # indexed field line, dynamic table, relative index 0
    sid = quic.get_next_available_stream_id()
    quic.send_stream_data(sid, encode_frame(FrameType.HEADERS, block), end_stream=True)
    return sid


def huge_headers_frame(quic: QuicConnection, length: int = 70_000) -> int:
    """The head of a HEADERS frame of ``length`` bytes and a little of its payload."""
    sid = quic.get_next_available_stream_id()
    quic.send_stream_data(sid, encode_uint_var(FrameType.HEADERS) + encode_uint_var(length) + b"\x00" * 100)
    return sid


def lone_initial(server_name: str = "localhost") -> bytes:
    """A client's first Initial datagram (padded to 1200 bytes), from a client that will never
    say anything more."""
    client = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                                                            server_name=server_name, verify_mode=ssl.CERT_NONE))
    client.connect(("127.0.0.1", 443), now=time.monotonic())
    return client.datagrams_to_send(now=time.monotonic())[0][0]


def is_retry(datagram: bytes) -> bool:
    incoming = parse(datagram)
    return incoming is not None and incoming.long and incoming.packet_type.name == "RETRY"


def probe_until_reset(sock: socket.socket, server: tuple[str, int], dcid: bytes, *, timeout: float = 30.0,
                      every: float = 0.2) -> list[bytes]:
    """Send a short-header packet to ``dcid`` now and then until the server answers with a
    Stateless Reset (it no longer holds that connection); returns every datagram received
    meanwhile, the reset last.  A connection the server still holds drops the probe: it cannot
    be decrypted."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    probe = bytes([0x40]) + dcid + b"\x00" * 24
    sock.setblocking(False)
    while time.monotonic() < deadline:
        sock.sendto(probe, server)
        end = time.monotonic() + every
        while (left := end - time.monotonic()) > 0:
            import select

            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                break
            data = sock.recv(65536)
            got.append(data)
            if not data[0] & 0x80 and len(data) < len(probe):  # short, and shorter than the probe: a reset
                return got
    raise TimeoutError("the server never forgot the connection")
