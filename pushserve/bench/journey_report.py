"""The HTML report of ``pushserve bench --journey``: what was run, a headline per engine (the last
step's LCP in each mode, and each mode against speculation off in the words of its verdict), the
table of every step, a dot plot of every run's LCP per step and row, and every pair of modes
with its intervals.

Each dot plot is ``<svg class="dots" data-step="N">`` with a ``<g class="row" data-row="…">`` per
row holding one ``circle`` per run and one ``line.median``, so a test can count them."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pushserve.bench.journey import Journey, JourneySettings, Row
from pushserve.bench.report import _KIND_CLASS, _STYLE, table_html, verdicts_html

COLUMNS = [("row", "row", "{}"), ("step", "step", "{}"), ("path", "page", "{}"), ("ttfb_ms", "TTFB ms", "{:.1f}"),
           ("fcp_ms", "FCP ms", "{:.1f}"), ("lcp_ms", "LCP ms", "{:.1f}"), ("load_ms", "load ms", "{:.1f}"),
           ("delivered", "how it came (runs)", "{}")]
DEFINITIONS = {
    "row": "the browser, and pushserve's --speculation (103 Early Hints on in every row).",
    "step": "1 = the first page, loaded by navigating to it; then one click per step.",
    "ttfb_ms": "from the step's start (the click; for a prerendered page, its activation) to the page's final "
               "response headers; 0 when they were there before (prefetched early enough, prerendered).",
    "fcp_ms": "First Contentful Paint, from the step's start.",
    "lcp_ms": "Largest Contentful Paint, from the step's start: for a prerendered page, how long after the click "
              "the page was shown whole.",
    "load_ms": "the load event's end, from the step's start (0 for a page loaded in the background before).",
    "delivered": "network; prefetch (Navigation Timing deliveryType navigational-prefetch: the response was "
                 "fetched on hover); prerender (activationStart > 0: rendered on hover, shown on the click); cache.",
}
_COLOURS = {"off": "#757575", "prefetch": "#0b57a8", "prerender": "#0a6b2d"}
_EXTRA_STYLE = (".dots text{font:12px system-ui,sans-serif}.dots .median{stroke:#222;stroke-width:2}"
                "ul.headline li{margin:.3em 0}")


def dots_svg(step: int, done: dict[Row, list[Journey]], scale_ms: float) -> str:
    """Every run's LCP of one step, a line of dots per row, and the median as a bar."""
    label_w, plot_w, row_h = 200, 560, 26
    rows = [(r, [j.steps[step - 1].lcp for j in js]) for r, js in done.items() if js]
    height = row_h * len(rows) + 30
    tick = _tick(scale_ms)
    scale_ms = tick * max(1, -(-scale_ms // tick))  # up to a whole tick: the axis ends where the plot does
    px = plot_w / scale_ms
    out = [f'<svg class="dots" data-step="{step}" width="{label_w + plot_w + 90}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for i, (row, values) in enumerate(rows):
        y = 18 + i * row_h
        colour = _COLOURS.get(row.mode, "#444")
        vals = sorted(v * 1000 for v in values if v is not None)
        out.append(f'<g class="row" data-row="{html.escape(row.label)}"><text x="0" y="{y + 4}">'
                   f"{html.escape(row.label)}</text>")
        out += [f'<circle cx="{label_w + v * px:.1f}" cy="{y}" r="4" fill="{colour}" fill-opacity=".45"/>'
                for v in vals]
        if vals:
            mid = vals[(len(vals) - 1) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
            out.append(f'<line class="median" x1="{label_w + mid * px:.1f}" x2="{label_w + mid * px:.1f}" '
                       f'y1="{y - 9}" y2="{y + 9}"/><text x="{label_w + plot_w + 12}" y="{y + 4}" '
                       f'fill="{colour}">{mid:.0f} ms</text>')
        out.append("</g>")
    axis_y = height - 8
    ticks = range(0, int(scale_ms) + 1, tick)
    out += [f'<text x="{label_w + t * px:.1f}" y="{axis_y}" text-anchor="middle">{t}</text>' for t in ticks]
    out.append("</svg>")
    return "".join(out)


def _tick(scale_ms: float) -> int:
    for step in (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if scale_ms / step <= 10:
            return step
    return 10000


def headline_html(rows: list[dict[str, Any]], found: Sequence[dict[str, Any]]) -> str:
    items = []
    last = max((r["step"] for r in rows), default=0)
    for r in rows:
        if r["step"] == last and r["lcp_ms"] is not None:
            items.append(f"<li><b>{html.escape(r['row'])}</b>: step {last} ({html.escape(r['path'])}) LCP "
                         f"{r['lcp_ms']:.1f} ms after the click (median of {r['runs']}; "
                         f"{html.escape(r['delivered'])})</li>")
    for v in found:
        if v["step"] == last and v["metric"].endswith(" LCP") and v["a"].endswith(" off"):
            items.append(f'<li class="verdict {v["kind"]}"><span class="{_KIND_CLASS[v["kind"]]}">'
                         f"{html.escape(v['words'])}</span></li>")
    return '<ul class="headline">' + "".join(items) + "</ul>" if items else ""


def write_report(path: Path, done: dict[Row, list[Journey]], rows: list[dict[str, Any]], settings: JourneySettings,
                 found: Sequence[dict[str, Any]], network: str = "") -> None:
    steps = max((r["step"] for r in rows), default=0)
    scale = max((s.lcp or 0.0) * 1000 for js in done.values() for j in js for s in j.steps) if rows else 0.0
    out = ["<!doctype html><html lang=en><meta charset=utf-8>",
           f"<title>pushserve journey {html.escape(' → '.join(settings.paths))}</title>",
           f"<style>{_STYLE}{_EXTRA_STYLE}</style>",
           f"<h1>Journey {html.escape(' → '.join(settings.paths))}</h1>",
           f"<p>{html.escape(settings.describe())}.</p>"]
    if network:
        out.append(f'<p class="network">Network: {html.escape(network)}.</p>')
    out += ["<h2>Headline</h2>", headline_html(rows, found),
            '<p class="note">A difference is one whose 95% bootstrap interval (difference of medians, runs paired '
            "by round) excludes zero; anything else is reported as no measurable difference.</p>",
            "<h2>Every step</h2>", table_html(rows, COLUMNS, DEFINITIONS),
            '<dl class="defs">' + "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(DEFINITIONS[key])}</dd>"
                                          for key, label, _ in COLUMNS if key in DEFINITIONS) + "</dl>",
            "<h2>LCP of every run, per step</h2>",
            '<p class="note">A dot per run, the bar at the median; ms from the step\'s start (the click, or a '
            "prerendered page's activation).</p>"]
    for step in range(1, steps + 1):
        page = next(r["path"] for r in rows if r["step"] == step)
        out += [f"<h3>Step {step}: {html.escape(page)}</h3>", dots_svg(step, done, scale)]
    if found:
        out += ["<h2>Every pair of modes</h2>", verdicts_html(found)]
    out.append("</html>")
    path.write_text("\n".join(out), encoding="utf-8")
