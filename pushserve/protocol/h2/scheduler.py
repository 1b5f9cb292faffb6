"""Response bodies into DATA frames: an RFC 9218 scheduler (urgency buckets, round-robin inside
one) that sends as flow control and the caller's ``limit`` allow.

A stream with body (or an END_STREAM) to send waits in the bucket of its urgency.  Each turn the
most urgent stream that can send goes, one frame at a time while others share its bucket, so one
large body does not starve the rest.  Body iterators are pulled only when their stream may send,
and a ``SizedBody`` (a file) is asked for no more than leaves in this write, so a large file is
read as it leaves.  What happens when a stream's response ends (or its body
fails) is the connection's business: it is handed back through ``finish`` and ``fail``."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from pushserve.protocol.events import SizedBody, StreamDrained, StreamReset, close_body
from pushserve.protocol.h2.budget import FloodBudget
from pushserve.protocol.h2.flow import FlowControl
from pushserve.protocol.h2.frames import DATA, END_STREAM, head
from pushserve.protocol.h2.settings import PeerSettings
from pushserve.protocol.h2.streams import Stream

URGENCY_LEVELS = 8
BUFFER = (bytes, bytearray, memoryview)

Output = list[bytes | memoryview]


class Scheduler:
    """The streams waiting to send, and the DATA frames they make."""

    __slots__ = ("_buckets", "_budget", "_fail", "_finish", "_flow", "_peer", "drained", "waiting")

    def __init__(self, flow: FlowControl, peer: PeerSettings, budget: FloodBudget,
                 finish: Callable[[Stream, Output], None], fail: Callable[[Stream, Exception], None]) -> None:
        self._flow = flow
        self._peer = peer
        self._budget = budget
        self._finish = finish  # END_STREAM has been put in the output
        self._fail = fail  # the stream's body raised (a file cut short…): reset it
        self._buckets: list[deque[Stream]] = [deque() for _ in range(URGENCY_LEVELS)]
        self.waiting = 0  # streams in the buckets
        # Found while sending: streams whose send_data queue has left, and bodies that failed.
        self.drained: list[StreamDrained | StreamReset] = []

    def schedule(self, st: Stream) -> None:
        if not st.scheduled and not st.response_done:
            st.scheduled = True
            self._buckets[st.urgency].append(st)
            self.waiting += 1

    def clear(self) -> None:
        for bucket in self._buckets:
            bucket.clear()
        self.waiting = 0
        self.drained.clear()

    def write(self, out: Output, limit: int) -> None:
        """DATA frames into ``out`` until about ``limit`` body bytes are out or no stream can
        send.  No early exit on a closed connection window: an END_STREAM-only frame needs none."""
        sent = 0
        while sent < limit and self.waiting:
            n = self._send_next(out, limit - sent)
            if n < 0:
                break
            sent += n

    def _send_next(self, out: Output, room: int) -> int:
        """DATA from the most urgent stream that can send; round-robin within an urgency (one
        frame a turn, unless the stream is alone in its bucket).  Returns the body bytes sent,
        -1 if no stream could send."""
        buckets = self._buckets
        for level, bucket in enumerate(buckets):
            for _ in range(len(bucket)):
                st = bucket.popleft()
                if st.response_done:
                    st.scheduled = False
                    self.waiting -= 1
                    continue
                if st.urgency != level:  # re-prioritised (PRIORITY_UPDATE) while queued
                    buckets[st.urgency].append(st)
                    continue
                sent = self._send_frames(st, out, room if not bucket else 1)
                if st.response_done or not (st.parts or st.end_pending):
                    st.scheduled = False  # finished, or waiting for send_data
                    self.waiting -= 1
                else:
                    bucket.append(st)  # back of the line: round-robin
                if sent >= 0:
                    return sent
        return -1

    def _send_frames(self, st: Stream, out: Output, room: int) -> int:
        """DATA frames for ``st``, until ``room`` body bytes are out (at least one frame), the
        windows close or the queue runs dry.  Returns the bytes sent, -1 if nothing was."""
        flow = self._flow
        max_frame = self._peer.max_frame
        sid = st.stream_id
        parts = st.parts
        sent = -1
        while True:
            window = min(st.send_window, flow.send)
            while parts and not isinstance(parts[0], BUFFER):
                if window <= 0:
                    return sent  # pull nothing the peer cannot take yet
                source = parts[0]
                try:
                    if isinstance(source, SizedBody):
                        # What leaves in this call and no more (one frame's worth when taking
                        # turns): bytes read ahead would wait in memory for a peer that may
                        # never read (CVE-2019-9517).
                        chunk = source.read(min(window, max(room - max(sent, 0), max_frame)))
                        if not chunk:
                            raise StopIteration
                    else:
                        chunk = next(source)
                except StopIteration:
                    parts.popleft()
                    close_body(source)
                    continue
                except Exception as exc:  # a failing body (a file cut short…) ends only its stream
                    self._fail(st, exc)
                    return max(sent, 0)
                if chunk:
                    parts.appendleft(chunk)
                    st.queued += len(chunk)
            if not parts:
                if not st.end_pending:
                    self._drained(st)
                    return sent
                out.append(head(0, DATA, END_STREAM, sid))
                self._budget.data_frames += 1
                st.end_pending = False
                self._finish(st, out)
                return max(sent, 0)
            if window <= 0:
                return sent
            # Frames from the first part, as many as the windows and ``room`` allow, in one go:
            # the windows and counters are settled once, and the head of a full frame (the same
            # bytes for every one of them) is packed once.
            part = parts[0]
            size = len(part)  # type: ignore[arg-type]
            offset = start = st.offset
            stop = min(size, offset + window)
            ends = stop == size and len(parts) == 1 and st.end_pending  # the body's last bytes
            if offset == 0 and stop == size and size <= max_frame:
                # The usual response: a whole part in one frame, sent as it is (no view made, no
                # full-frame head packed); the loop below would do the same with both.
                last = ends
                out += (head(size, DATA, END_STREAM if last else 0, sid), part)  # type: ignore[arg-type]
                start = size
                frames = 1
                sent = size if sent < 0 else sent + size
            else:
                view = memoryview(part)  # type: ignore[arg-type]
                full = head(max_frame, DATA, 0, sid)
                frames = 0
                while True:
                    end = min(start + max_frame, stop)
                    last = ends and end == stop
                    out += (full if end - start == max_frame and not last
                            else head(end - start, DATA, END_STREAM if last else 0, sid), view[start:end])
                    frames += 1
                    sent = end - start if sent < 0 else sent + end - start
                    start = end
                    if start == stop or sent >= room:
                        break
            n = start - offset
            if start == size:
                parts.popleft()
                st.queued -= size
                st.offset = 0
            else:
                st.offset = start
            st.send_window -= n
            flow.send -= n
            self._budget.data_frames += frames
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
            self.drained.append(StreamDrained(st.stream_id))
