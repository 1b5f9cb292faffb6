"""``pushserve bench``: a quick real run against site_example (1 run, 10 ms RTT), its JSON, and
its HTML report rendered in headless Chromium — one waterfall bar per resource, and a screenshot
that is not blank.  Also the one-line errors of the command."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium
from tests.support.serverproc import REPO, SITE_EXAMPLE, Certs

# Counted in the page: per waterfall, its bars and the rects inside bars.
_COUNT_BARS = """
return Array.from(document.querySelectorAll('svg.waterfall')).map(svg => ({
  row: svg.dataset.row,
  bars: svg.querySelectorAll('g.bar').length,
  rects: svg.querySelectorAll('g.bar > rect').length,
  width: svg.getBoundingClientRect().width,
}));
"""

# The browser decodes the screenshot (no imaging library needed in Python): distinct colours
# and the share of pixels that are not white.
_PIXELS = """
const done = arguments[arguments.length - 1];
const img = new Image();
img.onload = () => {
  const c = document.createElement('canvas');
  c.width = img.width; c.height = img.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  const colours = new Set();
  let ink = 0;
  for (let i = 0; i < d.length; i += 4) {
    colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) ink++;
  }
  done({width: c.width, height: c.height, colours: colours.size, ink: ink / (d.length / 4)});
};
img.onerror = () => done(null);
img.src = 'data:image/png;base64,' + arguments[0];
"""


def _bench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pushserve", "bench", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    report = out / "report.html"
    done = _bench(str(SITE_EXAMPLE), "--runs", "1", "--rtt", "10ms", "--json", "--html", str(report))
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), report


def test_json_has_cold_and_warm_rows_for_every_mode(quick_run: tuple[dict[str, Any], Path]) -> None:
    data, _ = quick_run
    rows = {r["row"]: r for r in data["summary"]}
    for mode in ("h1", "h2-off", "h2-hints", "h2-push"):
        assert rows[mode]["visit"] == "cold" and rows[f"{mode} warm"]["visit"] == "warm"
        assert rows[mode]["from_cache"] == 0
    assert rows["h1"]["protocol"] == "http/1.1" and rows["h2-push"]["protocol"] == "h2"
    # Cold: push delivers what hints announce; both only where the server was asked to.
    assert rows["h2-push"]["pushes_used"] > 0 and rows["h2-push"]["pushes_wasted"] == 0
    assert rows["h2-hints"]["hints_used"] == rows["h2-push"]["pushes_used"]
    assert rows["h2-off"]["pushes_used"] == rows["h2-off"]["hints_used"] == 0
    assert rows["h2-hints"]["interim_ms"] is not None and rows["h2-off"]["interim_ms"] is None
    # Warm, same page: the page is revalidated (304), every asset is fresh in the cache, and
    # nothing is pushed or hinted again.
    for mode in ("h1", "h2-off", "h2-hints", "h2-push"):
        warm = rows[f"{mode} warm"]
        assert warm["requests"] == 1 and warm["not_modified"] == 1, warm
        assert warm["from_cache"] == rows[mode]["requests"] + rows[mode]["pushes_used"] - 1, warm
        assert warm["pushes_used"] == warm["pushes_wasted"] == warm["hints_used"] == 0, warm
        assert warm["bytes"] == 0


def test_report_has_one_bar_per_resource_and_renders(quick_run: tuple[dict[str, Any], Path], certs: Certs) -> None:
    data, report = quick_run
    expected = {row: sum(1 for e in loads[0]["entries"] if e["requested"] is not None)
                for row, loads in data["loads"].items()}
    assert expected["h2-push"] == len(data["loads"]["h2-push"][0]["entries"]) > 6
    with chromium(certs.cert_dir / "localhost.pem") as driver:
        driver.get(report.as_uri())
        counted = {w["row"]: w for w in driver.execute_script(_COUNT_BARS)}
        png = driver.get_screenshot_as_png()
        pixels = driver.execute_async_script(_PIXELS, base64.b64encode(png).decode())
    assert set(counted) == set(expected)
    for row, n in expected.items():
        assert counted[row]["bars"] == n, (row, counted[row], n)
        assert counted[row]["rects"] == 2 * n  # waiting + receiving
        assert counted[row]["width"] > 0
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert pixels is not None and (pixels["width"], pixels["height"]) == (width, height)
    # Text, table rules and coloured bars: many colours and a visible share of ink.
    assert pixels["colours"] > 20 and pixels["ink"] > 0.01, pixels


@pytest.mark.parametrize(("args", "message"), [
    (["no-such-folder"], "no-such-folder is not a folder"),
    ([str(SITE_EXAMPLE), "--rtt", "soon"], "not a duration"),
    ([str(SITE_EXAMPLE), "--modes", "h3"], "unknown mode(s) h3"),
    ([str(SITE_EXAMPLE), "--runs", "0"], "--runs must be at least 1"),
    ([str(SITE_EXAMPLE), "--bogus"], "unrecognized arguments: --bogus"),
])
def test_mistakes_end_in_one_line(args: list[str], message: str) -> None:
    done = _bench(*args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pushserve bench: ") and message in lines[0], done.stderr
