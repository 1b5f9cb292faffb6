"""Templates and the push manifest as a user meets them: rendered pages, errors, changes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.h2client import H2Client
from tests.support.serverproc import SITE_EXAMPLE, Certs, ServerProcess, run_cli, start


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(SITE_EXAMPLE, root)
    return root


def get(srv: ServerProcess, path: str) -> httpx.Response:
    with httpx.Client(http2=True, verify=srv.certs.client_context(), timeout=20) as c:
        return c.get(srv.url.rstrip("/") + path)


def test_pages_are_rendered_with_request_and_site_context(server: ServerProcess) -> None:
    r = get(server, "/?from=tests")
    assert r.status_code == 200
    assert "<title>Home · pushserve</title>" in r.text  # layout + [site] table of pushserve.toml
    assert "Welcome, visitor from tests." in r.text  # request.args
    assert "{%" not in r.text and "{{" not in r.text
    assert get(server, "/_layouts/base.html").status_code == 404
    assert get(server, "/_partials/nav.html").status_code == 404


def test_no_templates_serves_html_as_is(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("--no-templates")
    r = get(srv, "/")
    assert r.text == (SITE_EXAMPLE / "index.html").read_text()


def test_template_error_gives_500_naming_file_and_line_and_others_still_work(
        make_server: Callable[..., ServerProcess], site: Path) -> None:
    srv = make_server(site=site)
    (site / "broken.html").write_text('{% extends "_layouts/base.html" %}\n{% block content %}\n'
                                      '{% include "_partials/missing.html" %}\n{% endblock %}\n')
    r = get(srv, "/broken.html")
    assert r.status_code == 500
    assert "broken.html" in r.text and "line 3" in r.text and "missing.html" in r.text
    srv.wait_for(r"template error: broken\.html:3")
    assert get(srv, "/").status_code == 200


def test_broken_templates_are_logged_and_check_lists_every_one(certs: Certs, site: Path) -> None:
    # A template page (it extends the site's layout) and a partial it includes.
    (site / "a.html").write_text('{% extends "_layouts/base.html" %}{% block content %}'
                                 '{% include "_partials/b.html" %}{% if %}{% endblock %}\n')
    (site / "_partials" / "b.html").write_text("ok\n{{ x | nosuchfilter }}\n")
    # A start reads no page (issue 23: the first 200 within a second, whatever the site's size): the
    # background build of the push manifest renders every page and names the broken one …
    server = start(certs, "--no-access-log", site=site)
    try:
        server.wait_for(r"push manifest: a\.html: not rendered, nothing inferred: a\.html:1")
        assert get(server, "/").status_code == 200
    finally:
        server.stop()
    # … and `pushserve check` compiles every template, lists each problem and exits 1.
    result = run_cli(certs, "check", str(site), "--cert-dir", str(certs.cert_dir))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "2 template errors:" in result.stderr
    assert "a.html:1" in result.stderr and "_partials/b.html:2" in result.stderr


def test_broken_push_manifest_json_is_a_clear_error(certs: Certs, site: Path) -> None:
    (site / "push_manifest.json").write_text('{"index.html": {"/css/site.css": {"type": "style",}}}')
    result = run_cli(certs, str(site), "--port", "0", "--cert-dir", str(certs.cert_dir))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "push_manifest.json:1:" in result.stderr


def test_explicit_push_manifest_wins(make_server: Callable[..., ServerProcess], site: Path) -> None:
    (site / "push_manifest.json").write_text('{"index.html": {"/css/typography.css": {"type": "style"}}}')
    srv = make_server(site=site)
    c = H2Client(srv.host, srv.port, srv.certs.client_context())
    try:
        page = c.get("/")
        assert [p.path for p in c.pushes_of(page.stream_id)] == [b"/css/typography.css"]
    finally:
        c.close()


def test_manifest_follows_an_edited_page(make_server: Callable[..., ServerProcess], site: Path) -> None:
    srv = make_server("--push", "hints", site=site)
    assert "/css/print.css" not in get(srv, "/features/").headers.get("link", "")
    page = site / "features" / "index.html"
    page.write_text(page.read_text().replace("{% block head %}",
                                             '{% block head %}<link rel="stylesheet" href="/css/print.css">'))
    deadline = time.monotonic() + 15  # pages are re-checked at most once a second
    while time.monotonic() < deadline:
        if "</css/print.css>" in get(srv, "/features/").headers.get("link", ""):
            break
    else:
        pytest.fail("the manifest did not pick up the new stylesheet")
