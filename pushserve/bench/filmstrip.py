"""The filmstrip of the report: for each Chromium row's median load, what the screen showed at
fixed steps after navigation start, one strip per row on a shared time axis so the rows can be
compared column by column (as WebPageTest lays them out).  Frames are Chromium's own screencast
frames (``browser.py``); a cell shows the last frame shown at or before its time, outlined when
the picture changed since the previous cell."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence

from pushserve.bench.visual import Frame

MAX_CELLS = 12
CELL_W = 96


def step_for(end_ms: float) -> float:
    """A round step (50, 100, 200, 250, 500 ms, ...) giving at most MAX_CELLS cells from 0 to end_ms."""
    for step in (50.0, 100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0):
        if math.ceil(end_ms / step) + 1 <= MAX_CELLS:
            return step
    return math.ceil(end_ms / (MAX_CELLS - 1) / 1000) * 1000


def shown_at(frames: Sequence[Frame], t_ms: float) -> int | None:
    """Index of the frame on screen at ``t_ms`` (the last one shown at or before it)."""
    current = None
    for i, f in enumerate(frames):
        if f.t <= t_ms:
            current = i
    return current


Strip = tuple[str, Sequence[Frame], float, float | None, float | None]


def filmstrips_html(strips: Sequence[Strip]) -> str:
    """``strips``: (row label, frames, load end ms, this run's Speed Index ms, the median Speed
    Index over the row's runs) per Chromium row.  Both Speed Index figures are named for what they
    are: the strip's own run, and the median the table shows."""
    strips = [s for s in strips if s[1]]
    if not strips:
        return ""
    end = max(max(f.t for f in frames) for _, frames, _, _, _ in strips)
    end = max(end, *(load for _, _, load, _, _ in strips))
    step = step_for(end)
    cells = math.ceil(end / step) + 1
    out = ['<div class="filmstrips">']
    for label, frames, load_ms, si, si_median in strips:
        si_text = f", its Speed Index {si:.0f} ms" if si is not None else ""
        if si_median is not None:
            si_text += f"; median Speed Index of the row {si_median:.1f} ms"
        out.append(f'<div class="filmstrip" data-row="{html.escape(label)}"><div class="strip-label">'
                   f'{html.escape(label)} <span class="dim">(median run: load {load_ms:.0f} ms{si_text})</span>'
                   "</div><div class=\"cells\">")
        previous = None
        for c in range(cells):
            t = c * step
            i = shown_at(frames, t)
            changed = i is not None and previous is not None and i != previous
            previous = i if i is not None else previous
            if i is None:
                img = '<div class="blank"></div>'
            else:
                data = base64.b64encode(frames[i].png).decode()
                img = (f'<img class="frame" alt="screen at {t:.0f} ms" width="{CELL_W}" '
                       f'src="data:image/png;base64,{data}">')
            cls = "cell changed" if changed else "cell"
            out.append(f'<figure class="{cls}">{img}<figcaption>{t / 1000:.2f} s</figcaption></figure>')
        out.append("</div></div>")
    out.append("</div>")
    return "\n".join(out)
