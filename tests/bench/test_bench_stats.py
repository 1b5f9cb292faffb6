"""The bench's verdicts on synthetic data with a known difference: the bootstrap interval covers
the true difference about 95% of the time, excludes zero when the difference is large against
the noise, and the words say "faster"/"slower" or "no measurable difference" with the runs it
would take."""

from __future__ import annotations

import random

import pytest

from pushserve.bench.stats import bootstrap_diff, compare, p50, p75, percentile, runs_to_resolve


def test_percentiles() -> None:
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert p50(xs) == 3.0 and percentile(xs, 0) == 1.0 and percentile(xs, 1) == 5.0
    assert p75([1.0, 2.0, 3.0, 4.0]) == pytest.approx(3.25)  # the 'inclusive' method
    with pytest.raises(ValueError):
        p50([])


@pytest.mark.parametrize("paired", [True, False])
def test_interval_covers_a_known_difference_about_95_percent_of_the_time(paired: bool) -> None:
    true_diff, trials, covered = 30.0, 120, 0
    for trial in range(trials):
        rng = random.Random(trial)
        a = [rng.gauss(400, 25) for _ in range(20)]
        b = [rng.gauss(400 + true_diff, 25) for _ in range(20)]
        iv = bootstrap_diff(a, b, resamples=300, seed=trial, paired=paired)
        covered += iv.lo <= true_diff <= iv.hi
    assert 0.88 <= covered / trials <= 0.99, covered


def test_pairing_removes_shared_drift() -> None:
    # Both rows drift together over the rounds (a machine growing busier); B is 20 ms faster.
    rng = random.Random(3)
    drift = [i * 15.0 for i in range(20)]
    a = [400 + d + rng.gauss(0, 3) for d in drift]
    b = [380 + d + rng.gauss(0, 3) for d in drift]
    paired, unpaired = bootstrap_diff(a, b, paired=True), bootstrap_diff(a, b, paired=False)
    assert paired.excludes_zero and paired.lo <= -20 <= paired.hi
    assert paired.half_width < unpaired.half_width / 5 and not unpaired.excludes_zero


def test_words_for_a_difference_and_for_noise() -> None:
    rng = random.Random(5)
    off = [rng.gauss(500, 20) for _ in range(40)]
    hints = [x - 48 + rng.gauss(0, 5) for x in off]
    v = compare("LCP", "h2-off", off, "h2-hints", hints, rtt_ms=50)
    assert v.kind == "faster" and v.median.excludes_zero and v.median.hi < 0
    assert v.words.startswith("h2-hints: LCP -") and "40 runs: faster than h2-off" in v.words
    assert "RTT" in v.words and v.p75.diff < 0

    same = [rng.gauss(500, 40) for _ in range(10)]
    other = [rng.gauss(500, 40) for _ in range(10)]
    n = compare("LCP", "h2-off", same, "h2-hints", other, rtt_ms=50)
    assert n.kind == "noise" and not n.median.excludes_zero
    assert "no measurable difference from h2-off at 10 runs" in n.words
    assert "runs would" in n.words


def test_runs_to_resolve_scales_with_the_square_of_the_width() -> None:
    rng = random.Random(9)
    a = [rng.gauss(100, 30) for _ in range(10)]
    b = [rng.gauss(100, 30) for _ in range(10)]
    iv = bootstrap_diff(a, b)
    half = runs_to_resolve(iv, iv.half_width / 2)
    assert half is not None and 38 <= half <= 42  # half the width: four times the runs
    assert runs_to_resolve(iv, 0) is None
