"""RFC 9113 (HTTP/2) and RFC 7541 (HPACK) conformance, h2spec-style, against a real pushserve.

Each test opens a TLS connection with ALPN h2 (tests/h2raw.py), sends hand-built frames and
checks the server's answer frame by frame.  Section numbers are RFC 9113 unless they say
RFC 7541.  Acceptance rules are h2spec's (see h2raw), with one tightening: a connection error
must come as a GOAWAY with the code, followed by the close.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.h2raw import E, F, Frame, RawH2, S, T, frame, padded, priority_payload, settings_payload, u32
from tests.support.serverproc import ServerProcess

LARGE = "/img/hero.png"  # 47746 bytes: more than one frame, more than a small window
LARGE_SIZE = 47746
MAX_FRAME = 16384
Connect = Callable[..., RawH2]


@pytest.fixture
def connect(server: ServerProcess) -> Iterator[Connect]:
    opened: list[RawH2] = []

    def factory(**kw: object) -> RawH2:
        c = RawH2(server.host, server.port, server.certs.client_context(), **kw)  # type: ignore[arg-type]
        opened.append(c)
        return c

    yield factory
    for c in opened:
        c.close()


@pytest.fixture
def c(connect: Connect) -> RawH2:
    return connect()


def hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 §5.1 integer with ``first``'s high bits as the representation's pattern."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def lit(name: bytes, value_string: bytes) -> bytes:
    """Literal header field without indexing, new name (RFC 7541 §6.2.2); ``value_string`` is
    an already encoded string (length prefix included), so it may be broken."""
    return b"\x00" + hpack_int(len(name), 7, 0) + name + value_string


def post_headers(c: RawH2, path: str = "/css/print.css", extra: list[tuple[bytes, bytes]] | None = None,
                 ) -> list[tuple[bytes, bytes]]:
    return c.request_headers(path, "POST", extra)


# -- §3.4 connection preface ------------------------------------------------------------------


def test_3_4_server_preface_is_settings(c: RawH2) -> None:
    """§3.4: the server's preface is a SETTINGS frame (checked in the handshake), and it
    answers ours with an ACK; then requests work."""
    assert S.MAX_CONCURRENT_STREAMS in c.server_settings
    c.assert_usable()


def test_3_4_invalid_preface(connect: Connect) -> None:
    """§3.4: a client preface that is not the PRI string is a connection error PROTOCOL_ERROR."""
    c = connect(handshake=False)
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(T.SETTINGS, 0, 0))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_3_4_preface_not_followed_by_settings(connect: Connect) -> None:
    """§3.4: the preface must be followed by a SETTINGS frame; a PING instead is a
    connection error PROTOCOL_ERROR."""
    c = connect(handshake=False)
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(T.PING, 0, 0, b"12345678"))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_3_4_preface_followed_by_settings_ack(connect: Connect) -> None:
    """§3.4: the first frame must be a SETTINGS frame carrying settings, not an ACK."""
    c = connect(handshake=False)
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(T.SETTINGS, F.ACK, 0))
    c.expect_goaway(E.PROTOCOL_ERROR)


# -- §4.1 frame format ----------------------------------------------------------------------


@pytest.mark.parametrize("sid", [0, 1])
def test_4_1_unknown_frame_type_is_ignored(c: RawH2, sid: int) -> None:
    """§4.1/§5.5: frames of unknown type are ignored, on the connection or a (idle) stream."""
    c.send(frame(0xEE, 0x0, sid, b"whatever"))
    c.expect_ping_ack(c.ping(b"unknown!"))
    c.assert_usable()


def test_4_1_unknown_flags_are_ignored(c: RawH2) -> None:
    """§4.1: undefined flags on a PING are ignored; the ACK carries the same payload."""
    c.send(frame(T.PING, 0x16, 0, b"flags!!!"))
    c.expect_ping_ack(b"flags!!!")


def test_4_1_reserved_bit_on_ping_is_ignored(c: RawH2) -> None:
    """§4.1: the reserved bit of the stream identifier is ignored on receipt."""
    c.send(frame(T.PING, 0, 0x80000000, b"reserved"))
    c.expect_ping_ack(b"reserved")


def test_4_1_reserved_bit_on_headers_is_ignored(c: RawH2) -> None:
    """§4.1: a HEADERS frame with the reserved bit set opens stream 1 as usual."""
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 0x80000001,
                 c.block(c.request_headers("/css/print.css"))))
    c.use_stream(1)
    assert c.read_response(1).status == 200


# -- §4.2 frame size ------------------------------------------------------------------------


def test_4_2_data_of_max_frame_size_is_accepted(c: RawH2) -> None:
    """§4.2: a DATA frame of exactly SETTINGS_MAX_FRAME_SIZE (2^14) octets is fine."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.DATA, F.END_STREAM, sid, b"x" * MAX_FRAME))
    c.read_response(sid)
    c.assert_usable()


