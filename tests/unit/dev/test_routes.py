"""Dev mode's own routes under /_pushserve (dev/mount.py) through in-memory connections, the same
test body on every protocol: the overview, the redirect to it, refusals, and what is left to 404."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.app import build
from pushserve.config import Config
from pushserve.exchange import App
from tests.support.memory import PROTOCOLS, session, write_site


@pytest.fixture
def dev(tmp_path: Path) -> App:
    return build(Config(site=write_site(tmp_path), dev=True, access_log=False))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_overview_lists_the_pages_and_what_they_announce(dev: App, protocol: str) -> None:
    s = session(protocol, dev)
    assert s.get("/").status == 200  # its manifest entry is made when it is first asked for
    reply = s.get("/_pushserve/")
    assert reply.status == 200 and reply.header(b"content-type") == b"text/html; charset=utf-8"
    assert reply.header(b"cache-control") == b"no-store" and reply.header(b"server") == b"pushserve"
    body = bytes(reply.body)
    assert b"<h1>pushserve dev mode</h1>" in body and b"/css/site.css" in body and b"/js/dep.js" in body


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("method", "path", "status", "location"), [
    ("GET", "/_pushserve", 301, b"/_pushserve/"),
    ("POST", "/_pushserve/", 405, None),
    ("GET", "/_pushserve/nothing-here", 404, None),
    ("HEAD", "/_pushserve/", 200, None),
])
def test_other_requests_under_the_prefix(dev: App, protocol: str, method: str, path: str, status: int,
                                         location: bytes | None) -> None:
    s = session(protocol, dev)
    reply = s.replies[s.request(path, method, body=b"x" if method == "POST" else None)]
    assert reply.done and reply.status == status and reply.header(b"location") == location
    if method == "HEAD":
        assert reply.body == b"" and reply.header(b"content-length") not in (None, b"0")
    assert s.server.handlers == {}
