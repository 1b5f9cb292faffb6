"""Fuzz the HTTP/1.1 core: random bytes, and well-formed requests mutated at random, fed in
random pieces.  The core must never raise, its events must make sense (tests/fuzz/checks.py),
``data_to_send`` must always give bytes, nothing new may follow a ConnectionTerminated, and after
an error or the end of input the connection must come to ``closing`` once its answers are out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pushserve.protocol.h1 import H1Core
from tests.fuzz.drive import ACTIONS, Driver, split
from tests.fuzz.profile import FUZZ

METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS", b"CONNECT", b"PRI", b"DELETE", b"G\x00T", b""]
TARGETS = [b"/", b"/a/b.css?x=1", b"*", b"http://example.test/x", b"https://u@h/", b"http://", b"https://h",
           b"/%2e%2e/", b"//", b"/\xff", b"/a b", b"example.test:443"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.1x", b"", b"http/1.1"]
HEADER_POOL = [
    (b"Host", b"example.test"), (b"Host", b""), (b"Host", b"other"),
    (b"Content-Length", b"5"), (b"Content-Length", b"0"), (b"Content-Length", b"-1"),
    (b"Content-Length", b"99999999999999999999"), (b"Content-Length", b"5, 5"), (b"Content-Length", b" 3"),
    (b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"gzip"), (b"Transfer-Encoding", b"chunked, chunked"),
    (b"Transfer-Encoding", b"gzip, chunked"), (b"Expect", b"100-continue"), (b"Expect", b"nothing"),
    (b"Connection", b"close"), (b"Connection", b"keep-alive"), (b"Connection", b"Upgrade"),
    (b"Upgrade", b"h2c"), (b"Upgrade", b"websocket"), (b"HTTP2-Settings", b"AAMAAABkAAQAAP__"),
    (b"X-Long", b"v" * 300), (b" Host", b"x"), (b"Host ", b"x"), (b"Bad\x01Name", b"v"), (b"V", b"a\x00b"),
]


def _chunked(pieces: list[bytes], trailer: bool, bad_size: bool) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(p) + (7 if bad_size else 0), p) for p in pieces if p)
    return out + b"0\r\n" + (b"X-Trailer: 1\r\n" if trailer else b"") + b"\r\n"


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(METHODS) | st.binary(max_size=8))
    target = draw(st.sampled_from(TARGETS) | st.binary(min_size=1, max_size=40))
    version = draw(st.sampled_from(VERSIONS))
    headers = draw(st.lists(st.sampled_from(HEADER_POOL)
                            | st.tuples(st.binary(min_size=1, max_size=12), st.binary(max_size=30)), max_size=8))
    line_end = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r"]))
    head = method + b" " + target + b" " + version + line_end
    head += b"".join(n + b": " + v + line_end for n, v in headers) + line_end
    chunked = any(n.lower() == b"transfer-encoding" for n, _ in headers)
    if chunked:
        pieces = draw(st.lists(st.binary(max_size=40), max_size=4))
        body = _chunked(pieces, draw(st.booleans()), draw(st.booleans()))
    else:
        body = draw(st.binary(max_size=40))
    return head + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """One to four requests back to back (pipelined), then a few byte-level mutations."""
    data = bytearray(b"".join(draw(st.lists(requests(), min_size=1, max_size=4))))
    for op, at, byte in draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255)),
                                      max_size=4)):
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


cores = st.builds(H1Core, max_request_line=st.sampled_from([8192, 64, 20]),
                  max_header_bytes=st.sampled_from([65536, 100]), max_headers=st.sampled_from([100, 3]),
                  max_pipeline=st.sampled_from([16, 2, 1]))
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