def test_4_2_data_larger_than_max_frame_size(c: RawH2) -> None:
    """§4.2: DATA exceeding SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR (stream or connection)."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.DATA, F.END_STREAM, sid, b"x" * (MAX_FRAME + 1)))
    c.expect_rst(sid, E.FRAME_SIZE_ERROR, allow_goaway=True)


def test_4_2_headers_larger_than_max_frame_size(c: RawH2) -> None:
    """§4.2: an oversized frame carrying a field block is a connection error FRAME_SIZE_ERROR."""
    sid = c.new_stream()
    # Raw literals: neither Huffman coding nor the dynamic table can shrink them.
    block = c.block(c.request_headers()) + b"".join(lit(b"x-pad", b"\x64" + b"a" * 100) for _ in range(200))
    assert len(block) > MAX_FRAME
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, block))
    c.expect_goaway(E.FRAME_SIZE_ERROR)


# -- §4.3 field section compression ---------------------------------------------------------


def test_4_3_invalid_header_block(c: RawH2) -> None:
    """§4.3: a field block that cannot be decoded is a connection error COMPRESSION_ERROR."""
    # A literal whose name claims 10 octets in a block that ends after 2.
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, b"\x00\x0aab"))
    c.expect_goaway(E.COMPRESSION_ERROR)


def test_4_3_dynamic_table_carries_across_blocks(c: RawH2) -> None:
    """§4.3: one decoding context per connection: indexed entries from earlier blocks resolve."""
    extra = [(b"x-conformance", b"a value worth indexing")]
    for _ in range(3):
        sid = c.new_stream()
        c.send_headers(sid, c.request_headers("/css/print.css", extra=extra))
        assert c.read_response(sid).status == 200


# -- §5.1 stream states ---------------------------------------------------------------------


@pytest.mark.parametrize(("ftype", "payload"), [
    (T.DATA, b"hello"),
    (T.RST_STREAM, u32(E.CANCEL)),
    (T.WINDOW_UPDATE, u32(100)),
    (T.CONTINUATION, b""),
], ids=["DATA", "RST_STREAM", "WINDOW_UPDATE", "CONTINUATION"])
def test_5_1_frames_on_idle_stream(c: RawH2, ftype: int, payload: bytes) -> None:
    """§5.1 idle: anything but HEADERS or PRIORITY is a connection error PROTOCOL_ERROR."""
    flags = F.END_HEADERS if ftype == T.CONTINUATION else 0
    c.send(frame(ftype, flags, 1, payload))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_5_1_priority_on_idle_stream_is_allowed(c: RawH2) -> None:
    """§5.1 idle: PRIORITY may be sent for an idle stream."""
    c.send(frame(T.PRIORITY, 0, 3, priority_payload(0)))
    c.expect_ping_ack(c.ping())
    c.assert_usable()


def _half_closed_remote(connect: Connect) -> tuple[RawH2, int]:
    """A stream the client ended whose response cannot finish: our window is 0."""
    c = connect(settings=[(S.ENABLE_PUSH, 0), (S.INITIAL_WINDOW_SIZE, 0)])
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers(LARGE))
    while True:  # the response head comes; its body waits for window
        f = c.read_frame()
        if f.stream_id == sid and f.headers is not None:
            break
    return c, sid


@pytest.mark.parametrize("ftype", [T.DATA, T.HEADERS], ids=["DATA", "HEADERS"])
def test_5_1_frames_on_half_closed_remote_stream(connect: Connect, ftype: int) -> None:
    """§5.1 half-closed (remote): DATA or HEADERS is a stream error STREAM_CLOSED."""
    c, sid = _half_closed_remote(connect)
    if ftype == T.DATA:
        c.send(frame(T.DATA, F.END_STREAM, sid, b"late"))
    else:
        c.send(c.headers_frame(sid, [(b"x-trailer", b"late")]))
    c.expect_rst(sid, E.STREAM_CLOSED, allow_goaway=True)
    # The connection lives on: open the window and a new request completes.
    c.send(frame(T.SETTINGS, 0, 0, settings_payload([(S.INITIAL_WINDOW_SIZE, 65535)])))
    c.assert_usable()


def test_5_1_window_update_on_half_closed_remote_is_allowed(connect: Connect) -> None:
    """§5.1 half-closed (remote): WINDOW_UPDATE is allowed, and lets the response finish."""
    c, sid = _half_closed_remote(connect)
    c.send(frame(T.WINDOW_UPDATE, 0, sid, u32(LARGE_SIZE)))
    reply = c.read_response(sid)
    assert reply.status == 200 and len(reply.body) == LARGE_SIZE


@pytest.mark.parametrize("ftype", [T.DATA, T.HEADERS], ids=["DATA", "HEADERS"])
def test_5_1_frames_after_rst_stream(c: RawH2, ftype: int) -> None:
    """§5.1 closed: after the client's RST_STREAM, a DATA or HEADERS frame on the stream is a
    stream error STREAM_CLOSED (strict: not a connection error)."""
    sid = c.new_stream()
    head = c.headers_frame(sid, post_headers(c), end_stream=False)  # encoded first: HPACK order
    late = (frame(T.DATA, F.END_STREAM, sid, b"late") if ftype == T.DATA
            else c.headers_frame(sid, [(b"x-trailer", b"late")]))
    c.send(head + frame(T.RST_STREAM, 0, sid, u32(E.CANCEL)) + late)
    c.expect_rst(sid, E.STREAM_CLOSED)
    c.assert_usable()


def test_5_1_headers_on_closed_stream(c: RawH2) -> None:
    """§5.1 closed: HEADERS after both sides sent END_STREAM is a connection error
    STREAM_CLOSED (strict, as h2spec expects and the h2 library did; RFC 9113 says MAY)."""
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/css/site.css"))
    c.read_response(sid)
    c.send_headers(sid, c.request_headers("/css/site.css"))
    c.expect_goaway(E.STREAM_CLOSED)


def test_5_1_data_on_closed_stream(c: RawH2) -> None:
    """§5.1 closed, §6.1: DATA after both sides sent END_STREAM is a stream error
    STREAM_CLOSED (§6.1's MUST; h2spec takes a connection error too)."""
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/css/site.css"))
    c.read_response(sid)
    c.send(frame(T.DATA, F.END_STREAM, sid, b"late"))
    c.expect_rst(sid, E.STREAM_CLOSED)
    c.assert_usable()


@pytest.mark.parametrize(("ftype", "payload"), [
    (T.PRIORITY, priority_payload(0)),
    (T.WINDOW_UPDATE, u32(1000)),
    (T.RST_STREAM, u32(E.CANCEL)),
], ids=["PRIORITY", "WINDOW_UPDATE", "RST_STREAM"])
def test_5_1_frames_allowed_on_closed_stream(c: RawH2, ftype: int, payload: bytes) -> None:
    """§5.1 closed: PRIORITY at any time, and WINDOW_UPDATE / RST_STREAM shortly after the
    END_STREAM, are no error."""
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/css/print.css"))
    c.read_response(sid)
    c.send(frame(ftype, 0, sid, payload))
    c.expect_ping_ack(c.ping())
    c.assert_usable()


# -- §5.1.1 stream identifiers --------------------------------------------------------------


def test_5_1_1_even_stream_id(c: RawH2) -> None:
    """§5.1.1: a client-initiated stream with an even identifier is a connection error
    PROTOCOL_ERROR."""
    c.send_headers(2, c.request_headers("/css/print.css"))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_5_1_1_decreasing_stream_id(c: RawH2) -> None:
    """§5.1.1: a new stream id lower than one already opened is a connection error
    PROTOCOL_ERROR."""
    c.send_headers(5, c.request_headers("/css/print.css"))
    c.read_response(5)
    c.send_headers(3, c.request_headers("/css/print.css"))
    c.expect_goaway(E.PROTOCOL_ERROR)


# -- §5.1.2 stream concurrency --------------------------------------------------------------


def test_5_1_2_exceeding_max_concurrent_streams(connect: Connect) -> None:
    """§5.1.2: a HEADERS frame exceeding the advertised SETTINGS_MAX_CONCURRENT_STREAMS is a
    stream error PROTOCOL_ERROR or REFUSED_STREAM; the connection stays up."""
    c = connect(settings=[(S.ENABLE_PUSH, 0), (S.INITIAL_WINDOW_SIZE, 0)])
    limit = c.server_settings[S.MAX_CONCURRENT_STREAMS]
    ids = [c.new_stream() for _ in range(limit + 1)]
    # Our window is 0, so no response can finish: all `limit` streams stay open.
    c.send(b"".join(c.headers_frame(sid, c.request_headers(LARGE)) for sid in ids))
    c.expect_rst(ids[-1], [E.PROTOCOL_ERROR, E.REFUSED_STREAM])
    resets = [f for f in c.fence() + c.received if f.type == T.RST_STREAM]
    assert {f.stream_id for f in resets} == {ids[-1]}
    # A stream that finishes frees a slot for a new one.
    c.send(frame(T.WINDOW_UPDATE, 0, 0, u32(LARGE_SIZE)) + frame(T.WINDOW_UPDATE, 0, ids[0], u32(LARGE_SIZE)))
    while True:
        f = c.read_frame()
        if f.stream_id == ids[0] and f.type == T.DATA and f.flags & F.END_STREAM:
            break
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/css/print.css"))
    c.send(frame(T.WINDOW_UPDATE, 0, sid, u32(65535)))
    assert c.read_response(sid).status == 200


# -- §5.3.1 / §6.2 / §6.3 priority ------------------------------------------------------------


def test_5_3_1_headers_depending_on_itself(c: RawH2) -> None:
    """§5.3.1: a stream cannot depend on itself (HEADERS with PRIORITY): stream error
    PROTOCOL_ERROR (h2spec also accepts a connection error)."""
    sid = c.new_stream()
    payload = priority_payload(sid) + c.block(c.request_headers("/css/print.css"))
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM | F.PRIORITY, sid, payload))
    c.expect_rst(sid, E.PROTOCOL_ERROR, allow_goaway=True)


