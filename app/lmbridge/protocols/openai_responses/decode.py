"""An upstream's Responses SSE stream decoded into IR events.

One IR block per upstream output item: a `message` item becomes a TEXT
block (opened on its first text, refusals included), a `reasoning` item a
THINKING block (summary and raw reasoning text; summary parts are joined by
a blank line), a `function_call` item a TOOL_CALL block. Items of other
kinds (hosted tool calls) are ignored. Where a server sends only the `.done`
form of a text or of arguments, the missing remainder is emitted from it.

`response.completed` ends in `Finish` (TOOL_USE when the model called a
function), `response.incomplete` in `Finish(MAX_TOKENS)` (REFUSAL for a
content filter), `response.failed` and `error` events in `StreamError`.
Malformed data and an early end of the stream become a `StreamError` too:
`feed()` and `close()` never raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import overflow, sse
from lmbridge.protocols.openai_responses import events as ev
from lmbridge.protocols.openai_responses.response import new_id

_HEAD = msgspec.json.Decoder(ev.SeenHead)
_EVENT = msgspec.json.Decoder(ev.SeenEvent)
_ITEM_HEAD = msgspec.json.Decoder(ev.SeenHead | None)
_ITEM = msgspec.json.Decoder(ev.SeenItem)

_ITEM_KINDS = {
    "message": ir.BlockKind.TEXT,
    "reasoning": ir.BlockKind.THINKING,
    "function_call": ir.BlockKind.TOOL_CALL,
}
_TEXT_DELTAS = {
    "response.output_text.delta": ir.BlockKind.TEXT,
    "response.refusal.delta": ir.BlockKind.TEXT,
    "response.reasoning_summary_text.delta": ir.BlockKind.THINKING,
    "response.reasoning_text.delta": ir.BlockKind.THINKING,
    "response.function_call_arguments.delta": ir.BlockKind.TOOL_CALL,
}
_TEXT_DONES = {
    "response.output_text.done": ir.BlockKind.TEXT,
    "response.refusal.done": ir.BlockKind.TEXT,
    "response.reasoning_summary_text.done": ir.BlockKind.THINKING,
    "response.reasoning_text.done": ir.BlockKind.THINKING,
    "response.function_call_arguments.done": ir.BlockKind.TOOL_CALL,
}
_LIFECYCLE = {"response.created", "response.in_progress", "response.queued"}
_ERROR_KINDS: dict[str, tuple[errors.ErrorKind, int]] = {
    "rate_limit_exceeded": (errors.ErrorKind.RATE_LIMIT, 429),
    "insufficient_quota": (errors.ErrorKind.RATE_LIMIT, 429),
    "context_length_exceeded": (errors.ErrorKind.CONTEXT_OVERFLOW, 400),
    "invalid_prompt": (errors.ErrorKind.INVALID_REQUEST, 400),
    "previous_response_not_found": (errors.ErrorKind.NOT_FOUND, 404),
    "server_is_overloaded": (errors.ErrorKind.OVERLOADED, 529),
}
_HANDLED = (
    _LIFECYCLE
    | set(_TEXT_DELTAS)
    | set(_TEXT_DONES)
    | {
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    }
)


@dataclass
class _Block:
    """An IR block opened for one upstream output item."""

    index: int
    kind: ir.BlockKind
    # Text so far per content part / summary part, to reconcile `.done` events.
    parts: dict[int, str] = field(default_factory=dict)


class ResponsesStreamDecoder:
    """Incremental decoder of a Responses SSE stream (see the module doc)."""

    def __init__(self, request: ir.Request) -> None:
        self._parser = sse.SSEParser()
        self._model = request.model
        self._response_id = ""
        self._started = False
        self._done = False
        self._blocks: dict[int, _Block] = {}
        self._finished_items: set[int] = set()
        self._item_index: dict[str, int] = {}
        self._next_block = 0
        self._called = False
        self._refused = False
        self._texted = False

    @property
    def response_id(self) -> str:
        """The upstream's response id, once seen ("" before)."""
        return self._response_id

    def feed(self, data: bytes) -> list[ir.Event]:
        """IR events for the SSE frames `data` completes."""
        if self._done:
            return []
        return self._frames(self._parser.feed(data))

    def close(self) -> list[ir.Event]:
        """The upstream ended: a `StreamError` unless a terminal event came."""
        if self._done:
            return []
        out = self._frames(self._parser.flush())
        if not self._done:
            self._done = True
            out.append(
                ir.StreamError(
                    errors.ErrorKind.UPSTREAM_ERROR, "upstream closed the stream early"
                )
            )
        return out

    # --------------------------------------------------------------- dispatch

    def _frames(self, frames: list[sse.SSEEvent]) -> list[ir.Event]:
        out: list[ir.Event] = []
        for frame in frames:
            if self._done:
                break
            data = frame.data.strip()
            if not data or data == b"[DONE]":
                continue
            try:
                self._frame(out, frame.event, data)
            except DECODE_ERRORS as exc:
                self._done = True
                message = f"the upstream sent a malformed stream event: {exc}"
                out.append(
                    ir.StreamError(errors.ErrorKind.UPSTREAM_ERROR, message[:500])
                )
        return out

    def _frame(self, out: list[ir.Event], name: str, data: bytes) -> None:
        kind = _HEAD.decode(data).type or name
        if kind not in _HANDLED:
            return
        event = _EVENT.decode(data)
        if kind in _LIFECYCLE:
            self._start(out, event.response)
        elif kind in _TEXT_DELTAS:
            self._text(out, event, _TEXT_DELTAS[kind], event.delta or "", done=False)
        elif kind in _TEXT_DONES:
            text = event.arguments if kind.endswith("arguments.done") else event.text
            if kind == "response.refusal.done":
                text = event.refusal
            self._text(out, event, _TEXT_DONES[kind], text or "", done=True)
        elif kind in ("response.output_item.added", "response.output_item.done"):
            self._item(out, event, done=kind.endswith("done"))
        elif kind in ("response.completed", "response.incomplete"):
            self._finish(out, event.response, incomplete=kind.endswith("incomplete"))
        else:  # response.failed, error
            self._fail(out, event)

    def _start(self, out: list[ir.Event], response: ev.SeenResponse | None) -> None:
        if response is not None:
            self._response_id = response.id or self._response_id
            self._model = response.model or self._model
        if not self._started:
            self._started = True
            # An empty id (none seen yet) tells sessions not to chain on it.
            out.append(ir.MessageStart(self._response_id, self._model))

    # ------------------------------------------------------------------ items

    def _output_index(self, event: ev.SeenEvent) -> int:
        if event.output_index is not None:
            return event.output_index
        if event.item_id and event.item_id in self._item_index:
            return self._item_index[event.item_id]
        return max(self._blocks, default=0)

    def _open(
        self,
        out: list[ir.Event],
        output_index: int,
        kind: ir.BlockKind,
        item: ev.SeenItem,
    ) -> _Block:
        self._start(out, None)
        block = _Block(self._next_block, kind)
        self._next_block += 1
        self._blocks[output_index] = block
        if kind is ir.BlockKind.TOOL_CALL:
            self._called = True
            call_id = item.call_id or item.id or new_id("call")
            out.append(ir.BlockStart(block.index, kind, call_id, item.name or ""))
        else:
            out.append(ir.BlockStart(block.index, kind))
        return block

    def _emit(self, out: list[ir.Event], block: _Block, part: int, text: str) -> None:
        if not text:
            return
        first = part not in block.parts
        if block.kind is ir.BlockKind.THINKING and first and any(block.parts.values()):
            out.append(ir.ThinkingDelta(block.index, "\n\n"))
        block.parts[part] = block.parts.get(part, "") + text
        if block.kind is ir.BlockKind.TEXT:
            out.append(ir.TextDelta(block.index, text))
        elif block.kind is ir.BlockKind.THINKING:
            out.append(ir.ThinkingDelta(block.index, text))
        else:
            out.append(ir.ToolArgsDelta(block.index, text))

    def _text(
        self,
        out: list[ir.Event],
        event: ev.SeenEvent,
        kind: ir.BlockKind,
        text: str,
        *,
        done: bool,
    ) -> None:
        output_index = self._output_index(event)
        if output_index in self._finished_items:
            return
        part = (
            event.summary_index
            if event.summary_index is not None
            else event.content_index
        )
        part = part or 0
        block = self._blocks.get(output_index)
        if block is None:
            if not text:
                return
            item = ev.SeenItem(id=event.item_id)
            block = self._open(out, output_index, kind, item)
        if block.kind is not kind:
            return
        if kind is ir.BlockKind.TEXT and text:
            if event.type and "refusal" in event.type:
                self._refused = True
            else:
                self._texted = True
        if done:
            seen = block.parts.get(part, "")
            if not text.startswith(seen):
                return
            text = text[len(seen) :]
        self._emit(out, block, part, text)

    def _item(self, out: list[ir.Event], event: ev.SeenEvent, *, done: bool) -> None:
        if not event.item:
            return
        head = _ITEM_HEAD.decode(event.item)
        if head is None or head.type not in _ITEM_KINDS:
            return
        item = _ITEM.decode(event.item)
        kind = _ITEM_KINDS[item.type or ""]
        output_index = self._output_index(event)
        if item.id:
            self._item_index[item.id] = output_index
        if output_index in self._finished_items:
            return
        block = self._blocks.get(output_index)
        if block is None and (
            kind is ir.BlockKind.TOOL_CALL or (done and any(_part_texts(item, kind)))
        ):
            block = self._open(out, output_index, kind, item)
        if block is None or block.kind is not kind:
            return
        if kind is ir.BlockKind.TOOL_CALL:
            arguments = item.arguments or ""
            seen = block.parts.get(0, "")
            if arguments.startswith(seen):
                self._emit(out, block, 0, arguments[len(seen) :])
        elif done:
            for part in item.content or [] if kind is ir.BlockKind.TEXT else []:
                self._refused |= bool(part.refusal)
                self._texted |= bool(part.text)
            for number, text in enumerate(_part_texts(item, kind)):
                seen = block.parts.get(number, "")
                if text.startswith(seen):
                    self._emit(out, block, number, text[len(seen) :])
        if done:
            self._finished_items.add(output_index)
            del self._blocks[output_index]
            out.append(ir.BlockStop(block.index))

    # -------------------------------------------------------------- terminal

    def _close_blocks(self, out: list[ir.Event]) -> None:
        for output_index in sorted(self._blocks):
            out.append(ir.BlockStop(self._blocks[output_index].index))
        self._blocks.clear()

    def _finish(
        self, out: list[ir.Event], response: ev.SeenResponse | None, *, incomplete: bool
    ) -> None:
        self._start(out, response)
        self._close_blocks(out)
        self._done = True
        if incomplete:
            details = response.incomplete_details if response else None
            reason = details.reason if details else None
            if reason == "content_filter":
                stop = ir.StopReason.REFUSAL
            else:
                stop = ir.StopReason.MAX_TOKENS
        elif self._called:
            stop = ir.StopReason.TOOL_USE
        elif self._refused and not self._texted:
            stop = ir.StopReason.REFUSAL
        else:
            stop = ir.StopReason.END_TURN
        out.append(
            ir.Finish(stop, usage_from_wire(response.usage if response else None))
        )

    def _fail(self, out: list[ir.Event], event: ev.SeenEvent) -> None:
        self._done = True
        error = event.error
        if error is None and event.response is not None:
            error = event.response.error
        message = (error.message if error else None) or event.message
        code = (error.code if error else None) or event.code
        kind, status = _ERROR_KINDS.get(
            str(code), (errors.ErrorKind.UPSTREAM_ERROR, 502)
        )
        if not message:
            message = "the upstream reported an error without a message"
            if code is not None:
                message += f" (code {code})"
        if kind in (errors.ErrorKind.UPSTREAM_ERROR, errors.ErrorKind.CONTEXT_OVERFLOW):
            found = overflow.stream_error(message, code=code)
            if found is not None:
                kind = errors.ErrorKind.CONTEXT_OVERFLOW
                message, status = found
        out.append(ir.StreamError(kind, message, status))


def _part_texts(item: ev.SeenItem, kind: ir.BlockKind) -> list[str]:
    """The texts of a finished message's content or reasoning item's summary."""
    if kind is ir.BlockKind.TEXT:
        return [p.text or p.refusal or "" for p in item.content or []]
    if item.summary:
        return [p.text or "" for p in item.summary]
    return ["".join(p.text or "" for p in item.content or [])]


def usage_from_wire(usage: ev.SeenUsage | None) -> ir.Usage:
    """Responses usage as IR usage (zeros when absent, the cached count None)."""
    if usage is None:
        return ir.Usage()
    input_details = usage.input_tokens_details
    output_details = usage.output_tokens_details
    return ir.Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=ir.cached_count(input_details.cached_tokens, usage.input_tokens)
        if input_details
        else None,
        reasoning_tokens=(output_details.reasoning_tokens or 0)
        if output_details
        else 0,
    )
