"""The packet shaper: the wire model alone (made-up times), then the real thing — a namespace of
the test's own, the relay between two TUN devices — measured from outside: a TCP handshake takes
the RTT asked for (the kernel's own sample of it, ±10%), a 1 MiB download arrives at the rate
asked for (±10%), 1% loss drops 1% (±0.5) of 10,000 UDP datagrams, and nothing is left behind,
also when the body of the ``with`` fails."""

from __future__ import annotations

import os
import random
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pushserve.bench import netns
from pushserve.bench.netns import PacketNetwork
from pushserve.bench.wire import Shape, Wire

# -- the model -------------------------------------------------------------------------------


def test_delay_is_half_the_rtt_each_way_and_order_is_kept() -> None:
    wire = Wire(Shape(rtt=0.1, jitter=0.03), random.Random(1))
    outs = [wire.offer(i * 0.001, b"x" * 100) for i in range(200)]
    assert all(o is not None for o in outs)
    # Jitter moves packets within ±30 ms of 50 ms, never ahead of the one before.
    delays = [o - i * 0.001 for i, o in enumerate(outs) if o is not None]
    assert min(delays) >= 0.02 - 1e-9 and max(delays) <= 0.08 + 0.001
    assert outs == sorted(outs)
    assert len(set(round(d, 6) for d in delays)) > 50  # it does jitter
    assert wire.due(0.05) == [] or all(p == b"x" * 100 for p in wire.due(0.05))


def test_rate_serialises_packets() -> None:
    wire = Wire(Shape(rtt=0.0, bits_per_s=8e6))  # 1 MB/s: a 1000-byte packet takes 1 ms
    outs = [wire.offer(0.0, b"x" * 1000) for _ in range(10)]
    assert outs == pytest.approx([0.001 * (i + 1) for i in range(10)])
    assert wire.offer(1.0, b"x" * 1000) == pytest.approx(1.001)  # an idle link starts afresh


def test_loss_and_queue_limit() -> None:
    wire = Wire(Shape(rtt=0.01, loss=0.01), random.Random(7))
    kept = 0
    for i in range(100_000):
        wire.due(i * 1e-5)  # what is due leaves, as the relay does between reads
        kept += wire.offer(i * 1e-5, b"x") is not None
    assert 98_500 <= kept <= 99_500 and wire.lost == 100_000 - kept
    full = Wire(Shape(rtt=1.0, limit=5))
    assert [full.offer(0.0, b"x") is not None for _ in range(7)] == [True] * 5 + [False] * 2
    assert full.overflowed == 2 and len(full.due(10.0)) == 5


# -- the real network -------------------------------------------------------------------------

WHY = netns.unavailable()
needs_netns = pytest.mark.skipif(WHY is not None, reason=f"packet shaper: {WHY}")

# Runs in the server's namespace: a TCP server that sends 1 MiB to whoever asks with b"d", and a
# UDP counter that answers a fence datagram with how many distinct sequence numbers it has seen.
_SERVER = """
import socket, struct, sys, threading
host = sys.argv[1]
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); tcp.bind((host, 0)); tcp.listen()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((host, 0))
udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
print(tcp.getsockname()[1], udp.getsockname()[1], flush=True)
def serve_tcp():
    while True:
        c, _ = tcp.accept()
        if c.recv(1) == b"d":
            c.sendall(b"x" * (1 << 20))
        c.close()
threading.Thread(target=serve_tcp, daemon=True).start()
seen = set()
while True:
    data, peer = udp.recvfrom(2048)
    if data[:1] == b"F":
        udp.sendto(data + struct.pack("!I", len(seen)), peer)
    else:
        seen.add(struct.unpack("!I", data[:4])[0])
"""


