"""One HTTP/2 stream's record, and the stream states of RFC 9113 §5.1 as a table.

A stream's state is not stored: it follows from two flags (the peer's END_STREAM arrived; ours
left, or the stream was reset) and, for a stream we no longer hold, from its id against the
highest id opened so far (below it: closed; above: idle).  What the peer may send in each state
is data (``PEER_MAY_SEND``), looked up once per frame.
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

IDLE, RESERVED_LOCAL, OPEN, HALF_CLOSED_LOCAL, HALF_CLOSED_REMOTE, CLOSED = range(6)
STATE_NAMES = ("idle", "reserved (local)", "open", "half-closed (local)", "half-closed (remote)", "closed")


class Rule(NamedTuple):
    allowed: frozenset[int]  # frame types the peer may send in this state
    connection_error: bool  # anything else: a connection error (True) or a stream error
    code: ErrorCode


_ANY = frozenset({DATA, HEADERS, PRIORITY, RST_STREAM, WINDOW_UPDATE, CONTINUATION})

# RFC 9113 §5.1, per state, for the frame types that concern a stream.  "closed" covers both a
# stream that ended normally and one reset either way; frames on one we reset are ignored
# (§5.1 "closed") before this table is consulted, and WINDOW_UPDATE / RST_STREAM on a closed
# stream are allowed (they may have crossed our END_STREAM or RST_STREAM).
PEER_MAY_SEND: tuple[Rule, ...] = (
    Rule(frozenset({HEADERS, PRIORITY}), True, ErrorCode.PROTOCOL_ERROR),  # idle
    Rule(frozenset({PRIORITY, RST_STREAM, WINDOW_UPDATE}), True, ErrorCode.PROTOCOL_ERROR),  # reserved (local)
    Rule(_ANY, False, ErrorCode.NO_ERROR),  # open
    Rule(_ANY, False, ErrorCode.NO_ERROR),  # half-closed (local)
    Rule(frozenset({PRIORITY, RST_STREAM, WINDOW_UPDATE}), False, ErrorCode.STREAM_CLOSED),  # half-closed (remote)
    Rule(frozenset({PRIORITY, RST_STREAM, WINDOW_UPDATE}), False, ErrorCode.STREAM_CLOSED),  # closed
)

# State of a stream we hold, by (request_done, response_done).
_BY_FLAGS = ((OPEN, HALF_CLOSED_LOCAL), (HALF_CLOSED_REMOTE, CLOSED))


@dataclass(eq=False, slots=True)
class Stream:
    stream_id: int
    method: bytes
    urgency: int
    send_window: int  # what we may still send (peer's flow control)
    recv_window: int  # what the peer may still send us
    pushed: bool = False
    headers_sent: bool = False  # final (non-1xx) HEADERS are out
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
        if self.pushed and not self.headers_sent and not self.response_done:
            return RESERVED_LOCAL
        return _BY_FLAGS[self.request_done][self.response_done]
