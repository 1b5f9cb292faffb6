"""An aioquic HTTP/3 client wired to a real ``H3Core`` in memory: datagrams move between them
by ``pump`` and time moves only when a test says so (``advance``), so the core's timers, limits
and flow control are tested without sockets or sleeps.

``H3Pair`` speaks to the core directly (the core's own tests); the handler tests reach the same
pair through the app (tests/support/memory.py).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from pushserve.protocol import events as ev
from pushserve.protocol.events import Headers
from pushserve.protocol.h3 import ConnectionIds, H3Core
from pushserve.protocol.h3.packets import parse
from tests.support.h3client import ClientH3, H3Reply, Recorder
from tests.support.requests_sent import send_request

CLIENT_ADDR = ("127.0.0.1", 50000)
SERVER_ADDR = ("127.0.0.1", 8443)
SECRET = b"s" * 32


def server_configuration(cert: Path, key: Path, *, window: int = 1 << 20, idle_timeout: float = 60.0,
                         connection_window: int | None = None) -> QuicConfiguration:
    config = QuicConfiguration(is_client=False, alpn_protocols=["h3"], max_stream_data=window,
                               max_data=connection_window or window, idle_timeout=idle_timeout)
    config.load_cert_chain(cert, key)
    return config


class H3Pair(Recorder):
    """One client and one server core.  ``reading=False``: a client that takes datagrams but
    never acknowledges them (nor anything else), so the server's data stays in flight."""

    def __init__(self, config: QuicConfiguration, *, push: bool = False, client_window: int = 1 << 20,
                 on_events: Callable[[list[ev.Event]], None] | None = None, **core_options: int) -> None:
        self.now = 1000.0
        self.config = config
        self.core_options = core_options
        client_config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name="localhost",
                                          verify_mode=ssl.CERT_NONE, max_stream_data=client_window,
                                          max_data=client_window * 4)
        super().__init__()
        self.quic = QuicConnection(configuration=client_config)
        self.client = ClientH3(self.quic, push=push)
        self.core: H3Core | None = None
        self.events: list[ev.Event] = []  # everything the core reported, in order
        self.on_events = on_events
        self.reading = True
        self.server_datagrams = 0
        self.server_bytes = 0
        self.quic.connect(SERVER_ADDR, self.now)
        self.pump()

    # -- moving datagrams and time --------------------------------------------------------------------

    def pump(self, settle: float = 0.5) -> None:
        """Move datagrams both ways until neither side has more to say, letting the clock run on
        to each timer due within ``settle`` seconds of quiet (pacing, delayed ACKs, loss probes).
        A timer further off (an idle timeout) waits for ``advance``."""
        for _ in range(10000):
            if self._move():
                continue
            due = [t for t in self._timers() if t <= self.now + settle]
            if not due:
                return
            self._run_timers(max(self.now, min(due)))
        raise AssertionError("the pair kept talking")

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, running every timer that falls due on either side."""
        end = self.now + seconds
        for _ in range(10000):
            self._move()
            due = [t for t in self._timers() if t <= end]
            if not due:
                self.now = end
                self._move()
                return
            self._run_timers(max(self.now, min(due)))
        raise AssertionError("the pair kept talking")

    def _timers(self) -> list[float]:
        timers = [self.quic.get_timer(), self.core.timer() if self.core is not None else None]
        return [t for t in timers if t is not None]

    def _run_timers(self, now: float) -> None:
        self.now = now
        if (t := self.quic.get_timer()) is not None and t <= now:
            self.quic.handle_timer(now)
            self._client_events()
        if self.core is not None and (t := self.core.timer()) is not None and t <= now:
            self._dispatch(self.core.handle_timer(now))

    def _move(self) -> bool:
        moved = False
        for data, _addr in self.quic.datagrams_to_send(self.now):
            moved = True
            self._to_server(data)
        core = self.core
        if core is not None:
            out = core.datagrams_to_send(self.now)
            self._dispatch(core.next_events())
            for data, addr in out:
                moved = True
                self.server_datagrams += 1
                self.server_bytes += len(data)
                assert addr == CLIENT_ADDR
                if self.reading:
                    self.quic.receive_datagram(data, SERVER_ADDR, self.now)
            self._client_events()
        return moved

    def _to_server(self, data: bytes) -> None:
        if self.core is None:
            incoming = parse(data)
            assert incoming is not None
            self.core = H3Core(self.config, original_destination_connection_id=incoming.dcid,
                               cids=ConnectionIds(SECRET), **self.core_options)
        self._dispatch(self.core.receive_datagram(data, CLIENT_ADDR, self.now))

    def _dispatch(self, events: list[ev.Event]) -> None:
        if not events:
            return
        self.events += events
        if self.on_events is not None:
            self.on_events(events)

    def _client_events(self) -> None:
        while (event := self.quic.next_event()) is not None:
            self.quic_event(event, self.client)

    # -- requests -------------------------------------------------------------------------------------

    def request(self, path: str, method: str = "GET", headers: Headers | None = None, *,
                body: bytes | None = None, end: bool = True) -> int:
        sid = self.quic.get_next_available_stream_id()
        self.replies[sid] = H3Reply(sid)
        send_request(self.client, sid, path, method, headers, body, end)
        self.pump()
        return sid

    def send_body(self, sid: int, data: bytes, *, end: bool = False) -> None:
        self.client.send_data(sid, data, end_stream=end)
        self.pump()

    def cancel(self, sid: int, code: int = 0x10C) -> None:
        """Abandon a request as a client does: STOP_SENDING and RESET_STREAM."""
        self.quic.stop_stream(sid, code)
        self.quic.reset_stream(sid, code)
        self.pump()

    def requests(self) -> list[ev.RequestReceived]:
        return [e for e in self.events if isinstance(e, ev.RequestReceived)]

    def last_request(self) -> ev.RequestReceived:
        return self.requests()[-1]
