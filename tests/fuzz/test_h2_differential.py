"""Differential test: pushserve's HTTP/2 core against the ``h2`` library it replaced
(differential.py runs the two).  Hypothesis writes client conversations — mostly well-formed, so
they reach deep states: requests with and without bodies, trailers, resets, window updates,
settings, pings, priorities, now and then a frame out of place or a malformed field — and the
layer above's answers.  Every difference must be one of ``KNOWN`` below: a bug of h2's (with the
RFC 9113 section) or a documented choice of ours (SECURITY.md, "Where pushserve's HTTP/2 differs
from h2").  The short profile runs in CI; ``PUSHSERVE_FUZZ=long`` runs many more examples and
prints how often each disagreement came up."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hpack import Decoder, Encoder
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz.differential import (
    ANSWER,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    HOLD,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PRIORITY_FLAG,
    PRIORITY_UPDATE,
    PROTOCOL_ERROR,
    PUSH,
    PUSH_PROMISE,
    REFUSED_STREAM,
    RESET,
    RST_STREAM,
    SETTINGS,
    START,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    Conversation,
    Frame,
    Step,
    compare,
)
from tests.fuzz.drive import rarely
from tests.fuzz.profile import FUZZ, LONG
from tests.fuzz.test_h2_fuzz import FIELD_POOL, frames

# -- client frames ------------------------------------------------------------------------------


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + sid.to_bytes(4, "big") + payload


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def settings(*pairs: tuple[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(k.to_bytes(2, "big") + u32(v) for k, v in pairs))


def request_fields(method: bytes = b"GET", path: bytes = b"/", extra: list[tuple[bytes, bytes]] | None = None,
                   ) -> list[tuple[bytes, bytes]]:
    return [(b":method", method), (b":scheme", b"https"), (b":authority", b"example.test"), (b":path", path),
            *(extra or [])]


@dataclass
class Client:
    """Builds a conversation frame by frame (one HPACK encoder: a warm table, as real clients)."""

    encoder: Encoder
    frames: list[bytes]
    opened: list[int]
    next_sid: int = 1

    def headers(self, sid: int, fields: list[tuple[bytes, bytes]], *, end: bool, split: int = 0,
                priority: bytes = b"", pad: int = -1) -> None:
        block = self.encoder.encode(fields)
        first, rest = (block[:split], block[split:]) if 0 < split < len(block) else (block, b"")
        flags = (END_STREAM if end else 0) | (0 if rest else END_HEADERS)
        payload = first
        if priority:
            flags |= PRIORITY_FLAG
            payload = priority + payload
        if pad >= 0:
            flags |= PADDED
            payload = bytes([pad]) + payload + b"\0" * pad
        self.frames.append(frame(HEADERS, flags, sid, payload))
        if rest:
            self.frames.append(frame(CONTINUATION, END_HEADERS, sid, rest))


SETTING_VALUES = {0x1: [0, 4096, 100], 0x2: [0, 1, 0, 1, 2], 0x3: [0, 1, 100, 2**31], 0x4: [0, 1, 100, 65535, 2**31],
                  0x5: [16384, 20000, 100, 2**24], 0x6: [100, 65536], 0x8: [0, 1, 2], 0x9: [0, 1, 2], 0xAB: [7]}


@st.composite
def setting_pairs(draw: st.DrawFn) -> list[tuple[int, int]]:
    codes = draw(st.lists(st.sampled_from(sorted(SETTING_VALUES)), max_size=3))
    return [(code, draw(st.sampled_from(SETTING_VALUES[code]))) for code in codes]


@st.composite
def conversations(draw: st.DrawFn) -> Conversation:
    c = Client(Encoder(), [PREFACE], [])
    if rarely(draw, 40):  # the preface must be followed by SETTINGS (§3.4)
        c.frames.append(draw(st.sampled_from([frame(PING, 0, 0, b"12345678"), frame(SETTINGS, 0x1, 0)])))
    else:
        push = draw(st.sampled_from([0, 1]))
        c.frames.append(settings(*draw(setting_pairs())) if rarely(draw, 4) else settings((0x2, push)))
    if not rarely(draw, 8):
        c.frames.append(frame(SETTINGS, 0x1, 0))
    wild = rarely(draw, 5)
    for n in range(draw(st.integers(1, 30))):
        op = 0 if n == 0 else draw(st.integers(0, 22 if wild else 19))
        sid = draw(st.sampled_from(c.opened)) if c.opened else 1
        if op < 6:
            new_request(draw, c)
        elif op < 9:
            body = draw(st.binary(max_size=200))
            flags = END_STREAM if draw(st.booleans()) else 0
            if rarely(draw, 5):
                pad = draw(st.integers(0, 20))
                c.frames.append(frame(DATA, flags | PADDED, sid, bytes([pad]) + body + b"\0" * pad))
            else:
                c.frames.append(frame(DATA, flags, sid, body))
        elif op == 9:  # trailers
            fields = [(b"x-trailer", b"1")] if not rarely(draw, 4) else draw(
                st.lists(st.sampled_from(FIELD_POOL), min_size=1, max_size=2))
            c.headers(sid, fields, end=not rarely(draw, 5))
        elif op == 10:
            c.frames.append(frame(RST_STREAM, 0, sid, u32(draw(st.integers(0, 13)))))
        elif op == 11:
            increment = draw(st.integers(1, 65535)) if not rarely(draw, 6) else draw(st.sampled_from([0, 2**31 - 1]))
            c.frames.append(frame(WINDOW_UPDATE, 0, draw(st.sampled_from([0, sid])), u32(increment)))
        elif op == 12:
            c.frames.append(frame(PING, 0x1 if rarely(draw, 5) else 0, 0, b"differ!!"))
        elif op == 13:
            c.frames.append(frame(SETTINGS, 0x1, 0) if draw(st.booleans()) else settings(*draw(setting_pairs())))
        elif op == 14:
            target = draw(st.sampled_from([sid, c.next_sid, c.next_sid + 4]))
            depends = target if rarely(draw, 6) else draw(st.sampled_from([0, sid]))
            c.frames.append(frame(PRIORITY, 0, target, u32(depends) + bytes([draw(st.integers(0, 255))])))
        elif op == 15:
            body = u32(sid) + draw(st.sampled_from([b"u=0", b"u=7, i", b"u=9", b""]))
            c.frames.append(frame(PRIORITY_UPDATE, 0, 0 if not rarely(draw, 5) else sid, body))
        elif op == 16:  # an unknown frame type, ignored (§5.5)
            c.frames.append(frame(0xFA, 0, draw(st.sampled_from([0, sid, c.next_sid])), b"ext"))
        elif op == 17:  # frames on a stream the client has not opened, or one we may have pushed on
            ftype = draw(st.sampled_from([DATA, RST_STREAM, WINDOW_UPDATE, PRIORITY]))
            target = draw(st.sampled_from([c.next_sid, c.next_sid + 2, 2, 4]))
            c.frames.append(frame(ftype, 0, target, u32(8) + (b"\x10" if ftype == PRIORITY else b"")))
        elif op == 18:  # HEADERS on a stream already used, or a new id below the last
            target = draw(st.sampled_from([sid, max(1, c.next_sid - 4)]))
            c.headers(target, request_fields(), end=True)
        elif op == 19:  # body up to (or past) the 65,535-octet windows
            for _ in range(draw(st.integers(1, 5))):
                c.frames.append(frame(DATA, 0, sid, b"x" * draw(st.sampled_from([16384, 16000, 100]))))
        elif op == 20:
            c.frames.append(draw(frames()))
        elif op == 21:  # a frame too large for the default SETTINGS_MAX_FRAME_SIZE
            c.frames.append(frame(DATA, 0, sid, b"x" * 16385))
        else:
            c.frames.append(frame(GOAWAY, 0, 0, u32(0) + u32(draw(st.integers(0, 2)))))
    answers = draw(st.lists(st.sampled_from([ANSWER, ANSWER, ANSWER, START, START, HOLD, RESET, PUSH]),
                            min_size=1, max_size=6))
    return Conversation(c.frames, answers, draw(st.integers(0, 3)))


def new_request(draw: st.DrawFn, c: Client) -> None:
    sid = c.next_sid
    c.next_sid += 2
    c.opened.append(sid)
    method = draw(st.sampled_from([b"GET", b"GET", b"HEAD", b"POST"]))
    extra: list[tuple[bytes, bytes]] = []
    end = method != b"POST" or draw(st.booleans())
    if method == b"POST" and draw(st.booleans()):  # mostly true to the body that follows
        length = 0 if end and not rarely(draw, 8) else draw(st.integers(0, 10))
        extra.append((b"content-length", b"%d" % length))
    if rarely(draw, 12):
        extra += draw(st.lists(st.sampled_from(FIELD_POOL), min_size=1, max_size=2))
    fields = request_fields(method, draw(st.sampled_from([b"/", b"/a.css", b"/x?y=1"])), extra)
    if rarely(draw, 10):
        fields = draw(st.permutations(fields))
    priority = b""
    if rarely(draw, 6):
        depends = sid if rarely(draw, 8) else 0
        priority = u32(depends) + bytes([draw(st.integers(0, 255))])
    c.headers(sid, fields, end=end,
              split=draw(st.integers(1, 8)) if rarely(draw, 6) else 0, priority=priority,
              pad=draw(st.integers(0, 10)) if rarely(draw, 8) else -1)


# -- what the frames meant, for the explanations ------------------------------------------------


class Shadow:
    """Decodes the client's header blocks in order, as both servers do."""

    def __init__(self) -> None:
        self.decoder = Decoder()
        self.block: bytearray | None = None
        self.broken = False

    def __call__(self, f: Frame) -> list[tuple[bytes, bytes]] | None:
        if f.ftype == HEADERS:
            payload = f.payload
            start, stop = 0, len(payload)
            if f.flags & PADDED:
                if not payload:
                    return None
                start, stop = 1, stop - payload[0]
            if f.flags & PRIORITY_FLAG:
                start += 5
            self.block = bytearray(payload[start:max(start, stop)])
        elif f.ftype == CONTINUATION and self.block is not None:
            self.block += f.payload
        else:
            return None
        if not f.flags & END_HEADERS or self.broken:
            return None
        block, self.block = bytes(self.block), None
        try:
            return [(bytes(k), bytes(v)) for k, v in self.decoder.decode(block, raw=True)]
        except Exception:
            self.broken = True
            return None


