"""Chat Completions upstream answers -> IR events."""

from __future__ import annotations

import uuid

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import overflow
from lmbridge.protocols.openai_chat import wire
from lmbridge.protocols.openai_chat.blocks import Blocks
from lmbridge.protocols.sse import SSEParser

_chunk = msgspec.json.Decoder(wire.Chunk)
_encode_chunk = msgspec.json.Encoder().encode
_envelope = msgspec.json.Decoder(wire.ErrorEnvelope)

FINISH_REASONS = {
    "stop": ir.StopReason.END_TURN,
    "length": ir.StopReason.MAX_TOKENS,
    "tool_calls": ir.StopReason.TOOL_USE,
    "function_call": ir.StopReason.TOOL_USE,
    "content_filter": ir.StopReason.REFUSAL,
}


def _field(obj: object, name: str) -> object:
    return obj.get(name) if isinstance(obj, dict) else None


def usage_from_wire(usage: wire.UsageWire | None, timings: object = None) -> ir.Usage:
    """IR usage of Chat usage; the cached count from `prompt_tokens_details`,
    else from llama.cpp's `timings` (`cache_n`), else unknown (None)."""
    if usage is None:
        return usage_from_timings(timings) or ir.Usage()
    prompt = usage.prompt_tokens or 0
    cached = ir.cached_count(
        _field(usage.prompt_tokens_details, "cached_tokens"), prompt
    )
    if cached is None:
        cached = ir.cached_count(_field(timings, "cache_n"), prompt)
    return ir.Usage(
        input_tokens=prompt,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=cached,
        reasoning_tokens=(
            usage.completion_tokens_details or wire.CompletionDetails()
        ).reasoning_tokens
        or 0,
    )


def usage_from_timings(timings: object) -> ir.Usage | None:
    """IR usage of llama.cpp's `timings` alone (a stream without `usage`):
    the prompt is `cache_n` reused plus `prompt_n` evaluated tokens. None
    when they are not counts."""
    cached = ir.cached_count(_field(timings, "cache_n"))
    evaluated = ir.cached_count(_field(timings, "prompt_n"))
    if cached is None or evaluated is None:
        return None
    output = ir.cached_count(_field(timings, "predicted_n")) or 0
    return ir.Usage(
        input_tokens=cached + evaluated, output_tokens=output, cached_tokens=cached
    )


def with_timings(usage: ir.Usage | None, timings: object) -> ir.Usage | None:
    """`usage` with its unknown cached count taken from `timings`."""
    if usage is None:
        return usage_from_timings(timings)
    if usage.cached_tokens is None:
        usage.cached_tokens = ir.cached_count(
            _field(timings, "cache_n"), usage.input_tokens or None
        )
    return usage


class ChatStreamDecoder:
    """Incremental decoder of a Chat Completions SSE stream."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._started = False
        self._finished = False
        self._blocks = Blocks()
        self._finish_reason: str | None = None
        self._usage: ir.Usage | None = None
        self._timings: object = None

    def feed(self, data: bytes) -> list[ir.Event]:
        out: list[ir.Event] = []
        if self._finished:
            return out
        for event in self._sse.feed(data):
            self._event(event.data, out)
            if self._finished:
                break
        return out

    def whole(self, body: bytes) -> list[ir.Event]:
        """The events of a whole (non-streamed) chat.completion answer."""
        try:
            chunk = _chunk.decode(body)
        except DECODE_ERRORS:
            out: list[ir.Event] = []
            self._fail(out, f"the upstream's answer is not JSON: {body[:200]!r}")
            return out
        for choice in chunk.choices[:1]:
            for i, call in enumerate((choice.message or wire.Delta()).tool_calls or ()):
                call.index = i
        data = _encode_chunk(chunk)
        out = []
        self._event(data, out)
        if not self._finished:
            self._finish(out)
        return out

    def close(self) -> list[ir.Event]:
        out: list[ir.Event] = []
        if not self._finished:
            for event in self._sse.flush():
                self._event(event.data, out)
        if not self._finished:
            if self._finish_reason is not None:
                self._finish(out)
            else:
                self._finished = True
                out.append(
                    ir.StreamError(
                        errors.ErrorKind.UPSTREAM_ERROR,
                        "the upstream closed the stream before finishing its answer",
                    )
                )
        return out

    # ------------------------------------------------------------------

    def _event(self, data: bytes, out: list[ir.Event]) -> None:
        if data == b"[DONE]":
            self._finish(out)
            return
        try:
            chunk = _chunk.decode(data)
        except DECODE_ERRORS:
            self._fail(
                out, f"the upstream sent an unreadable stream event: {data[:200]!r}"
            )
            return
        if chunk.error is not None:
            err = chunk.error
            message = err if isinstance(err, str) else err.message
            self._fail(out, message or "the upstream reported an error", 502, data)
            return
        if not self._started:
            self._started = True
            out.append(
                ir.MessageStart(chunk.id or f"chatcmpl-{uuid.uuid4().hex}", chunk.model)
            )
        if chunk.timings is not None:
            self._timings = chunk.timings
            self._usage = with_timings(self._usage, chunk.timings)
        if chunk.usage is not None:
            self._usage = usage_from_wire(chunk.usage, self._timings)
        for choice in chunk.choices[:1]:
            delta = choice.delta or choice.message
            if delta is not None:
                self._delta(delta, out)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason

    def _delta(self, delta: wire.Delta, out: list[ir.Event]) -> None:
        # Parallel tool calls may interleave: `Blocks` keeps IR sequential.
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            self._blocks.text(ir.BlockKind.THINKING, reasoning, out)
        text = delta.content or delta.refusal
        if text:
            self._blocks.text(ir.BlockKind.TEXT, text, out)
        for call in delta.tool_calls or ():
            self._blocks.tool(call, out)

    def _finish(self, out: list[ir.Event]) -> None:
        if not self._started:
            self._fail(out, "the upstream ended the stream without an answer")
            return
        self._blocks.close(out)
        reason = FINISH_REASONS.get(
            self._finish_reason or "stop", ir.StopReason.END_TURN
        )
        if self._blocks.called and reason is ir.StopReason.END_TURN:
            reason = ir.StopReason.TOOL_USE
        out.append(ir.Finish(reason, self._usage or ir.Usage()))
        self._finished = True

    def _fail(
        self,
        out: list[ir.Event],
        message: str,
        status: int = 502,
        event: bytes | None = None,
    ) -> None:
        self._finished = True
        kind = errors.ErrorKind.UPSTREAM_ERROR
        if (found := overflow.stream_error(message, body=event)) is not None:
            kind = errors.ErrorKind.CONTEXT_OVERFLOW
            message, status = found
        out.append(ir.StreamError(kind, message, status))


def parse_error(status: int, body: bytes) -> errors.LMBridgeError:
    """An upstream error answer in OpenAI (or unknown) shape, as our error."""
    message = ""
    code: str | None = None
    try:
        env = _envelope.decode(body)
        if isinstance(env.error, wire.ErrorBody):
            message = env.error.message
            code = str(env.error.code) if env.error.code is not None else None
        elif isinstance(env.error, str):
            message = env.error
        elif env.message:
            message = env.message
    except DECODE_ERRORS:
        pass
    if not message:
        message = body[:500].decode("utf-8", "replace").strip() or f"HTTP {status}"
    too_long = overflow.error(message, status=status, code=code, body=body)
    if too_long is not None:
        return too_long
    error = errors.from_status(status, message)
    error.code = code
    return error
