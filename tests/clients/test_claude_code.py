"""Claude Code (`claude -p`) through LM Bridge's Anthropic front door.

Claude Code -> `lmbridge serve` (/v1/messages, ANTHROPIC_BASE_URL) -> a
fake Chat Completions upstream. Claude Code runs with its default model
(LM Bridge routes every model to the fake) and its own CLAUDE_CONFIG_DIR.
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
    chat_tool_calls,
    chat_tool_result,
    chat_tool_results,
    chat_tools,
)
from clients.scenarios import chat_user_texts, claude_bash_round_trip
from lmbridge.integrations import Endpoint, ModelChoice, claude_code

CHAT = "/v1/chat/completions"


async def claude(
    tmp_path: Path,
    work: Path,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
    prompt: str,
    *,
    extra_env: dict[str, str] | None = None,
    model: str | None = None,
) -> harness.Result:
    env = {**harness.claude_env(tmp_path, bridge.url, trap.url), **(extra_env or {})}
    argv = [str(harness.CLAUDE), "-p", prompt, "--dangerously-skip-permissions"]
    if model is not None:
        argv += ["--model", model]
    result = await harness.run(argv, env, work, timeout=30)
    assert result.returncode == 0, result.explain() + "\n" + "".join(bridge.output)
    assert trap.lines == [], trap.lines  # nothing but LM Bridge was contacted
    return result


async def test_bash_tool_round_trip(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
) -> None:
    """The model runs `cat` with Claude Code's Bash tool; the output comes back."""
    (work / "note.txt").write_text("CLAUDE-NOTE-3308\n")
    prompt = "What does note.txt say?"
    final = "The note says CLAUDE-NOTE-3308."

    fake.responder = claude_bash_round_trip(prompt, final)
    result = await claude(tmp_path, work, bridge, trap, prompt)

    bodies = [
        b for b in fake.bodies(CHAT) if any(prompt in t for t in chat_user_texts(b))
    ]
    assert len(bodies) == 2, [b["messages"][-1] for b in bodies]
    first, second = bodies
    assert first["model"] == "fake-model"
    assert "Bash" in chat_tools(first)
    calls = chat_tool_calls(second)
    assert [(c["id"], c["function"]["name"]) for c in calls] == [
        ("call_bash_1", "Bash")
    ]
    assert "CLAUDE-NOTE-3308" in chat_tool_result(second, "call_bash_1")
    assert final in result.stdout


async def test_subagent_round_trip(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
) -> None:
    """The model delegates with the Agent tool: the subagent's own requests
    go through LM Bridge too, and its report comes back as the tool result."""
    prompt = "Delegate the report to a subagent."
    task = "Subagent task: report the code word."
    report = "The code word is SUBAGENT-WORD-6642."
    final = "The subagent reported SUBAGENT-WORD-6642."

    def responder(api: str, body: dict[str, Any]) -> Reply:
        texts = chat_user_texts(body)
        if any(task in t for t in texts) and not any(prompt in t for t in texts):
            return Reply(text=report)  # the subagent's conversation
        if not any(prompt in t for t in texts):
            return Reply(text="(side request)")
        if chat_tool_results(body):
            return Reply(text=final)
        args = {
            "description": "Report the code word",
            "prompt": task,
            "subagent_type": "general-purpose",
            "run_in_background": False,
        }
        return Reply(calls=[Call("Agent", json.dumps(args), call_id="call_agent_1")])

    fake.responder = responder
    result = await claude(tmp_path, work, bridge, trap, prompt)

    bodies = fake.bodies(CHAT)
    main = [b for b in bodies if any(prompt in t for t in chat_user_texts(b))]
    sub = [
        b
        for b in bodies
        if any(task in t for t in chat_user_texts(b))
        and not any(prompt in t for t in chat_user_texts(b))
    ]
    assert "Agent" in chat_tools(main[0]), sorted(chat_tools(main[0]))
    assert len(sub) == 1, [b["messages"][-1] for b in bodies]
    assert len(main) == 2
    assert report in chat_tool_result(main[1], "call_agent_1")
    assert final in result.stdout


async def test_model_picker_lists_lmbridge_models(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
) -> None:
    """With the variables `lmbridge integrate claude-code` writes, Claude Code
    asks LM Bridge's /v1/models and keeps every model for its `/model`
    picker (the upstream's `fake-model` as `claude/fake-model`); a model
    picked from it is answered."""
    fake.responder = lambda api, body: Reply(text="PICKED-MODEL-ANSWER")
    written = claude_code.env_vars(
        Endpoint(bridge.url), ModelChoice(context_window=32768)
    )
    extra = {k: v for k, v in written.items() if k.startswith("CLAUDE_CODE_")}
    assert set(extra) == {
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY",
        "CLAUDE_CODE_AUTO_COMPACT_WINDOW",
    }
    result = await claude(
        tmp_path, work, bridge, trap, "hi", extra_env=extra, model="claude/fake-model"
    )
    assert "PICKED-MODEL-ANSWER" in result.stdout
    cache = tmp_path / "claude-config" / "cache" / "gateway-models.json"
    kept = {
        m["id"]: m.get("display_name") for m in json.loads(cache.read_text())["models"]
    }
    assert kept["claude/fake-model"] == "fake-model"
    assert "claude-sonnet-4-6" in kept  # the claude-* aliases of the route
