"""protocol/h2/hpack_decoder.py against RFC 7541's own examples, against the hpack library's encoder
(an independent implementation, used here as the oracle), and against hostile blocks."""

from __future__ import annotations

import random

import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

from pushserve.protocol.h2.hpack_decoder import Decoder, HeaderListTooLarge, HPACKError, huffman_decode

Fields = list[tuple[bytes, bytes]]

# RFC 7541 C.4: three requests on one connection, Huffman-coded, sharing the dynamic table.
C4 = [
    ("828684418cf1e3c2e5f23a6ba0ab90f4ff",
     [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com")]),
    ("828684be5886a8eb10649cbf",
     [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com"),
      (b"cache-control", b"no-cache")]),
    ("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
     [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
      (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")]),
]


def test_rfc7541_c4_requests_with_huffman() -> None:
    d = Decoder(65536)
    for block, fields in C4:
        assert d.decode(bytes.fromhex(block)) == fields


def test_rfc7541_c3_requests_without_huffman() -> None:
    d = Decoder(65536)
    assert d.decode(bytes.fromhex("828684410f7777772e6578616d706c652e636f6d")) == C4[0][1]
    assert d.decode(bytes.fromhex("828684be58086e6f2d6361636865")) == C4[1][1]


def _random_fields(rng: random.Random) -> Fields:
    names = [b"accept", b"cookie", b"x-trace", b"user-agent", b"referer", b"x-" + bytes(rng.randrange(97, 123)
                                                                                      for _ in range(6))]
    fields: Fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
                      (b":path", b"/" + bytes(rng.randrange(33, 127) for _ in range(rng.randrange(0, 40))))]
    for _ in range(rng.randrange(0, 8)):
        value = bytes(rng.randrange(0, 256) if rng.random() < 0.2 else rng.randrange(32, 127)
                      for _ in range(rng.randrange(0, 60)))
        fields.append((rng.choice(names), value))
    return fields


@pytest.mark.parametrize("huffman", [True, False])
@pytest.mark.parametrize("table_size", [4096, 256, 0])
def test_agrees_with_the_hpack_library_over_a_connection(huffman: bool, table_size: int) -> None:
    """300 blocks through one encoder and one decoder: indexed, incrementally indexed (with
    evictions in a small table) and never-indexed fields, and a size update on the way."""
    rng = random.Random(f"{huffman}{table_size}")
    encoder, decoder = hpack.Encoder(), Decoder(1 << 20)
    encoder.header_table_size = table_size
    for i in range(300):
        fields = _random_fields(rng)
        sent = [hpack.NeverIndexedHeaderTuple(n, v) if n == b"cookie" else (n, v) for n, v in fields]
        if i == 150:
            encoder.header_table_size = table_size // 2
        assert decoder.decode(encoder.encode(sent, huffman=huffman)) == fields


def test_huffman_every_octet_round_trips() -> None:
    encode = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode
    everything = bytes(range(256))
    assert huffman_decode(encode(everything)) == everything
    rng = random.Random(7541)
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 50)))
        assert huffman_decode(encode(data)) == data


@pytest.mark.parametrize("bad", [
    "ff",          # eight bits of padding (§5.2: more than seven is an error)
    "1fff",        # "a" (00011) then eleven ones: padding longer than seven bits
    "fffffffc",    # EOS (30 ones) inside the string
    "1d",          # "a" (00011) then 101: padding that is not a prefix of EOS
])
def test_huffman_refuses_bad_padding_and_eos(bad: str) -> None:
    with pytest.raises(HPACKError):
        huffman_decode(bytes.fromhex(bad))


@pytest.mark.parametrize("block, why", [
    ("80", "index 0"),
    ("be", "dynamic index on an empty table"),
    ("ff80808080808001", "an integer with too many continuation octets"),
    ("ff", "an integer cut off"),
    ("4005616263", "a name longer than the block"),
    ("3fe21f", "a size update to 4097, above the 4096 we advertise"),
    ("82" "20", "a size update after a field"),
    ("00", "a literal with nothing after its prefix"),
])
def test_hostile_blocks_are_errors(block: str, why: str) -> None:
    with pytest.raises(HPACKError):
        Decoder(65536).decode(bytes.fromhex(block))


def test_the_header_list_limit_counts_indexed_references() -> None:
    # 82 is ":method GET" (42 bytes counted): a tiny block cannot stand for a huge list.
    d = Decoder(max_header_list_size=1000)
    assert len(d.decode(bytes.fromhex("82" * 23))) == 23  # 966 bytes
    with pytest.raises(HeaderListTooLarge):
        d.decode(bytes.fromhex("82" * 24))


def test_generation_moves_only_when_the_table_changes() -> None:
    d = Decoder(65536)
    d.decode(bytes.fromhex(C4[0][0]))  # inserts :authority
    after_insert = d.generation
    d.decode(bytes.fromhex("828684be"))  # indexed references only
    assert d.generation == after_insert
    d.decode(bytes.fromhex("20"))  # size update to 0: the table empties
    assert d.generation > after_insert
    with pytest.raises(HPACKError):
        d.decode(bytes.fromhex("be"))  # the entry it named is gone
