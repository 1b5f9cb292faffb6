"""An HTML report for ``bench pageload``: the summary table and one SVG waterfall per mode (the
median run of that mode), one bar per resource: waiting (requested → first byte) in a light
shade, receiving (first byte → done) in the full colour of its kind."""

from __future__ import annotations

import html
import statistics
from pathlib import Path
from typing import Any

from bench.loader import Entry, PageLoad

COLOURS = {"html": "#4c78a8", "css": "#9c27b0", "js": "#f2a900", "font": "#2e7d32", "image": "#00838f",
           "other": "#757575"}
ROW = 18
LABEL_W = 230
PLOT_W = 640


def median_run(loads: list[PageLoad]) -> PageLoad:
    """The run whose page-load time is the median (the lower one for an even count)."""
    ordered = sorted(loads, key=lambda r: r.page_load)
    return ordered[(len(ordered) - 1) // 2]


def waterfall_svg(load: PageLoad, scale_end: float) -> str:
    entries = [e for e in load.entries if e.requested is not None]
    height = ROW * (len(entries) + 2)
    px = PLOT_W / scale_end if scale_end > 0 else 0.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + PLOT_W + 60}" height="{height}" '
             f'font-family="monospace" font-size="11">']
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
    tag = {"push": " [push]", "hint": " [hint]"}.get(e.via, "")
    unused = "" if e.needed else " (unused)"
    label = html.escape(f"{e.path}{tag}{unused}")[:60]
    tip = html.escape(f"{e.path} {e.kind} via {e.via}: requested {start * 1000:.1f} ms, first byte "
                      f"{first * 1000:.1f} ms, done {done * 1000:.1f} ms, {e.nbytes} bytes")
    x0, x1, x2 = LABEL_W + start * px, LABEL_W + first * px, LABEL_W + done * px
    opacity = "1" if e.needed else "0.45"
    return (f'<g opacity="{opacity}"><title>{tip}</title>'
            f'<text x="4" y="{y + 10}" fill="#222">{label}</text>'
            f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="12" fill="{colour}" '
            f'fill-opacity="0.3"/>'
            f'<rect x="{x1:.1f}" y="{y}" width="{max(x2 - x1, 1):.1f}" height="12" fill="{colour}"/></g>')


def write_report(path: Path, results: dict[str, list[PageLoad]], rows: list[dict[str, Any]], *,
                 rtt: float, bits_per_s: float | None, page: str) -> None:
    medians = {m: median_run(loads) for m, loads in results.items() if loads}
    # One time scale for every waterfall so they can be compared by eye.
    scale_end = max((max((e.done or 0.0) for e in r.entries) for r in medians.values()), default=0.0)
    bw = f"{bits_per_s / 1e6:g} Mbit/s" if bits_per_s else "unlimited bandwidth"
    out = ["<!doctype html><html lang=en><meta charset=utf-8>",
           f"<title>pushserve page load {html.escape(page)}</title>",
           "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
           "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
           "td:first-child,th:first-child{text-align:left}</style>",
           f"<h1>Page load of {html.escape(page)}</h1>",
           f"<p>RTT {rtt * 1000:g} ms, {bw}; medians over {len(next(iter(results.values()), []))} runs. "
           "Gains are in round trips (time saved / RTT).</p>", _table(rows),
           "<p>Legend: " + " ".join(f'<span style="color:{c}">■ {k}</span>' for k, c in COLOURS.items())
           + "; light = waiting for the first byte, dark = receiving; faded = pushed or hinted but "
             "never used; red dashes = page load.</p>"]
    for mode, load in medians.items():
        spread = [r.page_load for r in results[mode]]
        out.append(f"<h2>{html.escape(mode)}: {load.page_load * 1000:.1f} ms "
                   f"(median of {len(spread)}: {statistics.median(spread) * 1000:.1f} ms)</h2>")
        out.append(waterfall_svg(load, scale_end))
    out.append("</html>")
    path.write_text("\n".join(out), encoding="utf-8")


def _table(rows: list[dict[str, Any]]) -> str:
    cols = [("mode", "mode", "{}"), ("page_load_ms", "load ms", "{:.1f}"), ("spread_ms", "spread ms", "{:.1f}"),
            ("critical_ms", "critical ms", "{:.1f}"), ("bytes", "bytes", "{:.0f}"), ("requests", "requests", "{}"),
            ("pushes_used", "pushes used", "{}"), ("pushes_wasted", "pushes wasted", "{}"),
            ("hints_used", "hints used", "{}"), ("hints_wasted", "hints wasted", "{}"),
            ("gain_vs_h1_rtt", "gain vs h1 (RTT)", "{:+.1f}"), ("gain_vs_off_rtt", "gain vs off (RTT)", "{:+.1f}")]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in cols)
    body = []
    for r in rows:
        cells = "".join(f"<td>{html.escape(fmt.format(r[k]) if r[k] is not None else '-')}</td>"
                        for k, _, fmt in cols)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
