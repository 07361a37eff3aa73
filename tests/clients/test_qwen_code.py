"""Qwen Code (`qwen --yolo "prompt"`) through LM Bridge's Chat front door.

Qwen Code -> `lmbridge serve` (/v1/chat/completions; OPENAI_BASE_URL,
OPENAI_API_KEY, OPENAI_MODEL with `security.auth.selectedType = "openai"`)
-> a fake Chat Completions upstream, and once -> Claude on the fake Azure
AI Foundry. Later turns are `qwen --continue`.
"""

from __future__ import annotations

from pathlib import Path

from clients import drive, harness
from clients.clis import QWEN, QWEN_CLI, missing
from clients.fake_model import ScriptedModel

MISSING = missing(QWEN)


async def test_three_turn_session_with_tool_round_trip(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.session(QWEN_CLI, tmp_path, work, fake, trap)


async def test_tool_round_trip_on_claude_in_foundry(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.on_foundry(QWEN_CLI, tmp_path, work, fake, trap)
