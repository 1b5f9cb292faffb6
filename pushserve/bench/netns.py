"""The packet shaper's network: the servers in a network namespace of the bench's own, reached
from the client's (the root namespace) over a point-to-point link whose packets are delayed,
rate-limited, lost and jittered — every protocol alike, TCP and UDP, both directions.

    client (root ns) 198.18.X.1 ── psbcN ══ relay ══ psbsN ── 198.18.X.2 server (ns psbPIDxN)

- **netem**, where the kernel has it: a veth pair with a ``netem`` qdisc on each end.
- **relay** otherwise (this machine's kernel has no netem): two TUN devices and the userspace
  wire between them (``wire.py``, its own process).

Addresses come from 198.18.0.0/15, the range RFC 2544 sets aside for benchmarks, one /30 per
namespace, checked against the addresses in use.  Nothing outside a namespace this module made
is ever touched or targeted: its names carry the bench's process id, and a namespace left by a
bench that was killed (its process id gone) is removed at the next start.  Everything is torn
down on the way out, errors included: processes still in the namespace are killed, the relay
stops (its TUN devices go with it), the namespace is deleted."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from typing import IO, Any

from pushserve.bench.procs import BenchError, Place, pythonpath
from pushserve.bench.wire import Shape

PREFIX = "psb"
BENCH_RANGE = ipaddress.ip_network("198.18.0.0/15")
_OURS = re.compile(rf"^{PREFIX}(\d+)x(\d+)$")
_counter = 0
_counter_lock = threading.Lock()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    if check and done.returncode != 0:
        raise BenchError(f"ip {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
    return done


def unavailable() -> str | None:
    """Why namespaces cannot be made here (not root, no ``ip``, no TUN device), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no 'ip' command (Debian: iproute2)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return None


