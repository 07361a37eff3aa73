"""Chat Completions requests from clients: bytes parsed into an `ir.Request`.

- `system` and `developer` messages before the first other message are the
  system prompt; later ones stay in place as IR `SYSTEM` messages.
- Text parts of one message are joined by `ir.join_text`.
- Tools other than functions are dropped, each listed in `Request.dropped`.
- `response_format` JSON (schema or object) is `Request.output_format`.
- Fields the IR does not model ride in `extras` for a Chat upstream. Those
  that change what the answer holds (`n` > 1, `logprobs`, audio, legacy
  `functions`, ...) are also listed in `Request.unportable`: an upstream of
  another API refuses them with a 400 instead of answering something else.
- Numbers are bounded (`protocols/limits.py`): an out-of-range value is a
  400 naming the field. `max_tokens: -1` is LM Studio's "no limit": none.

The encoding for a Chat upstream is in `upstream.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import InvalidRequest
from lmbridge.protocols import jsonutil
from lmbridge.protocols.openai_chat import wire

_TEXT_TYPES = ("text", "input_text")
_SYSTEM = ir.Role.SYSTEM
# Modelled fields that also ride in `extras` for a Chat upstream, when given.
_KEPT_IN_EXTRAS = (
    "user",
    "stream_options",
    "prompt_cache_key",
    "n",
    "logprobs",
    "top_logprobs",
)
_TOOL_CHOICE_MODES = {
    "auto": ir.ToolChoiceMode.AUTO,
    "required": ir.ToolChoiceMode.REQUIRED,
    "none": ir.ToolChoiceMode.NONE,
}


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
            text = ir.Text(_text_of(msg.content, i))
            if messages:
                _append(messages, ir.Role.SYSTEM, [text] if text.text else [])
            elif text.text:
                system.append(text)
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
    if not _has_turn(messages):
        raise InvalidRequest(
            "messages must hold at least one user or assistant message",
            param="messages",
        )
    stops: tuple[str, ...] = ()
    if isinstance(req.stop, str):
        stops = (req.stop,)
    elif req.stop:
        stops = tuple(req.stop)
    # Set operations first (C): most requests have no field to carry.
    # (`<=` looks each key up; `-` would build a set first.)
    keys = raw.keys()
    extras = (
        {}
        if keys <= wire.KNOWN_FIELDS
        else {k: v for k, v in raw.items() if k not in wire.KNOWN_FIELDS}
    )
    if not keys.isdisjoint(_KEPT_IN_EXTRAS):
        for key in _KEPT_IN_EXTRAS:
            if key in raw and (value := getattr(req, key)) is not None:
                extras[key] = value
    dropped: list[str] = []
    tools = _tools(req.tools, dropped) if req.tools else []
    choice = req.tool_choice
    allowed = choice.allowed_tools if isinstance(choice, wire.NamedToolChoice) else None
    if allowed is not None:
        names = {t.function.name for t in allowed.tools if t.function is not None}
        tools = [t for t in tools if t.name in names]
    return ir.Request(
        model=req.model,
        messages=tuple(messages),
        system=tuple(system),
        tools=tuple(tools),
        tool_choice=_tool_choice(choice, dropped) if choice is not None else None,
        parallel_tool_calls=req.parallel_tool_calls,
        max_tokens=_max_tokens(req),
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
        dropped=tuple(dropped),
        output_format=_output_format(req.response_format),
        unportable=tuple(unportable(extras)) if extras else (),
    )


def _has_turn(messages: list[ir.Message]) -> bool:
    """Whether `messages` hold a user or assistant message."""
    # A loop, not any(): a generator left unfinished costs its own cleanup,
    # on every request.
    for message in messages:  # noqa: SIM110
        if message.role is not _SYSTEM:
            return True
    return False


def _max_tokens(req: wire.ChatRequest) -> int | None:
    """The answer's token limit; -1 (LM Studio's "no limit") is none."""
    value, name = req.max_completion_tokens, "max_completion_tokens"
    if value is None:
        value, name = req.max_tokens, "max_tokens"
        if value is None:
            return None
    if value == 0:
        raise InvalidRequest(f"{name}: must be at least 1", param=name)
    return value if value > 0 else None


def unportable(extras: dict[str, Any]) -> list[str]:
    """The Chat fields in `extras` that change what the answer holds and
    that no other API carries, as "field: what it asks for" lines.

    Sampling hints (`presence_penalty`, `frequency_penalty`, `logit_bias`,
    `prediction`, `service_tier`, ...) are not among them: an upstream that
    has no such field leaves them out and the request's record says so.
    """
    out = []
    n = extras.get("n")
    if isinstance(n, int) and n > 1:
        out.append(f"n: asks for {n} choices")
    if extras.get("logprobs") is True:
        out.append("logprobs: asks for the tokens' log probabilities")
    top = extras.get("top_logprobs")
    if isinstance(top, int) and top > 0:
        out.append(f"top_logprobs: asks for {top} alternatives per token")
    modalities = extras.get("modalities")
    if extras.get("audio") is not None or (
        isinstance(modalities, list) and "audio" in modalities
    ):
        out.append("audio: asks for spoken output")
    if extras.get("functions") or extras.get("function_call") not in (None, "none"):
        out.append("functions: the legacy function-calling API (send `tools`)")
    return out


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
    return ir.join_text(p.text or "" for p in content if p.type in _TEXT_TYPES)


def _user_parts(
    content: str | list[wire.ContentPart] | None, i: int
) -> list[ir.Text | ir.Image]:
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.Text(content)]
    parts: list[ir.Text | ir.Image] = []
    for j, part in enumerate(content):
        if part.type in _TEXT_TYPES:
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


def _tools(tools: list[wire.ToolDef] | None, dropped: list[str]) -> list[ir.Tool]:
    """The function tools; a line in `dropped` for each other tool."""
    out = []
    for i, tool in enumerate(tools or ()):
        if tool.type == "function" and tool.function is not None:
            fn = tool.function
            out.append(ir.Tool(fn.name, fn.description or "", fn.parameters or {}))
        else:
            dropped.append(f"tools[{i}]: type {tool.type!r} is not carried")
    return out


def _tool_choice(
    choice: str | wire.NamedToolChoice | None, dropped: list[str]
) -> ir.ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return ir.ToolChoice(_TOOL_CHOICE_MODES.get(choice, ir.ToolChoiceMode.NONE))
    if choice.type == "function" and choice.function is not None:
        return ir.ToolChoice(ir.ToolChoiceMode.TOOL, choice.function.name)
    if choice.allowed_tools is not None:  # the tools are narrowed in `to_ir`
        required = choice.allowed_tools.mode == "required"
        return ir.ToolChoice(_TOOL_CHOICE_MODES["required" if required else "auto"])
    dropped.append(f"tool_choice: type {choice.type!r} is not carried (auto)")
    return ir.ToolChoice(ir.ToolChoiceMode.AUTO)


def _output_format(
    response_format: wire.ResponseFormat | None,
) -> ir.OutputFormat | None:
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return ir.OutputFormat("json_object")
    spec = response_format.json_schema
    if spec is None:
        raise InvalidRequest(
            "response_format.json_schema is required for type json_schema",
            param="response_format.json_schema",
        )
    return ir.OutputFormat(
        "json_schema", spec.schema, spec.name, spec.description, spec.strict
    )
