"""``pushserve export``: the ``_headers`` file read back against the manifest, byte-identical
output on a second run, the refusals, and one warning per thing that does not export."""

from __future__ import annotations

import json
from pathlib import Path

from pushserve.export.headers import parse
from tests.support.serverproc import SITE_EXAMPLE, Certs, run_cli


def export(certs: Certs, site: Path, out: Path, *args: str) -> tuple[int, list[str], str]:
    result = run_cli(certs, "export", str(site), str(out), *args)
    return result.returncode, result.stdout.splitlines(), result.stderr


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def link_values(resources: dict[str, dict[str, object]]) -> list[str]:
    return [f"<{path}>; rel=modulepreload" if spec.get("module") else
            f"<{path}>; rel=preload; as={spec['type']}" + ("; crossorigin" if spec.get("crossorigin") else "")
            for path, spec in resources.items()]


def test_headers_file_says_what_the_manifest_says(certs: Certs, tmp_path: Path) -> None:
    code, lines, err = export(certs, SITE_EXAMPLE, tmp_path / "out", "--format", "headers")
    assert code == 0, err
    assert [line.split(":")[0] for line in lines if not line.startswith("warning:")] == ["headers"]
    blocks = parse((tmp_path / "out" / "public" / "_headers").read_text())
    manifest = json.loads(run_cli(certs, "manifest", str(SITE_EXAMPLE)).stdout)
    assert manifest  # pages with resources, so the comparison means something
    for page, resources in manifest.items():
        url = "/" + page.removesuffix("index.html")
        for spelling in {url, "/" + page}:
            headers = blocks[spelling]
            assert [v for k, v in headers if k == "Link"] == link_values(resources), spelling
            assert ("Cache-Control", "no-cache") in headers
    assets = {url: h for url, h in blocks.items() if not any(k == "Link" for k, _ in h)}
    assert "/css/site.css" in assets and "/img/hero.png" in assets
    assert assets["/css/site.css"] == [("Cache-Control", "public, max-age=600")]
    assert not any(url.startswith(("/_", "/.")) or "/_" in url for url in blocks)  # nothing private
    assert "/pushserve.toml" not in blocks


