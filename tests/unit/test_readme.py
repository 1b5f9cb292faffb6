"""The README as a new user reads it: CI's two commands at the very top, then the three things
people come for, each one command that pushserve accepts as written."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from pushserve.bench.command import parser as bench_parser
from pushserve.bench.command import settings_from
from pushserve.cli import _serve_parser, given_options
from pushserve.options import make_config

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
QUICK = ["Serve a folder", "Develop with live reload", "Compare page loads"]


def ci_block(marker: str) -> str:
    """The command .ci/run reads after <!-- marker -->, by .ci/run's own awk."""
    script = (ROOT / ".ci" / "run").read_text()
    awk = re.search(r"awk -v marker=.*? README\.md", script)
    assert awk is not None
    found = subprocess.run(["bash", "-c", f"readme() {{ {awk.group(0).replace('$1', marker)}; }}; readme"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    return found


def test_the_two_commands_ci_runs_come_first() -> None:
    run, test = ci_block("run-command"), ci_block("test-command")
    assert run == "pip install . && pushserve site_example"
    assert test.startswith("apt-get update && apt-get install -y ") and test.endswith("python -m pytest -q")
    first_heading = README.index("\n## ")
    assert README.index(run) < README.index(test) < first_heading


def test_the_three_things_people_come_for_lead() -> None:
    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings[:3] == QUICK, headings


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    return README[start:README.index("\n## ", start + 1)]


def command_of(title: str) -> list[str]:
    """The first indented command of a quick-start section, with the example site for its folder."""
    line = next(x.strip() for x in section(title).splitlines() if x.startswith("    pushserve "))
    return [a.replace("path/to/site", str(ROOT / "site_example")) for a in shlex.split(line)[1:]]


def test_each_quick_start_command_is_one_pushserve_accepts() -> None:
    serve = command_of("Serve a folder")
    assert make_config((site := Path(serve[0])), given_options(_serve_parser().parse_args(serve))).site == site
    dev = command_of("Develop with live reload")
    assert make_config(Path(dev[0]), given_options(_serve_parser().parse_args(dev))).dev
    bench = command_of("Compare page loads")
    assert bench[0] == "bench"
    settings, modes = settings_from(bench_parser().parse_args(bench[1:]))
    assert settings.rtt == 0.05 and modes == ["h1", "h2-off", "h2-hints", "h2-push"] and "report.html" in bench
    # What each section says you will see is there: a log line, the overview's URL, a table.
    assert "serving path/to/site at https://127.0.0.1:8443/" in section("Serve a folder")
    assert "/_pushserve/" in section("Develop with live reload")
    assert re.search(r"h2-hints +\d+\.\d", section("Compare page loads"))
