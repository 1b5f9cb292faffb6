"""H1Core driven bytes in / bytes out, no sockets.

Responses are read back with h11 (an independent HTTP/1.1 implementation), so framing mistakes
(chunking, lengths, bodies on HEAD) show up as parse failures rather than being checked against
our own assumptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import h11
import pytest

from pushserve.protocol.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    LocalProtocolError,
    RequestReceived,
    StreamDrained,
    StreamReset,
)
from pushserve.protocol.h1 import H1Core

GET = b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"


def get(path: str, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: example.test", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    informational: list[int] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.headers if n == name]
        assert len(values) <= 1, f"{name!r} repeated"
        return values[0] if values else None


def read_replies(data: bytes, methods: list[bytes], *, eof: bool = False) -> list[Reply]:
    """Parse ``len(methods)`` consecutive responses out of ``data``; nothing may be left over."""
    replies = []
    for method in methods:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target="/", headers=[("host", "example.test")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(data)
        if eof:
            conn.receive_data(b"")
        reply: Reply | None = None
        informational: list[int] = []
        body = b""
        while True:
            event = conn.next_event()
            assert event is not h11.NEED_DATA, "response incomplete"
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                reply = Reply(event.status_code, list(event.headers), b"", informational)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert reply is not None
        reply.body = body
        replies.append(reply)
        data = conn.trailing_data[0]
    assert data == b"", f"unexpected trailing bytes {data[:80]!r}"
    return replies


def requests(events: list[Event]) -> list[RequestReceived]:
    return [e for e in events if isinstance(e, RequestReceived)]


def body_of(events: list[Event], stream_id: int) -> tuple[bytes, int]:
    """(body bytes, number of end_stream markers) for a stream."""
    pieces = [e for e in events if isinstance(e, BodyReceived) and e.stream_id == stream_id]
    return b"".join(p.data for p in pieces), sum(p.end_stream for p in pieces)


def terminations(events: list[Event]) -> list[ConnectionTerminated]:
    return [e for e in events if isinstance(e, ConnectionTerminated)]


def answer(core: H1Core, stream_id: int, body: bytes, status: int = 200) -> None:
    core.send_response(stream_id, status, [(b"content-length", b"%d" % len(body))], body)


# -- basics ----------------------------------------------------------------------------------------


def test_simple_get() -> None:
    core = H1Core()
    core.initiate()
    assert core.data_to_send() == b""
    events = core.receive_data(b"GET /a?b=1 HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n")
    assert events == [RequestReceived(1, b"GET", b"/a?b=1", b"example.test",
                                      [(b"host", b"example.test"), (b"accept", b"*/*")], "1.1", True)]
    assert core.open_streams == 1
    assert core.push_promise(1, [(b":method", b"GET")]) is None
    core.send_response(1, 200, [(b"content-type", b"text/plain"), (b"content-length", b"5")], b"hello")
    assert core.data_to_send() == (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                                   b"content-length: 5\r\n\r\nhello")
    assert core.data_to_send() == b""
    assert not core.closing
    assert core.open_streams == 0
    assert core.http_version == "1.1"
    assert core.push_enabled is False
    core.acknowledge_received(1, 10)


def test_header_names_lowercased_values_kept() -> None:
    core = H1Core()
    (req,) = core.receive_data(b"GET / HTTP/1.1\r\nHOST: Example.Test\r\nX-Thing: MiXeD\r\n\r\n")
    assert isinstance(req, RequestReceived)
    assert req.headers == [(b"host", b"Example.Test"), (b"x-thing", b"MiXeD")]
    assert req.authority == b"Example.Test"


def test_length_added_for_whole_bytes_body_and_caller_hop_headers_dropped() -> None:
    core = H1Core()
    core.receive_data(GET)
    core.send_response(1, 404, [(b"connection", b"close"), (b"transfer-encoding", b"chunked")], b"nope")
    out = core.data_to_send()
    assert out == b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope"
    assert not core.closing


def test_keep_alive_two_requests() -> None:
    core = H1Core()
    assert [r.stream_id for r in requests(core.receive_data(get("/one")))] == [1]
    answer(core, 1, b"one")
    (first,) = read_replies(core.data_to_send(), [b"GET"])
    assert first.body == b"one" and first.header(b"connection") is None
    (req,) = requests(core.receive_data(get("/two")))
    assert (req.stream_id, req.target) == (3, b"/two")
    answer(core, 3, b"two")
    (second,) = read_replies(core.data_to_send(), [b"GET"])
    assert second.body == b"two"
    assert not core.closing


def test_pipelined_requests_answered_out_of_order_leave_in_order() -> None:
    core = H1Core()
    events = core.receive_data(get("/1") + get("/2") + get("/3"))
    assert [(r.stream_id, r.target) for r in requests(events)] == [(1, b"/1"), (3, b"/2"), (5, b"/3")]
    answer(core, 5, b"third")
    answer(core, 3, b"second")
    assert core.data_to_send() == b""  # stream 1 holds the line
    assert core.buffered(5) == 5
    answer(core, 1, b"first")
    replies = read_replies(core.data_to_send(), [b"GET"] * 3)
    assert [r.body for r in replies] == [b"first", b"second", b"third"]
    assert core.open_streams == 0 and not core.closing


def test_connection_close_from_client() -> None:
    core = H1Core()
    core.receive_data(get("/", "Connection: close"))
    answer(core, 1, b"bye")
    assert not core.closing
    (reply,) = read_replies(core.data_to_send(), [b"GET"])
    assert reply.header(b"connection") == b"close"
    assert core.closing
    assert core.receive_data(get("/ignored")) == []
    assert core.data_to_send() == b""


def test_http10_without_keep_alive_closes() -> None:
    core = H1Core()
    (req,) = requests(core.receive_data(b"GET /old HTTP/1.0\r\n\r\n"))  # no Host needed on 1.0
    assert req.http_version == "1.0" and req.authority == b""
    answer(core, 1, b"x")
    (reply,) = read_replies(core.data_to_send(), [b"GET"])
    assert reply.header(b"connection") == b"close"
    assert core.closing


def test_http10_keep_alive() -> None:
    core = H1Core()
    core.receive_data(get("/a", "Connection: keep-alive", version="1.0"))
    answer(core, 1, b"a")
    (reply,) = read_replies(core.data_to_send(), [b"GET"])
    assert reply.header(b"connection") == b"keep-alive"
    assert not core.closing
    (req,) = requests(core.receive_data(get("/b", "Connection: keep-alive", version="1.0")))
    assert req.stream_id == 3


def test_http10_streamed_response_is_close_delimited() -> None:
    core = H1Core()
    core.receive_data(get("/s", "Connection: keep-alive", version="1.0"))
    core.send_response(1, 200, [(b"content-type", b"text/plain")], None, end_stream=False)
    core.send_data(1, b"abc")
    out = core.data_to_send()
    core.send_data(1, b"def", end_stream=True)
    out += core.data_to_send()
    assert b"transfer-encoding" not in out.lower()
    assert out.endswith(b"\r\n\r\nabcdef")
    (reply,) = read_replies(out, [b"GET"], eof=True)
    assert reply.header(b"connection") == b"close" and reply.body == b"abcdef"
    assert core.closing


# -- request bodies --------------------------------------------------------------------------------

CHUNKED_POST = (b"POST /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")


@pytest.mark.parametrize("step", [len(CHUNKED_POST), 7, 1])
def test_chunked_request_body_decoded(step: int) -> None:
    core = H1Core()
    events: list[Event] = []
    for i in range(0, len(CHUNKED_POST), step):
        events += core.receive_data(CHUNKED_POST[i:i + step])
    (req,) = requests(events)
    assert req.method == b"POST" and not req.end_stream
    assert (b"x-trailer", b"t") not in req.headers
    assert body_of(events, 1) == (b"hello 0123456789", 1)
    assert isinstance(events[-1], BodyReceived) and events[-1].end_stream
    answer(core, 1, b"ok")
    (reply,) = read_replies(core.data_to_send(), [b"GET"])
    assert reply.status == 200 and not core.closing


def test_content_length_body_then_next_request() -> None:
    core = H1Core()
    data = b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789" + get("/next")
    events = core.receive_data(data[:50]) + core.receive_data(data[50:])
    assert [r.stream_id for r in requests(events)] == [1, 3]
    assert body_of(events, 1) == (b"0123456789", 1)
    assert requests(events)[1].end_stream


def test_request_split_at_every_byte_boundary() -> None:
    data = (b"POST /p?q=1 HTTP/1.1\r\nHost: example.test\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 11\r\n\r\nhello world" + get("/after", "Accept: */*"))
    whole = H1Core().receive_data(data)
    for cut in range(1, len(data)):
        core = H1Core()
        events = core.receive_data(data[:cut]) + core.receive_data(data[cut:])
        assert requests(events) == requests(whole), cut
        assert body_of(events, 1) == (b"hello world", 1), cut


# -- responses -------------------------------------------------------------------------------------


def test_streamed_response_is_chunk_encoded() -> None:
    core = H1Core()
    core.receive_data(GET)
    core.send_response(1, 200, [(b"content-type", b"text/event-stream")], None, end_stream=False)
    head = core.data_to_send()
    assert head == b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    core.send_data(1, b"hello ")
    core.send_data(1, b"world")
    assert core.buffered(1) == 11
    assert core.next_events() == []
    out = core.data_to_send()
    assert out == b"6\r\nhello \r\n5\r\nworld\r\n"
    assert core.buffered(1) == 0
    assert core.next_events() == [StreamDrained(1)]
    core.send_data(1, b"", end_stream=True)
    tail = core.data_to_send()
    assert tail == b"0\r\n\r\n"
    (reply,) = read_replies(head + out + tail, [b"GET"])
    assert reply.body == b"hello world"
    assert core.open_streams == 0 and not core.closing


def test_head_keeps_length_sends_no_body_and_closes_iterator() -> None:
    closed = []

    def chunks() -> Iterator[bytes]:
        try:
            yield b"x" * 100
        finally:
            closed.append(True)

    core = H1Core()
    core.receive_data(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    body = chunks()
    next(body)  # started, so closing it runs the finally clause
    core.send_response(1, 200, [(b"content-length", b"100")], body)
    assert closed == [True]
    out = core.data_to_send()
    assert out == b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"
    (reply,) = read_replies(out, [b"HEAD"])
    assert reply.header(b"content-length") == b"100"
    assert core.open_streams == 0 and not core.closing


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    core = H1Core()
    core.receive_data(GET)
    core.send_response(1, status, [(b"etag", b'"1"')], b"ignored")
    out = core.data_to_send()
    assert out.endswith(b'etag: "1"\r\n\r\n')
    assert b"content-length" not in out and b"chunked" not in out
    core.receive_data(GET)
    answer(core, 3, b"next")
    read_replies(out + core.data_to_send(), [b"GET", b"GET"])


def test_large_iterator_body_pulled_lazily() -> None:
    pulled = 0

    def chunks() -> Iterator[bytes]:
        nonlocal pulled
        for i in range(50):
            pulled += 1
            yield bytes([65 + i % 26]) * 10_000

    core = H1Core()
    core.receive_data(GET)
    core.send_response(1, 200, [(b"content-length", b"500000")], chunks())
    assert pulled == 0
    head = core.data_to_send(limit=16_384)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    body = head.split(b"\r\n\r\n", 1)[1]
    assert len(body) == 16_384
    assert pulled == 2  # only what the limit asked for
    pieces = 1
    while core.open_streams:
        piece = core.data_to_send(limit=16_384)
        assert 0 < len(piece) <= 16_384
        assert pulled <= (len(body) + len(piece)) // 10_000 + 1
        body += piece
        pieces += 1
    assert body == b"".join(bytes([65 + i % 26]) * 10_000 for i in range(50))
    assert pieces == -(-500_000 // 16_384)
    assert core.data_to_send() == b""


def test_iterator_body_without_length_is_chunked_and_limited() -> None:
    core = H1Core()
    core.receive_data(GET)
    core.send_response(1, 200, [], iter([b"a" * 3000, b"b" * 3000]))
    out = b""
    while core.open_streams:
        out += core.data_to_send(limit=1000)
    (reply,) = read_replies(out, [b"GET"])
    assert reply.header(b"transfer-encoding") == b"chunked"
    assert reply.body == b"a" * 3000 + b"b" * 3000


def test_failing_body_iterator_cuts_the_connection() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"part"
        raise OSError("disk gone")

    core = H1Core()
    core.receive_data(GET)
    core.send_response(1, 200, [(b"content-length", b"100")], chunks())
    out = core.data_to_send()
    assert out.endswith(b"\r\n\r\npart")
    assert core.closing
    (term,) = terminations(core.next_events())
    assert term.error_code == 500 and term.reason == "response cut short: disk gone"


def test_body_cut_short_never_lets_a_pipelined_response_follow() -> None:
    """A file that ends before its Content-Length (truncated under the download): the connection
    ends right after the bytes sent; the pipelined request's response never enters the body."""
    def chunks() -> Iterator[bytes]:
        yield b"a" * 10
        raise OSError("file ended at byte 10 of 100")

    core = H1Core()
    core.receive_data(get("/big") + get("/next"))
    core.send_response(1, 200, [(b"content-length", b"100")], chunks())
    core.send_response(3, 200, [(b"content-length", b"4")], b"next")
    out = core.data_to_send()
    out += core.data_to_send()
    assert out.endswith(b"\r\n\r\n" + b"a" * 10) and b"next" not in out
    assert core.closing
    (term,) = terminations(core.next_events())
    assert term.reason == "response cut short: file ended at byte 10 of 100"


