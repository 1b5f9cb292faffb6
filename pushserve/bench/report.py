"""An HTML report for ``pushserve bench`` that explains itself: which network shaped the loads,
a headline of verdicts (a difference only where its 95% interval excludes zero, noise called
noise), the summary tables with each column defined under them, the browsers side by side per
mode (paint metrics, bytes, wasted hints), every pair of modes with its intervals, the instrument
checked against itself (Chromium with and without DevTools Network events; the HAR against
Resource Timing), the filmstrips of Chromium's median loads, and one SVG waterfall per row (the
median run of that row), one bar per resource: connect and TLS (first request on a connection),
waiting (requested → first byte) in a light shade, receiving (first byte → done) in the full
colour of its kind — placed when the network moved the bytes.

Each waterfall is ``<svg class="waterfall" data-row="...">`` and each bar a ``<g class="bar">``
holding one ``rect.wait`` and one ``rect.recv`` (and ``rect.connect`` + ``rect.tls`` where the
request opened its connection), so a test (or a reader with devtools) can count bars per row."""

from __future__ import annotations

import html
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pushserve.bench.filmstrip import filmstrips_html
from pushserve.bench.loader import Entry, PageLoad
from pushserve.bench.series import BROWSERS, PERCENTILE_RUNS, Series, Settings, median_run

COLOURS = {"html": "#4c78a8", "css": "#9c27b0", "js": "#f2a900", "font": "#2e7d32", "image": "#00838f",
           "other": "#757575"}
CONNECT_COLOUR, TLS_COLOUR = "#bdbdbd", "#8d6e63"
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
    # A labelled grid line every round step, at most about 16 of them.
    step = next((x for x in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0) if scale_end / x <= 16), 10.0)
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


def _phases(e: Entry, y: int, px: float) -> str:
    """connect (TCP, as the proxy models it) and TLS rects before the request, if it opened its connection."""
    if e.connect_start is None or e.tls_start is None or e.tls_done is None:
        return ""
    x0, x1, x2 = (LABEL_W + t * px for t in (e.connect_start, e.tls_start, e.tls_done))
    return (f'<rect class="connect" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 0.5):.1f}" height="6" '
            f'fill="{CONNECT_COLOUR}"/>'
            f'<rect class="tls" x="{x1:.1f}" y="{y + 3}" width="{max(x2 - x1, 0.5):.1f}" height="6" '
            f'fill="{TLS_COLOUR}"/>')


def _bar(e: Entry, y: int, px: float) -> str:
    start = e.requested or 0.0
    first = e.first_byte if e.first_byte is not None else start
    done = e.done if e.done is not None else first
    colour = COLOURS.get(e.kind, COLOURS["other"])
    status = " 304" if e.status == 304 else ""
    unused = "" if e.needed else " (unused)"
    label = html.escape(f"{e.path}{_TAGS.get(e.via, '')}{status}{unused}")[:64]
    conn = (f"connect {e.connect_start * 1000:.1f}, TLS {e.tls_start * 1000:.1f}-{e.tls_done * 1000:.1f} ms, "
            if e.connect_start is not None and e.tls_start is not None and e.tls_done is not None else "")
    tip = html.escape(f"{e.path} {e.kind} via {e.via}{status}: {conn}requested {start * 1000:.1f} ms, first byte "
                      f"{first * 1000:.1f} ms, done {done * 1000:.1f} ms, {e.nbytes} bytes")
    x0, x1, x2 = LABEL_W + start * px, LABEL_W + first * px, LABEL_W + done * px
    opacity = "1" if e.needed else "0.45"
    return (f'<g class="bar" data-path="{html.escape(e.path)}" opacity="{opacity}"><title>{tip}</title>'
            f'<text x="4" y="{y + 10}" fill="#222">{label}</text>{_phases(e, y, px)}'
            f'<rect class="wait" x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="12" fill="{colour}" '
            f'fill-opacity="0.3"/>'
            f'<rect class="recv" x="{x1:.1f}" y="{y}" width="{max(x2 - x1, 1):.1f}" height="12" fill="{colour}"/></g>')


_STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}"
          "table{border-collapse:collapse;margin:1em 0}"
          "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}th{cursor:help}"
          "td small{white-space:nowrap}"
          "td:first-child,th:first-child{text-align:left}h2{margin-top:1.6em}.note{color:#555;max-width:62em}"
          ".headline li{margin:.2em 0}.good{color:#1b5e20}.bad{color:#b71c1c}.dim{color:#777}"
          "dl.defs{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;max-width:70em;color:#444;"
          "font-size:13px}dl.defs dt{font-weight:600}dl.defs dd{margin:0}"
          ".filmstrip{margin:.6em 0}.strip-label{font-weight:600;margin:.2em 0}.cells{display:flex;gap:4px;"
          "overflow-x:auto}.cell{margin:0;text-align:center;font-size:11px;color:#555}"
          ".cell img,.cell .blank{display:block;width:96px;border:2px solid #eee;background:#fff}"
          ".cell .blank{height:60px}.cell.changed img{border-color:#f2a900}")

PUSH_NOTE = ("No current browser accepts HTTP/2 server push (Chrome and Edge removed it in version 106, Firefox "
             "in 132; Safari never used it): the h2-push row is what nghttp-like clients (push enabled) see, "
             "not what a browser would.")


def _rtts(ms: float, rtt: float) -> str:
    return f"{ms / (rtt * 1000):+.1f} RTT" if rtt else ""


_KIND_CLASS = {"faster": "good", "slower": "bad", "noise": "dim", "too few runs": "dim"}


# The order modes are compared in (pageload.MODES; no import: the report reads rows, not runs).
MODE_ORDER = ("h1", "h2-off", "h2-hints", "h2-push", "h3-off", "h3-hints")
MODE_WORDS = {"h1": "HTTP/1.1", "h2-off": "HTTP/2, nothing announced", "h2-hints": "HTTP/2, 103 Early Hints",
              "h2-push": "HTTP/2, server push", "h3-off": "HTTP/3, nothing announced",
              "h3-hints": "HTTP/3, 103 Early Hints"}


def headline_html(rows: list[dict[str, Any]], verdicts: Sequence[dict[str, Any]], settings: Settings) -> str:
    """Per engine (and server): each mode's main metric against its baseline — h2-off where it
    ran, else the first mode it ran (h2-hints in an h2-hints,h3-hints run) — in the words of its
    verdict: green or red only where the interval excludes zero."""
    items = []
    cold = [r for r in rows if r["visit"] == "cold"]
    ran: dict[tuple[str, str], set[str]] = {}
    for r in cold:
        ran.setdefault((r["target"], r.get("net", "")), set()).add(r["mode"])
    baseline = {group: next((m for m in ("h2-off", *MODE_ORDER) if m in modes), "h2-off")
                for group, modes in ran.items()}
    for r in cold:
        base = baseline[(r["target"], r.get("net", ""))]
        if r["mode"] != base or r["target"] == "chromium-control":  # the control is a check, below
            continue
        main = "LCP" if r.get("lcp_ms") is not None else "load"
        value = r["lcp_ms"] if main == "LCP" else r["page_load_ms"]
        items.append(f"<li><b>{html.escape(r['row'])}</b>: {main} {value:.1f} ms (median of {r['runs']}) "
                     f"<span class=dim>(the baseline: {html.escape(MODE_WORDS.get(base, base))})</span></li>")
    for v in verdicts:
        if v["modes"][0] != baseline.get((v["target"], v.get("net", "")), "h2-off") or \
                v["metric"] not in ("LCP", "load") or v["target"] == "chromium-control":
            continue
        if v["metric"] == "load" and v["target"] in BROWSERS:
            continue  # browsers are judged on LCP here; their load verdict is in the table below
        items.append(f'<li class="verdict {v["kind"]}"><span class="{_KIND_CLASS[v["kind"]]}">'
                     f"{html.escape(v['words'])}</span></li>")
    return '<ul class="headline">' + "".join(items) + "</ul>" if items else ""


