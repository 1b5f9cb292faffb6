"""What the HTTP/2 fuzz target found, pinned as tests.

1. A request and the peer's GOAWAY in one read (fixed by the core that replaced h2's).
2. A read that crosses a flood limit dropped the events of its requests yet reported a
   StreamReset for them.  Now every frame of a read is judged before any of its requests
   reaches the layer above (the read may take several slices): a read that ends the
   connection surfaces none of its requests, and resets only streams surfaced before.
3. A malformed content-length ended the whole connection where RFC 9113 §8.1.1 asks for a
   stream error (the h2-based core; see also tests/unit/protocol/test_h2_strict.py)."""

from __future__ import annotations

from hpack import Encoder
from hyperframe.frame import GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame

from pushserve.protocol.events import Event, RequestReceived, StreamReset
from pushserve.protocol.h2 import H2Core
from tests.fuzz.checks import EventChecker
from tests.fuzz.test_h2_fuzz import PREFACE, REQUEST
from tests.unit.protocol.test_h2_core import parse_frames


def _request(sid: int, fields: list[tuple[bytes, bytes]] = REQUEST, *, end: bool = True,
             encoder: Encoder | None = None) -> bytes:
    flags = ["END_HEADERS", "END_STREAM"] if end else ["END_HEADERS"]
    data: bytes = HeadersFrame(sid, data=(encoder or Encoder()).encode(fields), flags=flags).serialize()
    return data


def _start() -> tuple[H2Core, EventChecker]:
    core = H2Core()
    core.initiate()
    core.data_to_send()
    return core, EventChecker()


def _feed(core: H2Core, check: EventChecker, data: bytes) -> list[Event]:
    events = check.feed(core.receive_data(data))
    while core.pending_input:
        events += check.feed(core.resume())
    return events


def test_request_and_goaway_in_one_read() -> None:
    core, check = _start()
    goaway = GoAwayFrame(0, last_stream_id=0, error_code=0).serialize()
    _feed(core, check, PREFACE + SettingsFrame(0).serialize() + _request(1) + goaway)
    assert check.terminated is not None


def test_request_and_flood_in_one_read() -> None:
    core, check = _start()
    pings = PingFrame(0, opaque_data=b"12345678").serialize() * 1200
    events = _feed(core, check, PREFACE + SettingsFrame(0).serialize() + _request(1) + pings)
    assert check.terminated is not None and check.terminated.error_code == 0xB  # ENHANCE_YOUR_CALM
    assert events == [check.terminated]  # no request of the flood's read, so no reset of one


def test_flood_after_an_earlier_request_resets_only_that_one() -> None:
    core, check = _start()
    encoder = Encoder()
    (first,) = _feed(core, check, PREFACE + SettingsFrame(0).serialize() + _request(1, encoder=encoder))
    assert isinstance(first, RequestReceived)
    pings = PingFrame(0, opaque_data=b"12345678").serialize() * 1200
    events = _feed(core, check, _request(3, encoder=encoder) + pings)
    assert events == [StreamReset(1, 0x8), check.terminated]


def test_malformed_content_length_is_a_stream_error() -> None:
    core, check = _start()
    encoder = Encoder()
    post = [(b":method", b"POST"), *REQUEST[1:], (b"content-length", b"x")]
    assert _feed(core, check, PREFACE + SettingsFrame(0).serialize() + _request(1, post, end=False,
                                                                                encoder=encoder)) == []
    frames = parse_frames(core.data_to_send())
    assert [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)] == [(1, 0x1)]
    assert [type(e) for e in _feed(core, check, _request(3, encoder=encoder))] == [RequestReceived]
    assert check.terminated is None
