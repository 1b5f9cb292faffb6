"""Runs ``pushserve bench SITE --journey``: a pushserve per speculation mode (103 Early Hints on in
each), the browsers, warm-up and interleaved rounds of journeys (``journey.walk``), then the table
or JSON, the HARs and the HTML report (``journey_report``)."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from pushserve.bench.journey import (
    Journey,
    JourneySettings,
    Row,
    format_table,
    summarise,
    tab_har,
    to_json,
    verdicts,
    walk,
    write_hars,
)
from pushserve.bench.network import Exposed, Network
from pushserve.bench.procs import BenchError, Starter


def rows_for(engines: list[str], modes: list[str]) -> list[Row]:
    return [Row(e, m) for e in engines for m in modes]


def run(starters: dict[str, Starter], rows: list[Row], settings: JourneySettings, engines: dict[str, Any],
        network: Network, log: Callable[[str], None]) -> dict[Row, list[Journey]]:
    """Start a server per mode, then warm-up rounds and ``runs`` rounds, each row once a round in
    a rotated order; returns the journeys of each row."""
    done: dict[Row, list[Journey]] = {r: [] for r in rows}
    with ExitStack() as stack:
        exposed: dict[str, Exposed] = {}
        for key in sorted({r.server for r in rows}):
            exposed[key] = network.expose(stack.enter_context(starters[key](network.place)))

        def one(row: Row, record: bool, n: int) -> None:
            base = exposed[row.server].url
            for attempt in (1, 2):  # a journey the browser fails (a busy machine) is walked once more
                try:
                    with engines[row.engine].tab() as tab:
                        steps = walk(tab, base, settings.paths, settings.dwell, settings.hover)
                    break
                except BenchError as e:
                    if attempt == 2:
                        raise
                    log(f"{row.label}: {e}; walking it again")
            if record:
                har = tab_har(row.engine, tab, steps, base, f"{row.label} run {n}")
                done[row].append(Journey(steps, har))
                last = steps[-1]
                lcp = f"{last.lcp * 1000:7.1f} ms" if last.lcp is not None else "      -"
                log(f"run {n}/{settings.network.runs} {row.label:<22} step {len(steps)} LCP {lcp} ({last.delivery})")

        for _ in range(settings.network.warmup):
            for row in rows:
                one(row, False, 0)
        for i in range(settings.network.runs):
            k = i % len(rows)
            for row in rows[k:] + rows[:k]:
                one(row, True, i + 1)
    return done


@contextmanager
def opened_engines(names: list[str], cert: Any) -> Iterator[dict[str, Any]]:
    """Chromium (no DevTools Network domain: journeys read the NetLog) and Firefox, as asked."""
    with ExitStack() as stack:
        engines: dict[str, Any] = {}
        if "chromium" in names:
            from pushserve.bench.browser import Chromium

            engines["chromium"] = stack.enter_context(Chromium(cert.cert, instrumented=False))
        if "firefox" in names:
            from pushserve.bench.firefox import Firefox

            if cert.ca is None:
                raise BenchError("firefox: the bench certificate has no CA file to trust")
            engines["firefox"] = stack.enter_context(Firefox(cert.ca))
        yield engines


def main(site: Path, settings: JourneySettings, modes: list[str], engines: list[str], *, as_json: bool = False,
         html: Path | None = None, har: Path | None = None) -> int:
    """Run the journeys, then print the table (or JSON), write the HARs and the HTML report."""
    from pushserve.bench.certs import make_cert
    from pushserve.bench.pageload import (
        check_engines,
        check_outputs,
        open_network,
        server_args,
        start_pushserve,
        write_output,
    )
    from pushserve.bench.procs import CLIENT_CPU, LOOPBACK, can_pin

    if not site.is_dir():
        raise BenchError(f"{site} is not a folder")
    check_outputs(html, har)
    check_engines(tuple(engines))

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    rows = rows_for(engines, modes)
    cpus = os.sched_getaffinity(0)
    with tempfile.TemporaryDirectory(prefix="pushserve-bench-") as tmp, \
            open_network(settings.network.shaper, settings.network, log) as network:
        work = Path(tmp)
        cert = make_cert(work, () if network.place == LOOPBACK else (network.place.host,))
        base_args = tuple(server_args(settings.network))
        starters: dict[str, Starter] = {
            Row("", mode).server: functools.partial(start_pushserve, site.resolve(), cert, work, "hints",
                                                    (*base_args, "--speculation", mode))
            for mode in modes}
        log(f"network: {network.describe()}")
        if can_pin():
            os.sched_setaffinity(0, {CLIENT_CPU})  # browsers and relay here, servers on the other CPU
        try:
            with opened_engines(engines, cert) as opened:
                done = run(starters, rows, settings, opened, network, log)
        finally:
            os.sched_setaffinity(0, cpus)
    described = network.describe()
    summary = summarise(done)
    found = verdicts(done, settings.network.rtt)
    if har is not None:
        written = write_output("--har", har, lambda: write_hars(har, done))
        log(f"HAR: {len(written)} files in {har}")
    if html is not None:
        from pushserve.bench.journey_report import write_report

        write_output("--html", html, lambda: write_report(html, done, summary, settings, found, described))
        log(f"report: {html}")
    print(to_json(done, summary, settings, {"network": described, "verdicts": found}) if as_json else
          format_table(summary, settings, found, described))
    return 0
