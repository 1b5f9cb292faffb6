"""On-the-fly compression and Compression Dictionary Transport against a real pushserve: every
coding decodes to exactly the identity bytes, ETags and Vary are per coding, ranges and
compressed formats stay identity, pushes and app responses are compressed like direct ones, and
a changed file is sent as a dcz delta against the version the client holds, whichever worker
answers."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import pytest
import zstandard

from pushserve.http.codings import DCZ_MAGIC, sf_bytes
from tests.support.h2client import H2Client, Reply
from tests.support.serverproc import SITE_EXAMPLE, ServerProcess

CODINGS = ("zstd", "br", "gzip")
ALL = b"zstd, br, gzip"


def decode(body: bytes, coding: bytes | None, dictionary: bytes | None = None) -> bytes:
    if coding is None:
        return body
    if coding == b"zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if coding == b"br":
        return bytes(brotli.decompress(body))
    if coding == b"gzip":
        return gzip.decompress(body)
    if coding == b"dcz":
        assert dictionary is not None
        assert body[:40] == DCZ_MAGIC + hashlib.sha256(dictionary).digest()
        d = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdDecompressor(dict_data=d).decompressobj().decompress(body[40:])
    raise AssertionError(f"unexpected coding {coding!r}")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of site_example that a test may change."""
    dest = tmp_path / "site"
    shutil.copytree(SITE_EXAMPLE, dest)
    return dest


@pytest.fixture
def client(server: ServerProcess) -> Iterator[H2Client]:
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=False)
    yield c
    c.close()


def get(c: H2Client, path: str, accept: bytes | None = None, *extra: tuple[bytes, bytes],
        method: str = "GET") -> Reply:
    headers = [(b"accept-encoding", accept)] if accept is not None else []
    sid = c.request(path, [*headers, *extra], method=method)
    c.wait(sid)
    return c.replies[sid]


def content(r: Reply, dictionary: bytes | None = None) -> bytes:
    body = bytes(r.body)
    length = r.header(b"content-length")
    if length is not None:
        assert int(length) == len(body)
    return decode(body, r.header(b"content-encoding"), dictionary)


@pytest.mark.parametrize("coding", CODINGS)
def test_page_and_css_per_coding(client: H2Client, coding: str) -> None:
    for path in ("/", "/css/site.css", "/js/app.js", "/features/flow.svg"):
        plain = get(client, path)
        coded = get(client, path, coding.encode())
        assert plain.status == coded.status == 200
        assert plain.header(b"content-encoding") is None
        assert coded.header(b"content-encoding") == coding.encode(), path
        assert content(coded) == bytes(plain.body), path
        assert len(coded.body) < len(plain.body)
        # Every response of a URL that can be coded says so, identity too.
        assert b"accept-encoding" in (plain.header(b"vary") or b"")
        assert coded.header(b"vary") == plain.header(b"vary")
        tag = plain.header(b"etag")
        assert tag is not None and coded.header(b"etag") == tag[:-1] + b"-" + coding.encode() + b'"'
        assert coded.header(b"accept-ranges") is None


def test_accept_encoding_q_values_and_server_order(client: H2Client) -> None:
    cases = {
        b"gzip, deflate, br, zstd": b"zstd",  # equal weights: the server's order (zstd, br, gzip)
        b"gzip;q=1.0, br;q=0.5": b"gzip",
        b"zstd;q=0, br": b"br",
        b"*;q=0.2, gzip;q=0.1": b"zstd",
        b"identity": None,
        b"zstd;q=0, br;q=0, gzip;q=0": None,
        b"deflate": None,
    }
    for accept, coding in cases.items():
        r = get(client, "/css/site.css", accept)
        assert r.header(b"content-encoding") == coding, accept


