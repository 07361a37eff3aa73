"""The real Claude Code and Codex CLIs started by `lmbridge launch`.

`lmbridge launch claude -- -p ...` and `lmbridge launch codex -- exec ...`
against the scripted model, each once with an LM Bridge already running
at the configured port (`lmbridge serve`) and once with launch starting
its own for the session. Neither CLI's config names LM Bridge: everything
that points it there comes from launch (Codex's config.toml holds only the
switches that keep it offline). Each run is a tool round trip: the model
calls a tool, the CLI runs it, the result reaches the model's next turn.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients import harness
from clients.fake_model import (
    ScriptedModel,
    chat_tool_calls,
    chat_tool_result,
)
from clients.scenarios import (
    chat_user_texts,
    claude_bash_round_trip,
    codex_shell_round_trip,
)
from launch.support import free_port

CHAT = "/v1/chat/completions"
MODEL = "qwen/qwen3-coder-30b"  # a local model neither CLI knows
WINDOW = 40000


def launch_config(upstream_url: str, port: int) -> str:
    """The one upstream, on `port`, with the window launch hands the CLI."""
    window = f"context_window = {WINDOW}"
    return harness.lmbridge_config(upstream_url, port=port, route_extra=window)


async def run_launch(
    tmp_path: Path,
    work: Path,
    env: dict[str, str],
    config: Path,
    client: str,
    client_args: list[str],
) -> harness.Result:
    """`lmbridge launch CLIENT --model MODEL` (a model the CLI does not know)."""
    return await harness.lmbridge_launch(
        tmp_path, work, env, config, client, MODEL, client_args
    )


@contextlib.asynccontextmanager
async def maybe_serving(config: Path, root: Path, running: bool) -> AsyncIterator[None]:
    """`lmbridge serve` on `config` for the block when `running`, else nothing
    (launch then starts its own)."""
    if not running:
        yield
        return
    async with harness.serving(config, root / "serve-home"):
        yield


@pytest.mark.parametrize("bridge_running", [True, False], ids=["running", "own"])
async def test_claude_code_tool_round_trip(
    bridge_running: bool,
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    trap: harness.ProxyTrap,
) -> None:
    (work / "note.txt").write_text("LAUNCH-NOTE-8812\n")
    prompt = "What does note.txt say?"
    final = "The note says LAUNCH-NOTE-8812."

    fake.responder = claude_bash_round_trip(prompt, final)
    config = tmp_path / "lmbridge.toml"
    port = free_port()
    config.write_text(launch_config(fake.url, port))
    env = harness.claude_env(tmp_path, "http://unused.invalid", trap.url)
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        del env[name]  # launch sets them
    args = ["-p", prompt, "--dangerously-skip-permissions"]
    async with maybe_serving(config, tmp_path, bridge_running):
        result = await run_launch(tmp_path, work, env, config, "claude", args)
    assert result.returncode == 0, result.explain()
    assert final in result.stdout
    assert ("(running)" in result.stderr) is bridge_running, result.stderr
    assert (f"127.0.0.1:{port} " in result.stderr) is bridge_running
    bodies = [
        b for b in fake.bodies(CHAT) if any(prompt in t for t in chat_user_texts(b))
    ]
    assert len(bodies) == 2
    assert {b["model"] for b in bodies} == {"fake-model"}
    assert [c["id"] for c in chat_tool_calls(bodies[1])] == ["call_bash_1"]
    assert "LAUNCH-NOTE-8812" in chat_tool_result(bodies[1], "call_bash_1")
    assert trap.lines == []


@pytest.mark.parametrize("bridge_running", [True, False], ids=["running", "own"])
async def test_codex_tool_round_trip(
    bridge_running: bool,
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    trap: harness.ProxyTrap,
) -> None:
    (work / "note.txt").write_text("LAUNCH-SHELL-4410\n")
    final = "The note says LAUNCH-SHELL-4410."

    fake.responder = codex_shell_round_trip(final)
    config = tmp_path / "lmbridge.toml"
    config.write_text(launch_config(fake.url, free_port()))
    env = harness.codex_env(tmp_path, trap.url)
    offline = harness.codex_config("http://unused.invalid/v1")
    # Only the offline switches: the provider and the model come from launch.
    head, _, _ = offline.partition("[model_providers.lmbridge]")
    head = "\n".join(
        line for line in head.splitlines() if not line.startswith(("model", "#"))
    )
    harness.write_codex_config(env, head)
    args = ["exec", "--skip-git-repo-check", "What does note.txt say?"]
    async with maybe_serving(config, tmp_path, bridge_running):
        result = await run_launch(tmp_path, work, env, config, "codex", args)
    assert result.returncode == 0, result.explain()
    assert final in result.stdout
    assert ("(running)" in result.stderr) is bridge_running, result.stderr
    first, second = fake.bodies(CHAT)
    assert first["model"] == "fake-model"
    assert [c["id"] for c in chat_tool_calls(second)] == ["call_shell_1"]
    assert "LAUNCH-SHELL-4410" in chat_tool_result(second, "call_shell_1")
    assert trap.lines == []
    # launch wrote nothing of Codex's: its config is as the test left it.
    assert (Path(env["CODEX_HOME"]) / "config.toml").read_text() == head
