"""The text tool-call repair applies to Claude on Foundry too (the
original OpenAI-compatible route)."""

from __future__ import annotations

import json

from fakes.azure_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.azure_fixtures import FakeAz, foundry_settings
from fakes.foundry import FakeFoundry
from fakes.openai_upstream import Script
from support import oai, running

MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def test_text_tool_calls_from_claude_on_foundry_are_repaired(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_foundry.script = Script(
        text='Checking.\n<tool_call>{"name": "get_weather", "arguments": '
        '{"city": "Oslo"}}</tool_call>'
    )
    async with running(foundry_settings(fake_foundry)) as proxy, oai(proxy) as c:
        reply = await c.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=MESSAGES,  # type: ignore[arg-type]
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert "<tool_call>" not in (choice.message.content or "")
