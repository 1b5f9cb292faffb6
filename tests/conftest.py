from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.serverproc import Certs, ServerProcess, start


@pytest.fixture(autouse=True)
def _pushserve_logger() -> Iterator[None]:
    """Each test gets the "pushserve" logger as it found it: a test that runs the command line in
    process (cli.setup_logging) gives it a stderr handler and stops its records from reaching the
    root logger, where pytest's caplog listens; the tests after it would see no log records."""
    logger = logging.getLogger("pushserve")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """One development CA and localhost certificate for the whole run, made by pushserve itself."""
    base = tmp_path_factory.mktemp("pki")
    c = Certs(caroot=base / "ca", cert_dir=base / "certs")
    result = subprocess.run([sys.executable, "-m", "pushserve", "cert", "--cert-dir", str(c.cert_dir)],
                            env=c.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return c


@pytest.fixture(scope="session")
def server(certs: Certs) -> Iterator[ServerProcess]:
    """pushserve on site_example with default options, shared by read-only tests."""
    s = start(certs)
    yield s
    s.stop()


@pytest.fixture
def make_server(certs: Certs) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def factory(*args: str, site: Path | None = None, ready: bool = True) -> ServerProcess:
        kw = {"site": site} if site is not None else {}
        s = start(certs, *args, ready=ready, **kw)  # type: ignore[arg-type]
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: the README's test command installs it")
    return path
