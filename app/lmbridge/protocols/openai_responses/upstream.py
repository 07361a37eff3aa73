"""`ir.Request` encoded as a Responses request for an upstream.

LM Studio (0.3.29+) and Azure AI Foundry serve `/v1/responses`. The body is
always a streaming request, and `store` is false unless the client asked for
it (`extras["store"]`): the proxy keeps conversations itself.

Losses, by design:

- stop sequences, `top_k` and `seed` have no Responses field and are dropped
  (the caller enforces stop sequences if it must);
- thinking travels only as OpenAI `encrypted_content` (a `Thinking` with
  `data`, no `signature`, not redacted); Anthropic thinking is dropped;
- images in assistant messages are dropped (Responses has no place for them);
- `max_output_tokens` is raised to 16, the smallest value OpenAI accepts
  (Claude Code probes with `max_tokens: 1`);
- fields of other protocols in `extras` are not sent (and are listed by
  `omitted`); `Request.unportable` ones are refused with a 400.

The conversation is in `carry.normal_form` (adjacent texts joined by
`ir.join_text`); a system message in the middle of it is a `developer`
message item in place. `Request.output_format` is `text.format`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.protocols.carry import merge_texts, normal_form, refuse_unportable
from lmbridge.protocols.openai_responses import wire

MIN_OUTPUT_TOKENS = 16
DEFAULT_FORMAT_NAME = "response"
"""`text.format.name` when the client gave none (Anthropic has no name)."""
_DEFAULT_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def encode_request(request: ir.Request) -> bytes:
    """The upstream body for `request`; always `stream: true`."""
    refuse_unportable(request, "OpenAI Responses")
    extras = request.extras
    tools = _tools(request)
    previous = extras.get("previous_response_id")
    body = wire.UpstreamRequest(
        model=request.model,
        input=input_items(request.messages),
        stream=True,
        store=extras.get("store") is True,
        instructions=request.system_text() or None,
        tools=tools or None,
        tool_choice=_tool_choice(request.tool_choice) if tools else None,
        parallel_tool_calls=request.parallel_tool_calls if tools else None,
        max_output_tokens=(
            None
            if request.max_tokens is None
            else max(MIN_OUTPUT_TOKENS, request.max_tokens)
        ),
        temperature=request.temperature,
        top_p=request.top_p,
        reasoning=_reasoning(request),
        previous_response_id=previous if isinstance(previous, str) else None,
        text=_text_config(request),
    )
    return msgspec.json.encode(body)


def omitted(request: ir.Request) -> list[str]:
    """What `encode_request` leaves out of `request`."""
    out = [
        f"{name}: no Responses field"
        for name, value in (
            ("stop", request.stop),
            ("top_k", request.top_k),
            ("seed", request.seed),
        )
        if value
    ]
    foreign = images = 0
    for msg in request.messages:
        for part in msg.parts:
            if isinstance(part, ir.Thinking) and not is_openai_reasoning(part):
                foreign += 1
            elif isinstance(part, ir.Image) and msg.role is ir.Role.ASSISTANT:
                images += 1
    if foreign:
        out.append(f"thinking from another provider ({foreign} blocks)")
    if images:
        out.append(f"images in assistant messages ({images})")
    out += [
        f"{k}: not a Responses field"
        for k in sorted(request.extras)
        if k not in _CARRIED_EXTRAS
    ]
    return out


# The extras `encode_request` sends (those of a Responses client).
_CARRIED_EXTRAS = frozenset({"previous_response_id", "store", "text"})


def is_openai_reasoning(part: ir.Thinking) -> bool:
    """True if the thinking came from an OpenAI source (`encrypted_content`)."""
    return part.data is not None and part.signature is None and not part.redacted


def input_items(messages: tuple[ir.Message, ...]) -> list[wire.UpstreamItem]:
    """IR messages as Responses input items, in order."""
    items: list[wire.UpstreamItem] = []
    for message in normal_form(messages, system_as_user=False):
        if message.role is ir.Role.SYSTEM:
            texts = [
                wire.InputText(p.text) for p in message.parts if isinstance(p, ir.Text)
            ]
            items.append(wire.UpstreamMessage("developer", list(texts)))
        else:
            items.extend(_message_items(message))
    return items


def _message_items(message: ir.Message) -> list[wire.UpstreamItem]:
    """One IR message as items: runs of text and images become one message."""
    user = message.role is ir.Role.USER
    items: list[wire.UpstreamItem] = []
    pending: list[wire.UpstreamContent] = []
    for part in message.parts:
        item: wire.UpstreamItem | None = None
        match part:
            case ir.Text():
                if part.text:
                    pending.append(
                        wire.InputText(part.text)
                        if user
                        else wire.UpstreamAssistantText(part.text)
                    )
            case ir.Image():
                if user:
                    pending.append(wire.UpstreamImage(part.as_data_url()))
            case ir.ToolCall():
                item = wire.UpstreamFunctionCall(
                    part.id, part.name, part.arguments or "{}"
                )
            case ir.ToolResult():
                item = wire.UpstreamFunctionCallOutput(part.call_id, _tool_output(part))
            case ir.Thinking():
                if part.data is not None and is_openai_reasoning(part):
                    summary = [wire.SummaryText(part.text)] if part.text else []
                    item = wire.UpstreamReasoning(summary, part.data)
        if item is not None:
            if pending:
                items.append(wire.UpstreamMessage(message.role.value, pending))
                pending = []
            items.append(item)
    if pending:
        items.append(wire.UpstreamMessage(message.role.value, pending))
    return items


def _tool_output(
    part: ir.ToolResult,
) -> str | list[wire.InputText | wire.UpstreamImage]:
    if not any(isinstance(p, ir.Image) for p in part.content):
        return part.text()
    return [
        wire.InputText(p.text)
        if isinstance(p, ir.Text)
        else wire.UpstreamImage(p.as_data_url())
        for p in merge_texts(part.content)
        if isinstance(p, ir.Text | ir.Image)
    ]


def _tools(request: ir.Request) -> list[wire.FunctionTool]:
    return [
        wire.FunctionTool(
            name=tool.name,
            description=tool.description or None,
            parameters=tool.parameters or dict(_DEFAULT_PARAMETERS),
            # Responses defaults `strict` to true, which rejects most schemas.
            strict=False,
        )
        for tool in request.tools
    ]


def tool_choice_wire(choice: ir.ToolChoice | None) -> wire.ToolChoiceWire:
    """An IR tool choice in the Responses shape ("auto" when unset)."""
    return _tool_choice(choice) or "auto"


def _tool_choice(choice: ir.ToolChoice | None) -> wire.ToolChoiceWire | None:
    if choice is None:
        return None
    if choice.mode is ir.ToolChoiceMode.TOOL:
        if choice.name:
            return wire.ToolChoiceFunction(choice.name)
        return "required"
    return choice.mode.value


def effort_for_budget(budget_tokens: int) -> str:
    """The reasoning effort closest to an Anthropic thinking budget."""
    if budget_tokens < 4096:
        return "low"
    if budget_tokens < 16384:
        return "medium"
    return "high"


def _reasoning(request: ir.Request) -> wire.ReasoningConfig | None:
    reasoning = request.reasoning
    if reasoning is None:
        return None
    effort = reasoning.effort
    if effort is None and reasoning.budget_tokens is not None:
        effort = effort_for_budget(reasoning.budget_tokens)
    if effort is None:
        return None
    return wire.ReasoningConfig(effort=effort)


def _text_config(request: ir.Request) -> dict[str, Any] | None:
    """`text`: the output format, and a Responses client's other settings
    (`verbosity`)."""
    given = request.extras.get("text")
    text = (
        {k: v for k, v in given.items() if k != "format"}
        if isinstance(given, dict)
        else {}
    )
    output = request.output_format
    if output is not None:
        spec: dict[str, Any] = {"type": output.type}
        if output.type == "json_schema":
            spec["name"] = output.name or DEFAULT_FORMAT_NAME
            spec["schema"] = output.schema or {}
            if output.description:
                spec["description"] = output.description
            if output.strict is not None:
                spec["strict"] = output.strict
        text["format"] = spec
    return text or None
