"""--compress / --no-compress / --dictionary-dir and [compress] in pushserve.toml: settings
reach Config, and every mistake is one ConfigError line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.cli import _serve_parser, config_from_args, default_dictionary_dir
from pushserve.config import BEST_LEVELS, Config, ConfigError


def config_for(site: Path, *args: str) -> Config:
    return config_from_args(_serve_parser().parse_args([str(site), *args]))


def test_defaults_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    c = config_for(tmp_path).compress
    assert c.on and c.codings == ("zstd", "br", "gzip") and c.threshold == 512 and c.levels == BEST_LEVELS
    assert c.dictionary_dir == default_dictionary_dir(tmp_path)
    assert str(c.dictionary_dir).startswith(str(tmp_path / "cache" / "pushserve" / "dictionaries"))
    assert default_dictionary_dir(tmp_path) != default_dictionary_dir(tmp_path / "other")
    assert config_for(tmp_path, "--compress", "GZIP, br").compress.codings == ("gzip", "br")
    assert not config_for(tmp_path, "--no-compress").compress.on
    assert config_for(tmp_path, "--dictionary-dir", "/x/y").compress.dictionary_dir == Path("/x/y")


def test_site_toml(tmp_path: Path) -> None:
    (tmp_path / "pushserve.toml").write_text(
        '[compress]\ncodings = ["br"]\nthreshold = 2048\nlevel = { br = 9 }\napps = false\ndictionaries = false\n')
    c = config_for(tmp_path).compress
    assert (c.codings, c.threshold, c.levels["br"], c.levels["zstd"], c.apps, c.dictionaries) == \
        (("br",), 2048, 9, 19, False, False)
    # The command line wins over the file.
    assert config_for(tmp_path, "--compress", "zstd").compress.codings == ("zstd",)


@pytest.mark.parametrize("args,toml,words", [
    (["--compress", "deflate"], "", "--compress 'deflate'"),
    (["--compress", "br,br"], "", "named twice"),
    ([], "[compress]\ncodings = \"br\"\n", "codings must be a list"),
    ([], "[compress]\nthreshold = -1\n", "0 or more bytes"),
    ([], "[compress]\nthreshold = \"big\"\n", "threshold must be a number"),
    ([], "[compress]\nlevel = { br = 12 }\n", "level br = 12: must be 0..11"),
    ([], "[compress]\nlevel = { lz4 = 1 }\n", "unknown coding 'lz4'"),
    ([], "[compress]\nlevel = 5\n", "level must be a table"),
    ([], "[compress]\nlevle = 5\n", "unknown key(s) in [compress]: levle"),
    ([], "[compress]\napps = 1\n", "apps must be true or false"),
    ([], "compress = true\n", "[compress] must be a table"),
])
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], toml: str, words: str) -> None:
    if toml:
        (tmp_path / "pushserve.toml").write_text(toml)
    with pytest.raises(ConfigError) as e:
        config_for(tmp_path, *args)
    assert words in str(e.value) and "\n" not in str(e.value)
