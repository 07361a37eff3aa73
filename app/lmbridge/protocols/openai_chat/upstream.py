"""`ir.Request` -> Chat Completions body, for OpenAI-compatible upstreams.

The messages are in `carry.normal_form` first, and written so that every
server of a long agent session takes them (llama.cpp's server,
llama-cpp-python's, vLLM, Ollama, LM Studio):

- `system` and `tool` message content is always a plain string (some
  servers reject content arrays there); a user message is a string unless
  it holds images;
- an assistant message with tool calls and no text has `"content": ""`
  (llama-cpp-python's server answers null content with a 500); thinking
  is left out, and an assistant message left empty is not sent;
- tool results become `tool` messages right after the calls, text only
  (an error result's text starts with "Error"); their images go in one
  user message after the run of `tool` messages, with the rest of the
  user's turn;
- a system message in the middle of the conversation is user text
  (`carry.system_note`), since most chat templates take a system message
  only at the start;
- `response_format` comes from `Request.output_format`; `extras` (Chat
  fields of a Chat client) go as they came, minus the other protocols'.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.protocols.carry import normal_form, rewritten

_encode = msgspec.json.Encoder()
_EFFORT_BY_BUDGET = ((4096, "low"), (16384, "medium"))
DEFAULT_FORMAT_NAME = "response"
"""`response_format.json_schema.name` when the client gave none (Anthropic)."""

# Extras that other protocols put in the IR and Chat Completions would reject.
_NOT_CHAT_EXTRAS = frozenset(
    {"previous_response_id", "store", "text", "prompt_cache_key"}
)


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
    # Chat has no field for thinking: without it, a message may be left
    # empty, and its neighbours then merge.
    for msg in normal_form(map(_unthought, req.messages), system_as_user=True):
        if msg.role is ir.Role.ASSISTANT:
            messages.extend(_assistant_message(msg))
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
        ("response_format", response_format(req.output_format)),
    ):
        if value is not None:
            body[key] = value
    return _encode.encode(body)


def _unthought(message: ir.Message) -> ir.Message:
    """`message` without its thinking (the same message when it has none)."""
    parts = message.parts
    for part in parts:
        if type(part) is ir.Thinking:
            kept = tuple([p for p in parts if type(p) is not ir.Thinking])
            return ir.Message(message.role, kept)
    return message


def omitted(req: ir.Request) -> list[str]:
    """What `encode_request` leaves out of `req`."""
    out = []
    # One pass over the parts, comparing types: this runs on every
    # translated request.
    thinking = images = 0
    for m in req.messages:
        assistant = m.role is ir.Role.ASSISTANT
        for p in m.parts:
            if type(p) is ir.Thinking:
                thinking += assistant
            elif isinstance(p, ir.ToolResult):
                images += [type(inner) for inner in p.content].count(ir.Image)
    if thinking:
        out.append(f"thinking of earlier turns ({thinking} blocks): Chat has no field")
    out += rewritten(req, "Chat")
    if images:
        out.append(
            f"images in tool results ({images}): sent in a user message after"
            " the tool messages (Chat tool messages carry text only)"
        )
    out += [
        f"{k}: not a Chat field" for k in sorted(req.extras) if k in _NOT_CHAT_EXTRAS
    ]
    return out


def response_format(output: ir.OutputFormat | None) -> dict[str, Any] | None:
    """`response_format` for `output` (None: plain text, the default)."""
    if output is None:
        return None
    if output.type == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": output.name or DEFAULT_FORMAT_NAME}
    if output.description:
        spec["description"] = output.description
    if output.schema is not None:
        spec["schema"] = output.schema
    if output.strict is not None:
        spec["strict"] = output.strict
    return {"type": "json_schema", "json_schema": spec}


def _encode_tool_choice(choice: ir.ToolChoice) -> Any:
    if choice.mode is ir.ToolChoiceMode.TOOL:
        return {"type": "function", "function": {"name": choice.name}}
    return str(choice.mode)


def _assistant_message(msg: ir.Message) -> list[dict[str, Any]]:
    text = ir.join_text(p.text for p in msg.parts if isinstance(p, ir.Text))
    calls = [
        {
            "id": p.id,
            "type": "function",
            "function": {"name": p.name, "arguments": p.arguments},
        }
        for p in msg.parts
        if isinstance(p, ir.ToolCall)
    ]
    if not text and not calls:
        return []
    out: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        out["tool_calls"] = calls
    return [out]


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
        elif isinstance(part, ir.Image) or (isinstance(part, ir.Text) and part.text):
            content.append(_content_part(part))
    if content:
        if all(c["type"] == "text" for c in content):
            text = ir.join_text(c["text"] for c in content)
            out.append({"role": "user", "content": text})
        else:
            out.append({"role": "user", "content": content})
    return out


def _content_part(part: ir.Text | ir.Image) -> dict[str, Any]:
    if isinstance(part, ir.Text):
        return {"type": "text", "text": part.text}
    return {"type": "image_url", "image_url": {"url": part.as_data_url()}}
