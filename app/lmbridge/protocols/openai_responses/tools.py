"""The tools of a Responses request, and the client's shape of each call.

Besides `function` tools (hosted tools are dropped, see the package
docstring), Codex sends:

- `namespace` tools, `{"type": "namespace", "name": "mcp__srv", "tools":
  [{"type": "function", "name": "read", ...}]}`: how it sends an MCP
  server's tools and its own sub-agent tools. No upstream API has
  namespaces, so each inner tool is carried on its own under a flat name
  made of both, `flat_name("mcp__srv", "read") == "mcp__srv__read"`;
- freeform `custom` tools (`apply_patch`), also inside a namespace: a
  function with one string argument upstream (see `freeform.py`).

The model calls the flat name; `ClientTools` maps it back so the client
gets each call the way it declared the tool: a `function_call` with `name`
and `namespace` (Codex runs an MCP tool only for such a call), or a
`custom_tool_call` with the raw `input`. A history item that names a
namespace maps to the same flat name, so the upstream sees one tool name
throughout a conversation.

Flat names are deterministic: `<namespace>__<name>`, with characters other
than `[A-Za-z0-9_-]` replaced by `_`; a name longer than 64 characters (the
Chat and Messages limit), changed by that replacement, or taken by another
tool of the request is cut to 55 characters and given `_` and 8 hex digits
of a hash of the namespace and name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.protocols.openai_responses import answer, freeform

MAX_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_DEFAULT_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}

# ------------------------------------------------------------- declarations


class CustomFormat(msgspec.Struct):
    """`format` of a custom tool: `text`, or a `grammar` (lark or regex)."""

    type: str = "text"
    syntax: str | None = None
    definition: str | None = None


class CustomToolParam(msgspec.Struct):
    """A freeform (`custom`) tool."""

    name: str
    description: str | None = None
    format: CustomFormat | None = None


class NamespaceMember(msgspec.Struct):
    """A tool inside a namespace: a function or a custom tool (others are
    dropped, so `name` may be missing)."""

    type: str
    name: str = ""
    description: str | None = None
    parameters: dict[str, Any] | None = None
    format: CustomFormat | None = None


class NamespaceToolParam(msgspec.Struct):
    """A `namespace` tool: tools grouped under a name the calls carry."""

    name: str
    description: str | None = None
    tools: list[NamespaceMember] = msgspec.field(default_factory=list)


def flat_name(namespace: str | None, name: str) -> str:
    """The name a tool gets upstream (before any clash with another tool)."""
    if namespace is None:
        return name
    joined = f"{namespace}__{name}"
    safe = _UNSAFE.sub("_", joined)
    if safe == joined and len(joined) <= MAX_NAME:
        return joined
    return _hashed(namespace, name)


def _hashed(namespace: str, name: str) -> str:
    digest = hashlib.sha1(f"{namespace}\0{name}".encode(), usedforsecurity=False)
    safe = _UNSAFE.sub("_", f"{namespace}__{name}")
    return f"{safe[: MAX_NAME - 9]}_{digest.hexdigest()[:8]}"


class ToolSet:
    """Builds a request's IR tools from its declarations, in order."""

    def __init__(self) -> None:
        self._tools: list[ir.Tool] = []

    def function(
        self,
        name: str,
        description: str | None,
        parameters: dict[str, Any] | None,
        namespace: str | None = None,
    ) -> None:
        self._tools.append(
            ir.Tool(
                name=flat_name(namespace, name),
                description=description or "",
                parameters=parameters or dict(_DEFAULT_PARAMETERS),
                namespace=namespace,
                client_name=name if namespace is not None else None,
            )
        )

    def custom(
        self,
        name: str,
        description: str | None,
        fmt: CustomFormat | None,
        namespace: str | None = None,
    ) -> None:
        grammar = fmt if fmt is not None and fmt.type == "grammar" else None
        self._tools.append(
            ir.Tool(
                name=flat_name(namespace, name),
                description=freeform.description(
                    description or "",
                    grammar.syntax if grammar else None,
                    grammar.definition if grammar else None,
                ),
                parameters=freeform.parameters(),
                kind=ir.ToolKind.CUSTOM,
                namespace=namespace,
                client_name=name if namespace is not None else None,
            )
        )

    def member(self, namespace: str, member: NamespaceMember) -> None:
        """A function or custom tool of `namespace`."""
        if member.type == "custom":
            self.custom(member.name, member.description, member.format, namespace)
        else:
            self.function(member.name, member.description, member.parameters, namespace)

    def result(self) -> tuple[ir.Tool, ...]:
        """The tools; a flat name that clashes with another is hashed."""
        taken = {t.name for t in self._tools if t.namespace is None}
        out: list[ir.Tool] = []
        for tool in self._tools:
            if tool.namespace is not None:
                if tool.name in taken:
                    name = _hashed(tool.namespace, tool.declared_name)
                    tool = msgspec.structs.replace(tool, name=name)
                taken.add(tool.name)
            out.append(tool)
        return tuple(out)


# ------------------------------------------------------------------ calls


class ClientTools:
    """The client's identity of each tool a request offers, by the name the
    model calls."""

    def __init__(self, tools: Iterable[ir.Tool]) -> None:
        self._by_name: dict[str, ir.Tool] = {}
        self._by_identity: dict[tuple[str | None, str], ir.Tool] = {}
        for tool in tools:
            self._by_name.setdefault(tool.name, tool)
            self._by_identity.setdefault((tool.namespace, tool.declared_name), tool)

    def name_for(self, namespace: str | None, name: str) -> str:
        """The upstream name of a call the client sent (a history item)."""
        tool = self._by_identity.get((namespace, name))
        return tool.name if tool is not None else flat_name(namespace, name)

    def tool(self, name: str) -> ir.Tool | None:
        """The tool the model calls by `name`, if the request offers it."""
        return self._by_name.get(name)

    def is_custom(self, name: str) -> bool:
        tool = self._by_name.get(name)
        return tool is not None and tool.kind is ir.ToolKind.CUSTOM

    def output_item(
        self, item_id: str, call_id: str, name: str, arguments: str, status: str
    ) -> answer.FunctionCall | answer.CustomToolCall:
        """A call of the model as an output item in the client's shape.

        `arguments` is the JSON the model wrote; for a custom tool it is
        turned into the raw input (`status` in_progress: none yet).
        """
        tool = self._by_name.get(name)
        if tool is None:
            return answer.FunctionCall(item_id, call_id, name, arguments, status)
        client_name = tool.declared_name
        if tool.kind is ir.ToolKind.CUSTOM:
            text = "" if status == "in_progress" else freeform.input_from(arguments)
            return answer.CustomToolCall(
                item_id, call_id, client_name, text, status, tool.namespace
            )
        return answer.FunctionCall(
            item_id, call_id, client_name, arguments, status, tool.namespace
        )


def needs_translation(request: ir.Request) -> bool:
    """Whether `request` holds tools or calls a Responses upstream may not
    know: namespace or custom tools, or such calls in its history."""
    if any(
        t.namespace is not None or t.kind is not ir.ToolKind.FUNCTION
        for t in request.tools
    ):
        return True
    return any(
        isinstance(part, ir.ToolCall)
        and (part.namespace is not None or part.kind is not ir.ToolKind.FUNCTION)
        for message in request.messages
        for part in message.parts
    )
