"""The engines' parsing without a browser: Chromium's NetLog (a closed and an unclosed file), which
fetches count as made on the 103, the unused-preload claims judged against what the page
uses, a load that fell back from its mode's protocol refused, and the engines' protocol names.
The real browsers are in test_bench_engines.py (and over h3, test_bench_h3.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pushserve.bench import netlog
from pushserve.bench.browser import quic_flags
from pushserve.bench.engine import Fetch, WrongProtocol, early_fetches, judge_unused, page_load_from_timings
from pushserve.bench.firefox import h3_prefs
from pushserve.bench.har import protocol_name
from pushserve.bench.loader import PageLoad

ORIGIN = "https://198.18.0.2:4433"
CONSTANTS = {
    "timeTickOffset": 1_000_000,
    "logSourceType": {"URL_REQUEST": 1, "SOCKET": 2},
    "logEventPhase": {"PHASE_BEGIN": 1, "PHASE_END": 2, "PHASE_NONE": 0},
    "logEventTypes": {"REQUEST_ALIVE": 1, "HTTP_TRANSACTION_SEND_REQUEST": 2,
                      "HTTP_TRANSACTION_READ_RESPONSE_HEADERS": 3, "HTTP2_STREAM_UPDATE_RECV_WINDOW": 4,
                      "URL_REQUEST_JOB_FILTERED_BYTES_READ": 5},
}


def _ev(t: float, source: int, kind: int, phase: int, **params: Any) -> dict[str, Any]:
    return {"time": str(t), "source": {"id": source, "type": 1}, "type": kind, "phase": phase, "params": params}


def _doc() -> dict[str, Any]:
    # Request 7: fetched from the network (sent, 200 after 40 ms, 3000 bytes of DATA in two
    # frames, done at 60 ms).  Request 9: the same URL taken from the cache later.  Request 11:
    # another origin, left out.
    url = f"{ORIGIN}/css/site.css"
    events = [
        _ev(100, 7, 1, 1, url=url), _ev(101, 7, 2, 1), _ev(140, 7, 3, 0, headers=["HTTP/1.1 200", "a: b"]),
        _ev(150, 7, 4, 0, delta=-2000), _ev(155, 7, 4, 0, delta=-1000), _ev(156, 7, 4, 0, delta=65535),
        _ev(160, 7, 1, 2),
        _ev(400, 9, 1, 1, url=url), _ev(401, 9, 5, 0, byte_count=7000), _ev(402, 9, 1, 2),
        _ev(100, 11, 1, 1, url="https://elsewhere.test/x.js"), _ev(120, 11, 1, 2),
        {"time": "1", "source": {"id": 3, "type": 2}, "type": 2, "phase": 1},  # not a URL request
    ]
    return {"constants": CONSTANTS, "events": events}


def test_netlog_fetches_are_the_network_s() -> None:
    # timeOrigin 1_000_050 ms: the request started 50 ms after navigation start.
    got = netlog.fetches(_doc(), ORIGIN, 1_000_050)
    assert len(got) == 2
    net, cached = got
    assert net.network and not cached.network and cached.nbytes == 0
    assert (net.path, net.status) == ("/css/site.css", 200)
    assert (net.start, net.headers, net.end) == (0.05, 0.09, 0.11)
    assert net.nbytes == 3000 + len("HTTP/1.1 200") + 2 + len("a: b") + 2 + 2  # body + header lines


def test_netlog_left_open_by_a_killed_browser_is_read(tmp_path: Path) -> None:
    text = json.dumps(_doc())
    path = tmp_path / "netlog.json"
    path.write_text(text[:text.rindex("]")] + ",\n")  # events still open, a trailing comma
    assert netlog.read(path)["events"][0]["params"]["url"].endswith("/css/site.css")


def test_early_fetches_leave_the_page_out() -> None:
    fetches = [Fetch("/", 0.0, 0.5, 0.6, 3000), Fetch("/css/a.css", 0.2, 0.3, 0.31, 900),
               Fetch("/css/late.css", 0.7, 0.8, 0.81, 900), Fetch("/img/x.png", 0.25, None, None, 0, from_cache=True)]
    assert early_fetches(fetches, 0.5) == {"/css/a.css"}
    assert early_fetches(fetches, None) == set()


def test_unused_claims_are_judged_against_the_page() -> None:
    load = PageLoad("h2-hints", [], 1.0, 1.0, 0, 0, 0, 0, 0, 0, "h2", early_fetched=["/a.css", "/b.css", "/u.css"])
    judge_unused(load, [f"{ORIGIN}/u.css", f"{ORIGIN}/a.css"], [f"{ORIGIN}/a.css", f"{ORIGIN}/b.css"])
    assert load.wasted == ["/u.css"] and load.said_unused == ["/a.css"]
    assert (load.hints_wasted, load.hints_used) == (1, 2)


def test_the_instrument_check_needs_runs_before_it_says_differs() -> None:
    from pushserve.bench.report import checks_html

    one_run = {"mode": "h2-hints", "metric": "LCP", "control_ms": 500.0, "instrumented_ms": 700.0, "diff_ms": 200.0,
               "lo_ms": 200.0, "hi_ms": 200.0, "runs": 1, "agrees": None}
    rows = [{"row": "chromium h2-hints", "mode": "h2-hints", "early_fetched": 0},
            {"row": "chromium-control h2-hints", "mode": "h2-hints", "early_fetched": 9}]
    text = checks_html([one_run, {**one_run, "metric": "first fetch on the 103"}], rows)
    assert "too few runs" in text and "differs" not in text and "agrees" not in text
    assert "may change (too few runs to tell)" in text
    assert "9 without (the control row)" in text
    assert "0 resources with DevTools Network events and the screencast attached" in text
    many = {**one_run, "runs": 20, "agrees": False, "lo_ms": 150.0, "hi_ms": 260.0}
    assert "differs" in checks_html([many], rows)


def _timings(page: str, *resources: tuple[str, str]) -> dict[str, Any]:
    nav = {"name": "/", "requestStart": 10, "responseStart": 60, "finalResponseHeadersStart": 60, "responseEnd": 70,
           "loadEventEnd": 200, "nextHopProtocol": page, "transferSize": 900}
    return {"timeOrigin": 1e12, "paint": {"fcp": 100, "lcp": 120}, "nav": nav,
            "resources": [{"name": name, "initiatorType": "early-hints", "startTime": 20, "requestStart": 30,
                           "responseStart": 50, "responseEnd": 80, "transferSize": 300, "nextHopProtocol": proto}
                          for name, proto in resources]}


def test_a_load_that_fell_back_from_its_protocol_stops_the_run() -> None:
    ok = page_load_from_timings(_timings("h3", ("/a.css", "h3"), ("/cached.js", "")), "h3-hints", "/", "chromium")
    assert ok.protocol == "h3" and [e.path for e in ok.entries] == ["/", "/a.css", "/cached.js"]
    for page, resource, mode in (("h2", "h2", "h3-hints"), ("h3", "h2", "h3-off"), ("h3", "h3", "h2-hints")):
        with pytest.raises(WrongProtocol) as raised:
            page_load_from_timings(_timings(page, ("/a.css", resource)), mode, "/", "chromium")
        assert f"chromium {mode}: " in str(raised.value) and "fell back" in str(raised.value)
    with pytest.raises(WrongProtocol, match=r"/a\.css over h2, not h3"):
        page_load_from_timings(_timings("h3", ("/a.css", "h2")), "h3-hints", "/", "firefox")


def test_protocol_names_and_the_browsers_h3_switches() -> None:
    assert [protocol_name(x) for x in ("h3", "h3-29", "HTTP/3", "h2", "http/2.0", "http/1.1")] == \
        ["h3", "h3", "h3", "h2", "h2", "http/1.1"]
    assert quic_flags("https://198.18.0.2:4433/") == ["--origin-to-force-quic-on=198.18.0.2:4433"]
    assert quic_flags("https://localhost:4433/") == ["--origin-to-force-quic-on=localhost:4433",
                                                     "--host-resolver-rules=MAP localhost 127.0.0.1"]
    assert h3_prefs(None) == {"network.http.http3.enable": False}
    prefs = h3_prefs(("198.18.0.2:4433", "198.18.0.2:4434"))
    assert prefs["network.http.http3.alt-svc-mapping-for-testing"] == "198.18.0.2;h3=:4433,198.18.0.2;h3=:4434"
