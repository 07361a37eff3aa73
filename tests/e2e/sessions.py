"""Scripted long agent sessions, one per front door (and one in plain Chat).

The client side of each turn is scripted, the assistant turns included (the
model need not choose tools well): turn N+1 sends the whole history of turn
N plus one scripted step. Steps cycle through what a long Claude Code or
Codex session holds: an assistant turn with a tool call and no text and its
tool result; a tool result in two text blocks; an assistant turn with text
and a tool call; a text-only assistant turn, then a system message inside
the conversation and a new user turn. Claude Code's first system block,
`x-anthropic-billing-header: cc_version=...; cc_entrypoint=sdk-cli;`,
changes its suffix every turn, as the real one does.

A plan may interleave a subagent (Anthropic and Chat drivers): a second,
shorter conversation with its own system prompt and history, one turn after
each main-agent turn listed in `Plan.subagent_after`. Through the Anthropic
door every request carries the same `X-Claude-Code-Session-Id` and the
subagent's also its own `X-Claude-Code-Agent-Id`, as Claude Code sends.

Each driver returns one `Turn` per request, in order, naming its agent: the
status the client saw and the time to the first streamed content (TTFT).
Used by test_long_session.py and bench/bench_long_session.py.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import openai

SYSTEM = "You are a coding agent. Answer in one short sentence."
SUBAGENT_SYSTEM = "You are a search subagent. Report what you find in one sentence."
OPENING = {
    "main": "Look at the project and tell me what it does.",
    "sub": "Find where the request handlers are defined.",
}
SESSION_ID = "3f0c9a52-7d41-4b8e-9a0e-5c2d18b6f7e1"
AGENT_ID = "a7c41e9b2d05f3e8"
REMINDER = "<system-reminder>Turn {turn}: keep answers short.</system-reminder>"
BILLING = (
    "x-anthropic-billing-header: cc_version=2.1.332.{suffix}; cc_entrypoint=sdk-cli;"
)
TOOL_NAMES = ("read_file", "list_dir")


@dataclass(frozen=True)
class Plan:
    """How long a session is and how big its parts are."""

    turns: int = 8
    max_tokens: int = 16
    result_bytes: int = 160  # size of one tool result
    reminders: bool = False  # a system reminder in every turn from turn 3
    # main-agent turns (1-based) each followed by one subagent turn
    subagent_after: tuple[int, ...] = ()


@dataclass
class Turn:
    """What the client saw of one turn."""

    status: int
    ttft: float  # seconds to the first streamed content (or to the end)
    total: float
    error: str = ""
    agent: str = "main"  # or "sub"


def schedule(plan: Plan) -> list[str]:
    """Which agent sends each request of the session, in order."""
    order = []
    for turn in range(1, plan.turns + 1):
        order.append("main")
        if turn in plan.subagent_after:
            order.append("sub")
    return order


def system_of(agent: str) -> str:
    return SUBAGENT_SYSTEM if agent == "sub" else SYSTEM


def billing_suffix(turn: int) -> str:
    """Three hex digits that change every turn, like Claude Code's."""
    return f"{(turn * 2654435761) % 4096:03x}"


def tool_output(step: int, size: int, agent: str = "main") -> str:
    """A deterministic tool result of about `size` bytes."""
    stem = "search" if agent == "sub" else "module"
    lines: list[str] = []
    n = 0
    while sum(len(line) + 1 for line in lines) < size:
        lines.append(f"src/{stem}{step}.py:{n + 1}: def handler_{step}_{n}(value): ...")
        n += 1
    return "\n".join(lines)[:size]


def _call_id(prefix: str, step: int, agent: str) -> str:
    return f"{prefix}_{'sub' if agent == 'sub' else ''}{step:02d}"


def step_kind(step: int) -> str:
    """What scripted step `step` (0-based) appends to the history."""
    if step % 4 == 3:
        return "system"  # text-only answer, a system message, a user turn
    return {1: "two-blocks", 2: "text-and-call"}.get(step, "call")


def _args(step: int, agent: str = "main") -> str:
    stem = "search" if agent == "sub" else "module"
    return json.dumps({"path": f"src/{stem}{step}.py"}, separators=(",", ":"))


# ------------------------------------------------------------------ Anthropic

ANTHROPIC_TOOLS: list[dict[str, Any]] = [
    {
        "name": name,
        "description": f"{name.replace('_', ' ')} at a path",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    }
    for name in TOOL_NAMES
]