def test_5_3_1_priority_frame_depending_on_itself(c: RawH2) -> None:
    """§5.3.1: a PRIORITY frame making a stream depend on itself: stream error PROTOCOL_ERROR
    (h2spec also accepts a connection error)."""
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/css/print.css"))
    c.read_response(sid)
    c.send(frame(T.PRIORITY, 0, sid, priority_payload(sid)))
    c.expect_rst(sid, E.PROTOCOL_ERROR, allow_goaway=True)


def test_6_2_headers_with_priority_and_padding_work(c: RawH2) -> None:
    """§6.2: PADDED and PRIORITY flags together are understood; the request is served."""
    sid = c.new_stream()
    body = priority_payload(0, 200, exclusive=True) + c.block(c.request_headers("/css/print.css"))
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM | F.PRIORITY | F.PADDED, sid, padded(body, 7)))
    assert c.read_response(sid).status == 200


# -- §5.4.1 connection error handling -------------------------------------------------------


def test_5_4_1_goaway_names_last_stream_then_close(c: RawH2) -> None:
    """§5.4.1: after a connection error the server sends GOAWAY with the last stream it
    processed, then closes the connection."""
    c.assert_usable()  # stream 1
    c.send(frame(T.DATA, 0, 0, b"bad"))
    goaway = c.expect_goaway(E.PROTOCOL_ERROR)  # also waits for the close
    assert goaway is not None and goaway.last_stream_id == 1


# -- §6.1 DATA ------------------------------------------------------------------------------


def test_6_1_data_on_stream_zero(c: RawH2) -> None:
    """§6.1: DATA on stream 0 is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.DATA, 0, 0, b"zero"))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_1_data_with_invalid_padding(c: RawH2) -> None:
    """§6.1: padding as long as the payload is a connection error PROTOCOL_ERROR."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.DATA, F.PADDED | F.END_STREAM, sid, padded(b"abc", 10, padding=0)))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_1_padded_data_is_accepted(c: RawH2) -> None:
    """§6.1: valid padding is stripped; the stream and connection go on."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.DATA, F.PADDED | F.END_STREAM, sid, padded(b"abc", 20)))
    c.read_response(sid)
    c.assert_usable()


# -- §6.2 HEADERS ---------------------------------------------------------------------------


def test_6_2_headers_on_stream_zero(c: RawH2) -> None:
    """§6.2: HEADERS on stream 0 is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 0, c.block(c.request_headers())))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_2_headers_with_invalid_padding(c: RawH2) -> None:
    """§6.2: padding longer than the frame is a connection error PROTOCOL_ERROR."""
    block = c.block(c.request_headers())
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM | F.PADDED, 1,
                 padded(block, len(block) + 5, padding=0)))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_2_headers_without_end_headers_then_ping(c: RawH2) -> None:
    """§6.2/§6.10: a header block must continue with CONTINUATION; a PING instead is a
    connection error PROTOCOL_ERROR."""
    c.send(frame(T.HEADERS, F.END_STREAM, 1, c.block(c.request_headers()))
           + frame(T.PING, 0, 0, b"in-block"))
    c.expect_goaway(E.PROTOCOL_ERROR)


