"""Which upstream made each piece of opaque reasoning (OpenAI encrypted
reasoning) a client carries in its history.

A Responses client (Codex) sends back the `reasoning` items it was given,
`encrypted_content` included. Only the upstream that produced such an item
can read it; another upstream refuses the request or, worse, misreads it.
The pipeline remembers where each item came from (relayed answers report
what they carried, `RelayRules.produced`) and sends an item only to its own
upstream: a request holding items from elsewhere, or of unknown origin, is
translated with those items left out (and the record says how many).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import msgspec

from lmbridge.core import ir

# Items remembered at most (the oldest are forgotten first).
LIMIT = 20_000


def _digest(data: str) -> bytes:
    return hashlib.blake2b(data.encode(), digest_size=16).digest()


class ReasoningOrigins:
    """Opaque reasoning -> the upstream that produced it, for this run."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._origin: OrderedDict[bytes, str] = OrderedDict()

    def remember(self, produced: list[str], upstream: str) -> None:
        for data in produced:
            key = _digest(data)
            self._origin[key] = upstream
            self._origin.move_to_end(key)
        while len(self._origin) > self.limit:
            self._origin.popitem(last=False)

    def foreign(self, req: ir.Request, upstream: str) -> int:
        """How many opaque reasoning items of `req` `upstream` did not make."""
        return sum(
            1
            for message in req.messages
            for part in message.parts
            if isinstance(part, ir.Thinking)
            and part.data
            and not part.redacted
            and self._origin.get(_digest(part.data)) != upstream
        )

    def without_foreign(self, req: ir.Request, upstream: str) -> ir.Request:
        """`req` without the opaque reasoning `upstream` did not make (its
        readable text, if any, is kept)."""
        messages = []
        for message in req.messages:
            parts: list[ir.Part] = []
            for part in message.parts:
                if (
                    isinstance(part, ir.Thinking)
                    and part.data
                    and not part.redacted
                    and self._origin.get(_digest(part.data)) != upstream
                ):
                    if part.text:
                        parts.append(msgspec.structs.replace(part, data=None))
                    continue
                parts.append(part)
            if parts:
                messages.append(ir.Message(message.role, tuple(parts)))
        return msgspec.structs.replace(req, messages=tuple(messages))
