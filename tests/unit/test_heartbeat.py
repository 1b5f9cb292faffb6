"""The heartbeat byte, as a worker beats it and the master watches it (server/heartbeat.py)."""

from __future__ import annotations

import os

from pushserve.server.heartbeat import Heartbeat


def test_silence_is_counted_from_the_last_change_the_master_saw() -> None:
    hb = Heartbeat(now=100.0)
    hb.watch(101.0)
    assert hb.silent_for(101.5) == 1.5  # never beaten: silent since the watch began, not since 0
    hb.beat()
    hb.watch(102.0)
    assert hb.silent_for(102.25) == 0.25
    hb.watch(105.0)
    assert hb.silent_for(105.0) == 3.0
    hb.close()


def test_restart_forgets_what_was_seen_before() -> None:
    """A master that was away (or a worker that has just said "ready") judges from now on."""
    hb = Heartbeat(now=0.0)
    hb.watch(50.0)
    hb.restart(60.0)
    assert hb.silent_for(60.5) == 0.5
    hb.close()


def test_every_value_of_the_byte_counts_as_a_change_and_it_wraps() -> None:
    hb = Heartbeat(now=0.0)
    for i in range(600):
        hb.beat()
        hb.watch(float(i))
        assert hb.silent_for(float(i)) == 0.0
    hb.close()


def test_a_forked_worker_beats_into_the_masters_page() -> None:
    hb = Heartbeat(now=0.0)
    pid = os.fork()
    if pid == 0:
        hb.beat()
        os._exit(0)
    os.waitpid(pid, 0)
    hb.watch(7.0)
    assert hb.silent_for(7.0) == 0.0
    hb.close()
