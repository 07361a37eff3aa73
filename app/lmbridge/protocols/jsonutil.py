"""JSON helpers shared by the codecs: strict object decoding, friendly errors."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from lmbridge.core.errors import DECODE_ERRORS, InvalidRequest

T = TypeVar("T")

_decode = msgspec.json.Decoder()


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON request body that must be an object."""
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        raw = _decode.decode(body)
    except DECODE_ERRORS as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return raw


def invalid(exc: msgspec.ValidationError) -> InvalidRequest:
    """An InvalidRequest naming the field msgspec complained about."""
    message = str(exc)
    head, sep, where = message.rpartition(" - at `")
    if not sep:
        field = _missing_field(message)
        return InvalidRequest(f"invalid request: {message}", param=field)
    path = where.rstrip("`").removeprefix("$").lstrip(".")
    if head.startswith("Object missing required field"):
        missing = _missing_field(head) or ""
        path = f"{path}.{missing}" if path else missing
    return InvalidRequest(f"invalid request: {path}: {head}", param=path or None)


def _missing_field(message: str) -> str | None:
    if "`" in message:
        return message.split("`")[1]
    return None


def decode_as(body: bytes, type_: type[T]) -> T:
    """A JSON request body decoded as `type_`; InvalidRequest naming the field."""
    if not body.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise invalid(exc) from None
    except DECODE_ERRORS as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


# ------------------------------------------------------------- JSON repair


def loads_or_invalid(text: str) -> Any:
    """`text` decoded as JSON, or `INVALID` when it is not JSON."""
    try:
        return msgspec.json.decode(text)
    except DECODE_ERRORS:
        return INVALID


INVALID = object()
"""What `loads_or_invalid` gives for text that is not JSON."""


def parse_json_object(text: str) -> dict[str, Any] | None:
    """Parse JSON object text, repairing it when the fix is unambiguous.

    Empty text is `{}`. Repairs: text around the object is dropped
    (leading prose, trailing garbage such as `}` or `</tool_call>`); a
    truncated object gets its open string, arrays and objects closed (a
    dangling comma is dropped). Anything else, including valid JSON that is
    not an object, gives None.
    """
    text = text.strip()
    if not text:
        return {}
    value = loads_or_invalid(text)
    if value is not INVALID:
        return value if isinstance(value, dict) else None
    start = text.find("{")
    if start < 0:
        return None
    closers: list[str] = []
    in_string = escaped = False
    for pos in range(start, len(text)):
        char = text[pos]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]":
            if not closers or closers.pop() != char:
                return None
            if not closers:
                value = loads_or_invalid(text[start : pos + 1])
                return value if isinstance(value, dict) else None
    candidate = text[start:] + ('"' if in_string else "")
    candidate = candidate.rstrip().removesuffix(",")
    value = loads_or_invalid(candidate + "".join(reversed(closers)))
    return value if isinstance(value, dict) else None
