"""A whole Response object as the IR events of its stream.

The object is replayed through the stream decoder as the events a stream
of it would end with (`response.created`, one `output_item.done` per item,
then the terminal event its `status` names), so whole and streamed
answers are read by the same code.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import sse
from lmbridge.protocols.openai_responses.decode import ResponsesStreamDecoder

_TERMINAL = {"incomplete": "response.incomplete", "failed": "response.failed"}
_NO_REQUEST = ir.Request(model="", messages=())


def decode_whole(body: bytes) -> list[ir.Event]:
    """The events of a whole `/v1/responses` answer (or of its error body)."""
    try:
        raw: Any = msgspec.json.decode(body)
    except DECODE_ERRORS:
        raw = None
    if not isinstance(raw, dict):
        shown = body[:200].decode("utf-8", "replace")
        return [
            ir.StreamError(
                errors.ErrorKind.UPSTREAM_ERROR,
                f"the upstream's answer is not a Response object: {shown!r}",
            )
        ]
    output = raw.get("output")
    items = output if isinstance(output, list) else []
    head = {key: value for key, value in raw.items() if key != "output"}
    frames: list[dict[str, Any]]
    if raw.get("error") and not items:
        frames = [{"type": "response.failed", "response": head}]
    else:
        frames = [{"type": "response.created", "response": {**head, "output": []}}]
        frames += [
            {"type": "response.output_item.done", "output_index": i, "item": item}
            for i, item in enumerate(items)
        ]
        terminal = _TERMINAL.get(str(raw.get("status")), "response.completed")
        frames.append({"type": terminal, "response": raw})
    data = b"".join(sse.frame(msgspec.json.encode(f), str(f["type"])) for f in frames)
    decoder = ResponsesStreamDecoder(_NO_REQUEST)
    return decoder.feed(data) + decoder.close()
