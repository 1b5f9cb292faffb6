"""``python -m benchmarks.core_inprocess``: Python time per request of the protocol cores, alone and
under the whole static-file path, driven in-process (no TLS, no sockets, no client process).

Rows:

- ``h2 core``: ``H2Core`` fed the same HEADERS frame ten at a time (h2load ``-m10``'s pattern:
  an HPACK block the core has seen before, END_STREAM), each request answered with a 100-byte
  body and prebuilt headers, output taken once per batch; a connection WINDOW_UPDATE now and then,
  as a client reading the responses sends;
- ``h1 core``: ``H1Core`` fed one GET at a time (wrk's pattern), answered the same way;
- ``h2 connection`` / ``h1 connection``: the same requests through ``server/connection.py``'s
  ``Connection`` and the site's app (route cache hit, prebuilt headers, one write per batch) for
  ``benchmarks/site/tiny.txt``, with a transport that only collects what is written;
- ``h2 browser head``: a browser's request heads, as ``benchmarks/browserlike.py`` sends them
  (user-agent, client hints, accept and sec-fetch-* per destination, accept-encoding, priority,
  a cookie), for its 50 paths in a shuffled order on one connection, as a browser loads a site:
  HPACK-decoded and checked (``fields.RequestDecoder.decode`` then ``validate_request``).  The
  blocks are encoded as nghttp2 and browsers do (every field indexed but ``:path``), so after
  the first few they are indexed references and one literal.  The cache of blocks repeated
  byte for byte is left out, as in browserlike's "no request-block cache" rows: a browser
  rarely repeats a block;
- ``h2 browser connection``: those requests through ``Connection`` and the site's app on
  browserlike's docroot (the answers: files of 300 B to 120 KB, zstd/br/gzip bodies kept after
  a warm-up pass), the client's windows wide open, still without the block cache.

CPU time of this process (``time.process_time``), so other load on the machine disturbs it little.
``--baseline CHECKOUT`` measures another checkout of pushserve the same way, in alternating child
processes (its ``pushserve`` package first on ``PYTHONPATH``), and prints both with the ratio.
Figures are medians over ``--repeat`` runs of ``--requests`` requests each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SITE = HERE / "site"
BATCH = 10  # requests per read on HTTP/2, as h2load -m10 keeps ten in flight per connection
BODY = b"x" * 100
RESPONSE_HEADERS = [(b"date", b"Sun, 29 Nov 2026 23:44:00 GMT"), (b"server", b"pushserve"),
                    (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"100"),
                    (b"etag", b'"64-5f1e2d3c"'), (b"last-modified", b"Sun, 29 Nov 2026 20:00:00 GMT"),
                    (b"cache-control", b"public, max-age=600"), (b"accept-ranges", b"bytes")]
H1_REQUEST = b"GET /tiny.txt HTTP/1.1\r\nHost: localhost:8443\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + sid.to_bytes(4, "big") + payload


def _h2_blocks() -> tuple[bytes, bytes]:
    """The first request's block (it fills the HPACK table) and the block h2load sends for every
    later request (indexed fields only)."""
    from hpack import Encoder

    enc = Encoder()
    fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost:8443"),
              (b":path", b"/tiny.txt"), (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"),
              (b"user-agent", b"h2load nghttp2/1.52.0")]
    first: bytes = enc.encode(fields)
    block: bytes = enc.encode(fields)
    return first, block


def _h2_reads(n: int) -> list[bytes]:
    """The client's reads: preface, SETTINGS and a first request, then batches of BATCH requests
    on new streams with a connection WINDOW_UPDATE per batch (what the responses' DATA used up)."""
    first, block = _h2_blocks()
    reads = [H2_PREFACE + _frame(4, 0, 0, b"") + _frame(4, 1, 0, b"") + _frame(1, 0x5, 1, first)]
    sid = 3
    credit = _frame(8, 0, 0, (len(BODY) * BATCH).to_bytes(4, "big"))
    for _ in range(0, n, BATCH):
        frames = []
        for _ in range(BATCH):
            frames.append(_frame(1, 0x5, sid, block))
            sid += 2
        reads.append(b"".join(frames) + credit)
    return reads


def _browser_blocks(n: int) -> tuple[Path, list[bytes]]:
    """browserlike's docroot (made once, in a temporary folder) and ``n`` browser request
    blocks from one HPACK encoder (one connection)."""
    import atexit
    import random
    import shutil
    import tempfile

    from hpack import Encoder, HeaderTuple, NeverIndexedHeaderTuple

    from benchmarks import browserlike

    folder = Path(tempfile.mkdtemp(prefix="core-inprocess-"))
    atexit.register(shutil.rmtree, folder, True)
    docroot, paths = browserlike.make_docroot(folder)
    rnd = random.Random(28)
    order: list[str] = []
    while len(order) < n:
        batch = list(paths)
        rnd.shuffle(batch)
        order += batch
    enc = Encoder()
    blocks = []
    for path in order[:n]:
        dest = browserlike.destination_of(path)
        fields = [HeaderTuple(":method", "GET"), NeverIndexedHeaderTuple(":path", path),
                  HeaderTuple(":scheme", "https"), HeaderTuple(":authority", "127.0.0.1:8443")]
        for line in (*browserlike._COMMON, *dest.headers, browserlike.BROWSER_ENCODINGS):
            name, _, value = line.partition(": ")
            fields.append(HeaderTuple(name, value))
        blocks.append(enc.encode(fields))
    return docroot, blocks


def h2_browser_head(n: int) -> float:
    from pushserve.protocol.h2.fields import RequestDecoder, validate_request

    _, blocks = _browser_blocks(n)
    decoder = RequestDecoder(65536)
    start = time.process_time()
    for block in blocks:
        fields, _unchanged = decoder.decode(block)
        validate_request(fields)
    return (time.process_time() - start) / n


def h2_browser_connection(n: int) -> float:
    from pushserve.protocol.h2.fields import Request, RequestDecoder, validate_request

    def uncached(self: RequestDecoder, block: bytes) -> Request:  # as peers/pushserve_no_block_cache
        return validate_request(self.decode(block)[0])

    RequestDecoder.request = uncached  # type: ignore[method-assign]
    docroot, blocks = _browser_blocks(n)
    wide_open = _frame(4, 0, 0, (4).to_bytes(2, "big") + (2**31 - 1).to_bytes(4, "big"))  # INITIAL_WINDOW_SIZE
    first = H2_PREFACE + wide_open + _frame(4, 1, 0, b"")
    reads = []
    for i in range(0, n, BATCH):
        frames = [_frame(1, 0x5, 2 * (i + j) + 1, block) for j, block in enumerate(blocks[i:i + BATCH])]
        reads.append(b"".join(frames) + _frame(8, 0, 0, (1 << 24).to_bytes(4, "big")))
    return _connection_cost("h2", n, site=docroot, h2_reads=(first, reads), warm_up=True)


def h2_core(n: int) -> float:
    from pushserve.protocol.events import RequestReceived
    from pushserve.protocol.h2 import H2Core

    reads = _h2_reads(n)
    headers = RESPONSE_HEADERS
    n = (len(reads) - 1) * BATCH + 1
    start = time.process_time()
    core = None
    for i, data in enumerate(reads):
        if i % 1000 == 0:  # a fresh connection now and then: stream ids stay small, as h2load's do
            core = H2Core()
            core.initiate()
            if i:
                for ev in core.receive_data(reads[0]):
                    if type(ev) is RequestReceived:
                        core.send_response(ev.stream_id, 200, headers, BODY)
                core.data_to_send()
        assert core is not None
        for ev in core.receive_data(data):
            if type(ev) is RequestReceived:
                core.send_response(ev.stream_id, 200, headers, BODY)
        core.data_to_send()
    return (time.process_time() - start) / n


def h1_core(n: int) -> float:
    from pushserve.protocol.events import RequestReceived
    from pushserve.protocol.h1 import H1Core

    headers = RESPONSE_HEADERS
    core = H1Core()
    start = time.process_time()
    for _ in range(n):
        for ev in core.receive_data(H1_REQUEST):
            if type(ev) is RequestReceived:
                core.send_response(ev.stream_id, 200, headers, BODY)
        core.data_to_send()
    return (time.process_time() - start) / n


class _Transport:
    """Just enough of an asyncio transport for a Connection to write to."""

    def __init__(self, alpn: str) -> None:
        self.alpn = alpn
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8443)}.get(name, default)

    def version(self) -> str:
        return "TLSv1.3"

    def cipher(self) -> tuple[str, str, int]:
        return ("TLS_AES_128_GCM_SHA256", "TLSv1.3", 128)

    def selected_alpn_protocol(self) -> str:
        return self.alpn

    def is_closing(self) -> bool:
        return False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _connection_cost(alpn: str, n: int, *, site: Path = SITE, h2_reads: tuple[bytes, list[bytes]] | None = None,
                     warm_up: bool = False) -> float:
    async def run() -> float:
        from pushserve.app import build
        from pushserve.config import Config
        from pushserve.server.connection import Connection, WorkerState

        config = Config(site=site, access_log=False, push="off")
        app = build(config)
        await app.startup()
        worker = WorkerState(config, app, asyncio.get_running_loop())
        if h2_reads is not None:  # one connection: its stream ids and HPACK table are the client's
            first, reads = h2_reads
            count, per_connection = n, len(reads)
        elif alpn == "h2":
            reads = _h2_reads(n)
            first, reads = reads[0], reads[1:]
            count, per_connection = len(reads) * BATCH, 1000
        else:
            first, reads, count, per_connection = b"", [H1_REQUEST] * n, n, 1000

        def play() -> None:
            conn = None
            for i, data in enumerate(reads):
                if i % per_connection == 0:  # see h2_core
                    conn = Connection(worker)
                    conn.connection_made(_Transport(alpn))  # type: ignore[arg-type]
                    if first:
                        conn.data_received(first)
                assert conn is not None
                conn.data_received(data)

        if warm_up:  # bodies read and compressed, routes resolved
            play()
        start = time.process_time()
        play()
        took = time.process_time() - start
        await app.shutdown()
        return took / count

    import uvloop

    return uvloop.run(run())


