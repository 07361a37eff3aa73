"""Gemini API request bodies (`generateContent`, `countTokens`) as typed structs.

Google's JSON takes each field in camelCase or in snake_case
(`systemInstruction` or `system_instruction`): `camel_keys` renames the
keys of the request's own objects to camelCase before msgspec reads them,
leaving what the client wrote inside them (function arguments and
responses, schemas) as it came. Integers are bounded (`protocols/limits`).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from lmbridge.protocols.limits import (
    INT32_MAX,
    Count,
    OpenAITemperature,
    Seed,
    TokenCount,
    TopK,
    Unit,
)


class Blob(msgspec.Struct, frozen=True, rename="camel"):
    """`inlineData`: base64 bytes and their MIME type."""

    mime_type: str = ""
    data: str = ""


class FileData(msgspec.Struct, frozen=True, rename="camel"):
    """`fileData`: a file by URI (an uploaded file or a URL)."""

    file_uri: str = ""
    mime_type: str = ""


class FunctionCall(msgspec.Struct, frozen=True, rename="camel"):
    """A call the model made; `id` is optional in Gemini (most send none)."""

    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


class FunctionResponse(msgspec.Struct, frozen=True, rename="camel"):
    """The client's answer to a call, matched by `id` or by name and order."""

    name: str
    response: dict[str, Any] | None = None
    id: str | None = None


class Part(msgspec.Struct, frozen=True, rename="camel"):
    """One part of a content: exactly one of its data fields is set."""

    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    executable_code: dict[str, Any] | None = None
    code_execution_result: dict[str, Any] | None = None
    thought: bool | None = None
    thought_signature: str | None = None


class Content(msgspec.Struct, frozen=True, rename="camel"):
    """A turn: `user` or `model` (no role: `user`)."""

    parts: list[Part] = msgspec.field(default_factory=list)
    role: str | None = None


class FunctionDeclaration(msgspec.Struct, frozen=True, rename="camel"):
    """A function tool: its parameters as Gemini's schema or as JSON Schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    parameters_json_schema: dict[str, Any] | None = None


class Tool(msgspec.Struct, frozen=True, rename="camel"):
    """A tool entry; only `functionDeclarations` reach a model through LM
    Bridge (Google's own tools run at Google)."""

    function_declarations: list[FunctionDeclaration] | None = None


class FunctionCallingConfig(msgspec.Struct, frozen=True, rename="camel"):
    mode: str | None = None
    allowed_function_names: list[str] | None = None


class ToolConfig(msgspec.Struct, frozen=True, rename="camel"):
    function_calling_config: FunctionCallingConfig | None = None


class ThinkingConfig(msgspec.Struct, frozen=True, rename="camel"):
    """`thinkingBudget`: -1 dynamic, 0 off, else tokens; `thinkingLevel`
    (Gemini 3): low / medium / high."""

    include_thoughts: bool | None = None
    thinking_budget: TopK | None = None
    thinking_level: str | None = None


class GenerationConfig(msgspec.Struct, frozen=True, rename="camel"):
    """Sampling and the answer's shape."""

    temperature: OpenAITemperature | None = None
    top_p: Unit | None = None
    # The SDK's type is a float; a whole number is what every model takes.
    top_k: Annotated[float, msgspec.Meta(ge=0, le=INT32_MAX)] | None = None
    max_output_tokens: TokenCount | None = None
    stop_sequences: list[str] | None = None
    candidate_count: Count | None = None
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None
    response_json_schema: dict[str, Any] | None = None
    thinking_config: ThinkingConfig | None = None
    seed: Seed | None = None


class GenerateContentRequest(msgspec.Struct, frozen=True, rename="camel"):
    """The body of `models/{model}:generateContent` (and its stream)."""

    contents: list[Content] = msgspec.field(default_factory=list)
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    generation_config: GenerationConfig | None = None
    safety_settings: list[dict[str, Any]] | None = None
    cached_content: str | None = None
    model: str | None = None


class CountTokensRequest(msgspec.Struct, frozen=True, rename="camel"):
    """The body of `models/{model}:countTokens`: contents, or a whole
    `generateContentRequest`."""

    contents: list[Content] | None = None
    generate_content_request: GenerateContentRequest | None = None


# Which keys of each of the request's own objects are objects of the
# request too (renamed in turn); the rest are the client's data.
_PART: dict[str, Any] = {
    "inlineData": {},
    "fileData": {},
    "functionCall": {},
    "functionResponse": {},
}
_CONTENT: dict[str, Any] = {"parts": _PART}
_GENERATE: dict[str, Any] = {
    "contents": _CONTENT,
    "systemInstruction": _CONTENT,
    "tools": {"functionDeclarations": {}},
    "toolConfig": {"functionCallingConfig": {}},
    "generationConfig": {"thinkingConfig": {}},
}
SHAPE: dict[str, Any] = {**_GENERATE, "generateContentRequest": _GENERATE}
"""The request's structure, for `camel_keys`."""


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_keys(value: Any, shape: dict[str, Any] = SHAPE) -> Any:
    """`value` with the keys of the request's own objects in camelCase.

    A key given in both spellings keeps the camelCase one (Google's
    canonical form)."""
    if isinstance(value, list):
        return [camel_keys(item, shape) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _camel(key) if isinstance(key, str) else key
        if name in out and name != key:
            continue
        inner = shape.get(name)
        out[name] = camel_keys(item, inner) if inner is not None else item
    return out
