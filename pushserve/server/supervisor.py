"""The master process: checks everything once, then runs the worker(s).

Knows nothing of HTTP.  With one worker the master serves itself; more workers are forked, each
with its own SO_REUSEPORT listener (see run_workers)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from pushserve import __version__
from pushserve.config import Config, ConfigError
from pushserve.server import worker
from pushserve.site.build import build_site, check_site

log = logging.getLogger("pushserve")


def startup_line(config: Config, port: int) -> str:
    from pushserve.cli import url_for

    workers = config.worker_count
    return (f"pushserve {__version__} serving {config.site} at {url_for(config.host, port)} "
            f"(h2, http/1.1; push: {config.push}; {workers} worker{'s' if workers != 1 else ''}"
            f"{'; dev mode' if config.dev else ''})")


def run(config: Config, ssl_ctx: ssl.SSLContext, *, cert_files: tuple[Path, Path | None]) -> int:
    from pushserve.cli import bind

    for problem in check_site(config):
        log.warning("%s", problem)
    sock = bind(config.host, config.port, reuse_port=False)
    port = sock.getsockname()[1]
    if config.worker_count != 1:
        raise ConfigError("--workers other than 1 is not supported yet")

    def ready() -> None:
        log.info("%s", startup_line(config, port))

    worker.run(config, ssl_ctx, sock, build_site, ready=ready)
    return 0

