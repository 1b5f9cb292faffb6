"""The bench's latency proxy: the delay it adds is the delay asked for, and bytes pass intact."""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import pytest

from pushserve.bench.proxy import PIECE, LatencyProxy, Link, ProxyThread, parse_duration, parse_rate

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _serve(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _round_trips(port: int, count: int) -> tuple[float, list[float]]:
    """Connect-to-first-echo time, then the time of ``count`` further one-byte round trips."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"x")
    await reader.readexactly(1)
    first = time.perf_counter() - t0
    times = []
    for _ in range(count):
        t = time.perf_counter()
        writer.write(b"y")
        await reader.readexactly(1)
        times.append(time.perf_counter() - t)
    writer.close()
    return first, times


@pytest.mark.parametrize("rtt", [0.02, 0.06])
def test_added_round_trip_is_the_rtt_asked_for(rtt: float) -> None:
    async def main() -> tuple[float, float]:
        server, port = await _serve(_echo)
        async with server, LatencyProxy(("127.0.0.1", port), rtt=rtt, handshake=False) as proxy:
            _, direct = await _round_trips(port, 15)
            _, proxied = await _round_trips(proxy.port, 15)
        return statistics.median(direct), statistics.median(proxied)

    direct, proxied = asyncio.run(main())
    added = proxied - direct
    # Timers on a loaded box fire late, never early: a little slack below, more above.
    assert rtt - 0.002 <= added < 2 * rtt, (rtt, added)  # one round trip added, not two


def test_handshake_costs_one_more_round_trip_before_the_first_byte() -> None:
    rtt = 0.04

    async def main() -> tuple[float, float]:
        server, port = await _serve(_echo)
        async with server, LatencyProxy(("127.0.0.1", port), rtt=rtt, handshake=True) as proxy:
            first, later = await _round_trips(proxy.port, 5)
        return first, statistics.median(later)

    first, later = asyncio.run(main())
    # TCP handshake (1 RTT) + the request's own round trip; later exchanges pay one RTT.  The upper
    # bounds only tell "this many round trips, not one more" (a loaded machine adds its own delay).
    assert 2 * rtt - 0.002 <= first < 3 * rtt, first
    assert rtt - 0.002 <= later < 2 * rtt, later


@pytest.mark.parametrize("bits_per_s", [None, 400e6])
def test_one_megabyte_crosses_intact_both_ways(bits_per_s: float | None) -> None:
    up_blob, down_blob = os.urandom(1 << 20), os.urandom(1 << 20)

    async def source_and_sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Sends its own blob while reading the client's, then answers with the client's digest.
        writer.write(down_blob)
        got = await reader.readexactly(len(up_blob))
        writer.write(hashlib.sha256(got).digest())
        await writer.drain()
        writer.close()

    async def main() -> tuple[bytes, bytes]:
        server, port = await _serve(source_and_sink)
        async with server, LatencyProxy(("127.0.0.1", port), rtt=0.01, bits_per_s=bits_per_s) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(up_blob)
            received = await reader.readexactly(len(down_blob))
            digest = await reader.readexactly(32)
            assert await reader.read() == b""  # the server's FIN came through too
            writer.close()
        return received, digest

    received, digest = asyncio.run(main())
    assert received == down_blob
    assert digest == hashlib.sha256(up_blob).digest()


def test_proxy_thread_serves_from_its_own_loop() -> None:
    blob = os.urandom(200_000)

    async def server_main(port_box: list[int], done: asyncio.Event) -> None:
        server, port = await _serve(_echo)
        port_box.append(port)
        async with server:
            await done.wait()

    async def main() -> bytes:
        box: list[int] = []
        done = asyncio.Event()
        task = asyncio.create_task(server_main(box, done))
        while not box:
            await asyncio.sleep(0)  # yield to let the server bind; no wall-clock wait
        with ProxyThread(("127.0.0.1", box[0]), rtt=0.01) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(blob)
            back = await reader.readexactly(len(blob))
            writer.close()
        done.set()
        await task
        return back

    assert asyncio.run(main()) == blob


def test_link_schedule_serialises_pieces_then_adds_delay() -> None:
    link = Link(delay=0.025, bytes_per_s=PIECE * 100.0)  # one piece every 10 ms
    times = [t for t, _ in link.schedule(1.0, b"a" * (PIECE * 3))]
    assert times == pytest.approx([1.035, 1.045, 1.055])
    # Data arriving while the wire is still busy queues behind it.
    later = [t for t, _ in link.schedule(1.001, b"b" * 10)]
    assert later[0] > times[-1]
    # No bandwidth limit: one chunk, released after the delay, never before not_before.
    free = Link(delay=0.025, not_before=2.0)
    assert list(free.schedule(1.0, b"xyz")) == [(2.0, b"xyz")]


def test_parse_units() -> None:
    assert parse_duration("50ms") == pytest.approx(0.05)
    assert parse_duration("0.2s") == pytest.approx(0.2)
    assert parse_duration("80") == pytest.approx(0.08)
    assert parse_rate("20mbit") == 20e6
    assert parse_rate("1mbps") == 8e6
    assert parse_rate("none") is None
    with pytest.raises(ValueError):
        parse_duration("fast")
    with pytest.raises(ValueError):
        parse_rate("20 furlongs")
