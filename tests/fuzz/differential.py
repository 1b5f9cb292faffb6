"""Two HTTP/2 servers fed the same client frames: pushserve's core and the ``h2`` library's
``H2Connection`` (server side) that it replaced.  The frames go in one per read, so what each
server does can be laid at the door of the frame just fed; after each, both answer the requests
the same way (the layer above's actions are part of the input), and what they did is reduced to
the same shape and compared:

* the events surfaced (requests with their fields, body, ends, the peer's resets);
* the errors: the connection error (its code, or the peer's GOAWAY), the stream errors (the
  RST_STREAM frames each sent, and their codes);
* the ACKs each sent for PING and SETTINGS;
* the RFC 9113 §5.1 state of every stream the client named.

The first difference ends the comparison (after it, the two are in different worlds), and is
explained by ``explain``: each known disagreement is a bug of theirs (with the RFC section), or
a documented choice of ours (SECURITY.md lists them).  One that nothing explains is a finding.

Both servers are set up alike: windows of 65,535 (h2's default; no acknowledgement of body, so
neither gives window back), at most 100 concurrent streams (h2's default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events as h2e
import h2.exceptions
from h2.stream import StreamState

from pushserve.protocol.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    RequestReceived,
    StreamReset,
)
from pushserve.protocol.h2 import H2Core

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
PRIORITY_UPDATE = 0x10
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR = 0x1, 0x3, 0x5, 0x6
REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x7, 0x8, 0x9, 0xB
MAX_STREAMS = 100

# The layer above's answer to a request, drawn by the test per request: respond and end / respond
# and end later / nothing / RST_STREAM CANCEL / promise a push (answered later), then respond.
ANSWER, START, HOLD, RESET, PUSH = range(5)
PUSHED_REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.test"),
                  (b":path", b"/pushed.css")]

_H2_STATES = {StreamState.IDLE: "idle", StreamState.RESERVED_LOCAL: "reserved (local)", StreamState.OPEN: "open",
              StreamState.HALF_CLOSED_LOCAL: "half-closed (local)",
              StreamState.HALF_CLOSED_REMOTE: "half-closed (remote)", StreamState.CLOSED: "closed"}


@dataclass(frozen=True)
class Frame:
    """A client frame as sent: its header fields and payload (``raw`` for unparseable bytes)."""

    ftype: int
    flags: int
    sid: int
    payload: bytes
    raw: bytes

    @staticmethod
    def parse(data: bytes) -> Frame:
        if len(data) < 9 or data.startswith(PREFACE[:9]):
            return Frame(-1, 0, 0, b"", data)
        return Frame(data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF, data[9:], data)

    def describe(self) -> str:
        names = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
                 "WINDOW_UPDATE", "CONTINUATION"]
        name = names[self.ftype] if 0 <= self.ftype < len(names) else f"type {self.ftype:#x}"
        return f"{name}(flags={self.flags:#x}, stream={self.sid}, {len(self.payload)} octets)"


@dataclass
class Outcome:
    """What one server did with one frame, in a shape both reduce to."""

    events: list[tuple[object, ...]] = field(default_factory=list)
    stream_errors: set[tuple[int, int]] = field(default_factory=set)  # RST_STREAM (sid, code) it sent
    terminated: tuple[str, int] | None = None  # ("error", code) or ("peer", code): the connection's end
    acks: tuple[int, int] = (0, 0)  # PING ACKs, SETTINGS ACKs sent
    states: dict[int, str] = field(default_factory=dict)
    crashed: str = ""  # an exception other than a protocol error
    detail: str = ""  # why it ended the connection, as it says

    def kind(self, sid: int) -> str:
        """The frame's effect on stream ``sid``, as one word: conn:CODE, stream:CODE or ok."""
        if self.terminated is not None:
            return f"{self.terminated[0]}:{self.terminated[1]:#x}"
        codes = sorted(code for s, code in self.stream_errors if s == sid)
        return f"stream:{codes[0]:#x}" if codes else "ok"


