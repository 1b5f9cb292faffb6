"""An HTML report for ``pushserve bench``: the summary table and one SVG waterfall per row (the
median run of that row), one bar per resource: waiting (requested → first byte) in a light
shade, receiving (first byte → done) in the full colour of its kind.

Each waterfall is ``<svg class="waterfall" data-row="...">`` and each bar a ``<g class="bar">``
holding exactly two ``rect`` s, so a test (or a reader with devtools) can count bars per row."""

from __future__ import annotations

import html
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pushserve.bench.loader import Entry, PageLoad
from pushserve.bench.series import Series, Settings, median_run

COLOURS = {"html": "#4c78a8", "css": "#9c27b0", "js": "#f2a900", "font": "#2e7d32", "image": "#00838f",
           "other": "#757575"}
ROW = 18
LABEL_W = 260
PLOT_W = 640
_TAGS = {"push": " [push]", "hint": " [hint]", "cache": " [cache]"}


def drawn(load: PageLoad) -> list[Entry]:
    """The entries a waterfall shows: every resource that was requested, pushed or cached."""
    return [e for e in load.entries if e.requested is not None]


def waterfall_svg(load: PageLoad, scale_end: float, row: str) -> str:
    entries = drawn(load)
    height = ROW * (len(entries) + 2)
    px = PLOT_W / scale_end if scale_end > 0 else 0.0
    parts = [f'<svg class="waterfall" data-row="{html.escape(row)}" xmlns="http://www.w3.org/2000/svg" '
             f'width="{LABEL_W + PLOT_W + 60}" height="{height}" font-family="monospace" font-size="11">']
    # Grid every 50 ms (or 10 ms for short loads), labelled.
    step = 0.05 if scale_end > 0.2 else 0.01
    t = 0.0
    while t <= scale_end + 1e-9:
        x = LABEL_W + t * px
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - ROW}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle" fill="#555">'
                     f'{t * 1000:.0f}</text>')
        t += step
    for i, e in enumerate(entries):
        parts.append(_bar(e, i * ROW + 4, px))
    if load.first_interim is not None:
        x = LABEL_W + load.first_interim * px
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - ROW}" stroke="#2e7d32" '
                     f'stroke-dasharray="2 2"><title>103 at {load.first_interim * 1000:.1f} ms</title></line>')
    end_x = LABEL_W + load.page_load * px
    parts.append(f'<line x1="{end_x:.1f}" y1="0" x2="{end_x:.1f}" y2="{height - ROW}" stroke="#c62828" '
                 f'stroke-dasharray="4 3"><title>page load {load.page_load * 1000:.1f} ms</title></line>')
    parts.append("</svg>")
    return "\n".join(parts)


def _bar(e: Entry, y: int, px: float) -> str:
    start = e.requested or 0.0
    first = e.first_byte if e.first_byte is not None else start
    done = e.done if e.done is not None else first
    colour = COLOURS.get(e.kind, COLOURS["other"])
    status = " 304" if e.status == 304 else ""
    unused = "" if e.needed else " (unused)"
    label = html.escape(f"{e.path}{_TAGS.get(e.via, '')}{status}{unused}")[:64]
    tip = html.escape(f"{e.path} {e.kind} via {e.via}{status}: requested {start * 1000:.1f} ms, first byte "
                      f"{first * 1000:.1f} ms, done {done * 1000:.1f} ms, {e.nbytes} bytes")
    x0, x1, x2 = LABEL_W + start * px, LABEL_W + first * px, LABEL_W + done * px
    opacity = "1" if e.needed else "0.45"
    return (f'<g class="bar" data-path="{html.escape(e.path)}" opacity="{opacity}"><title>{tip}</title>'
            f'<text x="4" y="{y + 10}" fill="#222">{label}</text>'
            f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="12" fill="{colour}" '
            f'fill-opacity="0.3"/>'
            f'<rect x="{x1:.1f}" y="{y}" width="{max(x2 - x1, 1):.1f}" height="12" fill="{colour}"/></g>')


_STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
          "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
          "td:first-child,th:first-child{text-align:left}h2{margin-top:1.6em}.note{color:#555;max-width:60em}")


def write_report(path: Path, all_series: Sequence[Series], rows: list[dict[str, Any]], *, settings: Settings,
                 sections: Sequence[tuple[str, str]] = ()) -> None:
    """``sections``: extra (title, HTML) parts appended after the waterfalls, e.g. throughput."""
    medians = [(s.label, median_run(s.loads), s.loads) for s in all_series if s.loads]
    # One time scale for every waterfall so they can be compared by eye.
    scale_end = max((max((e.done or 0.0) for e in load.entries) for _, load, _ in medians), default=0.0)
    scale_end = max([scale_end, *(load.page_load for _, load, _ in medians)])
    out = ["<!doctype html><html lang=en><meta charset=utf-8>",
           f"<title>pushserve page load {html.escape(settings.page)}</title>", f"<style>{_STYLE}</style>",
           f"<h1>Page load of {html.escape(settings.page)}</h1>",
           f"<p>{html.escape(settings.describe())}.</p>", table_html(rows, PAGELOAD_COLUMNS),
           '<p class="note">Rows: h1 = HTTP/1.1 (6 connections); h2-off = HTTP/2, nothing announced; '
           "h2-hints = 103 Early Hints; h2-push = server push (client allows it). <em>warm</em> = a returning "
           "visit with the cache and cookie of the cold load; <em>warm-nocookie</em> = same cache, push cookie "
           "dropped. cache/304 = used from the cache without a request / revalidated. chromium rows: "
           "headless Chromium, Navigation and Resource Timing (load = loadEventEnd).</p>",
           "<p>Legend: " + " ".join(f'<span style="color:{c}">■ {k}</span>' for k, c in COLOURS.items())
           + "; light = waiting for the first byte, dark = receiving; faded = pushed or hinted but never used; "
             "red dashes = page load; green dots = the 103 arrived.</p>"]
    for label, load, loads in medians:
        times = [r.page_load for r in loads]
        out.append(f"<h2>{html.escape(label)}: {load.page_load * 1000:.1f} ms "
                   f"(median of {len(times)}: {statistics.median(times) * 1000:.1f} ms; {load.protocol})</h2>")
        out.append(waterfall_svg(load, scale_end, label))
    for title, body in sections:
        out.append(f"<h2>{html.escape(title)}</h2>")
        out.append(body)
    out.append("</html>")
    path.write_text("\n".join(out), encoding="utf-8")


Column = tuple[str, str, str]
PAGELOAD_COLUMNS: list[Column] = [
    ("row", "row", "{}"), ("page_load_ms", "load ms", "{:.1f}"), ("spread_ms", "spread ms", "{:.1f}"),
    ("critical_ms", "critical ms", "{:.1f}"), ("interim_ms", "103 at ms", "{:.1f}"),
    ("response_start_ms", "200 at ms", "{:.1f}"), ("bytes", "bytes", "{:.0f}"), ("requests", "requests", "{}"),
    ("from_cache", "from cache", "{}"), ("not_modified", "304", "{}"),
    ("pushes_used", "pushes used", "{}"), ("pushes_wasted", "pushes wasted", "{}"),
    ("hints_used", "hints used", "{}"), ("hints_wasted", "hints wasted", "{}"),
    ("gain_vs_h1_rtt", "gain vs h1 (RTT)", "{:+.1f}"), ("gain_vs_off_rtt", "gain vs off (RTT)", "{:+.1f}"),
]


def table_html(rows: list[dict[str, Any]], cols: list[Column]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in cols)
    body = []
    for r in rows:
        cells = "".join(f"<td>{html.escape(fmt.format(r[k]) if r.get(k) is not None else '-')}</td>"
                        for k, _, fmt in cols)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
