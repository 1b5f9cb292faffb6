"""The rules both cores apply to what the layer above hands them (protocol/outgoing.py)."""

from __future__ import annotations

import pytest

from pushserve.protocol.events import LocalProtocolError
from pushserve.protocol.outgoing import check_field, check_request_pseudo, check_status


@pytest.mark.parametrize(("name", "value"), [
    (b"content-type", b"text/html; charset=utf-8"), (b"x-a.b_c~d", b""), (b"etag", b'"1-2"'),
    (b"link", b"</a.css>; rel=preload"), (b"x-latin1", b"caf\xe9"), (b"x-tab", b"a\tb"),
])
def test_fields_every_protocol_takes(name: bytes, value: bytes) -> None:
    check_field(name, value)


@pytest.mark.parametrize(("name", "value"), [
    (b"Content-Type", b"x"), (b"", b"x"), (b"x y", b"x"), (b":status", b"200"), (b"x\xe9", b"x"),
    (b"x", b"a\r\nset-cookie: b"), (b"x", b"a\nb"), (b"x", b"a\0b"), (b"x", b" lead"), (b"x", b"trail\t"),
    ("str", b"x"), (b"x", 1),
])
def test_fields_no_response_may_carry(name: object, value: object) -> None:
    with pytest.raises(LocalProtocolError):
        check_field(name, value)  # type: ignore[arg-type]


def test_status_codes() -> None:
    for status in (200, 204, 404, 599):
        check_status(status)
    for status in (100, 103, 199):
        check_status(status, informational=True)
    for bad in (199, 600, 99, True, "200", 200.0):
        with pytest.raises(LocalProtocolError):
            check_status(bad)  # type: ignore[arg-type]
    for bad in (101, 200, 99):
        with pytest.raises(LocalProtocolError):
            check_status(bad, informational=True)


def test_push_request_pseudo_fields() -> None:
    check_request_pseudo(b":path", b"/a.css")
    for name, value in [(b":status", b"200"), (b":path", b""), (b":path", b"/a\r\nb"), (b":protocol", b"x")]:
        with pytest.raises(LocalProtocolError):
            check_request_pseudo(name, value)
