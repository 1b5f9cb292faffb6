"""Fuzz the HTTP/2 core through the ServerCore interface only (events.py), so the same target
keeps working when the core is replaced: a valid preface, then random frame sequences built with
hyperframe (any type on any stream, valid and broken header blocks, floods of one frame), fed in
random pieces.  The core must never raise, its events must make sense, its output must be whole
HTTP/2 frames starting with SETTINGS, and any connection error must end in a GOAWAY (carrying the
error's code) and ``closing``."""

from __future__ import annotations

from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import event, given
from hypothesis import strategies as st

from pushserve.protocol.events import ServerCore
from pushserve.protocol.h2 import H2Core
from tests.fuzz.drive import ACTIONS, Driver, rarely, split
from tests.fuzz.profile import FUZZ

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_GOAWAY = 0x7

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.test"), (b":path", b"/")]
FIELD_POOL = [
    (b":method", b"POST"), (b":method", b"CONNECT"), (b":path", b""), (b":path", b"/a?b"), (b":protocol", b"x"),
    (b":status", b"200"), (b":scheme", b"http"), (b"Host", b"h"), (b"connection", b"close"), (b"te", b"trailers"),
    (b"te", b"gzip"), (b"content-length", b"3"), (b"content-length", b"x"), (b"priority", b"u=0, i"),
    (b"cookie", b"a=1"), (b"x-long", b"v" * 500), (b"", b"empty"), (b"bad name", b"v"), (b"v", b"a\r\nb"),
]
stream_ids = st.sampled_from([1, 3, 5, 7, 0, 2, 2**31 - 1]) | st.integers(0, 2**31 - 1)


@st.composite
def header_block(draw: st.DrawFn) -> bytes:
    fields = list(REQUEST) if draw(st.booleans()) else []
    fields += draw(st.lists(st.sampled_from(FIELD_POOL) | st.tuples(st.binary(max_size=10), st.binary(max_size=20)),
                            max_size=5))
    fields = draw(st.permutations(fields)) if draw(st.integers(0, 4)) == 0 else fields
    block = bytearray(Encoder().encode(fields))
    if draw(st.integers(0, 5)) == 0 and block:  # a broken HPACK block
        block[draw(st.integers(0, len(block) - 1))] = draw(st.integers(0, 255))
    return bytes(block)


def _on(frame: Frame, sid: int) -> bytes:
    """``frame`` serialised with its stream id replaced (hyperframe refuses ids that are wrong for
    the type, which is exactly what the fuzzer wants to send)."""
    data = bytearray(frame.serialize())
    data[5:9] = sid.to_bytes(4, "big")
    return bytes(data)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 13))
    sid = draw(stream_ids)

    def flag() -> bool:
        return draw(st.booleans())

    if kind in (0, 1):  # a request, the commonest frame of all
        f = HeadersFrame(1, data=draw(header_block()))
        if draw(st.integers(0, 6)):  # now and then a block continued (or not) by CONTINUATION
            f.flags.add("END_HEADERS")
        if draw(st.booleans()):
            f.flags.add("END_STREAM")
        if draw(st.integers(0, 5)) == 0:
            f.flags.add("PRIORITY")
            f.depends_on, f.stream_weight, f.exclusive = draw(stream_ids), draw(st.integers(0, 255)), flag()
        if draw(st.integers(0, 5)) == 0:
            f.flags.add("PADDED")
            f.pad_length = draw(st.integers(0, 255))
        return _on(f, draw(st.sampled_from([1, 3, 5, 7, 9, 11])) if kind == 0 else sid)
    if kind == 2:
        f = ContinuationFrame(1, data=draw(header_block()))
        if draw(st.booleans()):
            f.flags.add("END_HEADERS")
        return _on(f, sid)
    if kind == 3:
        f = DataFrame(1, data=draw(st.binary(max_size=300)))
        if flag():
            f.flags.add("END_STREAM")
        if draw(st.integers(0, 4)) == 0:
            f.flags.add("PADDED")
            f.pad_length = draw(st.integers(0, 255))
        return _on(f, sid)
    if kind == 4:
        f = PriorityFrame(1, depends_on=draw(stream_ids), stream_weight=draw(st.integers(0, 255)), exclusive=flag())
        return _on(f, sid)
    if kind == 5:
        return _on(RstStreamFrame(1, error_code=draw(st.integers(0, 0xFFFFFFFF))), sid)
    if kind == 6:
        if flag():
            return _on(SettingsFrame(0, flags=["ACK"]), 0)
        entries = draw(st.dictionaries(st.integers(1, 9) | st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
                                       max_size=4))
        return _on(SettingsFrame(0, settings=entries), draw(st.sampled_from([0, 0, 0, 1])))
    if kind == 7:
        f = PingFrame(0, opaque_data=draw(st.binary(min_size=8, max_size=8)), flags=["ACK"] if flag() else [])
        return _on(f, draw(st.sampled_from([0, 0, 0, 1])))
    if kind == 8:
        f = GoAwayFrame(0, last_stream_id=draw(stream_ids), error_code=draw(st.integers(0, 20)))
        return _on(f, draw(st.sampled_from([0, 0, 0, 3])))
    if kind == 9:
        f = WindowUpdateFrame(0, window_increment=draw(st.integers(0, 2**31 - 1)))
        return _on(f, draw(st.sampled_from([0, 0, 1, 3]) | stream_ids))
    if kind == 10:  # a client may not push
        f = PushPromiseFrame(1, promised_stream_id=draw(stream_ids), data=draw(header_block()), flags=["END_HEADERS"])
        return _on(f, sid)
    if kind == 11:  # extension frames; 0x10 is PRIORITY_UPDATE (RFC 9218)
        body = draw(st.binary(max_size=4)) + draw(st.sampled_from([b"u=0", b"u=7, i", b"u=9", b""]))
        return _on(ExtensionFrame(draw(st.sampled_from([0x10, 0xA, 0xFF])), 1, flag_byte=0, body=body),
                   draw(st.sampled_from([0, 1])))
    if kind == 12:  # a well-formed frame header with whatever payload (wrong lengths for the type)
        payload = draw(st.binary(max_size=20))
        head = len(payload).to_bytes(3, "big") + bytes([draw(st.integers(0, 11)), draw(st.integers(0, 255))])
        return head + sid.to_bytes(4, "big") + payload
    return draw(st.binary(min_size=1, max_size=30))  # garbage


