"""server/forked.py: one call in a throwaway child, its result or its error brought back."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from pushserve.config import ConfigError
from pushserve.server import forked
from pushserve.tls import CertError


def give(value: object) -> object:
    return value


def fail_config(message: str) -> None:
    raise ConfigError(message)


def fail_cert(message: str) -> None:
    raise CertError(message)


def fail_other() -> None:
    raise KeyError("surprise")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def import_and_tell(name: str) -> bool:
    __import__(name)
    return name in sys.modules


ME = "tests.unit.test_forked"


def test_the_result_comes_back() -> None:
    assert forked.call(f"{ME}:give", (Path("/a"), None, ["x"])) == (Path("/a"), None, ["x"])


def test_what_the_child_imports_stays_there() -> None:
    assert "xml.dom.minidom" not in sys.modules
    assert forked.call(f"{ME}:import_and_tell", "xml.dom.minidom") is True
    assert "xml.dom.minidom" not in sys.modules


@pytest.mark.parametrize("fail", ["fail_config", "fail_cert"])
def test_a_user_error_comes_back_as_its_message(fail: str) -> None:
    with pytest.raises(ConfigError) as e:
        forked.call(f"{ME}:{fail}", "cert.pem is not a PEM file")
    assert str(e.value) == "cert.pem is not a PEM file"


def test_another_failure_comes_back_with_its_type() -> None:
    with pytest.raises(ConfigError, match=r"^KeyError: 'surprise'$"):
        forked.call(f"{ME}:fail_other")


def test_a_child_that_dies_is_named_with_its_signal() -> None:
    with pytest.raises(ConfigError, match=r"tests\.unit\.test_forked:die failed: the child process was "
                                          r"killed by signal SIGKILL"):
        forked.call(f"{ME}:die")
