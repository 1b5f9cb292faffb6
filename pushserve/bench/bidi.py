"""A small WebDriver BiDi client (W3C WebDriver BiDi over one WebSocket, ``websockets``): commands
by id, events kept in order as they arrive.  Firefox speaks it directly when started with
``--remote-debugging-port`` (no geckodriver): ``ws://HOST:PORT/session`` opens a session.

Everything runs on one asyncio loop in a thread of its own (``BiDiThread``), so the bench's
synchronous code can call ``command()`` while the events of a load keep arriving; events are
appended to ``events`` (method, params, arrival time) and waited for with ``wait_for``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection

from pushserve.bench.procs import BenchError

T = TypeVar("T")
COMMAND_TIMEOUT = 90.0


class BiDiError(BenchError):
    """An error answer to a command (``error``: the WebDriver error code) or a lost connection."""

    def __init__(self, message: str, error: str = "") -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class Event:
    method: str
    params: dict[str, Any]
    at: float  # time.time() when it arrived


class BiDi:
    """One BiDi connection.  Use it from its loop only (``BiDiThread`` does)."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self._closed: str | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, url: str) -> BiDi:
        try:
            ws = await websockets.connect(url, max_size=None, ping_interval=None, open_timeout=30)
        except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as e:
            raise BiDiError(f"WebDriver BiDi at {url}: {e}") from e
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                msg = json.loads(raw)
                if "id" in msg and msg["id"] in self._pending:
                    fut = self._pending.pop(msg["id"])
                    if not fut.done():
                        fut.set_result(msg)
                elif msg.get("type") == "event":
                    self.events.append(Event(msg["method"], msg.get("params", {}), time.time()))
                    self._changed.set()
        except websockets.exceptions.ConnectionClosed as e:
            self._closed = f"connection closed ({e.rcvd.code if e.rcvd else 'no close frame'})"
        finally:
            self._closed = self._closed or "connection closed"
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(BiDiError(f"WebDriver BiDi: {self._closed}"))
            self._pending.clear()
            self._changed.set()

    async def command(self, method: str, timeout: float = COMMAND_TIMEOUT, **params: Any) -> dict[str, Any]:
        if self._closed:
            raise BiDiError(f"WebDriver BiDi: {self._closed}")
        cid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        await self._ws.send(json.dumps({"id": cid, "method": method, "params": params}))
        try:
            answer = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._pending.pop(cid, None)
            raise BiDiError(f"WebDriver BiDi {method}: no answer within {timeout:.0f}s") from None
        if answer.get("type") == "error":
            message = str(answer.get("message", "")).splitlines()[0] if answer.get("message") else ""
            raise BiDiError(f"WebDriver BiDi {method}: {answer.get('error')}: {message}", str(answer.get("error")))
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def wait_for(self, match: Callable[[Event], bool], start: int = 0, timeout: float = 60.0) -> Event:
        """The first event from index ``start`` on that ``match`` accepts."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.events):
                if match(self.events[i]):
                    return self.events[i]
                i += 1
            if self._closed:
                raise BiDiError(f"WebDriver BiDi: {self._closed}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise BiDiError("WebDriver BiDi: the event waited for did not come") from None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue

    async def quiet(self, match: Callable[[Event], bool], start: int, quiet_s: float, max_s: float) -> None:
        """Return once no event ``match`` accepts has come for ``quiet_s`` (or after ``max_s``)."""
        end = time.monotonic() + max_s
        seen = start
        last = time.monotonic()
        while (now := time.monotonic()) < end:
            if any(match(e) for e in self.events[seen:]):
                last = now
            seen = len(self.events)
            if now - last >= quiet_s:
                return
            self._changed.clear()
            # Woken by the next event, or re-checked when the quiet time would be over.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(quiet_s - (now - last), end - now))

    async def close(self) -> None:
        await self._ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


class BiDiThread:
    """A BiDi connection on its own loop in a thread; ``run(coro)`` from any other thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="bidi", daemon=True)
        self._thread.start()
        self.conn: BiDi | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = COMMAND_TIMEOUT * 2) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def connect(self, url: str) -> BiDi:
        self.conn = self.run(BiDi.connect(url))
        return self.conn

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.conn is not None, "connect first"
        return self.run(self.conn.command(method, **params))

    def stop(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            with contextlib.suppress(BiDiError, TimeoutError, OSError, RuntimeError):
                self.run(conn.close(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()
