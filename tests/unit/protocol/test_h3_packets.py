"""What the QUIC endpoint answers without a connection (protocol/h3/packets.py): Retry tokens,
Stateless Resets, Version Negotiation, refusals, and the routing facts of a datagram."""

from __future__ import annotations

import ssl

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicPacketType, QuicProtocolVersion

from pushserve.protocol.h3.packets import (
    CID_LENGTH,
    ConnectionIds,
    Incoming,
    RetryTokens,
    parse,
    refuse,
    version_negotiation,
)

ADDR = ("127.0.0.1", 40000)


def first_initial() -> bytes:
    client = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                                                            verify_mode=ssl.CERT_NONE))
    client.connect(("127.0.0.1", 443), now=0.0)
    return client.datagrams_to_send(now=0.0)[0][0]


def test_an_initial_is_parsed_and_a_short_header_is_routed_on_its_bytes() -> None:
    incoming = parse(first_initial())
    assert incoming is not None and incoming.long and incoming.packet_type == QuicPacketType.INITIAL
    assert incoming.version == QuicProtocolVersion.VERSION_1 and len(incoming.dcid) >= 8
    short = parse(b"\x41" + b"C" * CID_LENGTH + b"rest")
    assert short is not None and not short.long and short.dcid == b"C" * CID_LENGTH
    assert parse(b"") is None and parse(b"\x01" + b"x" * 20) is None  # fixed bit clear: not QUIC
    assert parse(b"\xc0\x00") is None  # a truncated long header


def test_retry_token_round_trip_and_what_it_is_bound_to() -> None:
    tokens = RetryTokens(b"k" * 32)
    incoming = parse(first_initial())
    assert incoming is not None
    retry = parse(tokens.retry(incoming, ADDR, now=100.0))
    assert retry is not None and retry.packet_type == QuicPacketType.RETRY and retry.dcid == incoming.scid
    # The client repeats its Initial to the Retry's source ID, with the token.
    again = Incoming(True, incoming.version, QuicPacketType.INITIAL, retry.scid, incoming.scid, retry.token)
    assert tokens.check(again, ADDR, now=101.0) == incoming.dcid
    assert RetryTokens(b"k" * 32).check(again, ADDR, now=101.0) == incoming.dcid  # any worker
    assert tokens.check(again, ("127.0.0.1", 40001), now=101.0) is None  # another port
    assert tokens.check(again, ("127.0.0.2", 40000), now=101.0) is None  # another address
    assert tokens.check(again, ADDR, now=200.0) is None  # expired
    other_dcid = Incoming(True, incoming.version, QuicPacketType.INITIAL, b"x" * 8, incoming.scid, retry.token)
    assert tokens.check(other_dcid, ADDR, now=101.0) is None
    assert RetryTokens(b"z" * 32).check(again, ADDR, now=101.0) is None  # another secret
    tampered = Incoming(True, incoming.version, QuicPacketType.INITIAL, retry.scid, incoming.scid,
                        retry.token[:-1] + bytes([retry.token[-1] ^ 1]))
    assert tokens.check(tampered, ADDR, now=101.0) is None


def test_stateless_reset_is_smaller_than_its_trigger_and_ends_in_the_token() -> None:
    cids = ConnectionIds(b"s" * 32)
    cid = cids.new()
    assert len(cid) == CID_LENGTH and cid != cids.new()
    token = cids.reset_token(cid)
    assert token == ConnectionIds(b"s" * 32).reset_token(cid) != ConnectionIds(b"t" * 32).reset_token(cid)
    for trigger in (22, 40, 1200):
        reset = cids.stateless_reset(cid, trigger)
        assert reset is not None and 21 <= len(reset) < trigger and reset.endswith(token)
        assert reset[0] & 0xC0 == 0x40  # looks like a short-header packet
    assert cids.stateless_reset(cid, 21) is None  # too small to answer without risking a loop


def test_version_negotiation_and_refusal() -> None:
    incoming = parse(first_initial())
    assert incoming is not None
    vn = version_negotiation(incoming)
    assert vn[0] & 0x80 and vn[1:5] == b"\x00\x00\x00\x00"
    refused = parse(refuse(incoming))
    assert refused is not None and refused.packet_type == QuicPacketType.INITIAL and refused.dcid == incoming.scid
