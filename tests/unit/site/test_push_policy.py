"""The push policy decides, per page response and connection, what to push, hint or skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.protocol.events import RequestReceived
from pushserve.site.manifest import PushResource
from pushserve.site.push import PushPolicy, Visit, link_value, read_cookie_digests
from pushserve.site.static import StaticSite

RESOURCES = [PushResource("/a.css", "style"), PushResource("/f.woff2", "font", crossorigin=True),
             PushResource("/m.js", "script", crossorigin=True), PushResource("/gone.js", "script")]


@pytest.fixture
def static(tmp_path: Path) -> StaticSite:
    (tmp_path / "a.css").write_bytes(b"a" * 100)
    (tmp_path / "f.woff2").write_bytes(b"f" * 300)
    (tmp_path / "m.js").write_bytes(b"m" * 200)
    return StaticSite(tmp_path, revalidate_after=0)


def request(method: bytes = b"GET", cookie: bytes | None = None) -> RequestReceived:
    headers = [(b"cookie", cookie)] if cookie else []
    return RequestReceived(1, method, b"/", b"localhost", headers, "2", True)


def policy(static: StaticSite, mode: str = "auto", budget: int = 10_000) -> PushPolicy:
    return PushPolicy(mode, None, static, budget=budget, use_cookie=True)  # type: ignore[arg-type]


def test_push_when_allowed_styles_and_fonts_first(static: StaticSite) -> None:
    plan = policy(static).plan(Visit(request(), can_push=True), RESOURCES)
    assert [p.path for p in plan.pushes] == ["/a.css", "/f.woff2", "/m.js"]
    assert [p.urgency for p in plan.pushes] == sorted(p.urgency for p in plan.pushes)
    assert plan.pushes[0].urgency > 3  # after the page's own DATA (requested streams are 3)
    assert not plan.early_hints and plan.link_headers == [] and plan.skipped["missing"] == 1


def test_hints_when_push_disabled_or_mode_hints(static: StaticSite) -> None:
    for mode, push_enabled in (("auto", False), ("hints", True)):
        plan = policy(static, mode).plan(Visit(request(), can_push=push_enabled), RESOURCES)
        assert plan.pushes == [] and plan.early_hints
        assert [v for _, v in plan.link_headers] == [link_value(r) for r in RESOURCES[:3]]
    assert link_value(RESOURCES[1]) == b"</f.woff2>; rel=preload; as=font; crossorigin"


def test_off_announces_nothing(static: StaticSite) -> None:
    plan = policy(static, "off").plan(Visit(request(), can_push=True), RESOURCES)
    assert plan.pushes == [] and plan.link_headers == [] and plan.cookie([]) is None


def test_budget_and_already_pushed(static: StaticSite) -> None:
    plan = policy(static, budget=350).plan(Visit(request(), can_push=True, pushed={"/a.css"}), RESOURCES)
    assert [p.path for p in plan.pushes] == ["/f.woff2"]  # 300 bytes fit; m.js (200) would not
    assert plan.skipped["already-sent"] == 1 and plan.skipped["over-budget"] == 1
    assert [v for _, v in plan.link_headers] == [link_value(RESOURCES[2])]  # on the 200, no 103
    assert not plan.early_hints


def test_cookie_remembers_what_was_sent_and_skips_it_next_time(static: StaticSite) -> None:
    p = policy(static)
    first = p.plan(Visit(request(), can_push=True), RESOURCES)
    cookie = first.cookie(first.pushes[:2])  # the client took only two pushes
    assert cookie is not None and cookie.startswith(b"pushserve-cache=")
    first.not_pushed(first.pushes[2])
    cookie = first.cookie(first.pushes[:2])  # ...and m.js went out as a Link header instead
    assert cookie is not None
    value = cookie.split(b";")[0]
    assert len(read_cookie_digests([(b"cookie", value)])) == 3
    again = p.plan(Visit(request(cookie=value), can_push=True), RESOURCES)
    assert again.pushes == [] and again.link_headers == [] and again.skipped["cached"] == 3


def test_a_changed_file_is_announced_again(static: StaticSite, tmp_path: Path) -> None:
    p = policy(static)
    first = p.plan(Visit(request()), RESOURCES)
    cookie = first.cookie([])
    assert cookie is not None
    (tmp_path / "a.css").write_bytes(b"b" * 101)  # new ETag
    again = p.plan(Visit(request(cookie=cookie.split(b";")[0])), RESOURCES)
    assert [v for _, v in again.link_headers] == [link_value(RESOURCES[0])]


def test_head_gets_hints_but_teaches_no_cookie(static: StaticSite) -> None:
    plan = policy(static).plan(Visit(request(b"HEAD"), can_push=True), RESOURCES)
    assert plan.pushes == [] and len(plan.link_headers) == 3 and plan.cookie([]) is None


def test_garbage_cookie_counts_as_empty() -> None:
    assert read_cookie_digests([(b"cookie", b"pushserve-cache=%%%; other=1")]) == []


def test_link_values_as_generators_need_them() -> None:
    # The query is part of the URL the browser asks for; the fetch mode must match the element's.
    assert link_value(PushResource("/_static/a.css", "style", query="v=1f")) == \
        b"</_static/a.css?v=1f>; rel=preload; as=style"
    assert link_value(PushResource("/m.js", "script", crossorigin=True, module=True)) == b"</m.js>; rel=modulepreload"
    assert link_value(PushResource("/m.js", "script", crossorigin=True, module=True, credentials=True)) == \
        b"</m.js>; rel=modulepreload; crossorigin=use-credentials"
    assert link_value(PushResource("/a.js", "script", crossorigin=True, integrity="sha384-abc")) == \
        b'</a.js>; rel=preload; as=script; crossorigin; integrity="sha384-abc"'
