"""The network a bench run loads through, chosen once for the whole run so every row — every
engine, every protocol — is compared under the same one:

- ``packet`` (``netns.PacketNetwork``): the servers in a namespace of their own; every packet, both
  directions, any protocol (UDP too), delayed, rate-limited, lost and jittered on its way —
  by the kernel's netem where it exists, else by the bench's userspace relay;
- ``proxy`` (``proxy.ProxyThread``): a TCP proxy on loopback in front of each server, which holds
  each write for half the RTT and squeezes it through the rate limit.  No root needed; TCP
  only, request-level (no loss, no jitter, and a handshake it can only model).

``auto`` takes the packet shaper where namespaces can be made (root, ``ip``, ``/dev/net/tun``)
and the proxy elsewhere; the report says which one ran."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from pushserve.bench import netns
from pushserve.bench.procs import LOOPBACK, BenchError, Place
from pushserve.bench.proxy import ProxyThread
from pushserve.bench.wire import Shape

SHAPERS = ("auto", "packet", "proxy")


@dataclass(frozen=True)
class Exposed:
    """A server as the clients reach it; the proxy also knows when its modelled TCP handshakes
    ended (a client on loopback connects at once and cannot tell)."""

    url: str
    proxy: ProxyThread | None = None


class Network(Protocol):
    kind: str  # "relay", "netem" or "proxy"
    place: Place  # where servers run

    def expose(self, base: str) -> Exposed: ...

    def describe(self) -> str: ...

    def __enter__(self) -> Network: ...

    def __exit__(self, *exc: object) -> None: ...


class ProxyNetwork:
    """One latency proxy per server, on loopback."""

    kind = "proxy"
    place = LOOPBACK

    def __init__(self, shape: Shape) -> None:
        if shape.loss or shape.jitter:
            raise BenchError("--loss and --jitter need the packet shaper (--shaper packet: root, network namespaces)")
        self.shape = shape
        self._stack = ExitStack()

    def describe(self) -> str:
        rate = f"{self.shape.bits_per_s / 1e6:g} Mbit/s" if self.shape.bits_per_s else "no rate limit"
        return (f"latency proxy: TCP on loopback, each write held RTT/2 each way (RTT {self.shape.rtt * 1000:g} ms, "
                f"{rate}); the TCP handshake modelled, no loss, no jitter")

    def expose(self, base: str) -> Exposed:
        upstream = urlsplit(base)
        proxy = self._stack.enter_context(ProxyThread((upstream.hostname or "127.0.0.1", upstream.port or 443),
                                                      self.shape.rtt, self.shape.bits_per_s))
        return Exposed(f"https://127.0.0.1:{proxy.port}", proxy)

    def __enter__(self) -> ProxyNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


class PacketShaper:
    """The packet shaper as a ``Network``: servers run in its namespace, clients reach them there."""

    def __init__(self, shape: Shape) -> None:
        self.net = netns.PacketNetwork(shape)
        self.kind = ""
        self.place = LOOPBACK

    def describe(self) -> str:
        return self.net.describe()

    def expose(self, base: str) -> Exposed:
        return Exposed(base)

    @property
    def server(self) -> str:
        return self.net.server

    def __enter__(self) -> PacketShaper:
        self.net.__enter__()
        self.kind, self.place = self.net.kind, self.net.place
        return self

    def __exit__(self, *exc: object) -> None:
        self.net.__exit__(*exc)


def choose(shaper: str, shape: Shape) -> Network:
    """The network for ``--shaper`` (not yet entered); BenchError when the choice cannot run here."""
    if shaper not in SHAPERS:
        raise BenchError(f"--shaper {shaper}: choose from {', '.join(SHAPERS)}")
    why = netns.unavailable()
    if shaper == "packet" and why is not None:
        raise BenchError(f"--shaper packet: {why}")
    if shaper == "proxy" or (shaper == "auto" and why is not None):
        return ProxyNetwork(shape)
    return PacketShaper(shape)
