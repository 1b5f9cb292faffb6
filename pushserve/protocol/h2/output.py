"""The sending side of an HTTP/2 connection: response heads, bodies queued per stream and
turned into DATA frames by an RFC 9218 scheduler (urgency buckets, round-robin inside one) as
flow control and the caller's ``limit`` allow, server push, resets, and the two-step GOAWAY."""

from __future__ import annotations

import pushserve.protocol.h2.frames as fr
from pushserve.protocol.events import Body, Headers, SizedBody, StreamDrained, StreamReset, close_body
from pushserve.protocol.h2.fields import encode_fields, encode_status
from pushserve.protocol.h2.frames import DATA, END_HEADERS, END_STREAM, HEADERS, ErrorCode
from pushserve.protocol.h2.state import BUFFER, LAST_STREAM_ID, ConnectionState
from pushserve.protocol.h2.streams import Stream

DRAIN_PING = b"gracegon"  # opaque data of the PING of the two-step GOAWAY
_head = fr.head


class Output(ConnectionState):
    """Sending: everything the layer above calls to answer, and ``data_to_send``."""

    # -- responses ------------------------------------------------------------------------------

    def send_response(self, stream_id: int, status: int, headers: Headers, body: Body | None = None,
                      *, end_stream: bool = True) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.response_done or st.headers_sent:
            if body is not None and not isinstance(body, BUFFER):
                close_body(body)
            return
        if st.method == b"HEAD":
            if body is not None and not isinstance(body, BUFFER):
                close_body(body)
            body = None
            end_stream = True
        empty = body is None or (isinstance(body, BUFFER) and not body)
        try:
            block = encode_fields(encode_status(status), headers)
        except Exception:  # invalid headers from the layer above
            self.reset_stream(stream_id, ErrorCode.INTERNAL_ERROR)
            return
        st.headers_sent = True
        if empty and end_stream:
            self._write_headers(stream_id, block, END_STREAM)
            self._finish(st, self._out)
            return
        if end_stream and type(body) is bytes and not st.pushed and not any(self._buckets):
            # A small whole body that the windows take now (most static files), with no other
            # body waiting that urgency might put first: its DATA frame goes right behind the
            # HEADERS, without a trip through the scheduler.  (Pushed bodies always wait for
            # the scheduler: they must not overtake the page they were pushed for.)
            n = len(body)
            if n <= self._peer_max_frame and n <= st.send_window and n <= self._send_window:
                self._write_headers(stream_id, block, 0)
                self._out += (_head(n, DATA, END_STREAM, stream_id), body)
                st.send_window -= n
                self._send_window -= n
                self._data_frames_sent += 1
                self._finish(st, self._out)
                return
        self._write_headers(stream_id, block, 0)
        if not empty:
            assert body is not None
            self._enqueue(st, body)
        st.end_pending = st.end_pending or end_stream
        self._schedule(st)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.response_done or st.end_pending:
            return
        if data:
            self._enqueue(st, data)
            st.drain_wanted = True
        if end_stream:
            st.end_pending = True
        if st.headers_sent:
            self._schedule(st)

    def send_informational(self, stream_id: int, status: int, headers: Headers) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.response_done or st.headers_sent or not 100 <= status < 200:
            return
        try:
            block = encode_fields(encode_status(status), headers)
        except Exception:
            self.reset_stream(stream_id, ErrorCode.INTERNAL_ERROR)
            return
        self._write_headers(stream_id, block, 0)

    def _write_headers(self, sid: int, block: bytes, flags: int) -> None:
        if self._table_update_due:  # RFC 7541 §4.2: we use no table, so "size 0" always fits
            block = b"\x20" + block
            self._table_update_due = False
        if len(block) <= self._peer_max_frame:
            self._out += (_head(len(block), HEADERS, flags | END_HEADERS, sid), block)
        else:
            self._out += fr.header_block(HEADERS, flags, sid, block, self._peer_max_frame)

    def _enqueue(self, st: Stream, body: Body) -> None:
        st.parts.append(body)
        if isinstance(body, BUFFER):
            st.queued += len(body)

    # -- push -----------------------------------------------------------------------------------

    @property
    def push_enabled(self) -> bool:
        return not self._terminated and not self._draining and self._peer_enable_push

    def push_promise(self, stream_id: int, request_headers: Headers, *, urgency: int = 3) -> int | None:
        if not self.push_enabled or self._pushes >= self._max_pushes:
            return None
        parent = self._streams.get(stream_id)
        if parent is None or parent.pushed or parent.response_done:
            return None
        # Promised streams not finished count against the peer's limit (reserved ones too).
        active = sum(1 for s in self._streams.values() if s.pushed and not s.response_done)
        if active >= self._peer_max_streams or self._next_push_sid > LAST_STREAM_ID:
            return None
        method = b"GET"
        for name, value in request_headers:
            if name == b":method":
                method = bytes(value)
        try:
            block = encode_fields(b"", request_headers)
        except Exception:
            return None
        promised = self._next_push_sid
        self._next_push_sid += 2
        self._last_push_sid = promised
        self._pushes += 1
        if self._table_update_due:
            block = b"\x20" + block
            self._table_update_due = False
        self._out += fr.header_block(fr.PUSH_PROMISE, 0, stream_id, block, self._peer_max_frame,
                                     fr.u32(promised))
        self._streams[promised] = Stream(promised, method, min(max(urgency, 0), 7), self._peer_initial_window, 0,
                                         pushed=True, request_done=True)
        self._unfinished += 1
        return promised

    # -- resets ---------------------------------------------------------------------------------

    def reset_stream(self, stream_id: int, error_code: int = 0x8) -> None:
        st = self._streams.get(stream_id)
        if st is None:
            return
        if not error_code and st.end_pending and not st.request_done:
            # The response is complete but still queued while the request body keeps coming:
            # the RST_STREAM(NO_ERROR) that stops the upload leaves right after the response's
            # last DATA (RFC 9113 §8.1).  Body arriving meanwhile is credited and dropped.
            st.reset_after = 0
            st.auto_ack = st.swallow = True
            if st.unacked:
                n, st.unacked = st.unacked, 0
                self._credit(None, n)
            return
        self._out.append(fr.rst_stream(stream_id, error_code))
        self._drop(st, by_us=True)

    # -- scheduling -----------------------------------------------------------------------------

    def _schedule(self, st: Stream) -> None:
        if not st.scheduled and not st.response_done:
            st.scheduled = True
            self._buckets[st.urgency].append(st)

    def data_to_send(self, limit: int = 256 * 1024) -> bytes:
        out = self._out
        self._out = []
        self._queued_control = 0
        if not self._terminated:
            sent = 0
            # No early exit on a closed connection window: an END_STREAM-only frame needs none.
            while sent < limit:
                n = self._send_next(out, limit - sent)
                if n < 0:
                    break
                sent += n
            if self._out:  # resets and credits queued while sending (reset_after, failing bodies)
                out += self._out
                self._out = []
        if not out:
            return b""
        return b"".join(out)

    def _send_next(self, out: list[bytes | memoryview], room: int) -> int:
        """DATA from the most urgent stream that can send; round-robin within an urgency so one
        large body does not starve the others (one frame a turn, unless the stream is alone
        in its bucket).  Returns the body bytes sent, -1 if no stream could send."""
        for level, bucket in enumerate(self._buckets):
            for _ in range(len(bucket)):
                st = bucket.popleft()
                if st.response_done:
                    st.scheduled = False
                    continue
                if st.urgency != level:  # re-prioritised (PRIORITY_UPDATE) while queued
                    self._buckets[st.urgency].append(st)
                    continue
                sent = self._send_frames(st, out, room if not bucket else 1)
                if st.response_done or not (st.parts or st.end_pending):
                    st.scheduled = False  # finished, or waiting for send_data
                else:
                    bucket.append(st)  # back of the line: round-robin
                if sent >= 0:
                    return sent
        return -1

    def _send_frames(self, st: Stream, out: list[bytes | memoryview], room: int) -> int:
        """DATA frames for ``st``, until ``room`` body bytes are out (at least one frame), the
        windows close or the queue runs dry.  Returns the bytes sent, -1 if nothing was."""
        sid = st.stream_id
        parts = st.parts
        sent = -1
        while True:
            window = min(st.send_window, self._send_window)
            while parts and not isinstance(parts[0], BUFFER):
                if window <= 0:
                    return sent  # pull nothing the peer cannot take yet
                source = parts[0]
                try:
                    if isinstance(source, SizedBody):
                        # What leaves in this call and no more (one frame's worth when taking
                        # turns): bytes read ahead would wait in memory for a peer that may
                        # never read (CVE-2019-9517).
                        chunk = source.read(min(window, max(room - max(sent, 0), self._peer_max_frame)))
                        if not chunk:
                            raise StopIteration
                    else:
                        chunk = next(source)
                except StopIteration:
                    parts.popleft()
                    close_body(source)
                    continue
                except Exception as exc:  # a failing body (a file cut short…) ends only its stream
                    self.reset_stream(sid, ErrorCode.INTERNAL_ERROR)
                    self._pending.append(StreamReset(sid, ErrorCode.INTERNAL_ERROR, f"response cut short: {exc}"))
                    return max(sent, 0)
                if chunk:
                    parts.appendleft(chunk)
                    st.queued += len(chunk)
            if not parts:
                if not st.end_pending:
                    self._drained(st)
                    return sent
                out.append(_head(0, DATA, END_STREAM, sid))
                self._data_frames_sent += 1
                st.end_pending = False
                self._finish(st, out)
                return max(sent, 0)
            if window <= 0:
                return sent
            part = parts[0]
            size = len(part)  # type: ignore[arg-type]
            offset = st.offset
            n = min(size - offset, window, self._peer_max_frame)
            if offset == 0 and n == size:
                piece: bytes | memoryview = part  # type: ignore[assignment]
            else:
                piece = memoryview(part)[offset:offset + n]  # type: ignore[arg-type]
            offset += n
            if offset == size:
                parts.popleft()
                st.queued -= size
                st.offset = 0
            else:
                st.offset = offset
            last = not parts and st.end_pending
            out += (_head(n, DATA, END_STREAM if last else 0, sid), piece)
            st.send_window -= n
            self._send_window -= n
            self._data_frames_sent += 1
            sent = n if sent < 0 else sent + n
            if last:
                st.end_pending = False
                self._finish(st, out)
                return sent
            if not parts:
                self._drained(st)
                return sent
            if sent >= room:
                return sent

    def _drained(self, st: Stream) -> None:
        if st.drain_wanted:
            st.drain_wanted = False
            self._pending.append(StreamDrained(st.stream_id))

    # -- closing --------------------------------------------------------------------------------

    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Graceful close, in two steps (RFC 9113 §6.8): a PING and a GOAWAY naming the largest
        stream id; once the PING comes back (streams the client opened meanwhile are still
        served), or on a second call, the GOAWAY naming the last stream processed.  With an
        error code the final GOAWAY goes at once."""
        if self._terminated or self._goaway_last_id is not None:
            return
        if error_code or self._draining:
            self._final_goaway(error_code, reason)
            return
        self._draining = True
        # The PING goes first: clients built on the h2 library stop answering anything once a
        # GOAWAY is in; sent in one write, the ACK still cannot come back before the client
        # has read the GOAWAY.
        self._out += (fr.ping(DRAIN_PING, ack=False),
                      fr.goaway(LAST_STREAM_ID, 0, reason.encode("utf-8", "replace")[:120]))

    def _final_goaway(self, code: int, reason: str) -> None:
        self._draining = True
        self._goaway_last_id = self._last_client_sid
        self._out.append(fr.goaway(self._last_client_sid, code, reason.encode("utf-8", "replace")[:120]))
