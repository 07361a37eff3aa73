"""A scripted session from each front door through LM Bridge to a real
model's server, with a `Recorder` between LM Bridge and the server: what
test_long_session.py and test_llamacpp_sessions.py both run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from e2e import sessions
from e2e.llama_server import MODEL_ID
from e2e.recorder import Recorder
from lmbridge import config
from support import running

MODEL = "claude-sonnet-4-6"  # what the clients ask for; routed to MODEL_ID
Session = Callable[[str, sessions.Plan, str], Awaitable[list[sessions.Turn]]]
DOORS: dict[str, Session] = {
    "anthropic": sessions.anthropic_session,
    "chat": sessions.chat_session,
    "responses": sessions.responses_session,
}


async def run_session(
    server_url: str, door: str, plan: sessions.Plan, *, kind: str, metrics: bool = False
) -> tuple[list[sessions.Turn], Recorder]:
    """`door`'s session of `plan` through a proxy whose one upstream (of
    `kind`) is the server at `server_url`, behind a recorder (reading the
    server's prompt-token counter when `metrics`): what the client saw, and
    the recorder with every upstream exchange."""
    recorder = Recorder(server_url, metrics=metrics)
    await recorder.start()
    settings = config.parse(f"""
[server]
port = 0

[[upstream]]
name = "llama"
kind = "{kind}"
base_url = "{recorder.url}"

[[route]]
model = "claude-*"
upstream = "llama"
target = "{MODEL_ID}"
""")
    try:
        async with running(settings) as proxy:
            turns = await DOORS[door](proxy.url, plan, MODEL)
    finally:
        await recorder.stop()
    return turns, recorder
