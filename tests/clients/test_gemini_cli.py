"""Gemini CLI (`gemini --yolo -p "prompt"`) through LM Bridge's Gemini door.

Gemini CLI -> `lmbridge serve` (POST /v1beta/models/{model}:streamGenerate
Content?alt=sse, GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY, sent as
`x-goog-api-key`) -> a fake Chat Completions upstream. Later turns are
`gemini --resume latest`. Skipped, with one line, while LM Bridge has no
Gemini API front door (its generateContent route answers 404).
"""

from __future__ import annotations

from pathlib import Path

from clients import drive, harness
from clients.clis import GEMINI, GEMINI_CLI, missing
from clients.fake_model import ScriptedModel

MISSING = missing(GEMINI)
DOOR = "/v1beta/models/fake-model:generateContent"


async def test_three_turn_session_with_tool_round_trip(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.session(GEMINI_CLI, tmp_path, work, fake, trap, door=DOOR)
