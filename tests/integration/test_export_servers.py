"""The exported site served by real nginx, h2o and Caddy (Debian's packages), each with the
exported snippet included in a minimal config as a user would, compared over HTTP/2 with what
pushserve itself serves for the same site (``--push hints`` for headers, ``--push auto`` for
pushes; no cookie)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
import zstandard

from benchmarks.pagepeers import PEERS
from pushserve.bench.certs import CertPair
from pushserve.config import Config
from pushserve.export.site import SiteExport, collect
from pushserve.options import read_site_file
from tests.conftest import need
from tests.support.h2client import H2Client, Reply
from tests.support.serverproc import SITE_EXAMPLE, Certs, ServerProcess, run_cli, start

ACCEPT = [(b"accept-encoding", b"br, zstd, gzip")]
_DECODE = {b"br": brotli.decompress, b"gzip": gzip.decompress,
           b"zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b)}


def decoded(reply: Reply) -> bytes:
    coding = reply.header(b"content-encoding")
    body = bytes(reply.body)
    return body if coding is None else bytes(_DECODE[coding](body))


@pytest.fixture(scope="module")
def exported(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "out"
    result = run_cli(certs, "export", "site_example", str(out), "--root", str(out.resolve() / "public"))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def site() -> SiteExport:
    """The list of URLs to compare (what the export wrote), collected as the export does."""
    file = read_site_file(SITE_EXAMPLE)
    return collect(Config(site=SITE_EXAMPLE, site_vars=file.site_vars, mounts=file.mounts))


@pytest.fixture(scope="module")
def hints_server(certs: Certs) -> Iterator[ServerProcess]:
    s = start(certs, "--push", "hints", "--no-access-log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def push_server(certs: Certs) -> Iterator[ServerProcess]:
    s = start(certs, "--push", "auto", "--no-access-log")
    yield s
    s.stop()


@pytest.fixture(params=sorted(PEERS))
def peer(request: pytest.FixtureRequest, exported: Path, certs: Certs, tmp_path: Path) -> Iterator[int]:
    need(request.param)
    pair = CertPair(certs.cert_dir / "localhost.pem", certs.cert_dir / "localhost-key.pem")
    with PEERS[request.param](exported, pair, tmp_path) as url:
        yield int(url.rsplit(":", 1)[1])


def fetch_all(host: str, port: int, certs: Certs, paths: list[str]) -> dict[str, Reply]:
    c = H2Client(host, port, certs.client_context(), enable_push=False)
    try:
        return {p: c.get(p, ACCEPT) for p in paths}
    finally:
        c.close()


def test_peer_serves_what_pushserve_serves(peer: int, hints_server: ServerProcess, site: SiteExport,
                                           certs: Certs) -> None:
    urls = [u for f in site.files for u in f.urls]
    canonical = {f.url for f in site.files}
    assert "/" in urls and "/features/" in urls and "/css/site.css" in urls
    ours = fetch_all(hints_server.host, hints_server.port, certs, urls)
    theirs = fetch_all("127.0.0.1", peer, certs, urls)
    for url in urls:
        mine, other = ours[url], theirs[url]
        assert (other.status, mine.status) == (200, 200), url
        if url in canonical:  # "/a/index.html" has the bytes of "/a/" (the export warns when they differ)
            assert decoded(other) == decoded(mine), url
        for name in (b"link", b"cache-control", b"content-type"):
            assert other.all(name) == mine.all(name), (url, name)
    assert any(ours[u].all(b"link") for u in urls)  # the comparison covers pages with Link headers


def test_peer_answers_missing_paths_with_the_404_page(peer: int, exported: Path, certs: Certs) -> None:
    reply = fetch_all("127.0.0.1", peer, certs, ["/no/such/page"])["/no/such/page"]
    assert reply.status == 404
    assert decoded(reply) == (exported / "public" / "404.html").read_bytes()
    hidden = fetch_all("127.0.0.1", peer, certs, ["/_headers"])["/_headers"]
    assert hidden.status == 404


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_pushes_what_pushserve_pushes(name: str, exported: Path, push_server: ServerProcess,
                                           certs: Certs, tmp_path: Path) -> None:
    need(name)
    pair = CertPair(certs.cert_dir / "localhost.pem", certs.cert_dir / "localhost-key.pem")

    def pushed(host: str, port: int, page: str) -> dict[str, bytes]:
        c = H2Client(host, port, certs.client_context(), enable_push=True)  # a new connection: nothing sent yet
        try:
            reply = c.get(page, ACCEPT)
            assert reply.status == 200
            return {p.path.decode(): decoded(p) for p in c.pushes_of(reply.stream_id)}
        finally:
            c.close()

    with PEERS[name](exported, pair, tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        for page in ("/", "/features/"):
            expected = pushed(push_server.host, push_server.port, page)
            assert len(expected) > 5
            got = pushed("127.0.0.1", port, page)
            assert sorted(got) == sorted(expected), page
            assert got == expected, page  # the same bytes too


ODD = {"css/estilo mañana.css": "body { color: #123 }\n",
       "café/page one.html": '<!doctype html><link rel=stylesheet href="../css/estilo mañana.css"><p>uno</p>\n',
       "index.html": '<!doctype html><link rel=stylesheet href="css/estilo mañana.css"><p>home</p>\n'}
ODD_URLS = ["/", "/caf%C3%A9/page%20one.html", "/css/estilo%20ma%C3%B1ana.css"]


@pytest.fixture(scope="module")
def odd(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Reply]]]:
    """A site with odd file names, exported, and what pushserve (--push hints) answers for it."""
    root = tmp_path_factory.mktemp("odd")
    for name, text in ODD.items():
        (root / "site" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "site" / name).write_text(text)
    result = run_cli(certs, "export", str(root / "site"), str(root / "out"), "--root", str(root / "out" / "public"))
    assert result.returncode == 0, result.stderr
    ours = start(certs, "--push", "hints", "--no-access-log", site=root / "site")
    try:
        yield root / "out", fetch_all(ours.host, ours.port, certs, ODD_URLS)
    finally:
        ours.stop()


@pytest.mark.parametrize("name", sorted(PEERS))
def test_odd_file_names_reach_every_peer_encoded(name: str, odd: tuple[Path, dict[str, Reply]], certs: Certs,
                                                 tmp_path: Path) -> None:
    """Issue 23: Link targets are URI references, percent-encoded as browsers request them, in
    pushserve's headers and in every exported snippet; each server answers the encoded URL."""
    need(name)
    out, mine = odd
    assert "/caf%C3%A9/page%20one.html\n" in (out / "public" / "_headers").read_text()
    pair = CertPair(certs.cert_dir / "localhost.pem", certs.cert_dir / "localhost-key.pem")
    with PEERS[name](out, pair, tmp_path) as url:
        theirs = fetch_all("127.0.0.1", int(url.rsplit(":", 1)[1]), certs, ODD_URLS)
    link = b"</css/estilo%20ma%C3%B1ana.css>; rel=preload; as=style"
    for url in ODD_URLS:
        assert (theirs[url].status, mine[url].status) == (200, 200), url
        assert theirs[url].all(b"link") == mine[url].all(b"link") == ([] if url.endswith(".css") else [link]), url
