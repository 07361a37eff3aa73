"""Relaying Anthropic Messages unchanged to a Messages upstream.

LM Bridge renames the model, lowers `max_tokens` to the route's limit and
filters the tools by name for a session that allows only some. The stream
is complete at `message_stop` (or the upstream's own `error` event, after
which Anthropic's grammar allows nothing); usage comes in `message_start`
(input) and `message_delta` (output).
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import overflow
from lmbridge.protocols.anthropic import billing, wire
from lmbridge.protocols.anthropic.stream import AnthropicStreamEncoder, add_usage
from lmbridge.protocols.base import BodyEdit
from lmbridge.protocols.bodyedit import edit_body, named
from lmbridge.protocols.relaywatch import unreadable
from lmbridge.protocols.sse import SSEEvent


class _Probe(msgspec.Struct):
    """What the relay reads of an event (or of a whole message)."""

    type: str = ""
    message: wire.UpstreamMessage | None = None
    usage: wire.UpstreamUsage | None = None
    error: wire.ErrorBody | None = None
    content_block: wire.UpstreamBlock | None = None
    delta: wire.UpstreamDelta | None = None
    content: list[wire.UpstreamBlock] = msgspec.field(default_factory=list)


_PROBE = msgspec.json.Decoder(_Probe)


class AnthropicRelayRules:
    """A relayed Messages stream, up to `message_stop`."""

    __slots__ = ("_model", "_signatures", "ended", "error", "usage")

    def __init__(self, request: ir.Request) -> None:
        self._model = request.model
        self._signatures: list[str] = []
        self.ended = False
        self.usage: ir.Usage | None = None
        self.error: str | None = None

    def check(self, event: SSEEvent) -> str | None:
        if event.event == "message_stop":
            self.ended = True
        data = event.data
        if not data:
            return None
        try:
            probe = _PROBE.decode(data)
        except DECODE_ERRORS:
            return unreadable(data)
        if probe.type == "message_start" and probe.message is not None:
            self._add(probe.message.usage)
        elif probe.type == "message_delta":
            self._add(probe.usage)
        elif probe.type == "message_stop":
            self.ended = True
        elif probe.type == "error":
            message = (probe.error or wire.ErrorBody()).message or "upstream error"
            if overflow.error(message) is not None:
                # Restated with its counts (the relay ends the stream with
                # ours), so Claude Code knows how much to compact.
                return message
            self.ended = True
            self.error = message
        elif probe.delta is not None and probe.delta.signature:
            self._signatures.append(probe.delta.signature)
        elif probe.content_block is not None and probe.content_block.signature:
            self._signatures.append(probe.content_block.signature)
        return None

    def _add(self, usage: wire.UpstreamUsage | None) -> None:
        if usage is not None:
            self.usage = self.usage or ir.Usage()
            add_usage(self.usage, usage)

    @property
    def produced(self) -> list[str]:
        return list(self._signatures)

    def fail(self, error: ir.StreamError) -> bytes:
        if self.ended:
            return b""
        return AnthropicStreamEncoder(model=self._model).encode(error)


class AnthropicPassthrough:
    """Anthropic Messages relayed to a Messages upstream."""

    api = "anthropic"

    def edit(self, body: dict[str, Any], edit: BodyEdit) -> None:
        edit_body(body, edit, ("max_tokens",), named)
        if edit.drop_platform_block:
            billing.strip_body(body)

    def needs_edit(self, body: bytes) -> bool:
        return False

    def relayable(self, request: ir.Request) -> bool:
        return True

    def whole_usage(self, body: bytes) -> ir.Usage | None:
        probe = _PROBE.decode(body)
        if probe.usage is None:
            return None
        usage = ir.Usage()
        add_usage(usage, probe.usage)
        return usage

    def whole_produced(self, body: bytes) -> list[str]:
        try:
            blocks = _PROBE.decode(body).content
        except DECODE_ERRORS:
            return []
        return [b.signature for b in blocks if b.signature]

    def rules(self, request: ir.Request) -> AnthropicRelayRules:
        return AnthropicRelayRules(request)
