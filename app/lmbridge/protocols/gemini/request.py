"""Gemini `generateContent` requests from clients: bytes parsed into IR.

- The model and whether to stream come from the URL
  (`models/{model}:streamGenerateContent`), not the body.
- `user` contents (no role: `user`) and `model` contents are the user and
  assistant messages; `systemInstruction` is the system prompt.
- Gemini calls carry no ids (some clients add them): a `functionCall`
  without one gets `call_<content>_<k>` (content index, k-th call in it),
  the same on every turn of a conversation, so the upstream prompt stays
  the same; a `functionResponse` answers the call with its id, else the
  first unanswered call of its name in the model turn before it.
- Inline images reach the model; other inline data, files by URI that are
  not images, Google's own tools (search, code execution), thought
  signatures and safety settings do not, each listed in `Request.dropped`.
- `thinkingConfig` is `Request.reasoning`; `responseMimeType`
  `application/json` (with `responseSchema` / `responseJsonSchema`) is
  structured output; `candidateCount` above 1 is refused.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import InvalidRequest
from lmbridge.protocols import jsonutil
from lmbridge.protocols.gemini import wire
from lmbridge.protocols.gemini.schema import json_schema

_encode = msgspec.json.Encoder()

_MODES = {
    "AUTO": ir.ToolChoiceMode.AUTO,
    "VALIDATED": ir.ToolChoiceMode.AUTO,
    "ANY": ir.ToolChoiceMode.REQUIRED,
    "NONE": ir.ToolChoiceMode.NONE,
    "MODE_UNSPECIFIED": ir.ToolChoiceMode.AUTO,
}
_LEVELS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}
# generationConfig fields read below; any other is listed as dropped.
_READ_CONFIG = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "candidateCount",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "thinkingConfig",
        "seed",
    }
)
# Keys of a functionResponse.response that hold the whole result as text.
_RESULT_KEYS = ("output", "result", "content")


def model_of(name: str) -> str:
    """The model a URL names (`models/x` or `x`)."""
    return name.removeprefix("models/")


def parse_generate(body: bytes, model: str, stream: bool) -> ir.Request:
    """A `generateContent` body as IR; errors name the offending field."""
    raw = wire.camel_keys(jsonutil.decode_object(body))
    try:
        req = msgspec.convert(raw, wire.GenerateContentRequest)
    except msgspec.ValidationError as exc:
        raise jsonutil.invalid(exc) from None
    out = to_ir(req, raw, model, stream)
    if not out.messages:
        raise InvalidRequest(
            "contents must hold at least one part the model can read",
            param="contents",
        )
    return out


def parse_count(body: bytes, model: str) -> ir.Request:
    """A `countTokens` body as IR (its contents, or its whole request)."""
    raw = wire.camel_keys(jsonutil.decode_object(body))
    try:
        req = msgspec.convert(raw, wire.CountTokensRequest)
    except msgspec.ValidationError as exc:
        raise jsonutil.invalid(exc) from None
    inner = req.generate_content_request
    if inner is not None:
        inner_raw = raw.get("generateContentRequest")
        return to_ir(inner, inner_raw if isinstance(inner_raw, dict) else {}, model)
    whole = wire.GenerateContentRequest(contents=req.contents or [])
    return to_ir(whole, {}, model)


def to_ir(
    req: wire.GenerateContentRequest,
    raw: dict[str, Any],
    model: str,
    stream: bool = False,
) -> ir.Request:
    """The IR of a decoded request; `raw` is its JSON, keys in camelCase."""
    if req.cached_content:
        raise InvalidRequest(
            "cachedContent: LM Bridge keeps no Gemini context caches; send the"
            " contents themselves",
            param="cachedContent",
        )
    dropped: list[str] = []
    system: list[ir.Text] = []
    if req.system_instruction is not None:
        for part in req.system_instruction.parts:
            if part.text:
                system.append(ir.Text(part.text))
            elif not _empty(part):
                dropped.append("systemInstruction: a part that is not text")
    messages = _messages(req.contents, dropped)
    tools = _tools(req.tools, raw.get("tools"), dropped)
    choice, tools = _tool_choice(req.tool_config, tools)
    config = req.generation_config or wire.GenerationConfig()
    raw_config = raw.get("generationConfig")
    if isinstance(raw_config, dict):
        unread = [k for k in raw_config if k not in _READ_CONFIG]
        dropped += [f"generationConfig.{k}" for k in unread]
    if req.safety_settings:
        dropped.append("safetySettings (accepted and ignored: no Google filters here)")
    return ir.Request(
        model=model,
        messages=tuple(messages),
        system=tuple(system),
        tools=tuple(tools),
        tool_choice=choice,
        max_tokens=config.max_output_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=_top_k(config.top_k),
        stop=tuple(config.stop_sequences or ()),
        seed=config.seed,
        reasoning=_reasoning(config.thinking_config),
        stream=stream,
        dropped=tuple(dropped),
        output_format=_output_format(config),
    )


def _empty(part: wire.Part) -> bool:
    return part == wire.Part() or part == wire.Part(text="")


def _messages(contents: list[wire.Content], dropped: list[str]) -> list[ir.Message]:
    messages: list[ir.Message] = []
    # The calls of the latest model turn not answered yet: (name, id).
    pending: list[tuple[str, str]] = []
    for i, content in enumerate(contents):
        role = content.role or "user"
        if role == "model":
            answer, pending = _model_parts(content.parts, i, dropped)
            _append(messages, ir.Role.ASSISTANT, answer)
        elif role in ("user", "function", "tool"):
            parts = _user_parts(content.parts, pending, dropped)
            _append(messages, ir.Role.USER, parts)
        else:
            raise InvalidRequest(
                f"contents[{i}].role: {role!r} is not a role; use user or model",
                param=f"contents[{i}].role",
            )
    return messages


def _model_parts(
    parts: list[wire.Part], index: int, dropped: list[str]
) -> tuple[list[ir.Part], list[tuple[str, str]]]:
    out: list[ir.Part] = []
    calls: list[tuple[str, str]] = []
    for part in parts:
        if part.function_call is not None:
            call = part.function_call
            call_id = call.id or f"call_{index}_{len(calls)}"
            calls.append((call.name, call_id))
            out.append(ir.ToolCall(call_id, call.name, _json(call.args or {})))
        elif part.text is not None:
            if part.thought:
                out.append(ir.Thinking(part.text))
            elif part.text:
                out.append(ir.Text(part.text))
        elif not _empty(part):
            _drop_part(part, "a model turn", dropped)
    return out, calls


def _user_parts(
    parts: list[wire.Part], pending: list[tuple[str, str]], dropped: list[str]
) -> list[ir.Part]:
    out: list[ir.Part] = []
    for part in parts:
        if part.function_response is not None:
            out.append(_result(part.function_response, pending))
        elif part.text:
            out.append(ir.Text(part.text))
        elif part.inline_data is not None and _is_image(part.inline_data.mime_type):
            blob = part.inline_data
            out.append(ir.Image(media_type=blob.mime_type, data=blob.data))
        elif (
            part.file_data is not None
            and _is_image(part.file_data.mime_type)
            and part.file_data.file_uri.startswith(("https://", "http://"))
        ):
            image = part.file_data
            out.append(ir.Image(media_type=image.mime_type, url=image.file_uri))
        elif not _empty(part):
            _drop_part(part, "a user turn", dropped)
    return out


def _result(response: wire.FunctionResponse, pending: list[tuple[str, str]]) -> ir.Part:
    """A function response as the tool result of the call it answers; one
    that answers no call of the turn before is given to the model as text."""
    found = next((c for c in pending if response.id and c[1] == response.id), None)
    if found is None:
        found = next((c for c in pending if c[0] == response.name), None)
    body = response.response or {}
    is_error = set(body) == {"error"}
    text = _result_text(body)
    if found is None:
        return ir.Text(f"[result of {response.name}]\n{text}")
    pending.remove(found)
    return ir.ToolResult(found[1], (ir.Text(text),), is_error=is_error)


def _result_text(body: dict[str, Any]) -> str:
    if len(body) == 1:
        ((key, value),) = body.items()
        if key in (*_RESULT_KEYS, "error") and isinstance(value, str):
            return value
    return _json(body)


def _json(value: dict[str, Any]) -> str:
    return _encode.encode(value).decode()


def _is_image(mime: str) -> bool:
    return mime.lower().startswith("image/")


def _drop_part(part: wire.Part, where: str, dropped: list[str]) -> None:
    if part.inline_data is not None:
        what = f"inlineData {part.inline_data.mime_type or '?'} (only images)"
    elif part.file_data is not None:
        what = f"fileData {part.file_data.mime_type or '?'} (only image URLs)"
    elif part.executable_code is not None or part.code_execution_result is not None:
        what = "code execution parts (Google's code execution)"
    else:
        what = "a part with nothing LM Bridge can carry"
    line = f"{what} in {where}"
    if line not in dropped:
        dropped.append(line)


def _append(messages: list[ir.Message], role: ir.Role, parts: list[ir.Part]) -> None:
    if not parts:
        return
    if messages and messages[-1].role is role:
        messages[-1] = ir.Message(role, messages[-1].parts + tuple(parts))
    else:
        messages.append(ir.Message(role, tuple(parts)))


def _tools(
    tools: list[wire.Tool] | None, raw: Any, dropped: list[str]
) -> list[ir.Tool]:
    out: list[ir.Tool] = []
    for i, tool in enumerate(tools or ()):
        for decl in tool.function_declarations or ():
            if decl.parameters_json_schema is not None:
                params = decl.parameters_json_schema
            elif decl.parameters is not None:
                params = json_schema(decl.parameters)
            else:
                params = {"type": "object", "properties": {}}
            out.append(ir.Tool(decl.name, decl.description, params))
        entry = raw[i] if isinstance(raw, list) and i < len(raw) else {}
        for key in entry if isinstance(entry, dict) else ():
            if key != "functionDeclarations":
                dropped.append(f"tool {key} (it runs only at Google)")
    return out


def _tool_choice(
    config: wire.ToolConfig | None, tools: list[ir.Tool]
) -> tuple[ir.ToolChoice | None, list[ir.Tool]]:
    calling = config.function_calling_config if config is not None else None
    if calling is None:
        return None, tools
    mode = (calling.mode or "AUTO").upper()
    if mode not in _MODES:
        raise InvalidRequest(
            f"toolConfig.functionCallingConfig.mode: unknown mode {calling.mode!r}"
            " (AUTO, ANY, NONE or VALIDATED)",
            param="toolConfig.functionCallingConfig.mode",
        )
    allowed = calling.allowed_function_names
    if allowed:
        tools = [t for t in tools if t.name in allowed]
        if mode == "ANY" and len(allowed) == 1:
            return ir.ToolChoice(ir.ToolChoiceMode.TOOL, allowed[0]), tools
    return ir.ToolChoice(_MODES[mode]), tools


def _top_k(value: float | None) -> int | None:
    if value is None:
        return None
    if value != int(value):
        raise InvalidRequest(
            "generationConfig.topK: must be a whole number",
            param="generationConfig.topK",
        )
    return int(value)


def _reasoning(config: wire.ThinkingConfig | None) -> ir.Reasoning | None:
    """Thinking asked for: a budget, a level, or thoughts to be shown."""
    if config is None or config.thinking_budget == 0:
        return None
    if config.thinking_level:
        level = _LEVELS.get(config.thinking_level.lower())
        if level is None:
            raise InvalidRequest(
                f"generationConfig.thinkingConfig.thinkingLevel: unknown level"
                f" {config.thinking_level!r} (low, medium or high)",
                param="generationConfig.thinkingConfig.thinkingLevel",
            )
        return ir.Reasoning(effort=level)
    budget = config.thinking_budget
    if budget is not None and budget > 0:
        return ir.Reasoning(budget_tokens=budget)
    if config.include_thoughts:
        return ir.Reasoning(effort="medium")
    return None


def _output_format(config: wire.GenerationConfig) -> ir.OutputFormat | None:
    if config.candidate_count is not None and config.candidate_count > 1:
        raise InvalidRequest(
            "generationConfig.candidateCount: LM Bridge answers with one"
            " candidate; send candidateCount 1 (or none) and ask again for more",
            param="generationConfig.candidateCount",
        )
    schema = config.response_json_schema
    if schema is None and config.response_schema is not None:
        schema = json_schema(config.response_schema)
    mime = (config.response_mime_type or "").lower()
    if mime in ("", "text/plain"):
        if schema is not None and mime:
            raise InvalidRequest(
                "generationConfig.responseSchema needs responseMimeType"
                " application/json",
                param="generationConfig.responseMimeType",
            )
        return ir.OutputFormat(schema=schema, name="response") if schema else None
    if mime != "application/json":
        raise InvalidRequest(
            f"generationConfig.responseMimeType: {config.response_mime_type!r} is"
            " not served here; use text/plain or application/json",
            param="generationConfig.responseMimeType",
        )
    if schema is None:
        return ir.OutputFormat(type="json_object")
    return ir.OutputFormat(schema=schema, name="response")
