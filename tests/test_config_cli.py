"""`lmbridge config`: the CLI's writer of config.toml goes through the store
(comments kept, per-key errors, dated backups, restore), and `lmbridge
integrate --write` names the backups it keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmbridge import cli, config

USER_FILE = """\
# my settings
[server]
port = 4680  # the proxy's port

[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "http://127.0.0.1:1234"
"""


@pytest.fixture
def config_file(lmbridge_home: Path) -> Path:
    path = lmbridge_home / "config.toml"
    path.write_text(USER_FILE)
    return path


def test_set_changes_one_key_and_keeps_the_rest(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["config", "set", "server.port", "4681"]) == 0
    out = capsys.readouterr().out
    assert "saved" in out and "server.port" in out and "backups/config-" in out
    assert config_file.read_text() == USER_FILE.replace("4680 ", "4681 ")
    assert cli.main(["config", "get", "server.port"]) == 0
    assert capsys.readouterr().out == "4681\n"

    # An entry of a list: created whole, then one of its keys changed.
    assert cli.main(["config", "set", "route[claude-*]", '{ upstream = "local" }']) == 0
    assert cli.main(["config", "set", "route[claude-*].target", "qwen3"]) == 0
    saved = config.load(config_file)
    assert [(r.model, r.upstream, r.target) for r in saved.route] == [
        ("claude-*", "local", "qwen3")
    ]
    text = config_file.read_text()
    assert text.startswith(USER_FILE.replace("4680 ", "4681 "))
    assert "[[route]]" in text
    assert cli.main(["config", "unset", "route[claude-*].target"]) == 0
    assert config.load(config_file).route[0].target is None


def test_bad_values_are_refused_with_the_key_and_nothing_is_written(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["config", "set", "server.port", "1234"]) == 1
    err = capsys.readouterr().err
    assert "server.port: 1234 is the port of upstream 'local'" in err
    assert cli.main(["config", "set", "server.port", "many"]) == 1
    assert "server.port: must be a whole number, not text" in capsys.readouterr().err
    assert cli.main(["config", "set", "route[x].target", "y"]) == 1
    assert "there is no route[x]" in capsys.readouterr().err
    assert cli.main(["config", "get", "server.nothing"]) == 1
    assert "no such setting" in capsys.readouterr().err
    assert config_file.read_text() == USER_FILE
    assert not (config_file.parent / "backups").exists()


def test_backups_are_listed_and_restored(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for port in ("4681", "4682"):
        assert cli.main(["config", "set", "server.port", port]) == 0
    capsys.readouterr()
    assert cli.main(["config", "backups"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].lstrip().startswith("1  ")
    assert cli.main(["config", "restore", "2"]) == 0  # the user's original
    assert config_file.read_text() == USER_FILE
    assert cli.main(["config", "restore", "9"]) == 1
    capsys.readouterr()
    assert cli.main(["config", "backups"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3  # the restore's own copy
