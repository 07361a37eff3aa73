"""Anthropic Messages streams: IR events <-> `event: NAME` / `data: JSON` frames.

The encoder always produces Anthropic's grammar: `message_start`, then
blocks one at a time (`content_block_start`, deltas, `content_block_stop`)
with sequential indexes, then `message_delta` and `message_stop`; or an
`error` event, after which nothing follows. `ping` may come at any time.

The decoder reads such a stream from an upstream. Blocks the IR cannot
carry (`redacted_thinking`, server tool blocks) and unknown event or delta
types are skipped; IR block indexes stay sequential.
"""

from __future__ import annotations

import secrets

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import overflow, websearch
from lmbridge.protocols.anthropic import wire
from lmbridge.protocols.anthropic.response import (
    error_type,
    new_message_id,
    search_call,
    search_result,
    status_for,
    wire_usage,
)
from lmbridge.protocols.sse import SSEParser, frame

_ENCODER = msgspec.json.Encoder()
_EMPTY_INPUT = msgspec.Raw(b"{}")
_EVENT_NAMES: dict[type[wire.StreamEvent], str] = {
    wire.MessageStartEvent: "message_start",
    wire.BlockStartEvent: "content_block_start",
    wire.BlockDeltaEvent: "content_block_delta",
    wire.BlockStopEvent: "content_block_stop",
    wire.MessageDeltaEvent: "message_delta",
    wire.MessageStopEvent: "message_stop",
    wire.PingEvent: "ping",
    wire.ErrorEvent: "error",
}
_DELTA_KIND = {
    ir.TextDelta: ir.BlockKind.TEXT,
    ir.ThinkingDelta: ir.BlockKind.THINKING,
    ir.SignatureDelta: ir.BlockKind.THINKING,
    ir.ToolArgsDelta: ir.BlockKind.TOOL_CALL,
}


def _frame(event: wire.StreamEvent) -> bytes:
    return frame(_ENCODER.encode(event), _EVENT_NAMES[type(event)])


def _start_block(start: ir.BlockStart) -> wire.OutputBlock:
    if start.kind is ir.BlockKind.TEXT:
        return wire.TextBlock("")
    if start.kind is ir.BlockKind.THINKING:
        return wire.ThinkingBlock("", "")
    call_id = start.call_id or "toolu_" + secrets.token_hex(12)
    return wire.ToolUseBlock(call_id, start.name, _EMPTY_INPUT)


def _delta(
    event: ir.TextDelta | ir.ThinkingDelta | ir.SignatureDelta | ir.ToolArgsDelta,
) -> wire.TextDelta | wire.ThinkingDelta | wire.SignatureDelta | wire.InputJsonDelta:
    if isinstance(event, ir.TextDelta):
        return wire.TextDelta(event.text)
    if isinstance(event, ir.ThinkingDelta):
        return wire.ThinkingDelta(event.text)
    if isinstance(event, ir.SignatureDelta):
        return wire.SignatureDelta(event.signature)
    return wire.InputJsonDelta(event.partial_json)


def add_usage(total: ir.Usage, usage: wire.UpstreamUsage | None) -> None:
    """Fold Anthropic usage into `total`: input counts every prompt token
    (new, cache reads and cache writes), `cached_tokens` the cache reads —
    None when the upstream gave no (sane) figure for them."""
    if usage is None:
        return
    if usage.input_tokens is not None:
        cached = ir.cached_count(usage.cache_read_input_tokens)
        created = ir.cached_count(usage.cache_creation_input_tokens) or 0
        total.input_tokens = usage.input_tokens + (cached or 0) + created
        total.cached_tokens = cached
    if usage.output_tokens is not None:
        total.output_tokens = usage.output_tokens


