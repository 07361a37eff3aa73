"""OpenCode (`opencode run`) through LM Bridge's Chat Completions front door.

OpenCode -> `lmbridge serve` (/v1/chat/completions, an `@ai-sdk/openai-
compatible` provider `lmbridge` in its opencode.json) -> a fake Chat
Completions upstream, and once -> Claude on the fake Azure AI Foundry.
Later turns are `opencode run --continue`.
"""

from __future__ import annotations

from pathlib import Path

from clients import drive, harness
from clients.clis import OPENCODE, OPENCODE_BACKGROUND, OPENCODE_CLI, missing
from clients.fake_model import ScriptedModel

MISSING = missing(OPENCODE)


async def test_three_turn_session_with_tool_round_trip(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.session(
        OPENCODE_CLI, tmp_path, work, fake, trap, allowed=[OPENCODE_BACKGROUND]
    )


async def test_tool_round_trip_on_claude_in_foundry(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.on_foundry(
        OPENCODE_CLI, tmp_path, work, fake, trap, allowed=[OPENCODE_BACKGROUND]
    )
