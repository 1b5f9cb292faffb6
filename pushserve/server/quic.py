"""The UDP side of a worker: HTTP/3 over QUIC on the same port number as the TLS listener.

Sockets.  The master binds one UDP socket per worker slot in the port's ``SO_REUSEPORT`` group,
as it does for TCP, and the slot's worker reads it: the kernel hashes each client address and
port to one slot.  Each QUIC connection then gets a socket of its own, bound to the same local
address and port and ``connect()``-ed to the client: the kernel hands a connected socket the
datagrams of its 4-tuple before any hashing, so a connection's packets reach the process that
holds it whatever happens to the group.  That is the steering a rolling restart needs: a
draining worker stops reading its slot socket (new connections go to its successor, which
reads the same socket) and keeps its connections' sockets until their last stream is done.  A
datagram read on a connected socket that belongs to another connection (it raced the
``connect``) is routed like any other, by destination connection ID.

So a short-header packet (an established connection's) that arrives on a slot socket for a
connection ID nobody here knows belonged to a worker that is gone: one that crashed, whose
connected sockets died with it, so the client's packets fell back to the group's hashing.  It is
answered with a Stateless Reset (RFC 9000 §10.3), whose token every worker can compute
(packets.ConnectionIds), and the client learns at once that the connection is gone instead of
retransmitting into silence until its idle timeout.  (A client that changed its address, NAT
rebinding or migration, also arrives on a slot socket: in its own worker it is found by its ID
and carries on; in another it is reset, where without the reset it would only time out.)

On Linux 6.13 and later the kernel finds a connected UDP socket by a hash of its 4-tuple; before
that, by walking the sockets bound to the port, which costs per datagram in proportion to the
connections open on the port.

Floods of Initials.  While fewer than half of ``--max-handshakes`` connections are in their
handshake, an Initial opens a connection at once.  Past that, an Initial without a token gets a
Retry (RFC 9000 §8.1.2): a forged source address never gets state or a certificate flight, and
a real client repeats its Initial with the token (one round trip).  Past ``--max-handshakes``,
or ``--max-connections``, even validated clients are refused (an Initial CONNECTION_CLOSE with
CONNECTION_REFUSED; a browser then uses TCP).  Until a client's address is validated aioquic
sends at most three times what it received (RFC 9000 §8.1).

Timers.  Every connection says when QUIC next needs it (``H3Core.timer``); the listener keeps
those times in one heap and one loop timer for the earliest, so a datagram costs no timer handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import logging
import socket
import struct
from typing import TYPE_CHECKING

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicErrorCode, QuicPacketType

from pushserve.config import Config
from pushserve.protocol.h3 import ConnectionIds, H3Core, RetryTokens
from pushserve.protocol.h3.packets import (
    MIN_INITIAL_SIZE,
    SUPPORTED_VERSIONS,
    Incoming,
    parse,
    refuse,
    version_negotiation,
)
from pushserve.server.quic_session import QuicSession
from pushserve.server.sockets import IP_PKTINFO, wildcard

if TYPE_CHECKING:
    from pushserve.server.connection import WorkerState
    from pushserve.tls import Snapshot

log = logging.getLogger("pushserve")

_TICK = 0.001  # the event loop's clock granularity (uvloop's)
_READ_BATCH = 64  # datagrams read per wake-up of a socket
_MAX_DATAGRAM = 65536
_IN_PKTINFO = struct.Struct("i4s4s")  # ifindex, spec_dst, addr
_MAX_FIELD_SECTION = 65536
# The largest datagram we send (UDP payload).  QUIC needs 1200 on every path; aioquic does no
# path MTU discovery, so this stays where Chromium's and quiche's defaults are: it fits any path
# with a 1400-byte MTU (1350 + 8 UDP + 40 IPv6 header), and carries 12 % more than 1200 per packet.
DATAGRAM_SIZE = 1350


def configuration(config: Config, certs: Snapshot) -> QuicConfiguration:
    """The worker's QUIC settings, with the certificate pair as checked (tls.Snapshot)."""
    limits = config.limits
    quic = QuicConfiguration(is_client=False, alpn_protocols=["h3"], idle_timeout=limits.idle_timeout,
                             max_stream_data=1 << 20, max_data=1 << 20, max_datagram_size=DATAGRAM_SIZE,
                             supported_versions=list(SUPPORTED_VERSIONS))
    key = f"/proc/self/fd/{certs.key_fd}" if certs.key_fd is not None else None
    quic.load_cert_chain(f"/proc/self/fd/{certs.cert_fd}", key)
    return quic


