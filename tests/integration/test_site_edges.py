"""Issue 23 against a real pushserve: symlinks that lead out of the site are named, not silent
(and served with --follow-symlinks, the path guard still on); odd file names as nginx serves them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.h2client import H2Client, Reply
from tests.support.serverproc import Certs, ServerProcess, run_cli, start


@pytest.fixture
def linked_site(tmp_path: Path) -> Path:
    """A documentation tree as distributions install it: shared assets linked from system
    folders (a file and a whole folder), one link inside the site, and a secret beside it."""
    shared = tmp_path / "usr-share"
    (shared / "fonts").mkdir(parents=True)
    (shared / "jquery.js").write_text("/* jQuery */\n")
    (shared / "fonts" / "lato.woff2").write_bytes(b"wOF2" + b"\0" * 64)
    (shared / ".secret").write_text("no")
    site = tmp_path / "site"
    (site / "_static").mkdir(parents=True)
    (site / "_static" / "site.css").write_text("@font-face{font-family:L;src:url(fonts/lato.woff2) format('woff2')}")
    os.symlink(shared / "jquery.js", site / "_static" / "jquery.js")
    os.symlink(shared / "fonts", site / "_static" / "fonts")
    os.symlink(site / "_static" / "site.css", site / "theme.css")  # inside: always served
    (site / "index.html").write_text('<link rel=stylesheet href="_static/site.css">'
                                     '<script src="_static/jquery.js"></script><p>docs</p>')
    return site


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def get_all(server: ServerProcess, paths: list[str]) -> dict[str, Reply]:
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=False)
    try:
        return {p: c.get(p) for p in paths}
    finally:
        c.close()


ASSETS = ["/_static/jquery.js", "/_static/fonts/lato.woff2", "/theme.css"]


def test_symlinks_out_of_the_site_are_named_and_refused(certs: Certs, linked_site: Path,
                                                        servers: list[ServerProcess]) -> None:
    server = start(certs, "--no-access-log", site=linked_site)
    servers.append(server)
    server.wait_for(r"warning: 2 symlinks lead out of the site and answer 404 \(--follow-symlinks serves them\): "
                    r"_static/fonts, _static/jquery\.js$")
    replies = get_all(server, [*ASSETS, "/"])
    assert [replies[p].status for p in ASSETS] == [404, 404, 200]
    # Not announced either: a hint must never point at a 404.
    assert replies["/"].all(b"link") == [b"</_static/site.css>; rel=preload; as=style"]
    result = run_cli(certs, "check", str(linked_site), "--cert-dir", str(certs.cert_dir))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 symlinks lead out of the site and answer 404" in result.stderr
    for name in ("jquery.js", "fonts"):
        assert f"  _static/{name} -> {linked_site.parent / 'usr-share' / name}" in result.stderr


def test_follow_symlinks_serves_them_and_the_guard_still_holds(certs: Certs, linked_site: Path,
                                                              servers: list[ServerProcess]) -> None:
    server = start(certs, "--no-access-log", "--follow-symlinks", site=linked_site)
    servers.append(server)
    server.wait_for(r"site: 2 symlinks lead out of the site, followed \(--follow-symlinks\)")
    guarded = ["/_static/fonts/../../../usr-share/jquery.js", "/_static/fonts/.secret", "/_static/%2e%2e/index.html"]
    replies = get_all(server, [*ASSETS, "/", *guarded])
    assert [replies[p].status for p in ASSETS] == [200, 200, 200]
    assert bytes(replies["/_static/jquery.js"].body) == b"/* jQuery */\n"
    assert replies["/"].all(b"link") == [b"</_static/site.css>; rel=preload; as=style",
                                         b"</_static/fonts/lato.woff2>; rel=preload; as=font; crossorigin",
                                         b"</_static/jquery.js>; rel=preload; as=script"]
    assert [replies[p].status for p in guarded] == [404, 404, 404]
    result = run_cli(certs, "check", str(linked_site), "--follow-symlinks", "--cert-dir", str(certs.cert_dir))
    assert result.returncode == 0, result.stderr


def test_odd_file_names_as_nginx_serves_them(certs: Certs, tmp_path: Path, servers: list[ServerProcess]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "tab\tx.txt").write_text("tab\n")
    (tmp_path / "index.html").write_text("<p>home</p>")
    server = start(certs, "--no-access-log", site=tmp_path)
    servers.append(server)
    replies = get_all(server, ["/docs/tab%09x.txt", "/./index.html", "/docs/./tab%09x.txt", "/docs/tab%00x.txt"])
    assert [r.status for r in replies.values()] == [200, 200, 200, 400]
    assert bytes(replies["/docs/tab%09x.txt"].body) == b"tab\n"
