"""The command line as a new user meets it: usage mistakes exit 2 in one line, problems of the
machine exit 1; -b/-w; options from pushserve.toml's [serve] table; --log-level; --reload-dir;
`pushserve check`; the startup warnings for a site without index.html and for a push_manifest.json
page that does not exist.  Real pushserve processes throughout."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pushserve import cli
from pushserve.config import BadValue
from pushserve.options import Bind
from tests.integration.test_dev import Events, hello
from tests.support.serverproc import SITE_EXAMPLE, Certs, ServerProcess, run_cli


@pytest.fixture
def site(tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(SITE_EXAMPLE, copy)
    return copy


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def toml(site: Path, text: str) -> None:
    """Add to the site's pushserve.toml: a table at the end, top-level keys at the top."""
    path = site / "pushserve.toml"
    old = path.read_text()
    path.write_text(old + "\n" + text if text.startswith("[") else text + old)


# -- exit codes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,words", [
    (["--push", "bogus"], "--push 'bogus': choose one of auto, hints, off"),
    (["--workers", "x"], "--workers 'x'"),
    (["-w", "-3"], "-w -3: must be 0 (one per core) or more"),
    (["-b", "localhost"], "expected HOST:PORT"),
    (["-b", "::1:8443"], "[::1]:8443"),
    (["--port", "70000"], "--port 70000: must be 0..65535"),
    (["--reload-dir", "."], "--reload-dir: works in dev mode only"),
    (["--log-level", "loud"], "--log-level 'loud': choose one of"),
    (["--mount", "api"], "PREFIX=MODULE:ATTR"),
    (["--compress", "brotli"], "--compress 'brotli': choose from zstd, br, gzip"),
    (["--dev", "--no-dev", "--reload"], "--reload: works in dev mode only"),
])
def test_bad_values_on_the_command_line_exit_2(certs: Certs, args: list[str], words: str) -> None:
    assert words in one_line(run_cli(certs, "site_example", "--cert-dir", str(certs.cert_dir), *args), 2)


@pytest.mark.parametrize("text,words", [
    # The two of issue 26: a wrong coding in [compress], a wrong value at the top level (the rest of
    # the file's mistakes: tests/unit/test_options.py).
    ('[compress]\ncodings = ["zstd", "brotli"]\n', "[compress] codings: 'brotli': choose from zstd, br, gzip"),
    ('push = "yes"\n', "pushserve.toml: push: 'yes': choose one of auto, hints, off"),
    ("[serve]\nworkers = 2\ndev = true\n", "[serve] workers: 2: dev mode runs one worker"),
    ("[serve\n", "pushserve.toml: "),
])
def test_bad_values_in_pushserve_toml_exit_2(certs: Certs, site: Path, text: str, words: str) -> None:
    toml(site, text)
    line = one_line(run_cli(certs, str(site), "--cert-dir", str(certs.cert_dir)), 2)
    assert words in line and "pushserve.toml" in line
    assert " --" not in line and not line.startswith("--"), "names a flag the user never typed"


def test_a_bad_mount_in_pushserve_toml_exit_2(certs: Certs, site: Path) -> None:
    path = site / "pushserve.toml"
    path.write_text(path.read_text().replace('"/search" = ', '"search" = '))
    line = one_line(run_cli(certs, str(site), "--cert-dir", str(certs.cert_dir)), 2)
    assert "pushserve.toml: [mounts] 'search': prefix 'search' must be a path like /api" in line


def test_problems_of_the_machine_exit_1(certs: Certs, tmp_path: Path) -> None:
    assert "does not exist" in one_line(run_cli(certs, str(tmp_path / "missing")), 1)
    line = one_line(run_cli(certs, "site_example", "--cert", str(tmp_path / "none.pem"), "--port", "0"), 1)
    assert "none.pem" in line
    assert "no such folder" in one_line(run_cli(certs, "site_example", "--dev", "--reload-dir",
                                                str(tmp_path / "nope"), "--cert-dir", str(certs.cert_dir)), 1)


# -- -b / -w and pushserve.toml ------------------------------------------------------------------------

def _banner(srv: ServerProcess) -> str:
    return srv.wait_for(r"serving .* at https://\S+ \((?:h3, )?h2, http/1.1; push: (\w+); (\d+) workers?").group(0)


