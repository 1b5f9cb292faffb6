"""The throughput summary (``benchmarks/throughput.py``) as Markdown for stdout and the README, and
as HTML for ``python -m benchmarks pageload --compare``: one column per server, one row per load
and per memory figure, each cell the median and its ratio to pushserve."""

from __future__ import annotations

import html
from typing import Any

KIB_PER_MIB = 1024
NONE = "\u2013"  # en dash: no figure
TIMES = "\u00d7"
MEMORY_ROWS = (("rss_kib", "RSS after the runs, all processes, MiB"),
               ("pss_kib", "PSS after the runs, all processes, MiB"),
               ("uss_kib", "USS (private) after the runs, all processes, MiB"))


def _figure(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == "req/s" or value >= 100 else f"{value:,.1f}"


def _cell(r: dict[str, Any], unit: str, baseline: bool) -> str:
    if r["errors"]:
        return f"FAILED ({len(r['errors'])})"
    if r["median"] is None:
        return NONE
    text = _figure(r["median"], unit)
    return text if baseline or r["ratio"] is None else f"{text} ({r['ratio']:.2f}{TIMES})"


def _cpu_cell(r: dict[str, Any], baseline: bool) -> str:
    cpu = r.get("cpu_median")
    if r["errors"] or cpu is None:
        return NONE
    text = f"{cpu:,.0f}" if cpu >= 100 else f"{cpu:,.1f}"
    ratio = r.get("cpu_ratio")
    return text if baseline or ratio is None else f"{text} ({ratio:.2f}{TIMES})"


def _memory_cell(m: dict[str, Any] | None, key: str, base: dict[str, Any] | None, baseline: bool) -> str:
    if m is None:
        return NONE
    if "error" in m:
        return "FAILED"
    text = f"{m[key] / KIB_PER_MIB:.1f}"
    if not baseline and base and "error" not in base and base[key]:
        text += f" ({m[key] / base[key]:.2f}{TIMES})"
    return text


def grid(s: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(column headings, rows): the table of the issue, servers as columns."""
    names = [srv["name"] for srv in s["servers"]]
    head = ["", *(srv["label"] for srv in s["servers"])]
    by_cell = {(r["server"], r["load"]): r for r in s["results"]}
    rows = []
    for ld in s["loads"]:
        rows.append([ld["label"], *(_cell(by_cell[(n, ld["key"])], ld["unit"], n == s["baseline"])
                                    for n in names)])
    for ld in s["loads"]:
        # What each server spent per request: on a shared machine the rates move with the others'
        # load, this much less (older summaries have no such figures).
        cells = [by_cell[(n, ld["key"])] for n in names]
        if any(c.get("cpu_median") is not None for c in cells):
            rows.append([f"server CPU µs per request, {ld['label'].split(' req/s')[0].split(', MiB/s')[0]}",
                         *(_cpu_cell(c, n == s["baseline"]) for c, n in zip(cells, names, strict=True))])
    base = s["memory"].get(s["baseline"])
    for key, label in MEMORY_ROWS:
        rows.append([label, *(_memory_cell(s["memory"].get(n), key, base, n == s["baseline"]) for n in names)])
    rows.append(["processes (main + descendants)",
                 *(str(len(s["memory"].get(n, {}).get("processes", []))) for n in names)])
    return head, rows


def _md_table(head: list[str], rows: list[list[str]], align: str = "---:") -> list[str]:
    return ["| " + " | ".join(head) + " |", "|---|" + "|".join([align] * (len(head) - 1)) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def _preamble(s: dict[str, Any]) -> str:
    files = ", ".join(f"`{f}` {n:,} B" for f, n in s["files"].items())
    pin = (f"server pinned to CPU {s['server_cpu']}, clients to CPU {s['client_cpu']}" if s["pinned"]
           else "not pinned (taskset or a second CPU missing)")
    base = next((srv["label"] for srv in s["servers"] if srv["name"] == s["baseline"]), None)
    ratio = f"(1.23{TIMES}) = ratio to {base}" if base else "no pushserve column, no ratios"
    m = s["machine"]
    load = " \u2192 ".join(f"{x:.1f}" for x in m["load_average_1min"])
    return (f"Commit {s['commit'] or '?'}, {s['date']}, {m['cpus']} CPUs, Python {m['python']}, "
            f"1-min load average {load} (start \u2192 end), {m['seconds']} s; files {files}; "
            f"medians of {s['repeat']} runs "
            f"(h2load runs sized to last ~{s['duration_s']} s, at most {s['max_requests']:,} requests; "
            f"wrk {s['duration_s']} s); {pin}; {ratio}.")


def _short(cmdline: str, width: int = 60) -> str:
    # Temp paths and long option lists say little; the program and its first words say the role.
    return cmdline if len(cmdline) <= width else cmdline[: width - 1] + "\u2026"


def markdown(s: dict[str, Any]) -> str:
    head, rows = grid(s)
    out = [_preamble(s), "", *_md_table(head, rows), ""]
    label = {srv["name"]: srv["label"] for srv in s["servers"]}
    unit = {ld["key"]: ld["unit"] for ld in s["loads"]}
    out += ["Every run (h2load requests per run in the n column):", ""]
    out += _md_table(["server", "load", "n", "runs", "median"], [
        [label[r["server"]], r["load"], f"{r['requests']:,}" if r["requests"] else NONE,
         ", ".join(_figure(x, unit[r["load"]]) for x in r["runs"]) or NONE,
         _figure(r["median"], unit[r["load"]]) if r["median"] is not None else NONE]
        for r in s["results"]], "---")
    out += ["", "Memory per process after the runs (MiB; main = the process the harness started):", ""]
    proc_rows = []
    for name, m in s["memory"].items():
        procs = m.get("processes", [])
        for p in procs:
            role = "main" if p is procs[0] else f"child of {p['ppid']}"
            cmd = "forked, same command" if p is not procs[0] and p["cmdline"] == procs[0]["cmdline"] \
                else _short(p["cmdline"])
            proc_rows.append([label[name], str(p["pid"]), role, f"`{cmd}`",
                              *(f"{p[k] / KIB_PER_MIB:.1f}" for k in ("rss_kib", "pss_kib", "uss_kib"))])
    out += _md_table(["server", "pid", "process", "command", "RSS", "PSS", "USS"], proc_rows, "---")
    failures = [f"- {label[r['server']]} {r['load']}: {e}" for r in s["results"] for e in r["errors"]]
    failures += [f"- {label[n]} memory: {m['error']}" for n, m in s["memory"].items() if "error" in m]
    failures += [f"- {n} not started: {why}" for n, why in s["skipped"].items()]
    if failures:
        out += ["", "Failures (no figure is given for these):", "", *failures]
    return "\n".join(out)


def html_table(s: dict[str, Any]) -> str:
    """The same grid for the page-load report's HTML."""
    head, rows = grid(s)
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<p>{html.escape(_preamble(s))}</p><table><tr>{th}</tr>{body}</table>"