# -- the disagreements, each explained ---------------------------------------------------------


@dataclass(frozen=True)
class Known:
    verdict: str  # "h2" (a bug of theirs) or "choice" (ours, documented in SECURITY.md)
    why: str
    matches: Callable[[Step], bool]


def _kinds(step: Step) -> tuple[str, str]:
    return step.ours.kind(step.frame.sid), step.theirs.kind(step.frame.sid)


def _stream_vs_connection(code: int) -> Callable[[Step], bool]:
    """We answer with a stream error ``code`` on the frame's stream, h2 with a connection error
    PROTOCOL_ERROR: where RFC 9113 asks for a stream error."""
    return lambda s: _kinds(s) == (f"stream:{code:#x}", f"error:{PROTOCOL_ERROR:#x}")


def _depends_on_itself(f: Frame) -> bool:
    if f.ftype == PRIORITY:
        return len(f.payload) == 5 and int.from_bytes(f.payload[:4], "big") & 0x7FFFFFFF == f.sid
    if f.ftype == HEADERS and f.flags & PRIORITY_FLAG:
        at = 1 if f.flags & PADDED else 0
        return int.from_bytes(f.payload[at:at + 4], "big") & 0x7FFFFFFF == f.sid
    return False


# What h2 says when it ends a connection over a malformed request (h2/utilities.py, h2/stream.py).
_FIELD_ERRORS = ("header", "Header", "pseudo-header", "content-length", "Trailers", "InvalidBodyLengthError",
                 "response-only")