# -- §6.3 PRIORITY --------------------------------------------------------------------------


def test_6_3_priority_on_stream_zero(c: RawH2) -> None:
    """§6.3: PRIORITY on stream 0 is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.PRIORITY, 0, 0, priority_payload(1)))
    c.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [4, 6])
def test_6_3_priority_wrong_length(c: RawH2, length: int) -> None:
    """§6.3: a PRIORITY frame not 5 octets long is a stream error FRAME_SIZE_ERROR (h2spec
    also accepts a connection error)."""
    c.send(frame(T.PRIORITY, 0, 1, (priority_payload(0) + b"\0")[:length]))
    c.expect_rst(1, E.FRAME_SIZE_ERROR, allow_goaway=True)


# -- §6.4 RST_STREAM ------------------------------------------------------------------------


def test_6_4_rst_stream_on_stream_zero(c: RawH2) -> None:
    """§6.4: RST_STREAM on stream 0 is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.RST_STREAM, 0, 0, u32(E.CANCEL)))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_4_rst_stream_on_idle_stream(c: RawH2) -> None:
    """§6.4: RST_STREAM on an idle stream is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.RST_STREAM, 0, 3, u32(E.CANCEL)))
    c.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [3, 5])
def test_6_4_rst_stream_wrong_length(c: RawH2, length: int) -> None:
    """§6.4: a RST_STREAM frame not 4 octets long is a connection error FRAME_SIZE_ERROR."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.RST_STREAM, 0, sid, (u32(E.CANCEL) + b"\0")[:length]))
    c.expect_goaway(E.FRAME_SIZE_ERROR)


# -- §6.5 SETTINGS --------------------------------------------------------------------------


def test_6_5_settings_are_acknowledged(c: RawH2) -> None:
    """§6.5.3: every SETTINGS frame gets an empty SETTINGS ACK."""
    c.send(frame(T.SETTINGS, 0, 0, settings_payload([(S.HEADER_TABLE_SIZE, 4096)])))
    c.expect_settings_ack()
    c.send(frame(T.SETTINGS, 0, 0))
    c.expect_settings_ack()


def test_6_5_settings_ack_with_payload(c: RawH2) -> None:
    """§6.5: a SETTINGS ACK with a payload is a connection error FRAME_SIZE_ERROR."""
    c.send(frame(T.SETTINGS, F.ACK, 0, settings_payload([(S.ENABLE_PUSH, 0)])))
    c.expect_goaway(E.FRAME_SIZE_ERROR)


def test_6_5_settings_on_a_stream(c: RawH2) -> None:
    """§6.5: SETTINGS on a stream is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.SETTINGS, 0, 1, settings_payload([(S.ENABLE_PUSH, 0)])))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_5_settings_length_not_multiple_of_six(c: RawH2) -> None:
    """§6.5: a SETTINGS length not a multiple of 6 is a connection error FRAME_SIZE_ERROR."""
    c.send(frame(T.SETTINGS, 0, 0, settings_payload([(S.ENABLE_PUSH, 0)])[:3]))
    c.expect_goaway(E.FRAME_SIZE_ERROR)


@pytest.mark.parametrize(("setting", "value", "code"), [
    (S.ENABLE_PUSH, 2, E.PROTOCOL_ERROR),
    (S.INITIAL_WINDOW_SIZE, 2**31, E.FLOW_CONTROL_ERROR),
    (S.MAX_FRAME_SIZE, 2**14 - 1, E.PROTOCOL_ERROR),
    (S.MAX_FRAME_SIZE, 2**24, E.PROTOCOL_ERROR),
    (0x8, 2, E.PROTOCOL_ERROR),
    (0x9, 2, E.PROTOCOL_ERROR),
], ids=["ENABLE_PUSH=2", "INITIAL_WINDOW_SIZE=2^31", "MAX_FRAME_SIZE=2^14-1", "MAX_FRAME_SIZE=2^24",
        "ENABLE_CONNECT_PROTOCOL=2", "NO_RFC7540_PRIORITIES=2"])
def test_6_5_2_invalid_setting_values(c: RawH2, setting: int, value: int, code: int) -> None:
    """§6.5.2 (and RFC 8441 §3, RFC 9218 §2.1): out-of-range setting values are connection
    errors of the given type."""
    c.send(frame(T.SETTINGS, 0, 0, settings_payload([(setting, value)])))
    c.expect_goaway(code)


def test_6_5_2_unknown_setting_is_ignored(c: RawH2) -> None:
    """§6.5.2: an unknown setting identifier is ignored (and acknowledged)."""
    c.send(frame(T.SETTINGS, 0, 0, settings_payload([(0xFF, 1), (0x7777, 123456)])))
    c.expect_settings_ack()
    c.assert_usable()


# -- §6.7 PING ------------------------------------------------------------------------------


def test_6_7_ping_ack_carries_same_payload(c: RawH2) -> None:
    """§6.7: a PING is answered by a PING ACK with an identical payload."""
    c.send(frame(T.PING, 0, 0, b"\x00\xffpayld!"))
    c.expect_ping_ack(b"\x00\xffpayld!")


def test_6_7_ping_ack_is_not_answered(c: RawH2) -> None:
    """§6.7: a PING with ACK from the peer gets no answer."""
    c.send(frame(T.PING, F.ACK, 0, b"unasked!"))
    before = c.fence()
    assert not [f for f in before if f.type == T.PING]


def test_6_7_ping_on_a_stream(c: RawH2) -> None:
    """§6.7: PING on a stream is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.PING, 0, 1, b"12345678"))
    c.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [7, 9])
def test_6_7_ping_wrong_length(c: RawH2, length: int) -> None:
    """§6.7: a PING not 8 octets long is a connection error FRAME_SIZE_ERROR."""
    c.send(frame(T.PING, 0, 0, b"123456789"[:length]))
    c.expect_goaway(E.FRAME_SIZE_ERROR)


