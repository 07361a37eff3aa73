"""Answers of the fake upstream in each upstream API's wire format.

Written out by hand from the public API references, independently of LM
Bridge's own encoders, so a codec bug cannot hide behind a matching fake.
Each function returns the SSE frames of one streamed answer, or the JSON of
a whole one.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakes.openai_upstream import Script


def cached_figure(s: Script) -> Any:
    """What the script's upstream reports as its cached prompt tokens."""
    return s.cached_figure if s.cached_figure is not None else s.cached_tokens


def messages_input(s: Script) -> dict[str, Any]:
    """Anthropic's input figures: the uncached part, and the cache reads."""
    if not s.cached_tokens and s.cached_figure is None:
        return {"input_tokens": s.prompt_tokens}
    return {
        "input_tokens": s.prompt_tokens - s.cached_tokens,
        "cache_read_input_tokens": cached_figure(s),
    }


def sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def cut_at_stop(text: str, stops: Any) -> tuple[str, str | None]:
    """`text` cut before the first of `stops` in it, and the stop that matched.

    How Chat Completions and Messages honour a request's stop sequences:
    the answer ends before the sequence, which is not part of it.
    """
    if isinstance(stops, str):
        stops = [stops]
    found = [(text.find(stop), stop) for stop in stops or () if stop and stop in text]
    if not found:
        return text, None
    position, stop = min(found)
    return text[:position], stop


def pieces(text: str, size: int = 0) -> list[str]:
    if not text:
        return []
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


# ------------------------------------------------------------------ responses


def responses_output(s: Script, resp_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if s.reasoning:
        out.append(
            {
                "type": "reasoning",
                "id": f"rs_{resp_id}",
                "summary": [{"type": "summary_text", "text": s.reasoning}],
                **(
                    {"encrypted_content": s.encrypted_reasoning}
                    if s.encrypted_reasoning
                    else {}
                ),
            }
        )
    if s.text:
        out.append(
            {
                "type": "message",
                "id": f"msg_{resp_id}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": s.text, "annotations": []}],
            }
        )
    for i, call in enumerate(s.tool_calls):
        out.append(
            {
                "type": "function_call",
                "id": f"fc_{i}_{resp_id}",
                "call_id": call.id or f"call_{i}",
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        )
    return out


def responses_object(
    s: Script, body: dict[str, Any], resp_id: str, status: str = "completed"
) -> dict[str, Any]:
    incomplete = s.finish_reason == "length"
    return {
        "id": resp_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if incomplete else status,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "model": body.get("model", ""),
        "output": responses_output(s, resp_id),
        "previous_response_id": body.get("previous_response_id"),
        "usage": {
            "input_tokens": s.prompt_tokens,
            "output_tokens": s.completion_tokens,
            "total_tokens": s.prompt_tokens + s.completion_tokens,
            "input_tokens_details": {"cached_tokens": cached_figure(s)},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
        "error": None,
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }


def responses_frames(s: Script, body: dict[str, Any], resp_id: str) -> list[bytes]:
    seq = iter(range(10_000))

    def ev(kind: str, **data: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **data}, kind)

    start = responses_object(s, body, resp_id, "in_progress")
    start["output"], start["usage"] = [], None
    frames = [
        ev("response.created", response=start),
        ev("response.in_progress", response=start),
    ]
    for index, item in enumerate(responses_output(s, resp_id)):
        kind = item["type"]
        if kind == "reasoning":
            frames.append(
                ev(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "summary": []},
                )
            )
            frames.append(
                ev(
                    "response.reasoning_summary_part.added",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
            for p in pieces(s.reasoning):
                frames.append(
                    ev(
                        "response.reasoning_summary_text.delta",
                        item_id=item["id"],
                        output_index=index,
                        summary_index=0,
                        delta=p,
                    )
                )
            frames.append(
                ev(
                    "response.reasoning_summary_text.done",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    text=s.reasoning,
                )
            )
            frames.append(
                ev(
                    "response.reasoning_summary_part.done",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part={"type": "summary_text", "text": s.reasoning},
                )
            )
        elif kind == "message":
            frames.append(
                ev(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "content": [], "status": "in_progress"},
                )
            )
            frames.append(
                ev(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": []},
                )
            )
            for p in pieces(s.text):
                frames.append(
                    ev(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        delta=p,
                    )
                )
            frames.append(
                ev(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=s.text,
                )
            )
            frames.append(
                ev(
                    "response.content_part.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part={"type": "output_text", "text": s.text, "annotations": []},
                )
            )
        else:
            frames.append(
                ev(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "arguments": "", "status": "in_progress"},
                )
            )
            for p in pieces(item["arguments"], 8):
                frames.append(
                    ev(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=p,
                    )
                )
            frames.append(
                ev(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                )
            )
        frames.append(ev("response.output_item.done", output_index=index, item=item))
    final = responses_object(s, body, resp_id)
    kind = (
        "response.incomplete"
        if final["status"] == "incomplete"
        else ("response.completed")
    )
    frames.append(ev(kind, response=final))
    return frames


# ------------------------------------------------------------------ messages

_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
}


def messages_content(s: Script) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if s.reasoning:
        content.append(
            {"type": "thinking", "thinking": s.reasoning, "signature": "sig-fake"}
        )
    if s.text:
        content.append({"type": "text", "text": s.text})
    for i, call in enumerate(s.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": call.id or f"toolu_{i}",
                "name": call.name,
                "input": json.loads(call.arguments),
            }
        )
    return content


def messages_object(
    s: Script, body: dict[str, Any], finish: str, stop_sequence: str | None = None
) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": messages_content(s),
        "stop_reason": _STOP.get(finish, "end_turn"),
        "stop_sequence": stop_sequence,
        "usage": {**messages_input(s), "output_tokens": s.completion_tokens},
    }


def messages_frames(
    s: Script, body: dict[str, Any], finish: str, stop_sequence: str | None = None
) -> list[bytes]:
    start = messages_object(s, body, finish)
    start.update(content=[], stop_reason=None)
    start["usage"] = {**messages_input(s), "output_tokens": 1}
    frames = [sse({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(messages_content(s)):
        kind = block["type"]
        empty = {
            "thinking": {"type": "thinking", "thinking": "", "signature": ""},
            "text": {"type": "text", "text": ""},
            "tool_use": {**block, "input": {}},
        }[kind]
        frames.append(
            sse(
                {"type": "content_block_start", "index": index, "content_block": empty},
                "content_block_start",
            )
        )
        if kind == "thinking":
            deltas = [
                {"type": "thinking_delta", "thinking": p}
                for p in pieces(block["thinking"])
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "text":
            deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
        else:
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in pieces(json.dumps(block["input"]), 8)
            ]
        for d in deltas:
            frames.append(
                sse(
                    {"type": "content_block_delta", "index": index, "delta": d},
                    "content_block_delta",
                )
            )
        frames.append(
            sse({"type": "content_block_stop", "index": index}, "content_block_stop")
        )
    frames.append(
        sse(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": _STOP.get(finish, "end_turn"),
                    "stop_sequence": stop_sequence,
                },
                "usage": {"output_tokens": s.completion_tokens},
            },
            "message_delta",
        )
    )
    frames.append(sse({"type": "message_stop"}, "message_stop"))
    return frames