@dataclass
class Step:
    index: int  # of the frame in the conversation (the preface is 0)
    frame: Frame
    before: str  # our state of the frame's stream before it (or "connection")
    ours: Outcome
    theirs: Outcome
    fields: list[tuple[bytes, bytes]] | None  # the header list a HEADERS/CONTINUATION block carried
    declared: bytes | None = None  # the content-length the stream's request declared, if any
    data_total: int = 0  # flow-controlled octets of DATA the client sent so far, this frame's included

    def differs(self) -> list[str]:
        """What differs, as short labels; [] if nothing."""
        o, t = self.ours, self.theirs
        if o.crashed or t.crashed:
            return ["crash"]
        if o.terminated != t.terminated:
            return ["termination"]
        if o.terminated is not None:
            return []  # both ended the same way: what else they said on the way out does not count
        out = []
        if o.events != t.events:
            out.append("events")
        if o.stream_errors != t.stream_errors:
            out.append("stream errors")
        if o.acks != t.acks:
            out.append("acks")
        if o.states != t.states:
            out.append("states")
        return out

    def report(self) -> str:
        return (f"after frame {self.index}, {self.frame.describe()} on a stream {self.before!r} "
                f"(fields {self.fields!r}):\n  ours:   {self.ours}\n  theirs: {self.theirs}")


# -- the two servers ------------------------------------------------------------------------------


def _frames_of(data: bytes) -> list[tuple[int, int, int, bytes]]:
    out, i = [], 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        out.append((data[i + 3], data[i + 4], int.from_bytes(data[i + 5:i + 9], "big") & 0x7FFFFFFF,
                    data[i + 9:i + 9 + n]))
        i += 9 + n
    return out


def _output(data: bytes, outcome: Outcome, ignore_resets: set[int]) -> int | None:
    """Stream errors and ACKs from a server's output; the code of a GOAWAY it sent, if any."""
    pings = settings = 0
    goaway = None
    for ftype, flags, sid, payload in _frames_of(data):
        if ftype == RST_STREAM and sid not in ignore_resets:
            outcome.stream_errors.add((sid, int.from_bytes(payload[:4], "big")))
        elif ftype == PING and flags & ACK:
            pings += 1
        elif ftype == SETTINGS and flags & ACK:
            settings += 1
        elif ftype == GOAWAY:
            goaway = int.from_bytes(payload[4:8], "big")
    outcome.acks = (pings, settings)
    return goaway


class Ours:
    def __init__(self) -> None:
        self.core = H2Core(max_concurrent_streams=MAX_STREAMS, initial_window_size=65535)
        self.core.initiate()
        self.core.data_to_send()

    def feed(self, data: bytes, outcome: Outcome) -> list[int]:
        """Events into ``outcome``; returns the requests surfaced."""
        core = self.core
        events = core.receive_data(data)
        while core.pending_input:
            events += core.resume()
        return _reduce_ours(events, outcome)

    def answer(self, sid: int, action: int) -> int | None:
        """Answer a request; the promised stream id, for PUSH."""
        promised = None
        if action == PUSH:
            promised = self.core.push_promise(sid, PUSHED_REQUEST)
        if action in (ANSWER, PUSH):
            self.core.send_response(sid, 200, [(b"content-length", b"0")], None)
        elif action == START:
            self.core.send_response(sid, 200, [], None, end_stream=False)
        elif action == RESET:
            self.core.reset_stream(sid, CANCEL)
        return promised

    def finish(self, sid: int) -> None:
        if sid % 2:
            self.core.send_data(sid, b"", end_stream=True)
        else:  # a promised stream: its response
            self.core.send_response(sid, 200, [(b"content-length", b"0")], None)

    def output(self, outcome: Outcome, ignore_resets: set[int]) -> None:
        goaway = _output(self.core.data_to_send(), outcome, ignore_resets)
        if outcome.terminated is not None and outcome.terminated[0] == "error" and goaway is None:
            outcome.terminated = ("peer", outcome.terminated[1])  # a GOAWAY of the peer, or its EOF
        # Our StreamReset for a stream we reset ourselves (a stream error) tells the layer above to
        # stop; h2 has no such event.  The RST_STREAM frame is what both are compared on.
        outcome.events = [e for e in outcome.events if not (e[0] == "reset" and e[1:] in outcome.stream_errors)]

    def state(self, sid: int) -> str:
        name = self.core.stream_state(sid)
        return "closed" if name.startswith("closed") else name


