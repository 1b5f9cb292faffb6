"""Start a real pushserve process on a free port and know when it is ready.

Readiness is the startup line the server prints (it names the URL with the real port), never a
sleep.  The process output is collected by a reader thread so tests can look for log lines."""

from __future__ import annotations

import os
import re
import resource
import signal
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SITE_EXAMPLE = REPO / "site_example"
_READY = re.compile(r" at (https://(\S+):(\d+)/) ")


@dataclass
class Certs:
    caroot: Path
    cert_dir: Path

    @property
    def ca_file(self) -> Path:
        return self.caroot / "rootCA.pem"

    def client_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if alpn is not None:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def env(self) -> dict[str, str]:
        # PYTHONPATH: this checkout's pushserve even when a test starts it from another folder.
        # The cache dir too (compression dictionaries): a test run writes nothing in $HOME.
        path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
        return {**os.environ, "PUSHSERVE_CAROOT": str(self.caroot), "PYTHONUNBUFFERED": "1", "PYTHONPATH": path,
                "XDG_CACHE_HOME": str(self.caroot.parent / "cache")}


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    certs: Certs
    lines: list[str] = field(default_factory=list)
    url: str = ""
    host: str = ""
    port: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match[str]:
        """Wait until an output line matches; fail with the output so far if it never does."""
        rx = re.compile(pattern)
        seen = start
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                if self.proc.poll() is not None and seen == len(self.lines):
                    # Give the reader a last chance to deliver buffered lines.
                    if not self._cond.wait(0.5) and seen == len(self.lines):
                        raise AssertionError(f"server exited ({self.proc.returncode}) before "
                                             f"{pattern!r}:\n" + "\n".join(self.lines[-40:]))
                    continue
                if not self._cond.wait(timeout):
                    raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n"
                                         + "\n".join(self.lines[-40:]))

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start(certs: Certs, *args: str, site: Path = SITE_EXAMPLE, cwd: Path | None = None,
          ready: bool = True, cert_dir: bool = True, open_files: int | None = None) -> ServerProcess:
    """``cert_dir=False``: no --cert-dir, so the dev certificate goes where users get it.
    ``open_files``: the server runs under that open file limit (``ulimit -n``, soft and hard)."""
    where = ["--cert-dir", str(certs.cert_dir)] if cert_dir else []
    cmd = [sys.executable, "-m", "pushserve", str(site), "--port", "0", *where, *args]

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=certs.env(), cwd=cwd or REPO, start_new_session=True,
                            preexec_fn=limit_files if open_files is not None else None)
    server = ServerProcess(proc, certs)
    threading.Thread(target=server._read, daemon=True).start()
    if ready:
        m = server.wait_for(_READY.pattern)
        server.url, server.host, server.port = m.group(1), m.group(2), int(m.group(3))
    return server


def run_cli(certs: Certs, *args: str, timeout: float = 60.0,
            cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pushserve", *args], capture_output=True, text=True,
                          env=certs.env(), timeout=timeout, cwd=cwd)