@pytest.mark.parametrize("coding", CODINGS)
def test_conditional_requests_per_coding(client: H2Client, coding: str) -> None:
    for path in ("/css/site.css", "/"):
        first = get(client, path, coding.encode())
        tag = first.header(b"etag")
        assert tag is not None
        again = get(client, path, coding.encode(), (b"if-none-match", tag))
        assert again.status == 304 and again.header(b"etag") == tag and not again.body
        assert again.header(b"vary") == first.header(b"vary")
        # The same tag does not validate another coding's representation, nor identity's.
        other = "gzip" if coding != "gzip" else "br"
        assert get(client, path, other.encode(), (b"if-none-match", tag)).status == 200
        assert get(client, path, None, (b"if-none-match", tag)).status == 200


def test_head_has_the_headers_of_get(client: H2Client) -> None:
    for path in ("/css/site.css", "/"):
        # A file's first answers may carry the fast-level body while the best one is made in a
        # thread: compare once the body has settled (bounded: a few requests).
        got = get(client, path, b"br")
        for _ in range(50):
            again = get(client, path, b"br")
            if again.header(b"content-length") == got.header(b"content-length"):
                break
            got = again
        head = get(client, path, b"br", method="HEAD")
        assert head.status == 200 and not head.body
        # HEAD teaches the push cookie nothing; server-timing measures this very render.
        skip = {b"date", b"set-cookie", b"server-timing"}
        assert [h for h in head.headers if h[0] not in skip] == [h for h in got.headers if h[0] not in skip]
        assert (head.header(b"server-timing") is None) == (got.header(b"server-timing") is None)


def test_range_gets_identity_bytes(client: H2Client) -> None:
    css = (SITE_EXAMPLE / "css" / "site.css").read_bytes()
    r = get(client, "/css/site.css", ALL, (b"range", b"bytes=10-99"))
    assert r.status == 206 and r.header(b"content-encoding") is None
    assert bytes(r.body) == css[10:100]
    assert r.header(b"content-range") == b"bytes 10-99/%d" % len(css)


def test_compressed_formats_never_compressed(client: H2Client) -> None:
    for path in ("/fonts/dejavu-sans-latin.woff2", "/img/hero.png"):
        r = get(client, path, ALL)
        assert r.status == 200 and r.header(b"content-encoding") is None, path
        assert r.header(b"vary") is None
        assert bytes(r.body) == (SITE_EXAMPLE / path.lstrip("/")).read_bytes()


def test_pushes_are_compressed_as_direct_requests(server: ServerProcess) -> None:
    c = H2Client(server.host, server.port, server.certs.client_context(), enable_push=True)
    try:
        page = get(c, "/", b"br")
        assert page.header(b"content-encoding") == b"br"
        pushes = c.pushes_of(page.stream_id)
        assert pushes
        coded = 0
        for p in pushes:
            assert (b"accept-encoding", b"br") in p.request_headers  # copied from the page request
            path = p.path.decode()
            direct = get(c, path, b"br")
            assert p.header(b"content-encoding") == direct.header(b"content-encoding"), path
            assert p.header(b"etag") == direct.header(b"etag"), path
            assert content(p) == (SITE_EXAMPLE / path.lstrip("/")).read_bytes(), path
            coded += p.header(b"content-encoding") == b"br"
        assert coded >= 3  # the stylesheets and scripts
    finally:
        c.close()


def test_hinted_resources_are_compressed_like_the_page(client: H2Client) -> None:
    page = get(client, "/", b"zstd")
    assert page.informational, "a client without push gets a 103"
    links = [v.decode() for h in page.informational for k, v in h if k == b"link"]
    paths = [re.match(r"<([^>]+)>", link).group(1) for link in links]  # type: ignore[union-attr]
    assert "/css/site.css" in paths
    coded = 0
    for path in paths:
        r = get(client, path, b"zstd")
        data = (SITE_EXAMPLE / path.lstrip("/")).read_bytes()
        assert content(r) == data
        if path.endswith((".css", ".js", ".svg")) and len(data) >= 512:  # 512: the default threshold
            assert r.header(b"content-encoding") == b"zstd", path
            coded += 1
    assert coded >= 2


