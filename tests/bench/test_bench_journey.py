"""Journeys (``pushserve bench --journey``): the steps read from a page's timings, the HAR of a
journey, the summary and verdicts, the command line's refusals — and a journey with prefetch and
one with prerender in headless Chromium against real pushserve servers behind the latency proxy:
the next page served from the prefetch (its request marked ``Sec-Purpose: prefetch`` in the HAR,
during the first step), or activated from the prerender."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pushserve.bench.command import main as bench_main
from pushserve.bench.engine import Fetch
from pushserve.bench.journey import (
    Journey,
    JourneySettings,
    Row,
    Step,
    fetch_entry,
    format_table,
    journey_har,
    median_journey,
    parse_paths,
    step_from,
    summarise,
    verdicts,
)
from pushserve.bench.series import Settings

pytestmark = pytest.mark.timeout(300)

NAV = {"activationStart": 0, "deliveryType": "", "timeOrigin": 1_000_000.0, "protocol": "h2"}


def test_a_step_counts_from_the_click_or_the_activation() -> None:
    network = step_from({**NAV, "ttfb": 80, "fcp": 250, "lcp": 330, "load": 300}, "/a/")
    assert (network.delivery, network.ttfb, network.lcp, network.activation) == ("network", 0.08, 0.33, None)
    assert network.started == 1000.0
    prefetch = step_from({**NAV, "deliveryType": "navigational-prefetch", "ttfb": 11, "fcp": 160, "lcp": 210,
                          "load": 220}, "/a/")
    assert (prefetch.delivery, prefetch.ttfb, prefetch.lcp) == ("prefetch", 0.011, 0.21)
    # A prerendered page's times count from its activation (the click); what came before is 0.
    prerender = step_from({**NAV, "deliveryType": "navigational-prefetch", "activationStart": 540, "ttfb": 68,
                           "fcp": 548, "lcp": 552, "load": 260}, "/a/")
    assert prerender.delivery == "prerender" and prerender.activation == 0.54
    assert prerender.ttfb == 0.0 and prerender.load == 0.0
    assert prerender.lcp == pytest.approx(0.012) and prerender.started == pytest.approx(1000.54)
    assert step_from({**NAV, "deliveryType": "cache", "ttfb": 5, "fcp": 0, "lcp": 0, "load": 9}, "/").lcp is None


def test_paths_of_a_journey() -> None:
    assert parse_paths("/, /features/") == ["/", "/features/"]
    for bad in ("/", "/,features/", ""):
        with pytest.raises(ValueError):
            parse_paths(bad)


def _journey(lcp2: float, delivery: str, started: float = 100.0) -> Journey:
    return Journey([Step("/", "network", 0.2, 0.5, 0.6, 0.6, started=started),
                    Step("/b/", delivery, 0.01, 0.1, lcp2, 0.2, started=started + 2)])


def test_summary_and_verdicts_pair_the_rounds() -> None:
    done = {Row("chromium", "off"): [_journey(0.30 + i / 1000, "network") for i in range(8)],
            Row("chromium", "prefetch"): [_journey(0.20 + i / 1000, "prefetch") for i in range(8)]}
    rows = summarise(done)
    assert [(r["row"], r["step"], r["delivered"]) for r in rows] == [
        ("chromium off", 1, "network 8/8"), ("chromium off", 2, "network 8/8"),
        ("chromium prefetch", 1, "network 8/8"), ("chromium prefetch", 2, "prefetch 8/8")]
    assert rows[3]["lcp_ms"] == pytest.approx(203.5)
    found = verdicts(done, 0.05)
    lcp = next(v for v in found if v["metric"] == "step 2 LCP")
    assert lcp["a"] == "chromium off" and lcp["b"] == "chromium prefetch" and lcp["kind"] == "faster"
    assert lcp["diff_ms"] == pytest.approx(-100.0) and lcp["runs"] == 8
    settings = JourneySettings(["/", "/b/"], 1.0, 0.5, Settings(page="/", rtt=0.05, bits_per_s=None, runs=8))
    table = format_table(rows, settings, found)
    assert "chromium prefetch" in table and "prefetch 8/8" in table and "faster than chromium off" in table


def test_a_journey_har_has_a_page_per_step_and_each_request_in_its_step() -> None:
    steps = _journey(0.2, "prefetch").steps
    entries = [fetch_entry(Fetch("/", 0.0, 0.05, 0.1, 900, 200), "https://h:1", 100.0),
               fetch_entry(Fetch("/b/", 1.5, 1.55, 1.6, 700, 200, purpose="prefetch"), "https://h:1", 100.0),
               fetch_entry(Fetch("/b.css", 2.1, 2.15, 2.2, 300, 200), "https://h:1", 100.0)]
    har = journey_har(steps, entries, "chromium prefetch run 1")
    log = har["log"]
    assert [p["id"] for p in log["pages"]] == ["step_1", "step_2"]
    second = log["pages"][1]
    assert second["_delivery"] == "prefetch" and second["pageTimings"]["_largestContentfulPaint"] == 200
    assert [(e["pageref"], e["request"]["url"], e["_purpose"]) for e in log["entries"]] == [
        ("step_1", "https://h:1/", ""), ("step_1", "https://h:1/b/", "prefetch"), ("step_2", "https://h:1/b.css", "")]
    prefetch = log["entries"][1]
    assert {"name": "sec-purpose", "value": "prefetch"} in prefetch["request"]["headers"]
    assert prefetch["timings"]["wait"] == pytest.approx(50.0) and prefetch["response"]["_transferSize"] == 700


@pytest.mark.parametrize("lcps, median", [((0.3, 0.1, 0.2), 0.2), ((0.3, 0.1, 0.2, 0.4), 0.2), ((), None)])
def test_the_median_journey_is_the_median_last_lcp(lcps: tuple[float, ...], median: float | None) -> None:
    found = median_journey([_journey(x, "network") for x in lcps])
    assert (found.steps[-1].lcp if found is not None else None) == median


@pytest.mark.parametrize("args, words", [
    (["--journey", "/"], "two or more paths"),
    (["--journey", "/,/b/", "--page", "/b/"], "--page, --modes and --warm-page"),
    (["--journey", "/,/b/", "--engine", "loader"], "unknown journey engine"),
    (["--journey", "/,/b/", "--speculation", "eager"], "unknown speculation mode"),
    (["--journey", "/,/b/", "--dwell", "soon"], "soon"),
    (["--journey", "/,/b/", "--shaper", "packet,proxy"], "one network"),
])
def test_the_command_line_refuses_what_makes_no_sense(args: list[str], words: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main([str(tmp_path), *args]) == 2
    assert words in capsys.readouterr().err


# -- a real journey ------------------------------------------------------------------------------

PAGE_A = ('<!doctype html><meta charset=utf-8><title>a</title><h1>First page</h1>'
          '<p>Some text to read.</p><p><a href="/b/">to the second page</a></p>')
PAGE_B = ('<!doctype html><meta charset=utf-8><title>b</title><link rel=stylesheet href="/b.css">'
          '<h1>Second page</h1><p>What the click opened.</p>')


@pytest.fixture(scope="module")
def site() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-journey-") as tmp:
        root = Path(tmp) / "site"
        (root / "b").mkdir(parents=True)
        (root / "index.html").write_text(PAGE_A)
        (root / "b" / "index.html").write_text(PAGE_B)
        (root / "b.css").write_text("h1 { color: #246; }\n")
        yield root


def test_a_journey_in_chromium_per_mode(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One journey with prefetch and one with prerender (proxy network, 20 ms): how the second
    page came, and the HAR.  (Speculation off is the plain network case step_from reads above; a
    third Chromium costs CI more than it shows.)"""
    har = tmp_path / "har"
    code = bench_main([str(site), "--journey", "/,/b/", "--speculation", "prefetch,prerender", "--runs", "1",
                       "--warmup", "0", "--dwell", "300ms", "--hover", "500ms", "--rtt", "20ms", "--shaper", "proxy",
                       "--json", "--har", str(har), "--html", str(tmp_path / "journey.html")])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    second = {r["mode"]: r for r in data["summary"] if r["step"] == 2}
    assert second["prefetch"]["delivered"] == "prefetch 1/1"
    assert second["prerender"]["delivered"] == "prerender 1/1"
    assert all(r["lcp_ms"] is not None and r["ttfb_ms"] is not None for r in data["summary"])
    # The speculative request, marked, during the first step; nothing asked for the page again
    # after the click.
    for mode, purpose in (("prefetch", "prefetch"), ("prerender", "prefetch;prerender")):
        log = json.loads((har / f"chromium-{mode}-run1.har").read_text())["log"]
        asked = [(e["pageref"], e["_purpose"]) for e in log["entries"] if e["request"]["url"].endswith("/b/")]
        assert asked == [("step_1", purpose)], mode
    report = (tmp_path / "journey.html").read_text()
    assert report.count('<g class="row"') == 4  # two steps, two rows each
