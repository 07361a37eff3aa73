"""Whole agent sessions through LM Bridge to a real model, one per front door.

Each session is 10 turns of a scripted tool-using conversation (see
sessions.py): the Anthropic SDK shaped like Claude Code (billing-header
system block whose suffix changes every turn, a role "system" message
inside `messages`), the OpenAI Chat SDK, and the OpenAI Responses SDK
shaped like Codex (`store: false`, the full history every turn). A
recording proxy (recorder.py) sits between LM Bridge and llama.cpp's
server, so the tests see every upstream body.

Two promises are checked per front door: every turn is answered (200),
and the upstream prompt only grows: turn N+1's body repeats turn N's up to
the end of its messages, with every other field the same, so the server's
prompt cache holds. TTFT per turn is reported, not asserted (timings
belong in bench/bench_long_session.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from e2e import sessions
from e2e.doors import run_session
from e2e.recorder import Exchange, prefix_break

PLAN = sessions.Plan(turns=10, max_tokens=8, result_bytes=120)


@dataclass
class Run:
    """One session: what the client saw and what reached the server."""

    turns: list[sessions.Turn]
    upstream: list[Exchange]

    def report(self) -> str:
        return "\n".join(
            f"turn {i}: {t.status} ttft {t.ttft:.2f}s total {t.total:.2f}s"
            f" upstream first byte {u.first_byte:.2f}s {t.error[:160]}"
            for i, (t, u) in enumerate(zip(self.turns, self.upstream, strict=False))
        )


async def _run(llama_url: str, door: str) -> Run:
    turns, recorder = await run_session(llama_url, door, PLAN, kind="openai")
    return Run(turns, recorder.chat())


_RUNS: dict[str, Run] = {}


@pytest.fixture
def session_run(llama_server: str, request: pytest.FixtureRequest) -> Run:
    """The session of the test's front door, run once per module."""
    door: str = request.param
    if door not in _RUNS:
        _RUNS[door] = asyncio.run(_run(llama_server, door))
    return _RUNS[door]


def door(name: str, *defects: str) -> object:
    """A front-door parameter, expected to fail while `defects` stand."""
    if not defects:
        return pytest.param(name, id=name)
    mark = pytest.mark.xfail(strict=True, reason="; ".join(defects))
    return pytest.param(name, id=name, marks=mark)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "session_run",
    [door("anthropic"), door("chat"), door("responses")],
    indirect=True,
)
def test_every_turn_is_answered(
    session_run: Run, record_property: Callable[[str, object], None]
) -> None:
    record_property("ttft_s", [round(t.ttft, 3) for t in session_run.turns])
    statuses = [t.status for t in session_run.turns]
    assert statuses == [200] * PLAN.turns, session_run.report()
    assert len(session_run.upstream) == PLAN.turns, "one upstream request per turn"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "session_run",
    [door("anthropic"), door("chat"), door("responses")],
    indirect=True,
)
def test_each_upstream_prompt_extends_the_last(session_run: Run) -> None:
    bodies = [e.raw for e in session_run.upstream]
    assert len(bodies) == PLAN.turns
    breaks = {
        f"turn {n + 1}": why
        for n, (a, b) in enumerate(itertools.pairwise(bodies))
        if (why := prefix_break(a, b)) is not None
    }
    assert not breaks, json.dumps(breaks, indent=1)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("session_run", [door("anthropic")], indirect=True)
def test_the_billing_header_stays_with_anthropic(session_run: Run) -> None:
    """Claude Code's billing header means nothing to a local server."""
    for exchange in session_run.upstream:
        assert b"x-anthropic-billing-header" not in exchange.raw


@pytest.mark.timeout(300)
@pytest.mark.parametrize("session_run", [door("anthropic")], indirect=True)
def test_a_system_message_stays_where_the_client_put_it(session_run: Run) -> None:
    """Not hoisted into the top system prompt, which would change message 0."""
    last = session_run.upstream[-1].body["messages"]
    reminder = sessions.REMINDER.format(turn=4)
    at = [i for i, m in enumerate(last) if reminder in json.dumps(m["content"])]
    assert at, "the system message did not reach the server"
    assert at[0] > 1, f"the system message moved to message {at[0]}"
    assert reminder not in json.dumps(last[0])