def test_export_is_deterministic(certs: Certs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export(certs, SITE_EXAMPLE, out)[0] == 0
    first = tree(out)
    assert export(certs, SITE_EXAMPLE, out, "--force")[0] == 0
    assert tree(out) == first
    # Elsewhere, the same: the snippets do not name the folder of the machine that exported.
    assert export(certs, SITE_EXAMPLE, tmp_path / "other")[0] == 0
    assert tree(tmp_path / "other") == first
    for snippet, line in (("nginx.conf", "root /var/www/example.com/public;   # fill in"),
                          ("Caddyfile", "root * /var/www/example.com/public   # fill in"),
                          ("h2o.conf", "    file.dir: /var/www/example.com/public   # fill in")):
        text = first[snippet].decode()
        assert str(tmp_path) not in text and line in text, snippet
    assert export(certs, SITE_EXAMPLE, out, "--force", "--root", "/srv/site/public")[0] == 0
    assert "\nroot /srv/site/public;\n" in (out / "nginx.conf").read_text()
    assert "\nroot * /srv/site/public\n" in (out / "Caddyfile").read_text()
    assert {"public/css/site.css.br", "public/css/site.css.zst", "public/css/site.css.gz",
            "nginx.conf", "h2o.conf", "Caddyfile", "public/_headers"} <= set(first)


def test_summary_and_warnings(certs: Certs, tmp_path: Path) -> None:
    code, lines, err = export(certs, SITE_EXAMPLE, tmp_path / "out")
    assert code == 0, err
    warnings = [line for line in lines if line.startswith("warning:")]
    assert any("/search is a mounted app" in w for w in warnings)
    assert "warning: 404.html:8 reads request.path: 404.html exported as rendered for its own URL, not the " \
        "missing one" in warnings
    # The layout's navigation makes every folder page depend on its URL: said once, at that line.
    assert "warning: _partials/nav.html:10 reads request.path: 2 pages (features/index.html, index.html) exported " \
        "with the bytes of the folder URL for /…/index.html too" in warnings
    assert len(warnings) == 3
    assert [line.split(":")[0] for line in lines if not line.startswith("warning:")] == [
        "static", "headers", "nginx", "h2o", "caddy"]


def test_header_reading_page_and_hashed_names(certs: Certs, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    # A template page (it extends a layout), which reads a request header.
    (site / "index.html").write_text('{% extends "_layouts/base.html" %}{% block main %}'
                                     '<p>{{ request.headers.get("user-agent", "") }}</p>'
                                     '<script src="/js/app.3f9a1c2e.js"></script><script src="/js/nav.js"></script>'
                                     '{% endblock %}')
    (site / "js" / "app.3f9a1c2e.js").write_text("1")
    (site / "js" / "nav.js").write_text("2")
    (site / ".secret").write_text("no")
    (site / "_layouts").mkdir()
    (site / "_layouts" / "base.html").write_text("<body>{% block main %}{% endblock %}</body>")
    code, lines, err = export(certs, site, tmp_path / "out", "--base-url", "https://shop.example.org")
    assert code == 0, err
    assert [w for w in lines if w.startswith("warning:")] == [
        "warning: index.html:1 reads request headers: 1 page (index.html) exported as rendered for a request "
        "without them"]
    blocks = parse((tmp_path / "out" / "public" / "_headers").read_text())
    assert blocks["/js/app.3f9a1c2e.js"] == [("Cache-Control", "public, max-age=600, immutable")]
    assert blocks["/js/nav.js"] == [("Cache-Control", "public, max-age=600")]
    assert sorted(tree(tmp_path / "out" / "public")) == ["_headers", "index.html", "js/app.3f9a1c2e.js", "js/nav.js"]
    # The snippets: the hashed name immutable, the host from --base-url.
    nginx = (tmp_path / "out" / "nginx.conf").read_text()
    assert 'location = "/js/app.3f9a1c2e.js" { add_header Cache-Control "public, max-age=600, immutable"; }' in nginx
    assert "server_name shop.example.org;" in nginx
    h2o = (tmp_path / "out" / "h2o.conf").read_text()
    assert '"/js/app.3f9a1c2e.js" => {"cache-control" => "public, max-age=600, immutable"}' in h2o
    assert '"shop.example.org:443": !file' in h2o
    caddy = (tmp_path / "out" / "Caddyfile").read_text()
    assert 'path "/js/app.3f9a1c2e.js"' in caddy and "shop.example.org {" in caddy
    # Another format alone, over the export: the files stay.
    code, lines, err = export(certs, site, tmp_path / "out", "--format", "nginx", "--force")
    assert code == 0, err
    assert [line.split(":")[0] for line in lines] == ["warning", "nginx"]
    assert (tmp_path / "out" / "public" / "js" / "nav.js").is_file()


def test_refusals(certs: Certs, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>hi</p>")
    code, lines, err = export(certs, site, site / "out")
    assert (code, lines) == (1, []) and len(err.splitlines()) == 1 and "must not contain" in err
    assert not (site / "out").exists()
    code, _, err = export(certs, site, site)
    assert code == 1 and len(err.splitlines()) == 1
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    code, _, err = export(certs, site, busy)
    assert code == 1 and len(err.splitlines()) == 1 and "--force" in err
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    code, _, err = export(certs, site, busy, "--force")
    assert code == 0, err
    assert (busy / "notes.txt").read_text() == "mine"  # --force replaces only what an export writes
    assert (busy / "public" / "index.html").read_text() == "<p>hi</p>"
    for args in (("--format", "static,apache"), ("--base-url", "ftp://x"), ("--base-url", "https://x.org/docs")):
        code, _, err = export(certs, site, tmp_path / "new", *args)
        assert code == 2 and len(err.splitlines()) == 1, args
    assert not (tmp_path / "new").exists()
    (site / "_base.html").write_text("{% block b %}{% endblock %}")
    # A template page (it extends a layout) that does not compile: pushserve would not start on it,
    # so no export either.  (A plain page with "{% if %}" in it is just served as it is.)
    (site / "broken.html").write_text('{% extends "_base.html" %}{% if %}')
    code, lines, err = export(certs, site, tmp_path / "new")
    assert (code, lines) == (1, []) and len(err.splitlines()) == 1 and "broken.html:1" in err
    assert not (tmp_path / "new").exists()
