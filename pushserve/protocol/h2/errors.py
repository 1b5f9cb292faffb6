"""The two kinds of error the peer's input can cause (RFC 9113 §5.4): raised by the small objects
of the core (flow.py, budget.py, headerblock.py, settings.py) and the frame handlers, answered
by the connection in core.py."""

from __future__ import annotations

from pushserve.protocol.h2.frames import ErrorCode


class ConnectionFailure(Exception):
    """A connection error (§5.4.1): the connection ends with a GOAWAY carrying ``code`` (none
    when ``send_goaway`` is False: the peer itself went away)."""

    def __init__(self, code: int, reason: str, *, send_goaway: bool = True) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.send_goaway = send_goaway


class StreamFailure(Exception):
    """A stream error (§5.4.2): the stream is reset with ``code``; the connection lives on."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def protocol_error(reason: str) -> ConnectionFailure:
    return ConnectionFailure(ErrorCode.PROTOCOL_ERROR, reason)


def frame_size_error(reason: str) -> ConnectionFailure:
    return ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, reason)


def calm(reason: str) -> ConnectionFailure:
    """A flood: ENHANCE_YOUR_CALM."""
    return ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM, reason)
