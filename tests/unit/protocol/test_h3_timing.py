"""How a worker's HTTP/3 side spends loop wake-ups: the pacer's bursts (protocol/h3/quic.py) and
the listener's one timer (server/quic.py), each on its own, with real objects and a real uvloop."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any, cast

import uvloop

from pushserve.protocol.h3.quic import LumpyPacer
from pushserve.server.quic import QuicListener

DATAGRAM = 1350


def _burst_bytes(cwnd: int, srtt: float) -> float:
    pacer = LumpyPacer(max_datagram_size=DATAGRAM)
    pacer.update_rate(cwnd, srtt)
    assert pacer.packet_time is not None
    return pacer.bucket_max * DATAGRAM / pacer.packet_time  # seconds of burst x bytes per second


def test_a_slow_path_may_still_burst_64_kib() -> None:
    # 1 MB window over 200 ms: 5 MB/s, where a millisecond is 5 KB (under four datagrams).
    assert round(_burst_bytes(1_000_000, 0.2)) == 64 * 1024


def test_a_fast_path_bursts_a_millisecond() -> None:
    # 4 MB over 20 ms: 200 MB/s, a millisecond (200 KB) is under a quarter of the window.
    assert round(_burst_bytes(4_000_000, 0.02)) == 200_000
    # 400 KB over 1 ms: 400 MB/s, a millisecond is 400 KB, capped at a quarter of the window.
    assert round(_burst_bytes(400_000, 0.001)) == 100_000


def test_a_burst_never_exceeds_a_quarter_of_the_window() -> None:
    # A small window: aioquic's own floor (two datagrams) is the burst.
    assert round(_burst_bytes(6 * DATAGRAM, 0.2)) == 2 * DATAGRAM
    assert round(_burst_bytes(100_000, 0.2)) == 25_000


def test_the_listener_timer_is_never_armed_less_than_a_tick_ahead() -> None:
    """uvloop runs a timer due in under half a millisecond at once, with its clock unmoved: a
    QUIC timer that close must not make the listener run, find nothing due and re-arm."""
    loop = uvloop.new_event_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        state = cast(Any, SimpleNamespace(loop=loop))
        listener = QuicListener(state, sock, cast(Any, None), b"s" * 32)
        fired: asyncio.Future[float] = loop.create_future()
        session = cast(Any, SimpleNamespace(timer_at=None, closed=False))
        session.on_timer = lambda now: fired.done() or fired.set_result(now)
        runs = 0
        fire = listener._fire

        def counted() -> None:
            nonlocal runs
            runs += 1
            fire()

        listener._fire = counted  # type: ignore[method-assign]
        before = loop.time()
        when = before + 0.0001
        listener.schedule(session, when)
        handle = listener.timer_handle
        # Whole milliseconds on uvloop's clock, read before arming: the clock may move on by the
        # time this line runs on a loaded machine, the armed time may not.
        assert handle is not None and round(handle.when() * 1000) >= round(before * 1000) + 1
        assert loop.run_until_complete(fired) >= when
        assert runs == 1  # once, when due: no spinning until the clock moved on
    finally:
        sock.close()
        loop.close()
