"""Folds a stream of IR events into one `ir.Response`.

Used wherever a client asked for a whole answer but the upstream streamed.
"""

from __future__ import annotations

from lmbridge.core import errors, ir


class Assembler:
    """Feed events in order; `result()` gives the response or raises."""

    def __init__(self, response_id: str = "", model: str = "") -> None:
        self.id = response_id
        self.model = model
        self._blocks: dict[int, list[str]] = {}
        self._starts: dict[int, ir.BlockStart] = {}
        self._signatures: dict[int, str] = {}
        self._searches: dict[int, ir.WebSearch] = {}
        self._finish: ir.Finish | None = None
        self._error: ir.StreamError | None = None
        self.input_tokens = 0

    def feed(self, event: ir.Event) -> None:
        match event:
            case ir.MessageStart():
                self.id = self.id or event.id
                self.model = self.model or event.model
                self.input_tokens = event.input_tokens
            case ir.BlockStart():
                self._starts[event.index] = event
                self._blocks[event.index] = []
            case ir.TextDelta() | ir.ThinkingDelta():
                self._blocks.setdefault(event.index, []).append(event.text)
            case ir.ToolArgsDelta():
                self._blocks.setdefault(event.index, []).append(event.partial_json)
            case ir.SignatureDelta():
                self._signatures[event.index] = (
                    self._signatures.get(event.index, "") + event.signature
                )
            case ir.WebSearchDone():
                self._searches[event.index] = event.search
            case ir.Finish():
                self._finish = event
            case ir.StreamError():
                self._error = event
            case _:
                pass

    @property
    def finished(self) -> bool:
        """True once the answer completed (a Finish and no error)."""
        return self._finish is not None and self._error is None

    def result(self) -> ir.Response:
        """The assembled response; raises the stream's error if it failed."""
        if self._error is not None:
            raise errors.from_kind(
                self._error.kind, self._error.message, self._error.status
            )
        if self._finish is None:
            raise errors.UpstreamError("the upstream ended its answer early")
        return self.partial()

    def partial(self) -> ir.Response:
        """What has arrived so far, as a response (never raises)."""
        parts: list[ir.Text | ir.ToolCall | ir.Thinking | ir.WebSearch] = []
        for index in sorted({*self._starts, *self._searches}):
            if index in self._searches:
                parts.append(self._searches[index])
                continue
            start = self._starts[index]
            body = "".join(self._blocks.get(index, ()))
            if start.kind is ir.BlockKind.TEXT:
                parts.append(ir.Text(body))
            elif start.kind is ir.BlockKind.THINKING:
                parts.append(
                    ir.Thinking(text=body, signature=self._signatures.get(index))
                )
            else:
                parts.append(ir.ToolCall(start.call_id, start.name, body or "{}"))
        finish = self._finish
        usage = finish.usage if finish is not None else ir.Usage()
        if not usage.input_tokens:
            usage.input_tokens = self.input_tokens
        return ir.Response(
            id=self.id,
            model=self.model,
            parts=parts,
            stop_reason=finish.stop_reason if finish else ir.StopReason.END_TURN,
            stop_sequence=finish.stop_sequence if finish else None,
            usage=usage,
        )
