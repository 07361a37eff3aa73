"""Content blocks of a client's Anthropic request, as IR parts, and the
errors that name a field by its JSON path.

The block policies (what becomes text, what is dropped) are quoted in
`request.py`'s docstring.
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import InvalidRequest
from lmbridge.protocols import websearch
from lmbridge.protocols.anthropic import wire

T = TypeVar("T")

_HEAD = msgspec.json.Decoder(wire.BlockHead)
_TEXT = msgspec.json.Decoder(wire.TextBlock)
_IMAGE = msgspec.json.Decoder(wire.ImageBlock)
_TOOL_USE = msgspec.json.Decoder(wire.ToolUseBlock)
_TOOL_RESULT = msgspec.json.Decoder(wire.WireToolResult)
_THINKING = msgspec.json.Decoder(wire.ThinkingBlock)
_REDACTED = msgspec.json.Decoder(wire.RedactedThinkingBlock)
_DOCUMENT = msgspec.json.Decoder(wire.WireDocument)
_SEARCH_RESULT = msgspec.json.Decoder(wire.WireSearchResult)
_LOOSE_TEXT = msgspec.json.Decoder(wire.LooseTextBlock)
_SERVER_TOOL_USE = msgspec.json.Decoder(wire.WireServerToolUse)
_WEB_SEARCH_RESULT = msgspec.json.Decoder(wire.WireWebSearchResult)
_MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")

# ------------------------------------------------------------------ errors


def invalid(message: str, path: str) -> InvalidRequest:
    """An error about the field at JSON path `path` (`$.messages[0].role`).

    Worded like `jsonutil.invalid` so every front door reads the same:
    `invalid request: messages[0].role: ...`.
    """
    param = path.removeprefix("$").removeprefix(".")
    where = f"{param}: " if param else ""
    return InvalidRequest(f"invalid request: {where}{message}", param=param or None)


def decode(decoder: msgspec.json.Decoder[T], data: bytes | msgspec.Raw, path: str) -> T:
    """Decode `data` found at `path`; errors name the full field path."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, path) from None
    except RecursionError:
        raise InvalidRequest("the request body is nested too deeply") from None
    except (msgspec.DecodeError, UnicodeError) as exc:
        if not data:
            raise InvalidRequest(
                "the request body is empty; send a JSON object"
            ) from None
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def _validation_error(exc: msgspec.ValidationError, path: str) -> InvalidRequest:
    """msgspec's error, its location made relative to the whole body."""
    message, found, where = str(exc).rpartition(" - at `")
    if not found:  # the error is about the value at `path` itself
        message, where = str(exc), "$"
    field = path + where.rstrip("`").removeprefix("$")
    missing = _MISSING_FIELD.match(message)
    if missing:
        field = f"{field}.{missing[1]}"
    return invalid(message, field)


def _lenient(decoder: msgspec.json.Decoder[T], raw: msgspec.Raw) -> T | None:
    """Decode an optional block; a shape we do not know drops it (policy)."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        return None


# ------------------------------------------------------------------ content


def system_parts(system: str | list[wire.SystemBlock] | None) -> list[ir.Text]:
    if system is None:
        return []
    if isinstance(system, str):
        return [ir.Text(system)] if system else []
    return [ir.Text(b.text) for b in system if b.type == "text" and b.text]


def content(
    given: str | list[msgspec.Raw],
    path: str,
    skipped: list[str],
    *,
    assistant: bool = False,
) -> list[ir.Part]:
    """The blocks as IR parts; a line in `skipped` for each block dropped.
    An `assistant`'s web searches become calls and results (`_web_search`)."""
    if isinstance(given, str):
        return [ir.Text(given)] if given else []
    parts: list[ir.Part] = []
    queries: dict[str, str] = {}  # web searches' call ids -> queries
    for j, raw in enumerate(given):
        where = f"{path}.content[{j}]"
        kind = decode(_HEAD, raw, where).type  # once per block
        found = _web_search(raw, kind, queries) if assistant else None
        if found is None:
            found = _block(raw, kind, where, skipped)
        if found is None:
            skipped.append(f"{where[2:]}: a {kind!r} block is not carried")
        parts.extend(found or ())
    if queries:  # searches without a result: the model never read them
        parts = [
            p for p in parts if not (isinstance(p, ir.ToolCall) and p.id in queries)
        ]
        skipped.extend(
            f"{path[2:]}: web search {i!r} without its result" for i in queries
        )
    return parts