def _reduce_ours(events: list[Event], outcome: Outcome) -> list[int]:
    surfaced = []
    for ev in events:
        if isinstance(ev, RequestReceived):
            surfaced.append(ev.stream_id)
            outcome.events.append(("request", ev.stream_id, ev.method, ev.target, ev.authority, tuple(ev.headers)))
            if ev.end_stream:
                outcome.events.append(("end", ev.stream_id))
        elif isinstance(ev, BodyReceived):
            if ev.data:
                outcome.events.append(("data", ev.stream_id, ev.data))
            if ev.end_stream:
                outcome.events.append(("end", ev.stream_id))
        elif isinstance(ev, StreamReset):
            outcome.events.append(("reset", ev.stream_id, int(ev.error_code)))
        elif isinstance(ev, ConnectionTerminated):
            outcome.terminated = ("error", int(ev.error_code))
            outcome.detail = ev.reason
    return surfaced


class Theirs:
    def __init__(self) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.conn.data_to_send()

    def feed(self, data: bytes, outcome: Outcome) -> list[int]:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as err:
            outcome.terminated = ("error", int(err.error_code))
            outcome.detail = f"{type(err).__name__}: {err}"
            return []
        except Exception as err:  # a crash: a finding of its own
            outcome.crashed = f"{type(err).__name__}: {err}"
            return []
        surfaced = []
        for ev in events:
            if isinstance(ev, h2e.RequestReceived):
                surfaced.append(ev.stream_id)
                outcome.events.append(_h2_request(ev))
            elif isinstance(ev, h2e.DataReceived):
                if ev.data:
                    outcome.events.append(("data", ev.stream_id, bytes(ev.data)))
            elif isinstance(ev, h2e.StreamEnded):
                outcome.events.append(("end", ev.stream_id))
            elif isinstance(ev, h2e.StreamReset) and ev.remote_reset:
                outcome.events.append(("reset", ev.stream_id, int(ev.error_code)))
            elif isinstance(ev, h2e.ConnectionTerminated):
                outcome.terminated = ("peer", int(ev.error_code))
        return surfaced

    def answer(self, sid: int, action: int, promised: int | None) -> None:
        if promised is not None:
            self.conn.push_stream(sid, promised, PUSHED_REQUEST)
        if action in (ANSWER, PUSH):
            self.conn.send_headers(sid, [(b":status", b"200"), (b"content-length", b"0")], end_stream=True)
        elif action == START:
            self.conn.send_headers(sid, [(b":status", b"200")])
        elif action == RESET:
            self.conn.reset_stream(sid, CANCEL)

    def finish(self, sid: int) -> None:
        if sid % 2:
            self.conn.send_data(sid, b"", end_stream=True)
        else:
            self.conn.send_headers(sid, [(b":status", b"200"), (b"content-length", b"0")], end_stream=True)

    def output(self, outcome: Outcome, ignore_resets: set[int]) -> None:
        _output(self.conn.data_to_send(), outcome, ignore_resets)

    def state(self, sid: int) -> str:
        conn = self.conn
        stream = conn.streams.get(sid)
        if stream is not None:
            return _H2_STATES[stream.state_machine.state]
        highest = conn.highest_inbound_stream_id if sid % 2 else conn.highest_outbound_stream_id
        return "closed" if sid <= highest else "idle"


