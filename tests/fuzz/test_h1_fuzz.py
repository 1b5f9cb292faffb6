"""Fuzz the HTTP/1.1 core: random bytes, and well-formed requests mutated at random, fed in
random pieces.  The core must never raise, its events must make sense (tests/fuzz/checks.py),
``data_to_send`` must always give bytes, nothing new may follow a ConnectionTerminated, and after
an error or the end of input the connection must come to ``closing`` once its answers are out."""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from pushserve.protocol.h1 import H1Core
from tests.fuzz.drive import ACTIONS, Driver, rarely, split
from tests.fuzz.profile import FUZZ

METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS", b"DELETE"]
ODD_METHODS = [b"CONNECT", b"PRI", b"G\x00T", b"", b"get"]
TARGETS = [b"/", b"/a/b.css?x=1", b"/%2e%2e/", b"//", b"http://example.test/x", b"/a%20b", b"/?"]
ODD_TARGETS = [b"*", b"https://u@h/", b"http://", b"https://h", b"/\xff", b"/a b", b"example.test:443"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]
ODD_VERSIONS = [b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.1x", b"", b"http/1.1"]
HEADERS = [
    (b"Accept", b"*/*"), (b"Connection", b"close"), (b"Connection", b"keep-alive"), (b"Expect", b"100-continue"),
    (b"Upgrade", b"h2c"), (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"X-Long", b"v" * 300),
    (b"Cookie", b"a=1"), (b"Range", b"bytes=0-1"),
]
ODD_HEADERS = [
    (b"Host", b""), (b"Host", b"other"), (b"Content-Length", b"-1"), (b"Content-Length", b"99999999999999999999"),
    (b"Content-Length", b"5, 5"), (b"Content-Length", b" 3"), (b"Transfer-Encoding", b"gzip"),
    (b"Transfer-Encoding", b"chunked, chunked"), (b"Transfer-Encoding", b"gzip, chunked"), (b"Expect", b"nothing"),
    (b" Host", b"x"), (b"Host ", b"x"), (b"Bad\x01Name", b"v"), (b"V", b"a\x00b"), (b"Content-Length", b"3"),
    (b"Transfer-Encoding", b"chunked"),
]


def _chunked(pieces: list[bytes], trailer: bool, bad_size: bool) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(p) + (7 if bad_size else 0), p) for p in pieces if p)
    return out + b"0\r\n" + (b"X-Trailer: 1\r\n" if trailer else b"") + b"\r\n"


def _pick(draw: st.DrawFn, usual: list[bytes], odd: list[bytes], wild: bool) -> bytes:
    if wild and rarely(draw, 3):
        return draw(st.sampled_from(odd) | st.binary(max_size=12))
    return draw(st.sampled_from(usual))


@st.composite
def requests(draw: st.DrawFn, wild: bool) -> bytes:
    """A well-formed request (Host, a body framed by Content-Length or chunked); when ``wild``,
    now and then an odd method, target, version, header, line ending or body framing."""
    method = _pick(draw, METHODS, ODD_METHODS, wild)
    target = _pick(draw, TARGETS, ODD_TARGETS, wild)
    version = _pick(draw, VERSIONS, ODD_VERSIONS, wild)
    headers = [] if wild and rarely(draw, 4) else [(b"Host", b"example.test")]
    headers += draw(st.lists(st.sampled_from(HEADERS), max_size=3))
    if wild and rarely(draw, 2):
        headers += draw(st.lists(st.sampled_from(ODD_HEADERS)
                                 | st.tuples(st.binary(min_size=1, max_size=12), st.binary(max_size=30)),
                                 min_size=1, max_size=3))
    body = b""
    if method in (b"POST", b"PUT") and draw(st.booleans()):
        if draw(st.booleans()):
            pieces = draw(st.lists(st.binary(max_size=40), max_size=4))
            headers.append((b"Transfer-Encoding", b"chunked"))
            body = _chunked(pieces, draw(st.booleans()), wild and rarely(draw, 3))
        else:
            body = draw(st.binary(max_size=40))
            headers.append((b"Content-Length", b"%d" % (len(body) + (3 if wild and rarely(draw, 3) else 0))))
    headers = draw(st.permutations(headers))
    line_end = draw(st.sampled_from([b"\r\n", b"\n", b"\r"])) if wild and rarely(draw, 3) else b"\r\n"
    head = method + b" " + target + b" " + version + line_end
    head += b"".join(n + b": " + v + line_end for n, v in headers) + line_end
    return head + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """One to four requests back to back (pipelined); in about half the examples, odd requests
    and a few byte-level mutations (one broken request is enough to end a connection, so most
    examples keep to well-formed ones and reach the states after them)."""
    wild = draw(st.booleans())
    data = bytearray(b"".join(draw(st.lists(requests(wild), min_size=1, max_size=4))))
    edits = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)
    for op, at, byte in draw(edits) if wild and rarely(draw, 3) else []:
        if not data:
            break
        i = at % len(data)
        if op == 0:
            data[i] = byte
        elif op == 1:
            data.insert(i, byte)
        else:
            del data[i]
    return bytes(data)


default_core = st.builds(H1Core, max_pipeline=st.sampled_from([16, 2, 1]))
small_core = st.builds(H1Core, max_request_line=st.sampled_from([8192, 64, 20]),
                       max_header_bytes=st.sampled_from([65536, 100]), max_headers=st.sampled_from([100, 3]),
                       max_pipeline=st.sampled_from([16, 2, 1]))
cores = st.one_of(default_core, default_core, small_core)
actions = st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=6)
cuts = st.lists(st.integers(0, 10**6), max_size=12)


def run(core: H1Core, data: bytes, cut: list[int], answer: list[int], eof: bool, limit: int) -> None:
    drive = Driver(core, answer, limit=limit)
    for piece in split(data, cut):
        drive.receive(piece)
        if drive.check.terminated is not None:
            drive.receive(piece)  # more input after an error changes nothing
    if eof:
        drive.receive(b"")
    drive.settle()
    ended = drive.check.terminated
    event(f"ended {ended.error_code}" if ended is not None else "still open")  # what the input reached
    if ended is not None and (eof or ended.error_code):
        assert core.closing, f"not closing after {ended}"
    if core.closing:
        assert drive.check.body_open <= drive.check.reset, "a body left open on a closing connection"
    if drive.written:
        assert drive.written.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), drive.written[:40]


@FUZZ
@given(core=cores, data=mutated(), cut=cuts, answer=actions, eof=st.booleans(),
       limit=st.sampled_from([4096, 10, 1]))
def test_mutated_requests(core: H1Core, data: bytes, cut: list[int], answer: list[int], eof: bool,
                          limit: int) -> None:
    run(core, data, cut, answer, eof, limit)


@FUZZ
@given(core=cores, data=st.binary(max_size=600), cut=cuts, answer=actions, eof=st.booleans())
def test_random_bytes(core: H1Core, data: bytes, cut: list[int], answer: list[int], eof: bool) -> None:
    run(core, data, cut, answer, eof, 4096)
