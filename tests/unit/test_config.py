"""Config and command-line mistakes end in one ConfigError line, never later in a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.cli import parse_serve_args
from pushserve.config import BadValue, Config, ConfigError, Mount
from pushserve.options import read_site_file


def config_for(tmp_path: Path, *args: str) -> Config:
    return parse_serve_args([str(tmp_path), *args])


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
    (["--key", "k.pem"], "--key: needs a certificate"),
    (["--reload"], "--reload: works in dev mode only"),
    (["--dev", "--workers", "2"], "--workers 2: dev mode runs one worker"),
    (["--mount", "api=app:app"], "--mount 'api=app:app': prefix 'api' must be a path"),
    (["--mount", "/api"], "PREFIX=MODULE:ATTR"),
    (["--mount", "/api=not a module"], "not MODULE:ATTR"),
    (["--mount", "/a=m:a", "--mount", "/a=m:b"], "mounted twice"),
])
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    with pytest.raises(BadValue) as e:
        config_for(tmp_path, *args)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_missing_site_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config_for(tmp_path / "nope")


def test_site_toml_unknown_keys_and_mounts(tmp_path: Path) -> None:
    (tmp_path / "pushserve.toml").write_text('[site]\ntitle = "x"\n[mounts]\n"/api" = "app:app"\n')
    file = read_site_file(tmp_path)
    assert file.site_vars == {"title": "x"} and file.mounts == (Mount("/api", "app:app"),) and file.values == {}
    (tmp_path / "pushserve.toml").write_text('[sitee]\ntitle = "x"\n')
    with pytest.raises(BadValue, match=r"pushserve\.toml: sitee: not a setting"):
        read_site_file(tmp_path)
    (tmp_path / "pushserve.toml").write_text('[site\n')
    with pytest.raises(BadValue, match=r"pushserve\.toml"):
        read_site_file(tmp_path)


def test_defaults(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    assert (config.host, config.port, config.push, config.workers) == ("127.0.0.1", 8443, "auto", 1)
    assert config.limits.header_timeout == 10.0 and config.max_age == 600


def test_site_toml_templates_setting(tmp_path: Path) -> None:
    for text, expected in (('templates = "auto"', "auto"), ("templates = false", False),
                           ("[site]\ntemplates = true", True), ('templates = true\n[site]\ntemplates = true', True)):
        (tmp_path / "pushserve.toml").write_text(text)
        assert read_site_file(tmp_path).values["templates"][0] == expected, text
    for text in ('templates = "yes"', "templates = 1", 'templates = false\n[site]\ntemplates = true'):
        (tmp_path / "pushserve.toml").write_text(text)
        with pytest.raises(BadValue, match="templates"):
            read_site_file(tmp_path)
    assert Config(site=tmp_path).templates == "auto"
