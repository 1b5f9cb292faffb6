"""What the bench measures and how it is asked to: the settings of a run, the variants (rows) and
the series of loads per row.  The runner (``pageload``) fills them and the report reads them;
both import this module, neither imports the other's types."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from pushserve.bench.loader import PageLoad
from pushserve.bench.wire import Shape

# The engines that load pages in a real browser (targets of their rows); the loader's rows are
# named after the server they load from.
BROWSERS = ("chromium", "chromium-control", "firefox")


@dataclass(frozen=True)
class Settings:
    page: str
    rtt: float
    bits_per_s: float | None
    runs: int
    warm: bool = True
    warm_page: str | None = None  # the returning visit loads this page (default: the same)
    think: float | None = None  # server think time asked of pushserve (--think), seconds
    loss: float = 0.0  # per packet, per direction (packet shaper only)
    jitter: float = 0.0  # seconds, ± on each one-way delay (packet shaper only)
    shaper: str = "proxy"  # auto, packet or proxy (network.SHAPERS), or packet,proxy to compare them
    warmup: int = 1  # rounds loaded first and not counted

    @property
    def shape(self) -> Shape:
        return Shape(self.rtt, self.bits_per_s, self.loss, self.jitter)

    def describe(self) -> str:
        bw = f"{self.bits_per_s / 1e6:g} Mbit/s" if self.bits_per_s else "unlimited bandwidth"
        warm = f"; warm visit loads {self.warm_page}" if self.warm and self.warm_page else ""
        think = f"; server think time {self.think * 1000:g} ms" if self.think else ""
        lossy = f", loss {self.loss * 100:g}%" if self.loss else ""
        jitter = f", jitter ±{self.jitter * 1000:g} ms" if self.jitter else ""
        return (f"page {self.page}, RTT {self.rtt * 1000:g} ms, {bw}{lossy}{jitter}, {self.runs} runs{warm}{think}; "
                f"medians (spread = max - min); gains in round trips")


@dataclass(frozen=True)
class Variant:
    """One row family of the table: who serves (``target``), how the client loads (``mode``),
    which started server it talks to (``server``, a key of the starters) and, when one run
    compares networks (``--shaper packet,proxy``), through which (``net``)."""

    target: str
    mode: str
    server: str
    net: str = ""

    @property
    def browser(self) -> bool:
        return self.target in BROWSERS

    @property
    def group(self) -> tuple[str, str]:
        """Rows compared with each other: the same engine (or server) through the same network."""
        return self.target, self.net

    def label(self, visit: str = "cold") -> str:
        name = self.mode if self.target == "pushserve" else f"{self.target} {self.mode}"
        name += f" @{self.net}" if self.net else ""
        return name if visit == "cold" else f"{name} {visit}"


@dataclass
class Series:
    """The loads of one row: a variant on one kind of visit."""

    variant: Variant
    visit: str
    loads: list[PageLoad]

    @property
    def label(self) -> str:
        return self.variant.label(self.visit)


def median_run(loads: list[PageLoad]) -> PageLoad:
    """The run whose page-load time is the median (the lower one for an even count)."""
    ordered = sorted(loads, key=lambda r: r.page_load)
    return ordered[(len(ordered) - 1) // 2]


def median_ms(xs: list[float | None]) -> float | None:
    """The median of seconds ``xs`` (Nones left out) in ms, or None when there are none."""
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) * 1000 if vals else None


# Percentiles need enough runs to mean anything: p75/p90 only from this many on.
PERCENTILE_RUNS = 10


def percentiles_ms(xs: list[float | None], key: str) -> dict[str, float]:
    """``{key_p75_ms, key_p90_ms}`` of seconds ``xs`` (inclusive method), when there are enough."""
    vals = [x for x in xs if x is not None]
    if len(vals) < PERCENTILE_RUNS:
        return {}
    cuts = statistics.quantiles(vals, n=20, method="inclusive")  # 5 % steps: [14] = p75, [17] = p90
    return {f"{key}_p75_ms": cuts[14] * 1000, f"{key}_p90_ms": cuts[17] * 1000}
