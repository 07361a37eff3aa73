"""The edits LM Bridge makes to a body it relays (every protocol alike)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lmbridge.protocols.base import BodyEdit


def edit_body(
    body: dict[str, Any],
    edit: BodyEdit,
    max_tokens_fields: tuple[str, ...],
    tool_name: Callable[[Any], str | None],
) -> None:
    """Rename the model, filter tools by `tool_name`, clamp the token limit.

    The first of `max_tokens_fields` is set when the body has none of them.
    """
    body["model"] = edit.model
    allowed = edit.allowed_tools
    if allowed is not None and isinstance(body.get("tools"), list):
        body["tools"] = [t for t in body["tools"] if tool_name(t) in allowed]
    limit = edit.max_tokens
    if limit is None:
        return
    present = [f for f in max_tokens_fields if isinstance(body.get(f), int)]
    for field in present:
        body[field] = min(body[field], limit)
    if not present:
        body[max_tokens_fields[0]] = limit


def named(tool: Any) -> str | None:
    """The `name` of a tool given as `{"name": ...}` (Anthropic, Responses)."""
    name = tool.get("name") if isinstance(tool, dict) else None
    return name if isinstance(name, str) else None
