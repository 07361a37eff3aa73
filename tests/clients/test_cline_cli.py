"""The Cline CLI (`cline "prompt"`) through LM Bridge's Chat front door.

Cline -> `lmbridge serve` (/v1/chat/completions, its `openai-compatible`
provider in ~/.cline/data/settings/providers.json) -> a fake Chat
Completions upstream, and once -> Claude on the fake Azure AI Foundry.

Cline 3.0.65 cannot continue a session non-interactively: `cline --id
SESSION "prompt"` (and with piped stdin) stops with "interactive mode
requires a TTY", with `--json` "JSON output mode requires a prompt argument
or piped stdin", and its ACP mode (`cline --acp`) accepts only Cline's own
sign-ins (authMethods cline, cline-pass, openai-codex). So its session here
is one user turn: the tool round trip.
"""

from __future__ import annotations

from pathlib import Path

from clients import drive, harness
from clients.clis import CLINE, CLINE_BACKGROUND, CLINE_CLI, missing
from clients.fake_model import ScriptedModel

MISSING = missing(CLINE)


async def test_tool_round_trip(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.session(
        CLINE_CLI, tmp_path, work, fake, trap, runs=1, allowed=[CLINE_BACKGROUND]
    )


async def test_tool_round_trip_on_claude_in_foundry(
    tmp_path: Path, work: Path, fake: ScriptedModel, trap: harness.ProxyTrap
) -> None:
    await drive.on_foundry(
        CLINE_CLI, tmp_path, work, fake, trap, allowed=[CLINE_BACKGROUND]
    )
