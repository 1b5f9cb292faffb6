"""Broken links named where they are written (file and line), each once, with why."""

from __future__ import annotations

import os
from pathlib import Path

from pushserve.site.broken_links import BrokenLink, broken_links, locate, why_broken
from pushserve.site.manifest_store import PushManifest
from pushserve.site.paths import PrivateFiles, SitePaths


def test_each_link_once_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    # (an @import after a rule is ignored by browsers, and so by the scanner: a comment first)
    (tmp_path / "css" / "a.css").write_text("/* theme */\n\n@import url('gone.css');\nbody{}\n")
    for page in ("index.html", "b.html"):
        (tmp_path / page).write_text('<!doctype html>\n<link rel=stylesheet href="css/a.css">\n'
                                     '<script src="/js/missing.js"></script>\n')
    (tmp_path / "c.html").write_text("<style>\n@import '/css/gone.css';\n</style>\n")
    manifest, _ = PushManifest.build(tmp_path)
    assert broken_links(manifest) == [
        BrokenLink("b.html", 3, "/js/missing.js", "no such file", ("b.html",)),
        BrokenLink("c.html", 2, "/css/gone.css", "no such file", ("c.html",)),  # an inline <style>
        BrokenLink("css/a.css", 3, "/css/gone.css", "no such file", ("b.html", "index.html")),
        BrokenLink("index.html", 3, "/js/missing.js", "no such file", ("index.html",)),
    ]
    assert str(broken_links(manifest)[2]) == "css/a.css:3: /css/gone.css: no such file (on b.html, index.html)"
    assert str(broken_links(manifest)[0]) == "b.html:3: /js/missing.js: no such file"


def test_why(tmp_path: Path) -> None:
    outside = tmp_path / "outside.css"
    outside.write_text("")
    root = tmp_path / "site"
    (root / "folder").mkdir(parents=True)
    (root / "_layout.html").write_text("")
    os.symlink(outside, root / "out.css")
    os.symlink(root / "nothing", root / "dangling.css")
    site = SitePaths(root, PrivateFiles(["_layout.html"]))
    assert why_broken(site, "/folder") == "a folder, not a file"
    assert why_broken(site, "/_layout.html") == "a private file (never served)"
    assert why_broken(site, "/out.css") == "a symlink out of the site (never served)"
    assert why_broken(site, "/dangling.css") == "a symlink to nothing"
    assert why_broken(site, "/n%C3%A9.css") == "no such file"
    assert why_broken(site, "/%2e%2e/x") == "not a path the server answers"


def test_locate_looks_in_the_page_then_its_templates(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("{% extends 'base.html' %}\n")
    (tmp_path / "base.html").write_text("<html>\n<head>\n<link href='../img/n%C3%A9.png'>\n")
    site = SitePaths(tmp_path)
    assert locate(site, ["page.html", "base.html"], "/img/n%C3%A9.png") == ("base.html", 3)
    assert locate(site, ["page.html", "base.html"], "/nowhere.js") == ("page.html", 0)
    assert str(BrokenLink("page.html", 0, "/nowhere.js", "no such file", ("page.html",))) == \
        "page.html: /nowhere.js: no such file"
