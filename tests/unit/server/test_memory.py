"""A worker's allocator setting (server/memory.py): a 256 KiB buffer shrunk to what was read —
uvloop's TLS read, on every read — comes from the heap instead of a fresh mmap.  Each case runs
in a child process, since the setting is process-wide; where the buffers lie is read from the
child's own memory map."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent("""
    import json, os, sys
    from pushserve.server.memory import give_back_memory, keep_buffers_in_heap

    def heap():
        with open("/proc/self/maps") as f:
            for line in f:
                if line.rstrip().endswith("[heap]"):
                    start, end = line.split()[0].split("-")
                    return int(start, 16), int(end, 16)
        return 0, 0

    if sys.argv[1] == "tuned":
        keep_buffers_in_heap()
    r, w = os.pipe()
    held = []
    for _ in range(8):
        # As uvloop's TLS read: a 256 KiB bytes object, shrunk to the 100 bytes that came.
        os.write(w, b"x" * 100)
        held.append(os.read(r, 256 * 1024))
    low, high = heap()
    in_heap = sum(low <= id(b) < high for b in held)
    del held
    give_back_memory()
    print(json.dumps({"in_heap": in_heap}))
""")


def _in_heap(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["in_heap"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and /proc/self/maps")
def test_read_sized_buffers_come_from_the_heap_once_tuned() -> None:
    # glibc's default: every such buffer is a mapping of its own (an mmap, mremap and munmap per
    # TLS read), and its threshold never adapts, since what is freed is the shrunk chunk.
    assert _in_heap("default") == 0
    assert _in_heap("tuned") == 8
