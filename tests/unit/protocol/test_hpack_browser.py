"""The decoder's fast paths and the memo of checked fields (protocol/h2/hpack_decoder.py,
fields.py) on the header sequences a browser sends: one connection, the same user-agent, accept,
sec-fetch-*, cookie… as indexed references, a new :path each time.  The hpack library's encoder
and decoder (an independent implementation) are the oracle; evictions, size updates and hostile
blocks included."""

from __future__ import annotations

import random

import hpack
import pytest
from hpack import HeaderTuple, NeverIndexedHeaderTuple

from pushserve.protocol.h2 import fields as fields_module
from pushserve.protocol.h2.fields import Malformed, RequestDecoder, validate_request
from pushserve.protocol.h2.hpack_decoder import Decoder, HeaderListTooLarge, HPACKError

Fields = list[tuple[bytes, bytes]]

_UA = (b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
       b"Safari/537.36")
_COMMON: Fields = [(b"user-agent", _UA), (b"sec-ch-ua", b'"Chromium";v="131", "Not_A Brand";v="24"'),
                   (b"sec-ch-ua-mobile", b"?0"), (b"sec-ch-ua-platform", b'"Linux"'),
                   (b"accept-encoding", b"gzip, deflate, br, zstd"),
                   (b"accept-language", b"en-US,en;q=0.9,de;q=0.8")]