def _request_frames(draw: st.DrawFn, sid: int) -> list[bytes]:
    """A well-formed request on a new stream: HEADERS (now and then continued by CONTINUATION
    frames), then maybe a body in DATA frames."""
    path = draw(st.sampled_from([b"/", b"/a.css", b"/x?y=1", b"/%2e%2e/etc"]))
    method = draw(st.sampled_from([b"GET", b"GET", b"HEAD", b"POST"]))
    fields = [(b":method", method), (b":scheme", b"https"), (b":authority", b"example.test"), (b":path", path)]
    if rarely(draw, 3):
        fields += draw(st.lists(st.sampled_from(FIELD_POOL), max_size=2))
    block = Encoder().encode(fields)
    has_body = method == b"POST" and draw(st.booleans())
    pieces = [block]
    if rarely(draw, 5) and len(block) > 2:
        cut = draw(st.integers(1, len(block) - 1))
        pieces = [block[:cut], block[cut:]]
    first = HeadersFrame(1, data=pieces[0], flags=[] if len(pieces) > 1 else ["END_HEADERS"])
    if not has_body:
        first.flags.add("END_STREAM")
    out = [_on(first, sid)]
    out += [_on(ContinuationFrame(1, data=p, flags=["END_HEADERS"]), sid) for p in pieces[1:]]
    if has_body:
        for n, body in enumerate(draw(st.lists(st.binary(max_size=200), min_size=1, max_size=3)), 1):
            out.append(_on(DataFrame(1, data=body, flags=["END_STREAM"] if n == 3 or rarely(draw, 2) else []), sid))
    return out


