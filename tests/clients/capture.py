"""Record exactly what Claude Code and Codex send: `python capture.py OUTDIR`.

Not a test. Each scenario runs a real CLI (installed by `make clients`)
straight against the scripted fake in `fake_model.py`, with no LM Bridge in
between, and writes every request (method, path, query, headers, body) to
OUTDIR/<scenario>.json, plus the CLI's output to OUTDIR/<scenario>.log.
Run it again after bumping a pinned version and compare; the findings are
written up in the team's notes/research-clients.md.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clients import harness
from clients.fake_model import Call, Reply, ScriptedModel

LOCAL_MODEL = "qwen/qwen3-coder-30b"  # a model Codex has no metadata for
CATALOGUED_MODEL = "gpt-5.5"  # one it has (custom tools, tool_search)
PATCH = (
    "*** Begin Patch\n*** Add File: hello.txt\n+hello from apply_patch\n*** End Patch\n"
)


def _types(body: dict[str, Any]) -> list[str]:
    return [str(i.get("type")) for i in body.get("input", [])]


def _user_texts(body: dict[str, Any]) -> list[str]:
    texts = []
    for m in body.get("messages", []):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [c.get("text", "") for c in content if c.get("type") == "text"]
    return texts


def _has_tool_result(body: dict[str, Any]) -> bool:
    last = (body.get("messages") or [{}])[-1]
    content = last.get("content")
    return isinstance(content, list) and any(
        c.get("type") == "tool_result" for c in content
    )


# ---------------------------------------------------------------- codex


def codex_shell(api: str, body: dict[str, Any]) -> Reply:
    if "function_call_output" in _types(body):
        return Reply(text="The command printed its line.")
    args = json.dumps({"cmd": "echo CODEX-SHELL-OUTPUT"})
    return Reply(calls=[Call(name="exec_command", arguments=args)])


def codex_mcp(api: str, body: dict[str, Any]) -> Reply:
    if "function_call_output" in _types(body):
        return Reply(text="The MCP tool answered.")
    args = json.dumps({"key": "alpha"})
    return Reply(
        calls=[Call(name="lookup_token", namespace="mcp__probe", arguments=args)]
    )


def codex_catalogued(api: str, body: dict[str, Any]) -> Reply:
    """apply_patch (custom tool), then tool_search, then the MCP tool."""
    types = _types(body)
    if "custom_tool_call_output" not in types:
        return Reply(calls=[Call(name="apply_patch", arguments=PATCH, kind="custom")])
    if "tool_search_output" not in types:
        search = {
            "type": "tool_search_call",
            "id": "tsc_1",
            "call_id": "ts_1",
            "status": "completed",
            "execution": "client",
            "arguments": {"query": "lookup token", "limit": 5},
        }
        return Reply(raw_items=[search])
    if "function_call_output" not in types:
        args = json.dumps({"key": "beta"})
        return Reply(
            calls=[Call(name="lookup_token", namespace="mcp__probe", arguments=args)]
        )
    return Reply(text="Patched, searched and looked up.")


def codex_turns(api: str, body: dict[str, Any]) -> Reply:
    """One answer a turn, with a reasoning item, to see what history keeps."""
    turn = sum(
        1
        for i in body.get("input", [])
        if i.get("type") == "message" and i["role"] == "user"
    )
    reasoning = {
        "type": "reasoning",
        "id": f"rs_{turn}",
        "summary": [{"type": "summary_text", "text": f"thinking {turn}"}],
        "encrypted_content": f"ENCRYPTED-{turn}",
    }
    return Reply(text=f"Answer number {turn}.", raw_items=[reasoning])


async def run_codex(
    out: Path,
    name: str,
    responder: Callable[[str, dict[str, Any]], Reply],
    prompts: Sequence[str],
    model: str = LOCAL_MODEL,
) -> None:
    root = out / "tmp" / name
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    fake = ScriptedModel(responder)
    await fake.start()
    try:
        env = harness.codex_env(root, TRAP.url)
        config = harness.codex_config(fake.url + "/v1", model, mcp_log=root / "mcp.log")
        harness.write_codex_config(env, config)
        logs = []
        for n, prompt in enumerate(prompts):
            resume = ["resume", "--last"] if n else []
            argv = [
                str(harness.CODEX),
                "exec",
                *resume,
                "--skip-git-repo-check",
                prompt,
            ]
            result = await harness.run(argv, env, work, timeout=90)
            logs.append(result.explain())
        _write(out, name, fake, logs)
    finally:
        await fake.stop()


# ---------------------------------------------------------------- claude


def claude_bash(api: str, body: dict[str, Any]) -> Reply:
    if not body.get("tools"):
        return Reply(text="aux")
    if _has_tool_result(body):
        return Reply(text="The command printed its line.")
    args = {"command": "echo CLAUDE-BASH-OUTPUT", "description": "Print a line"}
    return Reply(calls=[Call(name="Bash", arguments=json.dumps(args))])


SUB_PROMPT = "Subagent task: report the word SUBAGENT-ANSWER."


def claude_agent(api: str, body: dict[str, Any]) -> Reply:
    if not body.get("tools"):
        return Reply(text="aux")
    if any(SUB_PROMPT in t for t in _user_texts(body)):
        return Reply(text="SUBAGENT-ANSWER")
    if _has_tool_result(body):
        return Reply(text="The subagent reported back.")
    args = {
        "description": "Report a word",
        "prompt": SUB_PROMPT,
        "subagent_type": "general-purpose",
        "run_in_background": False,
    }
    return Reply(calls=[Call(name="Agent", arguments=json.dumps(args))])


async def run_claude(
    out: Path,
    name: str,
    responder: Callable[[str, dict[str, Any]], Reply],
    prompt: str,
    extra: Sequence[str] = (),
) -> None:
    root = out / "tmp" / name
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    fake = ScriptedModel(responder)
    await fake.start()
    try:
        env = harness.claude_env(root, fake.url, TRAP.url)
        argv = [
            str(harness.CLAUDE),
            "-p",
            prompt,
            "--dangerously-skip-permissions",
            *extra,
        ]
        result = await harness.run(argv, env, work, timeout=90)
        _write(out, name, fake, [result.explain()])
    finally:
        await fake.stop()


TRAP = harness.ProxyTrap()


def _write(out: Path, name: str, fake: ScriptedModel, logs: list[str]) -> None:
    dump = [s.dump() for s in fake.requests]
    if TRAP.lines:
        logs.append(
            "--- traffic that tried to leave the machine:\n" + "\n".join(TRAP.lines)
        )
        print(f"{name}: tried to leave the machine: {TRAP.lines}", flush=True)
        TRAP.lines.clear()
    (out / f"{name}.json").write_text(json.dumps(dump, indent=1))
    (out / f"{name}.log").write_text("\n\n".join(logs))
    print(f"{name}: {len(dump)} requests", flush=True)
    for s in fake.requests:
        print(f"   {s.method} {s.path} {s.query or ''}", flush=True)


async def main(out: Path) -> None:
    if reason := harness.missing():
        raise SystemExit(reason)
    await TRAP.start()
    await run_codex(out, "codex-shell", codex_shell, ["Run the echo command."])
    await run_codex(out, "codex-mcp", codex_mcp, ["Use the lookup tool."])
    await run_codex(
        out, "codex-catalogued", codex_catalogued, ["Patch it."], CATALOGUED_MODEL
    )
    await run_codex(
        out, "codex-turns", codex_turns, ["First question.", "Second.", "Third."]
    )
    await run_claude(out, "claude-bash", claude_bash, "Run the echo command.")
    await run_claude(out, "claude-agent", claude_agent, "Delegate to a subagent.")


if __name__ == "__main__":
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else "captures")
    outdir.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(outdir))
