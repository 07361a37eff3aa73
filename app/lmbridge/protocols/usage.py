"""Token usage when the upstream does not say.

`message_start` carries an input estimate (clients show it while the answer
streams); the upstream's real counts arrive with the finish. Some servers
never send usage (llama.cpp ignores `stream_options.include_usage`), so when
the finish carries none, the counts are estimated (protocols/tokens.py) from
the request and from the text that was streamed.
"""

from __future__ import annotations

import msgspec

from lmbridge.core import ir
from lmbridge.protocols import tokens


def quick_input_estimate(req: ir.Request) -> int:
    """A cheap input estimate: about four characters a token."""
    chars = sum(len(p.text) for p in req.system)
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, ir.Text | ir.Thinking):
                chars += len(part.text)
            elif isinstance(part, ir.ToolCall):
                chars += len(part.arguments)
            elif isinstance(part, ir.ToolResult):
                chars += sum(
                    len(c.text) for c in part.content if isinstance(c, ir.Text)
                )
            elif isinstance(part, ir.Image):
                chars += tokens.IMAGE_TOKENS * 4
    chars += sum([len(t.description) for t in req.tools]) + 200 * len(req.tools)
    return max(1, chars // 4)


class UsageFilter:
    """Fills in usage the upstream left out (an EventFilter)."""

    def __init__(self, req: ir.Request) -> None:
        self.req = req
        self._output: list[str] = []

    def feed(self, event: ir.Event) -> list[ir.Event]:
        match event:
            case ir.MessageStart(input_tokens=0):
                return [
                    msgspec.structs.replace(
                        event, input_tokens=quick_input_estimate(self.req)
                    )
                ]
            case ir.TextDelta() | ir.ThinkingDelta():
                self._output.append(event.text)
            case ir.ToolArgsDelta():
                self._output.append(event.partial_json)
            case ir.Finish() if not (
                event.usage.input_tokens and event.usage.output_tokens
            ):
                usage = event.usage
                filled = ir.Usage(
                    input_tokens=usage.input_tokens or tokens.count_request(self.req),
                    output_tokens=usage.output_tokens
                    or tokens.count_text("".join(self._output)),
                    cached_tokens=usage.cached_tokens,
                    reasoning_tokens=usage.reasoning_tokens,
                )
                return [msgspec.structs.replace(event, usage=filled)]
        return [event]

    def close(self) -> list[ir.Event]:
        return []
