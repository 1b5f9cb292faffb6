"""StaticSite against real files in a temporary site folder."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pushserve.http.dates import http_date
from pushserve.http.response import Response
from pushserve.protocol.events import Headers
from pushserve.site.paths import PrivateFiles
from pushserve.site.static import CHUNK_SIZE, FileChanged, FileChunks, RenderRequest, StaticSite

CSS = b"body { color: red }\n" * 10


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "css").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "empty").mkdir()
    (root / "_private").mkdir()
    (root / "index.html").write_bytes(b"<h1>home</h1>")
    (root / "docs" / "index.html").write_bytes(b"<h1>docs</h1>")
    (root / "css" / "site.css").write_bytes(CSS)
    (root / "digits.txt").write_bytes(b"0123456789")
    (root / "_private" / "secret.txt").write_bytes(b"secret")
    (root / "_draft.html").write_bytes(b"draft")
    (root / ".env").write_bytes(b"KEY=1")
    (root / "café.txt").write_bytes(b"accent")
    (root / "%2e%2e").write_bytes(b"literal name")  # what double-decoding would have to reach
    (tmp_path / "outside.txt").write_bytes(b"outside the root")
    return root


def get(s: StaticSite, target: bytes, headers: Headers | None = None, method: bytes = b"GET") -> Response:
    return s.serve(method, target, headers or [])


def hdr(r: Response, name: bytes) -> bytes | None:
    values = [v for k, v in r.headers if k == name]
    assert len(values) <= 1, f"{name!r} repeated"
    return values[0] if values else None


def body(r: Response) -> bytes:
    if r.body is None:
        return b""
    if isinstance(r.body, bytes):
        return r.body
    return b"".join(r.body)


# -- basics -------------------------------------------------------------------------------------


def test_serves_file_with_headers(site: Path) -> None:
    s = StaticSite(site)
    r = get(s, b"/css/site.css")
    assert r.status == 200
    assert body(r) == CSS
    assert r.source == "css/site.css"
    st = os.stat(site / "css" / "site.css")
    assert hdr(r, b"content-type") == b"text/css; charset=utf-8"
    assert hdr(r, b"content-length") == str(len(CSS)).encode()
    etag = hdr(r, b"etag")
    assert etag is not None and etag.startswith(b'"') and etag.endswith(b'"')
    assert hdr(r, b"last-modified") == http_date(st.st_mtime)
    assert hdr(r, b"accept-ranges") == b"bytes"
    assert hdr(r, b"cache-control") == b"no-cache"
    assert hdr(r, b"vary") is None  # no precompressed sibling


def test_cache_control_is_configurable(site: Path) -> None:
    r = get(StaticSite(site, cache_control=b"public, max-age=60"), b"/digits.txt")
    assert hdr(r, b"cache-control") == b"public, max-age=60"


def test_returned_headers_are_a_copy(site: Path) -> None:
    s = StaticSite(site)
    get(s, b"/digits.txt").headers.append((b"date", b"x"))  # what a server might do
    assert hdr(get(s, b"/digits.txt"), b"date") is None


def test_head_has_headers_but_no_body(site: Path) -> None:
    s = StaticSite(site)
    g, h = get(s, b"/css/site.css"), get(s, b"/css/site.css", method=b"HEAD")
    assert h.status == 200 and h.body is None
    assert h.headers == g.headers


def test_query_is_ignored_for_files(site: Path) -> None:
    r = get(StaticSite(site), b"/digits.txt?v=3")
    assert r.status == 200 and body(r) == b"0123456789"


def test_percent_encoded_and_utf8_names(site: Path) -> None:
    s = StaticSite(site)
    assert body(get(s, b"/caf%C3%A9.txt")) == b"accent"
    assert body(get(s, "/café.txt".encode())) == b"accent"
    assert body(get(s, b"/%64igits.txt")) == b"0123456789"


def test_index_and_redirect(site: Path) -> None:
    s = StaticSite(site)
    r = get(s, b"/")
    assert r.status == 200 and body(r) == b"<h1>home</h1>" and r.source == "index.html"
    r = get(s, b"/docs/")
    assert r.status == 200 and body(r) == b"<h1>docs</h1>" and r.source == "docs/index.html"
    assert hdr(r, b"content-type") == b"text/html; charset=utf-8"
    r = get(s, b"/docs?lang=en")
    assert r.status == 301 and hdr(r, b"location") == b"/docs/?lang=en"
    r = get(s, b"/docs")
    assert r.status == 301 and hdr(r, b"location") == b"/docs/"
    assert get(s, b"/empty/").status == 404  # no index, no listing
    assert get(s, b"/empty").status == 404  # and no redirect to that 404 either
    (site / "empty" / "index.html").write_text("now")
    assert get(StaticSite(site), b"/empty").status == 301
    assert get(s, b"/digits.txt/").status == 404  # a file with a trailing slash
    assert get(s, b"/digits").status == 404  # no extension guessing


def test_not_found_plain(site: Path) -> None:
    r = get(StaticSite(site), b"/nope.css")
    assert r.status == 404
    assert hdr(r, b"content-type") == b"text/plain; charset=utf-8"
    assert body(r) == b"404 Not Found\n"
    assert hdr(r, b"content-length") == b"14"


def test_not_found_page(site: Path) -> None:
    (site / "404.html").write_bytes(b"<h1>lost</h1>")
    s = StaticSite(site)
    r = get(s, b"/nope.css")
    assert r.status == 404 and body(r) == b"<h1>lost</h1>"
    assert hdr(r, b"content-type") == b"text/html; charset=utf-8"
    h = get(s, b"/nope.css", method=b"HEAD")
    assert h.status == 404 and h.body is None and hdr(h, b"content-length") == b"13"


def test_not_found_page_rendered(site: Path) -> None:
    (site / "404.html").write_bytes(b"template")
    calls: list[tuple[str, RenderRequest]] = []

    def render(rel: str, req: RenderRequest) -> bytes:
        calls.append((rel, req))
        return b"rendered 404 for " + req.path.encode()

    r = get(StaticSite(site, render_page=render), b"/missing/page?x=1", [(b"accept", b"*/*")])
    assert r.status == 404 and body(r) == b"rendered 404 for /missing/page"
    assert calls == [("404.html", RenderRequest("/missing/page", b"x=1", [(b"accept", b"*/*")]))]


def test_methods(site: Path) -> None:
    s = StaticSite(site)
    r = get(s, b"/digits.txt", method=b"OPTIONS")
    assert r.status == 204 and hdr(r, b"allow") == b"GET, HEAD, OPTIONS" and r.body is None
    for m in (b"POST", b"PUT", b"DELETE", b"PATCH", b"BREW"):
        r = get(s, b"/digits.txt", method=m)
        assert r.status == 405 and hdr(r, b"allow") == b"GET, HEAD, OPTIONS"


# -- traversal and hidden files -----------------------------------------------------------------


@pytest.mark.parametrize("target", [
    b"/../etc/passwd", b"/../outside.txt", b"/css/../../outside.txt", b"/%2e%2e/outside.txt",
    b"/%2E%2E/%2e%2e/etc/passwd", b"/.%2e/outside.txt", b"/css/%2e%2e/index.html",
])
def test_dot_dot_segments_are_404(site: Path, target: bytes) -> None:
    r = get(StaticSite(site), target)
    assert r.status == 404 and b"outside" not in body(r) and b"root:" not in body(r)


@pytest.mark.parametrize("target", [
    b"/..%2f..%2fetc/passwd", b"/..%2Foutside.txt", b"/css%2fsite.css", b"/%2e%2e%5coutside.txt",
    b"/..\\outside.txt", b"/css\\site.css", b"/digits.txt%00.html", b"/digits.txt\x00", b"/a%0d%0ab",
    b"/%ff%fe.txt", b"/%zz", b"/bad%2", b"relative.txt", b"*",
])
def test_malformed_paths_are_400(site: Path, target: bytes) -> None:
    r = get(StaticSite(site), target)
    assert r.status == 400 and body(r) == b"400 Bad Request\n"


def test_double_encoding_is_decoded_once(site: Path) -> None:
    s = StaticSite(site)
    # %252e%252e decodes once to the literal name "%2e%2e", never to "..".
    r = get(s, b"/%252e%252e")
    assert r.status == 200 and body(r) == b"literal name"
    assert get(s, b"/%252e%252e/outside.txt").status == 404
    assert get(s, b"/%252e%252e%252foutside.txt").status == 404


def test_dot_segments_and_odd_names_as_nginx_serves_them(site: Path) -> None:
    # Issue 23: "." segments are dropped and a tab may name a file; NUL, CR and LF never do.
    (site / "docs").mkdir(exist_ok=True)
    (site / "docs" / "tab\tx.txt").write_bytes(b"tab")
    s = StaticSite(site)
    assert get(s, b"/./css/site.css").status == 200 and body(get(s, b"/css/./site.css")) == CSS
    r = get(s, b"/docs/tab%09x.txt")
    assert r.status == 200 and body(r) == b"tab"
    assert get(s, b"/docs/./tab%09x.txt").status == 200
    for target in (b"/docs/tab%00x.txt", b"/docs/tab%0ax.txt", b"/docs/tab%0dx.txt"):
        assert get(s, target).status == 400, target


@pytest.mark.parametrize("target", [
    b"/_private/secret.txt", b"/_draft.html", b"/.env", b"/%2eenv", b"/%5fdraft.html", b"/_private/",
    b"/_private/./secret.txt", b"/_private//secret.txt",
])
def test_hidden_and_private_are_404(site: Path, target: bytes) -> None:
    # Dotfiles by name; _private and _draft.html because the site says so (as the templates'
    # dependency graph or pushserve.toml's mounts do).
    r = get(StaticSite(site, private=PrivateFiles(["_private", "_draft.html"])), target)
    assert r.status == 404 and body(r) not in (b"secret", b"draft", b"KEY=1", CSS)


def test_underscore_names_are_served_and_well_known_too(site: Path) -> None:
    (site / "_static").mkdir()
    (site / "_static" / "x.css").write_bytes(b"x")
    (site / ".well-known").mkdir()
    (site / ".well-known" / "security.txt").write_bytes(b"Contact: x")
    s = StaticSite(site)
    assert body(get(s, b"/_static/x.css")) == b"x"
    assert body(get(s, b"/_private/secret.txt")) == b"secret"  # nothing marks it private here
    assert body(get(s, b"/.well-known/security.txt")) == b"Contact: x"
    assert get(s, b"/.well-known/../.env").status in (400, 404)


def test_symlink_out_of_root_is_404(site: Path, tmp_path: Path) -> None:
    (site / "link.txt").symlink_to(tmp_path / "outside.txt")
    (site / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    s = StaticSite(site)
    for target in (b"/link.txt", b"/linkdir/outside.txt"):
        r = get(s, target)
        assert r.status == 404 and body(r) != b"outside the root", target
    # The check is on where the file really is: back inside the root through the link is fine.
    assert body(get(s, b"/linkdir/site/digits.txt")) == b"0123456789"
    assert s.entry("/link.txt") is None


def test_symlink_inside_root_is_served(site: Path) -> None:
    (site / "alias.css").symlink_to(site / "css" / "site.css")
    (site / "styles").symlink_to(site / "css", target_is_directory=True)
    s = StaticSite(site)
    r = get(s, b"/alias.css")
    assert r.status == 200 and body(r) == CSS and r.source == "alias.css"
    assert body(get(s, b"/styles/site.css")) == CSS


def test_root_reached_through_a_symlink(site: Path, tmp_path: Path) -> None:
    (tmp_path / "published").symlink_to(site, target_is_directory=True)
    s = StaticSite(tmp_path / "published")
    assert body(get(s, b"/digits.txt")) == b"0123456789"
    assert get(s, b"/../outside.txt").status == 404


def test_root_symlink_switched_by_a_deploy(tmp_path: Path) -> None:
    """site -> releases/1, then a deploy points it at releases/2 (ln -sfn): the new release is
    served, not refused as outside the root the server started with."""
    for n in (1, 2):
        (tmp_path / "releases" / str(n)).mkdir(parents=True)
        (tmp_path / "releases" / str(n) / "v.txt").write_text(f"release {n}")
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "releases" / "1", target_is_directory=True)
    s = StaticSite(current, revalidate_after=0)
    assert body(get(s, b"/v.txt")) == b"release 1"
    (tmp_path / "next").symlink_to(tmp_path / "releases" / "2", target_is_directory=True)
    os.replace(tmp_path / "next", current)
    assert body(get(s, b"/v.txt")) == b"release 2"
    assert get(s, b"/../releases/1/v.txt").status in (400, 404)


# -- conditional requests -----------------------------------------------------------------------


def test_304_by_etag(site: Path) -> None:
    s = StaticSite(site)
    etag = hdr(get(s, b"/css/site.css"), b"etag")
    assert etag is not None
    r = get(s, b"/css/site.css", [(b"if-none-match", etag)])
    assert r.status == 304 and r.body is None and r.source == "css/site.css"
    assert hdr(r, b"etag") == etag
    assert hdr(r, b"content-length") is None
    assert get(s, b"/css/site.css", [(b"if-none-match", b'"nope", ' + etag)]).status == 304
    assert get(s, b"/css/site.css", [(b"if-none-match", b'"nope"')]).status == 200


def test_304_by_date(site: Path) -> None:
    s = StaticSite(site)
    lm = hdr(get(s, b"/digits.txt"), b"last-modified")
    assert lm is not None
    assert get(s, b"/digits.txt", [(b"if-modified-since", lm)]).status == 304
    assert get(s, b"/digits.txt", [(b"if-modified-since", http_date(0))]).status == 200


def test_if_none_match_wins_over_if_modified_since(site: Path) -> None:
    s = StaticSite(site)
    lm = hdr(get(s, b"/digits.txt"), b"last-modified")
    assert lm is not None
    r = get(s, b"/digits.txt", [(b"if-none-match", b'"stale"'), (b"if-modified-since", lm)])
    assert r.status == 200 and body(r) == b"0123456789"


def test_412(site: Path) -> None:
    s = StaticSite(site)
    etag = hdr(get(s, b"/digits.txt"), b"etag")
    assert etag is not None
    assert get(s, b"/digits.txt", [(b"if-match", b'"other"')]).status == 412
    assert get(s, b"/digits.txt", [(b"if-match", etag)]).status == 200
    assert get(s, b"/digits.txt", [(b"if-unmodified-since", http_date(0))]).status == 412


# -- ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "content", "content_range"), [
    (b"bytes=0-3", b"0123", b"bytes 0-3/10"),
    (b"bytes=7-", b"789", b"bytes 7-9/10"),
    (b"bytes=-2", b"89", b"bytes 8-9/10"),
    (b"bytes=5-100", b"56789", b"bytes 5-9/10"),
])
def test_206(site: Path, spec: bytes, content: bytes, content_range: bytes) -> None:
    r = get(StaticSite(site), b"/digits.txt", [(b"range", spec)])
    assert r.status == 206
    assert body(r) == content
    assert hdr(r, b"content-range") == content_range
    assert hdr(r, b"content-length") == str(len(content)).encode()
    assert hdr(r, b"content-type") == b"text/plain; charset=utf-8"


def test_416(site: Path) -> None:
    r = get(StaticSite(site), b"/digits.txt", [(b"range", b"bytes=10-")])
    assert r.status == 416 and hdr(r, b"content-range") == b"bytes */10" and body(r) == b""


@pytest.mark.parametrize("spec", [b"bytes=0-1,4-5", b"bytes=oops", b"lines=1-2"])
def test_multiple_or_malformed_ranges_serve_200(site: Path, spec: bytes) -> None:
    r = get(StaticSite(site), b"/digits.txt", [(b"range", spec)])
    assert r.status == 200 and body(r) == b"0123456789"


def test_if_range(site: Path) -> None:
    s = StaticSite(site)
    first = get(s, b"/digits.txt")
    etag, lm = hdr(first, b"etag"), hdr(first, b"last-modified")
    assert etag is not None and lm is not None
    assert get(s, b"/digits.txt", [(b"range", b"bytes=0-1"), (b"if-range", etag)]).status == 206
    assert get(s, b"/digits.txt", [(b"range", b"bytes=0-1"), (b"if-range", lm)]).status == 206
    stale = get(s, b"/digits.txt", [(b"range", b"bytes=0-1"), (b"if-range", b'"old"')])
    assert stale.status == 200 and body(stale) == b"0123456789"


def test_range_ignored_for_head(site: Path) -> None:
    r = get(StaticSite(site), b"/digits.txt", [(b"range", b"bytes=0-1")], method=b"HEAD")
    assert r.status == 200 and r.body is None


# -- precompressed siblings ---------------------------------------------------------------------


@pytest.fixture
def compressed(site: Path) -> Path:
    (site / "css" / "site.css.br").write_bytes(b"BROTLI-BYTES")
    (site / "css" / "site.css.gz").write_bytes(gzip.compress(CSS))
    return site


@pytest.mark.parametrize(("accept", "encoding"), [
    (b"gzip, deflate, br", b"br"),
    (b"br", b"br"),
    (b"gzip", b"gzip"),
    (b"x-gzip", b"gzip"),
    (b"br;q=0, gzip", b"gzip"),
    (b"gzip;q=1.0, br;q=0.5", b"gzip"),
    (b"*", b"br"),
    (b"*;q=0.5, br;q=0", b"gzip"),
    (b"br;q=0, gzip;q=0", None),
    (b"deflate", None),
    (b"identity", None),
    (b"BR;Q=0.9", b"br"),
])
def test_encoding_selection(compressed: Path, accept: bytes, encoding: bytes | None) -> None:
    s = StaticSite(compressed)
    r = get(s, b"/css/site.css", [(b"accept-encoding", accept)])
    assert r.status == 200
    assert hdr(r, b"content-encoding") == encoding
    assert hdr(r, b"vary") == b"accept-encoding"
    assert hdr(r, b"content-type") == b"text/css; charset=utf-8"
    expected = {b"br": b"BROTLI-BYTES", None: CSS}.get(encoding)
    if encoding == b"gzip":
        assert gzip.decompress(body(r)) == CSS
    else:
        assert body(r) == expected
    assert hdr(r, b"content-length") == str(len(body(r))).encode()


def test_variants_have_distinct_etags_and_vary(compressed: Path) -> None:
    s = StaticSite(compressed)
    plain = get(s, b"/css/site.css")
    br = get(s, b"/css/site.css", [(b"accept-encoding", b"br")])
    gz = get(s, b"/css/site.css", [(b"accept-encoding", b"gzip")])
    assert hdr(plain, b"vary") == b"accept-encoding"
    tags = {hdr(plain, b"etag"), hdr(br, b"etag"), hdr(gz, b"etag")}
    assert len(tags) == 3
    br_tag = hdr(br, b"etag")
    assert br_tag is not None and br_tag.endswith(b'-br"')
    # A 304 answers only when the tag of the selected variant matches.
    r = get(s, b"/css/site.css", [(b"accept-encoding", b"br"), (b"if-none-match", br_tag)])
    assert r.status == 304 and hdr(r, b"vary") == b"accept-encoding"
    assert get(s, b"/css/site.css", [(b"accept-encoding", b"gzip"), (b"if-none-match", br_tag)]).status == 200


def test_range_applies_to_encoded_bytes(compressed: Path) -> None:
    r = get(StaticSite(compressed), b"/css/site.css", [(b"accept-encoding", b"br"), (b"range", b"bytes=0-5")])
    assert r.status == 206 and body(r) == b"BROTLI"
    assert hdr(r, b"content-range") == b"bytes 0-5/12"
    assert hdr(r, b"content-encoding") == b"br"


def test_sibling_added_later_is_noticed(site: Path) -> None:
    s = StaticSite(site, revalidate_after=0)
    assert hdr(get(s, b"/css/site.css", [(b"accept-encoding", b"br")]), b"content-encoding") is None
    (site / "css" / "site.css.br").write_bytes(b"BR")
    r = get(s, b"/css/site.css", [(b"accept-encoding", b"br")])
    assert hdr(r, b"content-encoding") == b"br" and body(r) == b"BR"


# -- cache freshness ----------------------------------------------------------------------------


def bump_mtime(p: Path) -> None:
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_changed_file_noticed_with_revalidate_zero(site: Path) -> None:
    s = StaticSite(site, revalidate_after=0)
    first = get(s, b"/digits.txt")
    p = site / "digits.txt"
    p.write_bytes(b"abcdefghij")  # same size: only mtime tells the difference
    bump_mtime(p)
    second = get(s, b"/digits.txt")
    assert body(second) == b"abcdefghij"
    assert hdr(second, b"etag") != hdr(first, b"etag")
    p.unlink()
    assert get(s, b"/digits.txt").status == 404
    p.write_bytes(b"back")
    assert body(get(s, b"/digits.txt")) == b"back"


def test_cached_within_interval_until_invalidated(site: Path) -> None:
    s = StaticSite(site, revalidate_after=3600)
    assert body(get(s, b"/digits.txt")) == b"0123456789"
    p = site / "digits.txt"
    p.write_bytes(b"changed!")
    bump_mtime(p)
    assert body(get(s, b"/digits.txt")) == b"0123456789"  # still within the interval
    s.invalidate(p)
    assert body(get(s, b"/digits.txt")) == b"changed!"
    # Negative answers are cached too, and dropped by invalidate().
    assert get(s, b"/new.txt").status == 404
    (site / "new.txt").write_bytes(b"new")
    assert get(s, b"/new.txt").status == 404
    s.invalidate("new.txt")
    assert body(get(s, b"/new.txt")) == b"new"
    p.write_bytes(b"again")
    bump_mtime(p)
    s.invalidate()
    assert body(get(s, b"/digits.txt")) == b"again"


def test_entry_for_push_layer(compressed: Path) -> None:
    s = StaticSite(compressed)
    e = s.entry("/css/site.css")
    assert e is not None
    assert e.size == len(CSS) and e.content_type == b"text/css; charset=utf-8"
    assert e.rel_path == "css/site.css"
    assert e.etag == hdr(get(s, b"/css/site.css"), b"etag")
    assert {v.encoding for v in e.variants} == {b"br", b"gzip"}
    index = s.entry("/docs/")
    assert index is not None and index.rel_path == "docs/index.html"
    assert s.entry("/docs") is None
    assert s.entry("/missing.js") is None
    assert s.entry("/.env") is None
    assert s.entry("/café.txt") is not None


# -- large files --------------------------------------------------------------------------------


def test_large_file_is_streamed(site: Path) -> None:
    data = bytes(range(256)) * 1000  # 256 000 bytes
    (site / "big.bin").write_bytes(data)
    s = StaticSite(site, small_file_limit=1024)
    r = get(s, b"/big.bin")
    assert r.status == 200
    assert not isinstance(r.body, bytes) and isinstance(r.body, Iterator)
    chunks = list(r.body)
    assert all(len(c) <= CHUNK_SIZE for c in chunks) and len(chunks) >= 4
    assert b"".join(chunks) == data
    assert hdr(r, b"content-length") == b"256000"
    assert hdr(r, b"content-type") == b"application/octet-stream"

    part = get(s, b"/big.bin", [(b"range", b"bytes=100000-200001")])
    assert part.status == 206 and not isinstance(part.body, bytes)
    assert body(part) == data[100000:200002]

    head = get(s, b"/big.bin", method=b"HEAD")
    assert head.body is None and hdr(head, b"content-length") == b"256000"


def test_file_chunks_close_early(site: Path) -> None:
    (site / "big.bin").write_bytes(b"x" * (3 * CHUNK_SIZE))
    chunks = FileChunks(str(site / "big.bin"))
    assert next(chunks) == b"x" * CHUNK_SIZE
    chunks.close()
    assert list(chunks) == []


def test_file_chunks_of_a_file_cut_short_fail(site: Path) -> None:
    path = site / "big.bin"
    path.write_bytes(b"x" * (3 * CHUNK_SIZE))
    chunks = FileChunks(str(path), 10)
    assert next(chunks) == b"x" * CHUNK_SIZE
    os.truncate(path, CHUNK_SIZE + 100)
    assert next(chunks) == b"x" * 90  # what is left of it after offset 10 + CHUNK_SIZE
    with pytest.raises(FileChanged, match=rf"big\.bin ended at byte {CHUNK_SIZE + 100} of {3 * CHUNK_SIZE}: "
                                          r"it changed while being sent \(deploy by renaming files into place\)"):
        next(chunks)
    assert list(chunks) == []  # and closed


def test_large_file_vanished_before_open_is_404(site: Path) -> None:
    p = site / "big.bin"
    p.write_bytes(b"y" * 5000)
    s = StaticSite(site, small_file_limit=100, revalidate_after=3600)
    assert get(s, b"/big.bin").status == 200
    p.unlink()
    assert get(s, b"/big.bin").status == 404


# -- rendered pages -----------------------------------------------------------------------------


def test_rendered_pages(site: Path) -> None:
    seen: list[tuple[str, RenderRequest]] = []

    def render(rel: str, req: RenderRequest) -> bytes:
        seen.append((rel, req))
        return b"<p>" + rel.encode() + b" " + req.query + b"</p>"

    s = StaticSite(site, render_page=render)
    r = get(s, b"/docs/?q=1", [(b"user-agent", b"t")])
    assert r.status == 200 and body(r) == b"<p>docs/index.html q=1</p>" and r.source == "docs/index.html"
    assert seen[-1] == ("docs/index.html", RenderRequest("/docs/", b"q=1", [(b"user-agent", b"t")]))
    assert hdr(r, b"content-type") == b"text/html; charset=utf-8"
    assert hdr(r, b"content-length") == str(len(body(r))).encode()
    assert hdr(r, b"accept-ranges") is None and hdr(r, b"last-modified") is None
    etag = hdr(r, b"etag")
    assert etag is not None
    again = get(s, b"/docs/?q=1", [(b"if-none-match", etag)])
    assert again.status == 304 and again.body is None
    other = get(s, b"/docs/?q=2", [(b"if-none-match", etag)])  # different output, different tag
    assert other.status == 200 and hdr(other, b"etag") != etag
    # Non-HTML files are still plain files.
    assert body(get(s, b"/css/site.css")) == CSS
    head = get(s, b"/", method=b"HEAD")
    assert head.body is None and hdr(head, b"content-length") == str(len(b"<p>index.html </p>")).encode()


def test_render_errors_propagate(site: Path) -> None:
    def render(rel: str, req: RenderRequest) -> bytes:
        raise RuntimeError("template broke")

    with pytest.raises(RuntimeError, match="template broke"):
        get(StaticSite(site, render_page=render), b"/")


def test_html_without_renderer_is_a_plain_file(site: Path) -> None:
    (site / "index.html.br").write_bytes(b"BR-HTML")
    r = get(StaticSite(site), b"/", [(b"accept-encoding", b"br")])
    assert body(r) == b"BR-HTML" and hdr(r, b"content-encoding") == b"br"
    assert hdr(r, b"last-modified") is not None


def test_missing_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        StaticSite(tmp_path / "nope")


def test_redirect_never_names_another_host(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_text("docs")
    site = StaticSite(tmp_path)
    r = site.serve(b"GET", b"//docs", [])
    assert r.status == 301 and dict(r.headers)[b"location"] == b"/docs/"


def test_a_file_that_becomes_private_is_no_longer_served(site: Path) -> None:
    # Dev mode: a layout is requested as a file, then a page starts to extend it.
    (site / "layout.html").write_text("{% block b %}{% endblock %}")
    private = PrivateFiles()
    s = StaticSite(site, private=private, revalidate_after=3600)
    assert get(s, b"/layout.html").status == 200
    private.add("layout.html")
    assert get(s, b"/layout.html").status == 404
