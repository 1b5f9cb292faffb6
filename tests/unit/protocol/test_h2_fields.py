"""Header blocks of the HTTP/2 core: the stateless response encoding, the cache of repeated
request blocks and the HPACK dynamic table, and the request field rules (RFC 9113 §8.2/§8.3)."""

from __future__ import annotations

import h2.events as h2e
import pytest
from h2.settings import SettingCodes
from hpack import Decoder, Encoder
from hyperframe.frame import ContinuationFrame, HeadersFrame

from pushserve.protocol.events import RequestReceived, StreamReset
from pushserve.protocol.h2.fields import Malformed, RequestDecoder, encode_fields, encode_status, validate_request
from tests.unit.protocol.test_h2_core import Pair, parse_frames, raw_frame, raw_server, req_headers

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a.test")]


@pytest.mark.parametrize("status", [200, 204, 304, 404, 103, 418, 599])
def test_response_block_round_trips(status: int) -> None:
    headers = [(b"content-type", b"text/css"), (b"etag", b'"abc"'), (b"x-long", b"v" * 300),
               (b"x-" + b"n" * 200, b""), (b"date", b"Sun, 29 Nov 2026 20:00:00 GMT")]
    block = encode_fields(encode_status(status), headers)
    assert Decoder().decode(block, raw=True) == [(b":status", b"%d" % status), *headers]
    # Stateless: encoding again gives the same bytes, and a fresh decoder reads any of them.
    assert encode_fields(encode_status(status), headers) == block


def test_response_block_drops_connection_specific_fields_and_takes_lists() -> None:
    block = encode_fields(b"", [(b"connection", b"close"), [b"x-a", b"1"], (b"x-b", bytearray(b"2"))])  # type: ignore[list-item]
    assert Decoder().decode(block, raw=True) == [(b"x-a", b"1"), (b"x-b", b"2")]


# GET / from the static table, :authority a literal without indexing: changes no table.
GET_BLOCK = b"\x82\x87\x84" + b"\x01\x06a.test"


def test_repeated_block_is_reused_only_while_the_table_is_unchanged() -> None:
    """Identical block bytes mean something else once the dynamic table has moved on: the
    cached request must not be reused then (see fields.py)."""
    dec = RequestDecoder(65536)
    enc = Encoder()
    # Request 1 inserts x-a: 1 (literal with incremental indexing): index 62 is x-a: 1.
    dec.request(enc.encode([*GET, (b"x-a", b"1")]))
    repeated = GET_BLOCK + b"\xbe"  # ... + index 62
    first = dec.request(repeated)
    assert first.headers == [(b"x-a", b"1")]
    assert dec.request(repeated) is first  # nothing changed the table: the same request
    # Another block inserts x-b: 2, which becomes index 62.
    dec.request(enc.encode([*GET, (b"x-b", b"2")]))
    again = dec.request(repeated)
    assert again is not first and again.headers == [(b"x-b", b"2")]


def test_block_with_size_update_is_not_cached_when_it_changes_the_table() -> None:
    dec = RequestDecoder(65536)
    enc = Encoder()
    dec.request(enc.encode([*GET, (b"x-a", b"1")]))
    shrink = b"\x20" + GET_BLOCK  # table size 0
    dec.request(shrink)
    with pytest.raises(Exception):  # noqa: B017 - the entry is gone: index 62 is invalid now
        dec.request(GET_BLOCK + b"\xbe")


