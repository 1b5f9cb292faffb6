"""Fuzz path resolution (site/paths.py) on a real site folder with symlinks that point out of it:
``decode_path``, ``segments`` and ``SitePaths.resolve`` must never raise anything but BadPath
(``resolve`` nothing at all), never hand back a private segment or ``..``, and never resolve to
a file outside the root — whatever the bytes, encodings and symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushserve.site.paths import BadPath, SitePaths, decode_path, is_private, segments
from tests.fuzz.profile import FUZZ


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> SitePaths:
    """site/ holds ordinary files, private ones, and symlinks: to a file and a folder outside
    the site, to a file inside, and a dangling one.  secret/ next to it must never be reached."""
    base = tmp_path_factory.mktemp("paths")
    secret = base / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("outside")
    root = base / "site"
    for rel in ("index.html", "a/b.css", "a/ü n.js", "_layouts/base.html", ".env", "a/.git/config", "%41.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    os.symlink(secret / "key.txt", root / "out.txt")
    os.symlink(secret, root / "outdir")
    os.symlink(root / "a" / "b.css", root / "in.css")
    os.symlink(root / "missing", root / "dangling")
    os.symlink("../..", root / "a" / "up")
    return SitePaths(root)


SEGMENTS = ["", ".", "..", "a", "b.css", "ü n.js", "index.html", "_layouts", "base.html", ".env", ".git", "config",
            "out.txt", "outdir", "key.txt", "in.css", "dangling", "up", "secret", "site", "%2e%2e", "%2E.", "%2f",
            "%5c", "%00", "%c3%bc n.js", "%C3%BC%20n.js", "%41.txt", "%2541.txt", "%", "%g0", "..%2f", "\\..",
            "..\\..", "a?x=/../..", "#/../", "\x00", "%ff", "%ed%a0%80", "~", "a" * 300]


@st.composite
def url_paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(SEGMENTS) | st.text(max_size=8), max_size=8))
    sep = draw(st.sampled_from(["/", "/", "//", "\\", "/./"]))
    return draw(st.sampled_from(["/", "", "//", "\\"])) + sep.join(parts)


def _decode(raw: bytes) -> str | None:
    try:
        return decode_path(raw)
    except BadPath as exc:
        assert exc.status in (400, 404), exc
        return None


def _check(site: SitePaths, url_path: str) -> None:
    decoded = _decode(url_path.encode("utf-8", "surrogatepass"))
    if decoded is not None:
        assert isinstance(decoded, str)
        try:
            segs = segments(decoded)
        except BadPath as exc:
            assert exc.status in (400, 404), exc
        else:
            assert all(s and s != ".." and not is_private(s) and "/" not in s for s in segs), segs
    found = site.resolve(url_path)
    if found is not None:
        assert isinstance(found, Path) and found.is_file()
        real = os.path.realpath(found)
        assert os.path.commonpath((site.real_root, real)) == site.real_root, (url_path, real)
        assert site.read(url_path) == found.read_bytes()
    else:
        assert not site.exists(url_path)


@FUZZ
@given(url_path=url_paths())
def test_structured_paths(site: SitePaths, url_path: str) -> None:
    _check(site, url_path)


@FUZZ
@given(raw=st.binary(max_size=80))
def test_raw_bytes(site: SitePaths, raw: bytes) -> None:
    decoded = _decode(raw)
    if decoded is not None:
        _check(site, decoded)


def test_the_site_is_what_the_fuzzer_thinks(site: SitePaths) -> None:
    """The fixture's traps are real: inside files resolve, the outside and private ones do not."""
    assert site.resolve("/a/%C3%BC%20n.js") is not None
    assert site.resolve("/in.css") == Path(site.real_root, "a", "b.css")
    # ("/_layouts/base.html" is served here: only template-only files are private, and this site
    # has no templates; see site/paths.py.)
    for refused in ("/out.txt", "/outdir/key.txt", "/.env", "/a/up/secret/key.txt",
                    "/dangling", "/%2e%2e/secret/key.txt"):
        assert site.resolve(refused) is None, refused