# -- §6.8 GOAWAY ----------------------------------------------------------------------------


def test_6_8_goaway_on_a_stream(c: RawH2) -> None:
    """§6.8: GOAWAY on a stream is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.GOAWAY, 0, 1, u32(0) + u32(E.NO_ERROR)))
    c.expect_goaway(E.PROTOCOL_ERROR)


# -- §6.9 WINDOW_UPDATE and flow control ----------------------------------------------------


def test_6_9_window_update_zero_on_connection(c: RawH2) -> None:
    """§6.9: a connection WINDOW_UPDATE of 0 is a connection error PROTOCOL_ERROR."""
    c.send(frame(T.WINDOW_UPDATE, 0, 0, u32(0)))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_9_window_update_zero_on_stream(c: RawH2) -> None:
    """§6.9: a stream WINDOW_UPDATE of 0 is a stream error PROTOCOL_ERROR (strict)."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False) + frame(T.WINDOW_UPDATE, 0, sid, u32(0)))
    c.expect_rst(sid, E.PROTOCOL_ERROR)
    c.assert_usable()


def test_6_9_window_update_zero_with_the_request_comes_before_any_response(c: RawH2) -> None:
    """§6.9, strict: a GET (END_STREAM) and a WINDOW_UPDATE of 0 on its stream in one read: the
    stream error, and no response before it (every frame of a read is judged first)."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, c.request_headers("/css/site.css")) + frame(T.WINDOW_UPDATE, 0, sid, u32(0)))
    expect_rst_first(c, sid, E.PROTOCOL_ERROR)
    c.assert_usable()


def test_6_9_window_update_zero_after_the_response(c: RawH2) -> None:
    """§6.9, strict: a WINDOW_UPDATE of 0 that arrives after the response went out (h2spec
    sends its frames in separate writes, so a quick server may have answered already) is
    still a stream error, on the closed stream."""
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/css/site.css"))
    c.read_response(sid)
    c.send(frame(T.WINDOW_UPDATE, 0, sid, u32(0)))
    c.expect_rst(sid, E.PROTOCOL_ERROR)
    c.assert_usable()


def expect_rst_first(c: RawH2, sid: int, code: int) -> None:
    """A RST_STREAM with ``code`` on ``sid``, and nothing of a response on it before."""
    seen = len(c.received)
    c.expect_rst(sid, code)
    before = [f.describe() for f in c.received[seen:-1] if f.stream_id == sid]
    assert not before, f"the response went out before the stream error: {before}"


@pytest.mark.parametrize("length", [3, 5])
def test_6_9_window_update_wrong_length(c: RawH2, length: int) -> None:
    """§6.9: a WINDOW_UPDATE not 4 octets long is a connection error FRAME_SIZE_ERROR."""
    c.send(frame(T.WINDOW_UPDATE, 0, 0, (u32(1) + b"\0")[:length]))
    c.expect_goaway(E.FRAME_SIZE_ERROR)


def test_6_9_1_connection_window_overflow(c: RawH2) -> None:
    """§6.9.1: a connection window above 2^31-1 is a connection error FLOW_CONTROL_ERROR."""
    c.send(frame(T.WINDOW_UPDATE, 0, 0, u32(2**31 - 1)))
    c.expect_goaway(E.FLOW_CONTROL_ERROR)


def test_6_9_1_stream_window_overflow(c: RawH2) -> None:
    """§6.9.1: a stream window above 2^31-1 is a stream error FLOW_CONTROL_ERROR."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.WINDOW_UPDATE, 0, sid, u32(2**31 - 1)) + frame(T.WINDOW_UPDATE, 0, sid, u32(2**31 - 1)))
    c.expect_rst(sid, E.FLOW_CONTROL_ERROR, allow_goaway=True)


def _data_on(frames: list[Frame], sid: int) -> int:
    return sum(len(f.payload) for f in frames if f.type == T.DATA and f.stream_id == sid)


def _read_data(c: RawH2, sid: int, n: int) -> None:
    """Read until ``n`` bytes of DATA arrived on ``sid``, then check nothing more was sent."""
    got = 0
    while got < n:
        f = c.read_frame()
        assert f.type not in (T.GOAWAY, T.RST_STREAM), f.describe()
        if f.type == T.DATA and f.stream_id == sid:
            got += len(f.payload)
    assert got == n, f"window allowed {n} bytes, server sent {got}"
    assert _data_on(c.fence(), sid) == 0, "server sent more than the window allowed"


def test_6_9_2_initial_window_size_applies_to_open_streams(connect: Connect) -> None:
    """§6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change adjusts the windows of open streams,
    including to a negative window, from which WINDOW_UPDATE brings it back."""
    c = connect(settings=[(S.ENABLE_PUSH, 0), (S.INITIAL_WINDOW_SIZE, 100)])
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers(LARGE))
    _read_data(c, sid, 100)  # window 100 used up
    c.send(frame(T.SETTINGS, 0, 0, settings_payload([(S.INITIAL_WINDOW_SIZE, 1100)])))
    _read_data(c, sid, 1000)  # +1000 on the open stream
    c.send(frame(T.SETTINGS, 0, 0, settings_payload([(S.INITIAL_WINDOW_SIZE, 100)])))
    c.expect_settings_ack()  # window now 100 - 1100 = -1000
    c.send(frame(T.WINDOW_UPDATE, 0, sid, u32(600)))
    assert _data_on(c.fence(), sid) == 0  # still -400: nothing may be sent
    c.send(frame(T.WINDOW_UPDATE, 0, sid, u32(700)))
    _read_data(c, sid, 300)  # -400 + 700
    c.send(frame(T.WINDOW_UPDATE, 0, sid, u32(LARGE_SIZE)))
    reply = c.read_response(sid)
    assert reply.status == 200 and len(reply.body) == LARGE_SIZE - 1400


