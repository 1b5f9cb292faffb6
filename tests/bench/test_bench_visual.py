"""The bench's Speed Index pieces: the PNG decoder (every filter type), visual progress by
histograms, the Speed Index integral, the filmstrip's time grid, and the percentiles rule."""

from __future__ import annotations

import struct
import zlib

import pytest

from pushserve.bench.filmstrip import shown_at, step_for
from pushserve.bench.series import PERCENTILE_RUNS, percentiles_ms
from pushserve.bench.visual import Frame, decode_png, histograms, progress, speed_index, visual_metrics


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _encode(rows: list[bytes], width: int, channels: int, filters: list[int]) -> bytes:
    """A PNG whose row y is filtered with filters[y % len(filters)] (an encoder of our own, so
    the decoder is checked against the PNG spec's filter definitions, not against itself)."""
    colour = {3: 2, 4: 6, 1: 0}[channels]
    out = bytearray()
    prev = bytes(width * channels)
    for y, row in enumerate(rows):
        kind = filters[y % len(filters)]
        line = bytearray()
        for i, x in enumerate(row):
            a = row[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            pred = {0: 0, 1: a, 2: b, 3: (a + b) >> 1, 4: _paeth(a, b, c)}[kind]
            line.append((x - pred) & 0xFF)
        out += bytes([kind]) + line
        prev = row
    ihdr = struct.pack(">IIBBBBB", width, len(rows), 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(out))) + \
        _chunk(b"IEND", b"")


def _image(width: int, height: int, channels: int, seed: int) -> list[bytes]:
    return [bytes((x * 37 + y * 91 + c * 53 + seed) % 256 for x in range(width) for c in range(channels))
            for y in range(height)]


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_decoder_undoes_every_filter(channels: int) -> None:
    rows = _image(7, 10, channels, seed=5)
    png = _encode(rows, 7, channels, filters=[0, 1, 2, 3, 4])
    assert decode_png(png) == (7, 10, channels, b"".join(rows))


def test_png_decoder_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        decode_png(b"GIF89a....")
    ihdr = struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0)  # 16-bit
    with pytest.raises(ValueError, match="unsupported PNG"):
        decode_png(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b""))


def _solid(width: int, height: int, pixels: list[tuple[int, int, int]]) -> bytes:
    """A width x height RGB PNG filled row-major from ``pixels`` (cycled)."""
    flat = [pixels[i % len(pixels)] for i in range(width * height)]
    rows = [bytes(v for p in flat[y * width:(y + 1) * width] for v in p) for y in range(height)]
    return _encode(rows, width, 3, filters=[4])


def test_progress_runs_from_blank_to_final_and_ignores_white() -> None:
    white, ink = (255, 255, 255), (20, 40, 200)
    blank = histograms(_solid(10, 10, [white]))
    half = histograms(_solid(10, 10, [white, ink]))  # half the pixels painted
    final = histograms(_solid(10, 10, [ink]))
    assert sum(blank[0]) == 0  # white pixels are not counted
    assert progress(blank, blank, final) == 0.0
    assert progress(blank, final, final) == 1.0
    assert progress(blank, half, final) == pytest.approx(0.5)


def test_speed_index_is_the_area_above_the_progress_curve() -> None:
    # Blank until 100 ms, half done until 300 ms, complete after: 100 * 1 + 200 * 0.5.
    assert speed_index([0.0, 100.0, 300.0], [0.0, 0.5, 1.0]) == pytest.approx(200.0)
    # A first frame that arrived late counts from navigation start; one before it from 0.
    assert speed_index([20.0, 300.0], [0.0, 1.0]) == pytest.approx(300.0)
    assert speed_index([-8.0, 300.0], [0.0, 1.0]) == pytest.approx(300.0)


def test_visual_metrics_of_frames() -> None:
    white, ink = (255, 255, 255), (20, 40, 200)
    frames = [Frame(-5.0, _solid(8, 8, [white])), Frame(120.0, _solid(8, 8, [white, ink])),
              Frame(400.0, _solid(8, 8, [ink]))]
    si, progresses = visual_metrics(frames)
    assert progresses == pytest.approx([0.0, 0.5, 1.0])
    assert si == pytest.approx(120.0 + 0.5 * 280.0)


def test_filmstrip_grid() -> None:
    assert step_for(400) == 50 and step_for(1000) == 100 and step_for(2500) == 250
    assert step_for(1150) == 200  # 100 ms steps would need 13 cells
    frames = [Frame(-3.0, b""), Frame(250.0, b""), Frame(420.0, b"")]
    assert [shown_at(frames, t) for t in (0, 200, 250, 300, 1000)] == [0, 0, 1, 1, 2]
    assert shown_at([Frame(10.0, b"")], 0) is None


def test_percentiles_only_with_enough_runs() -> None:
    assert percentiles_ms([0.1] * (PERCENTILE_RUNS - 1), "lcp") == {}
    got = percentiles_ms([i / 1000 for i in range(1, 11)], "lcp")  # 1..10 ms
    assert got["lcp_p75_ms"] == pytest.approx(7.75) and got["lcp_p90_ms"] == pytest.approx(9.1)
    assert percentiles_ms([None] * 12, "lcp") == {}
