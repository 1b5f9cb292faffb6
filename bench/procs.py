"""Child processes for the harness: the instrument's helpers (pushserve/bench/procs.py), re-exported
so the harness modules keep one import path; the page-load instrument ships with pushserve and must
not depend on this folder."""

from pushserve.bench.procs import (
    CLIENT_CPU,
    SERVER_CPU,
    BenchError,
    Child,
    can_pin,
    free_port,
    pinned,
    run_client,
    running,
)

__all__ = ["CLIENT_CPU", "SERVER_CPU", "BenchError", "Child", "can_pin", "free_port", "pinned", "run_client",
           "running"]
