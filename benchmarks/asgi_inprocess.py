"""``python -m benchmarks.asgi_inprocess``: Python time per HTTP/1.1 request of the ASGI "hello" app,
pushserve's connection vs Uvicorn's httptools protocol, each driven in-process through a
transport that only collects what is written (no TLS, no sockets, no client).

This isolates the servers' own per-request Python work, which `asgi_hello` mixes with TLS,
syscalls and the load generator; it is CPU time of this process (time.process_time), so other
load on the machine disturbs it little.  Prints the best of --repeat runs for each."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from benchmarks.asgi_hello import app

REQUEST = b"GET /hello HTTP/1.1\r\nHost: localhost:8443\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
SITE = Path(__file__).resolve().parent / "site"


class CollectingTransport:
    """Just enough of an asyncio transport for a server protocol to write to."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8443)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass


async def _drive(feed: Callable[[bytes], None], transport: CollectingTransport, writes_per_response: int,
                 n: int) -> float:
    start = time.process_time()
    for i in range(n):
        feed(REQUEST)
        while len(transport.writes) < writes_per_response * (i + 1):
            await asyncio.sleep(0)
    return (time.process_time() - start) / n


async def pushserve_cost(n: int) -> float:
    from pushserve.app import build
    from pushserve.config import Config, Mount
    from pushserve.server.connection import Connection, WorkerState

    config = Config(site=SITE, access_log=False, push="off", mounts=(Mount("/hello", "benchmarks.asgi_hello:app"),))
    app = build(config)
    await app.startup()
    conn = Connection(WorkerState(config, app, asyncio.get_running_loop()))
    transport = CollectingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return await _drive(conn.data_received, transport, 1, n)


async def uvicorn_cost(n: int) -> float:
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app=app, access_log=False, lifespan="off", http="httptools", loop="uvloop")
    config.load()
    protocol = HttpToolsProtocol(config, ServerState(), app_state={})
    transport = CollectingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return await _drive(protocol.data_received, transport, 2, n)  # it writes head and body apart


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.asgi_inprocess", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=40_000)
    p.add_argument("--repeat", type=int, default=5)
    ns = p.parse_args()
    runners: dict[str, Callable[[int], Awaitable[float]]] = {"pushserve": pushserve_cost,
                                                               "uvicorn": uvicorn_cost}
    for name, runner in runners.items():
        best = min(uvloop.run(runner(ns.requests)) for _ in range(ns.repeat))
        print(f"{name:10} {best * 1e6:6.1f} us of Python per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
