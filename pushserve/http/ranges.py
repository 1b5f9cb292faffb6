"""Single byte ranges (RFC 9110 §14).

Only one range per request is served.  A Range with several ranges is ignored and the whole
representation sent with 200: RFC 9110 §14.2 lets a server ignore Range, and multipart/byteranges
is rarely used (browsers and download tools ask for one range at a time), so it is not worth its
complexity here.  A malformed Range is ignored the same way, as the RFC requires.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

# Longer numbers than this are not offsets into any real file; refusing them keeps int()
# away from attacker-sized digit strings.
_MAX_DIGITS = 19


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> bytes:
        return b"bytes %d-%d/%d" % (self.start, self.end, size)


class _Unsatisfiable(enum.Enum):
    UNSATISFIABLE = 0


# parse_range's answer when the range lies wholly outside the representation (416).
UNSATISFIABLE: Final = _Unsatisfiable.UNSATISFIABLE


def unsatisfied_range(size: int) -> bytes:
    """The Content-Range value a 416 carries."""
    return b"bytes */%d" % size


def _number(value: bytes) -> int | None:
    if not value or len(value) > _MAX_DIGITS or not value.isdigit():
        return None
    return int(value)


def parse_range(
    value: bytes, size: int
) -> ByteRange | Literal[_Unsatisfiable.UNSATISFIABLE] | None:
    """The range to send for a Range header and a representation of ``size`` bytes.

    Returns a ByteRange (206), UNSATISFIABLE (416), or None: ignore the header and send 200
    (malformed, another unit, or more than one range).
    """
    unit, eq, spec = value.partition(b"=")
    if not eq or unit.strip().lower() != b"bytes":
        return None
    specs = [s for s in (p.strip() for p in spec.split(b",")) if s]  # empty list members are legal
    if len(specs) != 1:
        return None
    first, dash, last = specs[0].partition(b"-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not first:  # suffix range: the last N bytes
        n = _number(last)
        if n is None:
            return None
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - n), size - 1)
    start = _number(first)
    if start is None:
        return None
    if last:
        end = _number(last)
        if end is None or end < start:
            return None
    else:
        end = size - 1
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(end, size - 1))
