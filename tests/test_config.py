"""Settings: the TOML contract, defaults, overrides and error reporting."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmbridge import config

CONTRACT = b"""
[server]
host = "127.0.0.1"
port = 4680

[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "http://127.0.0.1:1234"
api_key_env = "LOCAL_KEY"

[[route]]
model = "claude-*"
upstream = "local"
target = "qwen/qwen3-coder-30b"
"""


def test_contract_keys_parse() -> None:
    settings = config.parse(CONTRACT)
    assert settings.server.port == 4680
    up = settings.upstream[0]
    assert (up.name, up.kind, up.base_url, up.api_key_env) == (
        "local",
        "lmstudio",
        "http://127.0.0.1:1234",
        "LOCAL_KEY",
    )
    route = settings.route[0]
    assert route.matches("claude-sonnet-4-5")
    assert not route.matches("gpt-4o")
    assert route.target == "qwen/qwen3-coder-30b"


def test_no_file_means_one_lmstudio_upstream(lmbridge_home: Path) -> None:
    settings = config.load()
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == config.DEFAULT_PORT != 1234
    assert [(u.name, u.kind, u.base_url) for u in settings.upstream] == [
        ("local", "lmstudio", "http://127.0.0.1:1234")
    ]
    assert settings.route == []


def test_lmbridge_home_holds_the_config(lmbridge_home: Path) -> None:
    (lmbridge_home / "config.toml").write_bytes(b"[server]\nport = 5005\n")
    assert config.default_config_path() == lmbridge_home / "config.toml"
    assert config.load().server.port == 5005
    assert config.data_dir() == lmbridge_home / "data"


def test_environment_overrides_file(
    lmbridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (lmbridge_home / "config.toml").write_bytes(b"[server]\nport = 5005\n")
    monkeypatch.setenv("LMBRIDGE_PORT", "6006")
    monkeypatch.setenv("LMBRIDGE_HOST", "127.0.0.2")
    settings = config.load()
    assert (settings.server.host, settings.server.port) == ("127.0.0.2", 6006)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (b"[server]\nprt = 1\n", "server: Object contains unknown field `prt`"),
        (b"[server]\nport = 'x'\n", "server.port: Expected `int`, got `str`"),
        (b"[server]\nport = 70000\n", "server.port"),
        (b"colour = 1\n", "unknown field `colour`"),
        (
            b'[[upstream]]\nname = "a"\nkind = "bogus"\nbase_url = "http://x"\n',
            "upstream[0].kind: Invalid enum value 'bogus'",
        ),
        (
            b'[[upstream]]\nname = "a"\nbase_url = "ftp://x"\n',
            "upstream[0].base_url must start with http",
        ),
        (
            b'[[route]]\nmodel = "x"\nupstream = "nope"\n',
            "route[0].upstream 'nope' names no upstream",
        ),
        (b"[server\n", "not valid TOML"),
    ],
)
def test_broken_config_names_key_and_file(text: bytes, needle: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.parse(text, "/etc/x.toml")
    assert str(info.value).startswith("/etc/x.toml: ")
    assert needle in str(info.value)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="no such config file"):
        config.load(tmp_path / "missing.toml")


def test_dump_round_trips() -> None:
    settings = config.parse(CONTRACT)
    assert config.parse(config.dump(settings)) == settings


def test_dump_writes_no_empty_tables_and_arrays_of_tables() -> None:
    settings = config.parse(CONTRACT)
    text = config.dump(settings).decode()
    assert "[[upstream]]" in text and "[[route]]" in text
    assert "upstream = [" not in text and "route = [" not in text
    for table in ("[chat]", "[logging]", "[usage]", "[lmstudio]"):
        assert table not in text
    assert config.parse(text) == settings
    assert config.dump(config.Settings()).decode().count("[") == 2  # the upstream