def anthropic_step(step: int, plan: Plan, agent: str = "main") -> list[dict[str, Any]]:
    """The messages Claude Code appends for scripted step `step`."""
    kind = step_kind(step)
    output = tool_output(step, plan.result_bytes, agent)
    call = {
        "type": "tool_use",
        "id": _call_id("toolu", step, agent),
        "name": TOOL_NAMES[step % 2],
        "input": json.loads(_args(step, agent)),
    }
    if kind == "system":
        return [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "I read them."}],
            },
            {"role": "system", "content": REMINDER.format(turn=step + 1)},
            {"role": "user", "content": "Go on with the next file."},
        ]
    content: str | list[dict[str, str]] = output
    if kind == "two-blocks":
        half = len(output) // 2
        content = [
            {"type": "text", "text": output[:half]},
            {"type": "text", "text": output[half:]},
        ]
    result: list[dict[str, Any]] = [
        {"type": "tool_result", "tool_use_id": call["id"], "content": content}
    ]
    if plan.reminders and step >= 1:  # step 1 is sent in turn 3
        result.append({"type": "text", "text": REMINDER.format(turn=step + 1)})
    blocks: list[dict[str, Any]] = [call]
    if kind == "text-and-call":
        blocks.insert(0, {"type": "text", "text": "Let me look at that file."})
    return [
        {"role": "assistant", "content": blocks},
        {"role": "user", "content": result},
    ]


async def anthropic_session(base_url: str, plan: Plan, model: str) -> list[Turn]:
    """A Claude Code-shaped session through the Anthropic front door."""
    histories: dict[str, list[dict[str, Any]]] = {
        agent: [{"role": "user", "content": OPENING[agent]}] for agent in OPENING
    }
    done = dict.fromkeys(OPENING, 0)
    turns = []
    async with anthropic.AsyncAnthropic(
        base_url=base_url, api_key="k", max_retries=0
    ) as client:
        for n, agent in enumerate(schedule(plan)):
            messages, turn = histories[agent], done[agent]
            done[agent] += 1
            if turn:
                messages += anthropic_step(turn - 1, plan, agent)
            system = [
                # the suffix changes with every request, the subagent's too
                {"type": "text", "text": BILLING.format(suffix=billing_suffix(n))},
                {
                    "type": "text",
                    "text": system_of(agent),
                    "cache_control": {"type": "ephemeral"},
                },
            ]
            headers = {"X-Claude-Code-Session-Id": SESSION_ID}
            if agent == "sub":
                headers["X-Claude-Code-Agent-Id"] = AGENT_ID
            request = {
                "model": model,
                "max_tokens": plan.max_tokens,
                "system": system,
                "tools": ANTHROPIC_TOOLS,
                "messages": list(messages),
                "extra_headers": headers,
            }
            ask = functools.partial(_stream_anthropic, client, request)
            turns.append(await _timed(ask, anthropic.APIStatusError, agent))
    return turns


async def _stream_anthropic(
    client: anthropic.AsyncAnthropic, request: dict[str, Any], mark: Callable[[], None]
) -> None:
    async with client.messages.stream(**request) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                mark()


# ------------------------------------------------------------------ Chat

CHAT_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": t["name"],
            "description": t["description"],
            "parameters": t["input_schema"],
        },
    }
    for t in ANTHROPIC_TOOLS
]


def chat_step(
    step: int, plan: Plan, *, ideal: bool, agent: str = "main"
) -> list[dict[str, Any]]:
    """The Chat messages for scripted step `step`.

    `ideal` is the form every server accepts and that keeps the prompt
    growing: assistant tool calls with content "", tool results as one
    string, a system message where the client put it. Otherwise it
    is what OpenAI SDK clients send: content None beside tool calls and a
    tool result as a list of text parts.
    """
    kind = step_kind(step)
    output = tool_output(step, plan.result_bytes, agent)
    if kind == "system":
        return [
            {"role": "assistant", "content": "I read them."},
            {"role": "system", "content": REMINDER.format(turn=step + 1)},
            {"role": "user", "content": "Go on with the next file."},
        ]
    call = {
        "id": _call_id("call", step, agent),
        "type": "function",
        "function": {"name": TOOL_NAMES[step % 2], "arguments": _args(step, agent)},
    }
    text = "Let me look at that file." if kind == "text-and-call" else None
    assistant = {
        "role": "assistant",
        "content": text or ("" if ideal else None),
        "tool_calls": [call],
    }
    content: str | list[dict[str, str]] = output
    if kind == "two-blocks" and not ideal:
        half = len(output) // 2
        content = [
            {"type": "text", "text": output[:half]},
            {"type": "text", "text": output[half:]},
        ]
    out: list[dict[str, Any]] = [
        assistant,
        {"role": "tool", "tool_call_id": call["id"], "content": content},
    ]
    if plan.reminders and step >= 1:  # turn 3 on; as LM Bridge sends Claude Code's
        out.append({"role": "user", "content": REMINDER.format(turn=step + 1)})
    return out


