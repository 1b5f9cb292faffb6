"""Whether a difference between two rows is real: bootstrap confidence intervals of the
difference of medians (and of 75th percentiles), and the words the report uses for them.

The runs of two rows are interleaved (round i loads A then B, or B then A), so round i of A and
round i of B saw the same moment of a shared machine.  When both rows have one value per round
the bootstrap resamples *rounds* (pairs), which keeps that shared drift out of the interval; with
unequal counts each row is resampled on its own.  Percentile intervals, 2,000 resamples, a fixed
seed: the same loads always give the same verdict.

``runs_to_resolve`` answers "how many runs would it take": the interval's half-width shrinks as
1/sqrt(n), so resolving ``delta`` (an interval that excludes zero when the true difference is
``delta``) needs about n * (half-width / delta)^2 runs."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 20_240_609
# More runs than this is no advice anyone follows: said as "more than ...".
MAX_ADVISED_RUNS = 2000
# Below this many runs a bootstrap has too few distinct resamples to mean anything.
MIN_RUNS = 5


def percentile(xs: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of ``xs`` by linear interpolation between order statistics (the
    'inclusive' method: the median for q=0.5, the minimum and maximum at 0 and 1)."""
    if not xs:
        raise ValueError("no values")
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def p50(xs: Sequence[float]) -> float:
    return percentile(xs, 0.5)


def p75(xs: Sequence[float]) -> float:
    return percentile(xs, 0.75)


@dataclass(frozen=True)
class Interval:
    """``b - a`` of a statistic (B's minus A's) and its confidence interval, in the values' unit."""

    diff: float
    lo: float
    hi: float
    n_a: int
    n_b: int
    paired: bool

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


def bootstrap_diff(a: Sequence[float], b: Sequence[float], stat: Callable[[Sequence[float]], float] = p50,
                   *, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = SEED,
                   paired: bool | None = None) -> Interval:
    """stat(b) - stat(a) with a percentile bootstrap interval.  ``paired`` (default: when the
    counts are equal) resamples index i of both together: the runs of one round."""
    if not a or not b:
        raise ValueError("both samples need values")
    pair = len(a) == len(b) if paired is None else paired
    if pair and len(a) != len(b):
        raise ValueError("paired samples need the same count")
    rng = random.Random(seed)
    diffs = []
    na, nb = len(a), len(b)
    for _ in range(resamples):
        if pair:
            idx = rng.choices(range(na), k=na)
            diffs.append(stat([b[i] for i in idx]) - stat([a[i] for i in idx]))
        else:
            diffs.append(stat(rng.choices(b, k=nb)) - stat(rng.choices(a, k=na)))
    tail = (1 - confidence) / 2
    return Interval(stat(b) - stat(a), percentile(diffs, tail), percentile(diffs, 1 - tail), na, nb, pair)


def runs_to_resolve(interval: Interval, delta: float) -> int | None:
    """About how many runs per row would give an interval narrower than ``delta`` on each side
    (None when ``delta`` is 0 or the interval has no width to scale)."""
    n = min(interval.n_a, interval.n_b)
    if delta <= 0 or interval.half_width <= 0:
        return None
    return max(n + 1, math.ceil(n * (interval.half_width / delta) ** 2))


@dataclass(frozen=True)
class Verdict:
    """A pair of rows compared on one metric: B against A."""

    metric: str
    a: str
    b: str
    median: Interval
    p75: Interval
    words: str
    kind: str  # "faster", "slower", "noise" or "too few runs"


def _runs(n: int) -> str:
    return f"{n} run is" if n == 1 else f"{n} runs are"


def _ms(x: float) -> str:
    return f"{x:+.0f}" if abs(x) >= 10 else f"{x:+.1f}"


def describe(metric: str, a: str, b: str, median: Interval, p75_: Interval, rtt_ms: float) -> Verdict:
    """The words for B against A on ``metric`` (values in ms; lower is better).  A difference is
    one whose median interval excludes zero; noise is said as such, with the interval's reach
    and the runs it would take to resolve the difference seen (and one RTT, if out of reach)."""
    runs = min(median.n_a, median.n_b)
    span = f"{_ms(median.diff)} ms [{_ms(median.lo)}, {_ms(median.hi)}]"
    if runs < MIN_RUNS:
        words = (f"{b}: {metric} {_ms(median.diff)} ms against {a}: {_runs(runs)} too few for a verdict "
                 f"(at least {MIN_RUNS})")
        return Verdict(metric, a, b, median, p75_, words, "too few runs")
    if median.excludes_zero:
        kind = "faster" if median.diff < 0 else "slower"
        rtts = f", {median.diff / rtt_ms:+.1f} RTT" if rtt_ms else ""
        words = f"{b}: {metric} {span}{rtts}, {runs} runs: {kind} than {a}"
        return Verdict(metric, a, b, median, p75_, words, kind)
    advice = []
    seen = abs(median.diff)
    if seen >= 1:
        advice.append(_runs_for(median, seen, f"the {seen:.0f} ms seen"))
    if rtt_ms and median.half_width > rtt_ms:
        advice.append(_runs_for(median, rtt_ms, f"1 RTT ({rtt_ms:g} ms)"))
    words = (f"{b}: {metric} {span}: no measurable difference from {a} at {runs} runs "
             f"(the interval reaches ±{median.half_width:.0f} ms)" + "".join(f"; {x}" for x in advice))
    return Verdict(metric, a, b, median, p75_, words, "noise")


def _runs_for(interval: Interval, delta: float, what: str) -> str:
    needed = runs_to_resolve(interval, delta)
    if needed is None or needed > MAX_ADVISED_RUNS:
        return f"more than {MAX_ADVISED_RUNS} runs would be needed to resolve {what}"
    return f"about {needed} runs would resolve {what}"


def compare(metric: str, a_label: str, a: Sequence[float], b_label: str, b: Sequence[float],
            rtt_ms: float) -> Verdict:
    """B against A on one metric (ms), with both intervals from the same resampling scheme."""
    med = bootstrap_diff(a, b, p50)
    upper = bootstrap_diff(a, b, p75)
    return describe(metric, a_label, b_label, med, upper, rtt_ms)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)
