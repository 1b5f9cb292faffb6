"""The master process: checks everything once, forks the workers, and keeps them running.

Knows nothing of HTTP.  It is handed the *names* of an app factory and of the site's checks
(``pushserve.app:build`` / ``:check``, as uvicorn's supervisors are handed ``target=``): the
checks run in a throwaway child (``forked.call``) and the factory is resolved in each worker after
the fork, so the master imports neither the site, nor the protocol cores, nor the mounted apps,
nor asyncio, nor ``cryptography`` (a certificate is checked in a child too), and a worker forked
after SIGHUP imports the apps' current code.

Sockets.  The master binds one ``SO_REUSEPORT`` socket per worker *slot* and never calls
``listen()`` on it: a bound, non-listening member of a reuseport group gets no connections
(checked on Linux 6.x), so the master never holds a listener nobody accepts on.  The worker
forked for a slot starts listening on the slot's socket (``create_server`` calls ``listen()``)
and the kernel spreads new connections across the slots.  A slot's socket outlives its worker:
a replacement (after a crash, or in a rolling restart) accepts on the same socket, so the
connections queued on it are not reset when the old worker goes; they wait (< 1 s) for the new
one.  ``--port 0`` is resolved by the first slot's bind; the others bind that port.  Without
``SO_REUSEPORT`` all workers accept on one inherited listener, and the log says so.

Signals (handlers only queue the number; the loop acts on it):
  SIGTERM, SIGINT  graceful stop: the workers stop accepting, send GOAWAY, let in-flight requests
                   finish within --graceful-timeout; exit 0.  A second one kills the workers.
  SIGHUP           rolling restart: the certificate checked and read again, then a new worker
                   per slot (each builds its TLS context from that snapshot, tls.Snapshot); only
                   when all of them are ready are the old ones told to drain.  A broken certificate
                   or a new worker that fails leaves the running workers alone.
  SIGTTIN/SIGTTOU  one worker (slot) more / fewer.

Health: each worker writes a monotonic timestamp into a small shared mmap from its event loop
every HEARTBEAT_EVERY seconds.  The master reports a worker whose loop has not ticked for a while
and kills (then replaces) one that stays stuck past --worker-timeout.  Workers report "ready" or
"error <message>" through a pipe, which is how the startup line waits for all of them.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import mmap
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal

from pushserve import __version__, lan, tls
from pushserve.config import Config, ConfigError
from pushserve.server import forked
from pushserve.server.memory import give_back_memory
from pushserve.server.sockets import bind, bind_udp, free_port_from, reuse_port_available, url_for

log = logging.getLogger("pushserve")

HEARTBEAT_EVERY = 0.5  # seconds between a worker's heartbeat ticks
POLL = 0.1  # the master's loop wakes at least this often (deaths, heartbeats, deadlines)
QUICK_FAILURE = 5.0  # a worker that dies before ready, or this soon after, failed "quickly"
CRASH_LOOP = 5  # this many quick failures ...
CRASH_WINDOW = 60.0  # ... within this many seconds: give up and exit with the error
STOP_MARGIN = 5.0  # a draining worker is killed this long after --graceful-timeout
MIN_START_TIMEOUT = 60.0  # a worker must be ready within max(this, --worker-timeout)

_HB = struct.Struct("d")

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
    sock: socket.socket  # bound; listening once a worker has started on it
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
    heartbeat: mmap.mmap
    started: float
    ready_at: float | None = None
    error: str | None = None
    stopping_since: float | None = None
    blocked_logged: bool = False
    killed_why: str | None = None
    buf: bytes = b""

    def last_tick(self) -> float:
        return float(_HB.unpack_from(self.heartbeat)[0])


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
        self.deferred: list[int] = []  # SIGTTIN/SIGTTOU that arrived during a reload
        self.failures: collections.deque[float] = collections.deque()
        self.respawn_at: dict[int, float] = {}  # slot index -> when to fork its replacement
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        self.start_timeout = max(MIN_START_TIMEOUT, config.worker_timeout)
        # Report a blocked loop well before killing it.
        self.blocked_after = max(HEARTBEAT_EVERY * 3, min(5.0, config.worker_timeout / 2))

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

    def add_slot(self) -> Slot:

        index = max((s.index for s in self.slots), default=-1) + 1
        if self.reuse_port:
            sock = bind(self.config.host, self.port, reuse_port=True, listen=False)
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

    def close_slot(self, slot: Slot) -> None:
        if all(s.sock is not slot.sock for s in self.slots):
            slot.sock.close()
        if slot.udp is not None:
            slot.udp.close()

    # -- forking ------------------------------------------------------------------------------

    def spawn(self, slot: Slot, generation: int, certs: tls.Snapshot) -> WorkerProc:
        r, w = os.pipe()
        heartbeat = mmap.mmap(-1, _HB.size)  # anonymous and MAP_SHARED: the child writes, we read
        _HB.pack_into(heartbeat, 0, time.monotonic())
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
                code = _worker_main(self.config, self.app, certs, slot.sock, w, heartbeat, slot.udp,
                                    self.quic_secret)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(w)
        os.set_blocking(r, False)
        proc = WorkerProc(pid, slot, generation, r, heartbeat, time.monotonic())
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
        for s in self.slots:
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
                self.spawn(slot, self.generation, self.certs)
            while self.phase != "stopping" or self.workers:
                self.step()
        finally:
            signal.set_wakeup_fd(-1)
            for slot in self.slots:
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
        self._check_health(now)
        self._respawn(now)

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

    def _on_ready(self, proc: WorkerProc) -> None:
        proc.ready_at = time.monotonic()
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
        how = proc.killed_why or forked.describe_exit(status)
        detail = f": {proc.error}" if proc.error else ""
        now = time.monotonic()
        if proc.stopping_since is not None:
            if status != 0 and proc.killed_why is None and self.phase != "stopping":
                log.info("worker %d (slot %d) %s while stopping", proc.pid, proc.slot.index, how)
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
            if proc.stopping_since is not None:
                if now - proc.stopping_since > graceful + STOP_MARGIN:
                    self._kill(proc, f"did not stop within --graceful-timeout {graceful:g} s; killed")
                continue
            if proc.ready_at is None:
                if now - proc.started > self.start_timeout:
                    self._kill(proc, f"was not ready within {self.start_timeout:g} s; killed")
                continue
            silent = now - proc.last_tick()
            if silent > self.config.worker_timeout:
                self._kill(proc, f"was stuck for {silent:.1f} s (--worker-timeout "
                                 f"{self.config.worker_timeout:g} s); killed")
            elif silent > self.blocked_after and not proc.blocked_logged:
                proc.blocked_logged = True
                log.warning("worker %d (slot %d): event loop blocked for %.1f s", proc.pid,
                            proc.slot.index, silent)
            elif silent <= self.blocked_after and proc.blocked_logged:
                proc.blocked_logged = False
                log.info("worker %d (slot %d): event loop running again", proc.pid, proc.slot.index)

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
        elif self.phase != "running":
            return  # SIGHUP/SIGTTIN/SIGTTOU mean nothing before startup or while stopping
        elif sig == signal.SIGHUP:
            self._begin_reload()
        elif sig in (signal.SIGTTIN, signal.SIGTTOU):
            if self.reload is not None:
                self.deferred.append(sig)
            elif sig == signal.SIGTTIN:
                self._add_worker()
            else:
                self._remove_worker()

    def _begin_stop(self, error: str | None) -> None:
        self.phase = "stopping"
        self.exit_error = error
        self.reload = None
        # Our copies of the sockets go first, so each listener closes when its worker stops.
        for slot in self.slots:
            slot.close()
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
        self.close_slot(slot)
        pids = []
        for proc in self.workers.values():
            if proc.slot is slot:
                pids.append(proc.pid)
                self._stop(proc)
        log.info("SIGTTOU: stopping worker %s (slot %d); %d workers",
                 ", ".join(map(str, pids)) or "-", slot.index, len(self.slots))

    # -- rolling restart --------------------------------------------------------------------------

    def _begin_reload(self) -> None:
        if self.reload is not None:
            log.info("SIGHUP: a reload is already under way")
            return
        cert, key = self.certs.cert, self.certs.key
        try:
            forked.call(self.cert_check, cert, key)  # cryptography stays out of the master
            certs = tls.Snapshot.take(cert, key)
        except (ConfigError, tls.CertError) as e:
            log.error("SIGHUP: not reloading, the certificate is broken: %s; the running workers "
                      "keep serving", e)
            return
        self.reload = Reload(self.generation + 1, certs)
        log.info("SIGHUP: starting %d new worker%s", len(self.slots), "s" if len(self.slots) != 1 else "")
        for slot in self.slots:
            self.spawn(slot, self.reload.generation, certs)

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
                 heartbeat: mmap.mmap, udp: socket.socket | None = None, quic_secret: bytes = b"") -> int:
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
            _HB.pack_into(heartbeat, 0, time.monotonic())
            if os.getppid() != master:  # the master died (SIGKILL?): don't serve on as an orphan
                log.warning("worker %d: the master process is gone; stopping", os.getpid())
                os.kill(os.getpid(), signal.SIGTERM)
                return
            loop.call_later(HEARTBEAT_EVERY, beat)

        beat()
        report("ready")

    try:
        # Imported here, after the fork: the master never loads the protocol cores or the app.
        from pushserve.server import worker

        ssl_ctx = certs.context()  # here, not in the master, which never loads ssl
        quic = None
        if udp is not None:  # aioquic too is a worker's import, never the master's
            from pushserve.server.quic import QuicSetup, configuration

            quic = QuicSetup(udp, configuration(config, certs), quic_secret)
        certs.close()
        worker.run(config, ssl_ctx, sock, forked.resolve(app), ready=ready, quic=quic)
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