def test_bind_and_workers_short_options(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server("-b", "127.0.0.1:0", "-w", "2")
    assert "2 workers" in _banner(srv)
    with httpx.Client(verify=srv.certs.client_context(), http2=True) as c:
        assert c.get(srv.url).status_code == 200


def test_options_from_the_serve_table_and_the_command_line_wins(make_server: Callable[..., ServerProcess],
                                                                site: Path, certs: Certs) -> None:
    toml(site, '[serve]\nworkers = 2\npush = "hints"\naccess-log = false\npush-budget = 1000\n')
    banner = _banner(make_server(site=site))
    assert "push: hints; 2 workers" in banner
    srv = make_server("-w", "1", "--push", "off", site=site)
    assert _banner(srv).endswith("push: off; 1 worker")
    with httpx.Client(verify=certs.client_context(), http2=True) as c:
        assert c.get(srv.url).status_code == 200
    srv.stop()
    assert '"GET / ' not in srv.output  # access-log = false came from the file


def test_dev_takes_the_next_free_port_and_says_which(make_server: Callable[..., ServerProcess],
                                                     certs: Certs) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # Without --dev a busy port is a problem of the machine: one line, exit 1.
        taken = run_cli(certs, "site_example", "--cert-dir", str(certs.cert_dir), "--port", str(port))
        assert f"port {port} on 127.0.0.1 is already in use" in one_line(taken, 1)
        srv = make_server("--dev", "--port", str(port))
        moved = int(srv.wait_for(rf"port {port} is in use: dev mode serves on (\d+) instead").group(1))
        assert srv.port == moved != port
        srv.wait_for(rf"dev mode: .* https://127\.0\.0\.1:{moved}/_pushserve/$")
        with httpx.Client(verify=certs.client_context(), http2=True) as c:
            assert c.get(srv.url).status_code == 200


@pytest.mark.parametrize("level", ["warning", "error"])
def test_the_url_is_told_whatever_the_log_level(make_server: Callable[..., ServerProcess], level: str) -> None:
    srv = make_server("--log-level", level)  # --port 0: the line is the only way to learn the port
    assert srv.port > 0 and "site: " not in srv.output


def test_log_level_sets_the_logger(site: Path) -> None:
    cli.parse_serve_args([str(site), "--log-level", "warning"])
    assert logging.getLogger("pushserve").level == logging.WARNING
    toml(site, '[serve]\nlog-level = "error"\n')
    cli.parse_serve_args([str(site)])
    assert logging.getLogger("pushserve").level == logging.ERROR
    cli.setup_logging()


def test_serve_table_paths_are_relative_to_the_site(site: Path) -> None:
    (site / "extra").mkdir()
    toml(site, '[serve]\ndev = true\nreload-dir = ["extra"]\nbind = "127.0.0.1:9999"\n')
    config = cli.parse_serve_args([str(site)])
    assert config.reload_dirs == (site / "extra",) and config.dev
    assert (config.host, config.port) == ("127.0.0.1", 9999)
    bind = Bind()
    with pytest.raises(BadValue):
        bind.text("[::1]")
    assert bind.text("[::1]:8443") == ("::1", 8443) and bind.text(":8443") == ("127.0.0.1", 8443)


def test_reload_dir_change_reloads_the_page(make_server: Callable[..., ServerProcess], site: Path,
                                            tmp_path: Path) -> None:
    outside = tmp_path / "content"
    outside.mkdir()
    srv = make_server("--dev", "--reload-dir", str(outside), site=site)
    events = Events(srv)
    try:
        hello(events)
        (outside / "post.md").write_text("# new post\n")
        change = events.next_change()
    finally:
        events.close()
    assert change["kind"] == "reload" and change["paths"][0].endswith("/content/post.md")


# -- pushserve check -------------------------------------------------------------------------------

def test_check_passes_site_example(certs: Certs) -> None:
    r = run_cli(certs, "check", "site_example", "--cert-dir", str(certs.cert_dir))
    assert r.returncode == 0, r.stderr
    assert "push manifest: 2 pages" in r.stdout and "certificate: " in r.stdout
    assert "mounts: /search=_app.search:app import" in r.stdout
    assert r.stdout.rstrip().endswith("site_example is OK")


def test_check_lists_every_problem_and_exits_1(certs: Certs, site: Path) -> None:
    (site / "_layouts").mkdir(exist_ok=True)
    (site / "_layouts" / "base.html").write_text("<body>{% block main %}{% endblock %}</body>\n")
    # A template page (it extends a layout): in the default "auto" mode only those are compiled.
    (site / "broken.html").write_text('{% extends "_layouts/base.html" %}\n{% block main %}{% if %}{% endblock %}\n')
    (site / "push_manifest.json").write_text("{not json")
    r = run_cli(certs, "check", str(site), "--cert-dir", str(certs.cert_dir), "--mount", "/api=no_such_mod:app")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "broken.html:2" in r.stderr and "push_manifest.json:1" in r.stderr and "no_such_mod" in r.stderr
    assert "3 problems" in r.stderr
    # Its usage mistakes are usage mistakes.
    assert "--push 'x': choose one of" in one_line(run_cli(certs, "check", str(site), "--push", "x"), 2)
    garbage = site / "garbage.pem"
    garbage.write_text("not a certificate\n")
    (site / "broken.html").unlink()
    (site / "push_manifest.json").unlink()
    r = run_cli(certs, "check", str(site), "--cert", str(garbage))
    assert r.returncode == 1 and "garbage.pem" in r.stderr and "1 problem" in r.stderr


def test_check_names_every_broken_link_and_exits_1(certs: Certs, site: Path) -> None:
    """A stylesheet and a font preload missing from the layout (every page carries them), an
    @import of a missing file in a stylesheet, a link to a private file in one page: each named
    once, where it is written, with why."""
    layout = site / "_layouts" / "base.html"
    text = layout.read_text()
    layout.write_text(text.replace('  <link rel="stylesheet" href="/css/site.css">\n',
                                   '  <link rel="stylesheet" href="/css/site.css">\n'
                                   '  <link rel="stylesheet" href="../css/missing.css">\n'
                                   '  <link rel="preload" href="/fonts/gone.woff2" as="font" crossorigin>\n'))
    line = text[:text.index('href="/css/site.css"')].count("\n") + 1
    typography = site / "css" / "typography.css"  # an @import is read before any rule (browsers ignore a later one)
    typography.write_text('@import "nothere.css";\n' + typography.read_text())
    features = site / "features" / "index.html"
    private_script = '{% block head %}<script src="/_app/search.py"></script>'
    features.write_text(features.read_text().replace("{% block head %}", private_script, 1))
    r = run_cli(certs, "check", str(site), "--cert-dir", str(certs.cert_dir))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    problems = [x for x in r.stderr.splitlines() if "broken link" in x]
    both = "(on features/index.html, index.html)"
    typography_line = 1
    assert problems == [
        f"pushserve check: broken link: _layouts/base.html:{line + 1}: /css/missing.css: no such file {both}",
        f"pushserve check: broken link: _layouts/base.html:{line + 2}: /fonts/gone.woff2: no such file {both}",
        f"pushserve check: broken link: css/typography.css:{typography_line}: /css/nothere.css: no such file {both}",
        "pushserve check: broken link: features/index.html:"
        f"{features.read_text().split('/_app/search.py')[0].count(chr(10)) + 1}: /_app/search.py: "
        "a private file (never served)",
    ], r.stderr
    assert r.stderr.rstrip().endswith("4 problems")
    relaxed = run_cli(certs, "check", str(site), "--cert-dir", str(certs.cert_dir), "--broken-links-ok")
    assert relaxed.returncode == 0, relaxed.stderr
    assert relaxed.stdout.count("warning: broken link: ") == 4 and relaxed.stdout.rstrip().endswith("is OK")


# -- startup warnings ------------------------------------------------------------------------------

def test_missing_index_and_manifest_page_are_warned(make_server: Callable[..., ServerProcess], site: Path,
                                                    certs: Certs) -> None:
    (site / "index.html").rename(site / "home.html")
    (site / "push_manifest.json").write_text(
        '{\n  "home.html": {"/css/site.css": {"type": "style"}},\n'
        '  "abuot.html": {"/css/site.css": {"type": "style"}}\n}\n')
    srv = make_server(site=site)
    srv.wait_for(r"warning: .*site has no index\.html: / answers 404")
    srv.wait_for(r"warning: .*push_manifest\.json:3: page 'abuot\.html' is not a page of the site")
    r = run_cli(certs, "check", str(site), "--cert-dir", str(certs.cert_dir))
    assert r.returncode == 0 and "push_manifest.json:3" in r.stdout and "no index.html" in r.stdout


@pytest.fixture(autouse=True)
def _logging_back() -> Iterator[None]:
    yield
    cli.setup_logging()


def test_every_argument_is_described() -> None:
    for parser in (cli._serve_parser(), cli._cert_parser(), cli._manifest_parser()):
        for action in parser._actions:
            assert action.help, f"{parser.prog}: {action.dest} has no help"


def test_cert_prints_a_curl_line_that_runs(certs: Certs) -> None:
    r = run_cli(certs, "cert", "--cert-dir", str(certs.cert_dir))
    [curl] = [line for line in r.stdout.splitlines() if "curl --cacert" in line]
    assert curl.endswith("https://localhost:8443/") and "PORT" not in r.stdout
