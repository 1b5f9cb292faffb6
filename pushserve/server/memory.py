"""Freed memory back to the OS: glibc keeps what a process freed (fragmented, in its heap) until
``malloc_trim`` asks it to let go.  The master calls it before forking, so workers do not inherit
what parsing the command line and the checks left behind; a worker after its start and whenever
its load falls."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable

__all__ = ["give_back_memory", "keep_buffers_in_heap"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# uvloop's TLS transport reads each record into a fresh 256 KiB bytes object and shrinks it to what
# was read; glibc serves an allocation that large with mmap, so every read cost mmap + mremap +
# munmap (3 of the 5 syscalls of an HTTP/1.1 request, measured with strace -c under wrk) and
# page faults.  The default threshold adapts upwards only when a chunk of that size is freed,
# and a shrunk one never is.  Above it: the 256 KiB writes of large bodies, too.
_MMAP_THRESHOLD = 1024 * 1024
# Freed heap at the top kept before giving it back by itself; without it, each such read would
# grow and shrink the heap (brk) instead.  give_back_memory still returns everything.
_TRIM_THRESHOLD = 2 * 1024 * 1024


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc
        return None


_malloc_trim = _find_malloc_trim()


def keep_buffers_in_heap() -> None:
    """Serve the TLS layer's per-read buffers from the heap, not one mmap each (see above)."""
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def give_back_memory() -> None:
    gc.collect()  # what ended in reference cycles goes now, so its memory can go back too
    if _malloc_trim is not None:
        _malloc_trim(0)
