"""`ir.Request` -> Anthropic Messages body, for Anthropic-compatible upstreams
(LM Studio 0.4.1+ `/v1/messages`, Claude on Azure AI Foundry), and the
reading of their error bodies.

Adjustments made on the way out, because Anthropic's API requires them:

- `max_tokens` defaults to 4096; the request is always streaming.
- Consecutive messages of the same role are merged; in a user message the
  `tool_result` blocks come first.
- Thinking without a signature (e.g. from another provider) is left out:
  Anthropic rejects unsigned thinking blocks. Empty text is left out.
- Tool-call arguments that are not a JSON object are repaired when that is
  unambiguous, else sent as `{}` (they are history; the turn is over).
- A reasoning effort becomes a thinking budget (low 2048, medium 8192,
  high 24576); any budget is raised to Anthropic's minimum of 1024 and kept
  below `max_tokens`; if that is impossible, thinking is not requested.
- `seed` and `Request.extras` are not sent: Anthropic has no seed, and no
  Anthropic front-door field is carried in `extras`.
"""

from __future__ import annotations

import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols.anthropic import wire
from lmbridge.protocols.toolrepair import parse_json_object

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
EFFORT_BUDGETS = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 32768,
}

_ENCODER = msgspec.json.Encoder()
_ERROR = msgspec.json.Decoder(wire.ErrorEnvelope)
_TOOL_CHOICE_TYPES = {
    ir.ToolChoiceMode.AUTO: "auto",
    ir.ToolChoiceMode.REQUIRED: "any",
    ir.ToolChoiceMode.NONE: "none",
    ir.ToolChoiceMode.TOOL: "tool",
}


def encode_request(request: ir.Request) -> bytes:
    """The streaming `/v1/messages` body for `request`."""
    max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
    body = wire.OutRequest(
        model=request.model,
        max_tokens=max_tokens,
        messages=_messages(request.messages),
        stream=True,
        system=_system(request.system),
        tools=[_tool(tool) for tool in request.tools] or None,
        tool_choice=_tool_choice(request) if request.tools else None,
        thinking=_thinking(request.reasoning, max_tokens),
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        stop_sequences=list(request.stop) or None,
    )
    return _ENCODER.encode(body)


def parse_error(status: int, body: bytes) -> errors.LMBridgeError:
    """An upstream error answer as our error, keeping the upstream's message."""
    message = ""
    try:
        envelope = _ERROR.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        envelope = wire.ErrorEnvelope()
    if isinstance(envelope.error, wire.ErrorBody):
        message = envelope.error.message
    elif isinstance(envelope.error, str):
        message = envelope.error
    message = message or envelope.message or ""
    if not message:
        text = body.decode("utf-8", "replace").strip()
        message = text[:500] or f"the upstream answered HTTP {status}"
    if status == 400 and message.startswith("prompt is too long"):
        return errors.ContextOverflow(message, status=status)
    return errors.from_status(status, message)


def _system(parts: tuple[ir.Text, ...]) -> str | list[wire.TextBlock] | None:
    texts = [part.text for part in parts if part.text]
    if not texts:
        return None
    if len(texts) == 1:
        return texts[0]
    return [wire.TextBlock(text) for text in texts]


def _messages(messages: tuple[ir.Message, ...]) -> list[wire.OutMessage]:
    out: list[wire.OutMessage] = []
    for message in messages:
        blocks = [block for part in message.parts if (block := _block(part))]
        if not blocks:
            continue
        if out and out[-1].role == message.role.value:
            out[-1].content.extend(blocks)
        else:
            out.append(wire.OutMessage(message.role.value, blocks))
    for merged in out:
        if merged.role == ir.Role.USER.value:
            merged.content.sort(key=lambda b: not isinstance(b, wire.ToolResultBlock))
    return out


def _block(part: ir.Part) -> wire.ContentBlock | None:
    match part:
        case ir.Text(text=text):
            return wire.TextBlock(text) if text else None
        case ir.Image():
            return _image(part)
        case ir.ToolCall():
            arguments = parse_json_object(part.arguments) or {}
            return wire.ToolUseBlock(
                part.id, part.name, msgspec.Raw(_ENCODER.encode(arguments))
            )
        case ir.ToolResult():
            content = [
                block
                for inner in part.content
                if (block := _text_or_image(inner)) is not None
            ]
            return wire.ToolResultBlock(part.call_id, content, part.is_error)
        case ir.Thinking(redacted=True, data=str(data)):
            return wire.RedactedThinkingBlock(data)
        case ir.Thinking(signature=str(signature)) if signature:
            return wire.ThinkingBlock(part.text, signature)
    return None


def _text_or_image(part: ir.Text | ir.Image) -> wire.TextBlock | wire.ImageBlock | None:
    if isinstance(part, ir.Text):
        return wire.TextBlock(part.text) if part.text else None
    return _image(part)


def _image(image: ir.Image) -> wire.ImageBlock:
    url = image.url
    if url is not None and url.startswith("data:") and ";base64," in url:
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").removesuffix(";base64")
        return wire.ImageBlock(wire.ImageSource("base64", media_type, data))
    if url is not None:
        return wire.ImageBlock(wire.ImageSource("url", url=url))
    media_type = image.media_type or "image/png"
    return wire.ImageBlock(wire.ImageSource("base64", media_type, image.data or ""))


def _tool(tool: ir.Tool) -> wire.OutTool:
    schema = tool.parameters or {"type": "object", "properties": {}}
    return wire.OutTool(tool.name, schema, tool.description or None)


def _tool_choice(request: ir.Request) -> wire.WireToolChoice | None:
    choice = request.tool_choice
    disable_parallel = True if request.parallel_tool_calls is False else None
    if choice is None:
        return wire.WireToolChoice("auto", None, True) if disable_parallel else None
    name = choice.name if choice.mode is ir.ToolChoiceMode.TOOL else None
    return wire.WireToolChoice(_TOOL_CHOICE_TYPES[choice.mode], name, disable_parallel)


def _thinking(
    reasoning: ir.Reasoning | None, max_tokens: int
) -> wire.WireThinkingConfig | None:
    if reasoning is None:
        return None
    budget = reasoning.budget_tokens
    if budget is None:
        if reasoning.effort in (None, "none"):
            return None
        budget = EFFORT_BUDGETS.get(reasoning.effort, EFFORT_BUDGETS["medium"])
    budget = min(max(budget, MIN_THINKING_BUDGET), max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        return None
    return wire.WireThinkingConfig("enabled", budget)
