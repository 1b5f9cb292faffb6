"""Child processes for the bench: free ports, CPU pinning, readiness by a printed line or a port
probe, and a guaranteed kill.

Servers are read through a drain thread: a server that logs must never block on a full pipe in
the middle of a measurement, and the last lines are kept for the error message when it dies."""

from __future__ import annotations

import collections
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pushserve

SERVER_CPU = 0
CLIENT_CPU = 1


class BenchError(Exception):
    """A failure the bench reports in one line (a server that did not start, a tool missing)."""


@dataclass(frozen=True)
class Place:
    """Where a server the bench starts runs: the address it binds and how its command is wrapped
    (``ip netns exec NAME`` for the packet shaper's namespace; nothing on loopback)."""

    host: str = "127.0.0.1"
    wrapper: tuple[str, ...] = ()

    def wrap(self, cmd: Sequence[str]) -> list[str]:
        return [*self.wrapper, *cmd]


LOOPBACK = Place()
# A starter starts one server at a place and yields its base URL (https://HOST:PORT).
Starter = Callable[[Place], AbstractContextManager[str]]


def pythonpath() -> str:
    """PYTHONPATH for a child that must run the pushserve this process imports (the checkout or
    site-packages), whatever the child's working folder."""
    root = str(Path(pushserve.__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def free_port() -> int:
    """A port that was free a moment ago, for peers that need a fixed port in their config."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def can_pin() -> bool:
    """Pinning only means something with taskset and at least two CPUs we may run on."""
    return shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2


def pinned(cmd: Sequence[str], cpu: int) -> list[str]:
    """``cmd`` prefixed with ``taskset -c cpu`` when pinning is possible (affinity is inherited
    by forked workers, so pinning the parent pins the whole server)."""
    if can_pin():
        return ["taskset", "-c", str(cpu), *cmd]
    return list(cmd)


class Child:
    """A running child whose merged stdout/stderr is drained into a queue by a thread."""

    def __init__(self, name: str, cmd: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self._lines: queue.Queue[str | None] = queue.Queue()
        # A new session so the kill reaches forked workers too (signal to the process group).
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
        )
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.tail.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        """Block until a line matches ``pattern``; fail if the child exits or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no readiness line within {timeout:.0f}s; "
                                 f"last output: {self.last_output()}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise BenchError(f"{self.name} exited ({self.proc.wait()}): {self.last_output()}")
            m = pattern.search(line)
            if m:
                return m

    def wait_for_port(self, port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
        """Readiness for servers that print nothing useful: a TCP connect that succeeds.  Each
        failed attempt waits on the connect itself (bounded), not on a fixed sleep."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.proc.returncode}): {self.last_output()}")
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                # Nothing listens yet: wait for the child to change state rather than spin.
                with suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.05)
        raise BenchError(f"{self.name}: port {port} not accepting within {timeout:.0f}s")

    def last_output(self) -> str:
        return " | ".join(list(self.tail)[-5:]) or "(no output)"

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL if it lingers; always reaps."""
        if self.proc.poll() is None:
            for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            # The leader is gone but forked workers may still hold the group.
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._thread.join(timeout=2.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def running(name: str, cmd: Sequence[str], env: Mapping[str, str] | None = None,
            cwd: str | None = None) -> Iterator[Child]:
    """Start a child and stop it on the way out, whatever happens in between."""
    child = Child(name, cmd, env=env, cwd=cwd)
    try:
        yield child
    finally:
        child.stop()


def trust_ca(nssdb: Path, ca_pem: Path) -> None:
    """A new NSS database in ``nssdb`` (a folder) that trusts ``ca_pem`` for TLS servers: how
    the browsers trust the run's CA without touching the user's own stores."""
    for cmd in (["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"],
                ["certutil", "-A", "-n", "pushserve bench CA", "-t", "C,,", "-i", str(ca_pem), "-d", f"sql:{nssdb}"]):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BenchError(f"certutil: {e}") from e
        if done.returncode != 0:
            raise BenchError(f"certutil: {(done.stderr or done.stdout).strip()}")


def run_client(cmd: Sequence[str], timeout: float) -> str:
    """Run a load client pinned to the client CPU; its output, or BenchError on failure."""
    try:
        done = subprocess.run(pinned(cmd, CLIENT_CPU), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{cmd[0]} did not finish within {timeout:.0f}s") from e
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-300:]
        raise BenchError(f"{cmd[0]} failed ({done.returncode}): {detail}")
    return done.stdout


def enter_together(stack: ExitStack, managers: Sequence[AbstractContextManager[Any]]) -> list[Any]:
    """Enter ``managers`` at the same time, one thread each (servers and browsers spend their
    start waiting for a readiness line, mostly on imports: one after another they add up), and
    leave each on ``stack``'s way out.  The first failure is raised once every start has ended,
    so whatever did start is taken down with the stack — also on Ctrl-C or SIGTERM."""
    results: list[Any] = [None] * len(managers)
    errors: list[BaseException | None] = [None] * len(managers)
    entered = [False] * len(managers)

    def enter(i: int) -> None:
        try:
            results[i] = managers[i].__enter__()
            entered[i] = True
        except BaseException as e:  # handed to the caller's thread below
            errors[i] = e

    threads = [threading.Thread(target=enter, args=(i,), daemon=True) for i in range(len(managers))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    finally:
        for t in threads:  # interrupted: still wait for every start, so none is left running
            t.join()
        for manager, ok in zip(managers, entered, strict=True):
            if ok:
                stack.push(manager)
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results
