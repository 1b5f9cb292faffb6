"""A userspace netem: the relay that carries IP packets between two TUN devices — one in the
client's network namespace, one in the server's — holding each packet as long as the network
asked for would.  The kernel here has no ``netem`` qdisc (only rate shapers), so the bench brings
its own wire; where netem exists ``netns.py`` uses it instead.

Per direction, per packet, in netem's order:

- **loss**: dropped with probability ``loss`` (independently, as netem's ``loss random``);
- **rate**: serialised onto a link of ``bits_per_s`` — a packet starts when the previous one has
  left, and takes len*8/rate (the bottleneck queue that builds up is the real one);
- **queue limit**: a packet arriving when ``limit`` packets are held is dropped (netem's
  ``limit``, 1000 by default);
- **delay + jitter**: then it travels rtt/2, plus a uniform random ±``jitter``, but never
  overtakes the packet before it (netem reorders with jitter unless a rate is set; real paths
  rarely do).

``Wire`` is the model alone (no I/O: a test drives it with made-up times); ``relay`` moves real
packets; ``python -m pushserve.bench.wire`` is the relay process ``netns.py`` starts.  It makes
both TUN devices itself (they vanish when it exits, so a crashed bench leaves no device behind),
prints ``ready``, runs with real-time priority where allowed (so a loaded machine delays the
packets no more than asked), and prints its counters as one JSON line when its stdin closes."""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import json
import os
import random
import select
import signal
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

# From <linux/if_tun.h>: TUNSETIFF, and a TUN (IP packets, no Ethernet header) without the
# 4-byte packet-information prefix.
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
LIMIT = 1000  # packets held per direction, as netem's default
MAX_PACKET = 65536
READ_BURST = 256  # packets read from one device per wake-up, so the other side is not starved


@dataclass(frozen=True)
class Shape:
    """What the network does to every packet, the same in both directions."""

    rtt: float  # seconds, added in full to a round trip (half each way)
    bits_per_s: float | None = None
    loss: float = 0.0  # probability, per packet, per direction
    jitter: float = 0.0  # seconds, uniform ± on each one-way delay
    limit: int = LIMIT

    def describe(self) -> str:
        rate = f"{self.bits_per_s / 1e6:g} Mbit/s" if self.bits_per_s else "no rate limit"
        return (f"RTT {self.rtt * 1000:g} ms, {rate}, loss {self.loss * 100:g}%, "
                f"jitter ±{self.jitter * 1000:g} ms, limit {self.limit} packets")


@dataclass
class Wire:
    """One direction of the link: packets in with their arrival time, out when due."""

    shape: Shape
    rng: random.Random = field(default_factory=random.Random)
    queue: collections.deque[tuple[float, bytes]] = field(default_factory=collections.deque)
    free_at: float = 0.0  # when the (virtual) link finishes serialising what it was given
    last_out: float = 0.0  # departure of the latest packet: nothing leaves before it
    passed: int = 0
    lost: int = 0  # dropped by the loss probability
    overflowed: int = 0  # dropped because ``limit`` packets were held

    def offer(self, now: float, packet: bytes) -> float | None:
        """Take a packet arriving at ``now``; its departure time, or None if it is dropped."""
        if self.shape.loss and self.rng.random() < self.shape.loss:
            self.lost += 1
            return None
        if len(self.queue) >= self.shape.limit:
            self.overflowed += 1
            return None
        sent = now
        if self.shape.bits_per_s:
            self.free_at = max(self.free_at, now) + len(packet) * 8 / self.shape.bits_per_s
            sent = self.free_at
        delay = self.shape.rtt / 2
        if self.shape.jitter:
            delay = max(0.0, delay + self.rng.uniform(-self.shape.jitter, self.shape.jitter))
        out = max(sent + delay, self.last_out)
        self.last_out = out
        self.queue.append((out, packet))
        return out

    def next_due(self) -> float | None:
        return self.queue[0][0] if self.queue else None

    def due(self, now: float) -> list[bytes]:
        """The packets whose time has come, in order."""
        out = []
        while self.queue and self.queue[0][0] <= now:
            out.append(self.queue.popleft()[1])
        self.passed += len(out)
        return out

    def counters(self) -> dict[str, int]:
        return {"passed": self.passed, "lost": self.lost, "overflowed": self.overflowed, "held": len(self.queue)}


def open_tun(name: str) -> int:
    """A new TUN device ``name`` (non-persistent: it goes when the fd closes), non-blocking fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def relay(client_fd: int, server_fd: int, up: Wire, down: Wire, stop_fd: int) -> None:
    """Carry packets client → server through ``up`` and back through ``down`` until ``stop_fd``
    is readable (EOF on the relay's stdin)."""
    routes = {client_fd: (up, server_fd), server_fd: (down, client_fd)}
    clock = time.monotonic
    while True:
        nexts = [t for t in (up.next_due(), down.next_due()) if t is not None]
        timeout = max(0.0, min(nexts) - clock()) if nexts else None
        ready, _, _ = select.select([client_fd, server_fd, stop_fd], [], [], timeout)
        if stop_fd in ready:
            return
        now = clock()
        for fd in ready:
            wire = routes[fd][0]
            for _ in range(READ_BURST):
                try:
                    packet = os.read(fd, MAX_PACKET)
                except BlockingIOError:
                    break
                wire.offer(now, packet)
        now = clock()
        for wire, out_fd in routes.values():
            for packet in wire.due(now):
                # A write the stack refuses (no buffer) is a packet lost on the wire, as on a link.
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(out_fd, packet)


def _realtime() -> bool:
    """Lowest real-time priority: the relay wakes on time even when every CPU is busy (it only
    ever blocks in select, and the kernel keeps 5% of each CPU for other tasks regardless)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pushserve.bench.wire", description=__doc__.split("\n\n")[0])
    p.add_argument("client_tun")
    p.add_argument("server_tun")
    p.add_argument("--rtt", type=float, required=True, help="seconds")
    p.add_argument("--rate", type=float, default=0.0, help="bits per second (0: no limit)")
    p.add_argument("--loss", type=float, default=0.0, help="probability per packet")
    p.add_argument("--jitter", type=float, default=0.0, help="seconds")
    p.add_argument("--limit", type=int, default=LIMIT)
    p.add_argument("--seed", type=int, default=None)
    ns = p.parse_args(argv)
    shape = Shape(ns.rtt, ns.rate or None, ns.loss, ns.jitter, ns.limit)
    rng = random.Random(ns.seed)
    up, down = Wire(shape, random.Random(rng.random())), Wire(shape, random.Random(rng.random()))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    client_fd, server_fd = open_tun(ns.client_tun), open_tun(ns.server_tun)
    realtime = _realtime()
    print(json.dumps({"ready": True, "realtime": realtime}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        relay(client_fd, server_fd, up, down, sys.stdin.fileno())
    print(json.dumps({"up": up.counters(), "down": down.counters(), "realtime": realtime}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