def test_early_hints_before_final_response_only_for_http11() -> None:
    core = H1Core()
    core.receive_data(GET)
    core.send_informational(1, 103, [(b"link", b"</a.css>; rel=preload; as=style")])
    answer(core, 1, b"page")
    out = core.data_to_send()
    assert out.startswith(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload; as=style\r\n\r\n"
                          b"HTTP/1.1 200 OK\r\n")
    (reply,) = read_replies(out, [b"GET"])
    assert reply.informational == [103] and reply.body == b"page"

    old = H1Core()
    old.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    old.send_informational(1, 103, [(b"link", b"</a.css>; rel=preload")])
    answer(old, 1, b"page")
    assert old.data_to_send().startswith(b"HTTP/1.1 200 OK\r\n")


def test_early_hints_for_a_later_pipelined_request_wait_their_turn() -> None:
    core = H1Core()
    core.receive_data(get("/1") + get("/2"))
    core.send_informational(3, 103, [(b"link", b"</b.js>; rel=preload")])
    assert core.data_to_send() == b""
    answer(core, 1, b"one")
    answer(core, 3, b"two")
    replies = read_replies(core.data_to_send(), [b"GET", b"GET"])
    assert [r.informational for r in replies] == [[], [103]]


# -- Expect: 100-continue --------------------------------------------------------------------------

