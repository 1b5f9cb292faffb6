"""--compress / --no-compress / --dictionary-dir and [compress] in pushserve.toml: settings
reach Config, and every mistake is one ConfigError line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushserve.cli import parse_serve_args
from pushserve.config import BEST_LEVELS, BadValue, Config
from pushserve.options import default_dictionary_dir


def config_for(site: Path, *args: str) -> Config:
    return parse_serve_args([str(site), *args])


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
    ([], "[compress]\ncodings = 3\n", "[compress] codings: 3: must be a list like"),
    ([], "[compress]\ncodings = [\"zstd\", \"brotli\"]\n", "[compress] codings: 'brotli': choose from zstd, br, gzip"),
    ([], "[compress]\nthreshold = -1\n", "[compress] threshold: -1: must be 0 or more bytes"),
    ([], "[compress]\nthreshold = \"big\"\n", "[compress] threshold: 'big': must be a whole number"),
    ([], "[compress]\nlevel = { br = 12 }\n", "[compress] level: br = 12: must be 0..11"),
    ([], "[compress]\nlevel = { lz4 = 1 }\n", "[compress] level: lz4 is not a coding"),
    ([], "[compress]\nlevel = 5\n", "[compress] level: 5: must be a table"),
    ([], "[compress]\nlevle = 5\n", "[compress] levle: not an option (known: apps, codings, dictionaries, level, "),
    ([], "[compress]\napps = 1\n", "[compress] apps: 1: must be true or false"),
    ([], "compress = true\n", "pushserve.toml: [compress]: must be a table"),
    ([], "[serve]\ncompress = \"zstd\"\n[compress]\ncodings = [\"br\"]\n",
     "[compress] codings: also set as [serve] compress, to a different value"),
])
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], toml: str, words: str) -> None:
    if toml:
        (tmp_path / "pushserve.toml").write_text(toml)
    with pytest.raises(BadValue) as e:
        config_for(tmp_path, *args)
    assert words in str(e.value) and "\n" not in str(e.value)