@st.composite
def conversations(draw: st.DrawFn) -> bytes:
    """The preface and a valid SETTINGS, then mostly well-formed traffic (requests on new
    streams, bodies, resets, window updates, pings, settings, priorities) with now and then a
    flood of one frame, a rapid-reset burst, or any frame at all (see ``frames``)."""
    settings = SettingsFrame(0, settings=draw(st.dictionaries(
        st.sampled_from([1, 3, 4, 6]), st.integers(0, 2**16), max_size=3)))
    out = [PREFACE, settings.serialize() if not rarely(draw, 30) else _on(SettingsFrame(0, flags=["ACK"]), 0)]
    next_sid, opened = 1, [1]
    wild = rarely(draw, 4)  # only some conversations hold broken frames: one is enough to end it
    for n in range(draw(st.integers(1, 25))):
        choice = 0 if n == 0 else draw(st.integers(0, 19 if wild else 17))
        sid = draw(st.sampled_from(opened))
        if choice < 6:
            out += _request_frames(draw, next_sid)
            opened.append(next_sid)
            next_sid += 2
        elif choice < 9:
            out.append(_on(DataFrame(1, data=draw(st.binary(max_size=300)),
                                     flags=["END_STREAM"] if draw(st.booleans()) else []), sid))
        elif choice == 9:
            out.append(_on(RstStreamFrame(1, error_code=draw(st.integers(0, 13))), sid))
        elif choice == 10:
            increment = draw(st.integers(1, 2**16))
            out.append(_on(WindowUpdateFrame(0, window_increment=increment), draw(st.sampled_from([0, sid]))))
        elif choice == 11:
            ack = rarely(draw, 3)
            codes = st.sampled_from([1, 2, 3, 4, 6])  # values 0 and 1: push off/on, windows shut, ...
            entries = {} if ack else draw(st.dictionaries(codes, st.integers(0, 1), max_size=2))
            out.append(SettingsFrame(0, settings=entries, flags=["ACK"] if ack else []).serialize())
        elif choice == 12:
            out.append(PingFrame(0, opaque_data=b"fuzzping", flags=["ACK"] if rarely(draw, 4) else []).serialize())
        elif choice == 13:
            out.append(_on(PriorityFrame(1, depends_on=0, stream_weight=draw(st.integers(0, 255))), sid))
        elif choice == 14:
            body = sid.to_bytes(4, "big") + draw(st.sampled_from([b"u=0", b"u=7, i", b"u=9", b""]))
            out.append(ExtensionFrame(0x10, 0, flag_byte=0, body=body).serialize())
        elif choice == 18:  # a push promise the client may not send
            out.append(_on(PushPromiseFrame(1, promised_stream_id=next_sid + 1, data=Encoder().encode(REQUEST),
                                            flags=["END_HEADERS"]), sid))
        elif choice in (15, 16):  # a flood of one control frame
            frame = draw(st.sampled_from([PingFrame(0, opaque_data=b"flooding"), SettingsFrame(0),
                                          PriorityFrame(1, depends_on=0), DataFrame(1, data=b"")]))
            out.append(_on(frame, sid if frame.stream_id else 0) * draw(st.sampled_from([50, 1200])))
        elif choice == 17:  # rapid reset: requests cancelled as soon as they are sent
            block = Encoder().encode(REQUEST)
            for _ in range(draw(st.sampled_from([5, 150]))):
                out.append(_on(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]), next_sid))
                out.append(_on(RstStreamFrame(1, error_code=8), next_sid))
                next_sid += 2
        else:
            out.append(draw(frames()))
    if rarely(draw, 6):  # the client leaves
        out.append(GoAwayFrame(0, last_stream_id=0, error_code=draw(st.integers(0, 2))).serialize())
    return b"".join(out)


def _frames_of(data: bytes) -> list[Frame]:
    """Parse the server's output; fails on anything but whole, valid frames."""
    out, i = [], 0
    while i < len(data):
        assert i + 9 <= len(data), f"truncated frame header at {i}: {data[i:]!r}"
        frame, length = Frame.parse_frame_header(memoryview(data[i:i + 9]))
        assert i + 9 + length <= len(data), f"truncated {type(frame).__name__} at {i}"
        frame.parse_body(memoryview(data[i + 9:i + 9 + length]))
        out.append(frame)
        i += 9 + length
    return out


def _client_goaway(fed: bytes) -> bool:
    """Whether the client's input (after the preface) holds a GOAWAY frame header on stream 0 —
    after which the core ends the connection without a GOAWAY of its own."""
    i = len(PREFACE)
    while i + 9 <= len(fed):
        if fed[i + 3] == _GOAWAY:
            return True
        i += 9 + int.from_bytes(fed[i:i + 3], "big")
    return False


def new_core(max_streams: int) -> ServerCore:
    """The one place that names the core under test."""
    return H2Core(max_concurrent_streams=max_streams)


@FUZZ
@given(data=conversations(), cut=st.lists(st.integers(0, 10**7), max_size=10),
       answer=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=6), eof=st.booleans(),
       max_streams=st.sampled_from([128, 2]), limit=st.sampled_from([256 * 1024, 100]))
def test_frame_sequences(data: bytes, cut: list[int], answer: list[int], eof: bool, max_streams: int,
                         limit: int) -> None:
    core = new_core(max_streams)
    core.initiate()
    drive = Driver(core, answer, limit=limit)
    fed = b""
    for piece in split(data, cut):
        if drive.check.terminated is None:
            fed += piece
        drive.receive(piece)
    ended_by_eof = eof and drive.check.terminated is None
    if eof:
        drive.receive(b"")
    drive.settle()
    written = drive.written
    sent = _frames_of(written)
    assert sent and isinstance(sent[0], SettingsFrame) and "ACK" not in sent[0].flags, sent[:1]
    ended = drive.check.terminated
    event(f"ended {ended.error_code:#x}" if ended is not None else "still open")  # what the input reached
    event(f"requests surfaced: {min(len(drive.check.requests), 5)}{'+' if len(drive.check.requests) >= 5 else ''}")
    if ended is None:
        return
    assert core.closing, f"not closing after {ended}"
    goaways = [f for f in sent if isinstance(f, GoAwayFrame)]
    if not ended_by_eof and not _client_goaway(fed):
        assert goaways, f"connection error without a GOAWAY: {ended}"
        assert goaways[-1].error_code == ended.error_code, (goaways[-1], ended)
