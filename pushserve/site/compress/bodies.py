"""The per-worker cache of compressed bodies: a byte budget, least recently used out.

A body made at a fast level on the event loop is kept as *provisional* while the same body at
the high level is made in a thread; the next request that finds the thread done swaps it in.
Results come back through the jobs' futures, read on the loop thread only, so the cache itself
needs no lock.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from typing import Any

log = logging.getLogger("pushserve")

MAX_JOBS = 64  # high-level bodies queued or running at once; more requests wait their turn


class DaemonExecutor(Executor):
    """A few daemon threads running jobs: unlike ThreadPoolExecutor's threads, they never hold
    up a stopping process, where a queue of brotli-11 jobs could take seconds; a job cut short
    loses nothing but a better body."""

    def __init__(self, threads: int, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        for i in range(threads):
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True).start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, lambda: fn(*args, **kwargs)))
        return future

    def _run(self) -> None:
        while True:
            future, job = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as e:
                future.set_exception(e)


class BodyCache:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._bodies: OrderedDict[Hashable, tuple[bytes, bool]] = OrderedDict()  # key -> (body, final)
        self._jobs: dict[Hashable, Future[bytes]] = {}

    def __len__(self) -> int:
        return len(self._bodies)

    def get(self, key: Hashable) -> bytes | None:
        job = self._jobs.get(key)
        if job is not None and job.done():
            del self._jobs[key]
            try:
                best = job.result()
            except Exception as e:  # a codec failure: keep serving the fast body
                log.error("compression in the background failed: %r", e)
            else:
                fast = self._bodies.get(key)
                # A higher level is not always smaller (brotli 11 can lose to 4 on repetitive
                # text): the smaller body is kept.
                self.put(key, best if fast is None or len(best) <= len(fast[0]) else fast[0], final=True)
        item = self._bodies.get(key)
        if item is None:
            return None
        self._bodies.move_to_end(key)
        return item[0]

    def put(self, key: Hashable, body: bytes, *, final: bool) -> None:
        old = self._bodies.pop(key, None)
        if old is not None:
            self.size -= len(old[0])
        if len(body) > self.budget // 4:  # one body must not sweep the cache
            return
        self._bodies[key] = (body, final)
        self.size += len(body)
        while self.size > self.budget:
            _, (evicted, _final) = self._bodies.popitem(last=False)
            self.size -= len(evicted)

    def is_final(self, key: Hashable) -> bool:
        item = self._bodies.get(key)
        return item is not None and item[1]

    def submit(self, key: Hashable, executor: Executor, fn: Callable[[], bytes]) -> None:
        """Make the final body for ``key`` in the executor, unless that is under way already."""
        if key in self._jobs or len(self._jobs) >= MAX_JOBS:
            if len(self._jobs) >= MAX_JOBS:
                self._reap()
            return
        self._jobs[key] = executor.submit(fn)

    def _reap(self) -> None:
        """Move finished jobs in, so the job table frees up even for keys nobody asks for again."""
        for key in [k for k, f in self._jobs.items() if f.done()]:
            self.get(key)