@pytest.mark.parametrize(("fields", "why"), [
    ([*GET, (b"host", b"b.test")], ":authority and host differ"),
    ([*GET, (b"x-v", b" padded")], "leading space"),
    ([*GET, (b"x-v", b"a\rb")], "CR in a value"),
    ([*GET, (b"x y", b"1")], "space in a name"),
    ([*GET, (b"", b"1")], "empty name"),
    ([*GET, (b"x:y", b"1")], "colon in a name"),
    ([*GET, (b"content-length", b"1"), (b"content-length", b"2")], "content-lengths disagree"),
    ([*GET, (b"content-length", b"-1")], "negative content-length"),
    ([(b":method", b"CONNECT"), (b":authority", b"a.test"), (b":path", b"/")], "CONNECT with :path"),
    ([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")], "no authority at all"),
    ([*GET, (b"host", b"a.test"), (b"host", b"a.test")], "two host fields"),
])
def test_malformed_requests(fields: list[tuple[bytes, bytes]], why: str) -> None:
    with pytest.raises(Malformed):
        validate_request(fields)


def test_cookies_are_joined_and_priority_read() -> None:
    req = validate_request([*GET, (b"cookie", b"a=1"), (b"priority", b"u=1, i"), (b"cookie", b"b=2"),
                            (b"content-length", b"5, 5")])
    assert req.headers == [(b"priority", b"u=1, i"), (b"content-length", b"5, 5"), (b"cookie", b"a=1; b=2")]
    assert req.urgency == 1 and req.content_length == 5
    connect = validate_request([(b":method", b"CONNECT"), (b":authority", b"a.test:443")])
    assert connect.method == b"CONNECT" and connect.target == b""


def test_headers_end_stream_with_content_length_is_malformed() -> None:
    server, enc = raw_server()
    block = enc.encode(req_headers(b"/", b"POST", [(b"content-length", b"5")]))
    assert server.receive_data(raw_frame(0x1, 0x5, 1, block)) == []
    frames = parse_frames(server.data_to_send())
    assert [(f.stream_id, f.error_code) for f in frames if f.type == 0x3] == [(1, 0x1)]  # type: ignore[attr-defined]


def test_repeated_requests_on_one_connection_each_surface() -> None:
    server, enc = raw_server()
    first = server.receive_data(raw_frame(0x1, 0x5, 1, enc.encode(req_headers(b"/same"))))
    assert isinstance(first[0], RequestReceived)
    block = enc.encode(req_headers(b"/same"))  # warm: now all indexed, identical each time
    for sid in (3, 5, 9):
        (req,) = server.receive_data(raw_frame(0x1, 0x5, sid, block))
        assert isinstance(req, RequestReceived) and req.stream_id == sid and req.target == b"/same"
        req.headers.append((b"x-mutated", b"1"))  # the layer above may not spoil the cache
    (req,) = server.receive_data(raw_frame(0x1, 0x5, 11, block))
    assert isinstance(req, RequestReceived) and req.headers == []


def test_table_size_update_sent_when_the_peer_shrinks_its_table() -> None:
    p = Pair()
    p.client.update_settings({SettingCodes.HEADER_TABLE_SIZE: 0})
    p.pump()
    sid = p.request(b"/")
    p.server.send_response(sid, 200, [(b"x-a", b"1")], b"ok")
    raw = p.server.data_to_send()
    (head,) = [f for f in parse_frames(raw) if isinstance(f, HeadersFrame)]
    assert head.data[:1] == b"\x20"  # "size 0" first (RFC 7541 §4.2)
    events = p.client.receive_data(raw)
    resp = [e for e in events if isinstance(e, h2e.ResponseReceived)]
    assert resp and (b"x-a", b"1") in resp[0].headers
    s2 = p.request(b"/2")
    p.server.send_response(s2, 200, [], b"ok")
    (head,) = [f for f in parse_frames(p.server.data_to_send()) if isinstance(f, HeadersFrame)]
    assert head.data[:1] != b"\x20"  # once is enough


def test_large_response_head_is_split_into_continuations() -> None:
    p = Pair()
    sid = p.request(b"/")
    big = [(b"x-h%d" % i, b"v" * 1000) for i in range(40)]
    p.server.send_response(sid, 200, big, b"body")
    raw = p.server.data_to_send()
    frames = parse_frames(raw)
    assert any(isinstance(f, ContinuationFrame) for f in frames)
    events = p.client.receive_data(raw)
    (resp,) = [e for e in events if isinstance(e, h2e.ResponseReceived)]
    assert resp.headers[1:] == big


def test_reset_of_malformed_request_is_counted_and_connection_survives() -> None:
    server, enc = raw_server()
    bad = enc.encode([*req_headers(), (b"te", b"gzip")])
    assert server.receive_data(raw_frame(0x1, 0x4, 1, bad)) == []  # no END_STREAM: body may follow
    # DATA that crossed our RST_STREAM is ignored, not answered (RFC 9113 §5.1 "closed").
    server.data_to_send()
    assert server.receive_data(raw_frame(0x0, 0x1, 1, b"late")) == []
    assert not [f for f in parse_frames(server.data_to_send()) if f.type == 0x3]  # type: ignore[attr-defined]
    (req,) = server.receive_data(raw_frame(0x1, 0x5, 3, enc.encode(req_headers(b"/ok"))))
    assert isinstance(req, RequestReceived)
    assert not isinstance(req, StreamReset)
