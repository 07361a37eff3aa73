"""Chat Completions requests: parse client bytes into IR, encode IR upstream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import InvalidRequest
from lmbridge.protocols import jsonutil
from lmbridge.protocols.openai_chat import wire

_decode_raw = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def parse_request(body: bytes) -> ir.Request:
    """Parse a Chat Completions request; errors name the offending field."""
    raw = jsonutil.decode_object(body)
    try:
        req = msgspec.convert(raw, wire.ChatRequest)
    except msgspec.ValidationError as exc:
        raise jsonutil.invalid(exc) from None
    return to_ir(req, raw)


def to_ir(req: wire.ChatRequest, raw: dict[str, Any]) -> ir.Request:
    system: list[ir.Text] = []
    messages: list[ir.Message] = []
    for i, msg in enumerate(req.messages):
        role = msg.role
        if role in ("system", "developer"):
            system.append(ir.Text(_text_of(msg.content, i)))
        elif role == "user":
            _append(messages, ir.Role.USER, _user_parts(msg.content, i))
        elif role == "assistant":
            _append(messages, ir.Role.ASSISTANT, _assistant_parts(msg, i))
        elif role in ("tool", "function"):
            call_id = msg.tool_call_id or msg.name or ""
            if not call_id:
                raise InvalidRequest(
                    f"messages[{i}].tool_call_id is required for role {role!r}",
                    param=f"messages[{i}].tool_call_id",
                )
            result = ir.ToolResult(call_id, tuple(_user_parts(msg.content, i)))
            _append(messages, ir.Role.USER, [result])
        else:
            raise InvalidRequest(
                f"messages[{i}].role: unknown role {role!r}",
                param=f"messages[{i}].role",
            )
    if not messages:
        raise InvalidRequest(
            "messages must hold at least one user or assistant message",
            param="messages",
        )
    stops: tuple[str, ...] = ()
    if isinstance(req.stop, str):
        stops = (req.stop,)
    elif req.stop:
        stops = tuple(req.stop)
    extras = {k: v for k, v in raw.items() if k not in wire.KNOWN_FIELDS}
    if req.user is not None:
        extras["user"] = req.user
    if req.stream_options is not None:
        extras["stream_options"] = req.stream_options
    if req.prompt_cache_key is not None:
        extras["prompt_cache_key"] = req.prompt_cache_key
    return ir.Request(
        model=req.model,
        messages=tuple(messages),
        system=tuple(system),
        tools=tuple(_tools(req.tools)),
        tool_choice=_tool_choice(req.tool_choice),
        parallel_tool_calls=req.parallel_tool_calls,
        max_tokens=req.max_completion_tokens or req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        stop=stops,
        seed=req.seed,
        reasoning=ir.Reasoning(effort=req.reasoning_effort)
        if req.reasoning_effort
        else None,
        stream=bool(req.stream),
        client=ir.ClientInfo(session_key=req.prompt_cache_key or req.user),
        extras=extras,
    )


def _append(
    messages: list[ir.Message], role: ir.Role, parts: Sequence[ir.Part]
) -> None:
    if not parts:
        return
    if messages and messages[-1].role is role:
        messages[-1] = ir.Message(role, messages[-1].parts + tuple(parts))
    else:
        messages.append(ir.Message(role, tuple(parts)))


def _text_of(content: str | list[wire.ContentPart] | None, i: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(p.text or "" for p in content if p.type in ("text", "input_text"))


def _user_parts(
    content: str | list[wire.ContentPart] | None, i: int
) -> list[ir.Text | ir.Image]:
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.Text(content)]
    parts: list[ir.Text | ir.Image] = []
    for j, part in enumerate(content):
        if part.type in ("text", "input_text"):
            parts.append(ir.Text(part.text or ""))
        elif part.type == "image_url":
            if part.image_url is None:
                raise InvalidRequest(
                    f"messages[{i}].content[{j}].image_url is required",
                    param=f"messages[{i}].content[{j}].image_url",
                )
            parts.append(image_from_url(part.image_url.url))
        else:
            raise InvalidRequest(
                f"messages[{i}].content[{j}].type: {part.type!r} is not supported"
                " (text and image_url are)",
                param=f"messages[{i}].content[{j}].type",
            )
    return parts


def image_from_url(url: str) -> ir.Image:
    """An IR image from an http(s) URL or a base64 data URL."""
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        if sep and header.endswith(";base64"):
            return ir.Image(media_type=header[: -len(";base64")], data=data)
    return ir.Image(url=url)


def _assistant_parts(msg: wire.ChatMessage, i: int) -> list[ir.Part]:
    parts: list[ir.Part] = []
    reasoning = msg.reasoning_content or msg.reasoning
    if reasoning:
        parts.append(ir.Thinking(text=reasoning))
    text = _text_of(msg.content, i)
    if text:
        parts.append(ir.Text(text))
    for call in msg.tool_calls or ():
        parts.append(
            ir.ToolCall(call.id, call.function.name, call.function.arguments or "{}")
        )
    return parts


def _tools(tools: list[wire.ToolDef] | None) -> list[ir.Tool]:
    out = []
    for tool in tools or ():
        if tool.type == "function" and tool.function is not None:
            fn = tool.function
            out.append(ir.Tool(fn.name, fn.description or "", fn.parameters or {}))
    return out


def _tool_choice(choice: str | wire.NamedToolChoice | None) -> ir.ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, wire.NamedToolChoice):
        return ir.ToolChoice(ir.ToolChoiceMode.TOOL, choice.function.name)
    mode = {"auto": ir.ToolChoiceMode.AUTO, "required": ir.ToolChoiceMode.REQUIRED}
    return ir.ToolChoice(mode.get(choice, ir.ToolChoiceMode.NONE))


# ------------------------------------------------------------- IR -> upstream

_EFFORT_BY_BUDGET = ((4096, "low"), (16384, "medium"))


def reasoning_effort(reasoning: ir.Reasoning | None) -> str | None:
    """An effort level for APIs that know only effort (not a token budget)."""
    if reasoning is None:
        return None
    if reasoning.effort:
        return reasoning.effort
    budget = reasoning.budget_tokens or 0
    for limit, effort in _EFFORT_BY_BUDGET:
        if budget < limit:
            return effort
    return "high"


def encode_request(req: ir.Request) -> bytes:
    """A Chat Completions request for `req`, streaming when `req.stream`."""
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": req.system_text()})
    for msg in req.messages:
        if msg.role is ir.Role.ASSISTANT:
            messages.append(_assistant_message(msg))
        else:
            messages.extend(_user_messages(msg))
    body: dict[str, Any] = {
        k: v for k, v in req.extras.items() if k not in _NOT_CHAT_EXTRAS
    }
    body["model"] = req.model
    body["messages"] = messages
    body["stream"] = req.stream
    if req.stream:
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream_options", None)
    if req.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in req.tools
        ]
        if req.tool_choice is not None:
            body["tool_choice"] = _encode_tool_choice(req.tool_choice)
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    for key, value in (
        ("max_tokens", req.max_tokens),
        ("temperature", req.temperature),
        ("top_p", req.top_p),
        ("top_k", req.top_k),
        ("seed", req.seed),
        ("reasoning_effort", reasoning_effort(req.reasoning)),
    ):
        if value is not None:
            body[key] = value
    return _encode.encode(body)


# Extras that other protocols put in the IR and Chat Completions would reject.
_NOT_CHAT_EXTRAS = frozenset(
    {"dropped_tools", "previous_response_id", "store", "text", "prompt_cache_key"}
)


def _encode_tool_choice(choice: ir.ToolChoice) -> Any:
    if choice.mode is ir.ToolChoiceMode.TOOL:
        return {"type": "function", "function": {"name": choice.name}}
    return str(choice.mode)


def _assistant_message(msg: ir.Message) -> dict[str, Any]:
    text = "".join(p.text for p in msg.parts if isinstance(p, ir.Text))
    calls = [
        {
            "id": p.id,
            "type": "function",
            "function": {"name": p.name, "arguments": p.arguments},
        }
        for p in msg.parts
        if isinstance(p, ir.ToolCall)
    ]
    out: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        out["tool_calls"] = calls
    elif not text:
        out["content"] = ""
    return out


def _user_messages(msg: ir.Message) -> list[dict[str, Any]]:
    # Tool results become `tool` messages, which must directly follow the
    # assistant's tool calls; the rest of the user turn comes after them.
    out: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for part in msg.parts:
        if isinstance(part, ir.ToolResult):
            text = part.text()
            if part.is_error and not text.startswith("Error"):
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": part.call_id, "content": text})
            content.extend(
                _content_part(p) for p in part.content if isinstance(p, ir.Image)
            )
        elif isinstance(part, ir.Text | ir.Image):
            content.append(_content_part(part))
    if content:
        if all(c["type"] == "text" for c in content):
            text = "".join(c["text"] for c in content)
            out.append({"role": "user", "content": text})
        else:
            out.append({"role": "user", "content": content})
    return out


def _content_part(part: ir.Text | ir.Image) -> dict[str, Any]:
    if isinstance(part, ir.Text):
        return {"type": "text", "text": part.text}
    return {"type": "image_url", "image_url": {"url": part.as_data_url()}}