# Values RFC 9113 §6.5.2 (and RFC 8441, RFC 9218) make an error.
_INVALID: dict[int, Callable[[int], bool]] = {
    0x2: lambda v: v > 1, 0x4: lambda v: v > 2**31 - 1, 0x5: lambda v: not 16384 <= v <= 2**24 - 1,
    0x8: lambda v: v > 1, 0x9: lambda v: v > 1,
}


def _replaced_invalid(f: Frame) -> bool:
    pairs = [(int.from_bytes(f.payload[i:i + 2], "big"), int.from_bytes(f.payload[i + 2:i + 6], "big"))
             for i in range(0, len(f.payload) - 5, 6)]
    for n, (code, value) in enumerate(pairs):
        later = [v for c, v in pairs[n + 1:] if c == code]
        if later and code in _INVALID and _INVALID[code](value) and not _INVALID[code](later[-1]):
            return True
    return False


def _pseudo_after_cookie(fields: list[tuple[bytes, bytes]]) -> bool:
    regular = [n for n, _ in fields if not n.startswith(b":")]
    first_regular = next((i for i, (n, _) in enumerate(fields) if not n.startswith(b":")), len(fields))
    late_pseudo = any(n.startswith(b":") for n, _ in fields[first_regular:])
    return late_pseudo and set(regular) == {b"cookie"}


