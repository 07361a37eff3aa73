"""Request bodies for the proxy benchmarks (bench_proxy.py, soak.py).

- `openai_small()`: a ~1 KB OpenAI Chat Completions request (pass-through).
- `anthropic_claude_code()`: a ~50 KB Anthropic Messages request shaped like
  Claude Code's: a long system prompt in cached text blocks, a dozen tools
  with long descriptions and JSON schemas, and a few turns with tool calls
  and tool results carrying source code. Deterministic: built from fixed
  text and the standard library's own source.
- `anthropic_small()`: a ~1 KB Anthropic request (translated, light).

The fake upstream reads stream length and pacing from the model name
(`fake_upstream_server.py`), so the model is a parameter everywhere.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

# The size the Claude Code-shaped request is padded to (JSON bytes).
CLAUDE_CODE_BYTES = 49_800

_PROSE = (
    "You are an interactive command line tool that helps users with software "
    "engineering tasks. Use the instructions below and the tools available to "
    "you to assist the user. Be concise, direct and to the point. When you run "
    "a non-trivial command, explain what it does and why you are running it. "
    "Follow the conventions of the existing code: look at neighbouring files, "
    "mimic their style, use their libraries and utilities. Never assume that a "
    "library is available; check the project's manifest first. Never introduce "
    "code that exposes or logs secrets and keys. Prefer editing existing files "
    "to creating new ones. Verify your change with the project's tests and "
    "linters when you know how to run them. "
)


def _schema(fields: dict[str, str], required: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, desc in fields.items():
        kind = "string"
        if name.endswith(("limit", "offset", "timeout", "count")):
            kind = "number"
        elif name.startswith(("is_", "replace_all", "multiline", "run_in")):
            kind = "boolean"
        props[name] = {"type": kind, "description": desc}
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }


def _tools() -> list[dict[str, Any]]:
    specs: list[tuple[str, dict[str, str], list[str]]] = [
        (
            "Bash",
            {
                "command": "The command to execute",
                "timeout": "Optional timeout in milliseconds (max 600000)",
                "description": "Clear, concise description of what this command "
                "does in 5-10 words, in active voice.",
                "run_in_background": "Set to true to run this command in the "
                "background. Use BashOutput to read the output later.",
            },
            ["command"],
        ),
        (
            "Glob",
            {
                "pattern": "The glob pattern to match files against",
                "path": "The directory to search in. If not specified, the "
                "current working directory will be used.",
            },
            ["pattern"],
        ),
        (
            "Grep",
            {
                "pattern": "The regular expression pattern to search for",
                "path": "File or directory to search in (rg PATH).",
                "glob": "Glob pattern to filter files (e.g. *.js, *.{ts,tsx})",
                "output_mode": "content, files_with_matches or count",
                "multiline": "Enable multiline mode where . matches newlines",
                "head_limit": "Limit output to the first N lines/entries",
                "type": "File type to search (rg --type), e.g. js, py, rust",
            },
            ["pattern"],
        ),
        (
            "Read",
            {
                "file_path": "The absolute path to the file to read",
                "offset": "The line number to start reading from",
                "limit": "The number of lines to read",
            },
            ["file_path"],
        ),
        (
            "Edit",
            {
                "file_path": "The absolute path to the file to modify",
                "old_string": "The text to replace",
                "new_string": "The text to replace it with (must differ)",
                "replace_all": "Replace all occurrences of old_string",
            },
            ["file_path", "old_string", "new_string"],
        ),
        (
            "MultiEdit",
            {
                "file_path": "The absolute path to the file to modify",
                "edits": "Array of edit operations to perform sequentially",
            },
            ["file_path", "edits"],
        ),
        (
            "Write",
            {
                "file_path": "The absolute path to the file to write",
                "content": "The content to write to the file",
            },
            ["file_path", "content"],
        ),
        (
            "NotebookEdit",
            {
                "notebook_path": "The absolute path to the Jupyter notebook",
                "cell_id": "The ID of the cell to edit",
                "new_source": "The new source for the cell",
                "cell_type": "code or markdown",
                "edit_mode": "replace, insert or delete",
            },
            ["notebook_path", "new_source"],
        ),
        (
            "WebFetch",
            {
                "url": "The URL to fetch content from",
                "prompt": "The prompt to run on the fetched content",
            },
            ["url", "prompt"],
        ),
        (
            "WebSearch",
            {
                "query": "The search query to use",
                "allowed_domains": "Only include results from these domains",
                "blocked_domains": "Never include results from these domains",
            },
            ["query"],
        ),
        (
            "TodoWrite",
            {"todos": "The updated todo list"},
            ["todos"],
        ),
        (
            "Task",
            {
                "description": "A short (3-5 word) description of the task",
                "prompt": "The task for the agent to perform",
                "subagent_type": "The type of specialized agent to use",
            },
            ["description", "prompt", "subagent_type"],
        ),
    ]
    tools = []
    for n, (name, fields, required) in enumerate(specs):
        usage = " ".join(
            f"- Usage note {i + 1} for {name}: {_PROSE[i * 40 : i * 40 + 220]}"
            for i in range(2 + n % 3)
        )
        tools.append(
            {
                "name": name,
                "description": f"{name}: {_PROSE}\n\nUsage notes:\n{usage}",
                "input_schema": _schema(fields, required),
            }
        )
    return tools


def _source(start: int, size: int) -> str:
    code = (Path(asyncio.__file__).parent / "base_events.py").read_text("utf-8")
    return code[start : start + size]


def anthropic_claude_code(
    model: str = "claude-bench", *, stream: bool = False, size: int = CLAUDE_CODE_BYTES
) -> bytes:
    """A Claude Code-shaped Messages request, padded to `size` bytes."""
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "<system-reminder>This is a reminder that your todo "
                    "list is currently empty.</system-reminder>",
                },
                {
                    "type": "text",
                    "text": "The event loop test in tests/test_loop.py fails on "
                    "Python 3.11; find out why and fix it.",
                },
            ],
        }
    ]
    for turn in range(3):
        call_id = f"toolu_01Bench{turn:04d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look at the event loop code."},
                    {
                        "type": "tool_use",
                        "id": call_id,
                        "name": "Read",
                        "input": {"file_path": f"/repo/src/loop_{turn}.py"},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call_id,
                        "content": _source(turn * 4000, 4000),
                    }
                ],
            }
        )
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "text", "text": "", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": messages,
        "tools": _tools(),
        "metadata": {"user_id": "user_0123abcd_account__session_bench-0001"},
        "temperature": 1,
    }
    # Pad the long system prompt up to the target size.
    base = len(json.dumps(body, separators=(",", ":")).encode())
    room = max(0, size - base)
    text = (_PROSE * (room // len(_PROSE) + 1))[:room]
    body["system"][1]["text"] = text
    return json.dumps(body, separators=(",", ":")).encode()


def anthropic_small(model: str = "claude-bench", *, stream: bool = False) -> bytes:
    """A short Messages request (a system line, one user turn)."""
    body = {
        "model": model,
        "max_tokens": 1024,
        "stream": stream,
        "system": "You are a helpful assistant. " + _PROSE[:400],
        "messages": [{"role": "user", "content": "Say hello. " + _PROSE[:300]}],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def openai_small(model: str = "fake-model", *, stream: bool = False) -> bytes:
    """A ~1 KB Chat Completions request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. " + _PROSE},
            {"role": "user", "content": "Summarise this in one line: " + _PROSE[:250]},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":")).encode()


if __name__ == "__main__":
    for name, data in (
        ("openai_small", openai_small()),
        ("anthropic_small", anthropic_small()),
        ("anthropic_claude_code", anthropic_claude_code()),
    ):
        print(f"{name}: {len(data):,} bytes")
