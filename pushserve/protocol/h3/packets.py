"""What a QUIC server answers before (or without) a connection: the routing facts of a
datagram, Version Negotiation, Retry and its address-validation tokens, an Initial that refuses
a connection, and Stateless Resets (RFC 9000 §§ 6,
8.1, 10.3, 17).  Sans-IO, like the cores: bytes in, bytes out, the time passed in.

The Stateless Reset token of a connection ID this server issues is an HMAC of the ID under a
secret all workers share (made once by the master), so any worker can reset a connection it does
not hold: one whose worker crashed (server/quic.py says when that happens).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import struct
from dataclasses import dataclass
from hashlib import sha256

from aioquic.buffer import Buffer, BufferReadError
from aioquic.quic.connection import TRANSPORT_CLOSE_FRAME_CAPACITY
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicFrameType,
    QuicPacketType,
    QuicProtocolVersion,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from aioquic.quic.packet_builder import QuicPacketBuilder

CID_LENGTH = 8
SUPPORTED_VERSIONS = (QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2)
MIN_INITIAL_SIZE = 1200  # RFC 9000 §14.1: a client's Initial datagram is at least this big
RESET_TOKEN_SIZE = 16
# RFC 9000 §10.3: a Stateless Reset looks like a short-header packet of at least 21 bytes; it
# must be shorter than the packet that caused it (so two endpoints cannot loop) and need not be
# longer than a typical short packet.
_MIN_RESET = 21
_MAX_RESET = 43


@dataclass(slots=True)
class Incoming:
    """The routing facts of one datagram (of its first packet, for coalesced ones)."""

    long: bool  # a long header: Initial, 0-RTT, Handshake, Retry or Version Negotiation
    version: int | None
    packet_type: QuicPacketType
    dcid: bytes
    scid: bytes
    token: bytes


def parse(data: bytes) -> Incoming | None:
    """The header of ``data``'s first packet, or None for something that is no QUIC packet."""
    if not data:
        return None
    if not data[0] & 0x80:  # the common case, a short header: route on the bytes, parse nothing
        if len(data) < 1 + CID_LENGTH or not data[0] & 0x40:
            return None
        return Incoming(False, None, QuicPacketType.ONE_RTT, data[1:1 + CID_LENGTH], b"", b"")
    try:
        header = pull_quic_header(Buffer(data=data), host_cid_length=CID_LENGTH)
    except (ValueError, BufferReadError):
        return None
    return Incoming(True, header.version, header.packet_type, header.destination_cid, header.source_cid,
                    header.token)


def version_negotiation(incoming: Incoming) -> bytes:
    return encode_quic_version_negotiation(source_cid=incoming.dcid, destination_cid=incoming.scid,
                                           supported_versions=list(SUPPORTED_VERSIONS))


def refuse(incoming: Incoming, error_code: int = QuicErrorCode.CONNECTION_REFUSED) -> bytes:
    """An Initial packet with CONNECTION_CLOSE: "not now" without building a connection (the
    Initial keys come from the client's chosen ID, no TLS is needed)."""
    assert incoming.version is not None
    crypto = CryptoPair()
    crypto.setup_initial(cid=incoming.dcid, is_client=False, version=incoming.version)
    builder = QuicPacketBuilder(host_cid=incoming.dcid, is_client=False, max_datagram_size=MIN_INITIAL_SIZE,
                                peer_cid=incoming.scid, version=incoming.version)
    builder.start_packet(QuicPacketType.INITIAL, crypto)
    buf = builder.start_frame(QuicFrameType.TRANSPORT_CLOSE, capacity=TRANSPORT_CLOSE_FRAME_CAPACITY)
    buf.push_uint_var(error_code)
    buf.push_uint_var(QuicFrameType.PADDING)
    buf.push_uint_var(0)  # no reason phrase
    datagrams, _ = builder.flush()
    return datagrams[0]


class ConnectionIds:
    """Connection IDs of this server, and the Stateless Reset token of any of them."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @staticmethod
    def new() -> bytes:
        return os.urandom(CID_LENGTH)

    def reset_token(self, cid: bytes) -> bytes:
        return hmac.new(self._secret, b"reset" + cid, sha256).digest()[:RESET_TOKEN_SIZE]

    def stateless_reset(self, cid: bytes, trigger_size: int) -> bytes | None:
        """A Stateless Reset for a short-header packet of ``trigger_size`` bytes sent to
        ``cid``, or None when that packet is too short to answer without risking a loop."""
        size = min(trigger_size - 1, _MAX_RESET)
        if size < _MIN_RESET:
            return None
        filler = bytearray(os.urandom(size - RESET_TOKEN_SIZE))
        filler[0] = 0x40 | (filler[0] & 0x3F)  # short header form, fixed bit set
        return bytes(filler) + self.reset_token(cid)


_TOKEN = struct.Struct("!d")
TOKEN_LIFETIME = 10.0  # seconds: a client returns a Retry token at once (RFC 9000 §8.1.4)


class RetryTokens:
    """Address-validation tokens of Retry packets (RFC 9000 §8.1.2): sealed with AES-GCM under
    the shared secret, bound to the client's address and the Retry's source ID, carrying the
    client's original destination ID and the time they were made; any worker can open them."""

    def __init__(self, secret: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(hmac.new(secret, b"retry", sha256).digest()[:16])

    def retry(self, incoming: Incoming, addr: tuple[str, int], now: float) -> bytes:
        """The Retry packet answering ``incoming``: the client repeats its Initial with the token."""
        assert incoming.version is not None
        scid = os.urandom(CID_LENGTH)
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, _TOKEN.pack(now) + bytes([len(incoming.dcid)]) + incoming.dcid,
                                    _bound(addr, scid))
        return encode_quic_retry(version=incoming.version, source_cid=scid, destination_cid=incoming.scid,
                                 original_destination_cid=incoming.dcid, retry_token=nonce + sealed)

    def check(self, incoming: Incoming, addr: tuple[str, int], now: float) -> bytes | None:
        """The original destination ID a valid, fresh token of ours carries, else None."""
        token = incoming.token
        if len(token) < 12 + 16 + _TOKEN.size + 1:
            return None
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._aead.decrypt(token[:12], token[12:], _bound(addr, incoming.dcid))
        except InvalidTag:
            return None
        (made,) = _TOKEN.unpack_from(plain)
        if not 0 <= now - made <= TOKEN_LIFETIME:
            return None
        odcid = plain[_TOKEN.size + 1:]
        return odcid if len(odcid) == plain[_TOKEN.size] else None


def _bound(addr: tuple[str, int], scid: bytes) -> bytes:
    """What a token is bound to: the client's address and port, and the Retry's source ID
    (which the client must use as its next destination ID)."""
    return ipaddress.ip_address(addr[0]).packed + addr[1].to_bytes(2, "big") + scid