def _next() -> int:
    global _counter
    with _counter_lock:
        _counter += 1
        return _counter


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(name: str) -> None:
    """SIGKILL whatever still runs in namespace ``name`` (one of ours)."""
    done = _ip("netns", "pids", name, check=False)
    for pid in done.stdout.split():
        with suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def remove_stale() -> list[str]:
    """Delete the namespaces of benches that are gone (their process id no longer runs)."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _OURS.match(name)
        if m and not _alive(int(m.group(1))):
            _kill_inside(name)
            if _ip("netns", "del", name, check=False).returncode == 0:
                removed.append(name)
    return removed


def _addresses_in_use() -> set[ipaddress.IPv4Address]:
    used = set()
    for line in _ip("-o", "-4", "addr", "show", check=False).stdout.splitlines():
        for m in re.finditer(r"(?:inet|peer) (\d+\.\d+\.\d+\.\d+)", line):
            used.add(ipaddress.IPv4Address(m.group(1)))
    return used


def _pick_pair(seq: int) -> tuple[str, str]:
    """A free /30 of the benchmark range: (client address, server address)."""
    used = _addresses_in_use()
    blocks = BENCH_RANGE.num_addresses // 4
    start = (os.getpid() * 131 + seq * 7) % blocks
    for k in range(blocks):
        base = BENCH_RANGE.network_address + 4 * ((start + k) % blocks)
        client, server = base + 1, base + 2
        if client not in used and server not in used:
            return str(client), str(server)
    raise BenchError("no free address pair in 198.18.0.0/15")


@dataclass
class PacketNetwork:
    """``with PacketNetwork(shape) as net:`` start servers with ``net.place``, load
    ``https://{net.server}:PORT``.  ``kind`` says which shaper ran ("netem" or "relay")."""

    shape: Shape
    prefer_netem: bool = True
    seed: int | None = None
    kind: str = ""
    name: str = ""
    client: str = ""
    server: str = ""
    counters: dict[str, Any] = field(default_factory=dict)
    realtime: bool = False
    _relay: subprocess.Popen[str] | None = None
    _made: bool = False

    @property
    def place(self) -> Place:
        return Place(self.server, ("ip", "netns", "exec", self.name))

    def describe(self) -> str:
        how = ("the kernel's netem on a veth pair" if self.kind == "netem" else
               "a userspace relay between two TUN devices" + (" (real-time priority)" if self.realtime else ""))
        carried = ""
        if "up" in self.counters and "down" in self.counters:
            up, down = self.counters["up"], self.counters["down"]
            lost, full = up["lost"] + down["lost"], up["overflowed"] + down["overflowed"]
            carried = (f"; it carried {up['passed']:,} packets to the server and {down['passed']:,} back, "
                       f"dropped {lost:,} (loss) and {full:,} (queue full)")
        return (f"packet shaper: {how}, server in network namespace {self.name} at {self.server}; "
                f"{self.shape.describe()}, each direction{carried}")

    def __enter__(self) -> PacketNetwork:
        why = unavailable()
        if why is not None:
            raise BenchError(f"packet shaper: {why}")
        remove_stale()
        seq = _next()
        self.name = f"{PREFIX}{os.getpid()}x{seq}"
        try:
            _ip("netns", "add", self.name)
            self._made = True
            _ip("-n", self.name, "link", "set", "lo", "up")
            self.client, self.server = _pick_pair(seq)
            dev_c, dev_s = f"{PREFIX}c{os.getpid()}x{seq}"[:15], f"{PREFIX}s{os.getpid()}x{seq}"[:15]
            if not (self.prefer_netem and self._netem(dev_c, dev_s)):
                self._start_relay(dev_c, dev_s)
            # Point-to-point: each side routes only the other's address, nothing else changes.
            _ip("addr", "add", self.client, "peer", self.server, "dev", dev_c)
            _ip("link", "set", dev_c, "up")
            _ip("-n", self.name, "addr", "add", self.server, "peer", self.client, "dev", dev_s)
            _ip("-n", self.name, "link", "set", dev_s, "up")
        except BaseException:
            self.close()
            raise
        return self

    def _netem(self, dev_c: str, dev_s: str) -> bool:
        if shutil.which("tc") is None:
            return False
        if _ip("link", "add", dev_c, "type", "veth", "peer", "name", dev_s, "netns", self.name,
               check=False).returncode != 0:
            return False
        for wrapper, dev in (([], dev_c), (["ip", "netns", "exec", self.name], dev_s)):
            done = subprocess.run([*wrapper, "tc", "qdisc", "add", "dev", dev, "root", *netem_args(self.shape)],
                                  capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                _ip("link", "del", dev_c, check=False)  # takes its peer with it
                return False
        self.kind = "netem"
        return True

    def _start_relay(self, dev_c: str, dev_s: str) -> None:
        s = self.shape
        cmd = [sys.executable, "-m", "pushserve.bench.wire", dev_c, dev_s, "--rtt", repr(s.rtt),
               "--rate", repr(s.bits_per_s or 0.0), "--loss", repr(s.loss), "--jitter", repr(s.jitter),
               "--limit", str(s.limit)]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        # stdin is the relay's lifeline: it stops when the pipe closes (here, or when we die).
        self._relay = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, env={**os.environ, "PYTHONPATH": pythonpath()})
        first = _readline(self._relay.stdout)
        if not first:
            err = self._relay.stderr.read() if self._relay.stderr else ""
            self._relay.wait(timeout=10)
            raise BenchError(f"packet relay did not start: {err.strip().splitlines()[-1:] or '(no output)'}")
        self.realtime = bool(json.loads(first).get("realtime"))
        _ip("link", "set", dev_s, "netns", self.name)
        self.kind = "relay"

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._made:
            _kill_inside(self.name)
        if self._relay is not None:
            relay, self._relay = self._relay, None
            try:  # communicate() closes the relay's stdin: its signal to stop
                out, _ = relay.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                relay.kill()
                out, _ = relay.communicate()
            for line in out.splitlines():
                with suppress(ValueError):
                    self.counters = json.loads(line)
        if self._made:
            self._made = False
            _ip("netns", "del", self.name, check=False)


def _readline(stream: IO[str] | None) -> str:
    return stream.readline() if stream is not None else ""


def netem_args(shape: Shape) -> list[str]:
    """The netem qdisc's arguments for one direction (half the RTT each way)."""
    args = ["netem", "limit", str(shape.limit), "delay", f"{shape.rtt / 2 * 1e6:.0f}us"]
    if shape.jitter:
        args.append(f"{shape.jitter * 1e6:.0f}us")
    if shape.loss:
        args += ["loss", "random", f"{shape.loss * 100:g}%"]
    if shape.bits_per_s:
        args += ["rate", f"{shape.bits_per_s:.0f}bit"]
    return args

