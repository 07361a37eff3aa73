"""Codex (`codex exec`) through LM Bridge's Responses front door.

Codex -> `lmbridge serve` (/v1/responses) -> a fake Chat Completions
upstream. Codex runs with its own CODEX_HOME whose config.toml has one
`model_providers.lmbridge` entry (`wire_api = "responses"`). The model name
is a local one Codex has no metadata for, as LM Bridge users run it; the
custom-tool test uses one it knows, because only those get `apply_patch` as
a freeform tool.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
from clients.mcp_server import TOOL_NAME, token_for
from clients.scenarios import codex_shell_round_trip

LOCAL_MODEL = "qwen/qwen3-coder-30b"
CHAT = "/v1/chat/completions"


async def codex(
    tmp_path: Path,
    work: Path,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
    prompt: str,
    *,
    model: str = LOCAL_MODEL,
    mcp: bool = False,
    resume: bool = False,
) -> harness.Result:
    """Run `codex exec` (or `codex exec resume --last`) to the end."""
    env = harness.codex_env(tmp_path, trap.url)
    config = harness.codex_config(
        bridge.url + "/v1", model, mcp_log=tmp_path / "mcp.log" if mcp else None
    )
    harness.write_codex_config(env, config)
    head = ["exec", "resume", "--last"] if resume else ["exec"]
    argv = [str(harness.CODEX), *head, "--skip-git-repo-check", prompt]
    result = await harness.run(argv, env, work, timeout=30)
    assert result.returncode == 0, result.explain() + "\n" + "".join(bridge.output)
    assert trap.lines == [], trap.lines  # nothing but LM Bridge was contacted
    return result


async def test_shell_tool_round_trip(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
) -> None:
    """The model runs a command with Codex's shell tool; its output comes back."""
    (work / "note.txt").write_text("SHELL-OUTPUT-5521\n")
    final = "The note says SHELL-OUTPUT-5521."

    fake.responder = codex_shell_round_trip(final)
    result = await codex(tmp_path, work, bridge, trap, "What does note.txt say?")

    first, second = fake.bodies(CHAT)
    assert first["model"] == "fake-model"
    assert "exec_command" in chat_tools(first)
    calls = chat_tool_calls(second)
    assert [(c["id"], c["function"]["name"]) for c in calls] == [
        ("call_shell_1", "exec_command")
    ]
    assert json.loads(calls[0]["function"]["arguments"]) == {"cmd": "cat note.txt"}
    assert "SHELL-OUTPUT-5521" in chat_tool_result(second, "call_shell_1")
    assert final in result.stdout


async def test_mcp_tool_round_trip(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
) -> None:
    """The model calls a tool of a stdio MCP server that Codex runs.

    Codex sends MCP tools as a `namespace` tool (`mcp__probe` holding
    `lookup_token`) and resolves a call only from a `function_call` with
    `namespace: "mcp__probe"`, `name: "lookup_token"`. Whatever name LM
    Bridge gives the tool upstream, the fake calls it by that name.
    """
    expected = token_for("alpha")
    final = f"The token is {expected}."

    def mcp_tool(body: dict[str, Any]) -> str | None:
        names = [n for n in chat_tools(body) if n.endswith(TOOL_NAME)]
        return names[0] if len(names) == 1 else None

    def responder(api: str, body: dict[str, Any]) -> Reply:
        if chat_tool_results(body):
            return Reply(text=final)
        name = mcp_tool(body)
        if name is None:
            return Reply(text="I have no lookup tool.")
        args = json.dumps({"key": "alpha"})
        return Reply(calls=[Call(name, args, call_id="call_mcp_1")])

    fake.responder = responder
    result = await codex(
        tmp_path, work, bridge, trap, "Look up the alpha token.", mcp=True
    )

    bodies = fake.bodies(CHAT)
    name = mcp_tool(bodies[0])
    assert name is not None, sorted(chat_tools(bodies[0]))
    assert len(bodies) == 2, [chat_text(b["messages"][-1]) for b in bodies]
    mcp_calls = [
        json.loads(line)
        for line in (tmp_path / "mcp.log").read_text().splitlines()
        if '"tools/call"' in line
    ]
    assert [(c["params"]["name"], c["params"]["arguments"]) for c in mcp_calls] == [
        (TOOL_NAME, {"key": "alpha"})
    ]
    assert expected in chat_tool_result(bodies[1], "call_mcp_1")
    assert final in result.stdout