def test_6_9_2_initial_window_size_overflowing_open_stream(connect: Connect) -> None:
    """§6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change that takes a stream window above 2^31-1
    is a connection error FLOW_CONTROL_ERROR."""
    c = connect(settings=[(S.ENABLE_PUSH, 0), (S.INITIAL_WINDOW_SIZE, 0)])
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers(LARGE))
    c.send(frame(T.WINDOW_UPDATE, 0, sid, u32(2**31 - 1 - 10)))
    # The stream window is ~2^31-1 minus what was sent (at most the 65535 connection window).
    c.send(frame(T.SETTINGS, 0, 0, settings_payload([(S.INITIAL_WINDOW_SIZE, 2**31 - 1)])))
    c.expect_goaway(E.FLOW_CONTROL_ERROR)


# -- §6.10 CONTINUATION ---------------------------------------------------------------------


def test_6_10_continuation_without_headers(c: RawH2) -> None:
    """§6.10: CONTINUATION not preceded by HEADERS is a connection error PROTOCOL_ERROR."""
    c.assert_usable()  # stream 1 exists and is closed
    c.send(frame(T.CONTINUATION, F.END_HEADERS, 1, c.block([(b"x-a", b"b")])))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_10_continuation_after_end_headers(c: RawH2) -> None:
    """§6.10: CONTINUATION after a HEADERS frame that had END_HEADERS is a connection error
    PROTOCOL_ERROR."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.CONTINUATION, F.END_HEADERS, sid, c.block([(b"x-a", b"b")])))
    c.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("interloper", ["PING", "PRIORITY", "DATA", "HEADERS-other-stream", "unknown"])
def test_6_10_frame_interleaved_in_header_block(c: RawH2, interloper: str) -> None:
    """§4.3/§6.10: a header block is one contiguous sequence; any other frame in between is a
    connection error PROTOCOL_ERROR (unknown frame types too, §5.5)."""
    block = c.block(c.request_headers("/css/print.css"))
    other = {
        "PING": frame(T.PING, 0, 0, b"12345678"),
        "PRIORITY": frame(T.PRIORITY, 0, 1, priority_payload(0)),
        "DATA": frame(T.DATA, 0, 1, b"x"),
        "HEADERS-other-stream": frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, b"\x82\x87\x84"),
        "unknown": frame(0xEE, 0, 0, b"zz"),
    }[interloper]
    c.send(frame(T.HEADERS, F.END_STREAM, 1, block[:5]) + other
           + frame(T.CONTINUATION, F.END_HEADERS, 1, block[5:]))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_10_continuation_on_another_stream(c: RawH2) -> None:
    """§6.10: a CONTINUATION for a different stream is a connection error PROTOCOL_ERROR."""
    block = c.block(c.request_headers("/css/print.css"))
    c.send(frame(T.HEADERS, F.END_STREAM, 1, block[:5]) + frame(T.CONTINUATION, F.END_HEADERS, 3, block[5:]))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_10_request_split_over_many_continuations(c: RawH2) -> None:
    """§6.10: a request whose field block spans HEADERS + many CONTINUATION frames is served."""
    sid = c.new_stream()
    block = c.block(c.request_headers("/css/print.css", extra=[(b"x-filler", b"v" * 40)]))
    pieces = [block[i:i + 4] for i in range(0, len(block), 4)]
    assert len(pieces) >= 10
    data = frame(T.HEADERS, F.END_STREAM, sid, pieces[0])
    for i, piece in enumerate(pieces[1:], 1):
        data += frame(T.CONTINUATION, F.END_HEADERS if i == len(pieces) - 1 else 0, sid, piece)
    c.send(data)
    assert c.read_response(sid).status == 200
    c.assert_usable()


# -- §8.1 / §8.2 / §8.3 malformed requests ---------------------------------------------------

REQ = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/css/print.css")]
AUTH = [(b":authority", b"localhost")]

MALFORMED: dict[str, list[tuple[bytes, bytes]]] = {
    "8.2-uppercase-name": [*REQ, *AUTH, (b"X-Upper", b"1")],
    "8.3-pseudo-after-regular": [*REQ, (b"x-a", b"1"), *AUTH],
    "8.3-unknown-pseudo": [*REQ, *AUTH, (b":foo", b"bar")],
    "8.3-response-pseudo": [*REQ, *AUTH, (b":status", b"200")],
    "8.3.1-duplicate-path": [*REQ, *AUTH, (b":path", b"/")],
    "8.3.1-missing-path": [(b":method", b"GET"), (b":scheme", b"https"), *AUTH],
    "8.3.1-empty-path": [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b""), *AUTH],
    "8.3.1-duplicate-method": [*REQ, *AUTH, (b":method", b"HEAD")],
    "8.3.1-missing-method": [(b":scheme", b"https"), (b":path", b"/"), *AUTH],
    "8.3.1-duplicate-scheme": [*REQ, *AUTH, (b":scheme", b"http")],
    "8.3.1-missing-scheme": [(b":method", b"GET"), (b":path", b"/"), *AUTH],
    "8.2.2-connection": [*REQ, *AUTH, (b"connection", b"keep-alive")],
    "8.2.2-keep-alive": [*REQ, *AUTH, (b"keep-alive", b"timeout=5")],
    "8.2.2-transfer-encoding": [*REQ, *AUTH, (b"transfer-encoding", b"chunked")],
    "8.2.2-proxy-connection": [*REQ, *AUTH, (b"proxy-connection", b"keep-alive")],
    "8.2.2-upgrade": [*REQ, *AUTH, (b"upgrade", b"websocket")],
    "8.2.2-te-not-trailers": [*REQ, *AUTH, (b"te", b"gzip")],
    "8.2.1-space-in-name": [*REQ, *AUTH, (b"x a", b"1")],
    "8.2.1-colon-in-name": [*REQ, *AUTH, (b"x:a", b"1")],
    "8.2.1-empty-name": [*REQ, *AUTH, (b"", b"1")],
    "8.2.1-value-with-cr": [*REQ, *AUTH, (b"x-a", b"1\r2")],
    "8.2.1-value-with-leading-space": [*REQ, *AUTH, (b"x-a", b" 1")],
    "8.3.1-host-differs-from-authority": [*REQ, *AUTH, (b"host", b"elsewhere.test")],
    "8.3.1-connect-with-path": [(b":method", b"CONNECT"), *AUTH, (b":path", b"/")],
    "8.1.1-content-length-not-a-number": [*REQ, *AUTH, (b"content-length", b"ten")],
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_8_malformed_request_is_stream_error(c: RawH2, name: str) -> None:
    """§8.1.1: a malformed request is a stream error PROTOCOL_ERROR; the connection lives on."""
    sid = c.new_stream()
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, c.block(MALFORMED[name])))
    c.expect_rst(sid, E.PROTOCOL_ERROR)
    c.assert_usable()


def test_8_2_2_te_trailers_is_allowed(c: RawH2) -> None:
    """§8.2.2: TE: trailers is the one allowed TE value."""
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("/css/print.css", extra=[(b"te", b"trailers")]))
    assert c.read_response(sid).status == 200


@pytest.mark.parametrize(("declared", "sent"), [(10, [5]), (2, [5]), (1, [4]), (1, [4, 4])],
                         ids=["short", "long", "h2spec-one-frame", "h2spec-two-frames"])
def test_8_1_1_content_length_mismatch(c: RawH2, declared: int, sent: list[int]) -> None:
    """§8.1.1: DATA not adding up to content-length makes the request malformed: a stream error
    PROTOCOL_ERROR (strict), before any response to it (the static file answers a POST with
    405 at once, so a response would otherwise go first)."""
    sid = c.new_stream()
    data = c.headers_frame(sid, post_headers(c, "/css/site.css", [(b"content-length", str(declared).encode())]),
                           end_stream=False)
    for n, size in enumerate(sent, 1):
        data += frame(T.DATA, F.END_STREAM if n == len(sent) else 0, sid, b"x" * size)
    c.send(data)
    expect_rst_first(c, sid, E.PROTOCOL_ERROR)
    c.assert_usable()


def test_8_1_1_content_length_mismatch_after_a_slice_of_other_frames(c: RawH2) -> None:
    """§8.1.1, strict: the core handles 512 frames per loop turn, but judges the whole read
    before answering: 600 PINGs between the request and its too-long body change nothing."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c, "/css/site.css", [(b"content-length", b"1")]), end_stream=False)
           + frame(T.PING, 0, 0, b"pingpong") * 600 + frame(T.DATA, F.END_STREAM, sid, b"test"))
    expect_rst_first(c, sid, E.PROTOCOL_ERROR)
    c.assert_usable()


