"""Driving one of the newer CLIs through `lmbridge serve` (see scenarios.py).

`session` runs the three-turn conversation against the Chat Completions
fake; `on_foundry` runs its first turn (the tool round trip) with the model
routed to Claude on the fake Azure AI Foundry, a Messages upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest

from clients import harness
from clients.clis import Cli
from clients.fake_model import ScriptedModel
from clients.scenarios import (
    CLAUDE_DEPLOYMENT,
    CLAUDE_MODEL,
    FOUNDRY_KEY,
    FOUNDRY_KEY_ENV,
    NOTE,
    Conversation,
    ScriptedFoundry,
    foundry_config,
)

TIMEOUT = 90


def conversation(cli: Cli) -> Conversation:
    return Conversation(tool=cli.tool, args=cli.tool_args("cat note.txt"))


async def _run(
    cli: Cli,
    env: dict[str, str],
    work: Path,
    bridge: harness.Bridge,
    prompt: str,
    resume: bool,
) -> harness.Result:
    result = await harness.run(cli.argv(prompt, resume), env, work, timeout=TIMEOUT)
    assert result.returncode == 0, result.explain() + "\n" + "".join(bridge.output)
    return result


async def _absent(url: str) -> bool:
    """Whether LM Bridge answers a POST to `url` with 404 (no such route)."""
    async with aiohttp.ClientSession() as http, http.post(url, json={}) as answer:
        return answer.status == 404


def _check_trap(trap: harness.ProxyTrap, allowed: Sequence[str]) -> None:
    """Nothing but LM Bridge was contacted (but for `allowed` lines)."""
    left = [line for line in trap.lines if line not in allowed]
    assert left == [], trap.lines


async def session(
    cli: Cli,
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    trap: harness.ProxyTrap,
    *,
    runs: int = 3,
    allowed: Sequence[str] = (),
    door: str = "",
) -> list[harness.Result]:
    """`runs` user turns (the later ones resuming the session) through LM
    Bridge to the Chat fake; checks what the fake received. With `door` (a
    POST path), the test is skipped while LM Bridge answers it 404."""
    talk = conversation(cli)
    fake.responder = talk.respond
    (work / "note.txt").write_text(NOTE + "\n")
    results = []
    async with harness.lmbridge_serve(tmp_path, fake.url) as bridge:
        if door and await _absent(bridge.url + door):
            pytest.skip(f"LM Bridge has no front door for {cli.name} yet ({door}: 404)")
        env = cli.setup(tmp_path, bridge.url, trap.url, "fake-model")
        for n in range(runs):
            result = await _run(cli, env, work, bridge, talk.prompts[n], n > 0)
            assert talk.answer(n + 1) in result.stdout, result.explain()
            results.append(result)
    _check_trap(trap, allowed)
    bodies = fake.bodies("/v1/chat/completions")
    assert all(b["model"] == "fake-model" for b in bodies)
    talk.check("chat", bodies, runs)
    return results


async def on_foundry(
    cli: Cli,
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    trap: harness.ProxyTrap,
    *,
    allowed: Sequence[str] = (),
) -> harness.Result:
    """The tool round trip with the model on Claude in Azure AI Foundry."""
    talk = conversation(cli)
    (work / "note.txt").write_text(NOTE + "\n")
    foundry = ScriptedFoundry(talk)
    await foundry.start()
    try:
        async with harness.lmbridge_serve(
            tmp_path,
            fake.url,
            foundry_config(foundry),
            {FOUNDRY_KEY_ENV: FOUNDRY_KEY},
        ) as bridge:
            env = cli.setup(tmp_path, bridge.url, trap.url, CLAUDE_MODEL)
            result = await _run(cli, env, work, bridge, talk.prompts[0], False)
    finally:
        await foundry.stop()
    assert talk.answer(1) in result.stdout, result.explain()
    _check_trap(trap, allowed)
    bodies = foundry.claude_bodies()
    assert all(b["model"] == CLAUDE_DEPLOYMENT for b in bodies)
    talk.check("messages", bodies, 1)
    assert fake.requests == []  # nothing went to the Chat upstream
    return result