def h2_connection(n: int) -> float:
    return _connection_cost("h2", n)


def h1_connection(n: int) -> float:
    return _connection_cost("http/1.1", n)


ROWS: dict[str, Callable[[int], float]] = {
    "h2 core": h2_core, "h1 core": h1_core, "h2 connection": h2_connection, "h1 connection": h1_connection,
    "h2 browser head": h2_browser_head, "h2 browser connection": h2_browser_connection,
}


def _child(checkout: Path, row: str, n: int) -> float:
    """One run of ``row`` in a fresh process importing pushserve from ``checkout``."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    # This file is loaded by path: the other checkout may have no such module.
    code = ("import importlib.util, json; "
            f"spec = importlib.util.spec_from_file_location('core_inprocess', {str(Path(__file__).resolve())!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            f"print(json.dumps(m.ROWS[{row!r}]({n})))")
    # cwd too: ``python -c`` puts the working folder ahead of PYTHONPATH, so run from elsewhere
    # both children would import the checkout the command was started in.
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=checkout, capture_output=True, text=True,
                         timeout=600, check=False)
    if out.returncode:
        raise SystemExit(f"{checkout}: {row} failed: {out.stderr.strip()[-500:]}")
    cost: float = json.loads(out.stdout)
    return cost


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.core_inprocess", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    p.add_argument("--baseline", type=Path, help="another pushserve checkout, measured alternately")
    ns = p.parse_args()
    rows = [r.strip() for r in ns.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f"unknown row(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    here = HERE.parent
    checkouts = [("this", here)] + ([("baseline", ns.baseline.resolve())] if ns.baseline else [])
    print(f"load average {os.getloadavg()[0]:.2f}; {ns.repeat} runs of {ns.requests} requests; "
          "medians, µs of Python per request", file=sys.stderr)
    for row in rows:
        costs: dict[str, list[float]] = {name: [] for name, _ in checkouts}
        for _ in range(ns.repeat):
            for name, checkout in checkouts:  # alternating, so drift spreads over both
                costs[name].append(_child(checkout, row, ns.requests))
        med = {name: statistics.median(v) * 1e6 for name, v in costs.items()}
        line = f"{row:22} {med['this']:6.2f}"
        if "baseline" in med:
            line += f"   baseline {med['baseline']:6.2f}   this/baseline {med['this'] / med['baseline']:.3f}"
        print(line)
    print(f"load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