def test_8_1_1_content_length_with_end_stream_on_headers(c: RawH2) -> None:
    """§8.1.1: a request that declares a body but ends with its HEADERS is malformed: stream
    error PROTOCOL_ERROR."""
    sid = c.new_stream()
    c.send_headers(sid, post_headers(c, extra=[(b"content-length", b"5")]))
    c.expect_rst(sid, E.PROTOCOL_ERROR)
    c.assert_usable()


def test_8_1_trailers_with_pseudo_header(c: RawH2) -> None:
    """§8.1: trailers must not carry pseudo-header fields: stream error PROTOCOL_ERROR."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.DATA, 0, sid, b"body")
           + c.headers_frame(sid, [(b":path", b"/x")], end_stream=True))
    c.expect_rst(sid, E.PROTOCOL_ERROR, allow_goaway=True)
    c.assert_usable()


def test_8_1_trailers_without_end_stream(c: RawH2) -> None:
    """§8.1: a second HEADERS (trailers) without END_STREAM: stream error PROTOCOL_ERROR."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.DATA, 0, sid, b"body")
           + c.headers_frame(sid, [(b"x-trailer", b"1")], end_stream=False))
    c.expect_rst(sid, E.PROTOCOL_ERROR, allow_goaway=True)


def test_8_1_trailers_are_accepted(c: RawH2) -> None:
    """§8.1: well-formed trailers end a request normally."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.DATA, 0, sid, b"body")
           + c.headers_frame(sid, [(b"x-trailer", b"1")], end_stream=True))
    c.read_response(sid)
    c.assert_usable()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_8_1_request_with_end_stream_on_headers(c: RawH2, method: str) -> None:
    """§8.1: a request that is only a HEADERS frame with END_STREAM is answered; HEAD gets the
    same head and no body."""
    reply = c.get("/css/print.css", method)
    assert reply.status == 200
    assert dict(reply.headers)[b"content-length"] == b"247"
    assert reply.body == (b"" if method == "HEAD" else reply.body)
    if method == "GET":
        assert len(reply.body) == 247


# -- RFC 7541 HPACK -------------------------------------------------------------------------

HPACK_BROKEN: dict[str, bytes] = {
    # §2.3.3 / §6.1: index 0, and an index past the static table with an empty dynamic table.
    "index-zero": b"\x80",
    "index-out-of-range": hpack_int(70, 7, 0x80),
    "name-index-out-of-range": hpack_int(70, 4, 0x00) + b"\x01a",
    # §4.2 / §6.3: a table size update above SETTINGS_HEADER_TABLE_SIZE (4096).
    "table-size-update-too-large": hpack_int(4097, 5, 0x20),
    # §5.2: Huffman padding longer than 7 bits, padding not the EOS prefix, EOS in the string.
    "huffman-padding-too-long": lit(b"x-h", b"\x82\x1f\xff"),
    "huffman-padding-not-ones": lit(b"x-h", b"\x81\x18"),
    "huffman-eos": lit(b"x-h", b"\x84\xff\xff\xff\xff"),
    # §5.2: a string longer than the block.
    "string-truncated": lit(b"x-h", b"\x10abc"),
}


@pytest.mark.parametrize("name", list(HPACK_BROKEN))
def test_rfc7541_decoding_error(c: RawH2, name: str) -> None:
    """RFC 7541 decoding errors are connection errors COMPRESSION_ERROR (RFC 9113 §4.3)."""
    prefix = b"" if name.startswith("table-size") or name.startswith("index") else b"\x82\x87\x84"
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, prefix + HPACK_BROKEN[name]))
    c.expect_goaway(E.COMPRESSION_ERROR)


def test_rfc7541_4_2_table_size_update_after_field(c: RawH2) -> None:
    """RFC 7541 §4.2: a table size update must come first in a block; after a field it is a
    decoding error, COMPRESSION_ERROR."""
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, b"\x82\x87\x84" + hpack_int(0, 5, 0x20)))
    c.expect_goaway(E.COMPRESSION_ERROR)


def test_rfc7541_table_size_update_within_limit(c: RawH2) -> None:
    """RFC 7541 §6.3: a size update at the start of a block, within the limit, is fine."""
    sid = c.new_stream()
    block = hpack_int(0, 5, 0x20) + hpack_int(4096, 5, 0x20) + c.block(c.request_headers("/css/print.css"))
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, block))
    assert c.read_response(sid).status == 200


# -- checks the server's own HTTP/2 core makes (no library under it any more) ------------------


def test_4_2_any_frame_over_max_frame_size(c: RawH2) -> None:
    """§4.2: a frame of an unknown type over SETTINGS_MAX_FRAME_SIZE is still a FRAME_SIZE_ERROR
    (the length is checked before the payload is read)."""
    c.send(frame(0xEE, 0, 0, b"z" * (MAX_FRAME + 1)))
    c.expect_goaway(E.FRAME_SIZE_ERROR)


def test_4_3_header_list_over_the_advertised_size(c: RawH2) -> None:
    """§4.3/§10.5.1 (HPACK bomb): a small block that indexes a large dynamic-table entry many
    times decodes past SETTINGS_MAX_HEADER_LIST_SIZE: the connection ends ENHANCE_YOUR_CALM."""
    limit = c.server_settings[S.MAX_HEADER_LIST_SIZE]
    sid = c.new_stream()
    big = b"a" * 4000
    # Literal with incremental indexing, new name: x-big becomes dynamic entry 62.
    insert = b"\x40" + hpack_int(5, 7, 0) + b"x-big" + hpack_int(len(big), 7, 0) + big
    base = b"\x82\x87\x84" + b"\x01" + hpack_int(len(c.authority), 7, 0) + c.authority
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, base + insert))
    assert c.read_response(sid).status == 200
    repeats = limit // 4000 + 2
    c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, c.new_stream(), base + b"\xbe" * repeats))
    c.expect_goaway(E.ENHANCE_YOUR_CALM)


def test_5_1_data_on_a_stream_the_server_reset_is_ignored(c: RawH2) -> None:
    """§5.1 closed: frames that crossed the server's RST_STREAM are ignored, not answered."""
    sid = c.new_stream()
    c.send(frame(T.HEADERS, F.END_HEADERS, sid, c.block(MALFORMED["8.2.2-te-not-trailers"])))
    c.expect_rst(sid, E.PROTOCOL_ERROR)
    c.send(frame(T.DATA, 0, sid, b"in flight") + frame(T.DATA, F.END_STREAM, sid, b"more"))
    before = c.expect_ping_ack(c.ping())
    assert not [f for f in before if f.type in (T.RST_STREAM, T.GOAWAY)], [f.describe() for f in before]
    c.assert_usable()


