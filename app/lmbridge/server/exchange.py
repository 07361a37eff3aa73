"""What a stateful API adds around one model call (the chat service, the
conversation store, Responses' `previous_response_id`), for the pipeline.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lmbridge.core import ir
from lmbridge.server.responses_memory import ResponsesMemory
from lmbridge.upstreams.router import Resolved

# What a kept answer says when the client left before its end.
CLIENT_GONE = "the client went away"


class Exchange:
    """What a stateful API adds around one model call; the base adds nothing.

    `begin` may rewrite the request before it is routed (expand a stored
    conversation), `routed` may refuse it once its target is known, and
    `finished` keeps the outcome: the answer (partial when `failure` says
    why it broke off). On a stream, `finished` runs before the client is
    sent the answer's end, so a client that saw the end finds it kept; if
    `finished` raises our error, the client gets that error instead.
    """

    async def begin(self, req: ir.Request) -> ir.Request:
        return req

    async def routed(self, req: ir.Request, resolved: Resolved) -> None:
        return None

    async def finished(
        self, req: ir.Request, answer: ir.Response, failure: str | None
    ) -> None:
        return None

    @property
    def keeps_answers(self) -> bool:
        """Whether `finished` needs the answer (so it must be assembled)."""
        return type(self).finished is not Exchange.finished


@runtime_checkable
class IdentifiedEncoder(Protocol):
    @property
    def response_id(self) -> str: ...


class MemoryExchange(Exchange):
    """Responses' `previous_response_id`, answered from LM Bridge's memory."""

    def __init__(self, memory: ResponsesMemory) -> None:
        self.memory = memory

    async def begin(self, req: ir.Request) -> ir.Request:
        return self.memory.expand(req)

    async def finished(
        self, req: ir.Request, answer: ir.Response, failure: str | None
    ) -> None:
        if failure is None:
            self.memory.remember(answer.id, req, answer)
