"""The stream validators reject what a client would choke on.

A validator that passes everything would let every stream test pass; each
rule of `validate_chat_stream` is shown failing on a stream breaking it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from validators import parse_sse, validate_chat_stream

HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {**HEAD, "model": "m", "choices": [choice]}


def call(index: int, **fields: Any) -> dict[str, Any]:
    return chunk({"tool_calls": [{"index": index, **fields}]})


ROLE = chunk({"role": "assistant", "content": ""})
TEXT = chunk({"content": "Hi"})
FINISH = chunk({}, "stop")
USAGE = {
    **HEAD,
    "model": "m",
    "choices": [],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2},
}
DONE = "[DONE]"
ERROR = {"error": {"message": "boom", "type": "server_error"}}
FIRST_CALL = call(0, id="c0", type="function", function={"name": "f", "arguments": ""})


def sse(*frames: dict[str, Any] | str) -> list[tuple[str, dict[str, Any]]]:
    raw = b"".join(
        b"data: " + (f if isinstance(f, str) else json.dumps(f)).encode() + b"\n\n"
        for f in frames
    )
    return parse_sse(raw)


@pytest.mark.parametrize(
    "frames",
    [
        (ROLE, TEXT, FINISH, DONE),
        (ROLE, TEXT, FINISH, USAGE, DONE),
        (ROLE, TEXT, ERROR),
        (ROLE, TEXT, ERROR, DONE),
        (ROLE, FIRST_CALL, call(0, function={"arguments": "{}"}), FINISH, DONE),
    ],
)
def test_good_chat_streams_pass(frames: tuple[Any, ...]) -> None:
    validate_chat_stream(sse(*frames))


@pytest.mark.parametrize(
    ("frames", "why"),
    [
        ((ROLE, TEXT, FINISH), "no [DONE]"),
        ((ROLE, TEXT, DONE), "no finish_reason"),
        ((ROLE, FINISH, FINISH, DONE), "two finish_reasons"),
        ((TEXT, FINISH, DONE), "no role first"),
        ((ROLE, ROLE, FINISH, DONE), "two roles"),
        ((ROLE, FINISH, DONE, TEXT), "data after [DONE]"),
        ((ROLE, ERROR, TEXT), "data after an error"),
        ((ROLE, USAGE, FINISH, DONE), "usage before finish"),
        ((ROLE, FINISH, TEXT, DONE), "a choice after finish"),
        ((ROLE, {**TEXT, "id": "other"}, FINISH, DONE), "the id changes"),
        ((ROLE, call(1, id="c", type="function", function={"name": "f"})), "skip"),
        ((ROLE, call(0, function={"arguments": "{}"}), FINISH, DONE), "no id"),
        ((ROLE, FIRST_CALL, call(0, id="c9"), FINISH, DONE), "second id"),
        (
            (ROLE, FIRST_CALL, call(0, function={"arguments": "[1]"}), FINISH, DONE),
            "[]",
        ),
    ],
)
def test_bad_chat_streams_fail(frames: tuple[Any, ...], why: str) -> None:
    with pytest.raises((AssertionError, KeyError)):
        validate_chat_stream(sse(*frames))