@contextmanager
def _served(net: PacketNetwork) -> Iterator[tuple[int, int]]:
    proc = subprocess.Popen(net.place.wrap([sys.executable, "-c", _SERVER, net.server]), stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        tcp_port, udp_port = map(int, proc.stdout.readline().split())
        yield tcp_port, udp_port
    finally:
        proc.kill()
        proc.wait()


def _handshake_rtt(host: str, port: int) -> float:
    """The kernel's sample of the SYN → SYN-ACK round trip (tcpi_rtt, µs), in seconds."""
    with socket.create_connection((host, port), timeout=10) as c:
        info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        c.sendall(b"n")
    rtt_us = struct.unpack_from("I", info, 68)[0]  # struct tcp_info: tcpi_rtt after 16 bytes + 13 u32
    return rtt_us / 1e6


def _ours_left() -> list[str]:
    """Namespaces and devices this process's shapers made that still exist."""
    pid = os.getpid()
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    links = re.findall(r"^\d+: ([^:@]+)", subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout,
                       re.MULTILINE)
    return [n for n in names + links if n.startswith((f"psb{pid}x", f"psbc{pid}x", f"psbs{pid}x"))]


@needs_netns
def test_handshake_takes_the_rtt_and_a_download_the_rate() -> None:
    rtt, rate = 0.05, 8e6
    with PacketNetwork(Shape(rtt=rtt, bits_per_s=rate), prefer_netem=False) as net:
        assert net.kind == "relay" and net.server.startswith(("198.18.", "198.19."))
        with _served(net) as (tcp_port, _):
            samples = sorted(_handshake_rtt(net.server, tcp_port) for _ in range(5))
            with socket.create_connection((net.server, tcp_port), timeout=30) as c:
                c.sendall(b"d")
                got, marks = 0, {}
                while chunk := c.recv(65536):
                    got += len(chunk)
                    for mark in (1 << 18, 1 << 20):  # time at 256 KiB (past slow start) and at the end
                        if got >= mark and mark not in marks:
                            marks[mark] = time.monotonic()
    assert got == 1 << 20
    handshake = samples[len(samples) // 2]
    assert rtt * 0.9 <= handshake <= rtt * 1.1, samples
    # Payload rate: each 1500-byte packet carries 1448 bytes (20 IP + 32 TCP with timestamps).
    expected = rate / 8 * 1448 / 1500
    measured = ((1 << 20) - (1 << 18)) / (marks[1 << 20] - marks[1 << 18])
    assert expected * 0.9 <= measured <= expected * 1.1, (measured, expected)
    assert net.counters["up"]["lost"] == net.counters["down"]["lost"] == 0
    assert not _ours_left()


@needs_netns
def test_one_percent_loss_drops_one_percent_of_udp_datagrams() -> None:
    count, batch = 10_000, 100
    with PacketNetwork(Shape(rtt=0.002, loss=0.01), prefer_netem=False) as net, _served(net) as (_, udp_port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)  # a lost fence (1% each way) is sent again, as TCP would after its RTO
        received = 0
        for start in range(0, count, batch):
            for seq in range(start, start + batch):
                s.sendto(struct.pack("!I", seq) + b"." * 60, (net.server, udp_port))
            fence = b"F" + struct.pack("!I", start)
            # The wire keeps order, so once the fence is back every datagram before it has
            # arrived or been dropped.
            for _ in range(50):
                s.sendto(fence, (net.server, udp_port))
                try:
                    answer = s.recv(64)
                except TimeoutError:
                    continue
                if answer[:5] == fence:
                    received = struct.unpack("!I", answer[5:9])[0]
                    break
            else:
                pytest.fail("no fence came back in 50 tries")
        s.close()
    lost = (count - received) / count
    assert 0.005 <= lost <= 0.015, (received, net.counters)
    assert net.counters["up"]["lost"] >= count - received  # the relay dropped them, on purpose
    assert not _ours_left()


@needs_netns
def test_everything_is_torn_down_on_errors() -> None:
    with pytest.raises(RuntimeError), PacketNetwork(Shape(rtt=0.01), prefer_netem=False) as net:
        name = net.name
        assert name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        raise RuntimeError("boom")
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not _ours_left()
