"""A whole Anthropic `message` answer as the IR events of its stream.

Used where an answer arrived whole (an Anthropic upstream asked without
streaming, a relayed answer the app shows): the same events a streamed
answer gives, so one `Assembler` folds both.
"""

from __future__ import annotations

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols.anthropic import wire
from lmbridge.protocols.anthropic.stream import (
    BLOCK_KINDS,
    STOP_REASONS,
    add_usage,
    stream_error,
)


class _Block(msgspec.Struct):
    type: str
    id: str = ""
    name: str = ""
    text: str = ""
    thinking: str = ""
    signature: str = ""
    input: msgspec.Raw | None = None


class _Whole(msgspec.Struct):
    type: str = ""
    id: str = ""
    model: str = ""
    content: list[_Block] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: wire.UpstreamUsage | None = None
    error: wire.ErrorBody | None = None


_WHOLE = msgspec.json.Decoder(_Whole)


def decode_whole(body: bytes) -> list[ir.Event]:
    """The events of a whole `/v1/messages` answer (or of its error body)."""
    try:
        message = _WHOLE.decode(body)
    except DECODE_ERRORS:
        shown = body[:200].decode("utf-8", "replace")
        return [
            ir.StreamError(
                errors.ErrorKind.UPSTREAM_ERROR,
                f"the upstream's answer is not an Anthropic message: {shown!r}",
            )
        ]
    if message.type == "error" or message.error is not None:
        body_error = message.error or wire.ErrorBody()
        return [stream_error(body_error.type, body_error.message or "upstream error")]
    usage = ir.Usage()
    add_usage(usage, message.usage)
    out: list[ir.Event] = [
        ir.MessageStart(message.id, message.model, usage.input_tokens)
    ]
    index = 0
    for block in message.content:
        kind = BLOCK_KINDS.get(block.type)
        if kind is None:
            continue
        out.append(ir.BlockStart(index, kind, block.id, block.name))
        if kind is ir.BlockKind.TOOL_CALL:
            arguments = bytes(block.input).decode() if block.input else "{}"
            out.append(ir.ToolArgsDelta(index, arguments))
        else:
            if block.text:
                out.append(ir.TextDelta(index, block.text))
            if block.thinking:
                out.append(ir.ThinkingDelta(index, block.thinking))
            if block.signature:
                out.append(ir.SignatureDelta(index, block.signature))
        out.append(ir.BlockStop(index))
        index += 1
    reason = STOP_REASONS.get(message.stop_reason or "", ir.StopReason.END_TURN)
    out.append(ir.Finish(reason, usage, message.stop_sequence))
    return out