def _setting(f: Frame, code: int) -> int | None:
    """The last value ``f`` (a SETTINGS frame) gives setting ``code``, if any."""
    value = None
    for i in range(0, len(f.payload) - 5, 6):
        if int.from_bytes(f.payload[i:i + 2], "big") == code:
            value = int.from_bytes(f.payload[i + 2:i + 6], "big")
    return value


KNOWN: dict[str, Known] = {
    "malformed request": Known(
        "h2", "§8.1.1: a malformed request (fields, pseudo-header fields, content-length, trailers) is a stream "
        "error PROTOCOL_ERROR; h2 ends the connection",
        lambda s: s.frame.ftype in (HEADERS, CONTINUATION, DATA) and _stream_vs_connection(PROTOCOL_ERROR)(s)
        and any(word in s.theirs.detail for word in _FIELD_ERRORS)),
    "window update of 0": Known(
        "h2", "§6.9: a stream WINDOW_UPDATE of 0 is a stream error PROTOCOL_ERROR; h2 ends the connection",
        lambda s: s.frame.ftype == WINDOW_UPDATE and s.frame.sid > 0 and s.frame.payload == u32(0)
        and _kinds(s)[1] == f"error:{PROTOCOL_ERROR:#x}" and _kinds(s)[0] in (f"stream:{PROTOCOL_ERROR:#x}", "ok")),
    "self-dependency": Known(
        "h2", "§5.3.1: a stream depending on itself is a stream error PROTOCOL_ERROR (none after our "
        "RST_STREAM, §5.1); h2 ends the connection",
        lambda s: s.frame.ftype in (PRIORITY, HEADERS, CONTINUATION)
        and (_depends_on_itself(s.frame) or "depend on itself" in s.theirs.detail)
        and _kinds(s)[1] == f"error:{PROTOCOL_ERROR:#x}"
        and (_kinds(s)[0] == f"stream:{PROTOCOL_ERROR:#x}" or s.before == "closed (reset by us)")),
    "content-length and a request ending in HEADERS": Known(
        "h2", "§8.1.1: a request whose DATA do not add up to its content-length is malformed, a stream error "
        "PROTOCOL_ERROR, also when it ends with its HEADERS or with trailers; h2 checks only a request ending "
        "in DATA",
        lambda s: s.frame.ftype in (HEADERS, CONTINUATION) and s.declared is not None
        and _kinds(s) == (f"stream:{PROTOCOL_ERROR:#x}", "ok")),
    "pseudo-header field after a cookie": Known(
        "h2", "§8.3: pseudo-header fields come before all regular fields, else the request is malformed; h2 moves "
        "cookie fields to the end before it checks the order, so it takes :method after a cookie",
        lambda s: s.fields is not None and _pseudo_after_cookie(s.fields)
        and _kinds(s) == (f"stream:{PROTOCOL_ERROR:#x}", "ok")),
    "RST_STREAM on an idle stream": Known(
        "h2", "§6.4: RST_STREAM on an idle stream is a connection error PROTOCOL_ERROR; h2 ignores it",
        lambda s: s.frame.ftype == RST_STREAM and s.before == "idle"
        and _kinds(s) == (f"error:{PROTOCOL_ERROR:#x}", "ok")),
    "a setting replaced in the same frame": Known(
        "h2", "§6.5: settings are processed in the order they appear, so an invalid value is an error even if a "
        "later one in the frame replaces it (§6.5.2); h2 (hyperframe) keeps only the last value of each",
        lambda s: s.frame.ftype == SETTINGS and _replaced_invalid(s.frame)
        and s.ours.terminated is not None and s.ours.terminated != s.theirs.terminated),
    "a frame over the maximum size": Known(
        "h2", "§4.2: a frame over SETTINGS_MAX_FRAME_SIZE is refused once its header is in; h2 first buffers "
        "the whole frame (up to 16 MiB), then refuses it",
        lambda s: s.ours.terminated == ("error", FRAME_SIZE_ERROR) and "-byte frame over" in s.ours.detail
        and s.theirs.terminated is None),
    "HPACK decoding error": Known(
        "h2", "§4.3: a field block that cannot be decoded is a connection error COMPRESSION_ERROR; h2 says "
        "PROTOCOL_ERROR",
        lambda s: _kinds(s) == (f"error:{COMPRESSION_ERROR:#x}", f"error:{PROTOCOL_ERROR:#x}")
        and "decoding header block" in s.theirs.detail),
    "a frame header wrong twice over": Known(
        "choice", "a frame header both longer than the maximum and wrong for its type (bytes out of step): "
        "we name the size (FRAME_SIZE_ERROR, §4.2, checked first so nothing is buffered), h2 the type "
        "(PROTOCOL_ERROR); both end the connection",
        lambda s: s.ours.terminated == ("error", FRAME_SIZE_ERROR) and "-byte frame over" in s.ours.detail
        and s.theirs.terminated == ("error", PROTOCOL_ERROR) and "invalid header" in s.theirs.detail),
    "PUSH_PROMISE from a client": Known(
        "choice", "§8.4: a PUSH_PROMISE from a client is a connection error PROTOCOL_ERROR, whatever it holds; "
        "h2 parses it first and names a payload too short for the frame (FRAME_SIZE_ERROR, §4.2); both end "
        "the connection",
        lambda s: s.frame.ftype == PUSH_PROMISE and s.ours.terminated == ("error", PROTOCOL_ERROR)
        and "PUSH_PROMISE from a client" in s.ours.detail
        and s.theirs.terminated is not None and s.theirs.terminated[0] == "error"),
    "CONTINUATION without a header block": Known(
        "h2", "§6.10: a CONTINUATION that follows no HEADERS without END_HEADERS is a connection error "
        "PROTOCOL_ERROR, whatever its stream; h2 takes one on a reset stream for a frame on that stream",
        lambda s: s.frame.ftype == CONTINUATION and s.ours.terminated == ("error", PROTOCOL_ERROR)
        and "CONTINUATION without" in s.ours.detail and s.theirs.terminated is None),
    "ALTSVC from a client": Known(
        "h2", "RFC 7838 §4: a server MUST ignore ALTSVC frames (type 0xa); h2 parses them and ends the connection "
        "over a malformed one (FRAME_SIZE_ERROR)",
        lambda s: s.frame.ftype == 0xA and _kinds(s)[0] == "ok" and s.theirs.terminated is not None),
    "DATA on a promised stream": Known(
        "choice", "DATA on a stream we promised and have not answered yet: §5.1 (reserved (local)) makes it a "
        "connection error PROTOCOL_ERROR, §6.1 a stream error STREAM_CLOSED; we follow the state's rule, h2 §6.1",
        lambda s: s.frame.ftype == DATA and s.before == "reserved (local)"
        and _kinds(s) == (f"error:{PROTOCOL_ERROR:#x}", f"stream:{STREAM_CLOSED:#x}")),
    "RFC 9218 setting": Known(
        "choice", "RFC 9218 §2.1: SETTINGS_NO_RFC7540_PRIORITIES other than 0 or 1 is a connection error "
        "PROTOCOL_ERROR; h2 does not know the setting and ignores it",
        lambda s: s.frame.ftype == SETTINGS and _setting(s.frame, 0x9) not in (None, 0, 1)
        and s.ours.terminated == ("error", PROTOCOL_ERROR) and "setting 0x9" in s.ours.detail
        and s.theirs.terminated != s.ours.terminated),
    "body nobody reads": Known(
        "choice", "flow control (§6.9): body no one will read (its stream reset, or its response already "
        "complete) gives its window back at once; h2 waits for the application to acknowledge it, so a client "
        "that keeps sending overruns h2's connection window first",
        lambda s: s.frame.ftype == DATA and s.data_total > 65535
        and f"{FLOW_CONTROL_ERROR:#x}" in "".join(_kinds(s)) and _kinds(s)[0] != _kinds(s)[1]),
    "frames after our reset": Known(
        "h2", "§5.1 closed: frames on a stream after we sent RST_STREAM MUST be ignored; h2 answers "
        "RST_STREAM STREAM_CLOSED",
        lambda s: s.before == "closed (reset by us)" and _kinds(s) == ("ok", f"stream:{STREAM_CLOSED:#x}")),
    "too many streams": Known(
        "h2", "§5.1.2: a stream over SETTINGS_MAX_CONCURRENT_STREAMS is a stream error (we refuse it "
        "with REFUSED_STREAM: the client may retry); h2 ends the connection",
        lambda s: s.frame.ftype == HEADERS and _kinds(s) == (f"stream:{REFUSED_STREAM:#x}",
                                                             f"error:{PROTOCOL_ERROR:#x}")),
    "preface without SETTINGS": Known(
        "h2", "§3.4: the client preface is followed by a SETTINGS frame, else a connection error PROTOCOL_ERROR; "
        "h2 takes any frame",
        lambda s: s.index == 1 and not (s.frame.ftype == SETTINGS and not s.frame.flags & 0x1)
        and _kinds(s) == (f"error:{PROTOCOL_ERROR:#x}", "ok")),
    "SETTINGS ACK with a payload": Known(
        "h2", "§6.5: a SETTINGS ACK with a payload is a connection error FRAME_SIZE_ERROR; h2 says PROTOCOL_ERROR",
        lambda s: s.frame.ftype == SETTINGS and s.frame.flags & 0x1 == 0x1 and bool(s.frame.payload)
        and _kinds(s) == (f"error:{FRAME_SIZE_ERROR:#x}", f"error:{PROTOCOL_ERROR:#x}")),
    "PRIORITY_UPDATE": Known(
        "choice", "RFC 9218 §7: PRIORITY_UPDATE is checked (a connection error on a stream other than 0, or "
        "too short); h2 does not know the frame and ignores it",
        lambda s: s.frame.ftype == PRIORITY_UPDATE and s.theirs.terminated is None
        and s.ours.terminated is not None and s.ours.terminated[0] == "error"),
    "flood budgets": Known(
        "choice", "flood budgets (SECURITY.md): ENHANCE_YOUR_CALM where h2 has no limit",
        lambda s: s.ours.terminated == ("error", ENHANCE_YOUR_CALM) and s.theirs.terminated is None),
}


