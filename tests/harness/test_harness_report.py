"""The throughput table: a cell with a failed run shows the failure, never a figure; ratios are to
pushserve; memory rows sum every process.  Built through the harness's own summary code from
cells as a run fills them (no load is run here)."""

from __future__ import annotations

from benchmarks import throughput
from benchmarks.memory import ProcessMemory
from benchmarks.throughput_report import markdown

MIB = 1024  # KiB


def _summary() -> dict[str, object]:
    todo = throughput.entries(["pushserve", "nginx"], [1, 4])
    cells = {(e.name, ld.key): throughput.Cell(e.name, ld.key, 1000) for e in todo for ld in throughput.LOADS}
    for (name, _load), cell in cells.items():
        cell.runs = {"pushserve": [90.0, 100.0, 110.0], "pushserve-x4": [150.0, 160.0, 170.0],
                     "nginx": [400.0, 500.0, 600.0]}[name]
        cell.cpu_us = {"pushserve": [20.0, 30.0, 25.0], "pushserve-x4": [30.0, 30.0, 30.0],
                       "nginx": [10.0, 12.0, 11.0]}[name]
    # One bad run of nginx on the 1 MiB load: that cell must not show a median.
    cells[("nginx", "h2_1mib")].errors.append("run 2: h2load ...: 3 of 40 answers were 2xx")
    mem: dict[str, list[ProcessMemory] | str] = {
        "pushserve": [ProcessMemory(10, 1, "python", "python -m pushserve", 40 * MIB, 16 * MIB, 8 * MIB),
                      ProcessMemory(11, 10, "python", "python -m pushserve", 44 * MIB, 28 * MIB, 20 * MIB)],
        "pushserve-x4": "process 12 is gone",
        "nginx": [ProcessMemory(20, 1, "nginx", "nginx: master process", 8 * MIB, 2 * MIB, 1 * MIB)],
    }
    bodies = {ld.key: 100 if ld.file == throughput.TINY else throughput.LARGE_BYTES for ld in throughput.LOADS}
    machine = {"cpus": 2, "python": "3.11.7", "seconds": 1, "load_average_1min": [1.0, 1.0]}
    return throughput._summary(todo, cells, mem, {}, bodies, machine, 3, 3, 1000)


def test_failed_run_is_reported_not_a_figure_and_ratios_are_to_pushserve() -> None:
    s = _summary()
    by = {(r["server"], r["load"]): r for r in s["results"]}  # type: ignore[attr-defined]
    assert by[("nginx", "h2_1mib")]["median"] is None and by[("nginx", "h2_1mib")]["ratio"] is None
    assert by[("nginx", "h2_m10")]["ratio"] == 5.0
    assert by[("pushserve-x4", "h2_m1")]["ratio"] == 1.6
    text = markdown(s)
    table = text.split("\n\n")[1].splitlines()
    mib_row = next(line for line in table if line.startswith("| 1 MiB over h2"))
    assert mib_row.endswith("| FAILED (1) |")
    assert "| 500 (5.00\u00d7) |" in next(line for line in table if line.startswith("| h2load `-c8 -m10`"))
    rss_row = next(line for line in table if line.startswith("| RSS"))
    assert rss_row == "| RSS after the runs, all processes, MiB | 84.0 | FAILED | 8.0 (0.10\u00d7) |"
    # CPU per request beside each rate; none for a cell with a failed run.
    cpu_row = next(line for line in table if line.startswith("| server CPU µs per request, h2load `-c8 -m10`"))
    assert cpu_row.endswith("| 25.0 | 30.0 (1.20\u00d7) | 11.0 (0.44\u00d7) |")
    cpu_mib = next(line for line in table if line.startswith("| server CPU µs per request, 1 MiB over h2"))
    assert cpu_mib.endswith("| \u2013 |")
    assert "3 of 40 answers were 2xx" in text and "process 12 is gone" in text
