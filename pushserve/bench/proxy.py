"""A TCP proxy on 127.0.0.1 that makes loopback look like a real network: every byte is held for
half the round-trip time in each direction, and optionally squeezed through a bandwidth limit.

No root and no ``tc netem``: each direction is a queue of chunks stamped with the time they may
leave (arrival + one-way delay, later if the bandwidth limit says so).  A single writer per
direction waits for the head's time and writes everything that is due, so order is kept and the
timer count is per chunk, never per byte.

Bandwidth is a token bucket per direction whose depth is one piece (``PIECE`` bytes): a chunk is
cut into pieces and each piece leaves when the link has finished sending the previous ones, which
is what serialisation on a slow link does.  Delay is then added on top (propagation)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

READ_SIZE = 65536
# Pieces small enough that a 20 Mbit/s link releases data every ~3 ms, not in 26 ms lumps.
PIECE = 8192
# Bytes a direction may hold before it stops reading from its sender (TCP backpressure then
# slows the sender down the same way a full network path would).
MAX_QUEUED = 8 * 1024 * 1024

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_UNITS_BPS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bps": 8, "kbps": 8e3, "mbps": 8e6}


def parse_duration(text: str) -> float:
    """``"50ms"`` → 0.05 seconds (units us, ms, s; a bare number is milliseconds)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*(us|ms|s)?\s*", text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (try 50ms)")
    return float(m.group(1)) * _UNITS_S[m.group(2) or "ms"]


def parse_rate(text: str) -> float | None:
    """``"20mbit"`` → 20e6 bits per second; ``"0"``/``"none"`` → no limit."""
    if text.strip().lower() in ("0", "none", "off", ""):
        return None
    m = re.fullmatch(r"\s*([\d.]+)\s*([a-z]+)\s*", text.lower())
    if not m or m.group(2) not in _UNITS_BPS:
        raise ValueError(f"not a rate: {text!r} (try 20mbit)")
    return float(m.group(1)) * _UNITS_BPS[m.group(2)]


@dataclass
class Link:
    """One direction's timing model: the one-way delay and the optional rate in bytes/s."""

    delay: float
    bytes_per_s: float | None = None
    # When the (virtual) wire finishes sending what it has been given so far.
    free_at: float = 0.0
    # Nothing leaves before this time (models the TCP handshake the loopback connect skipped).
    not_before: float = 0.0

    def schedule(self, now: float, data: bytes) -> Iterator[tuple[float, bytes]]:
        """Release times for ``data`` arriving at ``now``; never decreasing, so order is kept."""
        if self.bytes_per_s is None:
            yield max(now + self.delay, self.not_before), data
            return
        for i in range(0, len(data), PIECE):
            piece = data[i:i + PIECE]
            self.free_at = max(self.free_at, now) + len(piece) / self.bytes_per_s
            yield max(self.free_at + self.delay, self.not_before), piece


