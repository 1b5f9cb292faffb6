"""One HTTP/2 stream's record, and the stream's rules as two tables: what the peer may send in
each state (RFC 9113 §5.1), and what the layer above may do at each step of its response.

A stream's state is not stored: it follows from two flags (the peer's END_STREAM arrived; ours
left, or the stream was reset) and, for a stream we no longer hold, from its id against the
highest id opened so far (above it: idle) and from the memory of closed streams (closed.py),
which tells the three ways of being closed apart: both sides ended, the peer reset it, we did.
What the peer may send in each state is data (``PEER_MAY_SEND``), looked up once per frame that
is not on an open stream.

The layer above answers a request with any number of informational heads, one final head, then
content, then the end (§8.1); it may promise pushes on a request's stream until its response
ends (§8.4).  ``LAYER_MAY`` holds that order; a stream keeps the set of verbs its step allows
(``Stream.may``), so each call checks one bit, and anything else raises LocalProtocolError.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from pushserve.protocol.h2.frames import (
    CONTINUATION,
    DATA,
    HEADERS,
    PRIORITY,
    RST_STREAM,
    WINDOW_UPDATE,
    ErrorCode,
)

# States of RFC 9113 §5.1 ("reserved (remote)" is a client's, never ours), "closed" split by how
# the stream closed, and the closed streams we no longer remember.
(IDLE, RESERVED_LOCAL, OPEN, HALF_CLOSED_LOCAL, HALF_CLOSED_REMOTE,
 CLOSED, RESET_BY_PEER, RESET_BY_US, FORGOTTEN) = range(9)
STATE_NAMES = ("idle", "reserved (local)", "open", "half-closed (local)", "half-closed (remote)", "closed",
               "closed (reset by the peer)", "closed (reset by us)", "closed (forgotten)")


class Rule(NamedTuple):
    allowed: frozenset[int]  # frame types the peer may send in this state
    fatal: frozenset[int]  # of the others, those that are a connection error; the rest a stream error
    code: ErrorCode


_ANY = frozenset({DATA, HEADERS, PRIORITY, RST_STREAM, WINDOW_UPDATE, CONTINUATION})
_NONE: frozenset[int] = frozenset()
_LATE = frozenset({PRIORITY, RST_STREAM, WINDOW_UPDATE})  # may cross our END_STREAM or RST_STREAM

# RFC 9113 §5.1, per state, for the frame types that concern a stream.
PEER_MAY_SEND: tuple[Rule, ...] = (
    Rule(frozenset({HEADERS, PRIORITY}), _ANY, ErrorCode.PROTOCOL_ERROR),  # idle
    Rule(_LATE, _ANY, ErrorCode.PROTOCOL_ERROR),  # reserved (local)
    Rule(_ANY, _NONE, ErrorCode.NO_ERROR),  # open
    Rule(_ANY, _NONE, ErrorCode.NO_ERROR),  # half-closed (local)
    Rule(_LATE, _NONE, ErrorCode.STREAM_CLOSED),  # half-closed (remote)
    # Both sides sent END_STREAM: HEADERS is a connection error (the "MAY" of §5.1, h2spec's
    # expectation, the h2 library's answer), DATA a stream error (§6.1's "MUST").
    Rule(_LATE, frozenset({HEADERS, CONTINUATION}), ErrorCode.STREAM_CLOSED),  # closed
    # The peer reset it, so it knows: DATA or HEADERS is a stream error (RFC 7540 §5.1's rule).
    Rule(_LATE, _NONE, ErrorCode.STREAM_CLOSED),  # closed (reset by the peer)
    # After our RST_STREAM anything may still come: processed minimally (HPACK, the connection
    # window) and dropped, never answered.
    Rule(_ANY, _NONE, ErrorCode.NO_ERROR),  # closed (reset by us)
    # Closed so long ago that we no longer know how: a stream error, never the connection's end
    # (a late upload frame must not cost a page its connection).  A HEADERS frame here is a new
    # stream id below the last one opened: a connection error, checked before this table (§5.1.1).
    Rule(_LATE, _NONE, ErrorCode.STREAM_CLOSED),  # closed (forgotten)
)

# State of a stream we hold, by (request_done, response_done).
_BY_FLAGS = ((OPEN, HALF_CLOSED_LOCAL), (HALF_CLOSED_REMOTE, CLOSED))

# The layer above's verbs, and the steps of a response (``Stream.phase``).
INFORM, RESPOND, SEND, PUSH = 1, 2, 4, 8
VERB_NAMES = {INFORM: "an informational response", RESPOND: "a response", SEND: "data", PUSH: "a push promise"}
AWAITING_HEAD, SENDING_BODY, ENDED = range(3)
PHASE_NAMES = ("awaits its response", "is sending its body", "has ended its response")

# What the layer above may do, by (pushed, phase).  A request's stream takes 1xx heads and push
# promises until its final head, pushes and data until its end; a pushed stream never carries a
# promise of its own (§8.4).  Nothing is allowed once the response has ended.
LAYER_MAY: tuple[tuple[int, ...], ...] = (
    (INFORM | RESPOND | PUSH, SEND | PUSH, 0),  # a request's stream
    (INFORM | RESPOND, SEND, 0),  # a pushed stream
)


@dataclass(eq=False, slots=True)
class Stream:
    stream_id: int
    method: bytes
    urgency: int
    send_window: int  # what we may still send (peer's flow control)
    recv_window: int  # what the peer may still send us
    pushed: bool = False
    phase: int = AWAITING_HEAD  # how far the layer above has got with the response
    may: int = INFORM | RESPOND | PUSH  # LAYER_MAY[pushed][phase]: verbs the layer above may use now
    response_done: bool = False  # END_STREAM sent, or the stream was reset
    request_done: bool = False  # the peer's END_STREAM arrived
    # Body still to send, in order: buffers (the first one possibly partly sent, see
    # ``offset``) or iterators pulled lazily when they reach the front.
    parts: deque[bytes | memoryview | Iterator[bytes]] = field(default_factory=deque)
    offset: int = 0
    queued: int = 0  # buffered bytes in ``parts`` not yet sent
    end_pending: bool = False  # send END_STREAM once ``parts`` is empty
    drain_wanted: bool = False  # send_data queued data: emit StreamDrained when it has left
    scheduled: bool = False  # present in an urgency bucket
    unacked: int = 0  # body bytes received and not yet acknowledged by the layer above
    auto_ack: bool = False  # nobody reads further body: acknowledge it on arrival
    swallow: bool = False  # ... and do not surface it either (reset pending, see reset_after)
    reset_after: int = -1  # RST_STREAM code to send right after our END_STREAM (-1: none)
    content_length: int = -1  # declared request body length
    received: int = 0  # request body bytes received
    credit: int = 0  # acknowledged bytes not yet returned to the peer with WINDOW_UPDATE
    fresh: bool = False  # its RequestReceived is in the events still being built (see H2Core)

    @property
    def state(self) -> int:
        if self.pushed and self.phase == AWAITING_HEAD and not self.response_done:
            return RESERVED_LOCAL
        return _BY_FLAGS[self.request_done][self.response_done]

    def enter(self, phase: int) -> None:
        """The layer above's response moves on to ``phase``."""
        self.phase = phase
        self.may = LAYER_MAY[self.pushed][phase]
