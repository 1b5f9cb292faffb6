"""``pushserve bench --modes h2-hints,h3-hints``: one small real run through the packet shaper (the
servers in a namespace of the bench's own, every packet, UDP too, through the relay) in headless
Chromium.  The h2 row comes over h2 and the h3 row over h3, every
entry of it (Resource Timing's ``nextHopProtocol`` is checked by the bench itself, and the HAR
says ``_protocol: h3``), the 103's preloads are used over h3 too, and the run compares the two
modes.  The refusal of h3 with the latency proxy is in test_bench_report.py's usage errors; Firefox
over h3 (its own browser, steered by prefs) is the same code path behind ``--engine firefox`` and
is left to the real runs to keep this within CI's budget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pushserve.bench import netns
from tests.bench.test_bench_report import _bench
from tests.support.serverproc import SITE_EXAMPLE

pytestmark = [
    pytest.mark.timeout(480),
    pytest.mark.skipif(netns.unavailable() is not None, reason=f"packet shaper: {netns.unavailable()}"),
    pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("certutil") is None,
                       reason="needs chromium and certutil (libnss3-tools)"),
]
ENGINES = ["chromium"]


def _har(folder: Path, row: str) -> list[dict[str, Any]]:
    doc = json.loads((folder / f"{row.replace(' ', '-')}-run1.har").read_text())
    entries: list[dict[str, Any]] = doc["log"]["entries"]
    return entries


def test_h2_and_h3_with_hints_through_the_packet_shaper(tmp_path: Path) -> None:
    har = tmp_path / "har"
    done = _bench(str(SITE_EXAMPLE), "--modes", "h2-hints,h3-hints", "--engine", ",".join(ENGINES), "--no-control",
                  "--shaper", "packet", "--runs", "1", "--warmup", "0", "--rtt", "10ms", "--think", "300ms",
                  "--json", "--har", str(har), timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)
    assert data["network"].startswith("packet shaper")
    rows = {r["row"]: r for r in data["summary"]}
    assert sorted(rows) == sorted(f"{e} {m}" for e in ENGINES for m in ("h2-hints", "h3-hints"))
    for engine in ENGINES:
        for mode, protocol in (("h2-hints", "h2"), ("h3-hints", "h3")):
            row = f"{engine} {mode}"
            assert rows[row]["protocol"] == protocol, rows[row]
            entries = _har(har, row)
            assert len(entries) >= 10, row  # the page and what it loads (site_example: 13 or so)
            assert {e["_protocol"] for e in entries} == {protocol}, (row, [(e["request"]["url"], e["_protocol"])
                                                                        for e in entries])
            assert {e["response"]["httpVersion"] for e in entries} == {f"http/{protocol[1]}.0"}
        # The 103 over h3: its preloads fetched before the page's 200, and used.
        h3 = data["loads"][f"{engine} h3-hints"][0]
        assert h3["first_interim"] is not None and h3["first_interim"] < h3["response_start"]
        assert h3["early_fetched"] and any(e["_earlyHint"] for e in _har(har, f"{engine} h3-hints")), h3
        pair = [v for v in data["verdicts"] if v["target"] == engine and v["modes"] == ["h2-hints", "h3-hints"]]
        assert {v["metric"] for v in pair} >= {"LCP", "load"}, data["verdicts"]
