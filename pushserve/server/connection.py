"""asyncio glue between a TLS transport and a sans-IO protocol core.

One Connection per TCP connection.  It picks the core by ALPN, feeds it bytes, hands every
request to the worker's app as a Stream (``app.handle(stream)``, server/streams.py), routes
body/reset/drain events to the stream a handler was attached to, and writes what the core has
to send — one transport.write per batch, only while the transport is not paused, so a slow
reader holds back the producers instead of filling memory.

Timers are not per connection: the worker sweeps all connections once a second (see sweep()),
which costs nothing per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Protocol, cast

from pushserve.config import Config
from pushserve.exchange import App, ConnectionInfo, StreamHandler
from pushserve.http.dates import DateHeader
from pushserve.protocol.events import (
    ConnectionTerminated,
    Headers,
    ServerCore,
)
from pushserve.protocol.h1 import H1Core
from pushserve.protocol.h2 import H2Core
from pushserve.server.descriptors import Room
from pushserve.server.streams import EventRouting

log = logging.getLogger("pushserve")

# Bytes asked of the core per write.  The TLS layer's output buffer (an OpenSSL memory BIO)
# keeps the size of the largest write it ever encrypted for as long as the connection lives, so a
# connection writes one record's worth at a time until its peer has shown that it reads, by
# acknowledging _EARN_BURST bytes; then writes of _BURST cost fewer calls per byte.  A client
# that never reads pins ~20 KB, not the 340 KB a single 256 KiB write would leave behind.
_SMALL_BURST = 16 * 1024
_BURST = 256 * 1024
_EARN_BURST = 1024 * 1024
_TCP_INFO_BYTES_ACKED = 120  # offset of tcpi_bytes_acked (u64) in Linux's struct tcp_info (≥ 4.1)

# Encrypted input the TLS layer may hold while we are not reading before it stops reading the
# socket (uvloop's default is 256 KiB); more than one TLS record.
_READ_HIGH_WATER = 32 * 1024

# HTTP/1.1 requests outstanding (received, not yet answered) at which we stop reading from a
# pipelining client; reading resumes below half of it.
_PIPELINE_PAUSE = 16


class Open(Protocol):
    """What the worker's sweep and drain use of a connection, TCP (``Connection``) or QUIC
    (server/quic_session.py's ``QuicSession``)."""

    core: ServerCore
    handlers: dict[int, StreamHandler]
    served_any: bool
    started: float

    def sweep(self, now: float) -> None: ...

    def stalled(self, away: float) -> None:
        """The worker did not run for ``away`` seconds: not the client's slowness, so its
        timeouts do not count that time."""

    def shutdown(self) -> None: ...

    def close_idle(self) -> None: ...

    def abort(self, why: str) -> None: ...


@dataclass(eq=False)
class WorkerState:
    """What every connection of a worker shares."""

    config: Config
    app: App
    loop: asyncio.AbstractEventLoop
    date: DateHeader = field(default_factory=DateHeader)
    extra_headers: Headers = field(default_factory=list)  # fields every response carries, after date and server
    connections: set[Open] = field(default_factory=set)  # TCP and QUIC
    # Connections accepted and not yet established (server/admission.py: waiting for their
    # ClientHello or in the TLS handshake): the drain must not exit while one of them is about to
    # send a request.
    handshaking: int = 0
    refused: int = 0  # connections turned away over --max-connections since the last report
    peak_load: int = 0  # most connections (with handshakes) since memory was last trimmed
    trimmed_at: float = 0.0
    room: Room = field(default_factory=Room)  # at the open file limit (server/descriptors.py)
    _defaults: Headers = field(default_factory=list, repr=False)  # default_fields(), this second's
    _date_seen: bytes = field(default=b"", repr=False)

    def default_fields(self) -> Headers:
        """Date, server and ``extra_headers``: the fields every response starts with, as one list
        that stays the same object for a second (a response head copies it, never changes it), so
        the cores find each field in their caches by identity."""
        date = self.date.value()
        if date is not self._date_seen or len(self._defaults) != 2 + len(self.extra_headers):
            self._date_seen = date
            self._defaults = [(b"date", date), (b"server", b"pushserve"), *self.extra_headers]
        return self._defaults

    def note_load(self) -> None:
        self.peak_load = max(self.peak_load, len(self.connections) + self.handshaking)

    def report_refused(self) -> None:
        """One log line a second at most, however many connections were turned away."""
        if self.refused:
            log.warning("turned away %d connection%s: %d open, --max-connections %d", self.refused,
                        "s" if self.refused != 1 else "", len(self.connections), self.config.limits.max_connections)
            self.refused = 0


class Connection(EventRouting, asyncio.Protocol):
    worker: WorkerState

    def __init__(self, worker: WorkerState, *, turn_away: bool = False) -> None:
        self.worker = worker
        self.turn_away = turn_away  # accepted on the reserve descriptor: answer 503 / GOAWAY, close
        self.core: ServerCore = H1Core()  # replaced in connection_made once ALPN is known
        self.pipelined = True  # HTTP/1.1: requests queue behind each other (not HTTP/2)
        self.transport: asyncio.Transport | None = None
        self.info = _NO_INFO
        self.handlers: dict[int, StreamHandler] = {}
        self.pushed: set[str] = set()  # paths pushed on this connection: never twice
        self.paused = False
        self.closed = False
        self.flushing = False
        self.flush_again = False
        self.flush_scheduled = False
        self.burst = _SMALL_BURST  # bytes asked of the core per write (see _BURST)
        self.written = 0  # bytes written while the burst is small
        self.next_check = _EARN_BURST  # when to ask the kernel whether the peer has read that much
        self.reading_paused: set[str] = set()
        self.served_any = False
        self.started = self.last_activity = self.last_write = worker.loop.time()
        self.received_at = time.perf_counter()  # when the latest bytes arrived, for the access log

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        # Stop producing as soon as the TLS layer holds bytes it cannot pass on (the transport
        # below it is full), not at uvloop's 512 KiB: a peer that stops reading pins little.
        self.transport.set_write_buffer_limits(high=1, low=0)
        # And stop reading the socket once 32 KiB wait undecrypted while we do not read (a
        # pipeline or an upload ahead of us), not at 256 KiB: more than a TLS record, so a record
        # split across reads never stops it.
        read_limits = getattr(transport, "set_read_buffer_limits", None)  # TLS transports have it
        if read_limits is not None:
            read_limits(high=_READ_HIGH_WATER)
        self.info = info = _connection_info(transport)
        alpn = info.alpn
        worker = self.worker
        limits = worker.config.limits
        if self.turn_away or len(worker.connections) >= limits.max_connections:
            self._turn_away(alpn == "h2")
            return
        if alpn == "h2":
            self.core = H2Core(max_concurrent_streams=limits.max_concurrent_streams)
            self.pipelined = False
        self.core.initiate()
        worker.connections.add(self)
        self.flush()

    def _turn_away(self, h2: bool) -> None:
        """Over --max-connections (or accepted on the reserve descriptor, at the open file
        limit): say so in the protocol's own way and close; nothing was processed, so the client
        may safely retry (elsewhere, or later)."""
        assert self.transport is not None
        if not self.turn_away:  # one past the limit of open files is counted by worker.room
            self.worker.refused += 1
        self.closed = True
        self.transport.write(_GOAWAY_NOTHING_PROCESSED if h2 else _BUSY_503)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.worker.loop.time()
        self.received_at = time.perf_counter()
        core = self.core
        events = core.receive_data(data)
        if events:
            self.handle_events(events)
        self.flush()
        if self.pipelined and core.open_streams >= _PIPELINE_PAUSE:
            self.pause_reading("pipeline")
        if core.pending_input:
            self._more_input_later()

    def _more_input_later(self) -> None:
        """The core processes a bounded slice of input per call: the rest waits for the next loop
        turn, so one connection's flood never holds the loop (and no more is read meanwhile)."""
        if self.core.pending_input and not self.closed and "input" not in self.reading_paused:
            self.pause_reading("input")
            self.worker.loop.call_soon(self._resume_input)

    def _resume_input(self) -> None:
        self.resume_reading("input")
        if self.closed:
            return
        self.handle_events(self.core.resume())
        self.flush()
        self._more_input_later()

    def eof_received(self) -> bool | None:
        self.handle_events(self.core.receive_data(b""))
        self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.worker.connections.discard(self)
        self.worker.room.ended(self)
        for handler in list(self.handlers.values()):
            handler.on_reset()
        self.handlers.clear()

    # -- what a stream may ask of its connection (server/streams.py's StreamHost) -----------------

    def pause_reading(self, reason: str) -> None:
        """Stop reading from the peer until every reason given has been withdrawn (a pipelining
        HTTP/1.1 client far ahead of us; an app not keeping up with an upload)."""
        if not self.reading_paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.reading_paused.add(reason)

    def resume_reading(self, reason: str) -> None:
        self.reading_paused.discard(reason)
        if not self.reading_paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.flush()

    # -- events -----------------------------------------------------------------------------

    def connection_ended(self, ev: ConnectionTerminated) -> None:
        if ev.error_code and ev.reason:
            log.warning("%s %s: %s", self.info.peer, self.protocol_name, ev.reason)

    def stream_failed(self, reason: str) -> None:
        log.warning("%s %s: %s", self.info.peer, self.protocol_name, reason)

    # -- output -----------------------------------------------------------------------------

    @property
    def protocol_name(self) -> str:
        return "h2" if self.core.http_version == "2" else "h1"

    def flush_soon(self) -> None:
        """On HTTP/2, flush once the tasks that are ready now have run: responses that several
        app tasks finish in the same loop turn leave in one write (one TLS record run, one
        syscall).  HTTP/1.1 answers one request at a time, so it flushes at once."""
        if self.core.http_version != "2":
            self.flush()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            self.worker.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self.flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        """Write what the core has while the transport takes it; close when the core is done.
        Events that come out of sending (drained streams, held-back pipelined requests) are
        handled here too; a flush asked for while one runs is folded into it."""
        transport = self.transport
        if transport is None or self.closed:
            return
        if self.flushing:
            self.flush_again = True
            return
        core = self.core
        self.flushing = True
        try:
            while not self.paused and not self.closed:
                self.flush_again = False
                burst = self.burst
                data = core.data_to_send(burst)
                if data:
                    transport.write(data)
                    self.last_write = self.worker.loop.time()
                    if burst != _BURST:
                        self.written += len(data)
                        if self.written >= self.next_check:
                            self._earn_burst()
                events = core.next_events()
                if events:
                    self.handle_events(events)
                    continue
                # A batch short of the limit means the core had no more to give until new input
                # arrives: no need to ask again.
                if self.flush_again or len(data) >= burst:
                    continue
                if "pipeline" in self.reading_paused and core.open_streams < _PIPELINE_PAUSE // 2:
                    self.resume_reading("pipeline")
                if core.closing:
                    self.closed = True
                    transport.close()
                break
        finally:
            self.flushing = False

    def _earn_burst(self) -> None:
        """Large writes once the peer has acknowledged _EARN_BURST bytes (asked of the kernel
        each time that much more was written, so rarely)."""
        self.next_check = self.written + _EARN_BURST
        acked = _EARN_BURST  # no TCP_INFO (not Linux, not TCP): large writes, as before
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError, struct.error):
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES_ACKED + 8)
            acked = struct.unpack_from("=Q", info, _TCP_INFO_BYTES_ACKED)[0]
        if acked >= _EARN_BURST:
            self.burst = _BURST

    # -- timers and shutdown (driven by the worker) ------------------------------------------

    def stalled(self, away: float) -> None:
        self.last_activity += away
        self.last_write += away

    def sweep(self, now: float) -> None:
        """Close connections that broke a time limit: a request head that takes too long (a 408
        on HTTP/1.1 once a head has begun; a connection that sent nothing, such as a browser's
        preconnect, is closed without a word), an idle keep-alive connection, or requests in
        flight with no bytes moving either way (a peer that stopped reading, or holds its
        flow-control window shut, or never finishes a request body) — each of those holds
        memory and open files."""
        limits = self.worker.config.limits
        if self.closed:
            return
        core = self.core
        if core.awaiting_head or not self.served_any:
            if now - self.last_activity > limits.header_timeout:
                if isinstance(core, H1Core) and core.awaiting_head:
                    log.info("%s h1: request head timeout: 408", self.info.peer)
                    core.request_timeout()
                    self.flush()
                else:
                    self.abort("request head timeout")
        elif core.open_streams == 0 and not self.handlers:
            if now - self.last_activity > limits.idle_timeout:
                self.close_idle()
        elif now - max(self.last_activity, self.last_write) > limits.idle_timeout:
            self.abort(f"no progress for {limits.idle_timeout:g} s with requests in flight")

    def shutdown(self) -> None:
        """Graceful, for a worker that stops.  HTTP/2: the two-step GOAWAY (RFC 9113 §6.8), the
        final one after the PING comes back or on the next call, open streams finished.
        HTTP/1.1: the requests received are finished and one more, if it comes, is answered with
        ``Connection: close`` (the worker's drain bounds the wait with ``close_idle``).  The
        transport closes once the core says it is done."""
        if self.closed:
            return
        self.core.close()
        self.flush()

    @property
    def idle(self) -> bool:
        """A keep-alive connection between requests."""
        return (self.served_any and not self.closed and self.core.open_streams == 0 and not self.handlers
                and not self.core.awaiting_head)

    def close_for_room(self) -> None:
        """Close an idle connection now, for a new one (the worker is out of file descriptors).
        Without TLS's goodbye: that would hold the descriptor until the client answers it (or
        for 30 s); a client finds its idle connection closed, as after an idle timeout, and
        opens another."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()

    def close_idle(self) -> None:
        """Close a connection with no request in progress (idle too long, or drained)."""
        if self.closed:
            return
        core = self.core
        if isinstance(core, H1Core):
            core.idle_close()
            self.flush()
        else:
            self.shutdown()

    def abort(self, why: str) -> None:
        if self.closed or self.transport is None:
            return
        log.info("%s %s: closing: %s", self.info.peer, self.protocol_name, why)
        self.closed = True
        self.transport.abort()


_NO_INFO = ConnectionInfo("-", None, None)

# The server preface (an empty SETTINGS frame), then GOAWAY: last stream id 0, NO_ERROR.
_GOAWAY_NOTHING_PROCESSED = bytes.fromhex("000000040000000000" "0000080700000000000000000000000000")
_BUSY_TEXT = b"503 Service Unavailable: the server is at its connection limit; retry shortly\n"
_BUSY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
             b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(_BUSY_TEXT) + _BUSY_TEXT)


def _address(info: object) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def _connection_info(transport: asyncio.BaseTransport) -> ConnectionInfo:
    client = _address(transport.get_extra_info("peername"))
    peer = "-" if client is None else f"[{client[0]}]:{client[1]}" if ":" in client[0] else f"{client[0]}:{client[1]}"
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return ConnectionInfo(peer, client, _address(transport.get_extra_info("sockname")))
    return ConnectionInfo(peer, client, _address(transport.get_extra_info("sockname")),
                          tls_version=ssl_object.version() or "", cipher=(ssl_object.cipher() or ("",))[0],
                          alpn=ssl_object.selected_alpn_protocol() or "")
