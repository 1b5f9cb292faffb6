"""How to start each server under test: pushserve, Granian's static-file route (Rust), Hypercorn
(+ Starlette StaticFiles), and the C servers nginx and h2o as the ceiling.  Each serves
``docroot`` over TLS with the same certificate, one worker, access log off, pinned to the server
CPU; each yields a ``Served``: the URL under which the docroot's files are found, and the pid of
the process it started (the root of its process tree: master and workers).

Config files for peers are generated into a temp folder; ports for peers that need a fixed port
come from ``free_port``.  pushserve picks its own port (``--port 0``) and prints it."""

from __future__ import annotations

import compileall
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pushserve.bench.certs import CertPair
from pushserve.bench.procs import LOOPBACK, SERVER_CPU, Place, free_port, pinned, running

REPO = Path(__file__).resolve().parent.parent
SITE = Path(__file__).resolve().parent / "site"
# pushserve's startup line: "... at https://127.0.0.1:PORT/ ..."
_PUSHSERVE_READY = re.compile(r" at (https://[^/\s]+:\d+)/")
_HYPERCORN_READY = re.compile(r"Running on (https://\S+:\d+)")
_GRANIAN_READY = re.compile(r"Started worker-1\b")
# Enough that no peer closes a keep-alive connection in the middle of a measurement.
MAX_KEEPALIVE_REQUESTS = 1_000_000_000


@dataclass(frozen=True)
class Served:
    """A running server: ``base`` + "/" + a docroot file's name is its URL."""

    base: str
    pid: int


@dataclass(frozen=True)
class ServeSpec:
    """What to serve and with which certificate; ``workdir`` is a temp folder for configs."""

    docroot: Path
    cert: CertPair
    workdir: Path


def version(server: str) -> str:
    """The version a peer reports ("" when it cannot tell): for the table's headings."""
    if server in ("granian", "hypercorn", "starlette"):
        try:
            return importlib.metadata.version(server)
        except importlib.metadata.PackageNotFoundError:
            return ""
    cmd = {"nginx": ["nginx", "-v"], "h2o": ["h2o", "--version"]}.get(server)
    if cmd is None or shutil.which(cmd[0]) is None:
        return ""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    found = re.search(r"version:? (?:nginx/)?(\S+)", done.stdout + done.stderr)
    return found.group(1) if found else ""


def _py_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


@contextmanager
def pushserve(spec: ServeSpec, push: str = "off", workers: int = 1, extra: Sequence[str] = (), *,
              repo: Path = REPO, module: str = "pushserve") -> Iterator[Served]:
    """``extra``: more pushserve options (``--no-compress``); ``repo``: another checkout of
    pushserve to run (a before/after comparison); ``module``: what ``python -m`` runs (a launcher
    in benchmarks/peers that changes one thing first)."""
    cmd = [sys.executable, "-m", module, str(spec.docroot), "--port", "0",
           "--cert", str(spec.cert.cert), "--key", str(spec.cert.key),
           "--cert-dir", str(spec.workdir / "pushserve-certs"),
           "--push", push, "--no-access-log", "--workers", str(workers),
           "--dictionary-dir", str(spec.workdir / "dictionaries"), *extra]
    env = _py_env({"PUSHSERVE_CAROOT": str(spec.workdir / "caroot")})
    path = (str(repo), *env["PYTHONPATH"].split(os.pathsep))
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in path if p))
    # Measured as installed: pip writes the bytecode at install time, as it did for the Python
    # peers.  A checkout run under PYTHONDONTWRITEBYTECODE would compile every module from source
    # in every process, which costs each about 1 MB more (and a slower start).
    compileall.compile_dir(str(repo / "pushserve"), quiet=1)
    with running("pushserve", pinned(cmd, SERVER_CPU), env=env, cwd=str(repo)) as child:
        base = child.wait_for_line(_PUSHSERVE_READY).group(1).replace("localhost", "127.0.0.1")
        yield Served(base, child.proc.pid)


