"""Config and command-line mistakes end in one ConfigError line, never later in a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.cli import _serve_parser, config_from_args
from pushserve.config import Config, ConfigError, Mount, read_site_toml


def config_for(tmp_path: Path, *args: str) -> Config:
    return config_from_args(_serve_parser().parse_args([str(tmp_path), *args]))


@pytest.mark.parametrize("args,words", [
    (["--header-timeout", "0"], "--header-timeout"),
    (["--idle-timeout", "-5"], "--idle-timeout"),
    (["--graceful-timeout", "nan"], "--graceful-timeout"),
    (["--worker-timeout", "0"], "--worker-timeout"),
    (["--max-body-size", "-1"], "--max-body-size"),
    (["--push-budget", "-1"], "--push-budget"),
    (["--max-age", "-1"], "--max-age"),
    (["--port", "70000"], "--port"),
    (["--workers", "many"], "--workers"),
    (["--key", "k.pem"], "--key needs --cert"),
    (["--reload"], "--reload works with --dev"),
    (["--dev", "--workers", "2"], "--dev runs one worker"),
    (["--mount", "api=app:app"], "mount prefix"),
    (["--mount", "/api"], "PREFIX=MODULE:ATTR"),
    (["--mount", "/api=not a module"], "not MODULE:ATTR"),
    (["--mount", "/a=m:a", "--mount", "/a=m:b"], "repeat"),
])
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    with pytest.raises(ConfigError) as e:
        config_for(tmp_path, *args)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_missing_site_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config_for(tmp_path / "nope")


def test_site_toml_unknown_keys_and_mounts(tmp_path: Path) -> None:
    (tmp_path / "pushserve.toml").write_text('[site]\ntitle = "x"\n[mounts]\n"/api" = "app:app"\n')
    site, mounts, settings = read_site_toml(tmp_path)
    assert site == {"title": "x"} and mounts == (Mount("/api", "app:app"),) and settings == {}
    (tmp_path / "pushserve.toml").write_text('[sitee]\ntitle = "x"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        read_site_toml(tmp_path)
    (tmp_path / "pushserve.toml").write_text('[site\n')
    with pytest.raises(ConfigError, match=r"pushserve\.toml"):
        read_site_toml(tmp_path)


def test_defaults(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    assert (config.host, config.port, config.push, config.workers) == ("127.0.0.1", 8443, "auto", 1)
    assert config.limits.header_timeout == 10.0 and config.max_age == 600


def test_site_toml_templates_setting(tmp_path: Path) -> None:
    for text, expected in (('templates = "auto"', "auto"), ("templates = false", False),
                           ("[site]\ntemplates = true", True), ('templates = true\n[site]\ntemplates = true', True)):
        (tmp_path / "pushserve.toml").write_text(text)
        assert read_site_toml(tmp_path)[2]["templates"] == expected, text
    for text in ('templates = "yes"', "templates = 1", 'templates = false\n[site]\ntemplates = true'):
        (tmp_path / "pushserve.toml").write_text(text)
        with pytest.raises(ConfigError, match="templates"):
            read_site_toml(tmp_path)
    assert Config(site=tmp_path).templates == "auto"
