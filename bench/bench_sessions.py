"""Upstream bytes per turn over a 40-turn agent conversation, with and
without sessions (previous_response_id chaining), against the fake upstream.

Run: .venv/bin/python bench/bench_sessions.py   (also part of `make bench`)
"""

from __future__ import annotations

import asyncio
import os
import random
import string
import sys
import tempfile
from pathlib import Path
from typing import Any

import anthropic

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "app")]

from fakes.openai_upstream import FakeOpenAIUpstream, Script, ToolCallScript  # noqa: E402
from lmbridge import config  # noqa: E402
from lmbridge.core.events import EventBus  # noqa: E402
from lmbridge.server.runner import ProxyServer  # noqa: E402

TURNS = 40
SYSTEM = "You are a coding agent. Use the tools to inspect and change the repository."
TOOLS: list[dict[str, Any]] = [
    {
        "name": name,
        "description": f"{name} tool",
        "input_schema": {"type": "object", "properties": {"arg": {"type": "string"}}},
    }
    for name in ("bash", "read_file", "write_file", "grep")
]


def tool_output(rng: random.Random) -> str:
    """A few KB of realistic-looking tool output."""
    lines = []
    for _ in range(rng.randint(40, 90)):
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 12)))
        lines.append(
            f"src/{word}.py:{rng.randint(1, 999)}:    def {word}(self, value):"
        )
    return "\n".join(lines)


async def run(sessions: bool) -> list[int]:
    fake = FakeOpenAIUpstream()
    await fake.start()
    settings = config.parse(f"""
[server]
port = 0
[[upstream]]
name = "lm"
kind = "openai"
api = "responses"
base_url = "{fake.url}"
""")
    server = ProxyServer(settings, EventBus())
    await server.start()
    rng = random.Random(7)
    headers = {"X-Claude-Code-Session-Id": "bench"} if sessions else {}
    per_turn: list[int] = []
    try:
        async with anthropic.AsyncAnthropic(
            base_url=server.url, api_key="k", max_retries=0, default_headers=headers
        ) as client:
            messages: list[dict[str, Any]] = [
                {"role": "user", "content": "Find and fix the failing test."}
            ]
            for n in range(TURNS):
                fake.script = Script(
                    text="Looking.",
                    tool_calls=[
                        ToolCallScript("bash", '{"arg": "grep -rn def"}', f"call_{n}")
                    ],
                )
                before = len(fake.requests)
                reply = await client.messages.create(
                    model="agent-model",
                    max_tokens=1000,
                    system=SYSTEM,
                    tools=TOOLS,  # type: ignore[arg-type]
                    messages=messages,  # type: ignore[arg-type]
                )
                per_turn.append(sum(len(r.raw) for r in fake.requests[before:]))
                content = [b.model_dump(exclude_none=True) for b in reply.content]
                messages.append({"role": "assistant", "content": content})
                messages.append(
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": f"call_{n}",
                                "content": tool_output(rng),
                            }
                        ],
                    }
                )
    finally:
        await server.stop()
        await fake.stop()
    return per_turn


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["LMBRIDGE_HOME"] = home
        without = await run(sessions=False)
        with_sessions = await run(sessions=True)
    print(f"{'turn':>4} {'without sessions':>17} {'with sessions':>14}")
    for n in (1, 2, 5, 10, 20, 30, 40):
        print(f"{n:>4} {without[n - 1]:>17,} {with_sessions[n - 1]:>14,}")
    total_without, total_with = sum(without), sum(with_sessions)
    print(f"total {total_without:>16,} {total_with:>14,}")
    print(f"ratio {total_without / total_with:.1f}x fewer upstream bytes with sessions")
    later = with_sessions[1:]
    print(f"with sessions, turns 2-40: min {min(later):,} max {max(later):,} bytes")


if __name__ == "__main__":
    asyncio.run(main())