@contextmanager
def hypercorn(spec: ServeSpec, app: str = "benchmarks.peers.starlette_static:app", *,
              h3: bool = False) -> Iterator[Served]:
    """Hypercorn with uvloop, one worker, TLS, serving ``app`` (Starlette's StaticFiles on the
    docroot unless another "module:attr" is given); with ``h3``, HTTP/3 too (``quic_bind``, its
    ``--quic-bind``) on the same port number over UDP."""
    port = free_port()
    conf = spec.workdir / "hypercorn.toml"
    quic = f'quic_bind = ["127.0.0.1:{port}"]\n' if h3 else ""
    conf.write_text(quic + textwrap.dedent(f"""\
        bind = ["127.0.0.1:{port}"]
        certfile = "{spec.cert.cert}"
        keyfile = "{spec.cert.key}"
        worker_class = "uvloop"
        workers = 1
        keep_alive_max_requests = {MAX_KEEPALIVE_REQUESTS}
        loglevel = "INFO"
        errorlog = "-"
        """))
    cmd = [sys.executable, "-m", "hypercorn", "--config", str(conf), app]
    env = _py_env({"BENCH_DOCROOT": str(spec.docroot)})
    with running("hypercorn", pinned(cmd, SERVER_CPU), env=env, cwd=str(REPO)) as child:
        child.wait_for_line(_HYPERCORN_READY)
        yield Served(f"https://127.0.0.1:{port}", child.proc.pid)


def granian_available() -> bool:
    return importlib.util.find_spec("granian") is not None


@contextmanager
def granian(spec: ServeSpec, app: str | None = None) -> Iterator[Served]:
    """Granian's static-file route: files under ``/static`` are served by its Rust core from the
    docroot and never reach the (empty) ASGI app.  With ``app`` ("module:attr", given the docroot
    in $BENCH_DOCROOT), that app serves everything instead.  Granian takes a PKCS#8 key only, which
    is what ``make_cert`` writes (``BEGIN PRIVATE KEY``)."""
    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--http", "auto", "--workers", "1",
           "--host", "127.0.0.1", "--port", str(port),
           "--ssl-certificate", str(spec.cert.cert), "--ssl-keyfile", str(spec.cert.key), "--no-access-log"]
    if app is None:
        cmd += ["--static-path-route", "/static", "--static-path-mount", str(spec.docroot),
                "benchmarks.peers.fixed_asgi:not_found"]
    else:
        cmd.append(app)
    env = _py_env({"BENCH_DOCROOT": str(spec.docroot)})
    with running("granian", pinned(cmd, SERVER_CPU), env=env, cwd=str(REPO)) as child:
        child.wait_for_line(_GRANIAN_READY)
        yield Served(f"https://127.0.0.1:{port}" + ("/static" if app is None else ""), child.proc.pid)


def nginx_available() -> bool:
    return shutil.which("nginx") is not None


@contextmanager
def nginx(spec: ServeSpec, http_extra: str = "", server: str | None = None, *,
          connections: int = 1024, workers: int = 1, place: Place = LOOPBACK) -> Iterator[Served]:
    """``http_extra``: more directives for the http block (``gzip on; ...``); ``server``: the
    server block's own directives (an exported snippet's ``include``) instead of ``root DOCROOT``;
    ``connections``: ``worker_connections``; ``workers``: ``worker_processes``; ``place``: where it
    runs (the bench's packet-shaper namespace, or loopback)."""
    port = free_port()
    work = spec.workdir / "nginx"
    work.mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    # nginx 1.22 (Debian 12) spells HTTP/2 on the listen line; `user root` because the bench runs
    # as whoever started it and the temp folders belong to that user.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(textwrap.dedent(f"""\
        {user}
        worker_processes {workers};
        daemon off;
        pid {work}/nginx.pid;
        error_log stderr warn;
        events {{ worker_connections {connections}; }}
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
                listen {place.host}:{port} ssl http2;
                ssl_certificate {spec.cert.cert};
                ssl_certificate_key {spec.cert.key};
                {server if server is not None else f"root {spec.docroot};"}
            }}
        }}
        """))
    cmd = ["nginx", "-p", str(work), "-c", str(conf), "-e", "stderr"]
    with running("nginx", place.wrap(pinned(cmd, SERVER_CPU))) as child:
        child.wait_for_port(port, host=place.host)
        yield Served(f"https://{place.host}:{port}", child.proc.pid)


def h2o_available() -> bool:
    return shutil.which("h2o") is not None


@contextmanager
def h2o(spec: ServeSpec, *, connections: int | None = None) -> Iterator[Served]:
    """``connections``: ``max-connections`` (h2o's default, 1024, when None)."""
    port = free_port()
    conf = spec.workdir / "h2o.conf"
    user = "user: root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}"
        f"num-threads: 1\n"
        + (f"max-connections: {connections}\n" if connections is not None else "")
        + f"pid-file: {spec.workdir}/h2o.pid\n"
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
        yield Served(f"https://127.0.0.1:{port}", child.proc.pid)
