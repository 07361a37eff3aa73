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

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clients import harness
from clients.fake_model import (
    Call,
    Reply,
    ScriptedModel,
    chat_text,
    chat_tool_calls,
    chat_tool_result,
    chat_tool_results,
    chat_tools,
)
from launch.support import free_port

CHAT = "/v1/chat/completions"
MODEL = "qwen/qwen3-coder-30b"  # a local model neither CLI knows
WINDOW = 40000


def launch_config(upstream_url: str, port: int) -> str:
    return f"""
[server]
port = {port}

[[upstream]]
name = "fake"
kind = "openai"
base_url = "{upstream_url}/v1"

[[route]]
model = "*"
upstream = "fake"
target = "fake-model"
context_window = {WINDOW}
"""


@contextlib.asynccontextmanager
async def serving(config: Path, root: Path) -> AsyncIterator[None]:
    """`lmbridge serve --config CONFIG` until the block ends."""
    env = {**os.environ, "LMBRIDGE_HOME": str(root / "serve-home")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "serve",
        "--config",
        str(config),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"listening on" in line, line
    try:
        yield
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 10)


async def run_launch(
    tmp_path: Path,
    work: Path,
    env: dict[str, str],
    config: Path,
    client: str,
    client_args: list[str],
) -> harness.Result:
    env = {
        **env,
        "PATH": f"{harness.BIN}{os.pathsep}{env['PATH']}",
        "LMBRIDGE_HOME": str(tmp_path / "launch-home"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    argv = [
        sys.executable,
        "-m",
        "lmbridge",
        "launch",
        client,
        "--model",
        MODEL,
        "--config",
        str(config),
        "--",
        *client_args,
    ]
    return await harness.run(argv, env, work, timeout=60)


def _user_texts(body: dict[str, Any]) -> list[str]:
    return [chat_text(m) for m in body.get("messages", []) if m.get("role") == "user"]


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

    def responder(api: str, body: dict[str, Any]) -> Reply:
        if not any(prompt in t for t in _user_texts(body)):
            return Reply(text="(side request)")
        if chat_tool_results(body):
            return Reply(text=final)
        args = json.dumps({"command": "cat note.txt", "description": "Show it"})
        return Reply(calls=[Call("Bash", args, call_id="call_bash_1")])

    fake.responder = responder
    config = tmp_path / "lmbridge.toml"
    port = free_port()
    config.write_text(launch_config(fake.url, port))
    env = harness.claude_env(tmp_path, "http://unused.invalid", trap.url)
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        del env[name]  # launch sets them
    args = ["-p", prompt, "--dangerously-skip-permissions"]
    async with contextlib.AsyncExitStack() as stack:
        if bridge_running:
            await stack.enter_async_context(serving(config, tmp_path))
        result = await run_launch(tmp_path, work, env, config, "claude", args)
    assert result.returncode == 0, result.explain()
    assert final in result.stdout
    assert ("(running)" in result.stderr) is bridge_running, result.stderr
    assert (f"127.0.0.1:{port} " in result.stderr) is bridge_running
    bodies = [b for b in fake.bodies(CHAT) if any(prompt in t for t in _user_texts(b))]
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

    def responder(api: str, body: dict[str, Any]) -> Reply:
        if chat_tool_results(body):
            return Reply(text=final)
        if "exec_command" not in chat_tools(body):
            return Reply(text="I have no shell tool.")
        args = json.dumps({"cmd": "cat note.txt"})
        return Reply(calls=[Call("exec_command", args, call_id="call_shell_1")])

    fake.responder = responder
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
    async with contextlib.AsyncExitStack() as stack:
        if bridge_running:
            await stack.enter_async_context(serving(config, tmp_path))
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
