"""H3Core driven by aioquic's HTTP/3 client in memory (tests/support/h3memory.py): requests and
responses, bodies and flow control, priorities, push, the two-step GOAWAY, and each limit the
core puts on what aioquic would accept (header sections, QPACK bombs, rapid reset)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import ErrorCode, FrameType, encode_frame

from pushserve.protocol.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    RequestReceived,
    StreamReset,
)
from pushserve.protocol.h3 import H3Core
from pushserve.protocol.h3.http3 import MAX_FIELD_LINES, ControlReader, count_field_lines
from tests.support.h3attacks import qpack_bomb
from tests.support.h3client import H3Reply
from tests.support.h3memory import H3Pair, server_configuration
from tests.support.serverproc import Certs


@pytest.fixture(scope="module")
def config(certs: Certs):  # type: ignore[no-untyped-def]
    return server_configuration(certs.cert_dir / "localhost.pem", certs.cert_dir / "localhost-key.pem")


def make_pair(config, answer: Callable[..., None] | None = None, **kw) -> H3Pair:  # type: ignore[no-untyped-def]
    holder: dict[str, H3Pair] = {}

    def on_events(events: list[Event]) -> None:
        if answer is not None:
            answer(holder["pair"].core, events)

    pair = H3Pair(config, on_events=on_events, **kw)
    holder["pair"] = pair
    return pair


def static(body: bytes) -> Callable[[H3Core, list[Event]], None]:
    def answer(core: H3Core, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, RequestReceived):
                core.send_response(e.stream_id, 200, [(b"content-length", b"%d" % len(body))], body)
    return answer


# -- requests and responses ---------------------------------------------------------------------------

def test_a_request_surfaces_and_its_answer_arrives(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config, static(b"hello"))
    assert pair.core is not None and pair.core.handshake_complete
    assert pair.core.cipher.startswith("TLS_")
    sid = pair.request("/a?b=1", headers=[(b"accept", b"*/*"), (b"cookie", b"a=1"), (b"cookie", b"b=2")])
    req = pair.last_request()
    assert (req.method, req.target, req.authority, req.http_version, req.end_stream) == \
        (b"GET", b"/a?b=1", b"example.test", "3", True)
    assert (b"cookie", b"a=1; b=2") in req.headers  # joined, as RFC 9114 §4.2.1 asks
    reply = pair.replies[sid]
    assert reply.done and reply.status == 200 and bytes(reply.body) == b"hello"
    assert pair.core.open_streams == 0


def test_early_hints_then_the_response(config) -> None:  # type: ignore[no-untyped-def]
    def answer(core: H3Core, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, RequestReceived):
                core.send_informational(e.stream_id, 103, [(b"link", b"</a.css>; rel=preload; as=style")])
                core.send_response(e.stream_id, 200, [(b"content-length", b"2"), (b"connection", b"close")], b"ok")

    pair = make_pair(config, answer)
    reply = pair.replies[pair.request("/")]
    assert reply.informational == [[(b":status", b"103"), (b"link", b"</a.css>; rel=preload; as=style")]]
    assert reply.status == 200 and reply.header(b"connection") is None  # connection-specific: dropped


def test_head_gets_no_body_whatever_it_is_given(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config, static(b"x" * 50_000))
    reply = pair.replies[pair.request("/", method="HEAD")]
    assert reply.done and reply.status == 200 and reply.header(b"content-length") == b"50000" and not reply.body


def test_a_large_body_is_handed_to_quic_a_slice_at_a_time(config) -> None:  # type: ignore[no-untyped-def]
    body = bytes(range(256)) * 1200  # 300 KB
    seen: list[int] = []

    def answer(core: H3Core, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, RequestReceived):
                core.send_response(e.stream_id, 200, [], iter([body[:100_000], body[100_000:]]))

    pair = make_pair(config, answer)
    sid = pair.quic.get_next_available_stream_id()
    pair.client.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"),
                                   (b":path", b"/")], end_stream=True)
    for _ in range(200):
        pair._move()
        seen.append(pair.core._unsent(sid))
        pair._run_timers(pair.now + 0.01)
        if pair.replies.get(sid) is not None and pair.replies[sid].done:
            break
    assert bytes(pair.replies[sid].body) == body
    assert max(seen) <= 96 * 1024  # never the whole body in aioquic's buffer at once


def test_streamed_response_and_drained(config) -> None:  # type: ignore[no-untyped-def]
    from pushserve.protocol.events import StreamDrained

    def answer(core: H3Core, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, RequestReceived):
                core.send_response(e.stream_id, 200, [], None, end_stream=False)
                core.send_data(e.stream_id, b"one,")
            elif isinstance(e, StreamDrained):
                core.send_data(e.stream_id, b"two", end_stream=True)

    pair = make_pair(config, answer)
    sid = pair.request("/stream")
    assert bytes(pair.replies[sid].body) == b"one,two" and pair.replies[sid].done


# -- request bodies and flow control ------------------------------------------------------------------

def test_an_upload_goes_at_the_consumers_pace(config) -> None:  # type: ignore[no-untyped-def]
    """Body nobody acknowledges holds the window shut at ``max_stream_data`` (1 MiB here); each
    acknowledgement lets the client send that much more."""
    pair = make_pair(config)
    sid = pair.request("/upload", method="POST", end=False)
    pair.send_body(sid, b"u" * (2 << 20), end=True)
    received = sum(len(e.data) for e in pair.events if isinstance(e, BodyReceived))
    assert (1 << 20) - 2048 <= received <= 1 << 20
    pair.core.acknowledge_received(sid, received)
    pair.pump()
    more = sum(len(e.data) for e in pair.events if isinstance(e, BodyReceived))
    assert received < more <= received + (1 << 20)
    while True:
        done = sum(len(e.data) for e in pair.events if isinstance(e, BodyReceived))
        pair.core.acknowledge_received(sid, done)
        pair.pump()
        if done == sum(len(e.data) for e in pair.events if isinstance(e, BodyReceived)):
            break
    assert done == 2 << 20
    assert any(isinstance(e, BodyReceived) and e.end_stream for e in pair.events)


def test_trailers_end_the_body(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config)
    sid = pair.request("/upload", method="POST", body=b"abc", end=False)
    pair.client.send_headers(sid, [(b"x-checksum", b"1")], end_stream=True)
    pair.pump()
    bodies = [e for e in pair.events if isinstance(e, BodyReceived)]
    assert b"".join(e.data for e in bodies) == b"abc" and bodies[-1].end_stream


# -- malformed and refused requests -------------------------------------------------------------------

def test_a_malformed_request_is_a_stream_error(config) -> None:  # type: ignore[no-untyped-def]
    """aioquic ends the connection for most malformed requests (a missing :path, say); what it
    lets through and RFC 9114 §4.3 forbids, such as :authority and host that differ, is reset
    with H3_MESSAGE_ERROR and the connection goes on."""
    pair = make_pair(config, static(b"ok"))
    sid = pair.quic.get_next_available_stream_id()
    pair.client.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"),
                                   (b":path", b"/"), (b"host", b"y")], end_stream=True)
    pair.replies[sid] = H3Reply(sid)
    pair.pump()
    assert not pair.requests() and pair.replies[sid].reset == ErrorCode.H3_MESSAGE_ERROR
    assert pair.terminated is None
    ok = pair.replies[pair.request("/fine")]
    assert ok.status == 200


def test_client_cancel_reaches_the_layer_above(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config)  # nobody answers
    sid = pair.request("/slow")
    pair.cancel(sid)
    assert [e for e in pair.events if isinstance(e, StreamReset)] == [StreamReset(sid, ErrorCode.H3_REQUEST_CANCELLED)]
    assert pair.core.open_streams == 0


def test_reset_no_error_after_a_complete_response_only_stops_the_upload(config) -> None:  # type: ignore[no-untyped-def]
    def answer(core: H3Core, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, RequestReceived):
                core.send_response(e.stream_id, 405, [(b"content-length", b"3")], b"no!")
                core.reset_stream(e.stream_id, 0)

    pair = make_pair(config, answer)
    sid = pair.request("/file", method="POST", body=b"x" * 10_000, end=False)
    reply = pair.replies[sid]
    assert reply.done and reply.status == 405 and bytes(reply.body) == b"no!" and reply.reset is None
    assert pair.stopped == {sid: ErrorCode.H3_NO_ERROR}


# -- priorities ---------------------------------------------------------------------------------------

def _two_bodies(config, first: bytes, second: bytes, update: bytes | None = None):  # type: ignore[no-untyped-def]
    body = b"b" * 400_000
    pair = make_pair(config)
    a = pair.quic.get_next_available_stream_id()
    pair.client.send_headers(a, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"),
                                 (b":path", b"/a"), (b"priority", first)], end_stream=True)
    b = a + 4
    pair.client.send_headers(b, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"),
                                 (b":path", b"/b"), (b"priority", second)], end_stream=True)
    if update is not None:
        control = pair.client._local_control_stream_id
        pair.quic.send_stream_data(control, encode_frame(0xF0700, encode_uint_var(a) + update))
    pair._move()
    pair._move()
    assert len(pair.requests()) == 2
    for sid in (a, b):
        pair.core.send_response(sid, 200, [], body)
    finished: list[int] = []
    for _ in range(5000):
        pair._move()
        pair._run_timers(pair.now + 0.002)
        finished += [sid for sid in (a, b) if sid in pair.replies and pair.replies[sid].done and sid not in finished]
        if len(finished) == 2:
            return finished, a, b
    raise AssertionError("bodies never finished")


def test_the_more_urgent_response_finishes_first(config) -> None:  # type: ignore[no-untyped-def]
    finished, a, b = _two_bodies(config, b"u=5", b"u=1")
    assert finished == [b, a]


def test_priority_update_on_the_control_stream_reorders(config) -> None:  # type: ignore[no-untyped-def]
    finished, a, b = _two_bodies(config, b"u=5", b"u=3", update=b"u=0")
    assert finished == [a, b]


def test_control_reader_finds_priority_updates_in_any_split() -> None:
    stream = (encode_uint_var(0) + encode_frame(FrameType.SETTINGS, b"\x01\x00")
              + encode_frame(0x21, b"grease" * 100)
              + encode_frame(0xF0700, encode_uint_var(8) + b"u=2, i")
              + encode_frame(FrameType.GOAWAY, encode_uint_var(0)))
    for size in (1, 2, 3, 7, len(stream)):
        reader = ControlReader()
        found = []
        for i in range(0, len(stream), size):
            found += reader.feed(stream[i:i + size])
        assert found == [(False, 8, b"u=2, i")], size
    other = ControlReader()
    assert other.feed(encode_uint_var(2) + b"whatever") == [] and not other.active


# -- push ---------------------------------------------------------------------------------------------

def test_push_only_to_a_client_that_enables_it(config) -> None:  # type: ignore[no-untyped-def]
    def answer(core: H3Core, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, RequestReceived) and e.target == b"/":
                promised = core.push_promise(e.stream_id, [(b":method", b"GET"), (b":scheme", b"https"),
                                                           (b":authority", b"x"), (b":path", b"/a.css")])
                if promised is not None:
                    core.send_response(promised, 200, [(b"content-type", b"text/css")], b"body{}")
                core.send_response(e.stream_id, 200, [], b"page")

    pushing = make_pair(config, answer, push=True)
    assert pushing.core.push_enabled
    sid = pushing.request("/")
    assert pushing.replies[sid].done
    (pushed,) = pushing.pushes.values()
    assert pushed.path == b"/a.css" and pushed.done and bytes(pushed.body) == b"body{}"
    plain = make_pair(config, answer)
    assert not plain.core.push_enabled
    plain.request("/")
    assert not plain.pushes


# -- closing ------------------------------------------------------------------------------------------

def test_two_step_goaway_finishes_what_was_asked_and_refuses_the_rest(config) -> None:  # type: ignore[no-untyped-def]
    held: list[int] = []

    def answer(core: H3Core, events: list[Event]) -> None:
        held.extend(e.stream_id for e in events if isinstance(e, RequestReceived))

    pair = make_pair(config, answer)
    first = pair.request("/one")
    pair.core.close()  # GOAWAY naming the last possible stream: nothing refused yet
    pair.pump()
    second = pair.request("/two")
    assert held == [first, second]
    pair.core.close()  # the real GOAWAY: streams above `second` are refused
    pair.pump()
    third = pair.request("/three")
    assert held == [first, second] and pair.replies[third].reset == ErrorCode.H3_REQUEST_REJECTED
    for sid in (first, second):
        pair.core.send_response(sid, 200, [], b"done")
    pair.pump()
    assert pair.replies[first].done and pair.replies[second].done
    assert pair.terminated is not None and pair.terminated.error_code == ErrorCode.H3_NO_ERROR
    pair.advance(5)
    assert pair.core.terminated


def test_idle_timeout_ends_a_silent_connection(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config, static(b"ok"))
    pair.request("/")
    pair.reading = False  # the client goes silent
    pair.advance(61)
    assert pair.core.terminated
    assert isinstance(pair.events[-1], ConnectionTerminated)


# -- limits -------------------------------------------------------------------------------------------

def test_a_huge_headers_frame_is_refused_before_it_is_buffered(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config, static(b"ok"))
    sid = pair.quic.get_next_available_stream_id()
    # Only the frame's head: the length alone condemns it.
    pair.quic.send_stream_data(sid, encode_uint_var(FrameType.HEADERS) + encode_uint_var(70_000) + b"\x00" * 100)
    pair.pump()
    assert pair.terminated is not None and pair.terminated.error_code == ErrorCode.H3_EXCESSIVE_LOAD
    assert not pair.requests()


def _bomb(pair: H3Pair, references: int) -> None:
    qpack_bomb(pair.quic, pair.client, references)
    pair.pump()


def test_qpack_bomb_of_many_references_is_refused_unread(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config, static(b"ok"))
    _bomb(pair, 10_000)
    assert pair.terminated is not None and pair.terminated.error_code == ErrorCode.H3_EXCESSIVE_LOAD
    assert "field lines" in pair.terminated.reason_phrase
    assert not pair.requests()


def test_qpack_bomb_within_the_line_count_is_refused_by_its_decoded_size(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config, static(b"ok"))
    _bomb(pair, MAX_FIELD_LINES - 4)  # ~500 KB decoded
    assert pair.terminated is not None and pair.terminated.error_code == ErrorCode.H3_EXCESSIVE_LOAD
    assert "decoded" in pair.terminated.reason_phrase


def test_field_lines_are_counted_without_decoding() -> None:
    import pylsqpack

    encoder = pylsqpack.Encoder()
    headers = [(b":method", b"GET"), (b":path", b"/"), (b"x-a", b"1" * 300), (b"accept", b"*/*"),
               (b"x-literal-name", b"v")] + [(b"x-%d" % i, b"y") for i in range(20)]
    _, block = encoder.encode(0, headers)
    assert count_field_lines(block) == len(headers)
    assert count_field_lines(b"\x00\x00" + b"\xc1" * 1000) == MAX_FIELD_LINES + 1
    assert count_field_lines(b"\x00") == 0  # does not parse: left to QPACK


def test_rapid_reset_ends_the_connection(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config)  # requests are held, never answered
    for _ in range(120):
        sid = pair.quic.get_next_available_stream_id()
        pair.client.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"),
                                       (b":path", b"/")], end_stream=True)
        pair.quic.stop_stream(sid, 0x10C)
        pair.quic.reset_stream(sid, 0x10C)
        pair.pump()
        if pair.terminated is not None:
            break
    assert pair.terminated is not None and pair.terminated.error_code == ErrorCode.H3_EXCESSIVE_LOAD
    assert "rapid reset" in pair.terminated.reason_phrase


def test_a_few_cancels_are_fine(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config)
    for _ in range(50):
        pair.cancel(pair.request("/img"))
    assert pair.terminated is None


def test_awaiting_head_while_a_header_section_is_incomplete(config) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair(config)
    sid = pair.quic.get_next_available_stream_id()
    pair.quic.send_stream_data(sid, encode_uint_var(FrameType.HEADERS) + encode_uint_var(50) + b"\x00\x00")
    pair.pump()
    assert pair.core.awaiting_head and not pair.requests()


def test_misuse_raises_and_late_calls_on_a_reset_stream_are_dropped(config) -> None:  # type: ignore[no-untyped-def]
    from pushserve.protocol.events import LocalProtocolError

    pair = make_pair(config)
    core = pair.core
    sid = pair.request("/a")
    with pytest.raises(LocalProtocolError):
        core.send_data(sid, b"x")  # before the head
    with pytest.raises(LocalProtocolError):
        core.send_informational(sid, 200, [])
    core.send_response(sid, 200, [], None, end_stream=False)
    with pytest.raises(LocalProtocolError):
        core.send_response(sid, 200, [], b"again")
    with pytest.raises(LocalProtocolError):
        core.send_informational(sid, 103, [])  # after the final head
    core.send_data(sid, b"done", end_stream=True)
    with pytest.raises(LocalProtocolError):
        core.send_data(sid, b"more")
    pair.pump()
    assert bytes(pair.replies[sid].body) == b"done"
    with pytest.raises(LocalProtocolError):
        core.send_response(sid, 200, [], b"x")  # ended and forgotten: still told apart
    with pytest.raises(LocalProtocolError):
        core.send_response(4000, 200, [], b"x")  # never opened
    cancelled = pair.request("/b")
    pair.cancel(cancelled)
    core.send_response(cancelled, 200, [], b"late")  # the reset crossed the answer: dropped
    core.send_data(cancelled, b"late")
    pair.pump()
    assert not pair.replies[cancelled].headers and pair.replies[cancelled].reset == ErrorCode.H3_REQUEST_CANCELLED
