"""Global options (`--config`, `--log-level`) before or after any subcommand.

Each command is run with a broken config file named before and after the
subcommand: it must refuse to start, naming that file, which proves the
file given in either place is the one read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lmbridge.cli import entry

# One argv per command, with what its parser requires.
COMMANDS: dict[str, list[str]] = {
    "serve": ["serve", "--port", "1"],
    "models list": ["models", "list"],
    "models load": ["models", "load", "some/model"],
    "models unload": ["models", "unload", "--all"],
    "models search": ["models", "search", "qwen"],
    "models download": ["models", "download", "some/model"],
    "chats list": ["chats", "list"],
    "chats import": ["chats", "import", "dir"],
    "chats export": ["chats", "export", "name"],
    "azure login": ["azure", "login"],
    "azure status": ["azure", "status"],
    "azure logout": ["azure", "logout"],
    "keys set": ["keys", "set", "up"],
    "keys delete": ["keys", "delete", "up"],
    "integrate": ["integrate"],
    "config path": ["config", "path"],
    "config get": ["config", "get", "server.port"],
    "config set": ["config", "set", "server.port", "4681"],
    "config unset": ["config", "unset", "server.port"],
    "config backups": ["config", "backups"],
    "config restore": ["config", "restore", "1"],
    "install-desktop": ["install-desktop"],
    "uninstall-desktop": ["uninstall-desktop"],
    "autostart": ["autostart", "status"],
    "logs": ["logs"],
    "usage": ["usage", "--days", "3"],
    "launch": ["launch", "claude"],
}


def _leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    leaves: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                below = _leaf_commands(child, f"{prefix}{name} ")
                leaves += below or [f"{prefix}{name}"]
    return leaves


def test_the_table_names_every_command() -> None:
    assert sorted(_leaf_commands(entry.build_parser())) == sorted(COMMANDS)


@pytest.fixture
def broken_config(tmp_path: Path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text("[server]\nprot = 1\n")
    return path


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_read_from_either_place(
    command: str,
    where: str,
    broken_config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = COMMANDS[command]
    option = ["--config", str(broken_config)]
    args = option + argv if where == "before" else argv + option
    assert entry.main(args) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert str(broken_config) in err and "prot" in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_options_after_the_subcommand_win(command: str, tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    parser = entry.build_parser()
    argv = COMMANDS[command]
    given_after = parser.parse_args(
        ["--config", str(first), *argv, "--config", str(second), "--log-level", "INFO"]
    )
    assert (given_after.config, given_after.log_level) == (second, "INFO")
    given_before = parser.parse_args(
        ["--config", str(first), "--log-level", "DEBUG", *argv]
    )
    assert (given_before.config, given_before.log_level) == (first, "DEBUG")
    neither = parser.parse_args(argv)
    assert (neither.config, neither.log_level) == (None, "WARNING")


def test_usage_with_config_after_the_subcommand_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.toml"
    path.write_text("[usage]\n")
    assert entry.main(["usage", "--config", str(path)]) == 0
    assert entry.main(["logs", "--config", str(path), "--log-level", "ERROR"]) == 0
    assert capsys.readouterr().out.strip()


def test_only_launch_hands_what_follows_dashdash_to_its_client() -> None:
    """`lmbridge launch C -- ARGS`: ARGS are the client's, options included;
    `--` elsewhere keeps its usual meaning (what follows is positional)."""
    parser = entry.build_parser()
    args = entry.parse_args(
        parser, ["launch", "codex", "--model", "m", "--", "exec", "--model", "x"]
    )
    assert (args.client, args.model) == ("codex", "m")
    assert args.client_args == ["exec", "--model", "x"]
    other = entry.parse_args(parser, ["chats", "export", "--", "-a-name"])
    assert other.name == "-a-name"
