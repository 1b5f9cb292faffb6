"""The live-reload event hub (dev/sse.py) behind dev mode's /_pushserve/events route, driven
through in-memory connections around the real cores, the same test body on every protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.app import build
from pushserve.config import Config
from pushserve.dev.mount import DevServer
from pushserve.dev.sse import MAX_BUFFERED, Hub, format_event
from pushserve.site.router import Router
from tests.support.h2client import Reply
from tests.support.memory import PROTOCOLS, Session, session, write_site

EVENTS = "/_pushserve/events"


@pytest.fixture
def dev(tmp_path: Path) -> Router:
    app = build(Config(site=write_site(tmp_path), dev=True, access_log=False))
    assert isinstance(app, Router)
    return app


def hub_of(app: Router) -> Hub:
    (dev,) = [m for m in app.mounts if isinstance(m, DevServer)]
    return dev.hub


def subscribe(s: Session) -> Reply:
    reply = s.replies[s.request(EVENTS)]
    assert reply.status == 200 and not reply.done
    return reply


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_subscriber_gets_hello_and_the_current_state(dev: Router, protocol: str) -> None:
    hub = hub_of(dev)
    s = session(protocol, dev)
    reply = subscribe(s)
    assert reply.header(b"content-type") == b"text/event-stream; charset=utf-8"
    assert reply.header(b"cache-control") == b"no-store"
    assert bytes(reply.body) == (b"retry: 300\n\n" + format_event("hello", {"id": hub.instance})
                                 + format_event("clear", {}))
    assert len(hub.streams) == 1 and reply.stream_id in s.server.handlers


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_published_events_reach_every_subscriber(dev: Router, protocol: str) -> None:
    hub = hub_of(dev)
    sessions = [session(protocol, dev), session(protocol, dev)]
    replies = [subscribe(s) for s in sessions]
    before = [len(r.body) for r in replies]
    hub.publish("change", {"kind": "css", "paths": ["/css/site.css"]})
    for s in sessions:
        s.pump()
    for reply, start in zip(replies, before, strict=True):
        assert bytes(reply.body[start:]) == b'event: change\ndata: {"kind":"css","paths":["/css/site.css"]}\n\n'
        assert not reply.done


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_new_subscriber_is_told_the_current_problems(dev: Router, protocol: str) -> None:
    hub = hub_of(dev)
    error = {"title": "Template error", "problems": [{"file": "index.html", "line": 3}]}
    hub.publish("error", error)
    hub.publish("change", {"kind": "reload", "paths": ["/"]})  # not state: never replayed
    late = subscribe(session(protocol, dev))
    assert bytes(late.body).endswith(format_event("hello", {"id": hub.instance}) + format_event("error", error))
    hub.publish("clear", {})
    later = subscribe(session(protocol, dev))
    assert bytes(later.body).endswith(format_event("clear", {}))
    assert b"event: error" not in later.body


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_that_stops_reading_is_dropped(dev: Router, protocol: str) -> None:
    hub = hub_of(dev)
    slow, fast = session(protocol, dev), session(protocol, dev)
    slow_reply, fast_reply = subscribe(slow), subscribe(fast)
    slow.reading = False  # from now on
    start, slow_start = len(fast_reply.body), len(slow_reply.body)
    event = format_event("change", {"kind": "css", "paths": ["/x" * 4000]})
    # What the slow client has room for fills (its window, or the socket's buffer), then
    # MAX_BUFFERED more waits in the core.
    count = (65535 + MAX_BUFFERED) // len(event) + 4
    for _ in range(count):
        hub.publish("change", {"kind": "css", "paths": ["/x" * 4000]})
        slow.pump()
        fast.pump()
    assert slow_reply.stream_id not in slow.server.handlers
    in_socket = len(slow.server.output)  # written before the drop, not yet read
    slow.reading = True  # reading again, it finds its stream broken off after what it had room for
    slow.pump()
    assert slow_reply.reset is not None
    assert len(slow_reply.body) - slow_start <= 65535 + in_socket  # its window, or its socket: never more
    (subscriber,) = hub.streams  # the reader stays subscribed
    assert subscriber.stream.request.stream_id == fast_reply.stream_id and not subscriber.stream.closed
    assert bytes(fast_reply.body[start:]) == event * count and not fast_reply.done


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reset_stream_and_lost_connection_unsubscribe(dev: Router, protocol: str) -> None:
    hub = hub_of(dev)
    resetting, vanishing = session(protocol, dev), session(protocol, dev)
    sid = subscribe(resetting).stream_id
    subscribe(vanishing)
    assert len(hub.streams) == 2
    resetting.reset(sid)
    assert len(hub.streams) == 1 and resetting.server.handlers == {}
    vanishing.server.lose()
    assert hub.streams == set()
    hub.publish("change", {"kind": "reload", "paths": ["/"]})  # nobody left: nothing to send to
    assert vanishing.server.output == b""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_drain_ends_every_stream_and_later_subscribers_at_once(dev: Router, protocol: str) -> None:
    hub = hub_of(dev)
    sessions = [session(protocol, dev), session(protocol, dev)]
    replies = [subscribe(s) for s in sessions]
    dev.drain()
    for s, reply in zip(sessions, replies, strict=True):
        s.pump()
        assert reply.done and reply.reset is None and s.server.handlers == {}
    assert hub.streams == set()
    s = session(protocol, dev)
    after = s.get(EVENTS)  # told when to come back, and the stream ends
    assert after.status == 200 and after.done and bytes(after.body) == b"retry: 300\n\n"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_head_and_other_methods_do_not_subscribe(dev: Router, protocol: str) -> None:
    hub = hub_of(dev)
    s = session(protocol, dev)
    head = s.replies[s.request(EVENTS, "HEAD")]
    assert head.done and head.status == 200 and head.body == b""
    post = s.replies[s.request(EVENTS, "POST", body=b"x")]
    assert post.status == 405 and post.header(b"allow") == b"GET, HEAD"
    assert hub.streams == set() and s.server.handlers == {}