_DESTINATIONS: dict[str, Fields] = {
    "document": [(b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                 (b"sec-fetch-mode", b"navigate"), (b"sec-fetch-dest", b"document"), (b"priority", b"u=0, i")],
    "style": [(b"accept", b"text/css,*/*;q=0.1"), (b"sec-fetch-mode", b"no-cors"), (b"sec-fetch-dest", b"style"),
              (b"priority", b"u=0")],
    "script": [(b"accept", b"*/*"), (b"sec-fetch-mode", b"no-cors"), (b"sec-fetch-dest", b"script"),
               (b"priority", b"u=1")],
    "image": [(b"accept", b"image/avif,image/webp,*/*;q=0.8"), (b"sec-fetch-mode", b"no-cors"),
              (b"sec-fetch-dest", b"image"), (b"priority", b"u=5, i")],
}


def browser_requests(rng: random.Random, count: int) -> list[Fields]:
    """A page load's requests: pseudo-headers, the common fields, the destination's, cookie
    crumbs (browsers split the cookie into one field per pair, §8.2.3), now and then a
    conditional revalidation and a referer."""
    out = []
    for i in range(count):
        dest = rng.choice(list(_DESTINATIONS))
        path = f"/{dest}/{rng.randrange(40)}.{dest[:3]}".encode()
        fields: Fields = [(b":method", b"GET"), (b":authority", b"example.test"), (b":scheme", b"https"),
                          (b":path", path), *_COMMON, *_DESTINATIONS[dest],
                          (b"cookie", b"session=6f1c2a9e0b7d4c35"), (b"cookie", b"theme=dark")]
        if i and rng.random() < 0.3:
            fields.append((b"referer", b"https://example.test/"))
        if rng.random() < 0.2:
            fields.append((b"if-none-match", b'"%x"' % rng.randrange(1 << 32)))
        out.append(fields)
    return out


def _encode(encoder: hpack.Encoder, fields: Fields, huffman: bool = True) -> bytes:
    # As nghttp2 and Chromium do: every field indexed but :path (and the per-file validators).
    sent = [NeverIndexedHeaderTuple(n, v) if n in (b":path", b"if-none-match") else HeaderTuple(n, v)
            for n, v in fields]
    block: bytes = encoder.encode(sent, huffman=huffman)
    return block


def _reference(fields: Fields) -> tuple[bytes, bytes, bytes, Fields, int]:
    """What validate_request must make of a browser's (valid) fields, written out plainly."""
    pseudo = {n: v for n, v in fields if n.startswith(b":")}
    regular = [(n, v) for n, v in fields if not n.startswith(b":") and n != b"cookie"]
    cookies = [v for n, v in fields if n == b"cookie"]
    priority = [v for n, v in fields if n == b"priority"]
    urgency = int(priority[-1][2:3]) if priority else 3
    headers = [*regular, (b"cookie", b"; ".join(cookies))]
    return pseudo[b":method"], pseudo[b":path"], pseudo[b":authority"], headers, urgency


@pytest.mark.parametrize("table_size, huffman", [(4096, True), (4096, False), (512, True), (160, True)])
def test_browser_sequence_agrees_with_the_hpack_library(table_size: int, huffman: bool) -> None:
    """Blocks of one connection through both decoders, the requests checked against the plain
    reference; small tables evict on nearly every block, and the encoder shrinks and grows its
    table (size updates) on the way."""
    rng = random.Random(f"browser{table_size}{huffman}")
    encoder, oracle = hpack.Encoder(), hpack.Decoder()
    encoder.header_table_size = table_size
    decoder = RequestDecoder(1 << 16)
    for i, fields in enumerate(browser_requests(rng, 300)):
        if i in (100, 200):  # a size update (§6.3) at the start of the next block
            encoder.header_table_size = table_size // 4 if i == 100 else table_size
        block = _encode(encoder, fields, huffman)
        decoded, _unchanged = decoder.decode(block)
        assert decoded == fields == [(bytes(n), bytes(v)) for n, v in oracle.decode(block, raw=True)]
        req = validate_request(decoded)
        assert (req.method, req.target, req.authority, req.headers, req.urgency) == _reference(fields)


def test_checks_give_the_same_answers_with_and_without_the_memo() -> None:
    """The memo of checked fields changes no answer: a valid field found there is still valid,
    and a field that breaks a rule is refused every time, in any request, however often its
    valid neighbours have been seen."""
    rng = random.Random(8)
    good = browser_requests(rng, 20)
    bad_fields: Fields = [(b"User-Agent", b"x"), (b"accept", b" leading space"), (b"x-a", b"nul\x00"),
                          (b"connection", b"keep-alive"), (b"te", b"gzip"), (b":protocol", b"x"),
                          (b"x:colon", b"1"), (b"", b"empty name"), (b"accept", b"cr\rlf")]
    for round_ in range(3):  # cold memo, warm memo, emptied memo
        if round_ == 2:
            fields_module._KINDS.clear()
        for fields in good:
            assert validate_request(fields).headers == _reference(fields)[3]
        for bad in bad_fields:
            with pytest.raises(Malformed):
                validate_request([*good[0], bad])
    # Request structure is checked per request, not per field: a duplicate :path, a pseudo-header
    # after a regular field, two host fields are refused though each field is known and valid.
    first = good[0]
    for fields in ([*first[:4], (b":path", b"/again"), *first[4:]], [*first[1:], first[0]],
                   [*first, (b"host", b"a"), (b"host", b"a")]):
        with pytest.raises(Malformed):
            validate_request(fields)


def test_the_memo_stays_bounded_and_skips_paths() -> None:
    fields_module._KINDS.clear()
    base = browser_requests(random.Random(3), 1)[0]
    for i in range(3 * fields_module._KINDS_MAX):
        validate_request([*base, (b"x-unique", b"%d" % i)])
        assert len(fields_module._KINDS) <= fields_module._KINDS_MAX
    assert not any(name == b":path" for name, _ in fields_module._KINDS)
    validate_request([*base, (b"x-big", b"v" * (fields_module._KEEP_MAX + 1))])
    assert (b"x-big", b"v" * (fields_module._KEEP_MAX + 1)) not in fields_module._KINDS


@pytest.mark.parametrize("block, why", [
    ("82be", "a run of one-octet references reaching past an empty dynamic table"),
    ("82" "86" "fe", "index 126 in a run, the table holding nothing"),
    ("8280", "index 0 right after a run"),
    ("ff00", "index 127 (multi-octet), past the table"),
])
def test_hostile_indexed_runs_are_errors(block: str, why: str) -> None:
    with pytest.raises(HPACKError):
        Decoder(65536).decode(bytes.fromhex(block))


def test_a_run_past_an_evicted_entry_is_an_error() -> None:
    encoder, decoder = hpack.Encoder(), Decoder(65536)
    encoder.header_table_size = 256
    decoder.decode(encoder.encode([(b"x-a", b"1" * 80), (b"x-b", b"2" * 80)]))  # both in the table
    assert decoder.decode(bytes.fromhex("bebf")) == [(b"x-b", b"2" * 80), (b"x-a", b"1" * 80)]
    decoder.decode(encoder.encode([(b"x-c", b"3" * 80)]))  # evicts x-a (the oldest)
    assert decoder.decode(bytes.fromhex("bebf")) == [(b"x-c", b"3" * 80), (b"x-b", b"2" * 80)]
    with pytest.raises(HPACKError):
        decoder.decode(bytes.fromhex("bec0"))


def test_runs_count_toward_the_header_list_limit() -> None:
    """A run is counted as a whole before the next: a small block of references to a large
    entry cannot stand for a huge list."""
    encoder, decoder = hpack.Encoder(), Decoder(max_header_list_size=4000)
    decoder.decode(encoder.encode([(b"x-big", b"v" * 900)]))  # 937 bytes counted per reference
    assert len(decoder.decode(bytes.fromhex("be" * 4))) == 4
    with pytest.raises(HeaderListTooLarge):
        decoder.decode(bytes.fromhex("be" * 5))


@pytest.mark.parametrize("bad", ["ff", "fffffffc", "1d", "1fff", "fe"])
def test_bad_huffman_in_a_browser_block_is_a_compression_error(bad: str) -> None:
    """A literal :path whose Huffman string has bad padding or holds EOS, after a run."""
    data = bytes.fromhex(bad)
    block = bytes.fromhex("8287") + b"\x04" + bytes((0x80 | len(data),)) + data
    with pytest.raises(HPACKError):
        Decoder(65536).decode(block)