def verdicts_html(verdicts: Sequence[dict[str, Any]]) -> str:
    """Every pair of modes, per engine and metric: differences of medians and p75 with intervals."""
    if not verdicts:
        return ""
    head = ("<tr><th>engine</th><th>metric</th><th>A</th><th>B</th><th title=\"median(B) - median(A)\">"
            "median B - A ms [95%]</th><th>p75 B - A ms [95%]</th><th>runs</th><th>verdict</th></tr>")
    body = []
    for v in verdicts:
        cls = _KIND_CLASS[v["kind"]]
        body.append(f'<tr class="verdict {v["kind"]}"><td>{html.escape(v["target"])}</td>'
                    f"<td>{html.escape(v['metric'])}</td><td>{html.escape(v['a'])}</td><td>{html.escape(v['b'])}</td>"
                    f"<td>{v['diff_ms']:+.1f} [{v['lo_ms']:+.1f}, {v['hi_ms']:+.1f}]</td>"
                    f"<td>{v['p75_diff_ms']:+.1f} [{v['p75_lo_ms']:+.1f}, {v['p75_hi_ms']:+.1f}]</td>"
                    f"<td>{v['runs']}</td><td class=\"{cls}\">{html.escape(v['kind'])}</td></tr>")
    return f'<table class="verdicts">{head}{"".join(body)}</table>'


# A check's "agrees" → (class, word): None is too few runs to tell.
_CHECK_WORDS = {True: ("good", "agrees"), False: ("bad", "differs"), None: ("dim", "too few runs")}


def checks_html(checks: Sequence[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """Chromium against its control run, and the HAR against Resource Timing."""
    out = []
    if checks:
        body = "".join(
            f'<tr class="check"><td>{html.escape(c["mode"])}</td><td>{html.escape(c["metric"])}</td>'
            f"<td>{c['control_ms']:.1f}</td><td>{c['instrumented_ms']:.1f}</td>"
            f"<td>{c['diff_ms']:+.1f} [{c['lo_ms']:+.1f}, {c['hi_ms']:+.1f}]</td>"
            f'<td class="{_CHECK_WORDS[c["agrees"]][0]}">{_CHECK_WORDS[c["agrees"]][1]}</td></tr>'
            for c in checks)
        out.append("<table class=\"checks\"><tr><th>mode</th><th>metric</th><th>control ms (median)</th>"
                   "<th>instrumented ms (median)</th><th>instrumented - control [95%]</th><th></th></tr>"
                   f"{body}</table>")
        fetch = [c for c in checks if c["metric"] == "first fetch on the 103"]
        for c in fetch:
            said = {True: "does not change measurably", None: "may change (too few runs to tell)",
                    False: f"changes by {c['diff_ms']:+.1f} ms [{c['lo_ms']:+.1f}, {c['hi_ms']:+.1f}]"}[c["agrees"]]
            out.append(f'<p class="finding">Attaching DevTools Network events {said} when Chromium starts '
                       f"fetching what the 103 names ({c['mode']}: {c['control_ms']:.1f} ms after the 103 without, "
                       f"{c['instrumented_ms']:.1f} ms with; from the NetLog, which both runs keep).</p>")
    # Whether Chromium fetches on the 103 at all, with and without the Network domain.
    early = {r["row"]: r["early_fetched"] for r in rows if r["mode"].endswith("-hints") and "early_fetched" in r}
    for row, n in early.items():
        control = early.get(row.replace("chromium ", "chromium-control ", 1)) if row.startswith("chromium ") else None
        if control is not None:
            out.append(f'<p class="finding">Fetched on the 103 (median of the runs): {n} resources with DevTools '
                       f"Network events and the screencast attached ({html.escape(row)}), {control} without (the "
                       "control row).</p>")
    agree = [(r["row"], r.get("hint_disagreements") or []) for r in rows if r.get("hint_disagreements") is not None
             and r["mode"].endswith("-hints")]
    for row, paths in agree:
        if paths:
            out.append(f"<p class=\"finding\"><b>{html.escape(row)}</b>: the network and Resource Timing disagree "
                       f"about {html.escape(', '.join(paths))} (fetched on the 103 by the network's account, not "
                       "<code>initiatorType \"early-hints\"</code> in Resource Timing, or the other way round; "
                       "k/n = runs).</p>")
        else:
            out.append(f"<p class=\"finding\"><b>{html.escape(row)}</b>: every resource the network fetched on the "
                       "103 is <code>initiatorType \"early-hints\"</code> in Resource Timing, and nothing else, in "
                       "every run (the HAR's <code>_earlyHint</code> entries are those fetches).</p>")
    return "\n".join(out)


def definitions_html(cols: list[Column], defs: dict[str, str]) -> str:
    return '<dl class="defs">' + "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(defs[key])}</dd>" for key, label, _ in cols if key in defs
    ) + "</dl>"


def _paint_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["target"] in BROWSERS]


