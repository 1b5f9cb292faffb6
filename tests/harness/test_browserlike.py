"""The browser-like load's docroot and plan (benchmarks/browserlike.py): 50 paths that exist, each
with a destination and its headers, eight connections per load.  No server or load is run here."""

from __future__ import annotations

from pathlib import Path

from benchmarks import browserlike


def test_fifty_paths_that_exist_each_with_its_destination(tmp_path: Path) -> None:
    root, paths = browserlike.make_docroot(tmp_path)
    assert len(paths) == len(set(paths)) == 50
    for path in paths:
        file = root / path.lstrip("/")
        assert (file / "index.html").is_file() if path.endswith("/") else file.is_file(), path
    kinds = {browserlike.destination_of(p).name for p in paths}
    assert kinds == {d.name for d in browserlike.DESTINATIONS}
    sizes = [(root / p.lstrip("/")).stat().st_size for p in paths if not p.endswith("/")]
    assert min(sizes) < 500 and max(sizes) >= 100_000  # small and large answers in one mix


def test_each_load_is_eight_connections_with_the_browser_headers(tmp_path: Path) -> None:
    _root, paths = browserlike.make_docroot(tmp_path)
    for kind in ("tiny", "identity", "compressed"):
        groups = browserlike.groups(kind, "https://127.0.0.1:1", paths, tmp_path)
        assert sum(g.connections for g in groups) == 8
        urls = [u for g in groups for u in g.urls.read_text().split()]
        if kind == "tiny":
            assert set(urls) == {"https://127.0.0.1:1/tiny.txt"} and all(not g.headers for g in groups)
            continue
        assert sorted(urls) == sorted("https://127.0.0.1:1" + p for p in paths)
        for g in groups:
            names = {h.split(":", 1)[0] for h in g.headers}
            assert {"user-agent", "accept", "accept-language", "accept-encoding", "sec-fetch-dest",
                    "sec-fetch-mode", "priority", "cookie"} <= names
            coding = next(h for h in g.headers if h.startswith("accept-encoding"))
            assert ("zstd" in coding) == (kind == "compressed")
