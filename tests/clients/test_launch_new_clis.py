"""The five newer CLIs, real, started by `lmbridge launch` (issue 22, item 4).

`lmbridge launch <client> --model M --config FILE -- <its non-interactive
arguments>` for OpenCode, the Cline CLI, Qwen Code, the Continue CLI and
Gemini CLI, launch starting its own headless LM Bridge whose upstream is
the scripted Chat Completions model. The CLI's HOME holds only the
switches that keep it offline (clis.py `Cli.offline`): everything that
points it at LM Bridge comes from launch. Each run is one turn with a tool
round trip (scenarios.py): the model calls the CLI's shell tool on
`cat note.txt`, the CLI runs it, and the note's text must be in the
model's next request; the CLI exits 0 with the final answer printed.
Afterwards the files in the CLI's HOME are those the test wrote, as it
wrote them, and launch's private scratch folder is gone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clients import drive, harness
from clients.clis import (
    CLINE_BACKGROUND,
    CLINE_CLI,
    CONTINUE_CLI,
    GEMINI_CLI,
    OPENCODE_BACKGROUND,
    OPENCODE_CLI,
    QWEN_CLI,
    Cli,
    missing,
)
from clients.fake_model import ScriptedModel
from clients.scenarios import NOTE
from clients.test_launch_real import MODEL, launch_config, run_launch
from launch.support import free_port

MISSING: str | None = None  # each CLI is skipped on its own (`_params`)

# (launch's name for it, the CLI, the trap lines it is known to make)
CASES = [
    ("opencode", OPENCODE_CLI, [OPENCODE_BACKGROUND]),
    ("cline", CLINE_CLI, [CLINE_BACKGROUND]),
    ("qwen", QWEN_CLI, []),
    ("continue", CONTINUE_CLI, []),
    ("gemini", GEMINI_CLI, []),
]

# What `lmbridge integrate` would write for each (relative to HOME): launch
# must leave these as the test left them (absent, or the offline switches).
CONFIG_FILES = {
    "opencode": [".config/opencode/opencode.json", ".config/opencode/config.json"],
    "cline": [".cline/data/settings/providers.json"],
    "qwen": [".qwen/settings.json"],
    "continue": [".continue/config.yaml"],
    "gemini": [".gemini/settings.json", ".gemini/.env"],
}


def _params() -> list[object]:
    params: list[object] = []
    for client, cli, allowed in CASES:
        reason = missing(Path(cli.argv("", False)[0]))
        marks = [pytest.mark.skip(reason=f"real-CLI tests: {reason}")] if reason else []
        params.append(pytest.param(client, cli, allowed, id=client, marks=marks))
    return params


def _snapshot(home: Path, names: list[str]) -> dict[str, str | None]:
    """The text of each of `names` under `home` (None: absent)."""
    return {
        name: (home / name).read_text() if (home / name).exists() else None
        for name in names
    }


@pytest.mark.parametrize(("client", "cli", "allowed"), _params())
async def test_tool_round_trip_through_launch(
    client: str,
    cli: Cli,
    allowed: list[str],
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    trap: harness.ProxyTrap,
) -> None:
    talk = drive.conversation(cli)
    fake.responder = talk.respond
    (work / "note.txt").write_text(NOTE + "\n")
    config = tmp_path / "lmbridge.toml"
    config.write_text(launch_config(fake.url, free_port()))
    env = cli.offline(tmp_path, trap.url)
    home = Path(env["HOME"])
    before = _snapshot(home, CONFIG_FILES[client])
    client_args = cli.argv(talk.prompts[0], False)[1:]  # the binary: launch's

    result = await run_launch(tmp_path, work, env, config, client, client_args)

    assert result.returncode == 0, result.explain()
    assert talk.answer(1) in result.stdout, result.explain()
    assert "(running)" not in result.stderr, result.stderr  # launch's own bridge
    bodies = fake.bodies("/v1/chat/completions")
    assert bodies, result.explain()
    assert {b["model"] for b in bodies} == {"fake-model"}
    talk.check("chat", bodies, 1)
    drive.check_trap(trap, allowed)
    # Launch wrote none of the CLI's files, and removed its own.
    assert _snapshot(home, CONFIG_FILES[client]) == before
    scratch = tmp_path / "launch-home" / "data" / "launch"
    assert scratch.is_dir() and list(scratch.iterdir()) == []
    assert MODEL in result.stderr  # the model launch was told, routed to the fake