def explain(step: Step) -> str | None:
    for name, known in KNOWN.items():
        if known.matches(step):
            return name
    return None


# -- the tests ---------------------------------------------------------------------------------

SEEN: Counter[str] = Counter()


@FUZZ
@given(conv=conversations())
def test_pushserve_and_h2_agree_or_the_difference_is_known(conv: Conversation) -> None:
    steps = compare(conv, Shadow())
    if not steps:
        event("agree")
    for step in steps:
        name = explain(step)
        assert name is not None, f"an unexplained disagreement ({', '.join(step.differs())}) {step.report()}"
        SEEN[name] += 1
        event(f"disagree: {name}")


@pytest.fixture(scope="module", autouse=True)
def _tally() -> object:
    yield
    if LONG and SEEN:
        print("\ndisagreements with h2 (explained):")
        for name, count in SEEN.most_common():
            print(f"  {count:6}  {name}: {KNOWN[name].verdict}: {KNOWN[name].why}")


# -- each known disagreement, shown by the smallest conversation that has it -----------------------


def _conversation(build: Callable[[Client], None], answers: list[int] | None = None) -> Conversation:
    c = Client(Encoder(), [PREFACE, settings((0x2, 0)), frame(SETTINGS, 0x1, 0)], [])
    build(c)
    return Conversation(c.frames, answers or [ANSWER])


