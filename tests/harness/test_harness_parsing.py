"""The throughput harness's readers: h2load and wrk output (samples are real output of h2load
1.52 and wrk 4.1 against Granian's static route, run on this repo's bench site) and the memory
of a real process tree from /proc.  No load is run here."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks.loadtools import parse_h2load, parse_wrk
from benchmarks.memory import measure, parse_smaps_rollup, parse_stat
from pushserve.bench.procs import BenchError

H2LOAD_1MIB = """\
starting benchmark...
spawning thread #0: 4 total client(s). 40 total requests
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
progress: 100% done

finished in 29.58ms, 1352.13 req/s, 1.32GB/s
requests: 40 total, 40 started, 40 done, 40 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 40 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 40.02MB (41967448) total, 428B (428) headers (space savings 90.93%), 40.00MB (41943040) data
                     min         max         mean         sd        +/- sd
time for request:      776us      3.81ms      1.91ms       749us    80.00%
"""

H2LOAD_404 = """\
spawning thread #0: 8 total client(s). 20000 total requests
Application protocol: h2

finished in 280.46ms, 71311.67 req/s, 2.31MB/s
requests: 20000 total, 20000 started, 20000 done, 0 succeeded, 20000 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 20000 4xx, 0 5xx
traffic: 664.72KB (680672) total, 136.95KB (140232) headers (space savings 90.12%), 175.78KB (180000) data
"""

WRK_OK = """\
Running 1s test @ https://127.0.0.1:41295/static/tiny.txt
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   307.66us  137.71us   2.85ms   80.03%
    Req/Sec    26.29k     2.03k   28.03k    81.82%
  28784 requests in 1.10s, 7.36MB read
Requests/sec:  26169.94
Transfer/sec:      6.69MB
"""

WRK_404 = """\
Running 2s test @ https://127.0.0.1:18444/static/nonexist.txt
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   136.15us  162.43us   4.55ms   98.51%
    Req/Sec    63.68k     6.77k   69.92k    85.00%
  126515 requests in 2.00s, 13.03MB read
  Non-2xx or 3xx responses: 126515
Requests/sec:  63217.77
Transfer/sec:      6.51MB
"""

SMAPS_ROLLUP = """\
560f6221f000-7fffa1ee5000 ---p 00000000 00:00 0                          [rollup]
Rss:                1768 kB
Pss:                 422 kB
Pss_Dirty:           116 kB
Shared_Clean:       1584 kB
Shared_Dirty:          0 kB
Private_Clean:        68 kB
Private_Dirty:       116 kB
Swap:                  0 kB
"""


def test_h2load_run_with_every_answer_right() -> None:
    run = parse_h2load(H2LOAD_1MIB)
    assert (run.protocol, run.total, run.status_2xx, run.data_bytes) == ("h2", 40, 40, 40 << 20)
    assert run.elapsed_s == pytest.approx(0.02958)
    assert run.rate == pytest.approx(1352.13)
    assert run.problem("h2", 1 << 20) is None


def test_h2load_run_is_refused_for_wrong_status_body_or_protocol() -> None:
    assert "0 of 20000 requests succeeded" in str(parse_h2load(H2LOAD_404).problem("h2"))
    ok = parse_h2load(H2LOAD_1MIB)
    assert "body bytes" in str(ok.problem("h2", 1000))
    assert "negotiated 'h2'" in str(ok.problem("http/1.1"))


def test_h2load_output_not_understood() -> None:
    with pytest.raises(BenchError, match="not understood"):
        parse_h2load("h2load: connection refused\n")


def test_wrk_reads_rate_and_flags_non_2xx() -> None:
    ok = parse_wrk(WRK_OK)
    assert (ok.requests, ok.rate, ok.problem()) == (28784, 26169.94, None)
    bad = parse_wrk(WRK_404)
    assert bad.non_2xx_3xx == 126515
    assert "not 2xx/3xx" in str(bad.problem())


def test_smaps_rollup_and_stat() -> None:
    assert parse_smaps_rollup(SMAPS_ROLLUP) == (1768, 422, 68 + 116)
    with pytest.raises(BenchError, match="Pss"):
        parse_smaps_rollup("Rss:   12 kB\n")
    # comm may hold spaces and parentheses; the ppid is the field after the state.
    assert parse_stat("12307 (tmux: a) b) S 12304 12304 6926 0 -1") == ("tmux: a) b", 12304)


def test_measure_covers_the_process_and_its_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        # The child exists once Popen returns; whatever it has mapped by now has an RSS.
        procs = measure(os.getpid())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    by_pid = {p.pid: p for p in procs}
    assert procs[0].pid == os.getpid() and child.pid in by_pid
    assert by_pid[child.pid].ppid == os.getpid()
    for p in (procs[0], by_pid[child.pid]):
        assert p.rss_kib >= p.pss_kib >= p.uss_kib > 0
