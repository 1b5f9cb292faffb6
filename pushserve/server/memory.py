"""Freed memory back to the OS: glibc keeps what a process freed (fragmented, in its heap) until
``malloc_trim`` asks it to let go.  The master calls it before forking, so workers do not inherit
what parsing the command line and the checks left behind; a worker after its start and whenever
its load falls."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable

__all__ = ["give_back_memory"]


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc
        return None


_malloc_trim = _find_malloc_trim()


def give_back_memory() -> None:
    gc.collect()  # what ended in reference cycles goes now, so its memory can go back too
    if _malloc_trim is not None:
        _malloc_trim(0)