def _single_string_parameter(tool: dict[str, Any]) -> str | None:
    props = (tool.get("parameters") or {}).get("properties") or {}
    strings = [k for k, v in props.items() if v.get("type") == "string"]
    return strings[0] if len(strings) == 1 else None


async def test_apply_patch_custom_tool_round_trip(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
) -> None:
    """Codex's freeform `apply_patch` (a `custom` tool) edits a file.

    Upstream the tool must be a function the model can call; the fake passes
    the patch as the tool's one string parameter, whatever LM Bridge names
    it, and LM Bridge must hand it to Codex as a `custom_tool_call`.
    """
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+PATCHED-7781\n*** End Patch\n"
    final = "I created hello.txt."

    def responder(api: str, body: dict[str, Any]) -> Reply:
        if chat_tool_results(body):
            return Reply(text=final)
        tool = chat_tools(body).get("apply_patch")
        field = _single_string_parameter(tool) if tool else None
        if field is None:
            return Reply(text="I have no apply_patch tool.")
        args = json.dumps({field: patch})
        return Reply(calls=[Call("apply_patch", args, call_id="call_patch_1")])

    fake.responder = responder
    result = await codex(
        tmp_path, work, bridge, trap, "Create hello.txt.", model="gpt-5.5"
    )

    bodies = fake.bodies(CHAT)
    assert "apply_patch" in chat_tools(bodies[0]), sorted(chat_tools(bodies[0]))
    assert (work / "hello.txt").read_text() == "PATCHED-7781\n"
    assert "Success" in chat_tool_result(bodies[1], "call_patch_1")
    assert final in result.stdout


async def test_three_turn_session(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
) -> None:
    """`codex exec`, then `codex exec resume --last` twice: each turn is
    answered and each request carries the earlier turns, in order."""
    prompts = [
        "First question: ALPHA?",
        "Second question: BRAVO?",
        "Third question: CHARLIE?",
    ]

    def answer(n: int) -> str:
        return f"Answer {n} of three."

    def responder(api: str, body: dict[str, Any]) -> Reply:
        texts = [
            chat_text(m) for m in body.get("messages", []) if m.get("role") == "user"
        ]
        asked = [p for p in prompts if any(p in t for t in texts)]
        return Reply(text=answer(len(asked)))

    fake.responder = responder
    outputs = []
    for n, prompt in enumerate(prompts):
        result = await codex(tmp_path, work, bridge, trap, prompt, resume=n > 0)
        outputs.append(result.stdout)

    for n, out in enumerate(outputs, 1):
        assert answer(n) in out, out
    markers = [*prompts, *(answer(n) for n in (1, 2, 3))]

    def conversation(body: dict[str, Any]) -> list[tuple[str, str]]:
        """(role, marker) for each user or assistant message with a marker."""
        return [
            (m["role"], marker)
            for m in body["messages"]
            if m["role"] in ("user", "assistant")
            for marker in markers
            if marker in chat_text(m)
        ]

    bodies = fake.bodies(CHAT)
    assert len(bodies) == 3, [conversation(b) for b in bodies]
    for n, body in enumerate(bodies, 1):
        expected = []
        for k in range(1, n):
            expected += [("user", prompts[k - 1]), ("assistant", answer(k))]
        expected.append(("user", prompts[n - 1]))
        assert conversation(body) == expected
