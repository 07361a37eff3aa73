"""The Continue CLI (`cn -p --auto "prompt"`) through LM Bridge's Chat door.

`cn` -> `lmbridge serve` (/v1/chat/completions, the `provider: openai`
model of ~/.continue/config.yaml, the file `lmbridge integrate continue`
writes) -> a fake Chat Completions upstream, and once -> Claude on the fake
Azure AI Foundry. Later turns are `cn -p --resume`.
"""

from __future__ import annotations

from pathlib import Path

from clients import drive, harness
from clients.clis import CONTINUE, CONTINUE_CLI, missing
from clients.fake_model import ScriptedModel

MISSING = missing(CONTINUE)


async def test_three_turn_session_with_tool_round_trip(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.session(CONTINUE_CLI, tmp_path, work, fake, trap)


async def test_tool_round_trip_on_claude_in_foundry(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.on_foundry(CONTINUE_CLI, tmp_path, work, fake, trap)
