"""The peer's SETTINGS (RFC 9113 §6.5.2), checked value by value as they arrive.  Our own
settings are announced once (core.H2Core.initiate) and count as in force at once: until the peer
has seen them it can only send less than they allow, never more."""

from __future__ import annotations

from collections.abc import Callable

from pushserve.protocol.h2.errors import ConnectionFailure, protocol_error
from pushserve.protocol.h2.frames import DEFAULT_MAX_FRAME, MAX_WINDOW, ErrorCode, Setting

_MAX_FRAME_LIMIT = 2**24 - 1
_UNBOUNDED = 2**31 - 1


class PeerSettings:
    """What the peer told us.  INITIAL_WINDOW_SIZE belongs to flow control (flow.py): it is
    handed on as it is read."""

    __slots__ = ("enable_push", "max_frame", "max_streams", "table_size", "table_update_due")

    def __init__(self) -> None:
        self.max_frame = DEFAULT_MAX_FRAME  # largest frame payload we may send
        self.enable_push = True
        self.max_streams = _UNBOUNDED  # streams we may have open towards it (our pushes)
        self.table_size = 4096  # its HPACK decoder's table
        # It shrank its table: our next header block starts with a size update to 0 (RFC 7541
        # §4.2; we never insert into its table, so 0 always fits).
        self.table_update_due = False

    def apply(self, payload: bytes, initial_window: Callable[[int], None]) -> None:
        """A SETTINGS frame's payload (a multiple of 6 octets), in order."""
        for i in range(0, len(payload), 6):
            code = int.from_bytes(payload[i:i + 2], "big")
            value = int.from_bytes(payload[i + 2:i + 6], "big")
            if code == Setting.INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, f"INITIAL_WINDOW_SIZE {value}")
                initial_window(value)
            elif code == Setting.MAX_FRAME_SIZE:
                if not DEFAULT_MAX_FRAME <= value <= _MAX_FRAME_LIMIT:
                    raise protocol_error(f"MAX_FRAME_SIZE {value}")
                self.max_frame = value
            elif code == Setting.ENABLE_PUSH:
                if value > 1:
                    raise protocol_error(f"ENABLE_PUSH {value}")
                self.enable_push = bool(value)
            elif code == Setting.MAX_CONCURRENT_STREAMS:
                self.max_streams = value
            elif code == Setting.HEADER_TABLE_SIZE:
                if value < self.table_size:
                    self.table_update_due = True
                self.table_size = value
            elif code in (Setting.ENABLE_CONNECT_PROTOCOL, Setting.NO_RFC7540_PRIORITIES) and value > 1:
                raise protocol_error(f"setting {code:#x} = {value}")
            # MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored (§6.5.2).
