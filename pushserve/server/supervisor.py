"""The master process: checks everything once, forks the workers, and keeps them running.

Knows nothing of HTTP.  It is handed the *names* of an app factory and of the site's checks
(``pushserve.app:build`` / ``:check``, as uvicorn's supervisors are handed ``target=``): the
checks run in a throwaway child (``forked.call``) and the factory is resolved in each worker after
the fork, so the master imports neither the site, nor the protocol cores, nor the mounted apps,
nor asyncio, nor ``cryptography`` (a certificate is checked in a child too), and a worker forked
after SIGHUP imports the apps' current code.

Sockets.  The master binds one ``SO_REUSEPORT`` socket per worker *slot* and starts it
listening itself, slot after slot, so it knows each socket's place in the kernel's reuse-port
group; through that place it steers new connections (``server/steering.py``, a classic BPF
program attached to the group) to the sockets of the workers that can take them: ready, not
stopping, their event loop not blocked.  A worker whose heartbeat stops for a second gets no new
connection until it beats again; a slot whose worker died or is still starting gets none either.
(Where the kernel takes no steering program — not Linux — a slot without a ready worker keeps its
share, which waits in its queue for the slot's next worker, as it always did after a crash.)  A
slot's socket outlives its worker: a replacement (after a crash, or in a rolling restart)
accepts on the same socket, so the connections queued on it are not reset when the old worker
goes; they wait (< 1 s) for the new one.  ``--port 0`` is resolved by the first slot's bind; the
others bind that port.  Without ``SO_REUSEPORT`` all workers accept on one inherited listener,
and the log says so.

Signals (handlers only queue the number; the loop acts on it):
  SIGTERM, SIGINT  graceful stop: the workers stop accepting, send GOAWAY, let in-flight requests
                   finish within --graceful-timeout; exit 0.  A second one kills the workers.
  SIGHUP           rolling restart: the certificate checked and read again, then a new worker
                   per slot (each builds its TLS context from that snapshot, tls.Snapshot); only
                   when all of them are ready are the old ones told to drain.  A broken certificate
                   or a new worker that fails leaves the running workers alone.  A SIGHUP during a
                   reload means one more reload after it, with what is on disk then.
  SIGTTIN/SIGTTOU  one worker (slot) more / fewer.

Health: each worker's event loop beats a shared byte (server/heartbeat.py).  The master steers
new connections away from a worker silent for a second, reports it, starts a stand-in on its slot
(which takes the connections already queued there) once it has been silent for longer, and kills
it past --worker-timeout.  Workers report "ready", "standby <reason>" or "error <message>"
through a pipe, which is how the startup line waits for all of them.

Whatever the site's state, a replacement worker starts (after a crash, SIGTTIN, a blocked worker):
if it cannot build its app (the site folder is missing, say), it answers 503 and reports
"standby"; the master replaces it once the folder is back or changes (or on SIGHUP), and takes no new
connections to it while another worker can take them.  The master watches the site folder and
logs its going and coming back; the site's state never makes it exit.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import os
import selectors
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal

from pushserve import __version__, lan, tls
from pushserve.config import Config, ConfigError
from pushserve.server import forked, heartbeat
from pushserve.server.file_limit import raise_open_file_limit
from pushserve.server.heartbeat import Heartbeat
from pushserve.server.memory import give_back_memory
from pushserve.server.sockets import bind, bind_udp, free_port_from, reuse_port_available, url_for
from pushserve.server.steering import Group

log = logging.getLogger("pushserve")

POLL = 0.1  # the master's loop wakes at least this often (deaths, heartbeats, deadlines)
QUICK_FAILURE = 5.0  # a worker that dies before ready, or this soon after, failed "quickly"
CRASH_LOOP = 5  # this many quick failures ...
CRASH_WINDOW = 60.0  # ... within this many seconds: give up and exit with the error
STOP_MARGIN = 5.0  # a draining worker is killed this long after --graceful-timeout
MIN_START_TIMEOUT = 60.0  # a worker must be ready within max(this, --worker-timeout)
BLOCKED_AFTER = 1.0  # a worker silent this long gets no new connections (at most half --worker-timeout)
STAND_IN_AFTER = 3.0  # ... and this long, a stand-in on its slot (at most half --worker-timeout)
SITE_EVERY = 1.0  # seconds between two looks at the site folder

CERT_CHECK = "pushserve.certificates:check_pair"

Phase = Literal["starting", "running", "stopping"]


def startup_line(config: Config, port: int, http3: bool = False) -> str:
    workers = config.worker_count
    return (f"pushserve {__version__} serving {config.site} at {url_for(config.host, port)} "
            f"({'h3, ' if http3 else ''}h2, http/1.1; push: {config.push}; "
            f"{workers} worker{'s' if workers != 1 else ''}"
            f"{'; dev mode' if config.dev else ''})")


@dataclass(eq=False)
class Slot:
    index: int
    sock: socket.socket  # bound and listening (by the master, with SO_REUSEPORT)
    udp: socket.socket | None = None  # HTTP/3: bound in the same port's UDP reuseport group

    def close(self) -> None:
        self.sock.close()
        if self.udp is not None:
            self.udp.close()


@dataclass(eq=False)
class WorkerProc:
    pid: int
    slot: Slot
    generation: int
    status_fd: int  # read end of the worker's status pipe; -1 once closed
    heartbeat: Heartbeat
    started: float
    ready_at: float | None = None
    error: str | None = None
    stopping_since: float | None = None
    blocked: bool = False  # its loop has been silent for BLOCKED_AFTER: no new connections
    standby: str | None = None  # why it answers 503 instead of serving its app
    site_missing: bool = False  # ... because the site folder was missing
    replaces: WorkerProc | None = None  # the worker it was started to take over from
    successor: WorkerProc | None = None  # the worker started to take over from it
    killed_why: str | None = None
    buf: bytes = b""

    @property
    def accepting(self) -> bool:
        """Ready, running and beating: it takes the connections steered to its slot."""
        return (self.ready_at is not None and self.stopping_since is None and self.killed_why is None
                and not self.blocked)


@dataclass
class Reload:
    generation: int
    certs: tls.Snapshot


class Supervisor:
    certs: tls.Snapshot  # what a worker of the current generation serves; run() sets it once bound

    def __init__(self, config: Config, app: str = "pushserve.app:build", cert_check: str = CERT_CHECK) -> None:
        self.config = config
        self.app = app  # "module:factory" of the app each worker serves, resolved after the fork
        self.cert_check = cert_check  # "module:function" checking a certificate pair, in a child
        self.reuse_port = reuse_port_available()
        self.port = config.port
        self.http3 = config.http3
        # Shared by every worker of every generation: a Retry token made by one is taken by
        # another, and any worker can compute the Stateless Reset token of any connection ID.
        self.quic_secret = os.urandom(32)
        self.slots: list[Slot] = []
        self.workers: dict[int, WorkerProc] = {}
        self.generation = 0
        self.reload: Reload | None = None
        self.phase: Phase = "starting"
        self.exit_error: str | None = None
        self.signals: list[int] = []
        self.deferred: list[int] = []  # SIGHUP/SIGTTIN/SIGTTOU that arrived during a reload
        self.failures: collections.deque[float] = collections.deque()
        self.respawn_at: dict[int, float] = {}  # slot index -> when to fork its replacement
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        self.start_timeout = max(MIN_START_TIMEOUT, config.worker_timeout)
        # Steer around a blocked loop and report it well before killing it.
        self.blocked_after = max(heartbeat.EVERY * 3, min(BLOCKED_AFTER, config.worker_timeout / 2))
        self.stand_in_after = max(self.blocked_after, min(STAND_IN_AFTER, config.worker_timeout / 2))
        self.group = Group()  # the slots' sockets in the kernel's order, and where connections go
        self.retired: list[Slot] = []  # slots removed by SIGTTOU whose workers still run
        self.site_present = True
        self.site_mtime = 0  # the site folder's st_mtime_ns when last looked at
        self.site_checked_at = 0.0
        self.stepped_at = time.monotonic()

    # -- sockets ------------------------------------------------------------------------------

    def bind_slots(self, count: int) -> None:

        host = self.config.host
        if self.config.dev and self.port != 0:
            wanted, self.port = self.port, free_port_from(host, self.port)
            if self.port != wanted:
                log.warning("port %d is in use: dev mode serves on %d instead", wanted, self.port)
        if not self.reuse_port:
            shared = bind(host, self.port, reuse_port=False)
            self.port = shared.getsockname()[1]
            self.slots = [Slot(i, shared) for i in range(count)]
            log.info("SO_REUSEPORT is not available: %d worker%s share one listener (the kernel "
                     "does not balance them)", count, "s" if count != 1 else "")
            if self.http3:
                self.http3 = False
                log.warning("HTTP/3 is off: it needs SO_REUSEPORT (TCP is served)")
            return
        if self.port != 0:
            # Another process of this user may hold the port with SO_REUSEPORT too; a reuseport
            # bind would then silently share it.  A plain bind finds out, with cli's message.
            bind(host, self.port, reuse_port=False, listen=False).close()
        first = bind(host, self.port, reuse_port=True, listen=False)
        self.port = first.getsockname()[1]
        self._listen(first)
        self.slots = [Slot(0, first)]
        if self.http3:
            try:
                # As for TCP: a plain bind finds another process's reuseport group on the port.
                bind_udp(host, self.port, reuse_port=False).close()
                self.slots[0].udp = bind_udp(host, self.port)
            except ConfigError as e:
                self.http3 = False
                log.warning("HTTP/3 is off: %s (TCP is served; --no-http3 says this on purpose)", e)
        for _ in range(count - 1):
            self.add_slot()

    def _listen(self, sock: socket.socket) -> None:
        # Listening here, one slot after the other, puts the sockets in the kernel's group in a
        # known order: steering names them by their place in it.
        sock.listen(self.config.limits.backlog)
        self.group.joined(sock)
        self._steer()

    def add_slot(self) -> Slot:

        index = max((s.index for s in self.slots), default=-1) + 1
        if self.reuse_port:
            sock = bind(self.config.host, self.port, reuse_port=True, listen=False)
            self._listen(sock)
        else:
            sock = self.slots[0].sock
        slot = Slot(index, sock)
        if self.http3:
            try:
                slot.udp = bind_udp(self.config.host, self.port)
            except ConfigError as e:
                log.warning("slot %d serves no HTTP/3: %s", index, e)
        self.slots.append(slot)
        return slot

    def _close_retired(self) -> None:
        """Close the socket of a slot SIGTTOU removed once none of its workers runs: ours is then
        the last descriptor, so the socket leaves the kernel's group now, as the group model says."""
        for slot in list(self.retired):
            if any(w.slot is slot for w in self.workers.values()):
                continue
            self.retired.remove(slot)
            if all(s.sock is not slot.sock for s in self.slots):
                slot.sock.close()
                if slot.sock in self.group.members:
                    self.group.left(slot.sock)
                self._steer()
            if slot.udp is not None:
                slot.udp.close()

    def _steer(self) -> None:
        """New connections go to the slots with a worker that takes them, serving its app if
        any does; a worker in standby (503) gets them only when no other can."""
        if not self.reuse_port or self.phase == "stopping":
            return
        serving = [w for w in self.workers.values() if w.accepting]
        best = [w for w in serving if w.standby is None] or serving
        # With no worker taking connections (all blocked, say) they wait in the current slots'
        # queues, never in a slot SIGTTOU retired: its socket is closed once its worker is gone,
        # and every connection queued in it then would be reset.
        self.group.steer({w.slot.sock for w in best} or {s.sock for s in self.slots})

    # -- forking ------------------------------------------------------------------------------

    def spawn(self, slot: Slot, generation: int, certs: tls.Snapshot, *, may_stand_by: bool = True) -> WorkerProc:
        """Fork a worker for ``slot``.  ``may_stand_by``: it starts even if it cannot build its
        app (a replacement must serve something); else that is an error (at startup the checks
        have just passed; in a reload, the old workers keep serving)."""
        r, w = os.pipe()
        beat = Heartbeat(time.monotonic())
        sys.stdout.flush()
        sys.stderr.flush()
        # The master's objects go to the collector's permanent generation, so a worker's
        # collections never write to them and the pages stay shared (the gc module's advice for
        # fork without exec): about 1.3 MiB less PSS per worker.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the worker; never returns
            code = 70
            try:
                os.close(r)
                self._forget_master_state(slot, certs)
                code = _worker_main(self.config, self.app, certs, slot.sock, w, beat, may_stand_by, slot.udp,
                                    self.quic_secret)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(w)
        os.set_blocking(r, False)
        proc = WorkerProc(pid, slot, generation, r, beat, time.monotonic())
        self.workers[pid] = proc
        self.selector.register(r, selectors.EVENT_READ, proc)
        return proc

    def _forget_master_state(self, slot: Slot, certs: tls.Snapshot) -> None:
        """In a fresh worker: drop the master's signal handling and every fd that is not ours
        (another slot's socket kept open here would outlive that slot)."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)
        # SIGINT from a terminal reaches the workers too; the master turns it into SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for other in self.workers.values():
            if other.status_fd >= 0:
                os.close(other.status_fd)
            other.heartbeat.close()
        for s in (*self.slots, *self.retired):
            if s.sock is not slot.sock:
                s.sock.close()
            if s.udp is not None and s is not slot:
                s.udp.close()
        for snapshot in (self.certs, self.reload.certs if self.reload is not None else None):
            if snapshot is not None and snapshot is not certs:
                snapshot.close()

    # -- the loop -----------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)  # only queue: the loop acts (set_wakeup_fd wakes it)

    def install_signals(self) -> None:
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU,
                    signal.SIGCHLD):
            signal.signal(sig, self._on_signal)

    def serve(self) -> int:
        """Fork a worker per bound slot and supervise them until the end (blocking)."""
        self.install_signals()
        give_back_memory()  # what the command line and the checks left: no worker inherits it
        try:
            for slot in self.slots:
                self.spawn(slot, self.generation, self.certs, may_stand_by=False)
            while self.phase != "stopping" or self.workers:
                self.step()
        finally:
            signal.set_wakeup_fd(-1)
            for slot in (*self.slots, *self.retired):
                slot.close()
            self.certs.close()
            if self.reload is not None:
                self.reload.certs.close()
            self.selector.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
        if self.exit_error is not None:
            raise ConfigError(self.exit_error)
        return 0

    def step(self) -> None:
        for key, _ in self.selector.select(POLL):
            if key.data is None:
                _drain_fd(self.wake_r)
            else:
                self._read_status(key.data)
        while self.signals:
            self._handle_signal(self.signals.pop(0))
        self._reap()
        now = time.monotonic()
        if now - self.stepped_at > heartbeat.MASTER_AWAY:
            # We were not scheduled (or stopped): judge no worker by our own absence.
            for proc in self.workers.values():
                proc.heartbeat.restart(now)
        self.stepped_at = now
        self._check_health(now)
        self._watch_site(now)
        self._respawn(now)
        self._steer()

    def _read_status(self, proc: WorkerProc) -> None:
        try:
            data = os.read(proc.status_fd, 4096)
        except BlockingIOError:
            return
        if not data:
            self.selector.unregister(proc.status_fd)
            os.close(proc.status_fd)
            proc.status_fd = -1
            return
        proc.buf += data
        while b"\n" in proc.buf:
            line, proc.buf = proc.buf.split(b"\n", 1)
            text = line.decode("utf-8", "replace")
            if text == "ready":
                self._on_ready(proc)
            elif text.startswith("error "):
                proc.error = text[len("error "):]
            elif text.startswith("standby "):
                missing, _, proc.standby = text[len("standby "):].partition(" ")
                proc.site_missing = missing == "1"
                log.warning("worker %d (slot %d) cannot serve: %s; it answers 503 until %s", proc.pid,
                            proc.slot.index, proc.standby,
                            "the site folder is back" if proc.site_missing else "the site folder changes or a SIGHUP")

    def _on_ready(self, proc: WorkerProc) -> None:
        proc.ready_at = now = time.monotonic()
        proc.heartbeat.restart(now)
        old = proc.replaces
        if old is not None and old.pid in self.workers and old.stopping_since is None:
            self._stop(old)
            log.info("worker %d (slot %d) ready; it takes over from worker %d", proc.pid, proc.slot.index,
                     old.pid)
            if self.reload is not None and proc.generation == self.reload.generation:
                self._maybe_finish_reload()
            return
        if self.phase == "starting":
            if all(w.ready_at is not None for w in self.workers.values()):
                self.phase = "running"
                # The URL is told whatever --log-level hides: with --port 0 it is the only way to know it.
                log.log(max(logging.INFO, log.getEffectiveLevel()), "%s",
                        startup_line(self.config, self.port, self.http3))
                if self.config.dev:
                    log.info("  dev mode: pages reload as you save; what each page pushes, and the "
                             "site's problems: %s_pushserve/", url_for(self.config.host, self.port))
                ca_file = tls.default_ca_file() if self.config.cert is None else None
                for line in lan.banner_lines(self.config.host, self.port, ca_file):
                    log.info("  %s", line)
        elif self.reload is not None and proc.generation == self.reload.generation:
            self._maybe_finish_reload()
        elif proc.stopping_since is None:
            log.info("worker %d (slot %d) ready", proc.pid, proc.slot.index)

    # -- deaths ---------------------------------------------------------------------------------

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.workers.pop(pid, None)
            if proc is not None:
                self._on_exit(proc, status)
                self._close_retired()

    def _on_exit(self, proc: WorkerProc, status: int) -> None:
        if proc.status_fd >= 0:  # read what it said last (an error line) before closing
            try:
                proc.buf += _read_all(proc.status_fd)
            finally:
                self.selector.unregister(proc.status_fd)
                os.close(proc.status_fd)
                proc.status_fd = -1
            for line in proc.buf.decode("utf-8", "replace").splitlines():
                if line.startswith("error "):
                    proc.error = line[len("error "):]
        proc.heartbeat.close()
        old, proc.replaces = proc.replaces, None
        if old is not None:
            old.successor = None
        heir, proc.successor = proc.successor, None
        if heir is not None:
            heir.replaces = None
        how = proc.killed_why or forked.describe_exit(status)
        detail = f": {proc.error}" if proc.error else ""
        now = time.monotonic()
        if proc.stopping_since is not None:
            if self.phase != "stopping" and (proc.killed_why is not None or status != 0):
                log.warning("worker %d (slot %d) %s while stopping", proc.pid, proc.slot.index, how)
            return
        if self.phase == "stopping":
            return
        if self.phase == "starting":
            self._begin_stop(proc.error or f"worker {proc.pid} {how} before it was ready")
            return
        if self.reload is not None and proc.generation == self.reload.generation:
            self._abort_reload(f"new worker {proc.pid} {how}{detail}")
            return
        if proc.slot not in self.slots:
            return  # its slot was removed while it was starting
        if old is not None and old.pid in self.workers:
            log.warning("worker %d (slot %d), started to take over from worker %d, %s%s", proc.pid,
                        proc.slot.index, old.pid, how, detail)
        elif heir is not None and heir.pid in self.workers:
            log.warning("worker %d (slot %d) %s%s; worker %d takes its place", proc.pid, proc.slot.index,
                        how, detail, heir.pid)
        else:
            log.warning("worker %d (slot %d) %s%s; starting a new one", proc.pid, proc.slot.index,
                        how, detail)
        if proc.ready_at is None or now - proc.ready_at < QUICK_FAILURE:
            self.failures.append(now)
        while self.failures and now - self.failures[0] > CRASH_WINDOW:
            self.failures.popleft()
        if len(self.failures) >= CRASH_LOOP:
            self._begin_stop(f"workers keep failing ({len(self.failures)} quick failures in "
                             f"{CRASH_WINDOW:.0f} s); last: worker {proc.pid} {how}{detail}")
            return
        # Back off only while failures repeat: 0 s, then 0.1 s, 0.2 s, ... up to 1 s.
        delay = 0.0 if len(self.failures) <= 1 else min(1.0, 0.05 * 2 ** (len(self.failures) - 1))
        self.respawn_at[proc.slot.index] = now + delay

    def _respawn(self, now: float) -> None:
        if self.phase != "running":
            return
        for slot in self.slots:
            when = self.respawn_at.get(slot.index)
            if when is None or when > now:
                continue
            del self.respawn_at[slot.index]
            if not any(w.slot is slot and w.generation == self.generation and w.stopping_since is None
                       for w in self.workers.values()):
                self.spawn(slot, self.generation, self.certs)

    # -- health ---------------------------------------------------------------------------------

    def _check_health(self, now: float) -> None:
        graceful = self.config.limits.graceful_timeout
        for proc in list(self.workers.values()):
            if proc.killed_why is not None:
                continue
            if proc.ready_at is not None:
                proc.heartbeat.watch(now)
                silent = proc.heartbeat.silent_for(now)
                if silent > self.config.worker_timeout:  # stopping or not
                    self._kill(proc, f"was stuck for {silent:.1f} s (--worker-timeout "
                                     f"{self.config.worker_timeout:g} s); killed")
                    continue
            if proc.stopping_since is not None:
                if now - proc.stopping_since > graceful + STOP_MARGIN:
                    self._kill(proc, f"did not stop within --graceful-timeout {graceful:g} s; killed")
                continue
            if proc.ready_at is None:
                if now - proc.started > self.start_timeout:
                    self._kill(proc, f"was not ready within {self.start_timeout:g} s; killed")
                continue
            if silent > self.blocked_after:
                if not proc.blocked:
                    proc.blocked = True
                    steered = self.group.available and any(w.accepting for w in self.workers.values())
                    log.warning("worker %d (slot %d): event loop blocked for %.1f s%s", proc.pid,
                                proc.slot.index, silent, "; new connections go to the other workers" if steered else "")
                if silent > self.stand_in_after and proc.successor is None and self.phase == "running":
                    new = self._take_over(proc)
                    log.warning("worker %d (slot %d): blocked for %.1f s; worker %d starts on its slot for "
                                "the connections queued there", proc.pid, proc.slot.index, silent, new.pid)
            elif proc.blocked:
                proc.blocked = False
                log.info("worker %d (slot %d): event loop running again", proc.pid, proc.slot.index)

    def _take_over(self, proc: WorkerProc) -> WorkerProc:
        """Start a worker on ``proc``'s slot (so on its socket and its queue); once it is ready,
        ``proc`` is told to stop."""
        reload = self.reload
        certs = reload.certs if reload is not None and proc.generation == reload.generation else self.certs
        new = self.spawn(proc.slot, proc.generation, certs)
        new.replaces, proc.successor = proc, new
        return new

    def _watch_site(self, now: float) -> None:
        """Log the site folder going and coming back, and replace the workers in standby when it
        is back or has changed (a file renamed into it, as a deploy does): what kept them from
        serving may be gone."""
        if now - self.site_checked_at < SITE_EVERY or self.phase != "running":
            return
        self.site_checked_at = now
        site = self.config.site
        try:
            st = os.stat(site)
        except OSError:
            st = None
        present = st is not None and stat.S_ISDIR(st.st_mode)
        if present != self.site_present:
            self.site_present = present
            if present:
                log.info("site folder %s is back", site)
            else:
                log.warning("site folder %s is missing (deleted, or being replaced): requests get 503 "
                            "until it is back", site)
        if st is None or not present:
            return
        changed, self.site_mtime = st.st_mtime_ns != self.site_mtime, st.st_mtime_ns
        for proc in list(self.workers.values()):
            if (proc.standby is not None and (proc.site_missing or changed) and proc.successor is None
                    and proc.ready_at is not None and proc.stopping_since is None and proc.killed_why is None):
                new = self._take_over(proc)
                log.info("worker %d (slot %d) could not serve (%s): worker %d tries again", proc.pid,
                         proc.slot.index, "without the site folder" if proc.site_missing else "the site changed",
                         new.pid)

    def _kill(self, proc: WorkerProc, why: str) -> None:
        proc.killed_why = why
        _signal(proc.pid, signal.SIGKILL)

    def _stop(self, proc: WorkerProc) -> None:
        if proc.stopping_since is None:
            proc.stopping_since = time.monotonic()
            _signal(proc.pid, signal.SIGTERM)

    # -- signals ----------------------------------------------------------------------------------

    def _handle_signal(self, sig: int) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            if self.phase == "stopping":
                log.warning("%s again: killing the workers", signal.Signals(sig).name)
                for proc in self.workers.values():
                    if proc.killed_why is None:
                        self._kill(proc, "killed (second stop signal)")
            else:
                log.info("%s: stopping gracefully (up to %g s)", signal.Signals(sig).name,
                         self.config.limits.graceful_timeout)
                self._begin_stop(None)
        elif self.phase != "running" or sig == signal.SIGCHLD:
            return  # SIGHUP/SIGTTIN/SIGTTOU mean nothing before startup or while stopping
        elif self.reload is not None:
            # After this reload: SIGTTIN/SIGTTOU each, and one more reload however many SIGHUPs
            # came (it reads what is on disk then).
            if sig != signal.SIGHUP or sig not in self.deferred:
                self.deferred.append(sig)
            if sig == signal.SIGHUP:
                log.info("SIGHUP: a reload is under way; another follows it")
        elif sig == signal.SIGHUP:
            self._begin_reload()
        elif sig == signal.SIGTTIN:
            self._add_worker()
        elif sig == signal.SIGTTOU:
            self._remove_worker()

    def _begin_stop(self, error: str | None) -> None:
        self.phase = "stopping"
        self.exit_error = error
        self.reload = None
        # Our copies of the sockets go first, so each listener closes when its worker stops.
        for slot in (*self.slots, *self.retired):
            slot.close()
        self.retired.clear()
        for proc in self.workers.values():
            self._stop(proc)

    def _add_worker(self) -> None:
        slot = self.add_slot()
        proc = self.spawn(slot, self.generation, self.certs)
        log.info("SIGTTIN: worker %d (slot %d) added; %d workers", proc.pid, slot.index,
                 len(self.slots))

    def _remove_worker(self) -> None:
        if len(self.slots) <= 1:
            log.info("SIGTTOU: keeping the last worker")
            return
        slot = self.slots.pop()
        self.respawn_at.pop(slot.index, None)
        self.retired.append(slot)  # its socket closes once its workers are gone (_close_retired)
        pids = []
        for proc in self.workers.values():
            if proc.slot is slot:
                pids.append(proc.pid)
                self._stop(proc)
        log.info("SIGTTOU: stopping worker %s (slot %d); %d workers",
                 ", ".join(map(str, pids)) or "-", slot.index, len(self.slots))
        self._close_retired()

    # -- rolling restart --------------------------------------------------------------------------

    def _begin_reload(self) -> None:
        try:
            # The files are read once, and what is checked is what the workers will serve, even
            # if the files change again during the check.
            certs = tls.Snapshot.take(self.certs.cert, self.certs.key)
        except tls.CertError as e:
            log.error("SIGHUP: not reloading, the certificate is broken: %s; the running workers "
                      "keep serving", e)
            return
        try:
            forked.call(self.cert_check, *certs.paths())  # cryptography stays out of the master
        except ConfigError as e:
            certs.close()
            log.error("SIGHUP: not reloading, the certificate is broken: %s; the running workers "
                      "keep serving", certs.named(str(e)))
            return
        self.reload = Reload(self.generation + 1, certs)
        log.info("SIGHUP: starting %d new worker%s", len(self.slots), "s" if len(self.slots) != 1 else "")
        for slot in self.slots:
            self.spawn(slot, self.reload.generation, certs, may_stand_by=False)

    def _maybe_finish_reload(self) -> None:
        reload = self.reload
        assert reload is not None
        new = [w for w in self.workers.values() if w.generation == reload.generation]
        if not all(w.ready_at is not None for w in new):
            return
        old = [w for w in self.workers.values()
               if w.generation < reload.generation and w.stopping_since is None]
        self.generation = reload.generation
        self.certs.close()
        self.certs = reload.certs
        self.reload = None
        self.respawn_at.clear()  # a pending replacement of an old worker is not needed any more
        for proc in old:
            self._stop(proc)
        log.info("reloaded: workers %s replace %s", ", ".join(str(w.pid) for w in new),
                 ", ".join(str(w.pid) for w in old) or "-")
        self._run_deferred()

    def _abort_reload(self, why: str) -> None:
        reload = self.reload
        assert reload is not None
        self.reload = None
        reload.certs.close()
        for proc in self.workers.values():
            if proc.generation == reload.generation:
                self._stop(proc)
        log.error("reload failed: %s; the running workers keep serving", why)
        self._run_deferred()

    def _run_deferred(self) -> None:
        pending, self.deferred = self.deferred, []
        for sig in pending:
            self._handle_signal(sig)


# -- in the worker process ------------------------------------------------------------------------

def _worker_main(config: Config, app: str, certs: tls.Snapshot, sock: socket.socket, status_fd: int,
                 beats: Heartbeat, may_stand_by: bool, udp: socket.socket | None = None,
                 quic_secret: bytes = b"") -> int:
    def report(line: str) -> None:
        # One write of at most PIPE_BUF bytes is atomic; the master reads lines.
        data = (line.replace("\n", " ")[:4000] + "\n").encode()
        with contextlib.suppress(OSError):  # the master is gone: nobody to tell
            os.write(status_fd, data)

    master = os.getppid()

    def ready() -> None:
        import asyncio  # after the fork, like everything the event loop needs

        loop = asyncio.get_running_loop()

        def beat() -> None:
            beats.beat()
            if os.getppid() != master:  # the master died (SIGKILL?): don't serve on as an orphan
                log.warning("worker %d: the master process is gone; stopping", os.getpid())
                os.kill(os.getpid(), signal.SIGTERM)
                return
            loop.call_later(heartbeat.EVERY, beat)

        beat()
        report("ready")

    def stand_by(reason: str) -> None:
        report(f"standby {int(not config.site.is_dir())} {reason}")

    try:
        # Imported here, after the fork: the master never loads the protocol cores or the app.
        from pushserve.server import worker

        ssl_ctx = certs.context()  # here, not in the master, which never loads ssl
        quic = None
        if udp is not None:  # aioquic is loaded on the first datagram, never in the master
            from pushserve.server.quic_start import QuicSetup

            quic = QuicSetup(udp, certs, quic_secret)  # it keeps the certificate until then
        else:
            certs.close()
        worker.run(config, ssl_ctx, sock, forked.resolve(app), ready=ready,
                   stand_by=stand_by if may_stand_by else None, quic=quic)
    except (ConfigError, tls.CertError) as e:
        report(f"error {e}")
        return 3
    except Exception as e:
        log.exception("worker %d failed", os.getpid())
        report(f"error {type(e).__name__}: {e}")
        return 1
    return 0


def run(config: Config, *, certificate: Callable[[int], tuple[Path, Path | None]],
        app: str = "pushserve.app:build", check: str = "pushserve.app:check", cert_check: str = CERT_CHECK) -> int:
    """Bind the port, then get the certificate, then check the site and apps once, then run the
    workers until told to stop (blocking).  The port comes first: a busy one is the first thing to
    tell, and nothing (a development certificate made or given a new name) happens before it is
    known to be ours.  ``certificate(port)`` gives the pair to serve (the bound port, for what it
    tells the user); ``app`` names the factory a worker calls for the app it serves; ``check`` the
    site's checks; ``cert_check`` the check a certificate pair passes before a SIGHUP serves it."""
    supervisor = Supervisor(config, app, cert_check)
    try:
        supervisor.bind_slots(config.worker_count)
        supervisor.certs = tls.Snapshot.take(*certificate(supervisor.port))
        lines: list[str] = forked.call(check, config)
        lines += raise_open_file_limit(config.limits)  # before forking: workers inherit it
        for line in lines:  # only now: a failed check is one line, not a summary and then an error
            log.info("%s", line)
    except BaseException:
        for slot in supervisor.slots:
            slot.close()
        if hasattr(supervisor, "certs"):
            supervisor.certs.close()
        raise
    return supervisor.serve()


# -- small helpers -----------------------------------------------------------------------------------

def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone; waitpid will tell
        os.kill(pid, sig)


def _drain_fd(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _read_all(fd: int) -> bytes:
    """Everything left in a pipe (blocking or not) until EOF or nothing more to read now."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)