def test_siblings_win_while_newer_and_older_ones_are_ignored(make_server: Callable[..., ServerProcess],
                                                            site: Path) -> None:
    css = site / "css" / "site.css"
    sibling = site / "css" / "site.css.br"
    sibling.write_bytes(brotli.compress(css.read_bytes(), quality=11))
    old = site / "css" / "typography.css.gz"
    old.write_bytes(gzip.compress(b"stale content"))
    st = (site / "css" / "typography.css").stat()
    os.utime(old, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    s = make_server(site=site)
    c = H2Client(s.host, s.port, s.certs.client_context(), enable_push=False)
    try:
        r = get(c, "/css/site.css", b"br")
        assert bytes(r.body) == sibling.read_bytes() and r.header(b"content-encoding") == b"br"
        # zstd: no sibling for it, so compressed on the fly.
        assert get(c, "/css/site.css", b"zstd").header(b"content-encoding") == b"zstd"
        for _ in range(2):
            r = get(c, "/css/typography.css", b"gzip")
            assert content(r) == (site / "css" / "typography.css").read_bytes()
    finally:
        c.close()
    warnings = [line for line in s.output.splitlines() if "typography.css.gz is older" in line]
    assert len(warnings) == 1


def test_large_file_streamed_compressed(make_server: Callable[..., ServerProcess], site: Path) -> None:
    big = b"".join(b"line %d of a log that goes on and on\n" % i for i in range(150_000))  # ~5.5 MB
    assert len(big) > 4 * 1024 * 1024
    (site / "big.txt").write_bytes(big)
    s = make_server(site=site)
    c = H2Client(s.host, s.port, s.certs.client_context(), enable_push=False)
    try:
        r = get(c, "/big.txt", b"zstd")
        assert r.header(b"content-encoding") == b"zstd" and r.header(b"content-length") is None
        assert content(r) == big
    finally:
        c.close()


def test_app_responses(make_server: Callable[..., ServerProcess]) -> None:
    from tests.support.apps import texty

    s = make_server("--mount", "/t=tests.support.apps.texty:app")
    c = H2Client(s.host, s.port, s.certs.client_context(), enable_push=False)
    try:
        for coding in CODINGS:
            r = get(c, "/t/json", coding.encode())
            assert r.header(b"content-encoding") == coding.encode()
            assert content(r) == texty.JSON_BODY
            assert r.header(b"vary") == b"cookie, accept-encoding"
            assert r.header(b"etag") == b'"v1-%s"' % coding.encode()
        plain = get(c, "/t/json")
        assert plain.header(b"content-encoding") is None and bytes(plain.body) == texty.JSON_BODY
        assert plain.header(b"vary") == b"cookie, accept-encoding"
        streamed = get(c, "/t/stream", b"gzip")
        assert streamed.header(b"content-encoding") == b"gzip"
        assert content(streamed) == b"".join(texty.PIECES)
        # Flushed at every body message: the DATA frames come in several pieces.
        assert sum(1 for f in c.frames if f[0] == 0 and f[2] == streamed.stream_id and f[3]) >= len(texty.PIECES)
        for path in ("/t/events", "/t/no-transform", "/t/partial", "/t/small"):
            r = get(c, path, ALL)
            assert r.header(b"content-encoding") is None, path
        encoded = get(c, "/t/encoded", ALL)
        assert encoded.header(b"content-encoding") == b"gzip" and gzip.decompress(bytes(encoded.body)) == texty.TEXT
    finally:
        c.close()
    assert re.search(r'"GET /t/json" 200 \d+ zstd', s.output)


def test_no_compress_and_codings_option(make_server: Callable[..., ServerProcess]) -> None:
    off = make_server("--no-compress")
    c = H2Client(off.host, off.port, off.certs.client_context(), enable_push=False)
    try:
        r = get(c, "/css/site.css", ALL)
        assert r.header(b"content-encoding") is None and r.header(b"vary") is None
    finally:
        c.close()
    only = make_server("--compress", "gzip,br")
    c = H2Client(only.host, only.port, only.certs.client_context(), enable_push=False)
    try:
        assert get(c, "/css/site.css", b"zstd").header(b"content-encoding") is None
        assert get(c, "/css/site.css", ALL).header(b"content-encoding") == b"gzip"
    finally:
        c.close()


def test_site_toml_compress_table(make_server: Callable[..., ServerProcess], site: Path) -> None:
    toml = site / "pushserve.toml"
    toml.write_text(toml.read_text() + '\n[compress]\ncodings = ["br"]\nthreshold = 100000\nlevel = { br = 5 }\n')
    s = make_server(site=site)
    c = H2Client(s.host, s.port, s.certs.client_context(), enable_push=False)
    try:
        assert get(c, "/css/site.css", ALL).header(b"content-encoding") is None  # under the threshold
    finally:
        c.close()


# -- Compression Dictionary Transport -----------------------------------------------------------

def _until_changed(c: H2Client, path: str, old_tag: bytes) -> Reply:
    """The server revalidates files once a second: ask until it serves the new version."""
    deadline = time.monotonic() + 15
    old_coded = old_tag[:-1] + b'-zstd"'
    while True:
        r = get(c, path, b"zstd")
        if r.header(b"etag") != old_coded:
            return r
        assert time.monotonic() < deadline, "the server never saw the change"
        time.sleep(0.05)


def _delta_round(first: H2Client, second: H2Client, site: Path) -> None:
    app = site / "js" / "app.js"
    old = app.read_bytes()
    r = get(first, "/js/app.js", b"dcz, zstd, br, gzip")
    assert r.header(b"use-as-dictionary") == b'match="/js/app.js", id="%s"' % r.header(b"etag")[1:-6]  # type: ignore[index]
    assert r.header(b"vary") == b"accept-encoding, available-dictionary"
    assert b"max-age=" in r.header(b"cache-control")  # type: ignore[operator]
    old_tag = get(first, "/js/app.js").header(b"etag")
    assert old_tag is not None
    new = old.replace(b"\n", b"\n// one line changed\n", 1)
    app.write_bytes(new)
    _until_changed(second, "/js/app.js", old_tag)
    have = sf_bytes(hashlib.sha256(old).digest())
    r = get(second, "/js/app.js", b"dcz, zstd", (b"available-dictionary", have))
    assert r.status == 200 and r.header(b"content-encoding") == b"dcz"
    assert r.header(b"vary") == b"accept-encoding, available-dictionary"
    assert content(r, dictionary=old) == new
    plain_zstd = get(second, "/js/app.js", b"zstd")
    assert len(r.body) < len(plain_zstd.body)
    # An unknown dictionary is no error: ordinary compression.
    unknown = get(second, "/js/app.js", b"dcz, zstd", (b"available-dictionary", sf_bytes(b"\0" * 32)))
    assert unknown.header(b"content-encoding") == b"zstd" and content(unknown) == new
    garbage = get(second, "/js/app.js", b"dcz, zstd", (b"available-dictionary", b"not base64"))
    assert garbage.header(b"content-encoding") == b"zstd"


def test_dictionary_delta(make_server: Callable[..., ServerProcess], site: Path, tmp_path: Path) -> None:
    s = make_server("--dictionary-dir", str(tmp_path / "dicts"), site=site)
    c = H2Client(s.host, s.port, s.certs.client_context(), enable_push=False)
    try:
        _delta_round(c, c, site)
    finally:
        c.close()


def test_dictionary_delta_across_workers(make_server: Callable[..., ServerProcess], site: Path,
                                         tmp_path: Path) -> None:
    """The worker that sends the delta never served the old version: it finds it in the store."""
    s = make_server("--workers", "2", "--expose-worker", "--dictionary-dir", str(tmp_path / "dicts"), site=site)
    by_worker: dict[bytes, H2Client] = {}
    extra: list[H2Client] = []
    try:
        for _ in range(40):
            c = H2Client(s.host, s.port, s.certs.client_context(), enable_push=False)
            pid = get(c, "/favicon.ico").header(b"x-pushserve-worker")
            assert pid is not None
            if pid in by_worker:
                extra.append(c)
            else:
                by_worker[pid] = c
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, "connections never reached the second worker"
        first, second = by_worker.values()
        _delta_round(first, second, site)
    finally:
        for c in [*by_worker.values(), *extra]:
            c.close()
