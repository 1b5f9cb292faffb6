"""One call in a throwaway child process, so that what it imports never enters the caller.

The master uses it for everything that needs heavy code once: the site's startup checks (the
site, the templates, the mounted apps) and the certificate checks (``cryptography``, about 9 MB).
Kept out of the master, that code neither weighs on it nor goes stale in it: a worker forked
after SIGHUP imports the apps' current code.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import sys
from typing import Any

from pushserve.config import ConfigError
from pushserve.tls import CertError

__all__ = ["call", "describe_exit", "resolve"]


def resolve(name: str) -> Any:
    """The object a "module:attribute" name stands for."""
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def describe_exit(status: int) -> str:
    """'exited with code 3' / 'was killed by signal SIGKILL' from a waitpid status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"was killed by signal {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def call(name: str, *args: Any) -> Any:
    """What the function ``name`` ("module:function", imported in the child only) returns for
    ``args``, called in a forked child; the result comes back pickled through a pipe.  A
    ConfigError or CertError raised there is raised here as a ConfigError with its message, any
    other failure likewise with its type's name in front."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            try:
                data, code = pickle.dumps(resolve(name)(*args)), 0
            except (ConfigError, CertError) as e:
                data = str(e).encode()
            except Exception as e:
                data = f"{type(e).__name__}: {e}".encode()
            with os.fdopen(w, "wb") as out:
                out.write(data)
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        message = data.decode("utf-8", "replace").strip()
        raise ConfigError(message or f"{name} failed: the child process {describe_exit(status)}")
    return pickle.loads(data)
