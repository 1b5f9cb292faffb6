"""What the bench measures and how it is asked to: the settings of a run, the variants (rows) and
the series of loads per row.  The runner (``pageload``) fills them and the report reads them;
both import this module, neither imports the other's types."""

from __future__ import annotations

from dataclasses import dataclass

from pushserve.bench.loader import PageLoad


@dataclass(frozen=True)
class Settings:
    page: str
    rtt: float
    bits_per_s: float | None
    runs: int
    warm: bool = True
    warm_page: str | None = None  # the returning visit loads this page (default: the same)
    think: float | None = None  # server think time asked of pushserve (--think), seconds

    def describe(self) -> str:
        bw = f"{self.bits_per_s / 1e6:g} Mbit/s" if self.bits_per_s else "unlimited bandwidth"
        warm = f"; warm visit loads {self.warm_page}" if self.warm and self.warm_page else ""
        think = f"; server think time {self.think * 1000:g} ms" if self.think else ""
        return (f"page {self.page}, RTT {self.rtt * 1000:g} ms, {bw}, {self.runs} runs{warm}{think}; "
                f"medians (spread = max - min); gains in round trips")


@dataclass(frozen=True)
class Variant:
    """One row family of the table: who serves (``target``), how the client loads (``mode``),
    and which started server it talks to (``server``, a key of the starters)."""

    target: str
    mode: str
    server: str

    @property
    def browser(self) -> bool:
        return self.target == "chromium"

    def label(self, visit: str = "cold") -> str:
        name = self.mode if self.target == "pushserve" else f"{self.target} {self.mode}"
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
