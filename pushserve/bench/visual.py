"""Filmstrip frames and Speed Index, from the PNG frames of Chromium's screencast.

No imaging library: the frames are small PNGs (the screencast is asked for ≤ 400x300), so a
minimal decoder (8-bit RGB/RGBA, non-interlaced: what Chromium writes) is enough.  Visual
progress is the histogram method WebPageTest uses: per colour channel, how far the frame's
histogram has moved from the first frame's towards the last frame's; Speed Index is the area
above the progress curve, ∫ (1 - progress) dt, in ms."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pixels within this distance of white are ignored: the blank page is white, and so is most of
# a finished one, so counting them would drown the content that changes.
_WHITE = 250


@dataclass
class Frame:
    """One screencast frame: when it was shown (ms after navigation start) and its PNG."""

    t: float
    png: bytes


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, channels, pixel bytes row by row) of an 8-bit RGB(A) or grey PNG."""
    if data[:8] != _SIGNATURE:
        raise ValueError("not a PNG")
    pos, idat = 8, []
    width = height = channels = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour, 0)
            if depth != 8 or not channels or interlace:
                raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    out = bytearray(stride * height)
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        _unfilter(kind, line, prev, channels)
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return width, height, channels, bytes(out)


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    n = len(line)
    if kind == 1:  # Sub
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:  # Up
        for i in range(n):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif kind == 3:  # Average
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pred) & 0xFF
    elif kind != 0:
        raise ValueError(f"bad PNG filter type {kind}")


def histograms(png: bytes) -> list[list[int]]:
    """Per channel (R, G, B) a 256-bin histogram of the pixels that are not (near) white."""
    width, height, channels, px = decode_png(png)
    hist = [[0] * 256 for _ in range(3)]
    r_hist, g_hist, b_hist = hist
    for i in range(0, width * height * channels, channels):
        if channels >= 3:
            r, g, b = px[i], px[i + 1], px[i + 2]
        else:
            r = g = b = px[i]
        if r > _WHITE and g > _WHITE and b > _WHITE:
            continue
        r_hist[r] += 1
        g_hist[g] += 1
        b_hist[b] += 1
    return hist


def progress(start: list[list[int]], current: list[list[int]], end: list[list[int]]) -> float:
    """Visual progress of ``current`` between ``start`` (0) and ``end`` (1), averaged over channels."""
    total = 0.0
    for s, c, e in zip(start, current, end, strict=True):
        span = sum(abs(a - b) for a, b in zip(s, e, strict=True))
        if span == 0:
            total += 1.0
            continue
        left = sum(abs(a - b) for a, b in zip(c, e, strict=True))
        total += max(0.0, 1.0 - left / span)
    return total / len(start)


def speed_index(times: Sequence[float], progresses: Sequence[float]) -> float:
    """∫ (1 - progress) dt over the frames (ms): each frame's progress holds until the next one.
    The first frame is taken as shown at time 0 (navigation start) if it came later."""
    if not times:
        return 0.0
    total = 0.0
    last_t, last_p = 0.0, 0.0
    for t, p in zip(times, progresses, strict=True):
        t = max(t, 0.0)
        total += (1.0 - last_p) * (t - last_t)
        last_t, last_p = t, p
    return total


def visual_metrics(frames: Sequence[Frame]) -> tuple[float, list[float]]:
    """(Speed Index in ms, progress per frame) of frames sorted by time; the first frame is the
    blank page before navigation, the last the finished page."""
    if len(frames) < 2:
        return 0.0, [1.0] * len(frames)
    hists = [histograms(f.png) for f in frames]
    progresses = [progress(hists[0], h, hists[-1]) for h in hists]
    progresses[0], progresses[-1] = 0.0, 1.0
    return speed_index([f.t for f in frames], progresses), progresses