EXPECT_HEAD = (b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")


def test_expect_continue_sent_when_no_response_queued() -> None:
    core = H1Core()
    (req,) = core.receive_data(EXPECT_HEAD)
    assert isinstance(req, RequestReceived) and not req.end_stream
    assert core.data_to_send() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert core.data_to_send() == b""  # only once
    events = core.receive_data(b"data")
    assert events == [BodyReceived(1, b"data", True)]
    answer(core, 1, b"stored")
    out = core.data_to_send()
    (reply,) = read_replies(b"HTTP/1.1 100 Continue\r\n\r\n" + out, [b"POST"])
    assert reply.informational == [100] and reply.body == b"stored"
    assert reply.header(b"connection") is None and not core.closing


def test_expect_continue_skipped_for_early_final_response() -> None:
    core = H1Core()
    core.receive_data(EXPECT_HEAD)
    answer(core, 1, b"too big", status=413)
    out = core.data_to_send()
    assert out.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    (reply,) = read_replies(out, [b"POST"])
    assert reply.informational == [] and reply.header(b"connection") == b"close"
    assert core.closing
    assert StreamReset(1, 0x8) in core.next_events()  # its body will never be read


def test_explicit_100_continue_not_duplicated() -> None:
    core = H1Core()
    core.receive_data(EXPECT_HEAD)
    core.send_informational(1, 100, [])
    assert core.data_to_send() == b"HTTP/1.1 100 Continue\r\n\r\n"
    core.send_informational(1, 100, [])
    assert core.data_to_send() == b""


# -- errors ----------------------------------------------------------------------------------------


def assert_error(core: H1Core, events: list[Event], status: int) -> Reply:
    (term,) = terminations(events)
    assert term.error_code == status and term.reason
    assert not core.closing
    out = core.data_to_send()
    (reply,) = read_replies(out, [b"GET"])
    assert reply.status == status
    assert reply.header(b"connection") == b"close"
    assert reply.header(b"content-length") == b"%d" % len(reply.body)
    assert reply.body.startswith(b"%d " % status)
    assert core.closing
    assert core.receive_data(GET) == []
    assert core.data_to_send() == b""
    return reply


def test_414_for_long_request_line() -> None:
    core = H1Core()
    events = core.receive_data(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert requests(events) == []
    assert_error(core, events, 414)


def test_414_when_long_line_arrives_in_pieces() -> None:
    core = H1Core(max_request_line=100)
    events = core.receive_data(b"GET /")
    for _ in range(20):
        events += core.receive_data(b"a" * 10)
        if events:
            break
    assert_error(core, events, 414)


def test_431_for_huge_header() -> None:
    core = H1Core()
    events = core.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: " + b"c" * 70_000 + b"\r\n\r\n")
    assert_error(core, events, 431)


def test_431_for_huge_header_trickling_in() -> None:
    # A header line that never ends is held inside httptools; the byte count must still stop it.
    core = H1Core()
    events = core.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: ")
    for _ in range(100):
        events += core.receive_data(b"c" * 4096)
        if events:
            break
    assert core.awaiting_head is False
    assert_error(core, events, 431)


def test_431_for_too_many_headers() -> None:
    core = H1Core(max_headers=100)
    head = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n"
    assert_error(core, core.receive_data(head), 431)
    ok = H1Core(max_headers=101)
    assert len(requests(ok.receive_data(head))) == 1


@pytest.mark.parametrize("data", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",  # a TLS hello on the clear port
    b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET foo HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -3\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n folded: header\r\n\r\n",
    b"GET / HTTP/1.1\nHost: h\n\n",
    b"GET https://@/x HTTP/1.1\r\nHost: h\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
], ids=["tls", "method", "space", "relative", "star", "connect", "no-host", "two-hosts", "cl-te",
        "cl-cl", "cl-negative", "obs-fold", "bare-lf", "bad-absolute",
        "h2-preface", "cl-cl-same"])
def test_400_for_malformed_requests(data: bytes) -> None:
    core = H1Core()
    events = core.receive_data(data)
    assert requests(events) == []
    assert_error(core, events, 400)


def test_505_for_other_versions() -> None:
    core = H1Core()
    assert_error(core, core.receive_data(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505)


def test_bad_chunked_body_after_head_resets_stream_and_answers_400() -> None:
    core = H1Core()
    events = core.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3\r\nabc\r\nzz\r\n")
    assert [r.stream_id for r in requests(events)] == [1]
    assert StreamReset(1, 0x8) in events
    answer(core, 1, b"too late")  # ignored: the stream is gone
    assert_error(core, events, 400)


def test_error_after_good_pipelined_request_goes_out_last() -> None:
    core = H1Core()
    events = core.receive_data(get("/ok") + b"BROKEN\r\n\r\n")
    assert [r.stream_id for r in requests(events)] == [1]
    assert terminations(events)[0].error_code == 400
    assert core.data_to_send() == b""
    answer(core, 1, b"fine")
    out = core.data_to_send()
    first, second = read_replies(out, [b"GET", b"GET"])
    assert (first.status, first.body) == (200, b"fine")
    assert first.header(b"connection") is None
    assert second.status == 400
    assert core.closing


def test_options_star_and_absolute_form() -> None:
    core = H1Core()
    events = core.receive_data(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
                               b"GET https://Other.Test:8443?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                               b"GET http://a.test/p/q HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert [(r.method, r.target, r.authority) for r in requests(events)] == [
        (b"OPTIONS", b"*", b"h"),
        (b"GET", b"/?x=1", b"Other.Test:8443"),
        (b"GET", b"/p/q", b"a.test"),
    ]


def test_upgrade_request_served_normally() -> None:
    core = H1Core()
    events = core.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                               b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
                               b"Content-Length: 5\r\n\r\nhe" + b"llo" + get("/next"))
    assert [r.stream_id for r in requests(events)] == [1, 3]
    assert body_of(events, 1) == (b"hello", 1)
    answer(core, 1, b"a")
    answer(core, 3, b"b")
    replies = read_replies(core.data_to_send(), [b"POST", b"GET"])
    assert [r.status for r in replies] == [200, 200]
    assert all(r.header(b"upgrade") is None for r in replies)
    assert not core.closing


# -- connection lifetime ---------------------------------------------------------------------------


def test_eof_mid_request_resets_stream() -> None:
    core = H1Core()
    events = core.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\npartial")
    assert body_of(events, 1) == (b"partial", 0)
    assert core.receive_data(b"") == [StreamReset(1, 0x8), ConnectionTerminated(0, "client closed")]
    assert core.closing and core.open_streams == 0
    core.send_response(1, 200, [], b"late")
    assert core.data_to_send() == b""
    assert core.receive_data(b"") == []


def test_eof_with_unanswered_and_partial_requests() -> None:
    core = H1Core()
    core.receive_data(get("/1") + b"GET /2 HTTP/1.1\r\nHo")
    assert core.awaiting_head
    events = core.receive_data(b"")
    assert events == [StreamReset(1, 0x8), ConnectionTerminated(0, "client closed")]


def test_eof_when_idle() -> None:
    core = H1Core()
    core.receive_data(GET)
    answer(core, 1, b"x")
    core.data_to_send()
    assert core.receive_data(b"") == [ConnectionTerminated(0, "client closed")]
    assert core.closing


def test_awaiting_head() -> None:
    core = H1Core()
    assert not core.awaiting_head
    core.receive_data(b"GET / HTTP/1.1\r\nHost:")
    assert core.awaiting_head and core.open_streams == 0
    core.receive_data(b" h\r\n\r\n")
    assert not core.awaiting_head and core.open_streams == 1


def test_reset_stream_drops_pending_and_closes() -> None:
    core = H1Core()
    core.receive_data(GET)
    core.send_response(1, 200, [(b"content-length", b"10")], iter([b"01234", b"56789"]))
    assert core.data_to_send(limit=5).endswith(b"01234")
    core.reset_stream(1)
    assert core.closing
    assert core.data_to_send() == b""
    assert core.open_streams == 0


def test_reset_of_later_pipelined_stream_lets_earlier_finish() -> None:
    core = H1Core()
    core.receive_data(get("/1") + get("/2") + get("/3"))
    core.reset_stream(3)
    assert StreamReset(5, 0x8) in core.next_events()
    assert not core.closing
    answer(core, 1, b"one")
    (reply,) = read_replies(core.data_to_send(), [b"GET"])
    assert reply.body == b"one" and reply.header(b"connection") == b"close"
    assert core.closing


def test_close_finishes_response_in_progress() -> None:
    core = H1Core()
    core.receive_data(GET)
    core.close()
    assert not core.closing
    assert core.receive_data(get("/more")) == []
    answer(core, 1, b"last")
    (reply,) = read_replies(core.data_to_send(), [b"GET"])
    assert reply.body == b"last" and reply.header(b"connection") == b"close"
    assert core.closing


def test_idle_close_closes_at_once() -> None:
    core = H1Core()
    core.idle_close()
    assert core.closing
    assert core.data_to_send() == b""


def test_close_when_idle_answers_the_next_request_with_connection_close() -> None:
    """A draining worker: the client's next request may already be on the wire; it is answered
    (Connection: close), not lost to a close under the client's feet.  Only that one."""
    core = H1Core()
    core.close()
    assert not core.closing
    events = core.receive_data(get("/a") + get("/b"))
    assert [type(e) for e in events] == [RequestReceived] and events[0].target == b"/a"  # type: ignore[union-attr]
    answer(core, 1, b"a")
    out = core.data_to_send()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close" in out and out.endswith(b"a")
    assert core.closing


def test_idle_close_after_close_gives_up_waiting() -> None:
    core = H1Core()
    core.close()
    core.idle_close()
    assert core.closing


def test_request_head_timeout_answers_408() -> None:
    core = H1Core()
    assert core.receive_data(b"GET / HTTP/1.1\r\nHost: h") == []
    assert core.awaiting_head
    core.request_timeout()
    out = core.data_to_send()
    assert out.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"connection: close" in out
    assert core.closing


def test_request_timeout_without_a_head_does_nothing() -> None:
    core = H1Core()
    core.request_timeout()
    assert not core.closing and core.data_to_send() == b""


def test_close_lets_current_upload_finish() -> None:
    core = H1Core()
    core.receive_data(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc")
    core.close()
    events = core.receive_data(b"def" + get("/next"))
    assert events == [BodyReceived(1, b"def", True)]
    answer(core, 1, b"done")
    assert b"connection: close" in core.data_to_send()
    assert core.closing


# -- pipeline bound --------------------------------------------------------------------------------


def test_pipeline_bound_releases_requests_as_responses_complete() -> None:
    core = H1Core(max_pipeline=4)
    events = core.receive_data(b"".join(get(f"/{i}") for i in range(6)))
    assert [r.stream_id for r in requests(events)] == [1, 3, 5, 7]
    assert core.open_streams == 6
    # More input while full stays unparsed until responses leave.
    assert core.receive_data(get("/6") + get("/7")) == []
    answer(core, 3, b"3")
    assert core.data_to_send() == b""
    assert core.next_events() == []
    answer(core, 1, b"1")
    read_replies(core.data_to_send(), [b"GET", b"GET"])
    released = requests(core.next_events())
    assert [(r.stream_id, r.target) for r in released] == [(9, b"/4"), (11, b"/5")]
    seen = [1, 3, 5, 7, 9, 11]
    for sid in seen[2:]:
        answer(core, sid, b"%d" % sid)
    out = core.data_to_send()
    later = requests(core.next_events())
    assert [(r.stream_id, r.target) for r in later] == [(13, b"/6"), (15, b"/7")]
    assert len(read_replies(out, [b"GET"] * 4)) == 4
    for sid in (13, 15):
        answer(core, sid, b"x")
    assert len(read_replies(core.data_to_send(), [b"GET"] * 2)) == 2
    assert core.open_streams == 0


def test_streamed_response_drains_while_pipeline_full() -> None:
    core = H1Core(max_pipeline=1)
    events = core.receive_data(get("/stream") + get("/next"))
    assert [r.stream_id for r in requests(events)] == [1]
    core.send_response(1, 200, [], None, end_stream=False)
    core.send_data(1, b"tick")
    core.data_to_send()
    assert core.next_events() == [StreamDrained(1)]
    core.send_data(1, b"", end_stream=True)
    core.data_to_send()
    assert [r.stream_id for r in requests(core.next_events())] == [3]


def test_default_pipeline_bound_is_16() -> None:
    core = H1Core()
    events = core.receive_data(b"".join(get(f"/{i}") for i in range(20)))
    assert len(requests(events)) == 16
    assert core.open_streams == 20
    assert core.buffered(1) == 0 and core.buffered(99) == 0


# -- misuse by the layer above raises; an exchange dropped under its feet takes late calls --------


def misuse(call: object, *args: object, **kw: object) -> str:
    with pytest.raises(LocalProtocolError) as err:
        call(*args, **kw)  # type: ignore[operator]
    return str(err.value)


def test_calls_on_a_stream_never_received_raise() -> None:
    core = H1Core()
    core.receive_data(GET)
    for sid in (3, 2, 0, -1):
        assert "never opened" in misuse(core.send_response, sid, 200, [], b"x")
        assert "never opened" in misuse(core.send_data, sid, b"x")
        assert "never opened" in misuse(core.send_informational, sid, 103, [])
        assert "never opened" in misuse(core.reset_stream, sid)
        assert "never opened" in misuse(core.push_promise, sid, [])
    answer(core, 1, b"ok")
    assert read_replies(core.data_to_send(), [b"GET"])[0].body == b"ok"


def test_calls_out_of_turn_raise_and_change_nothing() -> None:
    core = H1Core()
    core.receive_data(GET)
    assert "awaits its response" in misuse(core.send_data, 1, b"early")
    assert "invalid field name" in misuse(core.send_response, 1, 200, [(b"X-Upper", b"1")], b"x")
    assert "invalid value" in misuse(core.send_response, 1, 200, [(b"x-split", b"a\r\nset-cookie: b")])
    assert "invalid value" in misuse(core.send_informational, 1, 103, [(b"link", b"</a>\n")])
    assert "not a final status" in misuse(core.send_response, 1, 100, [])
    assert "not an informational" in misuse(core.send_informational, 1, 101, [])
    core.send_response(1, 200, [], None, end_stream=False)
    assert "is sending its body" in misuse(core.send_response, 1, 200, [], b"again")
    assert "is sending its body" in misuse(core.send_informational, 1, 103, [])
    core.send_data(1, b"body", end_stream=True)
    assert "has ended its response" in misuse(core.send_data, 1, b"more")
    (reply,) = read_replies(core.data_to_send(), [b"GET"])
    assert reply.status == 200 and reply.body == b"body"
    assert "has ended its response" in misuse(core.send_response, 1, 200, [], b"late")
    core.reset_stream(1)  # resetting an answered stream is harmless
    assert not core.closing


def test_late_calls_on_a_dropped_exchange_are_dropped() -> None:
    core = H1Core()
    core.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
    assert StreamReset(1, 0x8) in core.receive_data(b"")
    core.send_response(1, 200, [], b"late")
    core.send_data(1, b"late")
    core.send_informational(1, 103, [])
    core.reset_stream(1)
    assert core.data_to_send() == b""


def test_a_large_read_of_pipelined_requests_is_not_parsed_past_the_bound() -> None:
    """httptools parses whatever it is handed: a 256 KiB read of tiny pipelined GETs must not
    become thousands of requests held in memory.  Input is parsed in 4 KiB slices and no further
    once the pipeline is full; the rest waits as bytes and is parsed as answers leave."""
    tiny = b"GET /p HTTP/1.1\r\nHost: l\r\n\r\n"
    count = 256 * 1024 // len(tiny)
    core = H1Core(max_pipeline=16)
    events = core.receive_data(tiny * count)
    assert len(requests(events)) == 16
    assert 16 <= core.open_streams <= 16 + 4096 // len(tiny) + 1, core.open_streams
    answered = 0
    while answered < count:  # every request is still answered, in order, 16 at a time at most
        released = requests(events)
        assert released and len(released) <= 16
        for r in released:
            answer(core, r.stream_id, b"ok")
        answered += len(released)
        read_replies(core.data_to_send(), [b"GET"] * len(released))
        assert core.open_streams <= 16 + 4096 // len(tiny) + 1
        events = core.next_events()
    assert core.open_streams == 0


def test_a_request_body_in_a_large_read_still_arrives_whole() -> None:
    body = bytes(range(256)) * 1024  # 256 KiB, fed in one read with the head and a request after it
    core = H1Core(max_pipeline=16)
    head = b"POST /up HTTP/1.1\r\nHost: l\r\nContent-Length: %d\r\n\r\n" % len(body)
    events = core.receive_data(head + body + get("/after"))
    got = b"".join(e.data for e in events if isinstance(e, BodyReceived))
    assert got == body and [e.end_stream for e in events if isinstance(e, BodyReceived)][-1]
    assert [r.target for r in requests(events)] == [b"/up", b"/after"]
