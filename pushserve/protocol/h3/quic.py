"""aioquic's QUIC connection with pushserve's server policies.

Three things aioquic decides differently from what a server of untrusted clients wants, each
changed here by overriding one of its (private) methods; the version bound on aioquic in
pyproject.toml exists for them, and tests/unit/protocol/test_h3_core.py (test_h3_timing.py for
the pacing) covers each:

* **Flow control at the consumer's pace.**  aioquic doubles a stream's (and the connection's)
  receive window whenever the peer has used half of it, whatever the application did with the
  data, so an upload nobody reads is buffered without bound.  Here a window reopens only as the
  layer above acknowledges request body it consumed (``unread``), as the HTTP/2 core does: the
  peer may have ``window`` bytes of body in flight that nobody has read, no more.  Credit goes
  out once a quarter of the window has collected, not in every packet.
* **Concurrent streams.**  aioquic lets a peer open 128 request streams and 128 unidirectional
  ones; here the request streams are the configured limit and the unidirectional ones 8 (HTTP/3
  needs 3: control, QPACK encoder and decoder).
* **Connection IDs** get their Stateless Reset token from ``packets.ConnectionIds`` (an HMAC
  any worker can compute) instead of random bytes.
* **Pacing in lumps.**  aioquic's pacer lets at most 16 datagrams leave at once, then waits for a
  timer: on a fast path (loopback, a LAN) that is a loop wake-up, and a ``datagrams_to_send``
  call, every few datagrams.  Here a burst may also hold a millisecond of data at the pacing
  rate or 64 KiB, whichever is more (never more than a quarter of the congestion window), as
  Linux's TCP sizes its TSO bursts (at most 64 KiB, one GSO send here).
"""

from __future__ import annotations

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import (
    CONNECTION_LIMIT_FRAME_CAPACITY,
    MAX_STREAM_DATA_FRAME_CAPACITY,
    QuicConnection,
    QuicConnectionId,
)
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.recovery import QuicPacketPacer, QuicPacketSpace
from aioquic.quic.stream import QuicStream

from pushserve.protocol.h3.packets import ConnectionIds

UNI_STREAMS = 8
_LUMP = 0.001  # seconds of data a pacing burst may hold ...
_LUMP_BYTES = 64 * 1024  # ... or this much, whichever is more (never over a quarter of the window)


class LumpyPacer(QuicPacketPacer):
    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        super().update_rate(congestion_window, smoothed_rtt)
        if self.packet_time is not None:
            rate = self._max_datagram_size / self.packet_time  # bytes per second
            lump = min(max(_LUMP * rate, _LUMP_BYTES), congestion_window / 4)
            self.bucket_max = max(self.bucket_max, lump / rate)


class ServerQuic(QuicConnection):
    def __init__(self, *, configuration: QuicConfiguration, original_destination_connection_id: bytes,
                 retry_source_connection_id: bytes | None, cids: ConnectionIds, max_streams: int) -> None:
        super().__init__(configuration=configuration,
                         original_destination_connection_id=original_destination_connection_id,
                         retry_source_connection_id=retry_source_connection_id)
        self._cids = cids
        first = self._host_cids[0]
        first.cid = cids.new()
        first.stateless_reset_token = cids.reset_token(first.cid)
        self.host_cid = self._local_initial_source_connection_id = first.cid
        for limit, value in ((self._local_max_streams_bidi, max_streams), (self._local_max_streams_uni, UNI_STREAMS)):
            limit.value = limit.sent = value
        self._loss._pacer = LumpyPacer(max_datagram_size=self._max_datagram_size)
        self._window = configuration.max_stream_data
        self._connection_window = configuration.max_data
        # Request body handed to the layer above and not yet acknowledged, per stream and in all.
        self.unread: dict[int, int] = {}
        self.unread_total = 0

    # -- the layer above's side of flow control -----------------------------------------------------

    def body_received(self, stream_id: int, size: int) -> None:
        self.unread[stream_id] = self.unread.get(stream_id, 0) + size
        self.unread_total += size

    def body_consumed(self, stream_id: int, size: int) -> None:
        held = self.unread.get(stream_id, 0)
        size = min(size, held)
        if size:
            self.unread[stream_id] = held - size
            self.unread_total -= size

    def forget_body(self, stream_id: int) -> None:
        """The stream is gone: what it held unread no longer holds the connection's window."""
        self.unread_total -= self.unread.pop(stream_id, 0)

    def window_open(self) -> bool:
        """Whether the congestion window takes another full datagram now."""
        loss = self._loss
        return bool(loss.congestion_window - loss.bytes_in_flight >= self._max_datagram_size)

    # -- aioquic's hooks ------------------------------------------------------------------------------

    def _replenish_connection_ids(self) -> None:
        while len(self._host_cids) < min(8, self._remote_active_connection_id_limit):
            cid = self._cids.new()
            self._host_cids.append(QuicConnectionId(cid=cid, sequence_number=self._host_cid_seq,
                                                    stateless_reset_token=self._cids.reset_token(cid)))
            self._host_cid_seq += 1

    def _write_stream_limits(self, builder: QuicPacketBuilder, space: QuicPacketSpace, stream: QuicStream) -> None:
        limit = stream.max_stream_data_local
        sid = stream.stream_id
        if not limit or sid is None or stream.receiver.is_finished:  # ours, or its request has ended
            return
        target = stream.receiver.highest_offset - self.unread.get(sid, 0) + self._window
        if target - limit >= self._window >> 2:
            stream.max_stream_data_local = target
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            buf = builder.start_frame(QuicFrameType.MAX_STREAM_DATA, capacity=MAX_STREAM_DATA_FRAME_CAPACITY,
                                      handler=self._on_max_stream_data_delivery, handler_args=(stream,))
            buf.push_uint_var(sid)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local

    def _write_connection_limits(self, builder: QuicPacketBuilder, space: QuicPacketSpace) -> None:
        data = self._local_max_data
        target = data.used - self.unread_total + self._connection_window
        if target - data.value >= self._connection_window >> 2:
            data.value = target
        for limit in (data, self._local_max_streams_bidi, self._local_max_streams_uni):
            if limit.value == limit.sent:
                continue
            # New streams are granted in batches: once fewer are left to open than a grant adds.
            if limit is not data and limit.sent - limit.used >= limit.value - limit.sent:
                continue
            buf = builder.start_frame(limit.frame_type, capacity=CONNECTION_LIMIT_FRAME_CAPACITY,
                                      handler=self._on_connection_limit_delivery, handler_args=(limit,))
            buf.push_uint_var(limit.value)
            limit.sent = limit.value