# Paint-table column → the percentile prefix in the summary rows (pageload._percentiles).
_PERCENTILE_OF = {"response_start_ms": "ttfb", "fcp_ms": "fcp", "lcp_ms": "lcp", "speed_index_ms": "speed_index",
                  "page_load_ms": "load"}


def _compact(counted: list[str], keep: int = 3) -> str:
    """``path (k/n)`` items, the rarest beyond the first ``keep`` summed up (one odd run that
    disagreed about everything should not take the column's width)."""
    if len(counted) <= keep + 1:
        return ", ".join(counted)
    return ", ".join(counted[:keep]) + f" and {len(counted) - keep} more, in fewer runs"


def paint_cells(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paint table's rows: each metric's median, followed by its p75 / p90 where the run
    count gave them (one cell per metric keeps the table narrow)."""
    out = []
    for r in rows:
        cells = dict(r)
        wasted = r.get("wasted_paths")
        cells["wasted"] = ("not observed" if wasted is None else ", ".join(wasted) or "none")
        if r.get("said_unused_paths"):
            cells["wasted"] += f" (said unused, but the page uses: {', '.join(r['said_unused_paths'])})"
        cells["disagree"] = _compact(r.get("hint_disagreements") or []) or "none"
        for key, pre in _PERCENTILE_OF.items():
            if r.get(key) is not None and f"{pre}_p75_ms" in r:
                cells[key] = f"{r[key]:.1f}\np75 {r[f'{pre}_p75_ms']:.0f} · p90 {r[f'{pre}_p90_ms']:.0f}"
            elif r.get(key) is not None:
                cells[key] = f"{r[key]:.1f}"
        out.append(cells)
    return out


def write_report(path: Path, all_series: Sequence[Series], rows: list[dict[str, Any]], *, settings: Settings,
                 sections: Sequence[tuple[str, str]] = (), verdicts: Sequence[dict[str, Any]] = (),
                 checks: Sequence[dict[str, Any]] = (), networks: dict[str, str] | None = None,
                 between: Sequence[dict[str, Any]] = ()) -> None:
    """``sections``: extra (title, HTML) parts appended after the waterfalls, e.g. throughput;
    ``verdicts``, ``checks`` and ``between``: pageload.verdicts, .instrument_checks and
    .network_checks; ``networks``: what shaped the loads (by the rows' ``@name``, "" for one)."""
    medians = [(s.label, median_run(s.loads), s.loads) for s in all_series if s.loads]
    # One time scale for every waterfall so they can be compared by eye.
    scale_end = max((max((e.done or 0.0) for e in load.entries) for _, load, _ in medians), default=0.0)
    scale_end = max([scale_end, *(load.page_load for _, load, _ in medians)])
    loader_rows = [r for r in rows if r["target"] not in BROWSERS]

    out = ["<!doctype html><html lang=en><meta charset=utf-8>",
           f"<title>pushserve page load {html.escape(settings.page)}</title>", f"<style>{_STYLE}</style>",
           f"<h1>Page load of {html.escape(settings.page)}</h1>",
           f"<p>{html.escape(settings.describe())}.</p>"]
    for name, described in (networks or {}).items():
        label = f"Network @{name}" if name else "Network"
        out.append(f'<p class="network">{html.escape(label)}: {html.escape(described)}.</p>')
    out += ["<h2>Headline</h2>", headline_html(rows, verdicts, settings),
            '<p class="note">A difference is one whose 95% bootstrap interval (difference of medians, runs '
            "paired by round) excludes zero; anything else is reported as no measurable difference, with the runs "
            "that would resolve it.</p>"]
    if any(r["mode"] == "h2-push" for r in rows):
        out.append(f'<p class="note">{html.escape(PUSH_NOTE)}</p>')
    if loader_rows:
        out += ["<h2>The loader's rows</h2>", table_html(loader_rows, PAGELOAD_COLUMNS, DEFINITIONS),
                definitions_html(PAGELOAD_COLUMNS, DEFINITIONS),
                '<p class="note">Rows: h1 = HTTP/1.1 (6 connections); h2-off = HTTP/2, nothing announced; '
                "h2-hints = 103 Early Hints; h2-push = server push (client allows it). <em>warm</em> = a returning "
                "visit with the cache and cookie of the cold load; <em>warm-nocookie</em> = same cache, push cookie "
                "dropped. These are the bench's browser-like loader (it parses, it does not render).</p>"]
    paint = _paint_rows(rows)
    if paint:
        percentiles = any("lcp_p75_ms" in r for r in paint)
        out += ["<h2>Browsers side by side (medians" + (", p75 and p90" if percentiles else "") + ")</h2>",
                table_html(paint_cells(paint), PAINT_COLUMNS, DEFINITIONS),
                definitions_html(PAINT_COLUMNS, DEFINITIONS),
                '<p class="note">p75 / p90: the 75th and 90th percentiles over the runs, shown from '
                f"{PERCENTILE_RUNS} runs on (fewer make them meaningless). chromium rows record a screencast (for "
                "the filmstrip) and DevTools Network events (for the HAR); chromium-control rows record neither "
                "(page-side timings, the NetLog and the console only). firefox rows: headless Firefox over "
                "WebDriver BiDi, each load in a fresh user context. Speed Index needs a screencast: Chromium's "
                "instrumented rows only.</p>"]
        if any(r["mode"].startswith("h3") for r in paint):
            out.append('<p class="note">h3 rows: the same server as the h2 rows, over QUIC from the first request '
                       "(Chromium: <code>--origin-to-force-quic-on</code>, the run's CA in the NSS database of its "
                       "HOME; Firefox: a browser of its own with <code>network.http.http3.alt-svc-mapping-for-"
                       "testing</code>, its h2 rows' browser has HTTP/3 off). Every entry of every browser load "
                       "came over its row's protocol (<code>nextHopProtocol</code>): the run stops otherwise.</p>")
    if verdicts:
        out += ["<h2>Every pair of modes</h2>", verdicts_html(verdicts)]
    if between:
        out += ["<h2>The networks side by side</h2>",
                '<p class="note">The same rows loaded through each network in the same rounds (interleaved, so '
                "the machine's drift is shared): B - A per engine, mode and metric, with its 95% interval.</p>",
                verdicts_html(between)]
    checked = checks_html(checks, rows)
    if checked:
        out += ["<h2>The instrument checked against itself</h2>", checked]
    strips = [(label, load._frames, load.page_load * 1000, load.speed_index,
               statistics.median(r.speed_index for r in loads if r.speed_index is not None)
               if any(r.speed_index is not None for r in loads) else None)
              for label, load, loads in medians if load._frames]
    if strips:
        out += ["<h2>Filmstrip: Chromium's median loads</h2>",
                '<p class="note">What the screen showed, from Chromium\'s own screencast (its frame '
                "timestamps), at the times under each frame after navigation start; an orange frame changed "
                "since the one before. Rows share the time axis. Each strip is the run with the median load time; "
                "its own Speed Index is given beside the median over all runs (the table's figure).</p>",
                filmstrips_html(strips)]
    out.append("<h2>Waterfalls (median run of each row)</h2>")
    out.append("<p>Legend: " + " ".join(f'<span style="color:{c}">■ {k}</span>' for k, c in COLOURS.items())
               + f'; <span style="color:{CONNECT_COLOUR}">▬ connect</span> (TCP handshake) and '
                 f'<span style="color:{TLS_COLOUR}">▬ TLS</span> before the request that opened '
                 "a connection; light = waiting for the first byte, dark = receiving, when the network moved the "
                 "bytes (for browsers: from their network events, so a hinted resource sits where the 103 had it "
                 "fetched); faded = pushed or hinted but never used; red dashes = page load; green dots = the 103 "
                 "arrived.</p>")
    for label, load, loads in medians:
        times = [r.page_load for r in loads]
        out.append(f"<h3>{html.escape(label)}: {load.page_load * 1000:.1f} ms "
                   f"(median of {len(times)}: {statistics.median(times) * 1000:.1f} ms; {load.protocol})</h3>")
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


# Metric cells come preformatted by paint_cells (median, then p75/p90 when there are enough runs).
PAINT_COLUMNS: list[Column] = [
    ("row", "row", "{}"), ("interim_ms", "103 at ms", "{:.1f}"), ("response_start_ms", "TTFB ms", "{}"),
    ("fcp_ms", "FCP ms", "{}"), ("lcp_ms", "LCP ms", "{}"), ("speed_index_ms", "Speed Index ms", "{}"),
    ("page_load_ms", "loadEventEnd ms", "{}"), ("bytes", "bytes", "{:.0f}"),
    ("early_fetched", "fetched on the 103", "{}"), ("hint_fetch_ms", "first hint fetch ms", "{:.1f}"),
    ("wasted", "wasted hints", "{}"), ("disagree", "network vs RT", "{}"),
]

DEFINITIONS = {
    "row": "who loaded the page and how (see Rows below).",
    "page_load_ms": "navigation start (before the first connection) to the last resource the page needs being "
                    "complete; Chromium: loadEventEnd.",
    "spread_ms": "max - min of the runs' load times.",
    "critical_ms": "critical: when the last render-blocking resource (HTML, screen CSS, scripts, fonts) was "
                   "complete; roughly when the page can first render.",
    "interim_ms": "when the page's 103 Early Hints arrived.",
    "response_start_ms": "TTFB: when the page's final (200) response headers arrived; not the 103's (browsers: "
                         "finalResponseHeadersStart).",
    "bytes": "bytes received: bodies for the loader (0 on a warm visit that only got a 304); browsers: response "
             "headers and encoded bodies of every fetch the network made, early-hint fetches included (Chromium: "
             "its NetLog; Firefox: BiDi bytesReceived).",
    "early_fetched": "resources the network fetched before the page's final headers arrived: on the 103.",
    "hint_fetch_ms": "from the 103's arrival to the first fetch the browser made on it.",
    "wasted": "hinted resources the browser said it preloaded and did not use (Chromium: 3 s after the load event; "
              "Firefox: 10 s after the preload started, its own timer), with the runs it said so in (k/n); a claim "
              "the page contradicts (it uses the resource) is named apart in brackets.",
    "disagree": "resources the network fetched on the 103 that Resource Timing does not call initiatorType "
                "'early-hints', or the other way round (k/n runs).",
    "requests": "requests sent (pushes and cache hits are not requests).",
    "from_cache": "resources used from the cache with no request.",
    "not_modified": "resources revalidated with a 304.",
    "pushes_used": "pushed resources the page then used.", "pushes_wasted": "pushed resources it never used.",
    "hints_used": "resources requested because of a 103 or a preload Link, that the page used.",
    "hints_wasted": "hinted resources it never used.",
    "gain_vs_h1_rtt": "gain: (median load of the h1 row of the same server and visit - this row's) / RTT; "
                      "+1.0 = one round trip sooner.",
    "gain_vs_off_rtt": "gain: the same against the h2-off row; the figure that carries over to other RTTs.",
    "fcp_ms": "First Contentful Paint: the first text or image painted (Paint Timing).",
    "lcp_ms": "Largest Contentful Paint: when the largest text block or image of the first screen was painted "
              "(the last largest-contentful-paint entry).",
    "speed_index_ms": "Speed Index: the area above the visual-progress curve of the median run's filmstrip, "
                      "integral of (1 - visual completeness) dt; lower = the page filled in sooner.",
}


def table_html(rows: list[dict[str, Any]], cols: list[Column], defs: dict[str, str] | None = None) -> str:
    """A table of ``rows``; a column's definition from ``defs`` becomes its header's tooltip."""
    def th(key: str, label: str) -> str:
        tip = f' title="{html.escape(defs[key])}"' if defs and key in defs else ""
        return f"<th{tip}>{html.escape(label)}</th>"

    def td(text: str) -> str:
        # A second line (percentiles under a median) is set small beneath the first.
        first, _, second = text.partition("\n")
        more = f'<br><small class="dim">{html.escape(second)}</small>' if second else ""
        return f"<td>{html.escape(first)}{more}</td>"

    head = "".join(th(key, label) for key, label, _ in cols)
    body = []
    for r in rows:
        cells = "".join(td(fmt.format(r[k]) if r.get(k) is not None else "-") for k, _, fmt in cols)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