class AnthropicStreamEncoder:
    """Renders IR events as an Anthropic Messages event stream.

    Blocks are written one at a time: a block that starts while another is
    open closes that one first, and deltas for a block already closed are
    dropped (IR producers should not interleave blocks). A text or thinking
    delta without its `BlockStart` opens the block. The client sees the
    model name it asked for.
    """

    content_type = "text/event-stream"

    def __init__(self, model: str = "", message_id: str = "") -> None:
        self._model = model
        self._id = message_id
        self._started = False
        self._done = False
        self._input_tokens = 0
        self._indexes: dict[int, int] = {}  # IR index -> wire index
        self._open: int | None = None  # IR index of the open block
        self._open_kind = ir.BlockKind.TEXT

    def encode(self, event: ir.Event) -> bytes:
        """The frames for one IR event (often one, sometimes none or several)."""
        if self._done:
            return b""
        out: list[bytes] = []
        match event:
            case ir.Ping():
                out.append(_frame(wire.PingEvent()))
            case ir.StreamError():
                body = wire.ErrorBody(
                    error_type(event.status, event.kind), event.message
                )
                out.append(_frame(wire.ErrorEvent(body)))
                self._done = True
            case ir.MessageStart():
                if not self._started:
                    self._input_tokens = event.input_tokens
                    out.append(self._message_start(event.id, event.model))
            case ir.BlockStart():
                self._ensure_started(out)
                self._open_block(out, event)
            case (
                ir.TextDelta()
                | ir.ThinkingDelta()
                | ir.SignatureDelta()
                | ir.ToolArgsDelta()
            ):
                self._ensure_started(out)
                self._write_delta(out, event)
            case ir.BlockStop():
                if self._open is not None and self._open == event.index:
                    self._close_block(out)
            case ir.WebSearchStarted() | ir.WebSearchDone():
                self._ensure_started(out)
                self._web_search(out, event)
            case ir.Finish():
                self._ensure_started(out)
                self._close_block(out)
                usage = wire_usage(event.usage, self._input_tokens)
                stop = wire.StopDelta(event.stop_reason.value, event.stop_sequence)
                out.append(_frame(wire.MessageDeltaEvent(stop, usage)))
                out.append(_frame(wire.MessageStopEvent()))
                self._done = True
        return b"".join(out)

    def close(self) -> bytes:
        """The IR stream ended; if it did so without `Finish`, say so."""
        return self.encode(
            ir.StreamError(
                errors.ErrorKind.UPSTREAM_ERROR, "the upstream ended its answer early"
            )
        )

    def _message_start(self, message_id: str, model: str) -> bytes:
        self._started = True
        body = wire.MessageBody(
            id=self._id or message_id or new_message_id(),
            model=self._model or model,
            content=[],
            stop_reason=None,
            stop_sequence=None,
            usage=wire.Usage(input_tokens=self._input_tokens, output_tokens=0),
        )
        return _frame(wire.MessageStartEvent(body))

    def _ensure_started(self, out: list[bytes]) -> None:
        if not self._started:
            out.append(self._message_start("", ""))

    def _open_block(self, out: list[bytes], start: ir.BlockStart) -> None:
        if start.index in self._indexes:
            return  # a second start for the same block
        self._close_block(out)
        wire_index = self._indexes[start.index] = len(self._indexes)
        self._open, self._open_kind = start.index, start.kind
        block = _start_block(start)
        out.append(_frame(wire.BlockStartEvent(wire_index, block)))

    def _write_delta(
        self,
        out: list[bytes],
        event: ir.TextDelta | ir.ThinkingDelta | ir.SignatureDelta | ir.ToolArgsDelta,
    ) -> None:
        kind = _DELTA_KIND[type(event)]
        if event.index not in self._indexes and kind is not ir.BlockKind.TOOL_CALL:
            self._open_block(out, ir.BlockStart(event.index, kind))
        if event.index != self._open or kind is not self._open_kind:
            return
        delta = wire.BlockDeltaEvent(self._indexes[event.index], _delta(event))
        out.append(_frame(delta))

    def _web_search(
        self, out: list[bytes], event: ir.WebSearchStarted | ir.WebSearchDone
    ) -> None:
        """A search LM Bridge runs: its `server_tool_use` block when it
        starts (the query as the input's one delta), its
        `web_search_tool_result` block when it ends."""
        self._close_block(out)
        index = len(self._indexes)
        self._indexes[-1 - index] = index  # a wire index no IR block has
        if isinstance(event, ir.WebSearchStarted):
            search = ir.WebSearch(event.call_id, event.query)
            block: wire.OutputBlock = search_call(search, whole=False)
            out.append(_frame(wire.BlockStartEvent(index, block)))
            delta = wire.InputJsonDelta(websearch.call_arguments(event.query))
            out.append(_frame(wire.BlockDeltaEvent(index, delta)))
        else:
            block = search_result(event.search)
            out.append(_frame(wire.BlockStartEvent(index, block)))
        out.append(_frame(wire.BlockStopEvent(index)))

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(_frame(wire.BlockStopEvent(self._indexes[self._open])))
            self._open = None


# ------------------------------------------------------------------ decoder

_UPSTREAM_EVENT = msgspec.json.Decoder(wire.UpstreamEvent)
STOP_REASONS = {reason.value: reason for reason in ir.StopReason}
STOP_REASONS["model_context_window_exceeded"] = ir.StopReason.MAX_TOKENS
BLOCK_KINDS = {
    "text": ir.BlockKind.TEXT,
    "thinking": ir.BlockKind.THINKING,
    "tool_use": ir.BlockKind.TOOL_CALL,
}


def stream_error(error_type: str, message: str) -> ir.StreamError:
    """An Anthropic error (type + message) as an IR stream error."""
    error = errors.from_status(status_for(error_type), message)
    if error.status in (400, 413, 500, 502):  # api_error is 502
        found = overflow.stream_error(message)
        if found is not None:
            message, status = found
            kind = errors.ErrorKind.CONTEXT_OVERFLOW.value
            return ir.StreamError(kind, message, status)
    return ir.StreamError(error.kind.value, message, error.status)


