"""Chat Completions deltas put in order as IR blocks.

A Chat stream may interleave its parallel tool calls: `index 0 '{"n"'`,
`index 1 '{"n"'`, `index 1 ': 2}'`, `index 0 ': 1}'` is valid. IR blocks
are sequential (one open block; start, deltas, stop), so `Blocks` keeps
each call's arguments by its index, whatever the order, and writes the
blocks one after another:

- the first block is live: its deltas go out as they come;
- a block that appears while another is live waits, accumulating;
- the live block is closed, and the first waiting one goes live (its text
  so far in one delta), as soon as the live one is complete: a text or
  thinking block when anything else arrives, a tool call when its
  arguments are a whole JSON object (more of them could not be valid);
- at the end of the stream every block still open or waiting is written.

Sequential streams (every server's usual order) stream as they come.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols.openai_chat import wire

_TOOL = ir.BlockKind.TOOL_CALL


@dataclass
class _Block:
    kind: ir.BlockKind
    call_id: str = ""
    name: str = ""
    chunks: list[str] = field(default_factory=list)
    index: int | None = None  # the IR index, once started
    closed: bool = False
    checked: int = -1  # len(chunks) when last found incomplete

    def complete(self) -> bool:
        """May this block end here? (Tool calls: the arguments are whole.)"""
        if self.kind is not _TOOL:
            return True
        if self.checked == len(self.chunks):
            return False
        self.checked = len(self.chunks)
        text = "".join(self.chunks).strip()
        if not text.endswith("}"):
            return False
        try:
            return isinstance(msgspec.json.decode(text), dict)
        except DECODE_ERRORS:
            return False


class Blocks:
    """Orders one choice's deltas into sequential IR blocks (module doc)."""

    def __init__(self) -> None:
        self._next_index = 0
        self._live: _Block | None = None
        self._waiting: list[_Block] = []
        self._calls: dict[int, _Block] = {}
        self.called = False
        """Whether any tool call was seen."""

    def text(self, kind: ir.BlockKind, text: str, out: list[ir.Event]) -> None:
        """A text or thinking delta."""
        live = self._live
        if live is not None and live.kind is kind and not self._waiting:
            # The hot path: a token of the block that is streaming.
            index = live.index
            assert index is not None
            if kind is ir.BlockKind.TEXT:
                out.append(ir.TextDelta(index, text))
            else:
                out.append(ir.ThinkingDelta(index, text))
            return
        last = self._waiting[-1] if self._waiting else None
        if last is not None and last.kind is kind:
            last.chunks.append(text)
        else:
            self._waiting.append(_Block(kind, chunks=[text]))
        self._advance(out)

    def tool(self, call: wire.DeltaToolCall, out: list[ir.Event]) -> None:
        """One tool-call delta, for whichever call its `index` names."""
        fn = call.function or wire.DeltaFunction()
        block = self._calls.get(call.index)
        if block is not None and call.id and block.call_id != call.id and block.chunks:
            block = None  # a server that numbers every call 0, with new ids
        if block is None:
            call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
            block = self._calls[call.index] = _Block(_TOOL, call_id, fn.name or "")
            self._waiting.append(block)
            self.called = True
        elif block.index is None and fn.name and not block.name:
            block.name = fn.name
        if fn.arguments and not block.closed:
            block.chunks.append(fn.arguments)
            if block is self._live:
                out.append(_delta(block, fn.arguments))
        self._advance(out)

    def close(self, out: list[ir.Event]) -> None:
        """The answer ended: write out every block, in order."""
        self._close_live(out)
        while self._waiting:
            self._start(self._waiting.pop(0), out)
            self._close_live(out)

    def _advance(self, out: list[ir.Event]) -> None:
        while self._waiting and (self._live is None or self._live.complete()):
            self._close_live(out)
            self._start(self._waiting.pop(0), out)

    def _start(self, block: _Block, out: list[ir.Event]) -> None:
        block.index = self._next_index
        self._next_index += 1
        self._live = block
        out.append(ir.BlockStart(block.index, block.kind, block.call_id, block.name))
        if block.chunks:
            out.append(_delta(block, "".join(block.chunks)))

    def _close_live(self, out: list[ir.Event]) -> None:
        live = self._live
        if live is not None and live.index is not None:
            live.closed = True
            out.append(ir.BlockStop(live.index))
        self._live = None


def _delta(block: _Block, text: str) -> ir.Event:
    assert block.index is not None
    if block.kind is ir.BlockKind.TEXT:
        return ir.TextDelta(block.index, text)
    if block.kind is ir.BlockKind.THINKING:
        return ir.ThinkingDelta(block.index, text)
    return ir.ToolArgsDelta(block.index, text)
