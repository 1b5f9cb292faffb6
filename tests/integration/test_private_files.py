"""Files the configuration names are not content: a certificate and key, the dictionary and
reload folders, the mounted app's source — each lying in the site folder, named in pushserve.toml
as the README shows — answer 404 over HTTP/1.1 and HTTP/2 (also through a symlink), the key gets
a start-up warning, and ``pushserve export`` leaves them out."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.attacks import tls_socket
from tests.support.h2client import H2Client
from tests.support.serverproc import Certs, ServerProcess, run_cli

APP = """\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"from the app"})
"""

# URL path -> what it is; every one must answer 404.
PRIVATE = {
    "/my.pem": "certificate",
    "/my-key.pem": "key",
    "/keys/alias.pem": "a symlink to the key",
    "/dicts/kept.bin": "a file in the dictionary folder",
    "/watched/notes.txt": "a file in a reload folder",
    "/_app/main.py": "the mounted app's source",
    "/pushserve.toml": "the settings",
}


@pytest.fixture
def site(tmp_path: Path, certs: Certs) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>t</title><p>public\n")
    (root / "public.txt").write_text("public\n")
    shutil.copy(certs.cert_dir / "localhost.pem", root / "my.pem")
    shutil.copy(certs.cert_dir / "localhost-key.pem", root / "my-key.pem")
    (root / "keys").mkdir()
    os.symlink("../my-key.pem", root / "keys" / "alias.pem")
    (root / "dicts").mkdir()
    (root / "dicts" / "kept.bin").write_bytes(b"dictionary\n")
    (root / "watched").mkdir()
    (root / "watched" / "notes.txt").write_text("notes\n")
    (root / "_app").mkdir()
    (root / "_app" / "__init__.py").write_text("")
    (root / "_app" / "main.py").write_text(APP)
    (root / "pushserve.toml").write_text(
        '[serve]\ncert = "my.pem"\nkey = "my-key.pem"\ndictionary-dir = "dicts"\n'
        'dev = true\nreload-dir = ["watched"]\n\n[mounts]\n"/api" = "_app.main:app"\n')
    return root


def h1_status(srv: ServerProcess, path: str) -> int:
    with tls_socket(srv.host, srv.port, srv.certs.client_context(), "http/1.1", timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_configured_files_answer_404_over_both_protocols(make_server: Callable[..., ServerProcess],
                                                         site: Path) -> None:
    srv = make_server("--no-access-log", site=site)
    srv.wait_for(r"warning: the TLS key \S+my-key\.pem lies inside the site folder")
    assert "alias.pem" not in srv.output and "my.pem lies" not in srv.output  # one warning: the key
    h2 = H2Client(srv.host, srv.port, srv.certs.client_context(), enable_push=False, timeout=10)
    try:
        answers = {path: (h1_status(srv, path), h2.get(path).status) for path in [*PRIVATE, "/public.txt"]}
        api = h2.get("/api")
    finally:
        h2.close()
    assert answers.pop("/public.txt") == (200, 200)  # the site itself is served
    assert api.status == 200 and bytes(api.body) == b"from the app"  # and the app runs from its source
    served = {f"{path} ({PRIVATE[path]})": got for path, got in answers.items() if got != (404, 404)}
    assert not served


def test_export_leaves_configured_files_out(certs: Certs, site: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(certs, "export", str(site), str(out))
    assert r.returncode == 0, r.stderr
    exported = {"/" + p.relative_to(out / "public").as_posix() for p in (out / "public").rglob("*")
                if p.is_file() or p.is_symlink()}
    assert "/public.txt" in exported
    assert not exported & set(PRIVATE), exported & set(PRIVATE)
    key = (site / "my-key.pem").read_bytes()
    leaked = [p for p in (out / "public").rglob("*") if p.is_file() and p.read_bytes() == key]
    assert not leaked


def test_key_outside_the_site_gets_no_warning(make_server: Callable[..., ServerProcess], site: Path,
                                             tmp_path: Path) -> None:
    """The warning is about where the key lies, not about having one."""
    outside = tmp_path / "pki"
    outside.mkdir()
    for name in ("my.pem", "my-key.pem"):
        shutil.move(site / name, outside / name)
    (site / "keys" / "alias.pem").unlink()
    (site / "pushserve.toml").write_text(f'[serve]\ncert = "{outside / "my.pem"}"\nkey = "{outside / "my-key.pem"}"\n')
    srv = make_server("--no-access-log", site=site)
    assert h1_status(srv, "/public.txt") == 200
    assert "lies inside the site folder" not in srv.output
