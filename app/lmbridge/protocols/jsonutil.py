"""JSON helpers shared by the codecs: strict object decoding, friendly errors."""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core.errors import InvalidRequest

_decode = msgspec.json.Decoder()


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON request body that must be an object."""
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        raw = _decode.decode(body)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
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