class AnthropicStreamDecoder:
    """Incremental decoder of an Anthropic Messages stream into IR events.

    Never raises: undecodable data becomes a `StreamError`, after which
    the decoder emits nothing more.
    """

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._done = False
        self._indexes: dict[int, int] = {}  # upstream index -> IR index
        self._open: list[int] = []  # IR indexes of blocks not yet stopped
        self._count = 0
        self._usage = ir.Usage()
        self._stop_reason = ir.StopReason.END_TURN
        self._stop_sequence: str | None = None

    def feed(self, data: bytes) -> list[ir.Event]:
        """The events `data` completes."""
        if self._done:
            return []
        out: list[ir.Event] = []
        for sse in self._sse.feed(data):
            self._event(sse.data, out)
            if self._done:
                break
        return out

    def close(self) -> list[ir.Event]:
        """The upstream ended; a `StreamError` unless `message_stop` was seen."""
        if self._done:
            return []
        out: list[ir.Event] = []
        for sse in self._sse.flush():
            self._event(sse.data, out)
        if not self._done:
            self._done = True
            out.append(
                ir.StreamError(
                    errors.ErrorKind.UPSTREAM_ERROR, "upstream closed the stream early"
                )
            )
        return out

    def _event(self, data: bytes, out: list[ir.Event]) -> None:
        if self._done or not data.strip():
            return
        try:
            event = _UPSTREAM_EVENT.decode(data)
        except DECODE_ERRORS:
            self._done = True
            shown = data[:200].decode("utf-8", "replace")
            out.append(
                ir.StreamError(
                    errors.ErrorKind.UPSTREAM_ERROR,
                    f"the upstream sent an unreadable stream event: {shown!r}",
                )
            )
            return
        match event.type:
            case "message_start":
                self._message_start(event, out)
            case "content_block_start":
                self._block_start(event, out)
            case "content_block_delta":
                self._block_delta(event, out)
            case "content_block_stop":
                index = self._indexes.get(event.index)
                if index is not None and index in self._open:
                    self._open.remove(index)
                    out.append(ir.BlockStop(index))
            case "message_delta":
                self._message_delta(event)
            case "message_stop":
                out.extend(ir.BlockStop(index) for index in self._open)
                self._open.clear()
                out.append(
                    ir.Finish(
                        self._stop_reason,
                        msgspec.structs.replace(self._usage),
                        self._stop_sequence,
                    )
                )
                self._done = True
            case "ping":
                out.append(ir.Ping())
            case "error":
                body = event.error or wire.ErrorBody()
                out.append(stream_error(body.type, body.message or "upstream error"))
                self._done = True

    def _message_start(self, event: wire.UpstreamEvent, out: list[ir.Event]) -> None:
        message = event.message or wire.UpstreamMessage()
        self._add_usage(message.usage)
        out.append(ir.MessageStart(message.id, message.model, self._usage.input_tokens))

    def _add_usage(self, usage: wire.UpstreamUsage | None) -> None:
        add_usage(self._usage, usage)

    def _block_start(self, event: wire.UpstreamEvent, out: list[ir.Event]) -> None:
        block = event.content_block
        kind = BLOCK_KINDS.get(block.type) if block else None
        if block is None or kind is None or event.index in self._indexes:
            return
        index = self._indexes[event.index] = self._count
        self._count += 1
        self._open.append(index)
        out.append(ir.BlockStart(index, kind, block.id, block.name))
        if block.text:
            out.append(ir.TextDelta(index, block.text))
        if block.thinking:
            out.append(ir.ThinkingDelta(index, block.thinking))
        if block.signature:
            out.append(ir.SignatureDelta(index, block.signature))

    def _block_delta(self, event: wire.UpstreamEvent, out: list[ir.Event]) -> None:
        index = self._indexes.get(event.index)
        delta = event.delta
        if index is None or delta is None or index not in self._open:
            return
        match delta.type:
            case "text_delta" if delta.text:
                out.append(ir.TextDelta(index, delta.text))
            case "thinking_delta" if delta.thinking:
                out.append(ir.ThinkingDelta(index, delta.thinking))
            case "signature_delta" if delta.signature:
                out.append(ir.SignatureDelta(index, delta.signature))
            case "input_json_delta" if delta.partial_json:
                out.append(ir.ToolArgsDelta(index, delta.partial_json))

    def _message_delta(self, event: wire.UpstreamEvent) -> None:
        if event.delta is not None and event.delta.stop_reason is not None:
            reason = event.delta.stop_reason
            self._stop_reason = STOP_REASONS.get(reason, ir.StopReason.END_TURN)
            self._stop_sequence = event.delta.stop_sequence
        self._add_usage(event.usage)
