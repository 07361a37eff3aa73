"""`ir.Request` -> Anthropic Messages body, for Anthropic-compatible upstreams
(LM Studio 0.4.1+ `/v1/messages`, Claude on Azure AI Foundry), and the
reading of their error bodies.

Adjustments made on the way out, because Anthropic's API requires them:

- `max_tokens` defaults to 4096; the request is always streaming.
- The conversation is in `carry.normal_form`: consecutive messages of the
  same role merged, `tool_result` blocks first in a user message, adjacent
  text blocks joined into one (`ir.join_text`), and a system message in the
  middle of the conversation sent as a user text block
  (`carry.system_note`), since `messages` holds only user and assistant.
- `Request.output_format` is `output_config.format` (a JSON schema; a
  request for any JSON object without a schema is refused: Messages has
  no such mode), and `Request.unportable` fields are refused.
- `top_k` of 0 or less (OpenAI-compatible servers' "off") is not sent.
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
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import overflow
from lmbridge.protocols.anthropic import wire
from lmbridge.protocols.carry import (
    merge_texts,
    normal_form,
    refuse_unportable,
    rewritten,
)
from lmbridge.protocols.jsonutil import parse_json_object

DEFAULT_MAX_TOKENS = 4096


def omitted(request: ir.Request) -> list[str]:
    """What `encode_request` leaves out of `request`."""
    out = []
    if request.seed is not None:
        out.append("seed: Messages has no seed")
    unsigned = sum(
        isinstance(p, ir.Thinking) and not p.signature and not p.redacted
        for m in request.messages
        for p in m.parts
    )
    if unsigned:
        out.append(f"thinking without a signature ({unsigned} blocks)")
    out += rewritten(request, "Messages")
    out += [f"{k}: not a Messages field" for k in sorted(request.extras)]
    return out


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
    refuse_unportable(request, "Anthropic Messages")
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
        top_k=request.top_k if request.top_k is None or request.top_k > 0 else None,
        stop_sequences=list(request.stop) or None,
        output_config=_output_config(request.output_format),
    )
    return _ENCODER.encode(body)


def _output_config(output: ir.OutputFormat | None) -> wire.WireOutputConfig | None:
    if output is None:
        return None
    if output.type != "json_schema" or output.schema is None:
        raise errors.InvalidRequest(
            "response_format: any JSON object (json_object) cannot be asked of"
            " this model's upstream, which speaks Anthropic Messages and takes"
            " only a JSON schema; send a json_schema format",
            param="response_format",
        )
    return wire.WireOutputConfig(
        format=wire.WireOutputFormat("json_schema", output.schema)
    )


def parse_error(status: int, body: bytes) -> errors.LMBridgeError:
    """An upstream error answer as our error, keeping the upstream's message."""
    message = ""
    try:
        envelope = _ERROR.decode(body)
    except DECODE_ERRORS:
        envelope = wire.ErrorEnvelope()
    if isinstance(envelope.error, wire.ErrorBody):
        message = envelope.error.message
    elif isinstance(envelope.error, str):
        message = envelope.error
    message = message or envelope.message or ""
    if not message:
        text = body.decode("utf-8", "replace").strip()
        message = text[:500] or f"the upstream answered HTTP {status}"
    too_long = overflow.error(message, status=status, body=body)
    if too_long is not None:
        return too_long
    return errors.from_status(status, message)


def _system(parts: tuple[ir.Text, ...]) -> str | list[wire.TextBlock] | None:
    texts = [part.text for part in parts if part.text]
    if not texts:
        return None
    if len(texts) == 1:
        return texts[0]
    return [wire.TextBlock(text) for text in texts]


def _messages(messages: tuple[ir.Message, ...]) -> list[wire.OutMessage]:
    # Without the parts Messages cannot carry (unsigned thinking), a message
    # may be left empty, and its neighbours then merge.
    carried = (
        ir.Message(m.role, tuple(p for p in m.parts if _block(p) is not None))
        for m in messages
    )
    out: list[wire.OutMessage] = []
    for message in normal_form(carried, system_as_user=True):
        blocks = [block for part in message.parts if (block := _block(part))]
        if not blocks:
            continue
        if out and out[-1].role == message.role.value:
            out[-1].content.extend(blocks)
        else:
            out.append(wire.OutMessage(message.role.value, blocks))
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
                for inner in merge_texts(part.content)
                if isinstance(inner, ir.Text | ir.Image)
                and (block := _text_or_image(inner)) is not None
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