def test_6_6_push_promise_from_client(c: RawH2) -> None:
    """§6.6/§8.4: a client cannot push: PUSH_PROMISE from it is a connection error PROTOCOL_ERROR."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, post_headers(c), end_stream=False)
           + frame(T.PUSH_PROMISE, F.END_HEADERS, sid, u32(2) + c.block(c.request_headers("/x"))))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_6_10_continuation_flood(c: RawH2) -> None:
    """§6.10/§10.5: a header block that never ends (empty CONTINUATION frames, CVE-2024-27316
    style) is cut off with ENHANCE_YOUR_CALM long before it could fill memory."""
    block = c.block(c.request_headers("/css/print.css"))
    c.send(frame(T.HEADERS, F.END_STREAM, 1, block) + frame(T.CONTINUATION, 0, 1, b"") * 200)
    c.expect_goaway(E.ENHANCE_YOUR_CALM)


def test_6_10_header_block_larger_than_the_header_list_limit(c: RawH2) -> None:
    """§6.10/§10.5.1: a header block's compressed bytes alone exceed the advertised
    MAX_HEADER_LIST_SIZE: ENHANCE_YOUR_CALM, without decoding it."""
    limit = c.server_settings[S.MAX_HEADER_LIST_SIZE]
    pieces = limit // MAX_FRAME + 2
    data = frame(T.HEADERS, F.END_STREAM, 1, b"\x00" * MAX_FRAME)
    data += b"".join(frame(T.CONTINUATION, 0, 1, b"\x00" * MAX_FRAME) for _ in range(pieces))
    c.send(data)
    c.expect_goaway(E.ENHANCE_YOUR_CALM)


def test_rfc9218_priority_update_on_a_stream(c: RawH2) -> None:
    """RFC 9218 §7.1: PRIORITY_UPDATE must be sent on stream 0; on a stream it is a connection
    error PROTOCOL_ERROR."""
    c.send(frame(0x10, 0, 1, u32(1) + b"u=1"))
    c.expect_goaway(E.PROTOCOL_ERROR)


def test_rfc9218_priority_update_is_accepted(c: RawH2) -> None:
    """RFC 9218 §7.1: a PRIORITY_UPDATE on stream 0 for an open stream changes nothing visible
    but its order; the response still comes whole."""
    sid = c.new_stream()
    c.send(c.headers_frame(sid, c.request_headers(LARGE), end_stream=True) + frame(0x10, 0, 0, u32(sid) + b"u=0, i"))
    reply = c.read_response(sid)
    assert reply.status == 200 and len(reply.body) == LARGE_SIZE
