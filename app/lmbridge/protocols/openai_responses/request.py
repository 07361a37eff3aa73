"""A client's Responses request (`POST /v1/responses`) parsed into `ir.Request`.

Every malformed body becomes `InvalidRequest` naming the field, with the
JSON path msgspec reports (``at `$.input[0].content[1].file_id` ``).

Mapping:

- `instructions`, then `system` and `developer` messages (Codex CLI sends
  `developer`) before the first other item become IR system text, in that
  order; later ones stay in place as IR `SYSTEM` messages;
- `text.format` (JSON schema or object) is `Request.output_format`;
- `input` must not be empty (without `previous_response_id`);
- `message`, `function_call` and `custom_tool_call` (an assistant
  `ToolCall`, named as the model sees the tool, see tools.py),
  `function_call_output` and `custom_tool_call_output` (a user `ToolResult`;
  text, or `input_text` / `input_image` parts) and `reasoning` (`Thinking`
  whose `data` is the `encrypted_content`) items become IR messages;
  consecutive items of the same role merge into one message;
- images by `file_id`, `input_file` parts and item references are refused: LM
  Bridge has no file storage and resolves no item ids;
- `function`, `custom` and `namespace` tools are carried (tools.py); hosted
  tools are dropped (see the package docstring), their types listed in
  `Request.dropped`; but `web_search` and `web_search_preview`, which are
  kept apart as `Request.web_search` (server/websearch.py offers them to
  the model as a function, or drops them);
- a `web_search_call` item (an earlier search) becomes the call the model
  made and a result with no content yet: the pipeline puts back what the
  model read then (server/websearch.py); its call id, the item's `id` or
  one made from the query (Codex sends no `id`), is in `Request.searches`.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import DECODE_ERRORS, InvalidRequest
from lmbridge.protocols import websearch
from lmbridge.protocols.openai_responses import freeform, wire
from lmbridge.protocols.openai_responses.tools import (
    ClientTools,
    CustomToolParam,
    NamespaceToolParam,
    ToolSet,
)

_T = TypeVar("_T")

_REQUEST = msgspec.json.Decoder(wire.CreateRequest)
_ITEM_HEAD = msgspec.json.Decoder(wire.ItemHead)
_MESSAGE = msgspec.json.Decoder(wire.MessageItem)
_FUNCTION_CALL = msgspec.json.Decoder(wire.FunctionCallItem)
_FUNCTION_OUTPUT = msgspec.json.Decoder(wire.FunctionCallOutputItem)
_REASONING = msgspec.json.Decoder(wire.ReasoningItem)
_TOOL_HEAD = msgspec.json.Decoder(wire.ToolHead)
_FUNCTION_TOOL = msgspec.json.Decoder(wire.FunctionToolParam)
_CUSTOM_CALL = msgspec.json.Decoder(wire.CustomToolCallItem)
_CUSTOM_TOOL = msgspec.json.Decoder(CustomToolParam)
_NAMESPACE_TOOL = msgspec.json.Decoder(NamespaceToolParam)
_WEB_SEARCH_TOOL = msgspec.json.Decoder(wire.WebSearchToolParam)
_WEB_SEARCH_CALL = msgspec.json.Decoder(wire.WebSearchCallItem)
_OUTPUT_ITEMS = ("function_call_output", "custom_tool_call_output")

_PATH = re.compile(r"at `\$\.?([^`]*)`")
_TOOL_CHOICE_MODES = {
    "auto": ir.ToolChoiceMode.AUTO,
    "required": ir.ToolChoiceMode.REQUIRED,
    "none": ir.ToolChoiceMode.NONE,
}


def _invalid(message: str, path: str | None = None) -> InvalidRequest:
    """An `InvalidRequest` whose message ends with the JSON path it concerns."""
    if path is None:
        return InvalidRequest(message)
    return InvalidRequest(f"{message} - at `$.{path}`", param=path)


def _from_decode_error(exc: Exception, prefix: str = "") -> InvalidRequest:
    """msgspec's error as ours; a nested decode's path is put under `prefix`."""
    if isinstance(exc, RecursionError):
        return InvalidRequest("invalid request body: JSON is nested too deeply")
    if isinstance(exc, UnicodeError):
        return InvalidRequest("invalid request body: text is not valid UTF-8")
    text = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return InvalidRequest(f"invalid request body: not valid JSON ({text})")
    if prefix:
        if "at `$" in text:
            text = text.replace("at `$", f"at `$.{prefix}", 1)
        else:
            text = f"{text} - at `$.{prefix}`"
    found = _PATH.search(text)
    return InvalidRequest(
        f"invalid request body: {text}", param=found.group(1) if found else None
    )


def _decode(decoder: msgspec.json.Decoder[_T], raw: msgspec.Raw, path: str) -> _T:
    try:
        return decoder.decode(raw)
    except DECODE_ERRORS as exc:
        raise _from_decode_error(exc, path) from None


def parse_request(body: bytes) -> ir.Request:
    """Parse a Responses request body; raises `InvalidRequest` for bad input."""
    try:
        request = _REQUEST.decode(body)
    except DECODE_ERRORS as exc:
        raise _from_decode_error(exc) from None
    if not request.model:
        raise _invalid("`model` must not be empty", "model")

    dropped: list[str] = []
    searching: list[ir.WebSearchTool] = []
    tools = _tools(request.tools or [], dropped, searching)
    conversation = _Conversation(ClientTools(tools))
    if request.instructions:
        conversation.system.append(ir.Text(request.instructions))
    if isinstance(request.input, str):
        conversation.add(ir.Role.USER, _texts(request.input))
    else:
        for index, raw in enumerate(request.input):
            _add_item(conversation, raw, f"input[{index}]")

    extras: dict[str, Any] = {}
    for key in ("previous_response_id", "store", "prompt_cache_key", "user"):
        value = getattr(request, key)
        if value is not None:
            extras[key] = value
    output_format = None
    if request.text is not None:
        output_format = _output_format(request.text.format)
        text = msgspec.to_builtins(request.text)
        text.pop("format", None)
        if text:
            extras["text"] = text
    if not conversation.started and request.previous_response_id is None:
        raise _invalid("`input` must hold at least one item", "input")
    reasoning = None
    if request.reasoning is not None and request.reasoning.effort is not None:
        reasoning = ir.Reasoning(effort=request.reasoning.effort)

    return ir.Request(
        model=request.model,
        messages=tuple(conversation.messages()),
        system=tuple(conversation.system),
        tools=tools,
        tool_choice=_tool_choice(request.tool_choice, conversation.tools),
        parallel_tool_calls=request.parallel_tool_calls,
        max_tokens=request.max_output_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        reasoning=reasoning,
        stream=bool(request.stream),
        client=ir.ClientInfo(session_key=request.prompt_cache_key or request.user),
        extras=extras,
        dropped=tuple(dropped),
        output_format=output_format,
        web_search=searching[0] if searching else None,
        searches=tuple(conversation.searches),
    )


def _output_format(given: wire.TextFormat | None) -> ir.OutputFormat | None:
    """`text.format` as IR (plain text: None)."""
    if given is None or given.type == "text":
        return None
    if given.type == "json_object":
        return ir.OutputFormat("json_object")
    if given.schema is None:
        raise _invalid("a json_schema format needs a `schema`", "text.format.schema")
    return ir.OutputFormat(
        "json_schema", given.schema, given.name, given.description, given.strict
    )


class _Conversation:
    """Collects system text and messages, merging consecutive same-role items."""

    def __init__(self, tools: ClientTools) -> None:
        self.tools = tools
        self.system: list[ir.Text] = []
        self._messages: list[ir.Message] = []
        self._role: ir.Role | None = None
        self._parts: list[ir.Part] = []
        self.searches: list[str] = []

    @property
    def started(self) -> bool:
        """Whether any message has been added (system text aside)."""
        return self._role is not None or bool(self._messages)

    def add(self, role: ir.Role, parts: list[ir.Part]) -> None:
        if not parts:
            return
        if role is not self._role:
            self._flush()
            self._role = role
        self._parts.extend(parts)

    def _flush(self) -> None:
        if self._role is not None and self._parts:
            self._messages.append(ir.Message(self._role, tuple(self._parts)))
        self._parts = []

    def messages(self) -> list[ir.Message]:
        self._flush()
        self._role = None
        return self._messages


def _texts(text: str) -> list[ir.Part]:
    return [ir.Text(text)] if text else []


def _add_item(conversation: _Conversation, raw: msgspec.Raw, path: str) -> None:
    head = _decode(_ITEM_HEAD, raw, path)
    kind = head.type
    if kind == "message" or (kind is None and head.role is not None):
        message = _decode(_MESSAGE, raw, path)
        if message.role in ("system", "developer"):
            texts = _content(message.content, path, images=False)
            if conversation.started:  # in place: the prompt's start stays
                conversation.add(ir.Role.SYSTEM, texts)
            else:
                conversation.system.extend(p for p in texts if isinstance(p, ir.Text))
        elif message.role == "user":
            conversation.add(ir.Role.USER, _content(message.content, path, images=True))
        else:
            parts = _content(message.content, path, images=False)
            conversation.add(ir.Role.ASSISTANT, parts)
    elif kind == "function_call":
        call = _decode(_FUNCTION_CALL, raw, path)
        name = conversation.tools.name_for(call.namespace, call.name)
        tool_call = ir.ToolCall(
            call.call_id, name, call.arguments or "{}", namespace=call.namespace
        )
        conversation.add(ir.Role.ASSISTANT, [tool_call])
    elif kind == "custom_tool_call":
        custom = _decode(_CUSTOM_CALL, raw, path)
        tool_call = ir.ToolCall(
            custom.call_id,
            conversation.tools.name_for(custom.namespace, custom.name),
            freeform.arguments_for(custom.input),
            kind=ir.ToolKind.CUSTOM,
            namespace=custom.namespace,
        )
        conversation.add(ir.Role.ASSISTANT, [tool_call])
    elif kind in _OUTPUT_ITEMS:
        output = _decode(_FUNCTION_OUTPUT, raw, path)
        if isinstance(output.output, str):
            content: tuple[ir.Text | ir.Image, ...] = (ir.Text(output.output),)
        else:
            content = _tool_output(output.output, f"{path}.output")
        conversation.add(ir.Role.USER, [ir.ToolResult(output.call_id, content)])
    elif kind == "reasoning":
        item = _decode(_REASONING, raw, path)
        text = "\n\n".join(s.text for s in item.summary if s.text)
        if not text and item.content:
            text = ir.join_text(c.text for c in item.content)
        if text or item.encrypted_content:
            thinking = ir.Thinking(text=text, data=item.encrypted_content)
            conversation.add(ir.Role.ASSISTANT, [thinking])
    elif kind == "web_search_call":
        _add_search(conversation, _decode(_WEB_SEARCH_CALL, raw, path))
    elif kind == "item_reference" or kind is None:
        raise _invalid(
            "item references are not supported: send the items themselves,"
            " or chain turns with `previous_response_id`",
            f"{path}.id" if kind is None else f"{path}.type",
        )
    else:
        raise _invalid(
            f"input items of type {kind!r} are not supported", f"{path}.type"
        )


def _add_search(conversation: _Conversation, item: wire.WebSearchCallItem) -> None:
    """An earlier web search: its call, and a result the pipeline fills."""
    action = item.action
    if action is None or action.type != "search":
        return  # opening a page, finding in it: nothing the model can be shown
    query = action.query or " ".join(action.queries or ())
    call_id = item.id or websearch.search_id(query)
    arguments = websearch.call_arguments(query)
    conversation.add(
        ir.Role.ASSISTANT, [ir.ToolCall(call_id, websearch.TOOL_NAME, arguments)]
    )
    conversation.add(
        ir.Role.USER, [ir.ToolResult(call_id, is_error=item.status == "failed")]
    )
    conversation.searches.append(call_id)


def _content(
    content: str | list[wire.MessageContent], path: str, *, images: bool
) -> list[ir.Part]:
    if isinstance(content, str):
        return _texts(content)
    parts: list[ir.Part] = []
    for index, part in enumerate(content):
        part_path = f"{path}.content[{index}]"
        match part:
            case wire.InputText() | wire.OutputText():
                parts.extend(_texts(part.text))
            case wire.Refusal():
                parts.extend(_texts(part.refusal))
            case wire.InputImage():
                if not images:
                    raise _invalid(
                        "images are only accepted in user messages", part_path
                    )
                parts.append(_image(part, part_path))
            case wire.InputFile():
                raise _file_refused(part_path)
    return parts


def _tool_output(
    content: list[wire.ToolOutputContent], path: str
) -> tuple[ir.Text | ir.Image, ...]:
    parts: list[ir.Text | ir.Image] = []
    for index, part in enumerate(content):
        part_path = f"{path}[{index}]"
        match part:
            case wire.InputText() | wire.OutputText():
                parts.append(ir.Text(part.text))
            case wire.InputImage():
                parts.append(_image(part, part_path))
            case wire.InputFile():
                raise _file_refused(part_path)
    return tuple(parts)


def _file_refused(path: str) -> InvalidRequest:
    return _invalid(
        "`input_file` parts are not supported: LM Bridge has no file storage;"
        " paste the file's text into an `input_text` part",
        path,
    )


def _image(part: wire.InputImage, path: str) -> ir.Image:
    if part.file_id is not None:
        raise _invalid(
            "images by `file_id` are not supported: LM Bridge has no file storage;"
            " send the image as a data URL in `image_url`",
            f"{path}.file_id",
        )
    url = part.image_url
    if not url:
        raise _invalid("an `input_image` needs an `image_url`", f"{path}.image_url")
    lowered = url[:8].lower()
    if lowered.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise _invalid(
                "`image_url` data URLs must be base64 (data:<type>;base64,...)",
                f"{path}.image_url",
            )
        return ir.Image(media_type=header[:-7] or "image/png", data=data)
    if lowered.startswith(("http://", "https://")):
        return ir.Image(url=url)
    raise _invalid("`image_url` must be an http(s) or data URL", f"{path}.image_url")


def _tools(
    raws: list[msgspec.Raw], dropped: list[str], searching: list[ir.WebSearchTool]
) -> tuple[ir.Tool, ...]:
    """The function, custom and namespace tools (see tools.py); a line in
    `dropped` for each other tool, but web search, which goes in
    `searching`."""
    tools = ToolSet()
    for index, raw in enumerate(raws):
        path = f"tools[{index}]"
        kind = _decode(_TOOL_HEAD, raw, path).type
        if websearch.is_responses_tool(kind) and not searching:
            found = _decode(_WEB_SEARCH_TOOL, raw, path)
            allowed = found.filters.allowed_domains if found.filters else None
            searching.append(ir.WebSearchTool(kind, tuple(allowed or ())))
        elif kind == "function":
            tool = _decode(_FUNCTION_TOOL, raw, path)
            _need_name(tool.name, kind, path)
            tools.function(tool.name, tool.description, tool.parameters)
        elif kind == "custom":
            custom = _decode(_CUSTOM_TOOL, raw, path)
            _need_name(custom.name, kind, path)
            tools.custom(custom.name, custom.description, custom.format)
        elif kind == "namespace":
            space = _decode(_NAMESPACE_TOOL, raw, path)
            _need_name(space.name, kind, path)
            for inner, member in enumerate(space.tools):
                member_path = f"{path}.tools[{inner}]"
                if member.type not in ("function", "custom"):
                    carried = f"type {member.type!r} is not carried"
                    dropped.append(f"{member_path}: {carried}")
                    continue
                _need_name(member.name, member.type, member_path)
                tools.member(space.name, member)
        else:
            dropped.append(f"{path}: type {kind!r} is not carried")
    return tools.result()


def _need_name(name: str, kind: str, path: str) -> None:
    if not name:
        raise _invalid(f"a {kind} tool needs a `name`", f"{path}.name")


def _tool_choice(
    choice: str | wire.ToolChoiceParam | None, tools: ClientTools
) -> ir.ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = _TOOL_CHOICE_MODES.get(choice)
        if mode is None:
            raise _invalid(
                "`tool_choice` must be auto, required, none or an object", "tool_choice"
            )
        return ir.ToolChoice(mode)
    if choice.type in ("function", "custom"):
        if not choice.name:
            raise _invalid(
                f"a {choice.type} `tool_choice` needs a `name`", "tool_choice.name"
            )
        name = tools.name_for(choice.namespace, choice.name)
        return ir.ToolChoice(ir.ToolChoiceMode.TOOL, name)
    if choice.type == "allowed_tools" and choice.mode == "required":
        return ir.ToolChoice(ir.ToolChoiceMode.REQUIRED)
    # allowed_tools in auto mode, or a hosted tool, which is dropped.
    return ir.ToolChoice(ir.ToolChoiceMode.AUTO)
