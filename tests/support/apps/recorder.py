"""What an app saw, counted by name, with a way to wait (bounded) until a count is reached:
tests ask the server "has this happened yet" instead of sleeping."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

counts: Counter[str] = Counter()
_changed: asyncio.Event | None = None


def record(name: str) -> None:
    global _changed
    counts[name] += 1
    if _changed is not None:
        _changed.set()
        _changed = None


async def wait_for(name: str, count: int, timeout: float = 20.0) -> int:
    """Wait until ``name`` was recorded ``count`` times or ``timeout`` passes; the count."""
    global _changed
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while counts[name] < count and loop.time() < deadline:
        if _changed is None:
            _changed = asyncio.Event()
        event = _changed
        try:
            await asyncio.wait_for(event.wait(), deadline - loop.time())
        except TimeoutError:
            break
    return counts[name]


def marker(name: str) -> None:
    """Leave a file in $PUSHSERVE_TEST_MARKERS (when set) so a test can see, after the server
    exited, that a lifespan step ran."""
    folder = os.environ.get("PUSHSERVE_TEST_MARKERS")
    if folder:
        (Path(folder) / name).write_text(str(os.getpid()))