def _post(c: Client, sid: int = 1, extra: list[tuple[bytes, bytes]] | None = None, *, end: bool = False) -> None:
    c.headers(sid, request_fields(b"POST", b"/up", extra), end=end)


EXAMPLES: dict[str, tuple[Callable[[Client], None], list[int]]] = {
    "malformed request": (lambda c: c.headers(1, request_fields(extra=[(b"X-Upper", b"1")]), end=True), []),
    "window update of 0": (lambda c: (_post(c), c.frames.append(frame(WINDOW_UPDATE, 0, 1, u32(0)))), [HOLD]),
    "self-dependency": (lambda c: (_post(c), c.frames.append(frame(PRIORITY, 0, 1, u32(1) + b"\x10"))), [HOLD]),
    "content-length and a request ending in HEADERS": (lambda c: _post(c, extra=[(b"content-length", b"3")],
                                                                       end=True), []),
    "pseudo-header field after a cookie": (
        lambda c: c.headers(1, [(b"cookie", b"a=1"), *request_fields()], end=True), []),
    "frames after our reset": (lambda c: (_post(c), c.frames.append(frame(DATA, 0, 1, b"crossed"))), [RESET]),
    "too many streams": (lambda c: [_post(c, sid) for sid in range(1, 203, 2)], [HOLD]),
    "preface without SETTINGS": (lambda c: c.frames.__setitem__(slice(1, None), [frame(PING, 0, 0, b"12345678")]),
                                 []),
    "SETTINGS ACK with a payload": (lambda c: c.frames.append(frame(SETTINGS, 0x1, 0, u32(0) + b"\0\0")), []),
    "PRIORITY_UPDATE": (lambda c: (_post(c), c.frames.append(frame(PRIORITY_UPDATE, 0, 1, u32(1) + b"u=0"))),
                        [HOLD]),
    "flood budgets": (lambda c: c.frames.extend([frame(PING, 0, 0, b"12345678")] * 1100), []),
    "RST_STREAM on an idle stream": (lambda c: (c.headers(1, request_fields(), end=True),
                                                c.frames.append(frame(RST_STREAM, 0, 5, u32(8)))), []),
    "a setting replaced in the same frame": (lambda c: c.frames.append(settings((0x5, 100), (0x5, 20000))), []),
    "a frame over the maximum size": (lambda c: c.frames.append(frame(DATA, 0, 1, b"")[:-0 or None].replace(
        b"\x00\x00\x00", (20000).to_bytes(3, "big"), 1)), []),
    "HPACK decoding error": (lambda c: c.frames.append(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x80")), []),
    "a frame header wrong twice over": (lambda c: c.frames.append(
        (20000).to_bytes(3, "big") + bytes((GOAWAY, 0)) + u32(1)), []),
    "RFC 9218 setting": (lambda c: c.frames.append(settings((0x9, 2))), []),
    "body nobody reads": (lambda c: (_post(c), c.frames.extend([frame(DATA, 0, 1, b"x" * 16000)] * 5)), []),
    "CONTINUATION without a header block": (
        lambda c: (c.headers(1, request_fields(), end=True), c.headers(3, request_fields(), end=True),
                   c.frames.append(frame(CONTINUATION, END_HEADERS, 1, b""))), [RESET]),
    "PUSH_PROMISE from a client": (lambda c: c.frames.append(frame(PUSH_PROMISE, 0, 1, b"")), []),
    "ALTSVC from a client": (lambda c: c.frames.append(frame(0xA, 0, 0, b"\x39\x8e" + b"x" * 5)), []),
    "DATA on a promised stream": (lambda c: (c.frames.__setitem__(1, settings((0x2, 1))),
                                             c.headers(1, request_fields(), end=True),
                                             c.frames.append(frame(DATA, 0, 2, b"push"))), [PUSH]),
}


def test_every_known_disagreement_has_an_example() -> None:
    assert set(EXAMPLES) == set(KNOWN)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_known_disagreement(name: str) -> None:
    """The smallest conversation that shows each disagreement: both servers still behave as
    KNOWN says (so an h2 upgrade that fixes one, or a change of ours, shows here)."""
    build, answers = EXAMPLES[name]
    steps = compare(_conversation(build, answers), Shadow())
    assert steps, f"{name}: pushserve and h2 agree now"
    assert [explain(s) for s in steps] == [name] * len(steps), "\n".join(s.report() for s in steps)