async def chat_session(
    base_url: str, plan: Plan, model: str, *, ideal: bool = False
) -> list[Turn]:
    """The same session in Chat Completions (`base_url` without /v1); a
    subagent is a Chat conversation of its own."""
    histories: dict[str, list[dict[str, Any]]] = {
        agent: [
            {"role": "system", "content": system_of(agent)},
            {"role": "user", "content": OPENING[agent]},
        ]
        for agent in OPENING
    }
    done = dict.fromkeys(OPENING, 0)
    turns = []
    async with openai.AsyncOpenAI(
        base_url=base_url + "/v1", api_key="k", max_retries=0
    ) as client:
        for agent in schedule(plan):
            messages, turn = histories[agent], done[agent]
            done[agent] += 1
            if turn:
                messages += chat_step(turn - 1, plan, ideal=ideal, agent=agent)

            request = {
                "model": model,
                "max_tokens": plan.max_tokens,
                "temperature": 0,
                "tools": CHAT_TOOLS,
                "messages": list(messages),
                "stream": True,
            }
            ask = functools.partial(_stream_chat, client, request)
            turns.append(await _timed(ask, openai.APIStatusError, agent))
    return turns


async def _stream_chat(
    client: openai.AsyncOpenAI, request: dict[str, Any], mark: Callable[[], None]
) -> None:
    stream = await client.chat.completions.create(**request)
    async for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None and (delta.content or delta.tool_calls):
            mark()


# ------------------------------------------------------------------ Responses


def responses_step(step: int, plan: Plan) -> list[dict[str, Any]]:
    """The input items Codex appends for scripted step `step`."""
    kind = step_kind(step)
    output = tool_output(step, plan.result_bytes)
    if kind == "system":
        said = {"type": "output_text", "text": "I read them.", "annotations": []}
        return [
            {"type": "message", "role": "assistant", "content": [said]},
            {
                "type": "message",
                "role": "developer",
                "content": [
                    {"type": "input_text", "text": REMINDER.format(turn=step + 1)}
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Go on with the next file."}
                ],
            },
        ]
    items: list[dict[str, Any]] = []
    if kind == "text-and-call":
        said = {
            "type": "output_text",
            "text": "Let me look at that file.",
            "annotations": [],
        }
        items.append({"type": "message", "role": "assistant", "content": [said]})
    call_id = f"call_{step:02d}"
    items.append(
        {
            "type": "function_call",
            "call_id": call_id,
            "name": TOOL_NAMES[step % 2],
            "arguments": _args(step),
        }
    )
    result: str | list[dict[str, str]] = output
    if kind == "two-blocks":
        half = len(output) // 2
        result = [
            {"type": "input_text", "text": output[:half]},
            {"type": "input_text", "text": output[half:]},
        ]
    items.append({"type": "function_call_output", "call_id": call_id, "output": result})
    return items


RESPONSES_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": t["name"],
        "description": t["description"],
        "parameters": t["input_schema"],
        "strict": False,
    }
    for t in ANTHROPIC_TOOLS
]


async def responses_session(base_url: str, plan: Plan, model: str) -> list[Turn]:
    """A Codex-shaped session: `store: false`, the full history every turn."""
    items: list[dict[str, Any]] = [
        {
            "type": "message",
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "Look at the project and tell me what it does.",
                }
            ],
        }
    ]
    turns = []
    async with openai.AsyncOpenAI(
        base_url=base_url + "/v1", api_key="k", max_retries=0
    ) as client:
        for turn in range(plan.turns):
            if turn:
                items += responses_step(turn - 1, plan)

            request = {
                "model": model,
                "instructions": SYSTEM,
                "input": list(items),
                "tools": RESPONSES_TOOLS,
                "max_output_tokens": plan.max_tokens,
                "temperature": 0,
                "store": False,
                "stream": True,
            }
            ask = functools.partial(_stream_responses, client, request)
            turns.append(await _timed(ask, openai.APIStatusError))
    return turns


async def _stream_responses(
    client: openai.AsyncOpenAI, request: dict[str, Any], mark: Callable[[], None]
) -> None:
    stream = await client.responses.create(**request)
    async for event in stream:
        if event.type.endswith(".delta"):
            mark()


# ------------------------------------------------------------------ timing


async def _timed(
    ask: Callable[[Callable[[], None]], Awaitable[None]],
    status_error: type[Exception],
    agent: str = "main",
) -> Turn:
    """Run one turn; its status, TTFT and total time."""
    started = time.perf_counter()
    first: list[float] = []

    def mark() -> None:
        if not first:
            first.append(time.perf_counter() - started)

    try:
        await ask(mark)
    except status_error as exc:
        total = time.perf_counter() - started
        status = int(getattr(exc, "status_code", 0) or 599)
        return Turn(status, total, total, str(exc)[:500], agent)
    total = time.perf_counter() - started
    return Turn(200, first[0] if first else total, total, agent=agent)
