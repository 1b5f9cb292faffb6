"""HTTP/2 load that behaves as RFC 9113 asks of a client when a server goes away: it answers the
server's PINGs, opens no stream after a GOAWAY, and retries on a new connection only the streams
above the GOAWAY's last stream id (the server says it never processed them, §8.7).  Any other
stream that ends without a complete 200 is a request the server lost.

h2load counts the requests it *could not start* after a GOAWAY as failed too (nginx shows the
same under `nginx -s reload`), so it cannot tell a server that loses nothing from one that does;
this client can."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field

from tests.support.h2raw import F, RawH2, T, u32


@dataclass
class Tally:
    answered: int = 0  # complete 200 responses
    retried: int = 0  # streams above a GOAWAY's last stream id, sent again elsewhere
    lost: list[str] = field(default_factory=list)  # what went wrong with the others
    flowing: threading.Event = field(default_factory=threading.Event)  # set at the first answer
    lock: threading.Lock = field(default_factory=threading.Lock)


def _one_connection(host: str, port: int, ctx: ssl.SSLContext, path: str, streams: int,
                    stop: threading.Event, tally: Tally) -> None:
    c = RawH2(host, port, ctx, timeout=10)
    try:
        inflight: dict[int, bool] = {}  # stream → its response head said 200
        last: int | None = None  # the GOAWAY's last stream id, once one came
        while True:
            while not stop.is_set() and last is None and len(inflight) < streams:
                sid = c.new_stream()
                c.send_headers(sid, c.request_headers(path))
                inflight[sid] = False
            if not inflight:
                return
            try:
                f = c.read_frame(timeout=10)
            except Exception as e:  # closed (or silent): whatever is in flight was lost
                with tally.lock:
                    tally.lost += [f"stream {s}: connection ended ({type(e).__name__})" for s in inflight]
                return
            if f.type == T.PING and not f.flags & F.ACK:
                c.send_frame(T.PING, F.ACK, 0, f.payload)
            elif f.type == T.HEADERS and f.stream_id in inflight:
                inflight[f.stream_id] = dict(f.headers or []).get(b":status") == b"200"
            elif f.type == T.DATA and f.payload:
                c.send_frame(T.WINDOW_UPDATE, 0, 0, u32(len(f.payload)))
            elif f.type == T.RST_STREAM and f.stream_id in inflight:
                del inflight[f.stream_id]
                with tally.lock:
                    tally.lost.append(f"stream {f.stream_id}: RST_STREAM {f.error_code}")
            elif f.type == T.GOAWAY:
                last = f.last_stream_id
                above = [s for s in inflight if s > last]
                for s in above:
                    del inflight[s]
                with tally.lock:
                    tally.retried += len(above)
            if f.type in (T.HEADERS, T.DATA) and f.flags & F.END_STREAM and f.stream_id in inflight:
                ok = inflight.pop(f.stream_id)
                with tally.lock:
                    if ok:
                        tally.answered += 1
                        tally.flowing.set()
                    else:
                        tally.lost.append(f"stream {f.stream_id}: not a 200")
    finally:
        c.sock.close()


def run(host: str, port: int, ctx: ssl.SSLContext, stop: threading.Event, *, connections: int = 4,
        streams: int = 8, path: str = "/") -> tuple[Tally, list[threading.Thread]]:
    """Start the load; it runs until ``stop`` is set (each connection then finishes its streams)."""
    tally = Tally()

    def loop() -> None:
        while not stop.is_set():
            _one_connection(host, port, ctx, path, streams, stop, tally)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    return tally, threads
