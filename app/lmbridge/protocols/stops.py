"""Stop sequences, enforced by the proxy on translated streams.

Upstreams stop on a sequence without saying which one matched (Chat
Completions says only "stop"), and the Responses API has no stop sequences
at all. So LM Bridge does not send them upstream on translated requests: it
watches the text itself, cuts the answer before the first match and finishes
with `stop_sequence` naming it. Text that might begin a stop sequence is
held back until it is known not to.
"""

from __future__ import annotations

from collections.abc import Sequence

from lmbridge.core import ir


class StopSequenceFilter:
    """An IR event filter ending the answer at the first stop sequence."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.done = False
        self._held = ""
        self._held_index = 0

    def feed(self, event: ir.Event) -> list[ir.Event]:
        if self.done:
            return []
        if isinstance(event, ir.TextDelta):
            return self._text(event.index, self._held + event.text)
        out = self._flush()
        if isinstance(event, ir.Finish | ir.StreamError):
            self.done = True
        out.append(event)
        return out

    def close(self) -> list[ir.Event]:
        """The stream ended without a Finish: release any held text."""
        return [] if self.done else self._flush()

    def _flush(self) -> list[ir.Event]:
        if not self._held:
            return []
        held, self._held = self._held, ""
        return [ir.TextDelta(self._held_index, held)]

    def _text(self, index: int, text: str) -> list[ir.Event]:
        self._held = ""
        found = [(pos, s) for s in self.stops if (pos := text.find(s)) >= 0]
        if found:
            pos, seq = min(found)
            self.done = True
            out: list[ir.Event] = []
            if pos:
                out.append(ir.TextDelta(index, text[:pos]))
            out.append(ir.BlockStop(index))
            out.append(ir.Finish(ir.StopReason.STOP_SEQUENCE, ir.Usage(), seq))
            return out
        keep = self._partial(text)
        if keep:
            self._held, self._held_index = text[-keep:], index
            text = text[:-keep]
        return [ir.TextDelta(index, text)] if text else []

    def _partial(self, text: str) -> int:
        """Length of the longest suffix of `text` that begins a stop sequence."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if stop.startswith(text[-n:]):
                    best = n
                    break
        return best
