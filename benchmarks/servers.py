"""How to start each server under test: pushserve, Hypercorn (+ Starlette StaticFiles), and the C
servers nginx and h2o as the ceiling.  Each serves ``docroot`` over TLS with the same certificate,
one worker, access log off, pinned to the server CPU; each yields its ``https://127.0.0.1:PORT``.

Config files for peers are generated into a temp folder; ports for peers that need a fixed port
come from ``free_port``.  pushserve picks its own port (``--port 0``) and prints it."""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pushserve.bench.certs import CertPair
from pushserve.bench.procs import SERVER_CPU, free_port, pinned, running

REPO = Path(__file__).resolve().parent.parent
# pushserve's startup line: "... at https://127.0.0.1:PORT/ ..."
_PUSHSERVE_READY = re.compile(r" at (https://[^/\s]+:\d+)/")
_HYPERCORN_READY = re.compile(r"Running on (https://\S+:\d+)")
# Enough that no peer closes a keep-alive connection in the middle of a measurement.
MAX_KEEPALIVE_REQUESTS = 1_000_000_000


@dataclass(frozen=True)
class ServeSpec:
    """What to serve and with which certificate; ``workdir`` is a temp folder for configs."""

    docroot: Path
    cert: CertPair
    workdir: Path


def _py_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


@contextmanager
def pushserve(spec: ServeSpec, push: str = "off", workers: int = 1, extra: Sequence[str] = ()) -> Iterator[str]:
    cmd = [sys.executable, "-m", "pushserve", str(spec.docroot), "--port", "0",
           "--cert", str(spec.cert.cert), "--key", str(spec.cert.key),
           "--cert-dir", str(spec.workdir / "pushserve-certs"),
           "--push", push, "--no-access-log", "--workers", str(workers),
           "--dictionary-dir", str(spec.workdir / "dictionaries"), *extra]
    env = _py_env({"PUSHSERVE_CAROOT": str(spec.workdir / "caroot")})
    with running("pushserve", pinned(cmd, SERVER_CPU), env=env, cwd=str(REPO)) as child:
        yield child.wait_for_line(_PUSHSERVE_READY).group(1).replace("localhost", "127.0.0.1")


@contextmanager
def hypercorn(spec: ServeSpec) -> Iterator[str]:
    port = free_port()
    conf = spec.workdir / "hypercorn.toml"
    conf.write_text(textwrap.dedent(f"""\
        bind = ["127.0.0.1:{port}"]
        certfile = "{spec.cert.cert}"
        keyfile = "{spec.cert.key}"
        worker_class = "uvloop"
        workers = 1
        keep_alive_max_requests = {MAX_KEEPALIVE_REQUESTS}
        loglevel = "INFO"
        errorlog = "-"
        """))
    cmd = [sys.executable, "-m", "hypercorn", "--config", str(conf), "benchmarks.peers.starlette_static:app"]
    env = _py_env({"BENCH_DOCROOT": str(spec.docroot)})
    with running("hypercorn", pinned(cmd, SERVER_CPU), env=env, cwd=str(REPO)) as child:
        child.wait_for_line(_HYPERCORN_READY)
        yield f"https://127.0.0.1:{port}"


def nginx_available() -> bool:
    return shutil.which("nginx") is not None


@contextmanager
def nginx(spec: ServeSpec, http_extra: str = "") -> Iterator[str]:
    """``http_extra``: more directives for the http block (``gzip on; ...``)."""
    port = free_port()
    work = spec.workdir / "nginx"
    work.mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    # nginx 1.22 (Debian 12) spells HTTP/2 on the listen line; `user root` because the bench runs
    # as whoever started it and the temp folders belong to that user.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(textwrap.dedent(f"""\
        {user}
        worker_processes 1;
        daemon off;
        pid {work}/nginx.pid;
        error_log stderr warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            client_body_temp_path {work}/body;
            proxy_temp_path {work}/proxy;
            fastcgi_temp_path {work}/fastcgi;
            uwsgi_temp_path {work}/uwsgi;
            scgi_temp_path {work}/scgi;
            keepalive_requests {MAX_KEEPALIVE_REQUESTS};
            default_type application/octet-stream;
            {http_extra}
            server {{
                listen 127.0.0.1:{port} ssl http2;
                ssl_certificate {spec.cert.cert};
                ssl_certificate_key {spec.cert.key};
                root {spec.docroot};
            }}
        }}
        """))
    cmd = ["nginx", "-p", str(work), "-c", str(conf), "-e", "stderr"]
    with running("nginx", pinned(cmd, SERVER_CPU)) as child:
        child.wait_for_port(port)
        yield f"https://127.0.0.1:{port}"


def granian_available() -> bool:
    return shutil.which("granian") is not None


@contextmanager
def granian(spec: ServeSpec, app: str = "benchmarks.peers.starlette_static:app", static: bool = False) -> Iterator[str]:
    """Granian (Rust HTTP, Python app), one worker, TLS; ``static``: its own Rust file server at
    /static instead of the app."""
    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--loop", "uvloop", "--no-access-log", "--ssl-certificate", str(spec.cert.cert),
           "--ssl-keyfile", str(spec.cert.key), "--ssl-protocol-min", "tls1.2"]
    if static:
        cmd += ["--static-path-route", "/static", "--static-path-mount", str(spec.docroot)]
    cmd.append(app)
    env = _py_env({"BENCH_DOCROOT": str(spec.docroot)})
    with running("granian", pinned(cmd, SERVER_CPU), env=env, cwd=str(REPO)) as child:
        child.wait_for_port(port)
        yield f"https://127.0.0.1:{port}"


def h2o_available() -> bool:
    return shutil.which("h2o") is not None


@contextmanager
def h2o(spec: ServeSpec) -> Iterator[str]:
    port = free_port()
    conf = spec.workdir / "h2o.conf"
    user = "user: root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}"
        f"num-threads: 1\n"
        f"pid-file: {spec.workdir}/h2o.pid\n"
        f"listen:\n"
        f"  host: 127.0.0.1\n"
        f"  port: {port}\n"
        f"  ssl:\n"
        f"    certificate-file: {spec.cert.cert}\n"
        f"    key-file: {spec.cert.key}\n"
        f"hosts:\n"
        f"  default:\n"
        f"    paths:\n"
        f"      /:\n"
        f"        file.dir: {spec.docroot}\n"
    )
    cmd = ["h2o", "-c", str(conf)]
    with running("h2o", pinned(cmd, SERVER_CPU)) as child:
        child.wait_for_port(port)
        yield f"https://127.0.0.1:{port}"