def _web_search(
    raw: msgspec.Raw, kind: str, queries: dict[str, str]
) -> list[ir.Part] | None:
    """A web search of an earlier turn (a `server_tool_use` named
    web_search, and its `web_search_tool_result`) as the call and result
    the model was shown (protocols/websearch.py); None for other blocks.
    The result stays in the assistant's parts here; `request.py` moves it
    into a user message. `kind`: the block's type."""
    if kind == "server_tool_use":
        use = _lenient(_SERVER_TOOL_USE, raw)
        if use is None or use.name != websearch.TOOL_NAME:
            return None
        query = (use.input or {}).get("query")
        queries[use.id] = query if isinstance(query, str) else ""
        return [
            ir.ToolCall(
                use.id, websearch.TOOL_NAME, websearch.call_arguments(queries[use.id])
            )
        ]
    if kind != "web_search_tool_result":
        return None
    result = _lenient(_WEB_SEARCH_RESULT, raw)
    if result is None or result.tool_use_id not in queries:
        return None
    query = queries.pop(result.tool_use_id)
    if isinstance(result.content, list):
        hits = tuple(
            ir.SearchHit(
                hit.url,
                hit.title or "",
                websearch.unsealed(hit.encrypted_content),
                hit.page_age,
            )
            for hit in result.content
            if hit.url
        )
        search = ir.WebSearch(result.tool_use_id, query, hits)
    else:
        code = (result.content or {}).get("error_code")
        error = code if isinstance(code, str) and code else "unavailable"
        search = ir.WebSearch(result.tool_use_id, query, error=error)
    return [as_result(search)]


def as_result(search: ir.WebSearch) -> ir.ToolResult:
    """The result the model was shown for `search`."""
    return websearch.as_call_and_result(search)[1]


def _block(
    raw: msgspec.Raw, kind: str, path: str, skipped: list[str]
) -> list[ir.Part] | None:
    """One content block (of type `kind`) as IR parts; None when policy
    drops it."""
    if kind == "text":
        text = decode(_TEXT, raw, path).text
        return [ir.Text(text)] if text else []
    if kind == "image":
        image = _image(decode(_IMAGE, raw, path).source, f"{path}.source")
        return [image] if image else None
    if kind == "tool_use":
        use = decode(_TOOL_USE, raw, path)
        arguments = bytes(use.input).decode()
        if not arguments.startswith("{"):
            raise invalid("Expected `object`", f"{path}.input")
        return [ir.ToolCall(use.id, use.name, arguments)]
    if kind == "tool_result":
        result = decode(_TOOL_RESULT, raw, path)
        given = result.content if result.content is not None else ""
        inner = [
            part
            for part in content(given, path, skipped)
            if isinstance(part, ir.Text | ir.Image)
        ]
        return [ir.ToolResult(result.tool_use_id, tuple(inner), bool(result.is_error))]
    if kind == "thinking":
        thinking = decode(_THINKING, raw, path)
        return [ir.Thinking(thinking.thinking, thinking.signature or None)]
    if kind == "redacted_thinking":
        return [ir.Thinking(redacted=True, data=decode(_REDACTED, raw, path).data)]
    if kind == "document":
        return _document(raw, path, skipped)
    if kind == "search_result":
        return _search_result(raw, path, skipped)
    loose = _lenient(_LOOSE_TEXT, raw)
    return [ir.Text(loose.text)] if loose and loose.text else None


def _image(source: wire.ImageSource, path: str) -> ir.Image | None:
    if source.type == "base64":
        if not source.data or not source.media_type:
            raise invalid("a base64 image needs `media_type` and `data`", path)
        return ir.Image(media_type=source.media_type, data=source.data)
    if source.type == "url":
        if not source.url:
            raise invalid("a url image needs `url`", path)
        return ir.Image(media_type=source.media_type or "", url=source.url)
    return None


def _texts(parts: list[ir.Part]) -> str:
    return ir.join_text(p.text for p in parts if isinstance(p, ir.Text))


def _document(raw: msgspec.Raw, path: str, skipped: list[str]) -> list[ir.Part] | None:
    document = _lenient(_DOCUMENT, raw)
    if document is None:
        return None
    source = document.source
    if source.type == "text" and source.data:
        text = source.data
    elif source.type == "content" and source.content:
        text = _texts(content(source.content, f"{path}.source", skipped))
    else:
        return None
    if document.title:
        text = f"{document.title}\n\n{text}"
    return [ir.Text(text)] if text else []


def _search_result(
    raw: msgspec.Raw, path: str, skipped: list[str]
) -> list[ir.Part] | None:
    result = _lenient(_SEARCH_RESULT, raw)
    if result is None:
        return None
    body = _texts(content(result.content, path, skipped))
    head = "\n".join(line for line in (result.title, result.source) if line)
    text = f"{head}\n\n{body}" if head and body else head or body
    return [ir.Text(text)] if text else []
