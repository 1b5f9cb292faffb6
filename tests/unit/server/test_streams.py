"""The Stream a handler is given (server/streams.py over the real cores), on every protocol: the
capabilities it reports, misuse that raises, a handler's exception turned into a 500 or a broken-off
response with one log line, and what becomes of a request body nobody reads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from pushserve.exchange import StatelessApp, Stream
from pushserve.protocol.events import LocalProtocolError
from pushserve.site.static import FileChunks
from tests.support.memory import CUT_OFF, PROTOCOLS, PUSHING, H1Session, capabilities, session


class OneHandler(StatelessApp):
    """An App whose every request goes to ``answer``."""

    def __init__(self, answer: Callable[[Stream], None]) -> None:
        self.answer = answer
        self.seen: list[Stream] = []

    def handle(self, stream: Stream) -> None:
        self.seen.append(stream)
        self.answer(stream)


def text(stream: Stream, body: bytes = b"ok", status: int = 200) -> None:
    stream.respond(status, [(b"content-length", b"%d" % len(body))], body)


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pushserve" and r.levelno == logging.ERROR]


# -- capabilities ----------------------------------------------------------------------------------

# What a handler sees, by protocol: (can_push, can_inform, inform_opt_in, multiplexed, unread_body,
# protocol label, http_version) for a request from a client that takes pushes.
SEEN = {
    "h1": (False, True, True, False, "close", "h1", "1.1"),
    "h2": (True, True, False, True, "reset", "h2", "2"),
    "h3": (True, True, False, True, "reset", "h3", "3"),
}


def facts(stream: Stream) -> tuple[object, ...]:
    return (stream.can_push, stream.can_inform, stream.inform_opt_in, stream.multiplexed, stream.unread_body,
            stream.protocol, stream.http_version)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_capabilities_as_a_handler_sees_them(protocol: str) -> None:
    app = OneHandler(text)
    s = session(protocol, app, enable_push=True)
    assert s.get("/").status == 200
    (stream,) = app.seen
    assert facts(stream) == SEEN[protocol]
    assert not stream.promised and stream.request.target == b"/"
    assert stream.info.peer == "127.0.0.1:50000" and stream.pushed is s.server.pushed


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_that_refuses_push_makes_can_push_false(protocol: str) -> None:
    app = OneHandler(text)
    session(protocol, app, enable_push=False).get("/")
    assert not app.seen[0].can_push


def test_http10_may_get_no_1xx() -> None:
    app = OneHandler(text)
    s = H1Session(app)
    s.send(b"GET / HTTP/1.0\r\n\r\n")
    assert s.replies[1].status == 200
    assert not app.seen[0].can_inform and app.seen[0].http_version == "1.0"


@pytest.mark.parametrize("protocol", PUSHING)
def test_a_pushed_request_goes_to_the_app_and_may_neither_push_nor_inform(protocol: str) -> None:
    def answer(stream: Stream) -> None:
        if stream.request.target == b"/":
            pushed = stream.push(b"/a.css?v=1", [(b"user-agent", b"t/1")], urgency=5)
            assert pushed is not None and pushed.promised
        text(stream, stream.request.target)

    app = OneHandler(answer)
    s = session(protocol, app)
    page = s.get("/")
    assert page.body == b"/"
    pushed = s.pushes_of(page.stream_id)[b"/a.css?v=1"]
    assert pushed.done and pushed.body == b"/a.css?v=1"
    assert dict(pushed.request_headers)[b"user-agent"] == b"t/1"
    promised = app.seen[1]
    assert promised.promised and not promised.can_push and not promised.can_inform
    assert promised.request.method == b"GET" and promised.request.headers == [(b"user-agent", b"t/1")]


# -- misuse and failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_handler_that_raises_before_answering_gets_a_500(protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    def answer(stream: Stream) -> None:
        raise ValueError("handler bug")

    reply = session(protocol, OneHandler(answer)).get("/x")
    assert reply.status == 500 and reply.body == b"internal server error\n" and reply.reset is None
    (record,) = failures(caplog)
    assert "GET /x" in record.getMessage() and "ValueError: handler bug" in record.getMessage()
    assert record.exc_info is not None  # the traceback


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_handler_that_raises_mid_response_breaks_it_off(protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    def answer(stream: Stream) -> None:
        stream.respond(200, [], None, end=False)
        stream.send(b"part")
        stream.flush()  # on its way: the client must still see it broken off
        raise ValueError("handler bug")

    reply = session(protocol, OneHandler(answer)).get("/x")
    assert reply.status == 200 and reply.body == b"part" and reply.reset is not None
    assert len(failures(caplog)) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("misuse", "message"), [
    (lambda s: (text(s, b"one"), text(s, b"two")), "a final response after the response ended"),
    (lambda s: (s.respond(200, [], None, end=False), s.send(b"one", end=True), s.send(b"two")),
     "body after the response ended"),
    (lambda s: (text(s, b"one"), s.push(b"/late.css", [])), "a push after the response ended"),
])
def test_misuse_after_the_response_raises_and_the_response_stands(
        protocol: str, misuse: Callable[[Stream], None], message: str, caplog: pytest.LogCaptureFixture) -> None:
    reply = session(protocol, OneHandler(misuse)).get("/x")
    assert reply.status == 200 and reply.body == b"one" and reply.reset is None
    (record,) = failures(caplog)
    assert record.exc_info is not None and isinstance(record.exc_info[1], LocalProtocolError)
    assert message in str(record.exc_info[1])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_body_before_the_head_raises_and_is_a_500(protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    reply = session(protocol, OneHandler(lambda s: s.send(b"early"))).get("/x")
    assert reply.status == 500
    (record,) = failures(caplog)
    assert "body before the response head" in record.getMessage()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_anything_on_a_reset_stream_raises(protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    def answer(stream: Stream) -> None:
        stream.reset()
        assert stream.closed
        text(stream)

    reply = session(protocol, OneHandler(answer)).get("/x")
    assert reply.reset is not None and not reply.body  # reset, never answered
    (record,) = failures(caplog)
    assert "on a reset stream" in record.getMessage()


def test_a_1xx_where_none_may_go_raises(caplog: pytest.LogCaptureFixture) -> None:
    s = H1Session(OneHandler(lambda stream: stream.inform(103, [(b"link", b"</a.css>; rel=preload")])))
    s.send(b"GET /x HTTP/1.0\r\n\r\n")
    assert s.replies[1].status == 500 and s.replies[1].informational == []
    (record,) = failures(caplog)
    assert "no 1xx may go" in record.getMessage()


# -- a body nobody reads ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("declined", [True, False])
def test_a_body_nobody_reads_is_dropped_as_the_protocol_says(protocol: str, declined: bool) -> None:
    def answer(stream: Stream) -> None:
        text(stream, b"no thanks", 413)
        if declined:
            stream.decline_body()

    s = session(protocol, OneHandler(answer))
    sid = s.request("/upload", "POST", body=b"x" * 1000, end=False)
    reply = s.replies[sid]
    assert reply.status == 413 and reply.body == b"no thanks"
    if capabilities(protocol).unread_body == "close":
        assert s.server.transport.closed  # the connection closes after the response, declined or not
        assert reply.reset is None or reply.reset == CUT_OFF
        return
    # Declined: the client is told to stop sending (NO_ERROR, after the whole response).  Not
    # declined: it may send on; what arrives is acknowledged and dropped.
    assert reply.reset == (0 if declined else None)
    if not declined:
        s.send_body(sid, b"y" * 1000, end=True)
    assert s.get("/").status == 413 and s.server.handlers == {}  # the connection goes on


# -- a file cut short under its response ----------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_file_cut_short_breaks_the_response_off_with_one_log_line(
        protocol: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file that ends before the length its response promised (truncated while sent): the
    client sees the response broken off, never a short body passing for whole, and the log has
    one line naming the file and where it ended; the connection serves on where it can."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 100_000)

    def answer(stream: Stream) -> None:
        if stream.request.target == b"/big.bin":
            stream.respond(200, [(b"content-length", b"200000")], FileChunks(str(path), 0, 200_000))
        else:
            text(stream)

    s = session(protocol, OneHandler(answer))
    reply = s.get("/big.bin")
    assert reply.status == 200 and reply.reset is not None and len(reply.body) <= 100_000
    lines = [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]
    assert len(lines) == 1 and "big.bin ended at byte 100000 of 200000" in lines[0], lines
    if capabilities(protocol).multiplexed:  # the stream only: the connection goes on
        assert s.get("/").status == 200
    else:
        assert s.server.transport.closed