class QuicListener:
    """Built by server/quic_start.py's ``QuicEndpoint`` when the first datagram arrives."""

    def __init__(self, state: WorkerState, sock: socket.socket, configuration: QuicConfiguration,
                 secret: bytes) -> None:
        """``sock``: the slot's UDP socket; ``secret``: the master's, so retry and reset tokens
        work in every worker."""
        self.state = state
        self.loop = state.loop
        self.sock = sock
        self.configuration = configuration
        self.cids = ConnectionIds(secret)
        self.tokens = RetryTokens(secret)
        self.local = sock.getsockname()
        self.family = sock.family
        self.wildcard = wildcard(sock)  # then QuicEndpoint has asked the kernel for destinations
        self.routes: dict[bytes, QuicSession] = {}
        self.sessions: set[QuicSession] = set()
        self.dirty: dict[QuicSession, None] = {}  # sessions to transmit for after a read batch
        self.timers: list[tuple[float, int, QuicSession]] = []
        self.timer_seq = 0
        self.timer_handle: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.reading = False
        self.retried = 0  # Retry packets sent since the last report
        self.refused = 0

    # -- reading ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self.read, self.sock)
        self.reading = True

    def stop_accepting(self) -> None:
        """Draining: new connections are the next worker's (it reads the same slot socket); ours
        keep their own sockets."""
        if self.reading:
            self.loop.remove_reader(self.sock.fileno())
            self.reading = False

    def read(self, sock: socket.socket) -> None:
        """Read what waits on ``sock`` (the slot's socket or a connection's), route each datagram,
        then answer each connection that got some once, for the whole batch."""
        now = self.loop.time()
        pktinfo = self.wildcard and sock is self.sock
        for _ in range(_READ_BATCH):
            try:
                if pktinfo:
                    data, ancillary, _, addr = sock.recvmsg(_MAX_DATAGRAM, 64)
                    local = _destination(ancillary, self.local)
                else:
                    data, addr = sock.recvfrom(_MAX_DATAGRAM)
                    local = self.local
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # ICMP errors surface on connected sockets: the peer is gone
                session = self._owner(sock)
                if session is not None and e.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    session.abort(f"the client's address is unreachable ({e.strerror})")
                break
            self.datagram(data, addr, local, now)
        self.transmit_dirty()

    def _owner(self, sock: socket.socket) -> QuicSession | None:
        return next((s for s in self.sessions if s.sock is sock), None)

    def datagram(self, data: bytes, addr: tuple[str, int], local: tuple[str, int], now: float) -> None:
        incoming = parse(data)
        if incoming is None:
            return
        session = self.routes.get(incoming.dcid)
        if session is not None:
            session.receive(data, addr, now)
            self.dirty[session] = None
            return
        if not incoming.long:
            reset = self.cids.stateless_reset(incoming.dcid, len(data))
            if reset is not None:
                self.send(reset, addr)
            return
        if incoming.packet_type != QuicPacketType.INITIAL or len(data) < MIN_INITIAL_SIZE:
            return  # the rest of a handshake we do not hold; a datagram too small to answer
        if incoming.version not in SUPPORTED_VERSIONS:
            self.send(version_negotiation(incoming), addr)
            return
        self.accept(incoming, data, addr, local, now)

    def accept(self, incoming: Incoming, data: bytes, addr: tuple[str, int], local: tuple[str, int],
               now: float) -> None:
        state = self.state
        limits = state.config.limits
        handshaking = sum(1 for s in self.sessions if s.h3.handshake_pending)
        original, retry_scid = incoming.dcid, None
        if incoming.token:
            checked = self.tokens.check(incoming, addr, now)
            if checked is None:
                self.send(refuse(incoming, QuicErrorCode.INVALID_TOKEN), addr)
                return
            original, retry_scid = checked, incoming.dcid
        elif handshaking >= max(1, limits.max_handshakes // 2):
            self.retried += 1
            self.send(self.tokens.retry(incoming, addr, now), addr)
            return
        # Connections in their closing period (a CONNECTION_CLOSE sent or received: a few probe
        # timeouts at most) hold no more than a timer: a client that closes and comes back at
        # once is not turned away for its own old connection.
        closing = sum(1 for s in self.sessions if s.h3.closing)
        if len(state.connections) - closing >= limits.max_connections or handshaking >= limits.max_handshakes:
            state.refused += 1
            self.send(refuse(incoming), addr)
            return
        core = H3Core(self.configuration, original_destination_connection_id=original,
                      retry_source_connection_id=retry_scid, cids=self.cids,
                      max_concurrent_streams=limits.max_concurrent_streams, max_field_section_size=_MAX_FIELD_SECTION)
        session = QuicSession(self, core, addr, local, self._connected_socket(local, addr))
        self.sessions.add(session)
        state.connections.add(session)
        state.note_load()
        self.routes[incoming.dcid] = session
        session.route_ids()
        session.receive(data, addr, now)
        self.dirty[session] = None

    def _connected_socket(self, local: tuple[str, int], peer: tuple[str, int]) -> socket.socket | None:
        """A socket of the connection's own, bound where the client sent to and connected to
        the client (module docstring); None if the kernel refuses one (the slot socket serves)."""
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if self.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setblocking(False)
            sock.bind((local[0], self.local[1]))
            sock.connect(peer)
        except OSError as e:
            sock.close()
            log.debug("no connected socket for %s: %s", peer, e)
            return None
        self.loop.add_reader(sock.fileno(), self.read, sock)
        return sock

    # -- writing ------------------------------------------------------------------------------------

    def now(self) -> float:
        return self.loop.time()

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):  # a lost datagram: QUIC copes
            self.sock.sendto(data, addr)

    def transmit_dirty(self) -> None:
        while self.dirty:
            session = next(iter(self.dirty))
            del self.dirty[session]
            session.transmit()

    # -- timers -------------------------------------------------------------------------------------

    def schedule(self, session: QuicSession, when: float | None) -> None:
        """Remember when ``session`` next needs ``on_timer`` (None: not until it hears something).
        An entry whose time the session no longer has is skipped when it comes up."""
        if when == session.timer_at:
            return  # already in the heap (most calls: a connection's timer moves far less often)
        session.timer_at = when
        if when is None:
            return
        self.timer_seq += 1
        heapq.heappush(self.timers, (when, self.timer_seq, session))
        if self.timer_handle is None or when < self.timer_at:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self.timer_handle is not None:
            self.timer_handle.cancel()
        self.timer_at = when
        # Never less than a tick ahead: uvloop's clock and timers count whole milliseconds, and
        # it runs a timer due in under half of one at once without moving its clock on, so a
        # pacing timer a few microseconds off would spin the loop until the next millisecond.
        self.timer_handle = self.loop.call_at(max(when, self.loop.time() + _TICK), self._fire)

    def _fire(self) -> None:
        self.timer_handle = None
        now = self.loop.time()
        timers = self.timers
        while timers and timers[0][0] <= now:
            when, _, session = heapq.heappop(timers)
            if session.timer_at == when and not session.closed:  # else superseded or gone
                session.timer_at = None
                session.on_timer(now)
        while timers and (timers[0][2].timer_at != timers[0][0] or timers[0][2].closed):
            heapq.heappop(timers)
        if timers:
            self._arm(timers[0][0])

    # -- bookkeeping --------------------------------------------------------------------------------

    def forget(self, session: QuicSession) -> None:
        """A connection is over: its routes, socket and place go."""
        self.sessions.discard(session)
        self.state.connections.discard(session)
        self.dirty.pop(session, None)
        for cid in session.route_list:
            if self.routes.get(cid) is session:
                del self.routes[cid]
        if session.sock is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(session.sock.fileno())
            session.sock.close()

    def report(self) -> None:
        """One log line a second at most about Initials answered with a Retry."""
        if self.retried:
            log.info("h3: %d Initial%s answered with a Retry (%d connections in their handshake)", self.retried,
                     "s" if self.retried != 1 else "", sum(1 for s in self.sessions if s.h3.handshake_pending))
            self.retried = 0

    def close(self) -> None:
        self.stop_accepting()
        for session in list(self.sessions):
            session.abort("the worker stops")
        if self.timer_handle is not None:
            self.timer_handle.cancel()


def _destination(ancillary: list[tuple[int, int, bytes]], default: tuple[str, int]) -> tuple[str, int]:
    """The local address a datagram was sent to, from its IP_PKTINFO / IPV6_PKTINFO."""
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= _IN_PKTINFO.size:
            return socket.inet_ntop(socket.AF_INET, _IN_PKTINFO.unpack_from(data)[2]), default[1]
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 16:
            return socket.inet_ntop(socket.AF_INET6, data[:16]), default[1]
    return default