def _h2_request(ev: h2e.RequestReceived) -> tuple[object, ...]:
    """h2's request in our shape: pseudo-header fields apart, cookie crumbs joined (§8.2.3)."""
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    for name, value in ev.headers or []:
        name, value = bytes(name), bytes(value)
        if name.startswith(b":"):
            pseudo[name] = value
        elif name == b"cookie":
            cookies.append(value)
        else:
            regular.append((name, value))
    if cookies:
        regular.append((b"cookie", b"; ".join(cookies)))
    authority = pseudo.get(b":authority", dict(regular).get(b"host", b""))
    return ("request", ev.stream_id, pseudo.get(b":method", b""), pseudo.get(b":path", b""), authority,
            tuple(regular))


# -- running a conversation ---------------------------------------------------------------------


@dataclass
class Conversation:
    """Client frames (the preface counts as one) and the layer above's answers, by request."""

    frames: list[bytes]
    answers: list[int]
    finish_after: int = 1  # frames after which a START response is ended


def compare(conv: Conversation, decode: Callable[[Frame], list[tuple[bytes, bytes]] | None]) -> list[Step]:
    """Feed ``conv`` to both servers; the steps where they differ.  A difference in the stream
    errors or ACKs alone leaves both in the same state, so the comparison goes on after it; any
    other ends it (after it the two are in different worlds)."""
    differences: list[Step] = []
    ours, theirs = Ours(), Theirs()
    seen: set[int] = set()
    pending: list[tuple[int, int]] = []  # (frames left, sid) of START responses
    answered = 0
    declared: dict[int, bytes] = {}
    data_total = 0
    for index, data in enumerate(conv.frames):
        frame = Frame.parse(data)
        if frame.ftype == DATA:
            data_total += len(frame.payload)
        fields = decode(frame)
        if fields is not None and frame.sid not in declared:
            declared[frame.sid] = dict(fields).get(b"content-length", b"")
        if frame.sid and frame.ftype in (DATA, HEADERS, PRIORITY, RST_STREAM, WINDOW_UPDATE, CONTINUATION):
            seen.add(frame.sid)
        before = ours.core.stream_state(frame.sid) if frame.sid and frame.ftype >= 0 else "connection"
        o, t = Outcome(), Outcome()
        surfaced_o = ours.feed(data, o)
        surfaced_t = theirs.feed(data, t)
        step = Step(index, frame, before, o, t, fields, declared.get(frame.sid) or None, data_total)
        layer_resets: set[int] = set()
        if o.terminated is None and t.terminated is None and not t.crashed:
            for sid in surfaced_o:
                if sid not in surfaced_t:
                    continue  # the events differ: reported below
                action = conv.answers[answered % len(conv.answers)] if conv.answers else ANSWER
                answered += 1
                promised = ours.answer(sid, action)
                try:
                    theirs.answer(sid, action, promised)
                except h2.exceptions.ProtocolError as err:  # h2 refused what we did: a difference
                    t.crashed = f"h2 refused the layer above's {action=}: {type(err).__name__}: {err}"
                    break
                if action == RESET:
                    layer_resets.add(sid)
                elif action == START:
                    pending.append((conv.finish_after, sid))
                if promised is not None:
                    seen.add(promised)
                    pending.append((conv.finish_after, promised))
            still = []
            for left, sid in pending:
                if left > 0:
                    still.append((left - 1, sid))
                elif ours.state(sid) not in ("closed", "idle") and theirs.state(sid) not in ("closed", "idle"):
                    ours.finish(sid)
                    theirs.finish(sid)
            pending = still
        ours.output(o, layer_resets)
        theirs.output(t, layer_resets)
        if o.terminated is None and t.terminated is None:
            for sid in sorted(seen):
                o.states[sid] = ours.state(sid)
                t.states[sid] = theirs.state(sid)
        differs = step.differs()
        if differs:
            differences.append(step)
            if not set(differs) <= {"stream errors", "acks"}:
                return differences
        if o.terminated is not None or t.terminated is not None:
            return differences
    return differences