class _Direction:
    """Reads one socket, holds each chunk until its time, writes it to the other socket."""

    def __init__(self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.link = link
        self.reader = reader
        self.writer = writer
        # (release time, data); b"" marks EOF and is released like data so a FIN is delayed too.
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self.changed = asyncio.Event()
        self.bytes = 0

    async def pump_in(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while self.queued > MAX_QUEUED:
                    self.changed.clear()
                    await self.changed.wait()
                data = await self.reader.read(READ_SIZE)
                now = loop.time()
                if not data:
                    self.queue.append((now + self.link.delay, b""))
                    self.changed.set()
                    return
                for when, piece in self.link.schedule(now, data):
                    self.queue.append((when, piece))
                    self.queued += len(piece)
                self.changed.set()
        except (ConnectionError, OSError):
            self.queue.append((loop.time(), b""))
            self.changed.set()

    async def pump_out(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self.changed.clear()
                await self.changed.wait()
            wait = self.queue[0][0] - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # Everything already due goes out in one write.
            now = loop.time()
            out: list[bytes] = []
            eof = False
            while self.queue and self.queue[0][0] <= now:
                _, data = self.queue.popleft()
                if not data:
                    eof = True
                    break
                out.append(data)
            if out:
                blob = b"".join(out)
                self.queued -= len(blob)
                self.bytes += len(blob)
                self.changed.set()  # wakes a reader paused on MAX_QUEUED
                self.writer.write(blob)
                await self.writer.drain()
            if eof:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return


def _nodelay(writer: asyncio.StreamWriter) -> None:
    # Delayed chunks must not be delayed again by Nagle waiting for an ACK.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LatencyProxy:
    """``async with LatencyProxy(("127.0.0.1", 8443), rtt=0.05) as proxy:`` then connect to
    ``127.0.0.1:proxy.port``.  ``rtt`` is added in full to every round trip (half each way)."""

    def __init__(self, upstream: tuple[str, int], rtt: float, bits_per_s: float | None = None,
                 handshake: bool = True) -> None:
        self.upstream = upstream
        self.rtt = rtt
        self.bits_per_s = bits_per_s
        self.handshake = handshake
        self.port = 0
        self.connections = 0
        # Client port → when its connection was accepted (monotonic: the loop's clock), so a
        # client can tell the modelled TCP handshake apart from its TLS handshake.
        self.accepted: dict[int, float] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connected_at(self, client_port: int) -> float | None:
        """When the client's modelled TCP handshake completed (one RTT after the connect), or None
        for a port this proxy has not seen."""
        accepted = self.accepted.get(client_port)
        if accepted is None:
            return None
        return accepted + (self.rtt if self.handshake else 0.0)

    def connected_between(self, lo: float, hi: float) -> float | None:
        """For a client whose port is unknown (Chromium): when the TCP handshake of the first
        connection accepted between monotonic ``lo`` and ``hi`` completed, or None."""
        times = [t for t in list(self.accepted.values()) if lo <= t <= hi]
        if not times:
            return None
        return min(times) + (self.rtt if self.handshake else 0.0)

    def _link(self) -> Link:
        return Link(self.rtt / 2, self.bits_per_s / 8 if self.bits_per_s else None)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> LatencyProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        u_writer: asyncio.StreamWriter | None = None
        try:
            accepted = asyncio.get_running_loop().time()
            peer = c_writer.get_extra_info("peername")
            if peer is not None:
                if len(self.accepted) > 10_000:  # a long bench: forget the old ports
                    self.accepted.clear()
                self.accepted[peer[1]] = time.monotonic()  # the loader's clock, whatever the loop's
            u_reader, u_writer = await asyncio.open_connection(*self.upstream)
            _nodelay(c_writer)
            _nodelay(u_writer)
            up, down = self._link(), self._link()
            if self.handshake:
                # Loopback connect() returned at once; over a real path the client could send
                # only after SYN/SYN-ACK (one RTT), and its bytes then need half an RTT more.
                up.not_before = accepted + 1.5 * self.rtt
            pipes = (_Direction(up, c_reader, u_writer), _Direction(down, u_reader, c_writer))
            # A TaskGroup so that a reset in one pump cancels the other three.
            async with asyncio.TaskGroup() as tg:
                for pipe in pipes:
                    tg.create_task(pipe.pump_in())
                    tg.create_task(pipe.pump_out())
        except* (ConnectionError, OSError):
            pass
        except* asyncio.CancelledError:
            # Only close() cancels these; ending quietly keeps asyncio's stream callback from
            # logging the cancellation as an error.
            pass
        finally:
            for w in (c_writer, u_writer):
                if w is not None:
                    w.close()
            self._tasks.discard(task)


class ProxyThread:
    """The proxy on its own event loop in a thread, so that the client being measured (which
    parses and decrypts on its own loop) does not add its CPU time to the proxy's timers."""

    def __init__(self, upstream: tuple[str, int], rtt: float, bits_per_s: float | None = None,
                 handshake: bool = True) -> None:
        self.proxy = LatencyProxy(upstream, rtt, bits_per_s, handshake)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.proxy.start()
        finally:
            self._ready.set()
        await self._stop.wait()
        await self.proxy.close()

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        if not self._ready.wait(timeout=10) or not self.proxy.port:
            raise RuntimeError("latency proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    @property
    def port(self) -> int:
        return self.proxy.port
