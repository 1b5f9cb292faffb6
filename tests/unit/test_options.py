"""The table of options: the command line and pushserve.toml are two readers of it and give the
same Config for the same setting; defaults are Config's own; the command line wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.cli import _serve_parser, given_options, parse_serve_args
from pushserve.config import BadValue, Compress, Config, Mount
from pushserve.options import OPTIONS, Option, default_dictionary_dir, make_config

# One setting other than the default per option: (command line, the same in pushserve.toml).
SAMPLES: dict[str, tuple[list[str], str]] = {
    "cert": (["--cert", "SITE/c.pem"], '[serve]\ncert = "c.pem"'),
    "key": (["--cert", "SITE/c.pem", "--key", "SITE/k.pem"], '[serve]\ncert = "c.pem"\nkey = "k.pem"'),
    "cert-dir": (["--cert-dir", "SITE/certs"], '[serve]\ncert-dir = "certs"'),
    "host": (["--host", "::1"], '[serve]\nhost = "::1"'),
    "port": (["--port", "0"], "[serve]\nport = 0"),
    "bind": (["-b", "[::1]:9000"], '[serve]\nbind = "[::1]:9000"'),
    "workers": (["-w", "auto"], '[serve]\nworkers = "auto"'),
    "push": (["--push", "hints"], 'push = "hints"'),
    "push-cookie": (["--no-push-cookie"], "[serve]\npush-cookie = false"),
    "templates": (["--no-templates"], "templates = false"),
    "strict-templates": (["--strict-templates"], "[serve]\nstrict-templates = true"),
    "mount": (["--mount", "/api=m:app"], '[mounts]\n"/api" = "m:app"'),
    "app-dir": (["--app-dir", "SITE/apps"], '[serve]\napp-dir = "apps"'),
    "max-age": (["--max-age", "5"], "[serve]\nmax-age = 5"),
    "dev": (["--dev"], "[serve]\ndev = true"),
    "reload": (["--dev", "--reload"], "[serve]\ndev = true\nreload = true"),
    "reload-dir": (["--dev", "--reload-dir", "SITE/extra"], '[serve]\ndev = true\nreload-dir = ["extra"]'),
    "log-level": (["--log-level", "debug"], '[serve]\nlog-level = "debug"'),
    "access-log": (["--no-access-log"], "[serve]\naccess-log = false"),
    "header-timeout": (["--header-timeout", "2.5"], "[serve]\nheader-timeout = 2.5"),
    "idle-timeout": (["--idle-timeout", "7"], "[serve]\nidle-timeout = 7"),
    "graceful-timeout": (["--graceful-timeout", "3"], "[serve]\ngraceful-timeout = 3"),
    "worker-timeout": (["--worker-timeout", "9"], "[serve]\nworker-timeout = 9"),
    "push-budget": (["--push-budget", "1000"], "[serve]\npush-budget = 1000"),
    "max-body-size": (["--max-body-size", "0"], "[serve]\nmax-body-size = 0"),
    "backlog": (["--backlog", "8"], "[serve]\nbacklog = 8"),
    "max-connections": (["--max-connections", "9"], "[serve]\nmax-connections = 9"),
    "max-handshakes": (["--max-handshakes", "3"], "[serve]\nmax-handshakes = 3"),
    "compress": (["--compress", "br,gzip"], '[compress]\ncodings = ["br", "gzip"]'),
    "dictionary-dir": (["--dictionary-dir", "SITE/dict"], '[serve]\ndictionary-dir = "dict"'),
    "hints-http1": (["--hints-http1"], "[serve]\nhints-http1 = true"),
    "follow-symlinks": (["--follow-symlinks"], "[serve]\nfollow-symlinks = true"),
    "http3": (["--no-http3"], "[serve]\nhttp3 = false"),
    "bench-think": (["--bench-think", "200ms"], '[serve]\nbench-think = "200ms"'),
    "expose-worker": (["--expose-worker"], ""),
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    for folder in ("site", "site/extra"):
        (tmp_path / folder).mkdir()
    return tmp_path / "site"


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.flag], ids=lambda o: o.name)
def test_the_command_line_and_the_file_give_the_same_config(site: Path, option: Option) -> None:
    name = option.name
    assert name in SAMPLES, f"--{name}: add a sample setting to SAMPLES"
    args, text = SAMPLES[name]
    from_args = parse_serve_args([str(site), *(a.replace("SITE", str(site)) for a in args)])
    assert from_args != make_config(site), f"--{name}: the sample is the default"
    if text:
        (site / "pushserve.toml").write_text(text + "\n")
        assert make_config(site) == from_args


def test_flags_only_where_a_flag_makes_sense() -> None:
    for option in OPTIONS:
        if not option.flag:  # pushserve.toml only: it must be somewhere in the file
            assert option.where_in_file and not option.short


def test_defaults_are_configs(site: Path) -> None:
    assert make_config(site) == Config(site=site, compress=Compress(dictionary_dir=default_dictionary_dir(site)))
    help_text = " ".join(_serve_parser().format_help().split())
    # Config's defaults, shown as the help says them.
    for words in ("(127.0.0.1)", "port (8443;", "(1; 0 or auto", "revalidated (600)", "(1 MiB)", "(100 MiB)",
                  "(zstd,br,gzip)", "within S seconds (10)"):
        assert words in help_text, words


def test_the_command_line_wins_and_mounts_add_up(site: Path) -> None:
    (site / "pushserve.toml").write_text('push = "off"\n[serve]\nport = 1\ndev = true\n[mounts]\n"/a" = "m:a"\n')
    config = parse_serve_args([str(site), "--port", "2", "--no-dev", "--mount", "/b=m:b"])
    assert (config.push, config.port, config.dev) == ("off", 2, False)
    assert config.mounts == (Mount("/a", "m:a"), Mount("/b", "m:b"))


def test_a_port_typed_wins_over_the_files_bind(site: Path) -> None:
    (site / "pushserve.toml").write_text('[serve]\nbind = "0.0.0.0:9000"\n')
    config = parse_serve_args([str(site), "--port", "9001"])
    assert (config.host, config.port) == ("0.0.0.0", 9001)
    assert parse_serve_args([str(site), "-b", "127.0.0.1:9002", "--port", "9003"]).port == 9002  # -b wins on the line


def test_dev_mode_means_strict_templates_unless_told(site: Path) -> None:
    assert parse_serve_args([str(site), "--dev"]).strict and not parse_serve_args([str(site)]).strict
    assert not parse_serve_args([str(site), "--dev", "--no-strict-templates"]).strict
    assert parse_serve_args([str(site), "--strict-templates"]).strict


def test_nothing_typed_is_nothing_given(site: Path) -> None:
    assert given_options(_serve_parser().parse_args([str(site)])) == {}


@pytest.mark.parametrize("text,words", [
    ("[serve]\nprot = 1\n", "[serve] prot: not an option"),
    ("[serve]\nport = \"80\"\n", "[serve] port: '80': must be a whole number"),
    ("[serve]\nport = 70000\n", "[serve] port: 70000: must be 0..65535"),
    ("[serve]\ndev = \"yes\"\n", "[serve] dev: 'yes': must be true or false"),
    ("[serve]\npush = \"sometimes\"\n", "[serve] push: 'sometimes': choose one of auto, hints, off"),
    ("[serve]\nidle-timeout = -1\n", "[serve] idle-timeout: -1: must be a number of seconds above 0"),
    ("[serve]\nsite = \"elsewhere\"\n", "[serve] site: not an option"),
    ("[serve]\npush_budget = 1\n", "[serve] push_budget: not an option"),  # options are spelt with '-'
    ("[serve]\nreload = true\n", "[serve] reload: works in dev mode only"),
    ("[serve]\nbind = \"localhost\"\n", "[serve] bind: 'localhost': expected HOST:PORT"),
    ("[serve]\nkey = \"k.pem\"\n", "[serve] key: needs a certificate"),
    ("[serve]\nreload-dir = \"x\"\n", "[serve] reload-dir: 'x': must be a list of paths"),
    ('[mounts]\n"api" = "x:y"\n', "[mounts] 'api': prefix 'api' must be a path like /api"),
    ("serve = 3\n", "pushserve.toml: [serve]: must be a table"),
    ("sevre = 3\n", "pushserve.toml: sevre: not a setting"),
    ("templates = false\n[site]\ntemplates = true\n", "[site] templates: also set as templates, to a different"),
])
def test_a_mistake_in_the_file_is_told_at_its_table_and_key(site: Path, text: str, words: str) -> None:
    (site / "pushserve.toml").write_text(text)
    with pytest.raises(BadValue) as e:
        parse_serve_args([str(site)])
    message = str(e.value)
    assert message.startswith(f"{site / 'pushserve.toml'}: ") and words in message, message
    assert "--" not in message and "\n" not in message  # never a flag the user did not type
