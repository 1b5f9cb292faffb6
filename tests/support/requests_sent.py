"""How an in-memory client session sends a request, over h2's client or aioquic's HTTP/3 client
alike (both take ``send_headers`` and ``send_data`` per stream): one rule for the head a test
asks for, so the sessions of tests/support/memory.py and h3memory.py cannot drift apart."""

from __future__ import annotations

from typing import Any

from pushserve.protocol.events import Headers

AUTHORITY = b"example.test"


def send_request(client: Any, sid: int, path: str, method: str, headers: Headers | None,
                 body: bytes | None, end: bool) -> None:
    """The pseudo-header fields, then the test's own; a body, if given, in one DATA frame;
    ``end=False`` leaves the stream open for more body."""
    head = [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", AUTHORITY),
            (b":path", path.encode()), *(headers or [])]
    client.send_headers(sid, head, end_stream=end and body is None)
    if body is not None:
        client.send_data(sid, body, end_stream=end)
