"""IR -> Chat Completions answers: whole responses, stream chunks, errors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols.openai_errors import encode_error

_encode = msgspec.json.Encoder()

STOP_REASONS = {
    ir.StopReason.END_TURN: "stop",
    ir.StopReason.STOP_SEQUENCE: "stop",
    ir.StopReason.MAX_TOKENS: "length",
    ir.StopReason.TOOL_USE: "tool_calls",
    ir.StopReason.REFUSAL: "content_filter",
    ir.StopReason.PAUSE: "stop",
}


def _usage(usage: ir.Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens or 0},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _chat_id(response_id: str) -> str:
    return (
        response_id
        if response_id.startswith("chatcmpl")
        else (f"chatcmpl-{uuid.uuid4().hex}")
    )


def encode_response(resp: ir.Response) -> bytes:
    text = "".join(p.text for p in resp.parts if isinstance(p, ir.Text))
    reasoning = "".join(p.text for p in resp.parts if isinstance(p, ir.Thinking))
    calls = [
        {
            "id": p.id,
            "type": "function",
            "function": {"name": p.name, "arguments": p.arguments},
        }
        for p in resp.parts
        if isinstance(p, ir.ToolCall)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    body = {
        "id": _chat_id(resp.id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": resp.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_REASONS[resp.stop_reason],
                "logprobs": None,
            }
        ],
        "usage": _usage(resp.usage),
    }
    return _encode.encode(body)


class ChatStreamEncoder:
    """IR events -> `data: {chat.completion.chunk}` frames, ending in [DONE]."""

    content_type = "text/event-stream"

    def __init__(self, model: str, include_usage: bool = True) -> None:
        self._model = model
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        self._include_usage = include_usage
        self._tool_index: dict[int, int] = {}
        self._started = False
        self._done = False
        # The prefix of every chunk is the same; render it once.
        self._prefix = (
            b'data: {"id":'
            + _encode.encode(self._id)
            + b',"object":"chat.completion.chunk","created":'
            + str(self._created).encode()
            + b',"model":'
            + _encode.encode(model)
            + b',"choices":'
        )

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return self._prefix + _encode.encode(choices) + b"}\n\n"

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        match event:
            case ir.MessageStart():
                return self._start()
            case ir.TextDelta():
                return self._start() + self._chunk({"content": event.text})
            case ir.ThinkingDelta():
                return self._start() + self._chunk({"reasoning_content": event.text})
            case ir.BlockStart(kind=ir.BlockKind.TOOL_CALL):
                position = len(self._tool_index)
                self._tool_index[event.index] = position
                call = {
                    "index": position,
                    "id": event.call_id,
                    "type": "function",
                    "function": {"name": event.name, "arguments": ""},
                }
                return self._start() + self._chunk({"tool_calls": [call]})
            case ir.ToolArgsDelta():
                position = self._tool_index.get(event.index, 0)
                call = {
                    "index": position,
                    "function": {"arguments": event.partial_json},
                }
                return self._chunk({"tool_calls": [call]})
            case ir.Finish():
                self._done = True
                out = self._start() + self._chunk({}, STOP_REASONS[event.stop_reason])
                if self._include_usage:
                    out += (
                        self._prefix
                        + b'[],"usage":'
                        + _encode.encode(_usage(event.usage))
                        + b"}\n\n"
                    )
                return out + b"data: [DONE]\n\n"
            case ir.StreamError():
                self._done = True
                err = errors.from_kind(event.kind, event.message, event.status)
                return b"data: " + encode_error(err) + b"\n\n" + b"data: [DONE]\n\n"
            case ir.Ping():
                return b": ping\n\n"
            case _:
                return b""
