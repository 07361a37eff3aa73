"""What LM Bridge remembers of Responses answers.

A Responses client may name an earlier answer with `previous_response_id`
instead of resending the conversation. LM Bridge keeps each stored turn's
full message history itself, so this works whatever API the upstream
speaks (a chat-only server included). `store: false` turns are not kept
(Codex sends them with the whole history every turn). Memory is bounded;
the oldest turns are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols import websearch

DEFAULT_LIMIT = 2000


class ResponsesMemory:
    """Message histories by the response id the client was given."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._histories: OrderedDict[str, tuple[ir.Message, ...]] = OrderedDict()

    def expand(self, req: ir.Request) -> ir.Request:
        """`req` with the history its `previous_response_id` names prepended.

        Raises NotFound (404) for an id LM Bridge does not know.
        """
        previous = req.extras.get("previous_response_id")
        if not isinstance(previous, str) or not previous:
            return req
        history = self._histories.get(previous)
        if history is None:
            raise errors.NotFound(
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        self._histories.move_to_end(previous)
        extras = {k: v for k, v in req.extras.items() if k != "previous_response_id"}
        return msgspec.structs.replace(
            req, messages=history + req.messages, extras=extras
        )

    def remember(self, response_id: str, req: ir.Request, resp: ir.Response) -> None:
        """Keep the history ending in `resp` under `response_id`."""
        if req.extras.get("store") is False or not response_id:
            return
        history = (*req.messages, *websearch.answer_messages(resp.parts))
        self._histories[response_id] = history
        self._histories.move_to_end(response_id)
        while len(self._histories) > self.limit:
            self._histories.popitem(last=False)
